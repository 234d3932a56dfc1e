"""Likelihoods of the non-zero pixel values, p(x_i | eta_i) for pixels with z_i = 1.

The (batch, K) log-likelihood matrix of `objectives` needs, for every pair (image b,
parameter set k), sum_i z_bi log p(x_bi | eta_ki). Any per-pixel density that can be written

    log p(x | eta) = sum_j T_j(x) * g_j(eta) + h(x) + c(eta)

(every exponential family: Gaussian with fixed or learned sigma, log-normal, gamma, ...)
gives that sum as matrix products, without a (batch, K, pixels) tensor:

    sum_i z_bi log p = sum_j T_j(x_b) . g_j(eta_k) + sum_i z_bi h(x_bi) + z_b . c(eta_k).

A likelihood implements `data_stats` (T_j and h, zero where z = 0), `natural_params`
(g_j and c), plus `log_prob` (elementwise, the reference) and `sample`.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
from torch import nn

from .errors import ModelError


class NonZeroLikelihood(nn.Module, ABC):
    """Interface: a per-pixel density of non-zero values in exponential-family form."""

    #: name recorded in model.pt and used by `build_likelihood`
    name: str = ""

    @abstractmethod
    def data_stats(self, x: torch.Tensor, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Sufficient statistics [T_j(x)] each (B, D), zero where z = 0, and sum_i z_i h(x_i) (B,)."""

    @abstractmethod
    def natural_params(self, eta: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Coefficients [g_j(eta)] each (K, D) matching `data_stats`, and c(eta) (K, D)."""

    @abstractmethod
    def log_prob(self, x: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        """Elementwise log p(x | eta) (broadcasting); the reference the matrix form must equal."""

    @abstractmethod
    def sample(self, eta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Values drawn from p(. | eta), same shape as eta."""

    def extra_state_dict(self) -> dict[str, float]:
        """Fixed (non-trained) settings to record in model.pt so the likelihood can be rebuilt."""
        return {}


class GaussianFixedSigma(NonZeroLikelihood):
    """N(x; eta, sigma) with one fixed sigma (GeV): the empirical std of non-zero pixel values (paper)."""

    name = "gaussian_fixed_sigma"

    def __init__(self, sigma_gev: float) -> None:
        super().__init__()
        if not math.isfinite(sigma_gev) or sigma_gev <= 0:
            raise ModelError(
                f"Gaussian sigma must be a positive number (GeV), got {sigma_gev}; the training images "
                "need at least two different non-zero pixel values"
            )
        self.sigma_gev = float(sigma_gev)
        self.register_buffer("sigma", torch.tensor(float(sigma_gev)))

    def data_stats(self, x: torch.Tensor, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        inv_var = 1.0 / self.sigma_gev**2
        # x is already zero where z = 0, so z * x = x and z * x^2 = x^2
        return [x], -0.5 * inv_var * (x * x).sum(dim=1)

    def natural_params(self, eta: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        inv_var = 1.0 / self.sigma_gev**2
        log_norm = math.log(self.sigma_gev) + 0.5 * math.log(2.0 * math.pi)
        return [eta * inv_var], -0.5 * inv_var * eta * eta - log_norm

    def log_prob(self, x: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        s = self.sigma_gev
        return -0.5 * ((x - eta) / s) ** 2 - math.log(s) - 0.5 * math.log(2.0 * math.pi)

    def sample(self, eta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(eta.shape, generator=generator, device=eta.device, dtype=eta.dtype)
        return eta + self.sigma_gev * noise

    def extra_state_dict(self) -> dict[str, float]:
        return {"sigma_gev": self.sigma_gev}


LIKELIHOODS: dict[str, type[NonZeroLikelihood]] = {GaussianFixedSigma.name: GaussianFixedSigma}


def build_likelihood(name: str, **settings: float) -> NonZeroLikelihood:
    """The likelihood called `name` with its fixed settings (e.g. sigma_gev)."""
    if name not in LIKELIHOODS:
        raise ModelError(f"unknown likelihood '{name}'; choose one of {sorted(LIKELIHOODS)}")
    return LIKELIHOODS[name](**settings)

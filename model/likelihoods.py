"""Likelihoods of the non-zero pixel values, p(x_i | eta_i) for pixels with z_i = 1.

The (batch, K) log-likelihood matrix of `objectives` needs, for every pair (image b,
parameter set k), sum_i z_bi log p(x_bi | eta_ki). Any per-pixel density that can be written

    log p(x | eta) = sum_j T_j(x) * g_j(eta) + h(x) + c(eta)

(every exponential family: Gaussian with fixed or learned sigma, log-normal, gamma, ...)
gives that sum as matrix products, without a (batch, K, pixels) tensor:

    sum_i z_bi log p = sum_j T_j(x_b) . g_j(eta_k) + sum_i z_bi h(x_bi) + z_b . c(eta_k).

A likelihood implements `data_stats` (T_j and h, zero where z = 0), `natural_params`
(g_j and c), plus `log_prob` (elementwise, the reference), `sample`, and `from_data` /
`eta_marginals` (its fixed settings and the generator's starting eta from the training images).

- `gaussian_fixed_sigma`: N(x; eta, sigma), sigma = std of the non-zero values (paper).
- `lognormal_fixed_sigma`: log x ~ N(eta, s), s = std of log of the non-zero values; samples
  are exp of a Gaussian draw, so never negative (the paper's Gaussian can give ET < 0).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import torch
from torch import nn

from .errors import ModelError

if TYPE_CHECKING:
    from .data import TrainingData


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

    @classmethod
    @abstractmethod
    def from_data(cls, data: "TrainingData") -> "NonZeroLikelihood":
        """This likelihood with its fixed settings estimated from the training images."""

    @abstractmethod
    def eta_marginals(self, data: "TrainingData") -> tuple[torch.Tensor, float]:
        """(D,) per-pixel eta of the independent-pixel fit (the generator's start) and eta's scale."""

    def extra_state_dict(self) -> dict[str, float]:
        """Fixed (non-trained) settings to record in model.pt so the likelihood can be rebuilt."""
        return {}

    def _fixed_sigma(self, value: float, what: str) -> float:
        """Check a fixed width estimated from the data, keep it as the `sigma` buffer, return it."""
        if not math.isfinite(value) or value <= 0:
            raise ModelError(
                f"{what}, got {value}; the training images need at least two different non-zero pixel values"
            )
        self.register_buffer("sigma", torch.tensor(float(value)))
        return float(value)


class GaussianFixedSigma(NonZeroLikelihood):
    """N(x; eta, sigma) with one fixed sigma (GeV): the empirical std of non-zero pixel values (paper)."""

    name = "gaussian_fixed_sigma"

    def __init__(self, sigma_gev: float) -> None:
        super().__init__()
        self.sigma_gev = self._fixed_sigma(sigma_gev, "Gaussian sigma must be a positive number (GeV)")

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

    @classmethod
    def from_data(cls, data: "TrainingData") -> "GaussianFixedSigma":
        return cls(data.nonzero_std())

    def eta_marginals(self, data: "TrainingData") -> tuple[torch.Tensor, float]:
        return data.nonzero_mean(), self.sigma_gev

    def extra_state_dict(self) -> dict[str, float]:
        return {"sigma_gev": self.sigma_gev}


class LogNormalFixedSigma(NonZeroLikelihood):
    """log x ~ N(eta, s) for x > 0 (GeV): eta is the mean of log(x / GeV), s fixed to the std of log x.

    log p(x) = log N(log x; eta, s) - log x. In exponential-family form T = log x,
    g = eta / s^2, h = -(log x)^2 / (2 s^2) - log x, c = -eta^2 / (2 s^2) - log s - log sqrt(2 pi).
    """

    name = "lognormal_fixed_sigma"

    def __init__(self, sigma_log: float) -> None:
        super().__init__()
        self.sigma_log = self._fixed_sigma(sigma_log, "log-normal sigma (std of log ET) must be a positive number")

    def data_stats(self, x: torch.Tensor, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        inv_var = 1.0 / self.sigma_log**2
        # log x where the pixel is non-zero, exactly 0 elsewhere (log 1), so no -inf/NaN enters the sums
        log_x = torch.where(z != 0, x, torch.ones_like(x)).log()
        return [log_x], (-0.5 * inv_var * log_x * log_x - log_x).sum(dim=1)

    def natural_params(self, eta: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        inv_var = 1.0 / self.sigma_log**2
        log_norm = math.log(self.sigma_log) + 0.5 * math.log(2.0 * math.pi)
        return [eta * inv_var], -0.5 * inv_var * eta * eta - log_norm

    def log_prob(self, x: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        s = self.sigma_log
        log_x = x.log()
        return -0.5 * ((log_x - eta) / s) ** 2 - math.log(s) - 0.5 * math.log(2.0 * math.pi) - log_x

    def sample(self, eta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(eta.shape, generator=generator, device=eta.device, dtype=eta.dtype)
        return torch.exp(eta + self.sigma_log * noise)

    @classmethod
    def from_data(cls, data: "TrainingData") -> "LogNormalFixedSigma":
        return cls(data.nonzero_std(log_values=True))

    def eta_marginals(self, data: "TrainingData") -> tuple[torch.Tensor, float]:
        return data.nonzero_mean(log_values=True), self.sigma_log

    def extra_state_dict(self) -> dict[str, float]:
        return {"sigma_log": self.sigma_log}


LIKELIHOODS: dict[str, type[NonZeroLikelihood]] = {
    GaussianFixedSigma.name: GaussianFixedSigma,
    LogNormalFixedSigma.name: LogNormalFixedSigma,
}


def build_likelihood(name: str, **settings: float) -> NonZeroLikelihood:
    """The likelihood called `name` with its fixed settings (e.g. sigma_gev, sigma_log)."""
    if name not in LIKELIHOODS:
        raise ModelError(f"unknown likelihood '{name}'; choose one of {sorted(LIKELIHOODS)}")
    try:
        return LIKELIHOODS[name](**settings)
    except TypeError as exc:
        raise ModelError(f"likelihood '{name}' got settings {sorted(settings)} it does not take ({exc})") from None

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
- `lognormal_threshold`: x = x0 + exp(N(eta, s)), the log-normal above the detector's ET threshold x0
  (estimated from the data: log(x - x0) has zero skewness); samples never fall below the threshold.
- `lognormal_threshold_learned_sigma`: the same with a trained per-pixel s_i (a global s, added
  on top of the generator's own eta variation, inflates the mean ET).
- `gaussian_learned_sigma`: N(x; eta, sigma_i) with a per-pixel sigma_i that is trained with the
  generator, starting at each pixel's std of non-zero values shrunk towards the global std.
- `gamma`: Gamma(shape alpha_i, rate alpha_i / mu) with mean mu = exp(eta) and a trained per-pixel
  shape alpha_i (starting at mean^2 / variance of the pixel's non-zero values); always > 0, and
  its variance grows with the mean (mu^2 / alpha), unlike a fixed-sigma Gaussian.

Trained likelihood settings are `nn.Parameter`s of the likelihood: the training loop optimises
them with the generator, and they are saved in model.pt and the checkpoint (`state_dict`).
`log_prob(x, eta, pixels)` takes the pixel index of each value when x and eta are not laid
out as (..., D) (the pT-conditional objective scores only the non-zero pixels).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from .data import TrainingData
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
    def log_prob(self, x: torch.Tensor, eta: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        """Elementwise log p(x | eta) (broadcasting); the reference the matrix form must equal.

        Per-pixel settings line up with the last dimension (D) of x and eta, or, when given,
        with `pixels`: the pixel index (0..D-1) of each element along the last dimension.
        """

    @abstractmethod
    def sample(self, eta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Values drawn from p(. | eta), same shape as eta."""

    @classmethod
    @abstractmethod
    def from_data(cls, data: TrainingData) -> NonZeroLikelihood:
        """This likelihood with its fixed settings estimated from the training images."""

    @abstractmethod
    def eta_marginals(self, data: TrainingData) -> tuple[torch.Tensor, float]:
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

    def log_prob(self, x: torch.Tensor, eta: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        s = self.sigma_gev
        return -0.5 * ((x - eta) / s) ** 2 - math.log(s) - 0.5 * math.log(2.0 * math.pi)

    def sample(self, eta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(eta.shape, generator=generator, device=eta.device, dtype=eta.dtype)
        return eta + self.sigma_gev * noise

    @classmethod
    def from_data(cls, data: TrainingData) -> GaussianFixedSigma:
        return cls(data.nonzero_std())

    def eta_marginals(self, data: TrainingData) -> tuple[torch.Tensor, float]:
        return data.nonzero_mean(), self.sigma_gev

    def extra_state_dict(self) -> dict[str, float]:
        return {"sigma_gev": self.sigma_gev}


class LogNormalFixedSigma(NonZeroLikelihood):
    """log(x - x0) ~ N(eta, s) for x > x0 (GeV): s fixed to the std of log(x - x0) of the data.

    x0 (`offset_gev`) is 0 for this likelihood (plain log-normal). With u = log(x - x0):
    log p(x) = log N(u; eta, s) - u. In exponential-family form T = u, g = eta / s^2,
    h = -u^2 / (2 s^2) - u, c = -eta^2 / (2 s^2) - log s - log sqrt(2 pi).
    """

    name = "lognormal_fixed_sigma"

    def __init__(self, sigma_log: float, offset_gev: float = 0.0) -> None:
        super().__init__()
        self.sigma_log = self._fixed_sigma(sigma_log, "log-normal sigma (std of log ET) must be a positive number")
        if not (math.isfinite(offset_gev) and offset_gev >= 0):
            raise ModelError(f"log-normal offset (the ET threshold) must be a finite number >= 0 GeV, got {offset_gev}")
        self.offset_gev = float(offset_gev)

    def _log_excess(self, x: torch.Tensor) -> torch.Tensor:
        """log((x - x0) / GeV)."""
        return (x - self.offset_gev).log() if self.offset_gev else x.log()

    def data_stats(self, x: torch.Tensor, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        inv_var = 1.0 / self.sigma_log**2
        # log(x - x0) where the pixel is non-zero, exactly 0 elsewhere (log 1), so no -inf/NaN enters the sums
        u = torch.where(z != 0, x - self.offset_gev, torch.ones_like(x)).log()
        return [u], (-0.5 * inv_var * u * u - u).sum(dim=1)

    def natural_params(self, eta: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        inv_var = 1.0 / self.sigma_log**2
        log_norm = math.log(self.sigma_log) + 0.5 * math.log(2.0 * math.pi)
        return [eta * inv_var], -0.5 * inv_var * eta * eta - log_norm

    def log_prob(self, x: torch.Tensor, eta: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        s = self.sigma_log
        u = self._log_excess(x)
        return -0.5 * ((u - eta) / s) ** 2 - math.log(s) - 0.5 * math.log(2.0 * math.pi) - u

    def sample(self, eta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(eta.shape, generator=generator, device=eta.device, dtype=eta.dtype)
        return self.offset_gev + torch.exp(eta + self.sigma_log * noise)

    @classmethod
    def from_data(cls, data: TrainingData) -> LogNormalFixedSigma:
        return cls(data.nonzero_std(log_values=True))

    def eta_marginals(self, data: TrainingData) -> tuple[torch.Tensor, float]:
        return data.nonzero_mean(log_values=True, offset_gev=self.offset_gev), self.sigma_log

    def extra_state_dict(self) -> dict[str, float]:
        return {"sigma_log": self.sigma_log, "offset_gev": self.offset_gev}


def zero_skew_offset(values: torch.Tensor, weight: torch.Tensor, iterations: int = 60) -> float:
    """Offset x0 in [0, min(values)) at which log(values - x0) has zero weighted skewness (GeV).

    The classic moment estimator of the three-parameter log-normal's threshold: the skewness of
    log(x - x0) falls monotonically from its value at x0 = 0 to -inf as x0 -> min(x), so
    bisection finds the root. 0 when log(x) is already left-skewed (no threshold to find).
    """
    values, weight = values.to(torch.float64), weight.to(torch.float64)
    lo, hi = 0.0, float(values.min())
    if not hi > 0:
        raise ModelError(f"ET threshold: non-zero pixel values must be > 0, the smallest is {hi} GeV")

    def skew(x0: float) -> float:
        u = (values - x0).log()
        d = u - (weight * u).sum() / weight.sum()
        m2, m3 = (weight * d**2).sum() / weight.sum(), (weight * d**3).sum() / weight.sum()
        return float(m3 / m2.clamp_min(1e-300) ** 1.5)

    if skew(0.0) <= 0:
        return 0.0
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if skew(mid) > 0 else (lo, mid)
    return lo


class LogNormalThreshold(LogNormalFixedSigma):
    """Three-parameter log-normal: x = x0 + exp(N(eta, s)), x0 the detector's ET threshold (GeV).

    Delphes writes a tower only above its energy thresholds, so non-zero pixel values start at a
    hard lower edge (~0.45 GeV on the project's card); a plain log-normal puts mass below it and,
    matched to the data's log moments, too much in the high tail. x0 is estimated from the training
    images (`zero_skew_offset`: log(x - x0) symmetric), s is the std of log(x - x0); samples are
    never below x0.
    """

    name = "lognormal_threshold"

    @classmethod
    def from_data(cls, data: TrainingData) -> LogNormalThreshold:
        values, weight = data.nonzero_values()
        if values.numel() < 3:
            raise ModelError(
                f"lognormal_threshold likelihood: the training images of sample '{data.sample}' have "
                f"{values.numel()} non-zero pixels; estimating an ET threshold needs at least 3"
            )
        offset = zero_skew_offset(values, weight)
        return cls(data.nonzero_std(log_values=True, offset_gev=offset), offset)


#: pseudo-count (weighted images) pulling a pixel's starting width/shape towards the pooled one
PRIOR_COUNT = 5.0
#: learned sigma never goes below this fraction of the global std of non-zero values (no collapse
#: onto a single training value, where the likelihood would be unbounded)
SIGMA_FLOOR_FRACTION = 0.05
#: smallest gamma shape (alpha -> 0 piles all mass at 0, an unbounded density there)
ALPHA_FLOOR = 0.05
#: rejection rounds after which Marsaglia-Tsang gamma sampling gives up (each accepts > 95%)
MAX_GAMMA_ROUNDS = 100


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """softplus^-1(y) = log(exp(y) - 1) for y > 0, without overflow."""
    return y + torch.log(-torch.expm1(-y))


def _at(values: torch.Tensor, pixels: torch.Tensor | None) -> torch.Tensor:
    """Per-pixel settings (D,) aligned with the last dimension: as they are, or gathered at `pixels`."""
    return values if pixels is None else values[pixels]


def _check_pixels(n_pixels: int, floor: float, what: str) -> None:
    if int(n_pixels) < 1:
        raise ModelError(f"{what}: n_pixels must be >= 1, got {n_pixels}")
    if not (math.isfinite(floor) and floor > 0):
        raise ModelError(f"{what}: the floor must be a positive number, got {floor}")


def standard_gamma(alpha: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Gamma(alpha, 1) draws (Marsaglia & Tsang 2000) from the seeded `generator`, elementwise in alpha.

    torch's own gamma sampler ignores torch.Generator objects, so it cannot give seeded streams.
    Every rejection round draws a full-shape batch (vectorised; rounds end when all are accepted),
    and alpha < 1 uses Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha).
    """
    kw = {"generator": generator, "device": alpha.device, "dtype": alpha.dtype}
    boost = alpha < 1
    d = torch.where(boost, alpha + 1.0, alpha) - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.zeros_like(alpha)
    todo = torch.ones_like(alpha, dtype=torch.bool)
    for _ in range(MAX_GAMMA_ROUNDS):
        n = torch.randn(alpha.shape, **kw)
        u = torch.rand(alpha.shape, **kw)
        v = (1.0 + c * n) ** 3
        ok = (v > 0) & (torch.log(u) < 0.5 * n * n + d - d * v + d * torch.log(v.clamp_min(1e-30)))
        out = torch.where(todo & ok, d * v, out)
        todo = todo & ~ok
        if not bool(todo.any()):
            break
    else:
        raise ModelError(f"gamma sampling did not converge in {MAX_GAMMA_ROUNDS} rounds (shape alpha invalid?)")
    u = torch.rand(alpha.shape, **kw)
    return torch.where(boost, out * u.clamp_min(1e-30) ** (1.0 / alpha), out)


class GaussianLearnedSigma(NonZeroLikelihood):
    """N(x; eta, sigma_i) with a trained per-pixel sigma_i (GeV) = floor + softplus(raw_i).

    Exponential-family form as for the fixed sigma, with the per-pixel 1 / sigma_i^2 inside:
    T = x, g = eta / sigma^2, h = -x^2 / (2 sigma^2), c = -eta^2 / (2 sigma^2) - log sigma - log sqrt(2 pi).
    """

    name = "gaussian_learned_sigma"

    def __init__(self, n_pixels: int, sigma_floor_gev: float, sigma_init_gev: float = 1.0) -> None:
        super().__init__()
        _check_pixels(n_pixels, sigma_floor_gev, "gaussian_learned_sigma")
        self.n_pixels, self.sigma_floor_gev = int(n_pixels), float(sigma_floor_gev)
        self.raw_sigma = nn.Parameter(torch.zeros(self.n_pixels))
        self.set_sigma(torch.full((self.n_pixels,), max(float(sigma_init_gev), 2.0 * self.sigma_floor_gev)))

    def sigma(self, pixels: torch.Tensor | None = None) -> torch.Tensor:
        """(D,) per-pixel sigma in GeV (or at `pixels`)."""
        return self.sigma_floor_gev + F.softplus(_at(self.raw_sigma, pixels))

    def set_sigma(self, sigma_gev: torch.Tensor) -> None:
        """Set the per-pixel sigma (GeV); values at or below the floor go just above it."""
        excess = (sigma_gev.to(torch.float64) - self.sigma_floor_gev).clamp_min(1e-3 * self.sigma_floor_gev)
        with torch.no_grad():
            self.raw_sigma.copy_(_inverse_softplus(excess))

    def data_stats(self, x: torch.Tensor, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        inv_var = self.sigma() ** -2  # (D,)
        return [x], -0.5 * (x * x * inv_var).sum(dim=1)  # x is 0 where z = 0

    def natural_params(self, eta: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        sigma = self.sigma()
        inv_var = sigma**-2
        return [eta * inv_var], -0.5 * inv_var * eta * eta - torch.log(sigma) - 0.5 * math.log(2.0 * math.pi)

    def log_prob(self, x: torch.Tensor, eta: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        s = self.sigma(pixels)
        return -0.5 * ((x - eta) / s) ** 2 - torch.log(s) - 0.5 * math.log(2.0 * math.pi)

    def sample(self, eta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(eta.shape, generator=generator, device=eta.device, dtype=eta.dtype)
        return eta + self.sigma().to(eta.dtype) * noise

    @classmethod
    def from_data(cls, data: TrainingData) -> GaussianLearnedSigma:
        global_std = data.nonzero_std()
        if not (math.isfinite(global_std) and global_std > 0):
            raise ModelError(
                f"learned-sigma Gaussian: std of the non-zero pixel values is {global_std}; the training images "
                "need at least two different non-zero pixel values"
            )
        lik = cls(data.n_pixels, SIGMA_FLOOR_FRACTION * global_std, global_std)
        lik.set_sigma(data.nonzero_pixel_var(PRIOR_COUNT).sqrt())
        return lik

    def eta_marginals(self, data: TrainingData) -> tuple[torch.Tensor, float]:
        return data.nonzero_mean(), data.nonzero_std()

    def extra_state_dict(self) -> dict[str, float]:
        return {"n_pixels": self.n_pixels, "sigma_floor_gev": self.sigma_floor_gev}


class LogNormalThresholdLearnedSigma(GaussianLearnedSigma):
    """x = x0 + exp(N(eta, s_i)): the threshold log-normal with a trained per-pixel width s_i.

    `lognormal_threshold` fixes s to the spread of log(x - x0) over the whole data set. Given
    the generator's eta, less spread is left: the generator already moves eta from image to
    image. Sampling with the global s adds that variation a second time and, as
    E[exp(N(eta, s))] = exp(eta + s^2 / 2), inflates the mean ET (measured on the default
    images: +5% per non-zero pixel, std of log ET 0.83 against 0.76; docs/scale_study.md).
    Here s_i = floor + softplus(raw_i) is trained with the generator, from the global s.
    The matrix form is the learned-sigma Gaussian's in u = log(x - x0), with the Jacobian -u in h.
    """

    name = "lognormal_threshold_learned_sigma"

    def __init__(self, n_pixels: int, sigma_floor_log: float, offset_gev: float, sigma_init_log: float = 1.0) -> None:
        super().__init__(n_pixels, sigma_floor_log, sigma_init_log)
        if not (math.isfinite(offset_gev) and offset_gev >= 0):
            raise ModelError(f"log-normal offset (the ET threshold) must be a finite number >= 0 GeV, got {offset_gev}")
        self.offset_gev = float(offset_gev)

    def _log_excess(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """log((x - x0) / GeV); with z, exactly 0 where z = 0 (no -inf enters the sums)."""
        if z is None:
            return (x - self.offset_gev).log()
        return torch.where(z != 0, x - self.offset_gev, torch.ones_like(x)).log()

    def data_stats(self, x: torch.Tensor, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        u = self._log_excess(x, z)
        return [u], (-0.5 * u * u * self.sigma() ** -2 - u).sum(dim=1)

    def log_prob(self, x: torch.Tensor, eta: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        u = self._log_excess(x)
        return super().log_prob(u, eta, pixels) - u

    def sample(self, eta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.offset_gev + torch.exp(super().sample(eta, generator))

    @classmethod
    def from_data(cls, data: TrainingData) -> LogNormalThresholdLearnedSigma:
        start = LogNormalThreshold.from_data(data)  # x0 and the global s, with its checks
        return cls(data.n_pixels, SIGMA_FLOOR_FRACTION * start.sigma_log, start.offset_gev, start.sigma_log)

    def eta_marginals(self, data: TrainingData) -> tuple[torch.Tensor, float]:
        return data.nonzero_mean(log_values=True, offset_gev=self.offset_gev), float(self.sigma().mean())

    def extra_state_dict(self) -> dict[str, float]:
        return {"n_pixels": self.n_pixels, "sigma_floor_log": self.sigma_floor_gev, "offset_gev": self.offset_gev}


class GammaLearnedShape(NonZeroLikelihood):
    """Gamma(alpha_i, rate alpha_i / mu) for x > 0 (GeV): mean mu = exp(eta), trained per-pixel shape alpha_i.

    log p = (alpha - 1) log x - alpha e^-eta x + alpha log alpha - alpha eta - lgamma(alpha). The
    coefficient of log x does not depend on eta, so it goes into h: T = x, g = -alpha e^-eta,
    h = (alpha - 1) log x, c = alpha log alpha - alpha eta - lgamma(alpha). alpha = floor + softplus(raw).
    """

    name = "gamma"

    def __init__(self, n_pixels: int, alpha_floor: float = ALPHA_FLOOR, alpha_init: float = 1.0) -> None:
        super().__init__()
        _check_pixels(n_pixels, alpha_floor, "gamma")
        self.n_pixels, self.alpha_floor = int(n_pixels), float(alpha_floor)
        self.raw_alpha = nn.Parameter(torch.zeros(self.n_pixels))
        self.set_alpha(torch.full((self.n_pixels,), float(alpha_init)))

    def alpha(self, pixels: torch.Tensor | None = None) -> torch.Tensor:
        """(D,) per-pixel shape (or at `pixels`)."""
        return self.alpha_floor + F.softplus(_at(self.raw_alpha, pixels))

    def set_alpha(self, alpha: torch.Tensor) -> None:
        """Set the per-pixel shape; values at or below the floor go just above it."""
        excess = (alpha.to(torch.float64) - self.alpha_floor).clamp_min(1e-3 * self.alpha_floor)
        with torch.no_grad():
            self.raw_alpha.copy_(_inverse_softplus(excess))

    def data_stats(self, x: torch.Tensor, z: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        log_x = torch.where(z != 0, x, torch.ones_like(x)).log()  # exactly 0 where the pixel is zero
        return [x], (log_x * (self.alpha() - 1.0)).sum(dim=1)

    def natural_params(self, eta: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        a = self.alpha()
        return [-a * torch.exp(-eta)], a * torch.log(a) - a * eta - torch.lgamma(a)

    def log_prob(self, x: torch.Tensor, eta: torch.Tensor, pixels: torch.Tensor | None = None) -> torch.Tensor:
        a = self.alpha(pixels)
        return (a - 1.0) * x.log() - a * torch.exp(-eta) * x + a * torch.log(a) - a * eta - torch.lgamma(a)

    def sample(self, eta: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        a = self.alpha().to(eta.dtype).expand(eta.shape)
        return standard_gamma(a, generator) * torch.exp(eta) / a

    @classmethod
    def from_data(cls, data: TrainingData) -> GammaLearnedShape:
        lik = cls(data.n_pixels, ALPHA_FLOOR)
        lik.set_alpha(1.0 / data.nonzero_pixel_var(PRIOR_COUNT, relative=True).clamp_min(1e-6))
        return lik

    def eta_marginals(self, data: TrainingData) -> tuple[torch.Tensor, float]:
        scale = data.nonzero_std(log_values=True)
        if not (math.isfinite(scale) and scale > 0):
            raise ModelError(
                f"gamma likelihood: std of log of the non-zero pixel values is {scale}; the training images need "
                "at least two different non-zero pixel values"
            )
        return data.nonzero_mean().log(), scale

    def extra_state_dict(self) -> dict[str, float]:
        return {"n_pixels": self.n_pixels, "alpha_floor": self.alpha_floor}


LIKELIHOODS: dict[str, type[NonZeroLikelihood]] = {
    GaussianFixedSigma.name: GaussianFixedSigma,
    LogNormalFixedSigma.name: LogNormalFixedSigma,
    LogNormalThreshold.name: LogNormalThreshold,
    GaussianLearnedSigma.name: GaussianLearnedSigma,
    GammaLearnedShape.name: GammaLearnedShape,
    LogNormalThresholdLearnedSigma.name: LogNormalThresholdLearnedSigma,
}


def build_likelihood(name: str, **settings: float) -> NonZeroLikelihood:
    """The likelihood called `name` with its fixed settings (e.g. sigma_gev, sigma_log, n_pixels).

    Trained likelihood parameters start at defaults; `load_state_dict` restores them.
    """
    if name not in LIKELIHOODS:
        raise ModelError(f"unknown likelihood '{name}'; choose one of {sorted(LIKELIHOODS)}")
    try:
        return LIKELIHOODS[name](**settings)
    except TypeError as exc:
        raise ModelError(f"likelihood '{name}' got settings {sorted(settings)} it does not take ({exc})") from None

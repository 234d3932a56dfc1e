"""Generators: noise (K, noise_dim) -> per-pixel logit(pi) (K, D) and eta (K, D), D = npix^2.

Two 4-layer networks (the paper found both give similar results):
- `fc`:     Linear -> Linear -> Linear -> Linear(2 D)
- `deconv`: Linear(to C x npix/8 x npix/8) -> 3 transposed convolutions, each doubling the
            image size, the last one giving 2 channels (logit, eta).
Both end with a per-pixel offset initialised from the data marginals (logit of the pixel
occupancy, standardised mean non-zero ET), so training starts at the independent-pixel
model, and a fixed scale that maps the network's O(1) outputs to GeV.

pT-conditional generators (`conditional`) also take the muon pT, standardised with the
training set's weighted mean and std. The network body still sees only the noise; the pT
enters through three per-pixel maps (FiLM-like), each a combination of COND_RANK learned
spatial maps with weights from a small MLP of the pT (low rank keeps the pT dependence smooth
and cheap to fit from a few thousand images; the maps start at zero):
- the occupancy is parametrised by the Poisson rate of the pixel, pi = 1 - exp(-lambda)
  (complementary log-log link), and pT multiplies it: log lambda = body + offset + c(pT);
- eta = center + scale * ((body + offset) * (1 + a(pT)) + d(pT)).
Because lambda(noise, pT) = lambda(noise) * exp(c(pT)), the log-probability of the zero pixels,
-sum_i lambda_i, of B images against K noise draws is one (B, D) @ (D, K) product, and only the
few non-zero pixels need per-(image, draw) terms: the body runs once on the K noise vectors and
no (B, K, D) tensor is formed (`objectives.conditional_log_likelihood_matrix`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ModelError

ARCHS = ("fc", "deconv")
#: The last layer starts with weights this much larger than torch's default, so that different
#: noise gives clearly different (pi, eta). A generator whose output barely depends on the noise
#: sits next to the collapsed independent-pixel solution, from which the `bound` objective
#: escapes only very slowly (the gain from splitting scales like occupancy^2). Measured on the
#: 16-pixel one-hot toy: gain 1 stays collapsed (37% one-hot), gain 10 reaches > 90%.
OUTPUT_INIT_GAIN = 10.0
#: hidden units of the pT-conditioning MLP (1 -> H -> H -> 3 COND_RANK weights of the spatial maps)
COND_HIDDEN = 16
#: learned spatial maps per conditioned quantity (log rate, eta gain, eta shift). Measured on the real
#: background images: free per-pixel maps (an MLP to 3 D outputs) fitted the training bound better but
#: generated worse isolation than no pT maps at all (over-fitting a weak dependence).
COND_RANK = 2
#: above this Poisson rate logit(pi) = log(expm1(lambda)) is lambda to float64 precision
_RATE_LOGIT_LINEAR = 30.0


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild a generator (recorded in model.pt)."""

    arch: str  # fc | deconv
    npix: int  # image side in pixels
    noise_dim: int  # size of the Gaussian noise vector
    width: int  # hidden units (fc) or channels of the first deconv feature map
    conditional: bool = False  # also takes the muon pT (records without it are unconditional)

    def check(self) -> None:
        """Raise ModelError on a combination that cannot be built."""
        if self.arch not in ARCHS:
            raise ModelError(f"unknown generator arch '{self.arch}'; choose one of {ARCHS}")
        if self.npix < 1 or self.noise_dim < 1 or self.width < 1:
            raise ModelError(f"npix, noise_dim and width must be positive, got {self}")
        if not isinstance(self.conditional, bool):
            raise ModelError(f"training setting 'conditional' must be true or false, got {self.conditional!r}")
        if self.arch == "deconv" and (self.npix % 8 or self.width % 4):
            raise ModelError(
                f"the deconv generator needs npix divisible by 8 and width divisible by 4, got npix={self.npix}, "
                f"width={self.width}; use arch 'fc' or change width"
            )


def log_rate_to_logit(log_rate: torch.Tensor) -> torch.Tensor:
    """logit(pi) for pi = 1 - exp(-lambda), lambda = exp(log_rate): log(expm1(lambda)), stable at both ends."""
    lo = log_rate.clamp(max=-15.0)  # tiny rate: log(expm1(l)) = log l + l / 2 + O(l^2)
    hi = log_rate.clamp(-15.0, math.log(_RATE_LOGIT_LINEAR))
    lam_hi = torch.exp(hi)
    mid = torch.log(torch.expm1(lam_hi))
    big = torch.exp(log_rate.clamp(min=math.log(_RATE_LOGIT_LINEAR)))  # huge rate: logit = lambda
    return torch.where(log_rate < -15.0, lo + 0.5 * torch.exp(lo),
                       torch.where(log_rate > math.log(_RATE_LOGIT_LINEAR), big, mid))


def log_occupied(log_rate: torch.Tensor) -> torch.Tensor:
    """log pi = log(1 - exp(-lambda)), lambda = exp(log_rate), finite values and gradients everywhere."""
    lo = log_rate.clamp(max=-15.0)  # log(1 - e^-l) = log l - l / 2 + O(l^2)
    hi = log_rate.clamp(-15.0, 20.0)  # above 20, 1 - e^-lambda is 1 in float64
    return torch.where(log_rate < -15.0, lo - 0.5 * torch.exp(lo), torch.log(-torch.expm1(-torch.exp(hi))))


@dataclass
class CrossParams:
    """K noise draws against B muon pTs (conditional training), factorised so no (B, K, D) tensor exists.

    Image b scored against draw k has Poisson rate lambda_bki = exp(log_rate_ki + rate_shift_bi) and
    eta_bki = eta_base_ki * eta_gain_bi + eta_bias_bi (eta in the likelihood's units).
    """

    log_rate: torch.Tensor  # (K, D)
    eta_base: torch.Tensor  # (K, D)
    rate_shift: torch.Tensor  # (B, D)
    eta_gain: torch.Tensor  # (B, D)
    eta_bias: torch.Tensor  # (B, D)


class Generator(nn.Module):
    """Base class: a body producing raw (K, 2, D) outputs, plus per-pixel offsets and GeV scale.

    Unconditional: logit(pi) = raw_0 + logit_offset. Conditional: `logit_offset` holds the log
    Poisson rate instead (pi = 1 - exp(-lambda)) and `cond` maps the standardised pT to the
    per-pixel (log-rate shift, eta gain, eta shift), see the module docstring.
    """

    def __init__(self, spec: GeneratorSpec) -> None:
        super().__init__()
        spec.check()
        self.spec = spec
        d = spec.npix * spec.npix
        self.logit_offset = nn.Parameter(torch.zeros(d))  # (D,) logit(pi), or log lambda if conditional
        self.eta_offset = nn.Parameter(torch.zeros(d))  # (D,) in units of eta_scale
        self.register_buffer("eta_center", torch.tensor(0.0))  # GeV
        self.register_buffer("eta_scale", torch.tensor(1.0))  # GeV
        if spec.conditional:
            h = COND_HIDDEN
            self.cond = nn.Sequential(
                nn.Linear(1, h), nn.LeakyReLU(0.2), nn.Linear(h, h), nn.LeakyReLU(0.2), nn.Linear(h, 3 * COND_RANK),
            )
            # (log rate, eta gain, eta shift) x rank x pixels; zero: start exactly at the unconditional model
            self.cond_maps = nn.Parameter(torch.zeros(3, COND_RANK, d))
            self.register_buffer("pt_center", torch.tensor(0.0))  # GeV, weighted mean training pT
            self.register_buffer("pt_scale", torch.tensor(1.0))  # GeV, weighted std of training pT

    def init_from_marginals(self, occupancy: torch.Tensor, nonzero_mean_gev: torch.Tensor, scale_gev: float) -> None:
        """Start at the independent-pixel model: logit(occupancy) and the mean non-zero ET per pixel."""
        occ = occupancy.to(torch.float64).clamp(1e-4, 1 - 1e-4)
        center = float(nonzero_mean_gev.mean())
        with torch.no_grad():
            if self.spec.conditional:  # log Poisson rate: pi = 1 - exp(-lambda)
                self.logit_offset.copy_(torch.log(-torch.log1p(-occ)))
            else:
                self.logit_offset.copy_(torch.log(occ) - torch.log1p(-occ))
            self.eta_offset.copy_((nonzero_mean_gev.to(torch.float64) - center) / scale_gev)
            self.eta_center.fill_(center)
            self.eta_scale.fill_(scale_gev)

    def set_pt_normalisation(self, mean_gev: float, std_gev: float) -> None:
        """Standardise the pT input with the training set's weighted mean and std (GeV)."""
        if not self.spec.conditional:
            raise ModelError("an unconditional generator takes no muon pT; set training.conditional: true")
        if not (math.isfinite(mean_gev) and math.isfinite(std_gev) and std_gev > 0):
            raise ModelError(f"pT normalisation needs a finite mean and a positive std, got {mean_gev}, {std_gev}")
        self.pt_center.fill_(float(mean_gev))
        self.pt_scale.fill_(float(std_gev))

    def body(self, noise: torch.Tensor) -> torch.Tensor:
        """(K, noise_dim) -> (K, 2, D) raw outputs."""
        raise NotImplementedError

    def _base(self, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, noise_dim) -> occupancy parameter (logit or log rate) (K, D), eta in scale units (K, D)."""
        raw = self.body(noise)  # (K, 2, D)
        return raw[:, 0] + self.logit_offset, raw[:, 1] + self.eta_offset

    def condition(self, pt_gev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B,) muon pT (GeV) -> log-rate shift c, eta gain 1 + a, eta shift d (scale units), each (B, D)."""
        if not self.spec.conditional:
            raise ModelError("an unconditional generator takes no muon pT; set training.conditional: true")
        if pt_gev.ndim != 1:
            raise ModelError(f"muon pT must be a 1-d tensor (one pT per image), got shape {tuple(pt_gev.shape)}")
        u = ((pt_gev.to(self.pt_center.dtype) - self.pt_center) / self.pt_scale)[:, None]  # (B, 1)
        weights = self.cond(u).view(pt_gev.shape[0], 3, COND_RANK)  # (B, 3, R)
        c, a, d = torch.einsum("bqr,qrd->bqd", weights, self.cond_maps).unbind(1)  # each (B, D)
        return c, 1.0 + a, d

    def forward(self, noise: torch.Tensor, pt_gev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, noise_dim) [and (K,) pT in GeV if conditional] -> logit(pi) (K, D), eta (K, D) in GeV."""
        occ, e = self._base(noise)
        if not self.spec.conditional:
            if pt_gev is not None:
                raise ModelError("an unconditional generator takes no muon pT; set training.conditional: true")
            return occ, self.eta_center + self.eta_scale * e
        if pt_gev is None or tuple(pt_gev.shape) != (noise.shape[0],):
            raise ModelError(
                f"a pT-conditional generator needs one muon pT per noise vector ({noise.shape[0]}), got "
                f"{None if pt_gev is None else tuple(pt_gev.shape)}"
            )
        c, gain, d = self.condition(pt_gev)
        return log_rate_to_logit(occ + c), self.eta_center + self.eta_scale * (e * gain + d)

    def cross(self, noise: torch.Tensor, pt_gev: torch.Tensor) -> CrossParams:
        """K noise vectors (K, noise_dim) against B pTs (B,): the factorised parameters of all B x K pairs.

        The body runs once on the K noise vectors and the pT MLP once on the B pTs.
        """
        occ, e = self._base(noise)
        c, gain, d = self.condition(pt_gev)
        return CrossParams(log_rate=occ, eta_base=e, rate_shift=c, eta_gain=self.eta_scale * gain,
                           eta_bias=self.eta_center + self.eta_scale * d)


def _init_last(layer: nn.Module) -> None:
    """Last layer: wide spread over noise (OUTPUT_INIT_GAIN), zero bias (offsets hold the marginals)."""
    with torch.no_grad():
        layer.weight.mul_(OUTPUT_INIT_GAIN)
        layer.bias.zero_()


class FCGenerator(Generator):
    """4 fully connected layers: noise -> W -> W -> W -> 2 D."""

    def __init__(self, spec: GeneratorSpec) -> None:
        super().__init__(spec)
        w, d = spec.width, spec.npix * spec.npix
        self.net = nn.Sequential(
            nn.Linear(spec.noise_dim, w), nn.LeakyReLU(0.2),
            nn.Linear(w, w), nn.LeakyReLU(0.2),
            nn.Linear(w, w), nn.LeakyReLU(0.2),
            nn.Linear(w, 2 * d),
        )
        _init_last(self.net[-1])

    def body(self, noise: torch.Tensor) -> torch.Tensor:
        return self.net(noise).view(noise.shape[0], 2, -1)  # (K, 2, D)


class DeconvGenerator(Generator):
    """Linear to (C, n/8, n/8), then 3 transposed convolutions: C -> C/2 -> C/4 -> 2 channels."""

    def __init__(self, spec: GeneratorSpec) -> None:
        super().__init__(spec)
        c, s = spec.width, spec.npix // 8
        self.start = (c, s)
        self.fc = nn.Sequential(nn.Linear(spec.noise_dim, c * s * s), nn.LeakyReLU(0.2))
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (c/2, 2s, 2s)
            nn.ConvTranspose2d(c // 2, c // 4, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (c/4, 4s, 4s)
            nn.ConvTranspose2d(c // 4, 2, 4, stride=2, padding=1),  # (2, npix, npix)
        )
        _init_last(self.deconv[-1])

    def body(self, noise: torch.Tensor) -> torch.Tensor:
        c, s = self.start
        h = self.fc(noise).view(noise.shape[0], c, s, s)
        if h.device.type == "cpu" and not torch.is_grad_enabled():
            # sampling on the CPU: oneDNN's channels-last transposed convolutions are ~1.5x faster and give the
            # same bits (tests/model/test_sampling_speed.py); training keeps the default layout
            h = h.contiguous(memory_format=torch.channels_last)
        return self.deconv(h).flatten(2)  # (K, 2, D)


def build_generator(spec: GeneratorSpec) -> Generator:
    """The generator described by `spec` (randomly initialised from torch's global RNG)."""
    spec.check()
    return {"fc": FCGenerator, "deconv": DeconvGenerator}[spec.arch](spec)


def n_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)

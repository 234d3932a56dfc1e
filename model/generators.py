"""Generators: noise (K, noise_dim) -> per-pixel logit(pi) (K, D) and eta (K, D), D = npix^2.

Two 4-layer networks (the paper found both give similar results):
- `fc`:     Linear -> Linear -> Linear -> Linear(2 D)
- `deconv`: Linear(to C x npix/8 x npix/8) -> 3 transposed convolutions, each doubling the
            image size, the last one giving 2 channels (logit, eta).
Both end with a per-pixel offset initialised from the data marginals (logit of the pixel
occupancy, standardised mean non-zero ET), so training starts at the independent-pixel
model, and a fixed scale that maps the network's O(1) outputs to GeV.
"""
from __future__ import annotations

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


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild a generator (recorded in model.pt)."""

    arch: str  # fc | deconv
    npix: int  # image side in pixels
    noise_dim: int  # size of the Gaussian noise vector
    width: int  # hidden units (fc) or channels of the first deconv feature map

    def check(self) -> None:
        """Raise ModelError on a combination that cannot be built."""
        if self.arch not in ARCHS:
            raise ModelError(f"unknown generator arch '{self.arch}'; choose one of {ARCHS}")
        if self.npix < 1 or self.noise_dim < 1 or self.width < 1:
            raise ModelError(f"npix, noise_dim and width must be positive, got {self}")
        if self.arch == "deconv" and (self.npix % 8 or self.width % 4):
            raise ModelError(
                f"the deconv generator needs npix divisible by 8 and width divisible by 4, got npix={self.npix}, "
                f"width={self.width}; use arch 'fc' or change width"
            )


class Generator(nn.Module):
    """Base class: a body producing raw (K, 2, D) outputs, plus per-pixel offsets and GeV scale."""

    def __init__(self, spec: GeneratorSpec) -> None:
        super().__init__()
        spec.check()
        self.spec = spec
        d = spec.npix * spec.npix
        self.logit_offset = nn.Parameter(torch.zeros(d))  # (D,)
        self.eta_offset = nn.Parameter(torch.zeros(d))  # (D,) in units of eta_scale
        self.register_buffer("eta_center", torch.tensor(0.0))  # GeV
        self.register_buffer("eta_scale", torch.tensor(1.0))  # GeV

    def init_from_marginals(self, occupancy: torch.Tensor, nonzero_mean_gev: torch.Tensor, scale_gev: float) -> None:
        """Start at the independent-pixel model: logit(occupancy) and the mean non-zero ET per pixel."""
        occ = occupancy.to(torch.float64).clamp(1e-4, 1 - 1e-4)
        center = float(nonzero_mean_gev.mean())
        with torch.no_grad():
            self.logit_offset.copy_(torch.log(occ) - torch.log1p(-occ))
            self.eta_offset.copy_((nonzero_mean_gev.to(torch.float64) - center) / scale_gev)
            self.eta_center.fill_(center)
            self.eta_scale.fill_(scale_gev)

    def body(self, noise: torch.Tensor) -> torch.Tensor:
        """(K, noise_dim) -> (K, 2, D) raw outputs."""
        raise NotImplementedError

    def forward(self, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, noise_dim) -> logit(pi) (K, D), eta (K, D) in GeV."""
        raw = self.body(noise)  # (K, 2, D)
        logits = raw[:, 0] + self.logit_offset
        eta = self.eta_center + self.eta_scale * (raw[:, 1] + self.eta_offset)
        return logits, eta


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
        return self.deconv(h).flatten(2)  # (K, 2, D)


def build_generator(spec: GeneratorSpec) -> Generator:
    """The generator described by `spec` (randomly initialised from torch's global RNG)."""
    spec.check()
    return {"fc": FCGenerator, "deconv": DeconvGenerator}[spec.arch](spec)


def n_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)

"""LAGAN-style GAN (de Oliveira, Paganini, Nachman 2017, "Learning Particle Physics by Example").

A comparison model for the decoupled generators, adapted from 25x25 jet images to npix x npix
muon images (npix divisible by 8):

- generator: noise -> Linear -> (c0, n/4, n/4) -> 3x3 conv -> upsample -> two 3x3 locally
  connected layers -> upsample -> 3x3 locally connected layer to 1 channel -> ReLU, in
  units of `scale_gev` (the std of the non-zero training pixel values). The ReLU gives exact
  zeros, which is how the GAN produces sparse images; locally connected layers (one kernel
  per output position, no weight sharing) learn location-dependent structure (the muon sits
  at the image centre).
- discriminator: log(1 + x / scale) -> 3x3 conv -> 3x3 locally connected (stride 2) ->
  3x3 locally connected (stride 2) -> 2x2 average pool -> features, plus minibatch
  discrimination (Salimans et al. 2016) -> real/fake logit.
- training: non-saturating GAN loss, Adam(lr, betas gan_adam_beta1/2: LAGAN's (0.5, 0.999)); the real images' term
  of the discriminator loss carries the training weights. `gan_critic_steps` discriminator
  steps (one per data batch) per generator step; the generator step reuses the batch of fakes
  the discriminator just saw (scored by the updated discriminator), saving a generator pass.
- the generator's output bias starts where each pixel is non-zero about as often as in the
  training data (`init_from_occupancy`, the analogue of the decoupled generator's start at
  the data marginals); from a half-dense start the GAN spends most epochs learning sparsity.
Differences from LAGAN (for CPU cost): no batch normalisation, dropout or auxiliary output;
3x3 instead of 5x5 kernels; one full-resolution locally connected layer instead of two;
fewer channels (c0 = width / 8, conv channels width / 32); locally connected layers keep
their per-position bias.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.seeds import derive_seed

from .batching import generate_in_batches
from .config import TrainConfig
from .data import TrainingData
from .device import resolve_device
from .errors import ModelError
from .training import TIMING_COLUMNS, Batch, TrainResult, run_epochs

log = logging.getLogger(__name__)

MODEL_FORMAT = "sparse-muon-gan-model/1"
OBJECTIVE = "adversarial"  # recorded as the `objective` attribute of generated files
LOG_COLUMNS = ("epoch", "loss", "g_loss", "d_real", "d_fake", "fake_zero_fraction", "data_zero_fraction",
               *TIMING_COLUMNS)
#: channels of the generator's locally connected layers (LAGAN: 6) and of the discriminator's (LAGAN: 8)
G_LC_CHANNELS = 6
D_LC_CHANNELS = 8
#: minibatch discrimination: number of kernels and their dimension (LAGAN: 20 and 10)
MBD_KERNELS = 20
MBD_KERNEL_DIM = 10
#: temperature (in pre-activation units) of the threshold step's surrogate gradient (gan_straight_through)
STRAIGHT_THROUGH_TEMPERATURE = 0.1
#: one-sided label smoothing (Salimans et al. 2016, with minibatch discrimination): the discriminator's
#: target for real images; 1 lets it saturate, and on small samples some seeds then blow the generated ET up
REAL_LABEL = 0.9
#: per-image auxiliary features (share of occupied pixels, log total ET) and their minibatch discrimination
SPARSITY_FEATURES = 2
SPARSITY_MBD_KERNELS = 5
SPARSITY_MBD_KERNEL_DIM = 3
#: the occupied share (~0.01 on these images) is scaled up to the order of the other features
OCCUPANCY_FEATURE_GAIN = 30.0
#: the soft occupancy x / (x + t) uses t = x0 / 4 (x0 the ET threshold): real deposits give >= 0.8
OCCUPANCY_SCALE_OF_THRESHOLD = 0.25
#: ... but t >= scale / OCCUPANCY_MAX_GAIN: its slope at zero (1 / t) at most this many times that of the
#: log channel (1 / scale). Images with towers spread over cells have non-zero values down to 1e-6 GeV
#: (x0 ~ 1e-3 GeV): t = x0 / 4 made the critic's input slope ~3,600 per GeV at zero and the WGAN-GP
#: penalty ~10^5 from the first step; with it (and the penalty per GeV, see penalty_unit) 5 of 6
#: trainings blew the generated ET up by 10^2-10^3 (docs/models.md). On the default images x0 / 4 is
#: the larger (gain ~24-32): unchanged there.
OCCUPANCY_MAX_GAIN = 40.0
#: the WGAN-GP penalty's unit of image ET is min(scale, this) (penalty_unit)
PENALTY_UNIT_MAX_GEV = 1.0
#: the data's ET threshold x0: this quantile of the non-zero training values (robust to a few odd values)
THRESHOLD_QUANTILE = 0.01
#: noise draws over which the occupancy calibration (calibrate_occupancy) measures each pixel's pre-activation
CALIBRATION_DRAWS = 16384
#: noise vectors used to measure the generator's output statistics for the occupancy init
OCCUPANCY_INIT_NOISE = 512


class LocallyConnected2d(nn.Module):
    """A convolution without weight sharing: each output position has its own kernel and bias.

    Input (B, C, n, n) -> output (B, O, m, m), m = (n + 2 padding - kernel) // stride + 1.
    Vectorised: one index_select gathers every position's receptive field as (L, C k k, B)
    (L = m^2 positions), then one batched matrix product with the (L, O, C k k) weights. This is
    ~5x faster on a CPU than F.unfold, whose (B, C k k, L) layout needs a transposing copy.
    """

    def __init__(self, in_channels: int, out_channels: int, in_size: int, kernel_size: int, *, stride: int = 1,
                 padding: int = 0, bias: bool = True, init: str = "he", spectral_norm: bool = False) -> None:
        super().__init__()
        out_size = (in_size + 2 * padding - kernel_size) // stride + 1
        if out_size < 1 or stride < 1 or padding < 0:
            raise ModelError(f"locally connected layer: input {in_size} px, kernel {kernel_size}, stride {stride}, "
                             f"padding {padding} give no output position")
        self.in_channels, self.out_channels, self.in_size, self.out_size = in_channels, out_channels, in_size, out_size
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        fan_in = in_channels * kernel_size * kernel_size
        positions = out_size * out_size
        self.weight = nn.Parameter(torch.empty(positions, out_channels, fan_in))  # (L, O, C k k)
        self.bias = nn.Parameter(torch.zeros(positions, out_channels)) if bias else None  # (L, O)
        with torch.no_grad():
            if init == "he":  # He-uniform, as LAGAN's hidden layers
                bound = math.sqrt(6.0 / fan_in)
                self.weight.uniform_(-bound, bound)
            elif init == "glorot":  # Glorot-normal, as LAGAN's output layer
                self.weight.normal_(0.0, math.sqrt(2.0 / (fan_in + out_channels)))
            else:
                raise ModelError(f"unknown init '{init}' (he | glorot)")
        # flat index into the padded input (C, n + 2p, n + 2p) of input pixel j (order c, di, dj, as
        # F.unfold) of output position l (row-major): (L * C k k,)
        side = in_size + 2 * padding
        k = torch.arange(kernel_size)
        within = (torch.arange(in_channels)[:, None, None] * side * side + k[None, :, None] * side
                  + k[None, None, :]).reshape(-1)
        corner = torch.arange(out_size) * stride
        origin = (corner[:, None] * side + corner[None, :]).reshape(-1)
        self.register_buffer("index", (origin[:, None] + within[None, :]).reshape(-1), persistent=False)
        self.spectral_norm = spectral_norm
        if spectral_norm:  # power-iteration vector of each position's (O, C k k) kernel, part of the state
            self.register_buffer("sn_u", F.normalize(torch.randn(positions, out_channels), dim=1))

    def kernels(self) -> torch.Tensor:
        """(L, O, C k k) kernels; with spectral_norm each divided by its largest singular value.

        One power iteration per training forward pass (Miyato et al. 2018). As every input pixel
        feeds at most ceil(k / stride)^2 positions, the layer's Lipschitz constant is then
        <= ceil(k / stride) (the bias aside).
        """
        if not self.spectral_norm:
            return self.weight
        w = self.weight
        u = self.sn_u
        if self.training:
            with torch.no_grad():
                v = F.normalize(torch.bmm(u[:, None, :], w).squeeze(1), dim=1)  # (L, J)
                u = F.normalize(torch.bmm(w, v[:, :, None]).squeeze(2), dim=1)  # (L, O)
                self.sn_u.copy_(u)
        v = F.normalize(torch.bmm(u[:, None, :], w).squeeze(1), dim=1).detach()
        sigma = torch.bmm(u[:, None, :], torch.bmm(w, v[:, :, None])).reshape(-1, 1, 1)  # (L, 1, 1)
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1:] != (self.in_channels, self.in_size, self.in_size):
            raise ModelError(f"locally connected layer expects (B, {self.in_channels}, {self.in_size}, "
                             f"{self.in_size}), got {tuple(x.shape)}")
        batch, p = x.shape[0], self.padding
        flat = F.pad(x, (p, p, p, p)).permute(1, 2, 3, 0).reshape(-1, batch)  # (C side side, B)
        weight = self.kernels()
        cols = flat.index_select(0, self.index).view(weight.shape[0], weight.shape[2], batch)  # (L, J, B)
        out = torch.bmm(weight, cols)  # (L, O, B)
        if self.bias is not None:
            out = out + self.bias[:, :, None]
        return out.permute(2, 1, 0).reshape(batch, self.out_channels, self.out_size, self.out_size)


class MinibatchDiscrimination(nn.Module):
    """Features measuring how close each sample is to the others of its batch (Salimans et al. 2016).

    f (B, A) -> M = f T reshaped (B, kernels, dim); o_bk = sum_{j != b} exp(-||M_bk - M_jk||_1).
    A generator that collapses to few outputs gives large o, which the discriminator can see.
    """

    def __init__(self, in_features: int, kernels: int = MBD_KERNELS, kernel_dim: int = MBD_KERNEL_DIM, *,
                 average: bool = False) -> None:
        super().__init__()
        self.kernels, self.kernel_dim, self.average = kernels, kernel_dim, average
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) / math.sqrt(in_features))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = (f @ self.T).view(f.shape[0], self.kernels, self.kernel_dim).transpose(0, 1)  # (k, B, d)
        dist = torch.cdist(m, m, p=1)  # (k, B, B) L1 distances; ~6x faster than a (B, B, k, d) difference at B = 256
        o = torch.exp(-dist).sum(dim=2).t() - 1.0  # (B, k); minus the sample's own exp(0) = 1
        # average: o / (B - 1), the same scale at any batch size (the sum grows with B: up to B - 1)
        return o / max(f.shape[0] - 1, 1) if self.average else o


@dataclass(frozen=True)
class GanSpec:
    """Everything needed to rebuild generator and discriminator (recorded in model.pt)."""

    npix: int
    noise_dim: int
    width: int  # channels of the generator's projected map = width // 8; conv channels = width // 32
    scale_gev: float  # generator output unit and discriminator input scale: std of non-zero pixel values
    threshold_gev: float = 0.0  # > 0: generated non-zero pixels start at this ET (gan_threshold_output); 0: ReLU

    def check(self) -> None:
        """Raise ModelError on a combination that cannot be built."""
        if self.npix < 8 or self.npix % 8:
            raise ModelError(f"the gan family needs images with npix divisible by 8 (>= 8), got npix={self.npix}")
        if self.noise_dim < 1 or self.width < 32:
            raise ModelError(f"family 'gan' needs training settings width >= 32 (its channels are width / 8 and "
                             f"width / 32) and noise_dim >= 1, got width={self.width}, noise_dim={self.noise_dim}")
        if not (math.isfinite(self.scale_gev) and self.scale_gev > 0):
            raise ModelError(f"gan scale (std of non-zero training pixel values) must be > 0, got {self.scale_gev}; "
                             "the training images need at least two different non-zero values")
        if not (math.isfinite(self.threshold_gev) and self.threshold_gev >= 0):
            raise ModelError(f"gan output threshold must be a finite ET >= 0 GeV, got {self.threshold_gev}")

    @property
    def channels(self) -> tuple[int, int]:
        return self.width // 8, self.width // 32


class LaganGenerator(nn.Module):
    """noise (K, noise_dim) -> images (K, npix, npix) in GeV, >= 0 with exact zeros (ReLU output)."""

    def __init__(self, spec: GanSpec) -> None:
        super().__init__()
        spec.check()
        self.spec = spec
        n, (c0, c1) = spec.npix, spec.channels
        self.project = nn.Linear(spec.noise_dim, c0 * (n // 4) ** 2)
        self.conv = nn.Conv2d(c0, c1, 3, padding=1)
        nn.init.kaiming_uniform_(self.conv.weight, nonlinearity="leaky_relu")
        self.lc1 = LocallyConnected2d(c1, G_LC_CHANNELS, n // 2, 3, padding=1)
        self.lc2 = LocallyConnected2d(G_LC_CHANNELS, G_LC_CHANNELS, n // 2, 3, padding=1)
        self.out = LocallyConnected2d(G_LC_CHANNELS, 1, n, 3, padding=1, init="glorot")
        self.register_buffer("scale_gev", torch.tensor(float(spec.scale_gev)))
        #: training only (gan_straight_through): gradients also reach pixels the output switched off
        self.straight_through = False

    def pre_activation(self, noise: torch.Tensor) -> torch.Tensor:
        """(K, npix, npix) output before the ReLU (in units of scale_gev)."""
        n, c0 = self.spec.npix, self.spec.channels[0]
        h = self.project(noise).view(noise.shape[0], c0, n // 4, n // 4)
        h = F.interpolate(F.leaky_relu(self.conv(h), 0.2), scale_factor=2, mode="nearest")  # (c1, n/2, n/2)
        h = F.leaky_relu(self.lc1(h), 0.2)
        h = F.interpolate(F.leaky_relu(self.lc2(h), 0.2), scale_factor=2, mode="nearest")  # (6, n, n)
        return self.out(h).squeeze(1)

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        a = self.pre_activation(noise)
        x = F.relu(a) * self.scale_gev  # (K, n, n) GeV, exact zeros
        if self.spec.threshold_gev > 0:  # like the detector: zero, or at least the tower threshold
            x = torch.where(a > 0, x + self.spec.threshold_gev, torch.zeros_like(x))
        if self.straight_through and torch.is_grad_enabled():
            # the same values, but the gradient of a smooth surrogate: a * scale (+ the threshold step smoothed,
            # x0 sigmoid(a / T)). The ReLU's zero gradient for a <= 0 makes a switched-off pixel dead for good:
            # the critic can push pixels off but never on again (the collapse to empty images).
            s = a * self.scale_gev
            if self.spec.threshold_gev > 0:
                s = s + self.spec.threshold_gev * torch.sigmoid(a / STRAIGHT_THROUGH_TEMPERATURE)
            x = x + (s - s.detach())
        return x

    @torch.no_grad()
    def init_from_occupancy(self, occupancy: torch.Tensor, noise: torch.Tensor) -> None:
        """Shift the output layer's per-position bias so pixel i is non-zero for a fraction ~occupancy_i of noise.

        Assumes the pre-activation at each position is roughly Gaussian over the noise (mean m_i,
        std s_i, measured on `noise`): bias_i -= m_i - s_i * Phi^-1(occupancy_i). Like the decoupled
        generator's start at the data marginals; without it the ReLU starts half-dense and the GAN
        spends most of its epochs learning which pixels stay empty.
        """
        pre = self.pre_activation(noise).flatten(1).double()  # (K, D)
        occ = occupancy.to(torch.float64).clamp(1e-3, 1 - 1e-3)
        target = pre.std(dim=0) * torch.distributions.Normal(0.0, 1.0).icdf(occ)
        self.out.bias.sub_((pre.mean(dim=0) - target).to(self.out.bias.dtype)[:, None])


@dataclass(frozen=True)
class CriticOptions:
    """How the discriminator is built (training settings; not needed to sample)."""

    minibatch: bool = True  # minibatch discrimination features (LAGAN); off for the WGAN-GP critic
    minibatch_average: bool = False  # average (not sum) over the batch: feature scale independent of batch size
    spectral_norm: bool = False  # spectral normalisation of every layer
    sparsity_features: bool = False  # soft occupancy channel + per-image sparsity and energy features
    occupancy_scale_gev: float = 1.0  # t of the soft occupancy x / (x + t)


class LaganDiscriminator(nn.Module):
    """images (B, npix, npix) GeV -> real/fake logits (B,) (or critic values), LAGAN-style.

    Options (CriticOptions): minibatch discrimination on the image features; spectral
    normalisation; the auxiliary sparsity terms (after CaloGAN, Paganini et al. 2017): a second
    input channel x / (x + t), which tells exact zeros from small values (log(1 + x / scale) hides
    them), and per image the share of occupied pixels and log total ET, with their own minibatch
    discrimination.
    """

    def __init__(self, spec: GanSpec, options: CriticOptions | None = None) -> None:
        super().__init__()
        spec.check()
        self.spec, self.options = spec, options or CriticOptions()
        opt = self.options
        sn = nn.utils.parametrizations.spectral_norm if opt.spectral_norm else (lambda m: m)
        n, c1 = spec.npix, spec.channels[1]
        channels = 2 if opt.sparsity_features else 1
        self.conv = sn(nn.Conv2d(channels, c1, 3, padding=1))
        self.lc1 = LocallyConnected2d(c1, D_LC_CHANNELS, n, 3, stride=2, padding=1,
                                      spectral_norm=opt.spectral_norm)  # -> n/2
        self.lc2 = LocallyConnected2d(D_LC_CHANNELS, D_LC_CHANNELS, n // 2, 3, stride=2, padding=1,
                                      spectral_norm=opt.spectral_norm)  # -> n/4
        n_features = D_LC_CHANNELS * (n // 8) ** 2  # after 2x2 average pooling
        self.mbd = MinibatchDiscrimination(n_features, average=opt.minibatch_average) if opt.minibatch else None
        n_head = n_features + (MBD_KERNELS if opt.minibatch else 0)
        if opt.sparsity_features:
            self.sparsity_mbd = MinibatchDiscrimination(
                SPARSITY_FEATURES, SPARSITY_MBD_KERNELS, SPARSITY_MBD_KERNEL_DIM, average=opt.minibatch_average,
            ) if opt.minibatch else None
            n_head += SPARSITY_FEATURES + (SPARSITY_MBD_KERNELS if opt.minibatch else 0)
        self.head = sn(nn.Linear(n_head, 1))
        self.register_buffer("scale_gev", torch.tensor(float(spec.scale_gev)))
        self.register_buffer("occupancy_scale_gev", torch.tensor(float(opt.occupancy_scale_gev)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.log1p(x / self.scale_gev)[:, None]  # compress the ET range; zeros stay zeros
        extra: list[torch.Tensor] = []
        if self.options.sparsity_features:
            occ = x / (x + self.occupancy_scale_gev)  # (B, n, n): 0 for zeros, ~1 for real deposits
            h = torch.cat([h, occ[:, None]], dim=1)
            per_image = torch.stack([occ.flatten(1).mean(dim=1) * OCCUPANCY_FEATURE_GAIN,
                                     torch.log1p(x.flatten(1).sum(dim=1) / self.scale_gev)], dim=1)  # (B, 2)
            extra = [per_image] + ([self.sparsity_mbd(per_image)] if self.sparsity_mbd is not None else [])
        h = F.leaky_relu(self.conv(h), 0.2)
        h = F.leaky_relu(self.lc1(h), 0.2)
        h = F.leaky_relu(self.lc2(h), 0.2)
        f = F.avg_pool2d(h, 2).flatten(1)
        parts = [f] + ([self.mbd(f)] if self.mbd is not None else []) + extra
        return self.head(torch.cat(parts, dim=1)).squeeze(1)


@torch.no_grad()
def calibrate_occupancy(generator: LaganGenerator, occupancy: torch.Tensor, *, seed: int,
                        device: torch.device | str = "cpu", draws: int = CALIBRATION_DRAWS,
                        batch_size: int = 1024) -> dict[str, float]:
    """Shift the output bias per pixel so pixel i is non-zero for a fraction occupancy_i of `draws` noise vectors.

    Pixel i is non-zero when its pre-activation a_i > 0, so the shift is the (1 - occupancy_i)
    quantile of a_i over the draws (pixels the data never hit: above every draw). Like the
    decoupled calibration: one constant per pixel, the pixel correlations are untouched; the
    GAN's occupancy drifts as training widens the spread of a_i. Returns a summary for model.pt.
    """
    generator.eval()
    rng = torch.Generator(device=device).manual_seed(int(seed))
    noise_dim = generator.spec.noise_dim
    pre = torch.cat([generator.pre_activation(torch.randn(min(batch_size, draws - start), noise_dim, generator=rng,
                                                          device=device)).flatten(1)
                     for start in range(0, draws, batch_size)]).to(torch.float64)  # (draws, D)
    target = occupancy.to(device=pre.device, dtype=torch.float64)
    ranked, _ = pre.sort(dim=0)
    index = ((1.0 - target) * (draws - 1)).round().long().clamp(0, draws - 1)
    shift = ranked.gather(0, index[None, :])[0]
    never = target <= 0
    shift = torch.where(never, ranked[-1] + 1.0, shift)
    before = float((pre > 0).to(torch.float64).mean())
    generator.out.bias.sub_(shift.to(generator.out.bias.dtype)[:, None])
    summary = {"draws": int(draws), "data_occupancy": float(target.mean()), "occupancy_before": before,
               "occupancy_after": float((pre > shift).to(torch.float64).mean()),
               "max_abs_shift_hit_pixels": float(shift[~never].abs().max()) if bool((~never).any()) else 0.0}
    log.info("gan occupancy calibration: mean occupancy %.5f -> %.5f (data %.5f)", summary["occupancy_before"],
             summary["occupancy_after"], summary["data_occupancy"])
    return summary


def build_gan(spec: GanSpec, seed: int, occupancy: torch.Tensor | None = None,
              options: CriticOptions | None = None) -> tuple[LaganGenerator, LaganDiscriminator]:
    """Generator and discriminator initialised from their own seeded streams (and the data occupancy, if given)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init", "generator"))
        generator = LaganGenerator(spec)
        if occupancy is not None:
            generator.init_from_occupancy(occupancy, torch.randn(OCCUPANCY_INIT_NOISE, spec.noise_dim))
        torch.manual_seed(derive_seed(seed, "init", "discriminator"))
        discriminator = LaganDiscriminator(spec, options)
    return generator, discriminator


def et_threshold(data: TrainingData) -> float:
    """The data's ET threshold (GeV): the THRESHOLD_QUANTILE quantile of the non-zero pixel values."""
    values, _ = data.nonzero_values()
    if values.numel() == 0:
        raise ModelError(f"gan: the training images of sample '{data.sample}' have no non-zero pixel")
    return float(torch.quantile(values, THRESHOLD_QUANTILE))


def gan_spec(cfg: TrainConfig, data: TrainingData) -> GanSpec:
    """The networks cfg describes for these training images; the gan family has one architecture (arch fc)."""
    if cfg.arch != "fc":
        raise ModelError(f"the gan family has one architecture (LAGAN: dense projection + locally connected layers), "
                         f"selected by arch 'fc'; got arch '{cfg.arch}'")
    spec = GanSpec(npix=data.npix, noise_dim=cfg.noise_dim, width=cfg.width, scale_gev=float(data.nonzero_std()),
                   threshold_gev=et_threshold(data) if cfg.gan_threshold_output else 0.0)
    spec.check()
    return spec


def critic_options(cfg: TrainConfig, data: TrainingData) -> CriticOptions:
    """The discriminator cfg describes: the WGAN-GP critic has no minibatch discrimination."""
    return CriticOptions(minibatch=cfg.gan_loss != "wgan_gp", minibatch_average=cfg.gan_minibatch_average,
                         spectral_norm=cfg.gan_spectral_norm,
                         sparsity_features=cfg.gan_sparsity_features,
                         occupancy_scale_gev=occupancy_scale(et_threshold(data), float(data.nonzero_std())))


def occupancy_scale(threshold_gev: float, scale_gev: float) -> float:
    """t of the critic's soft occupancy x / (x + t): x0 / 4, floored at scale / OCCUPANCY_MAX_GAIN."""
    return max(OCCUPANCY_SCALE_OF_THRESHOLD * threshold_gev, scale_gev / OCCUPANCY_MAX_GAIN)


def penalty_unit(scale_gev: float) -> float:
    """The unit (GeV) of the image in which the WGAN-GP critic is held 1-Lipschitz: min(scale, PENALTY_UNIT_MAX_GEV).

    Per GeV (Gulrajani et al.'s penalty on these images) unless the pixel-ET spread is smaller: on
    images with towers over cells (scale ~0.25 GeV) a critic limited to slope 1 per GeV rated generated
    images above real ones and the generated ET blew up; holding it per `scale` on the default images
    (scale 1.5-2 GeV, a 1.5-2x stricter limit) made the background GAN worse in 3 of 3 seeds
    (docs/models.md, "The GAN at scale over three seeds").
    """
    return min(float(scale_gev), PENALTY_UNIT_MAX_GEV)


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor,
                     unit_gev: float = 1.0) -> torch.Tensor:
    """WGAN-GP penalty mean_b (||grad_u critic||_b - 1)^2 at x = eps real + (1 - eps) fake (Gulrajani et al. 2017).

    The gradient is taken with respect to u = x / unit_gev (training uses penalty_unit(scale)): the
    limit on the critic's slope is 1 per unit_gev of pixel ET.
    real, fake (B, n, n); eps (B,) in [0, 1]. Differentiable in the critic's parameters.
    """
    mixed = (eps[:, None, None] * real + (1.0 - eps[:, None, None]) * fake).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) * unit_gev - 1.0) ** 2).mean()


def train(data: TrainingData, cfg: TrainConfig, checkpoint_dir: str | Path | None, *,
          progress: bool = True) -> TrainResult:
    """Train the GAN on `data`, one discriminator step per batch, checkpointing every epoch.

    gan_loss nonsaturating: LAGAN's loss with one-sided label smoothing and, with gan_label_flip,
    randomly flipped labels; wgan_gp: critic loss E[D(fake)] - E_w[D(real)] + lambda GP, generator
    loss -E[D(fake)]. The log's d_real / d_fake are mean D probabilities (nonsaturating) or mean
    critic values (wgan_gp).
    """
    spec = gan_spec(cfg, data)
    device = resolve_device(cfg.device)
    generator, discriminator = build_gan(spec, cfg.seed, data.occupancy(), critic_options(cfg, data))
    generator.to(device)
    discriminator.to(device)
    betas = (float(cfg.gan_adam_beta1), float(cfg.gan_adam_beta2))
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr, betas=betas)
    generator.straight_through = bool(cfg.gan_straight_through)
    every = int(cfg.gan_critic_steps)
    wasserstein = cfg.gan_loss == "wgan_gp"
    flip = float(cfg.gan_label_flip)

    def step(batch: Batch) -> dict[str, torch.Tensor]:
        real, w = batch.x.view(-1, spec.npix, spec.npix), batch.weight
        g_step = (batch.number + 1) % every == 0 or batch.number == batch.n_batches - 1
        noise = torch.randn(real.shape[0], spec.noise_dim, generator=batch.rng, device=device)
        with torch.set_grad_enabled(g_step):
            fake = generator(noise)  # one batch of fakes serves the discriminator step and the generator step
        d_real, d_fake = discriminator(real), discriminator(fake.detach())
        if wasserstein:
            eps = torch.rand(real.shape[0], generator=batch.rng, device=device)
            loss_d = d_fake.mean() - (w * d_real).mean() \
                + cfg.gan_gp_weight * gradient_penalty(discriminator, real, fake.detach(), eps,
                                                           penalty_unit(spec.scale_gev))
        else:
            # -[a log D(real) + (1 - a) log(1 - D(real))] - [b log D(fake) + (1 - b) log(1 - D(fake))]:
            # a = REAL_LABEL, b = 0, each label flipped (a -> 0, b -> 1) with probability gan_label_flip
            target_real = torch.full_like(d_real, REAL_LABEL)
            target_fake = torch.zeros_like(d_fake)
            if flip > 0:
                flips = torch.rand(2, real.shape[0], generator=batch.rng, device=device) < flip
                target_real = torch.where(flips[0], torch.zeros_like(target_real), target_real)
                target_fake = torch.where(flips[1], torch.ones_like(target_fake), target_fake)
            loss_d = (w * (target_real * F.softplus(-d_real) + (1.0 - target_real) * F.softplus(d_real))).mean() \
                + (target_fake * F.softplus(-d_fake) + (1.0 - target_fake) * F.softplus(d_fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        if g_step:
            scored = discriminator(fake)  # the updated discriminator
            loss_g = -scored.mean() if wasserstein else F.softplus(-scored).mean()  # non-saturating: -log D(G(z))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
        d_real, d_fake = d_real.detach(), d_fake.detach()
        return {
            "loss": loss_d.detach(), "g_loss": -d_fake.mean() if wasserstein else F.softplus(-d_fake).mean(),
            "d_real": d_real.mean() if wasserstein else torch.sigmoid(d_real).mean(),
            "d_fake": d_fake.mean() if wasserstein else torch.sigmoid(d_fake).mean(),
            "fake_zero_fraction": (fake == 0).to(torch.float32).mean(),
        }

    data_zero = 1.0 - float(data.occupancy().mean())
    rows, start = run_epochs(
        data, cfg, checkpoint_dir, device=device, modules={"generator": generator, "discriminator": discriminator},
        optimizers={"generator": opt_g, "discriminator": opt_d}, step=step, columns=LOG_COLUMNS,
        static={"data_zero_fraction": data_zero}, progress=progress,
    )
    fixed: dict[str, Any] = {"spec": asdict(spec)}
    if cfg.calibrate_occupancy:  # after the checkpoints: a resumed run trains the uncalibrated model
        fixed["occupancy_calibration"] = calibrate_occupancy(
            generator, data.occupancy(), seed=derive_seed(cfg.seed, "occupancy_calibration"), device=device)
    return TrainResult({"generator": generator, "discriminator": discriminator}, cfg, fixed, rows, str(device), start)


def rebuild(record: dict[str, Any], device: torch.device | str = "cpu") -> LaganGenerator:
    """The trained generator from a model.pt record (what sampling needs)."""
    spec = GanSpec(**record["fixed"]["spec"])
    generator = LaganGenerator(spec)
    generator.load_state_dict(record["modules"]["generator"])
    return generator.to(device).eval()


@torch.no_grad()
def sample_images(generator: LaganGenerator, n: int, *, seed: int, batch_size: int = 4096,
                  device: torch.device | str = "cpu", progress: bool = True) -> np.ndarray:
    """(n, npix, npix) float32 generated images in GeV (>= 0, exact zeros), reproducible for a seed and device."""
    if n < 1:
        raise ModelError(f"number of images to generate must be >= 1, got {n}")
    device = torch.device(device)
    generator = generator.to(device).eval()
    spec = generator.spec
    return generate_in_batches(n, spec.npix, spec.noise_dim, lambda noise, rows, rng: generator(noise), seed=seed,
                               batch_size=batch_size, device=device, progress=progress, desc="sample gan")


def generate(generator: LaganGenerator, n: int, *, seed: int, batch_size: int = 4096,
             device: torch.device | str = "cpu", progress: bool = True, pt_gev: np.ndarray | None = None) -> np.ndarray:
    """(n, npix, npix) float32 images from a rebuilt generator (unconditional: pt_gev must be None)."""
    if pt_gev is not None:
        raise ModelError("the gan family is unconditional; it cannot be sampled at given muon pTs")
    return sample_images(generator, n, seed=seed, batch_size=batch_size, device=device, progress=progress)


def conditional(generator: LaganGenerator) -> bool:
    """The gan family is unconditional."""
    return False


def sample_attrs(record: dict[str, Any]) -> dict[str, Any]:
    """Attributes of a generated file that describe this family's model."""
    return {"objective": OBJECTIVE}

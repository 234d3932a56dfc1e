"""SARM: a sparse autoregressive model (Lu, Collado, Whiteson, Baldi, Phys. Rev. D 103, 036012 (2021)).

In raster order over the npix x npix image, every pixel i gets, from the pixels before it,

    P(x_i != 0 | x_<i) = sigmoid(l_i)   and   p(x_i | x_i != 0, x_<i),

so the image's log-likelihood is exact:  sum_i [z_i log pi_i + (1 - z_i) log(1 - pi_i) + z_i log p(x_i | .)],
z = (x != 0). The non-zero value is a mixture of `sarm_components` Gaussians in t = log(ET / GeV),
truncated to the training data's range [log min ET, log max ET] (normalised over that interval, so
ET never falls below the tower threshold nor beyond the largest training value). Pixels outside the
support (the dR < radius disc plus any pixel non-zero in the training images) are always zero: they
add nothing to the likelihood and are never sampled.

The network is a gated PixelCNN (van den Oord et al. 2016, "Conditional image generation with
PixelCNN decoders") with a vertical and a horizontal stack, which has no blind spot:

- vertical stack: (kernel//2 + 1) x kernel convolutions over the rows up to and including the
  current one; shifted down one row before it enters the horizontal stack, so that pixel (r, c)
  sees only rows < r through it;
- horizontal stack: 1 x (kernel//2) convolutions over the columns left of c (mask type A, first
  layer) and 1 x (kernel//2 + 1) over columns <= c (type B, later layers, with residual);
- per-pixel causal features: the number and the summed ET of the non-zero pixels before i in
  raster order (the event's activity so far, a global context no local kernel sees) and the
  pixel's position, added to every gated layer;
- a 1x1 head to (logit, mixture logits, means, widths), plus a trained per-pixel bias of the logit
  and of the means that starts at the training images' independent-pixel marginals.

Sampling is pixel by pixel, batched over images, with every layer's activations cached: after a
row is drawn the vertical stack advances by one row (one strip convolution per layer), and each
pixel then costs one horizontal-stack position per layer and the head (`sample_images`). Columns
left of a row's support are computed at once (their inputs are known zeros); columns right of it
are never needed. This draws exactly what re-evaluating the full network before every pixel
draws (`sample_images_reference`, the test's reference) from the same random stream.
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
from .config import SARM_ARCH, TrainConfig
from .data import TrainingData
from .device import resolve_device
from .errors import ModelError
from .training import TIMING_COLUMNS, Batch, TrainResult, run_epochs

log = logging.getLogger(__name__)

MODEL_FORMAT = "sparse-muon-sarm-model/1"
OBJECTIVE = "exact_nll"  # recorded as the `objective` attribute of generated files
LOG_COLUMNS = ("epoch", "loss", "nll_zero", "nll_value", "mean_pi", "data_occupancy", *TIMING_COLUMNS)
#: causal per-pixel features: log1p(non-zero pixels before), log1p(ET before / GeV), row, column, radius
N_FEATURES = 5
#: smallest mixture width, in units of the std of log ET (keeps the density bounded)
MIN_WIDTH = 0.02
#: a pixel hit in fewer than this weighted fraction of images starts at this occupancy (finite logit)
MIN_OCCUPANCY = 1e-4


@dataclass(frozen=True)
class SarmSpec:
    """Everything needed to rebuild the network (recorded in model.pt); log ET in log(GeV)."""

    npix: int
    channels: int  # feature maps of each stack
    layers: int  # gated layers
    kernel: int  # odd kernel width of the masked convolutions
    components: int  # Gaussians of the log-ET mixture
    t_mean: float  # weighted mean of log ET over the non-zero training pixels (network input scale)
    t_std: float  # their weighted std
    t_min: float  # log of the smallest non-zero training ET: lower edge of the value density
    t_max: float  # log of the largest: its upper edge

    def check(self) -> None:
        """Raise ModelError naming the setting that cannot be built."""
        if self.kernel < 3 or self.kernel % 2 == 0:
            raise ModelError(f"training setting 'sarm_kernel' must be odd and >= 3, got {self.kernel}")
        for name in ("channels", "layers", "components"):
            if int(getattr(self, name)) < 1:
                raise ModelError(f"training setting 'sarm_{name}' must be >= 1, got {getattr(self, name)}")
        if self.npix < 2:
            raise ModelError(f"the sarm family needs images of at least 2 x 2 pixels, got npix={self.npix}")
        if not (math.isfinite(self.t_std) and self.t_std > 0 and self.t_max > self.t_min):
            raise ModelError(f"sarm: the non-zero training pixel values span log ET [{self.t_min}, {self.t_max}] with "
                             f"std {self.t_std}; the training images need at least two different non-zero values")

    @property
    def bounds(self) -> tuple[float, float]:
        """The value density's edges in the network's normalised units (t - t_mean) / t_std."""
        return (self.t_min - self.t_mean) / self.t_std, (self.t_max - self.t_mean) / self.t_std


def gate(a: torch.Tensor) -> torch.Tensor:
    """Gated activation tanh(a1) * sigmoid(a2) of the two channel halves: (B, 2C, ...) -> (B, C, ...)."""
    a1, a2 = a.chunk(2, dim=1)
    return torch.tanh(a1) * torch.sigmoid(a2)


class GatedLayer(nn.Module):
    """One gated layer of both stacks; `first` makes the horizontal convolution mask type A."""

    def __init__(self, c_in: int, channels: int, kernel: int, first: bool) -> None:
        super().__init__()
        self.first, self.kh, self.w = first, kernel // 2 + 1, kernel // 2
        # vertical: output row r from input rows r-kh+1..r, columns c-w..c+w      (B, c_in, n, n) -> (B, 2C, n, n)
        self.v_conv = nn.Conv2d(c_in, 2 * channels, (self.kh, kernel))
        # the vertical pre-activation of row r-1 into the horizontal stack at row r (no bias: row 0 gets 0)
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1, bias=False)
        # horizontal: type A columns c-w..c-1, type B columns c-w..c            (B, c_in, n, n) -> (B, 2C, n, n)
        self.h_conv = nn.Conv2d(c_in, 2 * channels, (1, self.w if first else self.w + 1))
        self.cond = nn.Conv2d(N_FEATURES, 2 * channels, 1, bias=False)  # causal features (B, F, n, n) -> (B, 2C, n, n)
        self.h_out = nn.Conv2d(channels, channels, 1)  # (B, C, n, n) -> (B, C, n, n)

    def forward(self, v: torch.Tensor, h: torch.Tensor, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = v.shape[-1]
        v_pre = self.v_conv(F.pad(v, (self.w, self.w, self.kh - 1, 0)))  # (B, 2C, n, n): rows <= r
        h_pre = self.h_conv(F.pad(h, (self.w, 0)))[..., :n]  # (B, 2C, n, n): columns < c (A) or <= c (B)
        shifted = F.pad(v_pre, (0, 0, 1, 0))[:, :, :n]  # (B, 2C, n, n): row r holds row r-1, row 0 zeros
        h_new = self.h_out(gate(h_pre + self.v_to_h(shifted) + self.cond(feats)))
        return gate(v_pre), h_new if self.first else h + h_new


class SarmNet(nn.Module):
    """Images -> per-pixel (logit, mixture logits, means, widths) given the pixels before each one.

    forward(x (B, n, n) GeV) -> (B, 1 + 3M, n, n). Means and widths are in normalised log ET,
    (t - t_mean) / t_std. The output at pixel i depends only on pixels before i in raster order.
    """

    def __init__(self, spec: SarmSpec, support: torch.Tensor) -> None:
        super().__init__()
        spec.check()
        self.spec = spec
        n, c, m = spec.npix, spec.channels, spec.components
        if tuple(support.shape) != (n * n,):
            raise ModelError(f"sarm support mask has shape {tuple(support.shape)}, expected ({n * n},)")
        self.layers = nn.ModuleList(GatedLayer(2 if i == 0 else c, c, spec.kernel, i == 0) for i in range(spec.layers))
        # (B, C, n, n) -> (B, 1 + 3M, n, n); the last layer starts at zero, so the model starts at its biases
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(), nn.Conv2d(c, 1 + 3 * m, 1))
        self.pixel_logit = nn.Parameter(torch.zeros(n * n))  # (D,) per-pixel logit bias
        self.pixel_mean = nn.Parameter(torch.zeros(n * n))  # (D,) per-pixel shift of every mixture mean
        self.register_buffer("support", support.to(torch.bool).clone())  # (D,) pixels that may be non-zero
        centre = (n - 1) / 2
        rows = ((torch.arange(n, dtype=torch.float32) - centre) / centre)[:, None].expand(n, n)
        cols = rows.t()
        self.register_buffer("position", torch.stack([rows, cols, torch.hypot(rows, cols)]), persistent=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F, n, n) causal features of every pixel: non-zero count and ET before it (raster order), position."""
        b, n = x.shape[0], self.spec.npix
        flat = x.reshape(b, n * n)
        # exclusive cumulative sums (pixels strictly before), shifted rather than subtracted: no rounding leak
        count = F.pad(torch.cumsum((flat[:, :-1] != 0).to(x.dtype), dim=1), (1, 0))
        et = F.pad(torch.cumsum(flat[:, :-1], dim=1), (1, 0))
        return torch.cat([torch.log1p(count).view(b, 1, n, n), torch.log1p(et).view(b, 1, n, n),
                          self.position.to(x.dtype).expand(b, 3, n, n)], dim=1)

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2, n, n) network input: z = (x != 0) and normalised log ET where z (0 elsewhere)."""
        z = x != 0
        t = torch.where(z, (torch.where(z, x, torch.ones_like(x)).log() - self.spec.t_mean) / self.spec.t_std,
                        torch.zeros_like(x))
        return torch.stack([z.to(x.dtype), t], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = h = self.inputs(x)
        feats = self.features(x)
        for layer in self.layers:
            v, h = layer(v, h, feats)
        out = self.head(h)  # (B, 1 + 3M, n, n)
        return self.add_pixel_bias(out.flatten(2), slice(None)).view_as(out)

    def add_pixel_bias(self, out: torch.Tensor, pixels: slice | torch.Tensor) -> torch.Tensor:
        """out (B, 1 + 3M, P) at the pixels `pixels` (flat indices) plus the per-pixel logit and mean biases."""
        m = self.spec.components
        zeros = torch.zeros_like(self.pixel_logit[pixels])[None].expand(m, -1)
        mean = self.pixel_mean[pixels][None].expand(m, -1)
        return out + torch.cat([self.pixel_logit[pixels][None], zeros, mean, zeros]).to(out.dtype)

    @torch.no_grad()
    def init_from_marginals(self, data: TrainingData) -> None:
        """Start every pixel at the data's independent-pixel fit: its occupancy, its mean log ET, and mixture
        means at quantiles of the pooled log ET (the head's last layer is zero)."""
        spec, m = self.spec, self.spec.components
        occupancy = data.occupancy().clamp(MIN_OCCUPANCY, 1 - MIN_OCCUPANCY)
        self.pixel_logit.copy_(torch.logit(occupancy).to(self.pixel_logit.dtype))
        mean_t = data.nonzero_mean(log_values=True)  # global mean where never hit
        self.pixel_mean.copy_(((mean_t - spec.t_mean) / spec.t_std).to(self.pixel_mean.dtype))
        last = self.head[-1]
        last.weight.zero_()
        last.bias.zero_()
        # component means spread around 0 (the pixel's mean), widths so the mixture covers the pooled spread
        quantiles = torch.distributions.Normal(0.0, 1.0).icdf((torch.arange(m, dtype=torch.float64) + 0.5) / m)
        last.bias[1 + m:1 + 2 * m] = (0.8 * quantiles if m > 1 else quantiles * 0).to(last.bias.dtype)
        width = max(0.6 / math.sqrt(m), 2 * MIN_WIDTH)
        last.bias[1 + 2 * m:] = math.log(math.expm1(width - MIN_WIDTH))


def log_interval_mass(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(Phi(b) - Phi(a)) for a < b, elementwise, accurate in both tails."""
    flip = (a + b) > 0  # Phi(b) - Phi(a) = Phi(-a) - Phi(-b): keep the interval on the negative side
    lo, hi = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_lo, log_hi = torch.special.log_ndtr(lo), torch.special.log_ndtr(hi)
    return log_hi + torch.log1p(-torch.exp(log_lo - log_hi))


@dataclass
class PixelParams:
    """Per-pixel distribution from the head: logit (...), mixture log-weights, means, widths (..., M), normalised."""

    logit: torch.Tensor
    log_weight: torch.Tensor  # log of the truncated mixture's component probabilities (sum to 1)
    mean: torch.Tensor
    width: torch.Tensor
    log_mass: torch.Tensor  # log of each untruncated component's mass inside the bounds

    @classmethod
    def from_head(cls, out: torch.Tensor, spec: SarmSpec) -> PixelParams:
        """out (..., 1 + 3M) in the last dimension."""
        m = spec.components
        lo, hi = spec.bounds
        mean, width = out[..., 1 + m:1 + 2 * m], MIN_WIDTH + F.softplus(out[..., 1 + 2 * m:])
        log_mass = log_interval_mass((lo - mean) / width, (hi - mean) / width)
        log_weight = torch.log_softmax(torch.log_softmax(out[..., 1:1 + m], dim=-1) + log_mass, dim=-1)
        return cls(out[..., 0], log_weight, mean, width, log_mass)

    def value_log_prob(self, t: torch.Tensor) -> torch.Tensor:
        """log density of the normalised log ET t (...) under the truncated mixture."""
        normal = -0.5 * ((t[..., None] - self.mean) / self.width) ** 2 - self.width.log() - 0.5 * math.log(2 * math.pi)
        return torch.logsumexp(self.log_weight - self.log_mass + normal, dim=-1)


def log_likelihood(net: SarmNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact log p(x) per image in nats as (zero/non-zero part (B,), value part (B,)), and pi (B, D); x (B, D) GeV.

    The value part is the density of ET in GeV: the truncated mixture's density of the
    normalised log ET divided by t_std * ET. pi is P(non-zero) of every pixel (0 outside the support).
    """
    spec = net.spec
    b, n = x.shape[0], spec.npix
    params = PixelParams.from_head(net(x.view(b, n, n)).flatten(2).transpose(1, 2), spec)  # (B, D, ...)
    z = x != 0
    safe = torch.where(z, x, torch.ones_like(x))
    t = (safe.log() - spec.t_mean) / spec.t_std
    bern = torch.where(z, F.logsigmoid(params.logit), F.logsigmoid(-params.logit))
    value = params.value_log_prob(t) - math.log(spec.t_std) - safe.log()
    support = net.support.to(x.dtype)
    return ((bern * support).sum(1), torch.where(z, value, torch.zeros_like(value)).sum(1),
            torch.sigmoid(params.logit) * support)


def data_spec(cfg: TrainConfig, data: TrainingData) -> tuple[SarmSpec, torch.Tensor]:
    """The network cfg describes for these images, and the support: disc pixels plus every pixel ever non-zero."""
    if cfg.arch != SARM_ARCH:
        raise ModelError(f"the sarm family has one architecture, arch '{SARM_ARCH}' (gated PixelCNN); got arch "
                         f"'{cfg.arch}'")
    values, weight = data.nonzero_values()
    if values.numel() < 2:
        raise ModelError(f"training images of sample '{data.sample}' have {values.numel()} non-zero pixels; the sarm "
                         "value density needs at least 2")
    t = values.log()
    mean = float((weight * t).sum() / weight.sum())
    std = float(torch.sqrt((weight * (t - mean) ** 2).sum() / weight.sum()))
    spec = SarmSpec(npix=data.npix, channels=int(cfg.sarm_channels), layers=int(cfg.sarm_layers),
                    kernel=int(cfg.sarm_kernel), components=int(cfg.sarm_components), t_mean=mean, t_std=std,
                    t_min=float(t.min()), t_max=float(t.max()))
    spec.check()
    return spec, disc_mask(data.npix) | (data.x != 0).any(dim=0)


def disc_mask(npix: int) -> torch.Tensor:
    """(npix * npix,) bool: pixels whose centre lies inside the image's dR < radius disc (radius = half the width)."""
    centre = (npix - 1) / 2
    offset = torch.arange(npix, dtype=torch.float64) - centre
    return (torch.hypot(offset[:, None], offset[None, :]) < npix / 2).reshape(-1)


def build_net(spec: SarmSpec, support: torch.Tensor, seed: int, data: TrainingData | None = None) -> SarmNet:
    """The network initialised from its own seeded stream (and at the data's marginals, if given)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init", "sarm"))
        net = SarmNet(spec, support)
    if data is not None:
        net.init_from_marginals(data)
    return net


def train(data: TrainingData, cfg: TrainConfig, checkpoint_dir: str | Path | None, *,
          progress: bool = True) -> TrainResult:
    """Train the SARM on the exact negative log-likelihood (weighted mean per image), checkpointing every epoch."""
    spec, support = data_spec(cfg, data)
    device = resolve_device(cfg.device)
    net = build_net(spec, support, cfg.seed, data).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    log.info("sarm: gated PixelCNN, %d layers x %d channels, kernel %d, %d log-ET components, %d parameters, "
             "%d of %d pixels in the support", spec.layers, spec.channels, spec.kernel, spec.components,
             sum(p.numel() for p in net.parameters()), int(support.sum()), support.numel())

    def step(batch: Batch) -> dict[str, torch.Tensor]:
        ll_zero, ll_value, pi = log_likelihood(net, batch.x)
        w = batch.weight
        loss = -(w * (ll_zero + ll_value)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach(), "nll_zero": -(w * ll_zero.detach()).mean(),
                "nll_value": -(w * ll_value.detach()).mean(), "mean_pi": pi.detach().mean()}

    rows, start = run_epochs(
        data, cfg, checkpoint_dir, device=device, modules={"net": net}, optimizers={"net": optimizer}, step=step,
        columns=LOG_COLUMNS, static={"data_occupancy": float(data.occupancy().mean())}, progress=progress,
    )
    return TrainResult({"net": net}, cfg, {"spec": asdict(spec)}, rows, str(device), start)


def rebuild(record: dict[str, Any], device: torch.device | str = "cpu") -> SarmNet:
    """The trained network from a model.pt record."""
    spec = SarmSpec(**record["fixed"]["spec"])
    state = record["modules"]["net"]
    net = SarmNet(spec, state["support"])
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelError(f"sarm network parameters do not match its spec ({exc}); retrain the model") from None
    return net.to(device).eval()


def draw_pixel(out: torch.Tensor, spec: SarmSpec, u: torch.Tensor) -> torch.Tensor:
    """ET (B,) in GeV drawn at one pixel from the head's output (B, 1 + 3M) and uniforms u (B, 3).

    u[:, 0] decides zero / non-zero, u[:, 1] the mixture component, u[:, 2] the value (inverse
    CDF of the component's Gaussian truncated to the data's log-ET range). Computed in float64.
    """
    p = PixelParams.from_head(out.to(torch.float64), spec)
    nonzero = u[:, 0] < torch.sigmoid(p.logit)
    cdf = torch.cumsum(p.log_weight.exp(), dim=-1)
    k = (u[:, 1:2] > cdf).sum(dim=-1).clamp(max=spec.components - 1)[:, None]
    mean, width = p.mean.gather(1, k)[:, 0], p.width.gather(1, k)[:, 0]
    lo, hi = spec.bounds
    a, b = (lo - mean) / width, (hi - mean) / width
    flip = (a + b) > 0  # invert on the side where Phi is accurate
    a2, b2 = torch.where(flip, -b, a), torch.where(flip, -a, b)
    pa, pb = torch.special.ndtr(a2), torch.special.ndtr(b2)
    e = torch.special.ndtri(pa + u[:, 2] * (pb - pa)).clamp(a2, b2)
    t = (mean + width * torch.where(flip, -e, e)).clamp(lo, hi)
    et = torch.exp(spec.t_mean + spec.t_std * t).clamp(math.exp(spec.t_min), math.exp(spec.t_max))
    return torch.where(nonzero, et, torch.zeros_like(et))


def _uniforms(rng: torch.Generator, k: int, device: torch.device) -> torch.Tensor:
    """(k, 3) float64 uniforms of one pixel step: the only draws of the sampler, in pixel order."""
    return torch.rand(k, 3, generator=rng, device=device, dtype=torch.float64)


@torch.no_grad()
def _sample_batch_reference(net: SarmNet, k: int, rng: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """(k, n, n) images drawn by re-evaluating the whole network before every support pixel (slow; tests)."""
    n, device = net.spec.npix, net.support.device
    x = torch.zeros(k, n, n, dtype=dtype, device=device)
    flat = x.view(k, n * n)
    for i in torch.nonzero(net.support).flatten().tolist():
        out = net(x).flatten(2)[:, :, i]  # (k, 1 + 3M)
        flat[:, i] = draw_pixel(out, net.spec, _uniforms(rng, k, device)).to(dtype)
    return x


class CachedSampler:
    """Pixel-by-pixel sampling with every layer's activations cached (see the module docstring).

    State for a batch of k images, column-major so that one column is a contiguous (k, channels)
    block and each layer at a pixel is a few matrix products: the image x (k, n, n); per layer
    the vertical stack's last kh rows of its input (k, C_in, kh, n), its contribution to the
    current row (n, k, 2C), and the horizontal stack's input of the current row (w + n, k, C_in)
    with w zero columns on the left; the running non-zero count and ET of every image.
    """

    def __init__(self, net: SarmNet, k: int, dtype: torch.dtype) -> None:
        self.net, self.spec, self.k, self.dtype = net, net.spec, k, dtype
        n, c = self.spec.npix, self.spec.channels
        device = self.device = net.support.device
        self.kh, self.w = net.layers[0].kh, net.layers[0].w
        self.x = torch.zeros(k, n, n, dtype=dtype, device=device)
        self.v_hist = [torch.zeros(k, c, self.kh, n, dtype=dtype, device=device) for _ in net.layers]
        self.vh = [torch.zeros(n, k, 2 * c, dtype=dtype, device=device) for _ in net.layers]
        # horizontal inputs: layer 0 reads the image planes (z, t), layer l > 0 the output of layer l - 1
        self.h_in = [torch.zeros(self.w + n, k, 2 if i == 0 else c, dtype=dtype, device=device)
                     for i in range(len(net.layers) + 1)]
        self.totals = torch.zeros(k, 2, dtype=dtype, device=device)  # non-zero pixels so far, their ET (GeV)
        # every weight as the (in, out) matrix of a matrix product, in the sampling dtype:
        # taps[i][j]: horizontal tap j (column c - w + j), cond_totals[i]: (2, 2C), cond_pos[i]: (D, 2C) per pixel
        position = net.position.to(device=device, dtype=dtype).flatten(1).t()  # (D, 3)
        self.taps, self.h_bias, self.out_w, self.out_b, self.cond_totals, self.cond_pos = [], [], [], [], [], []
        for layer in net.layers:
            weight = layer.h_conv.weight.to(dtype)[:, :, 0, :]  # (2C, C_in, taps)
            self.taps.append([weight[:, :, j].t().contiguous() for j in range(weight.shape[2])])
            self.h_bias.append(layer.h_conv.bias.to(dtype))
            self.out_w.append(layer.h_out.weight.to(dtype)[:, :, 0, 0].t().contiguous())
            self.out_b.append(layer.h_out.bias.to(dtype))
            cond = layer.cond.weight.to(dtype)[:, :, 0, 0]  # (2C, F)
            self.cond_totals.append(cond[:, :2].t().contiguous())
            self.cond_pos.append(position @ cond[:, 2:].t())  # (D, 2C)
        first, last = net.head[1], net.head[3]
        self.head = (first.weight.to(dtype)[:, :, 0, 0].t().contiguous(), first.bias.to(dtype),
                     last.weight.to(dtype)[:, :, 0, 0].t().contiguous(), last.bias.to(dtype))
        m = self.spec.components
        bias = torch.zeros(net.pixel_logit.numel(), 1 + 3 * m, dtype=dtype, device=device)  # (D, 1 + 3M)
        bias[:, 0] = net.pixel_logit.to(dtype)
        bias[:, 1 + m:1 + 2 * m] = net.pixel_mean.to(dtype)[:, None]
        self.pixel_bias = bias

    def advance_vertical(self, r: int) -> None:
        """After row r - 1 is drawn: the vertical stack at row r - 1, and its contribution to row r."""
        if r == 0:
            return  # row 0 sees no row above: contributions stay zero
        rows = self.net.inputs(self.x[:, max(0, r - self.kh):r])  # (k, 2, <= kh, n): image rows r-kh..r-1
        src = F.pad(rows, (0, 0, self.kh - rows.shape[2], 0))
        for i, layer in enumerate(self.net.layers):
            v_pre = layer.v_conv(F.pad(src, (self.w, self.w, 0, 0)))  # (k, 2C, 1, n): row r - 1
            self.vh[i] = layer.v_to_h(v_pre)[:, :, 0, :].permute(2, 0, 1).contiguous()  # (n, k, 2C)
            self.v_hist[i] = torch.cat([self.v_hist[i][:, :, 1:], gate(v_pre)], dim=2)  # rows r-kh..r-1
            src = self.v_hist[i]

    def horizontal(self, r: int, c0: int, c1: int) -> torch.Tensor:
        """Every layer at columns c0..c1-1 of row r (their inputs known) -> head output (c1 - c0, k, 1 + 3M)."""
        n, w, k, m = self.spec.npix, self.w, self.k, c1 - c0
        pixels = slice(r * n + c0, r * n + c1)
        log_totals = torch.log1p(self.totals)  # (k, 2): count and ET before, the same for all these columns
        for i, layer in enumerate(self.net.layers):
            # (m, k, 2C): vertical contribution + position and activity features + bias
            h_pre = (self.vh[i][c0:c1] + self.cond_pos[i][pixels, None, :] + (log_totals @ self.cond_totals[i])
                     + self.h_bias[i])
            h_pre = h_pre.view(m * k, -1)
            for j, tap in enumerate(self.taps[i]):  # tap j reads column c - w + j (type A: j < w, type B: j <= w)
                src = self.h_in[i][c0 + j:c1 + j]  # (m, k, C_in): padded columns c0+j.. = columns c0-w+j..
                h_pre = torch.addmm(h_pre, src.reshape(m * k, -1), tap)
            h = torch.addmm(self.out_b[i], gate(h_pre), self.out_w[i]).view(m, k, -1)  # (m, k, C)
            if not layer.first:
                h = h + self.h_in[i][c0 + w:c1 + w]
            self.h_in[i + 1][c0 + w:c1 + w] = h
        w1, b1, w2, b2 = self.head
        hidden = torch.relu(torch.addmm(b1, torch.relu(self.h_in[-1][c0 + w:c1 + w]).reshape(m * k, -1), w1))
        out = torch.addmm(b2, hidden, w2).view(m, k, -1)
        return out + self.pixel_bias[pixels, None, :]

    def set_pixel(self, r: int, c: int, value: torch.Tensor) -> None:
        """Write the drawn ET (k,) of pixel (r, c) into the image, the horizontal input and the running totals."""
        self.x[:, r, c] = value
        self.h_in[0][self.w + c] = self.net.inputs(value[:, None, None])[:, :, 0, 0]
        self.totals[:, 0] += (value != 0).to(self.dtype)
        self.totals[:, 1] += value

    def run(self, rng: torch.Generator) -> torch.Tensor:
        """(k, n, n) images, drawing support pixels in raster order."""
        n = self.spec.npix
        support = self.net.support.view(n, n).cpu()
        for r in range(n):
            self.advance_vertical(r)
            cols = torch.nonzero(support[r]).flatten().tolist()
            if not cols:
                continue
            self.h_in[0].zero_()
            if cols[0] > 0:  # columns left of the support: inputs are zeros, all at once
                self.horizontal(r, 0, cols[0])
            for c in range(cols[0], cols[-1] + 1):
                out = self.horizontal(r, c, c + 1)[0]
                if bool(support[r, c]):
                    self.set_pixel(r, c, draw_pixel(out, self.spec, _uniforms(rng, self.k, self.device)).to(
                        self.dtype))
        return self.x


@torch.no_grad()
def sample_images(net: SarmNet, n: int, *, seed: int, batch_size: int = 4096, device: torch.device | str = "cpu",
                  progress: bool = True, reference: bool = False, dtype: torch.dtype = torch.float32) -> np.ndarray:
    """(n, npix, npix) float32 images in GeV, reproducible for a seed and device.

    reference=True re-evaluates the whole network before every pixel instead of using the
    caches (the same draws; ~the number of support pixels times slower).
    """
    if n < 1:
        raise ModelError(f"number of images to generate must be >= 1, got {n}")
    device = torch.device(device)
    net = net.to(device=device, dtype=dtype).eval()

    def make(noise: torch.Tensor, rows: slice, rng: torch.Generator) -> torch.Tensor:
        k = noise.shape[0]
        if reference:
            return _sample_batch_reference(net, k, rng, dtype).float()
        return CachedSampler(net, k, dtype).run(rng).float()

    return generate_in_batches(n, net.spec.npix, 1, make, seed=seed, batch_size=batch_size, device=device,
                               progress=progress, desc="sample sarm")


def sample_images_reference(net: SarmNet, n: int, *, seed: int, batch_size: int = 4096,
                            device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> np.ndarray:
    """The naive sampler: the full network before every pixel; draws what `sample_images` draws (tests)."""
    return sample_images(net, n, seed=seed, batch_size=batch_size, device=device, progress=False, reference=True,
                         dtype=dtype)


def generate(net: SarmNet, n: int, *, seed: int, batch_size: int = 4096, device: torch.device | str = "cpu",
             progress: bool = True, pt_gev: np.ndarray | None = None) -> np.ndarray:
    """(n, npix, npix) float32 images from a rebuilt SARM (unconditional: pt_gev must be None)."""
    if pt_gev is not None:
        raise ModelError("the sarm family is unconditional; it cannot be sampled at given muon pTs")
    return sample_images(net, n, seed=seed, batch_size=batch_size, device=device, progress=progress)


def conditional(net: SarmNet) -> bool:
    """The sarm family is unconditional."""
    return False


def sample_attrs(record: dict[str, Any]) -> dict[str, Any]:
    """Attributes of a generated file that describe this family's model."""
    spec = record["fixed"]["spec"]
    return {"objective": OBJECTIVE, "sarm_layers": int(spec["layers"]), "sarm_channels": int(spec["channels"]),
            "sarm_components": int(spec["components"])}

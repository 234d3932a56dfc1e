"""The paper's decoupled generator as a family: noise -> (logit pi, eta) -> x = Bern(pi) * beta.

Training (on model/training.py's epoch loop): the generator starts at the data's
independent-pixel marginals (seeded); each step draws K noise vectors, scores every image of
the batch against the K parameter sets ((batch, K) log-likelihood matrix, model/objectives.py)
and minimises the configured objective, plus the occupancy term when `marginal_weight` > 0.
Trained likelihood parameters (learned sigma, gamma shape) are optimised by the same Adam. A
pT-conditional generator scores every image against the K draws at the image's own muon pT.

Occupancy calibration (`calibrate_occupancy`, off for the paper's models): the finite-K bound
leaves the generator's per-pixel occupancy too high wherever no parameter set of a batch's K
matches an image well (a missed non-zero pixel costs log pi, a spurious one only log(1 - pi)).
After training, one constant per pixel is added to the logit (the generator's `logit_offset`), so
that the mean of pi over many noise draws equals the data's occupancy; how pi varies with the noise
- the pixel correlations - is kept.

Sampling: x = z * beta with z ~ Bern(sigmoid(logit)) and beta ~ p(. | eta), one fresh noise
vector per image; a pT-conditional generator is sampled at given muon pTs.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.seeds import derive_seed

from .batching import generate_in_batches
from .config import TrainConfig
from .data import TrainingData
from .device import resolve_device
from .errors import ModelError
from .generators import Generator, GeneratorSpec, build_generator, n_parameters
from .likelihoods import LIKELIHOODS, NonZeroLikelihood, build_likelihood
from .objectives import (
    bound_objective,
    conditional_log_likelihood_matrix,
    get_objective,
    log_likelihood_matrix,
    marginal_kl,
    paper_objective,
    weighted_loss,
)
from .training import TIMING_COLUMNS, Batch, TrainResult, run_epochs

log = logging.getLogger(__name__)

MODEL_FORMAT = "sparse-muon-decoupled-model/2"
#: model.pt files written before the families shared one record layout (read, never written)
LEGACY_MODEL_FORMAT = "sparse-muon-decoupled-model/1"
#: noise draws over which the occupancy calibration averages the generator's pi
CALIBRATION_DRAWS = 16384
#: bisection range (logit units) of the per-pixel shift; a pixel never hit in the data goes to the bottom
CALIBRATION_SHIFT_MAX = 30.0
LOG_COLUMNS = ("epoch", "loss", "paper_ll", "bound_ll", "mean_pi", "data_occupancy", *TIMING_COLUMNS)


class DecoupledModel(nn.Module):
    """A trained decoupled model: the generator and the likelihood of the non-zero values."""

    def __init__(self, generator: Generator, likelihood: NonZeroLikelihood) -> None:
        super().__init__()
        self.generator, self.likelihood = generator, likelihood


def init_model(data: TrainingData, cfg: TrainConfig) -> tuple[Generator, NonZeroLikelihood]:
    """Seeded generator initialised at the data's independent-pixel marginals, plus its likelihood."""
    if cfg.likelihood not in LIKELIHOODS:
        raise ModelError(f"unknown likelihood '{cfg.likelihood}'; choose one of {sorted(LIKELIHOODS)}")
    if not isinstance(cfg.conditional, bool):
        raise ModelError(f"training setting 'conditional' must be true or false, got {cfg.conditional!r}")
    likelihood = LIKELIHOODS[cfg.likelihood].from_data(data)
    spec = dataclasses.replace(cfg.generator_spec(data.npix), conditional=cfg.conditional)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        generator = build_generator(spec)
    eta0, scale = likelihood.eta_marginals(data)
    generator.init_from_marginals(data.occupancy(), eta0, scale_gev=scale)
    if cfg.conditional:
        generator.set_pt_normalisation(*data.pt_normalisation())
    return generator, likelihood


def train(data: TrainingData, cfg: TrainConfig, checkpoint_dir: str | Path | None, *,
          progress: bool = True) -> TrainResult:
    """Train one decoupled generator (and its likelihood's parameters) on `data`."""
    device = resolve_device(cfg.device)
    generator, likelihood = init_model(data, cfg)
    generator.to(device)
    likelihood.to(device)
    # what Adam optimises: the generator's parameters, then the likelihood's (none for fixed sigma)
    optimizer = torch.optim.Adam([*generator.parameters(), *likelihood.parameters()], lr=cfg.lr)
    objective = get_objective(cfg.objective)
    pt_all = data.conditioning_pt().to(device) if cfg.conditional else None
    occ_all = data.occupancy().to(device=device, dtype=torch.float32)
    log.info("decoupled %s%s generator (%d parameters), objective %s, K=%d, likelihood %s %s (%d trained parameters)",
             "pT-conditional " if cfg.conditional else "", cfg.arch, n_parameters(generator), cfg.objective, cfg.K,
             likelihood.name, likelihood.extra_state_dict(), n_parameters(likelihood))

    def step(batch: Batch) -> dict[str, torch.Tensor]:
        x, w = batch.x, batch.weight
        noise = torch.randn(cfg.K, cfg.noise_dim, generator=batch.rng, device=device)
        if pt_all is None:
            logits, eta = generator(noise)  # (K, D) each
            ll = log_likelihood_matrix(x, logits, eta, likelihood)  # (B, K)
            pi = torch.sigmoid(logits)
        else:  # every image against the K draws at its own pT
            params = generator.cross(noise, pt_all[batch.index])
            ll = conditional_log_likelihood_matrix(x, params, likelihood)  # (B, K)
            paired = torch.arange(cfg.K, device=device) % x.shape[0]  # draw k at the pT of image k mod B
            pi = -torch.expm1(-torch.exp(params.log_rate + params.rate_shift[paired]))
        loss = weighted_loss(objective(ll), w)
        if cfg.marginal_weight > 0:  # keep the generator's per-pixel occupancy at the data's
            loss = loss + cfg.marginal_weight * marginal_kl(pi, occ_all)
        pi = pi.detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            lld = ll.detach()
            return {"loss": loss.detach(), "paper_ll": (w * paper_objective(lld)).mean(),
                    "bound_ll": (w * bound_objective(lld)).mean(), "mean_pi": pi.mean()}

    modules = {"generator": generator, "likelihood": likelihood}
    rows, start = run_epochs(
        data, cfg, checkpoint_dir, device=device, modules=modules, optimizers={"model": optimizer}, step=step,
        columns=LOG_COLUMNS, static={"data_occupancy": float(data.occupancy().mean())}, progress=progress,
    )
    fixed = {"generator_spec": dict(vars(generator.spec)),
             "likelihood": {"name": likelihood.name, **likelihood.extra_state_dict()}}
    if cfg.calibrate_occupancy:  # after the checkpoints: a resumed run trains the uncalibrated model
        fixed["occupancy_calibration"] = calibrate_occupancy(
            generator, data.occupancy(), seed=derive_seed(cfg.seed, "occupancy_calibration"), device=device)
    # the conditional generator's pT input scaling (also its pt_center / pt_scale buffers)
    data_info = (dict(zip(("pt_norm_mean_gev", "pt_norm_std_gev"), data.pt_normalisation(), strict=True))
                 if generator.spec.conditional else {})
    return TrainResult(modules, cfg, fixed, rows, str(device), start, data_info)


@torch.no_grad()
def calibrate_occupancy(generator: Generator, occupancy: torch.Tensor, *, seed: int,
                        device: torch.device | str = "cpu", draws: int = CALIBRATION_DRAWS, batch_size: int = 4096,
                        iterations: int = 50) -> dict[str, float]:
    """Shift the generator's per-pixel logit so that its mean occupancy over `draws` noise vectors is `occupancy`.

    Solves mean_n sigmoid(l_ni + d_i) = occupancy_i for every pixel i at once by bisection (the
    left side rises monotonically with d_i), adds d to `logit_offset` and returns a summary
    (mean occupancy before and after, the largest shift of a pixel the data hits) for model.pt.
    """
    if generator.spec.conditional:
        raise ModelError("occupancy calibration is implemented for unconditional generators only")
    generator.eval()
    rng = torch.Generator(device=device).manual_seed(int(seed))
    sizes = [min(batch_size, draws - start) for start in range(0, draws, batch_size)]
    noise_dim = generator.spec.noise_dim
    logits = torch.cat([generator(torch.randn(k, noise_dim, generator=rng, device=device))[0] for k in sizes])
    logits = logits.to(torch.float64)  # (draws, D)
    target = occupancy.to(device=logits.device, dtype=torch.float64)
    lo = torch.full_like(target, -CALIBRATION_SHIFT_MAX)
    hi = torch.full_like(target, CALIBRATION_SHIFT_MAX)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = torch.sigmoid(logits + mid).mean(dim=0) > target
        hi, lo = torch.where(above, mid, hi), torch.where(above, lo, mid)
    shift = 0.5 * (lo + hi)
    before = float(torch.sigmoid(logits).mean())
    generator.logit_offset.add_(shift.to(generator.logit_offset.dtype))
    hit = target > 0
    summary = {
        "draws": int(draws), "data_occupancy": float(target.mean()), "mean_pi_before": before,
        "mean_pi_after": float(torch.sigmoid(logits + shift).mean()),
        "max_abs_shift_hit_pixels": float(shift[hit].abs().max()) if bool(hit.any()) else 0.0,
    }
    log.info("occupancy calibration: mean pi %.5f -> %.5f (data %.5f), largest logit shift of a hit pixel %.2f",
             summary["mean_pi_before"], summary["mean_pi_after"], summary["data_occupancy"],
             summary["max_abs_shift_hit_pixels"])
    return summary


def upgrade_legacy_record(record: dict[str, Any]) -> dict[str, Any]:
    """A LEGACY_MODEL_FORMAT record in today's layout (networks under `modules`, specs under `fixed`)."""
    old = dict(record)
    modules = {"generator": old.pop("generator_state")}
    if "likelihood_state" in old:  # trained likelihood parameters (the oldest records have none)
        modules["likelihood"] = old.pop("likelihood_state")
    fixed = {"generator_spec": old.pop("generator_spec"), "likelihood": old.pop("likelihood")}
    return {**old, "format": MODEL_FORMAT, "family": "decoupled", "modules": modules, "fixed": fixed}


def rebuild(record: dict[str, Any], device: torch.device | str = "cpu") -> DecoupledModel:
    """Generator and likelihood from a model.pt record."""
    fixed = record["fixed"]
    generator = build_generator(GeneratorSpec(**fixed["generator_spec"]))
    generator.load_state_dict(record["modules"]["generator"])
    settings = dict(fixed["likelihood"])
    likelihood = build_likelihood(settings.pop("name"), **settings)
    try:
        if "likelihood" in record["modules"]:
            likelihood.load_state_dict(record["modules"]["likelihood"])
    except RuntimeError as exc:
        raise ModelError(f"likelihood parameters do not match '{likelihood.name}' ({exc}); retrain the model") from None
    return DecoupledModel(generator, likelihood).to(device).eval()


def conditional(model: DecoupledModel) -> bool:
    """Whether the model generates at given muon pTs."""
    return bool(model.generator.spec.conditional)


def sample_attrs(record: dict[str, Any]) -> dict[str, Any]:
    """Attributes of a generated file that describe this family's model."""
    return {"conditional": bool(record["fixed"]["generator_spec"].get("conditional", False)),
            "likelihood": record["fixed"]["likelihood"]["name"], "objective": record["config"]["objective"]}


@torch.no_grad()
def sample_images(
    generator: Generator,
    likelihood: NonZeroLikelihood,
    n: int,
    *,
    seed: int,
    batch_size: int = 4096,
    device: torch.device | str = "cpu",
    progress: bool = True,
    pt_gev: np.ndarray | torch.Tensor | None = None,
) -> np.ndarray:
    """(n, npix, npix) float32 generated images in GeV, reproducible for a given seed and device.

    pt_gev (n,): the muon pT (GeV) each image is generated at; required by (and only by)
    pT-conditional generators.
    """
    if n < 1:
        raise ModelError(f"number of images to generate must be >= 1, got {n}")
    pts = None
    if generator.spec.conditional:
        if pt_gev is None:
            raise ModelError("this generator is pT-conditional: give the muon pT of every image to generate")
        pts = torch.as_tensor(np.asarray(pt_gev, dtype=np.float32)).to(device)
        if tuple(pts.shape) != (n,) or not bool(torch.isfinite(pts).all()):
            raise ModelError(f"muon pT to generate at must be {n} finite values, got shape {tuple(pts.shape)}")
    elif pt_gev is not None:
        raise ModelError("this generator is unconditional; it cannot be sampled at given muon pTs")
    device = torch.device(device)
    generator = generator.to(device).eval()

    def make(noise: torch.Tensor, rows: slice, rng: torch.Generator) -> torch.Tensor:
        logits, eta = generator(noise, None if pts is None else pts[rows])  # (k, D)
        empty = torch.rand(logits.shape, generator=rng, device=device) >= torch.sigmoid(logits)  # not Bern(pi)
        values = likelihood.sample(eta, generator=rng)
        return values.masked_fill_(empty, 0.0)  # in place: no second (k, D) tensor

    return generate_in_batches(n, generator.spec.npix, generator.spec.noise_dim, make, seed=seed,
                               batch_size=batch_size, device=device, progress=progress, desc="sample")


def generate(model: DecoupledModel, n: int, *, seed: int, batch_size: int = 4096, device: torch.device | str = "cpu",
             progress: bool = True, pt_gev: np.ndarray | None = None) -> np.ndarray:
    """(n, npix, npix) float32 images from a rebuilt model (at pt_gev for a pT-conditional one)."""
    return sample_images(model.generator, model.likelihood, n, seed=seed, batch_size=batch_size, device=device,
                         progress=progress, pt_gev=pt_gev)

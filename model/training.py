"""The training loop: seeded, resumable at epoch boundaries, bitwise-reproducible on one device.

Every epoch draws its shuffling and its generator noise from streams seeded by
(seed, epoch), so resuming from the checkpoint written after epoch e (parameters + Adam
state) continues exactly as an uninterrupted run would. The checkpoint lives in the
model's own folder and is only resumed if its settings (all but epochs/device) and the
training data digest match. Trained likelihood parameters (learned sigma, gamma shape) are
optimised by the same Adam and saved with the generator in the checkpoint and model.pt.
A pT-conditional generator scores every image against the K draws at the image's own muon pT.
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from common.provenance import atomic_output, provenance

from .config import TrainConfig
from .data import TrainingData
from .device import resolve_device
from .errors import ModelError
from .generators import Generator, build_generator, n_parameters
from .likelihoods import LIKELIHOODS, NonZeroLikelihood, build_likelihood
from .objectives import (
    bound_objective, conditional_log_likelihood_matrix, get_objective, log_likelihood_matrix, marginal_kl,
    paper_objective, weighted_loss,
)
from common.seeds import derive_seed

log = logging.getLogger(__name__)

MODEL_FORMAT = "sparse-muon-decoupled-model/1"
LOG_COLUMNS = (
    "epoch", "loss", "paper_ll", "bound_ll", "mean_pi", "data_occupancy", "time_s", "images_per_s", "device",
)
CHECKPOINT_NAME = "last.pt"


@dataclass
class TrainResult:
    """A trained generator, its likelihood, and the per-epoch log rows."""

    generator: Generator
    likelihood: NonZeroLikelihood
    config: TrainConfig
    log_rows: list[dict[str, Any]] = field(default_factory=list)
    device: str = "cpu"
    resumed_from_epoch: int = 0


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


def trainable_parameters(generator: Generator, likelihood: NonZeroLikelihood) -> list[torch.nn.Parameter]:
    """What Adam optimises: the generator's parameters, then the likelihood's (none for fixed sigma)."""
    return list(generator.parameters()) + list(likelihood.parameters())


def _save_atomic(obj: Any, path: Path) -> None:
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def _load_checkpoint(path: Path, cfg: TrainConfig, data: TrainingData) -> dict[str, Any] | None:
    """The checkpoint at `path` if it can be resumed by this run, else None (with a log line)."""
    if not path.exists():
        return None
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt checkpoint is not fatal: start again
        log.warning("ignoring unreadable checkpoint %s (%s); training from scratch", path, exc)
        return None
    if ckpt.get("resume_key") != cfg.resume_key() or ckpt.get("data_digest") != data.digest:
        log.warning("checkpoint %s was made with other settings or data; training from scratch", path)
        return None
    if int(ckpt["epoch"]) > cfg.epochs:
        log.warning("checkpoint %s is past the %d configured epochs; training from scratch", path, cfg.epochs)
        return None
    return ckpt


def train(
    data: TrainingData,
    cfg: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    *,
    progress: bool = True,
) -> TrainResult:
    """Train one decoupled generator on `data`; checkpoint every epoch into checkpoint_dir."""
    cfg.check()
    # Adam's second moments of rarely-hit pixels underflow to denormals, which are ~10x slower on x86
    torch.set_flush_denormal(True)
    device = resolve_device(cfg.device)
    generator, likelihood = init_model(data, cfg)
    generator.to(device)
    likelihood.to(device)
    optimizer = torch.optim.Adam(trainable_parameters(generator, likelihood), lr=cfg.lr)
    objective = get_objective(cfg.objective)

    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    rows: list[dict[str, Any]] = []
    start_epoch = 0
    ckpt = _load_checkpoint(ckpt_path, cfg, data) if ckpt_path is not None else None
    if ckpt is not None:
        generator.load_state_dict(ckpt["generator"])
        if "likelihood" in ckpt:
            likelihood.load_state_dict(ckpt["likelihood"])
        optimizer.load_state_dict(ckpt["optimizer"])
        rows = list(ckpt["log"])
        start_epoch = int(ckpt["epoch"])
        log.info("resuming from %s after epoch %d", ckpt_path, start_epoch)

    n = len(data)
    batch = min(cfg.batch_size, n)
    n_batches = math.ceil(n / batch)
    x_all = data.x.to(device)
    w_all = data.weight.to(device)
    pt_all = data.conditioning_pt().to(device) if cfg.conditional else None
    occ_all = data.occupancy().to(device=device, dtype=torch.float32)
    data_occ = float(data.occupancy().mean())
    log.info(
        "training %s%s generator (%d parameters), objective %s, K=%d, batch %d, %d images, epochs %d..%d, "
        "likelihood %s %s (%d trained parameters)",
        "pT-conditional " if cfg.conditional else "", cfg.arch, n_parameters(generator), cfg.objective, cfg.K, batch,
        n, start_epoch + 1, cfg.epochs, likelihood.name, likelihood.extra_state_dict(), n_parameters(likelihood),
    )
    bar = tqdm(
        total=(cfg.epochs - start_epoch) * n_batches, desc=f"train {cfg.arch}/{cfg.objective}", unit="batch",
        disable=not progress, mininterval=2.0,
    )
    generator.train()
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(cfg.seed, "shuffle", epoch)))
        noise_rng = torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, "noise", epoch))
        sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss, paper, bound, mean_pi
        for b in range(n_batches):
            idx = perm[b * batch:(b + 1) * batch].to(device)
            x, w = x_all[idx], w_all[idx]
            noise = torch.randn(cfg.K, cfg.noise_dim, generator=noise_rng, device=device)
            if pt_all is None:
                logits, eta = generator(noise)  # (K, D) each
                ll = log_likelihood_matrix(x, logits, eta, likelihood)  # (B, K)
                pi = torch.sigmoid(logits)
            else:  # every image against the K draws at its own pT
                params = generator.cross(noise, pt_all[idx])
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
                frac = x.shape[0] / n
                sums += frac * torch.stack([
                    loss.detach().double(),
                    (w * paper_objective(lld)).mean().double(),
                    (w * bound_objective(lld)).mean().double(),
                    pi.mean().double(),
                ])
            bar.update()
        loss_v, paper_v, bound_v, pi_v = sums.tolist()
        if not math.isfinite(loss_v):
            raise ModelError(
                f"training diverged at epoch {epoch + 1} (loss {loss_v}); lower training.lr or check the images"
            )
        seconds = time.perf_counter() - t0
        rows.append({
            "epoch": epoch + 1, "loss": loss_v, "paper_ll": paper_v, "bound_ll": bound_v, "mean_pi": pi_v,
            "data_occupancy": data_occ, "time_s": seconds, "images_per_s": n / seconds, "device": str(device),
        })
        bar.set_postfix(loss=f"{loss_v:.2f}", epoch=epoch + 1)
        log.info("epoch %d/%d: loss %.4f nats/image, %.1f s, %.0f images/s", epoch + 1, cfg.epochs, loss_v, seconds, n / seconds)
        if ckpt_path is not None:
            _save_atomic({
                "epoch": epoch + 1, "resume_key": cfg.resume_key(), "data_digest": data.digest,
                "generator": generator.state_dict(), "likelihood": likelihood.state_dict(),
                "optimizer": optimizer.state_dict(), "log": rows,
            }, ckpt_path)
            write_log_csv(ckpt_path.with_name("train_log.csv"), rows)
    bar.close()
    generator.eval()
    return TrainResult(generator, likelihood, cfg, rows, str(device), start_epoch)


def write_log_csv(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Per-epoch training log as CSV (atomic)."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=LOG_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def save_model(path: str | Path, result: TrainResult, data: TrainingData, *, extra: dict[str, Any] | None = None) -> Path:
    """Write model.pt: weights, how to rebuild them, the config, and the training-data digest."""
    gen = result.generator
    record = {
        "format": MODEL_FORMAT,
        "generator_spec": dict(vars(gen.spec)),
        "generator_state": {k: v.detach().cpu() for k, v in gen.state_dict().items()},
        "likelihood": {"name": result.likelihood.name, **result.likelihood.extra_state_dict()},
        "likelihood_state": {k: v.detach().cpu() for k, v in result.likelihood.state_dict().items()},
        "config": result.config.to_dict(),
        "training_data": {
            "digest": data.digest, "n_images": len(data), "sample": data.sample, "npix": data.npix,
            "radius": data.radius, "mean_muon_pt_gev": data.mean_muon_pt_gev,
            # the conditional generator's pT input scaling (also its pt_center / pt_scale buffers)
            **(dict(zip(("pt_norm_mean_gev", "pt_norm_std_gev"), data.pt_normalisation()))
               if gen.spec.conditional else {}),
        },
        "epochs_completed": len(result.log_rows),
        "device": result.device,
        "log": result.log_rows,
        "provenance": provenance(result.config.to_dict(), **(extra or {})),
    }
    _save_atomic(record, Path(path))
    return Path(path)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[Generator, NonZeroLikelihood, dict[str, Any]]:
    """Rebuild generator and likelihood from model.pt; returns them with the full record."""
    from .generators import GeneratorSpec

    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file; run the train step first")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable model file ({exc}); retrain it") from None
    if not isinstance(record, dict) or record.get("format") != MODEL_FORMAT:
        raise ModelError(f"{path}: not a {MODEL_FORMAT} file; retrain it with `python -m model train`")
    generator = build_generator(GeneratorSpec(**record["generator_spec"]))
    generator.load_state_dict(record["generator_state"])
    lik = dict(record["likelihood"])
    likelihood = build_likelihood(lik.pop("name"), **lik)
    if "likelihood_state" in record:  # trained likelihood parameters (older records have none)
        try:
            likelihood.load_state_dict(record["likelihood_state"])
        except RuntimeError as exc:
            raise ModelError(f"{path}: likelihood parameters do not match '{likelihood.name}' ({exc}); retrain it") from None
    generator.to(device).eval()
    likelihood.to(device)
    return generator, likelihood, record

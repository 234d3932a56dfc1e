"""Model families in one harness: `decoupled` (the paper's, model/training.py), `gan`, `vae`.

The comparison families (LAGAN-style GAN in model/gan.py, sparse-likelihood VAE in
model/vae.py) train on the same TrainingData, are seeded from the same per-model seed,
checkpoint after every epoch into the model's checkpoint folder (resumed only if settings and
data digest match; resumed == uninterrupted, bitwise on CPU), log the same timing columns and
sample into the same images.h5 contract as model/sampling.py. This module holds what the two
share: the family table, the resumable epoch loop, the log CSV, model.pt writing/reading and
the generated-file writer. A family module provides MODEL_FORMAT, OBJECTIVE, LOG_COLUMNS,
`train`, `rebuild` and `sample_images`.
"""
from __future__ import annotations

import csv
import importlib
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from imaging.h5schema import write_image_file
from common.provenance import atomic_output, file_digest, provenance

from .errors import ModelError
from common.seeds import derive_seed

log = logging.getLogger(__name__)

#: every value of the `family` training setting; `decoupled` is handled by model/training.py
FAMILIES = ("decoupled", "gan", "vae")
_MODULES = {"gan": "gan", "vae": "vae"}
#: columns every family's train_log.csv ends with (time_s is summed into train_time_s)
TIMING_COLUMNS = ("time_s", "images_per_s", "device")

#: a training step: (x (B, D) GeV, weight (B,), noise rng, epoch (0-based), batch index, batches per epoch)
#: -> batch metrics (scalar tensors; "loss" is required)
StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator, int, int, int], dict[str, torch.Tensor]]


@dataclass
class FamilyResult:
    """Trained networks of a comparison family, their fixed settings and the per-epoch log."""

    modules: dict[str, nn.Module]  # named networks (checkpointed and saved by name)
    config: Any  # TrainConfig
    fixed: dict[str, Any]  # non-trained settings needed to rebuild the networks (specs, scales)
    log_rows: list[dict[str, Any]] = field(default_factory=list)
    device: str = "cpu"
    resumed_from_epoch: int = 0


def family_module(name: str) -> ModuleType:
    """The module implementing comparison family `name` (gan or vae)."""
    if name not in _MODULES:
        raise ModelError(f"no comparison family '{name}'; choose one of {sorted(_MODULES)} (decoupled: model/training.py)")
    return importlib.import_module(f".{_MODULES[name]}", __package__)


def run_epochs(
    data: Any,
    cfg: Any,
    checkpoint_dir: str | Path | None,
    *,
    device: torch.device,
    modules: dict[str, nn.Module],
    optimizers: dict[str, torch.optim.Optimizer],
    step: StepFn,
    columns: tuple[str, ...],
    static: dict[str, float] | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """Seeded, resumable epochs over `data` calling `step` per batch; returns (log rows, resumed-from epoch).

    Each epoch's shuffling and noise come from streams seeded by (cfg.seed, epoch), so resuming
    from the checkpoint written after epoch e (all modules + optimizer states) continues exactly
    as an uninterrupted run. Batch metrics are averaged over the epoch weighted by batch size.
    """
    from .training import CHECKPOINT_NAME, _load_checkpoint, _save_atomic

    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    rows: list[dict[str, Any]] = []
    start_epoch = 0
    ckpt = _load_checkpoint(ckpt_path, cfg, data) if ckpt_path is not None else None
    if ckpt is not None:
        if sorted(ckpt.get("modules", {})) != sorted(modules):
            log.warning("checkpoint %s holds other networks; training from scratch", ckpt_path)
        else:
            for name, module in modules.items():
                module.load_state_dict(ckpt["modules"][name])
            for name, opt in optimizers.items():
                opt.load_state_dict(ckpt["optimizers"][name])
            rows = list(ckpt["log"])
            start_epoch = int(ckpt["epoch"])
            log.info("resuming from %s after epoch %d", ckpt_path, start_epoch)

    n = len(data)
    batch = min(cfg.batch_size, n)
    n_batches = math.ceil(n / batch)
    x_all, w_all = data.x.to(device), data.weight.to(device)
    bar = tqdm(total=(cfg.epochs - start_epoch) * n_batches, desc=f"train {cfg.family}/{cfg.arch}", unit="batch",
               disable=not progress, mininterval=2.0)
    for module in modules.values():
        module.train()
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(cfg.seed, "shuffle", epoch)))
        rng = torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, "noise", epoch))
        sums: dict[str, torch.Tensor] = {}
        for b in range(n_batches):
            idx = perm[b * batch:(b + 1) * batch].to(device)
            metrics = step(x_all[idx], w_all[idx], rng, epoch, b, n_batches)
            frac = idx.shape[0] / n
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + frac * value.detach().double()
            bar.update()
        values = {k: float(v) for k, v in sums.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise ModelError(f"{cfg.family} training diverged at epoch {epoch + 1} ({values}); lower training.lr")
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, **values, **(static or {}), "time_s": seconds, "images_per_s": n / seconds,
               "device": str(device)}
        rows.append({k: row[k] for k in columns})
        bar.set_postfix(loss=f"{values['loss']:.3f}", epoch=epoch + 1)
        log.info("epoch %d/%d: loss %.4f, %.1f s, %.0f images/s", epoch + 1, cfg.epochs, values["loss"], seconds,
                 n / seconds)
        if ckpt_path is not None:
            _save_atomic({
                "epoch": epoch + 1, "resume_key": cfg.resume_key(), "data_digest": data.digest,
                "modules": {k: m.state_dict() for k, m in modules.items()},
                "optimizers": {k: o.state_dict() for k, o in optimizers.items()}, "log": rows,
            }, ckpt_path)
            write_log_csv(ckpt_path.with_name("train_log.csv"), rows, columns)
    bar.close()
    for module in modules.values():
        module.eval()
    return rows, start_epoch


def write_log_csv(path: str | Path, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Per-epoch training log as CSV with the family's columns (atomic)."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def training_data_record(data: Any) -> dict[str, Any]:
    """What model.pt records about its training images (same keys as the decoupled record)."""
    return {"digest": data.digest, "n_images": len(data), "sample": data.sample, "npix": data.npix,
            "radius": data.radius, "mean_muon_pt_gev": data.mean_muon_pt_gev}


def train_family(data: Any, cfg: Any, checkpoint_dir: str | Path | None, *, progress: bool = True) -> FamilyResult:
    """Train comparison family cfg.family on `data` (checkpointing into checkpoint_dir)."""
    cfg.check()
    # Adam's second moments of rarely-hit pixels underflow to denormals, which are ~10x slower on x86
    torch.set_flush_denormal(True)
    return family_module(cfg.family).train(data, cfg, checkpoint_dir, progress=progress)


def save_family_model(path: str | Path, result: FamilyResult, data: Any, *,
                      extra: dict[str, Any] | None = None) -> Path:
    """Write model.pt of a comparison family: its format, family, networks, fixed settings, config, data digest."""
    from .training import _save_atomic

    cfg = result.config
    record = {
        "format": family_module(cfg.family).MODEL_FORMAT,
        "family": cfg.family,
        "modules": {k: {n: t.detach().cpu() for n, t in m.state_dict().items()} for k, m in result.modules.items()},
        "fixed": result.fixed,
        "config": cfg.to_dict(),
        "training_data": training_data_record(data),
        "epochs_completed": len(result.log_rows),
        "device": result.device,
        "log": result.log_rows,
        "provenance": provenance(cfg.to_dict(), **(extra or {})),
    }
    _save_atomic(record, Path(path))
    return Path(path)


def train_and_save(data: Any, cfg: Any, checkpoint_dir: str | Path, out: str | Path, log_csv: str | Path, *,
                   extra: dict[str, Any], progress: bool = True) -> Path:
    """`python -m model train` for a comparison family: train, write train_log.csv and model.pt."""
    result = train_family(data, cfg, checkpoint_dir, progress=progress)
    write_log_csv(log_csv, result.log_rows, family_module(cfg.family).LOG_COLUMNS)
    return save_family_model(out, result, data, extra=extra)


def _read_record(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable model file ({exc}); retrain it") from None


def model_family(path: str | Path) -> str:
    """The family a model.pt file belongs to ('decoupled' for the paper's format and anything unrecognised)."""
    path = Path(path)
    if not path.exists():
        return "decoupled"  # the decoupled loader reports the missing file
    record = _read_record(path)
    if isinstance(record, dict) and record.get("family") in _MODULES:
        return str(record["family"])
    return "decoupled"


def load_family_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[Any, dict[str, Any]]:
    """Rebuild a comparison family's trained model from model.pt; returns (model, record)."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file; run the train step first")
    record = _read_record(path)
    family = record.get("family") if isinstance(record, dict) else None
    if family not in _MODULES or record.get("format") != family_module(family).MODEL_FORMAT:
        raise ModelError(f"{path}: not a gan/vae model file (format {record.get('format') if isinstance(record, dict) else None!r}); "
                         "retrain it with `python -m model train`")
    return family_module(family).rebuild(record, device), record


def sample_family_to_file(
    model_path: str | Path,
    out_path: str | Path,
    *,
    n: int | None,
    seed: int,
    model_name: str,
    device: str = "auto",
    batch_size: int = 4096,
    progress: bool = True,
    real: str | Path | None = None,
) -> Path:
    """Sample a gan/vae model.pt into the images.h5 schema, with the same attrs as sampling.sample_to_file."""
    from .device import resolve_device
    from .sampling import PT_NOTE, train_time_s

    dev = resolve_device(device)
    model, record = load_family_model(model_path, device=dev)
    mod = family_module(record["family"])
    info = record["training_data"]
    n = int(info["n_images"]) if n is None else int(n)
    if n < 1:
        raise ModelError(f"number of images to generate must be >= 1, got {n}")
    log.info("sampling %d images from %s (%s) on %s", n, model_path, record["family"], dev)
    images = mod.sample_images(model, n, seed=seed, batch_size=batch_size, device=dev, progress=progress)
    mean_pt = float(info["mean_muon_pt_gev"])
    extra: dict[str, Any] = {
        "model": model_name, "model_file_digest": file_digest(model_path), "training_data_digest": info["digest"],
        "muon_pt_note": PT_NOTE, "mean_muon_pt_gev": mean_pt, "objective": mod.OBJECTIVE,
        "arch": record["config"]["arch"], "family": record["family"], "train_time_s": train_time_s(record),
        "real_images": str(real) if real is not None else "",
    }
    return write_image_file(
        out_path, images, np.full(n, mean_pt, dtype=np.float32), np.ones(n), sample=str(info["sample"]),
        radius=float(info["radius"]), kind="generated",
        provenance=provenance(record["config"], sampling_seed=seed, model=model_name, device=str(dev)),
        extra_attrs=extra,
    )

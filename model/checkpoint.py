"""Checkpoint and model-file I/O of every family: the one place model files are written and read.

- `checkpoints/last.pt`, written after every epoch: the state of every network and optimizer,
  the log so far, and what decides whether a later run may resume it (the settings other than
  epochs/device, and the training-data digest);
- `model.pt`, written once training is done: the family's format, its networks by name, the
  fixed settings needed to rebuild them, the config, the training-data record and provenance;
- `train_log.csv`, one row per epoch with the family's columns.

Every file is written under a temporary name and renamed when complete (common.provenance).
"""
from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from common.provenance import atomic_output, provenance

from .config import TrainConfig
from .data import TrainingData
from .errors import ModelError

log = logging.getLogger(__name__)

#: the resumable checkpoint's file name, in the model's checkpoint folder
CHECKPOINT_NAME = "last.pt"


def save_atomic(obj: Any, path: str | Path) -> Path:
    """torch.save `obj` to `path` under a temporary name, renamed when complete."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def load_resumable(path: Path, cfg: TrainConfig, data: TrainingData) -> dict[str, Any] | None:
    """The checkpoint at `path` if this run can resume it, else None (with a log line saying why)."""
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


def save_checkpoint(path: Path, *, epoch: int, cfg: TrainConfig, data: TrainingData, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], rows: list[dict[str, Any]]) -> None:
    """The resumable state after `epoch` (1-based): every network and optimizer, and the log."""
    save_atomic({
        "epoch": epoch, "resume_key": cfg.resume_key(), "data_digest": data.digest,
        "modules": {k: m.state_dict() for k, m in modules.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()}, "log": rows,
    }, path)


def write_log_csv(path: str | Path, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """Per-epoch training log as CSV with the family's columns (atomic)."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def training_data_record(data: TrainingData) -> dict[str, Any]:
    """What model.pt records about its training images."""
    return {"digest": data.digest, "n_images": len(data), "sample": data.sample, "npix": data.npix,
            "radius": data.radius, "mean_muon_pt_gev": data.mean_muon_pt_gev}


def write_model_file(
    path: str | Path,
    *,
    model_format: str,
    family: str,
    modules: dict[str, nn.Module],
    fixed: dict[str, Any],
    config: TrainConfig,
    data_record: dict[str, Any],
    log_rows: list[dict[str, Any]],
    device: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write model.pt: format, family, networks by name (on CPU), fixed settings, config, data, provenance."""
    record = {
        "format": model_format,
        "family": family,
        "modules": {k: {n: t.detach().cpu() for n, t in m.state_dict().items()} for k, m in modules.items()},
        "fixed": fixed,
        "config": config.to_dict(),
        "training_data": data_record,
        "epochs_completed": len(log_rows),
        "device": device,
        "log": log_rows,
        "provenance": provenance(config.to_dict(), **(extra or {})),
    }
    return save_atomic(record, Path(path))


def read_model_file(path: str | Path) -> dict[str, Any]:
    """The record of a model.pt file; ModelError when it is missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file; run the train step first")
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"{path}: not a readable model file ({exc}); retrain it") from None
    if not isinstance(record, dict):
        raise ModelError(f"{path}: not a model file (a {type(record).__name__}); retrain it")
    return record

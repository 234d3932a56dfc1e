"""The training loop every family runs: seeded, resumable at epoch boundaries, bitwise-reproducible.

A family (model/decoupled.py, model/gan.py, model/vae.py) builds its networks and optimizers
and a `step` that trains on one batch; `run_epochs` does the rest the same way for all of them.
Every epoch draws its shuffling and its noise from streams seeded by (seed, epoch), so resuming
from the checkpoint written after epoch e (every network and optimizer state) continues exactly
as an uninterrupted run would (bitwise on one device). The checkpoint lives in the model's own
folder and is only resumed if its settings (all but epochs/device) and the training-data digest
match (model/checkpoint.py).
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from common.seeds import derive_seed

from .checkpoint import CHECKPOINT_NAME, load_resumable, save_checkpoint, write_log_csv
from .config import TrainConfig
from .data import TrainingData
from .errors import ModelError

log = logging.getLogger(__name__)

#: columns every family's train_log.csv ends with (time_s is summed into train_time_s)
TIMING_COLUMNS = ("time_s", "images_per_s", "device")


@dataclass
class TrainResult:
    """Trained networks of one model (any family), their fixed settings and the per-epoch log."""

    modules: dict[str, nn.Module]  # named networks (checkpointed and saved by name)
    config: TrainConfig
    fixed: dict[str, Any]  # non-trained settings needed to rebuild the networks (specs, scales)
    log_rows: list[dict[str, Any]] = field(default_factory=list)
    device: str = "cpu"
    resumed_from_epoch: int = 0
    data_info: dict[str, Any] = field(default_factory=dict)  # family-specific facts about the training data


@dataclass
class Batch:
    """One training step's data: images x (B, D) GeV, weights (B,), their indices (B,) into the
    training data, the epoch's noise generator, the (0-based) epoch and batch number."""

    x: torch.Tensor
    weight: torch.Tensor
    index: torch.Tensor
    rng: torch.Generator
    epoch: int
    number: int
    n_batches: int


#: a training step: one batch -> batch metrics (scalar tensors; "loss" is required)
StepFn = Callable[[Batch], dict[str, torch.Tensor]]


def run_epochs(
    data: TrainingData,
    cfg: TrainConfig,
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

    Batch metrics are averaged over the epoch weighted by batch size; `static` values (data
    statistics) are added to every row. A checkpoint is written after every epoch when
    checkpoint_dir is given.
    """
    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    rows: list[dict[str, Any]] = []
    start_epoch = 0
    ckpt = load_resumable(ckpt_path, cfg, data) if ckpt_path is not None else None
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
            metrics = step(Batch(x_all[idx], w_all[idx], idx, rng, epoch, b, n_batches))
            frac = idx.shape[0] / n
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + frac * value.detach().double()
            bar.update()
        values = {k: float(v) for k, v in sums.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise ModelError(f"{cfg.family} training diverged at epoch {epoch + 1} ({values}); lower training.lr "
                             "or check the images")
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, **values, **(static or {}), "time_s": seconds, "images_per_s": n / seconds,
               "device": str(device)}
        rows.append({k: row[k] for k in columns})
        bar.set_postfix(loss=f"{values['loss']:.3f}", epoch=epoch + 1)
        log.info("epoch %d/%d: loss %.4f, %.1f s, %.0f images/s", epoch + 1, cfg.epochs, values["loss"], seconds,
                 n / seconds)
        if ckpt_path is not None:
            save_checkpoint(ckpt_path, epoch=epoch + 1, cfg=cfg, data=data, modules=modules, optimizers=optimizers,
                            rows=rows)
            write_log_csv(ckpt_path.with_name("train_log.csv"), rows, columns)
    bar.close()
    for module in modules.values():
        module.eval()
    return rows, start_epoch

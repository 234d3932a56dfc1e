"""Model families in one harness: `decoupled` (the paper's), `gan`, `vae` and `sarm` (comparisons), `towers`
(the calorimeter towers of an image, rendered by imaging; model/towers.py).

Every family trains on the same TrainingData with model/training.py's seeded, resumable epoch
loop, writes the same model.pt layout (model/checkpoint.py) and samples through the same path
into the images.h5 contract (model/sampling.py). A family module provides:

- `MODEL_FORMAT`, `LOG_COLUMNS`               its model.pt format and train_log.csv columns
- `train(data, cfg, checkpoint_dir, progress)`  -> TrainResult (networks by name, fixed settings, log)
- `rebuild(record, device)`                  the trained model (an nn.Module) from a model.pt record
- `conditional(model)`                       whether it generates at given muon pTs
- `generate(model, n, seed, ..., pt_gev)`    (n, npix, npix) float32 images in GeV
- `sample_attrs(record)`                     generated-file attributes describing the model
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from . import decoupled, gan, sarm, towers, vae
from .checkpoint import read_model_file, training_data_record, write_log_csv, write_model_file
from .config import TrainConfig
from .data import TrainingData
from .errors import ModelError
from .training import TrainResult

#: the family modules by the value of the `family` setting (config.FAMILIES)
FAMILIES: dict[str, ModuleType] = {"decoupled": decoupled, "gan": gan, "vae": vae, "sarm": sarm, "towers": towers}


def family_module(name: str) -> ModuleType:
    """The module implementing family `name`."""
    if name not in FAMILIES:
        raise ModelError(f"no model family '{name}'; choose one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def train(data: TrainingData, cfg: TrainConfig, checkpoint_dir: str | Path | None, *,
          progress: bool = True) -> TrainResult:
    """Train a model of family cfg.family on `data` (checkpointing into checkpoint_dir when given)."""
    cfg.check()
    # Adam's second moments of rarely-hit pixels underflow to denormals, which are ~10x slower on x86
    torch.set_flush_denormal(True)
    return family_module(cfg.family).train(data, cfg, checkpoint_dir, progress=progress)


def save_model(path: str | Path, result: TrainResult, data: TrainingData, *,
               extra: dict[str, Any] | None = None) -> Path:
    """Write model.pt of any family: its format, networks, fixed settings, config, data record, provenance."""
    family = result.config.family
    return write_model_file(
        path, model_format=family_module(family).MODEL_FORMAT, family=family, modules=result.modules,
        fixed=result.fixed, config=result.config, data_record={**training_data_record(data), **result.data_info},
        log_rows=result.log_rows, device=result.device, extra=extra,
    )


def train_and_save(data: TrainingData, cfg: TrainConfig, checkpoint_dir: str | Path, out: str | Path,
                   log_csv: str | Path, *, extra: dict[str, Any], progress: bool = True) -> Path:
    """What `python -m model train` does: train, then write train_log.csv and model.pt."""
    result = train(data, cfg, checkpoint_dir, progress=progress)
    write_log_csv(log_csv, result.log_rows, family_module(cfg.family).LOG_COLUMNS)
    return save_model(out, result, data, extra=extra)


def read_record(path: str | Path) -> dict[str, Any]:
    """The model.pt record in today's layout, of a known family and format; ModelError otherwise."""
    record = read_model_file(path)
    if record.get("format") == decoupled.LEGACY_MODEL_FORMAT:
        record = decoupled.upgrade_legacy_record(record)
    family = record.get("family")
    if family not in FAMILIES or record.get("format") != FAMILIES[family].MODEL_FORMAT:
        raise ModelError(f"{path}: not a model file of a known family (format {record.get('format')!r}, family "
                         f"{family!r}); retrain it with `python -m model train`")
    return record


def model_family(path: str | Path) -> str:
    """The family of a model.pt file."""
    return str(read_record(path)["family"])


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the trained model of any family from model.pt; returns (model, record)."""
    record = read_record(path)
    try:
        model = FAMILIES[record["family"]].rebuild(record, device)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None
    return model, record

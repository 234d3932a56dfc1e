"""Device choice (`device: auto` -> CUDA when present) and deterministic settings."""
from __future__ import annotations

import logging

import torch

from .errors import ModelError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """`auto` -> cuda if available else cpu; `cuda` without a GPU is an error. Logs the choice."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(
            f"device '{name}' requested but torch sees no CUDA GPU (torch {torch.__version__}); "
            "set training.device to 'auto' or 'cpu', or install the CUDA build of torch"
        )
    if name != "cpu" and not name.startswith("cuda"):
        raise ModelError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N")
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        log.info("using CUDA device %s (%s)", device, torch.cuda.get_device_name(device))
    else:
        log.info("using CPU (%d torch threads); no CUDA GPU requested or present", torch.get_num_threads())
    return device

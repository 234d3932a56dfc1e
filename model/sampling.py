"""Generated images into the images.h5 schema: the one sampling-to-file path of every model.

`sample_to_file` rebuilds a trained model of any family (model/families.py) and generates
from it; `write_generated_file` writes the generated images with the attributes the analysis
reads (also used by the independent-pixel baseline, model/baseline.py). For unconditional
models /muon/pt holds the weighted mean real muon pT for every image (the paper's
approximation), noted in the attrs. A pT-conditional model generates each image at a pT drawn
(seeded) from the weighted pT distribution of the real images (`--real`), and /muon/pt holds
that pT.

The generated file also records what sampling cost (`sampling_load_s`: device set-up and model
loading; `sampling_loop_s`: the batched sampling loop; with the device, CPU threads and batch
size): the results table's speed-up over the simulation reads it (docs/benchmarks.md).
"""
from __future__ import annotations

import logging
import platform
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.provenance import file_digest, provenance
from common.seeds import derive_seed
from imaging.h5schema import ImageFileError, read_image_file, write_image_file

from .device import resolve_device
from .errors import ModelError
from .families import family_module, load_model

log = logging.getLogger(__name__)

PT_NOTE = "unconditional model: /muon/pt is the weighted mean muon pT of the training images"
PT_NOTE_CONDITIONAL = (
    "pT-conditional model: /muon/pt is the pT each image was generated at, drawn from the weighted muon pT "
    "distribution of the real images"
)


def draw_real_pt(real: str | Path, n: int, *, seed: int) -> np.ndarray:
    """(n,) float32 muon pTs (GeV) drawn with replacement from the real file, with probability ∝ weight."""
    try:
        data = read_image_file(real)
    except ImageFileError as exc:
        raise ModelError(str(exc)) from None
    pt, w = data.muon_pt.astype(np.float64), data.weight.astype(np.float64)
    usable = np.isfinite(pt) & (w > 0)
    if not usable.any():
        raise ModelError(
            f"{real}: no image has a finite /muon/pt and a positive weight; cannot draw pTs to generate at")
    pt, cdf = pt[usable], np.cumsum(w[usable])
    rng = np.random.default_rng(derive_seed(seed, "muon_pt"))
    idx = np.searchsorted(cdf / cdf[-1], rng.random(n), side="right").clip(max=len(cdf) - 1)
    return pt[idx].astype(np.float32)


def train_time_s(record: Mapping[str, Any]) -> float:
    """Seconds spent training a model: the sum of its per-epoch times (resumed epochs included)."""
    return float(sum(float(row.get("time_s", 0.0)) for row in record.get("log", [])))


def sampling_cost_attrs(n: int, load_s: float, loop_s: float, device: torch.device, batch_size: int, *,
                        load_cpu_s: float, loop_cpu_s: float) -> dict[str, Any]:
    """Generated-file attributes of what sampling n images cost: wall and process CPU seconds of set-up + model
    loading and of the sampling loop, and where (device, its name, CPU threads, batch size)."""
    return {"sampling_n_images": int(n), "sampling_load_s": float(load_s), "sampling_loop_s": float(loop_s),
            "sampling_load_cpu_s": float(load_cpu_s), "sampling_loop_cpu_s": float(loop_cpu_s),
            "sampling_device": str(device),
            "sampling_threads": int(torch.get_num_threads()), "sampling_batch_size": int(batch_size),
            "sampling_device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()}


def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; else what `platform` knows), to state the machine of a timing."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def write_generated_file(
    out_path: str | Path,
    images: np.ndarray,
    muon_pt: np.ndarray,
    *,
    sample: str,
    radius: float,
    provenance_record: Mapping[str, Any],
    attrs: Mapping[str, Any],
) -> Path:
    """Generated images (weight 1 each) in the images.h5 schema, with the model's attributes."""
    n = len(images)
    return write_image_file(out_path, images, muon_pt, np.ones(n), sample=sample, radius=radius, kind="generated",
                            provenance=provenance_record, extra_attrs=dict(attrs))


def sample_to_file(
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
    cuda_batch_size: int | None = None,
) -> Path:
    """Sample n images (default: as many as the training set) from model.pt (any family) into an images.h5 file.

    `cuda_batch_size` (when given) replaces `batch_size` on a GPU, where larger batches fill the device.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    dev = resolve_device(device)
    model, record = load_model(model_path, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        batch_size = int(cuda_batch_size or batch_size)
    load_s, load_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    family = family_module(record["family"])
    info = record["training_data"]
    n = int(info["n_images"]) if n is None else int(n)
    if n < 1:
        raise ModelError(f"number of images to generate must be >= 1, got {n}")
    mean_pt = float(info["mean_muon_pt_gev"])
    conditional = family.conditional(model)
    if conditional:
        if real is None:
            raise ModelError(
                f"{model_path} is a pT-conditional model: pass --real <the images.h5 it was trained on> so that the "
                "generated images get muon pTs drawn from the real weighted pT distribution"
            )
        if file_digest(real) != info["digest"]:
            log.warning("%s is not the file %s was trained on (digest differs); drawing pT from it anyway",
                        real, model_path)
        pt = draw_real_pt(real, n, seed=seed)
    else:
        pt = np.full(n, mean_pt, dtype=np.float32)
    log.info("sampling %d images from %s (%s) on %s%s", n, model_path, record["family"], dev,
             " at real pTs" if conditional else "")
    t1, c1 = time.perf_counter(), time.process_time()
    images = family.generate(model, n, seed=seed, batch_size=batch_size, device=dev, progress=progress,
                             pt_gev=pt if conditional else None)
    loop_s, loop_cpu_s = time.perf_counter() - t1, time.process_time() - c1  # generate returns host memory: done
    log.info("sampling: %.3f s set-up + model loading, %.3f s loop (%.1f us per image, batch %d, %s, %d CPU threads)",
             load_s, loop_s, 1e6 * loop_s / n, batch_size, dev, torch.get_num_threads())
    attrs: dict[str, Any] = {
        "model": model_name, "model_file_digest": file_digest(model_path), "training_data_digest": info["digest"],
        "muon_pt_note": PT_NOTE_CONDITIONAL if conditional else PT_NOTE, "mean_muon_pt_gev": mean_pt,
        **family.sample_attrs(record), "arch": record["config"]["arch"], "family": record["family"],
        "train_time_s": train_time_s(record), "real_images": str(real) if real is not None else "",
        **sampling_cost_attrs(n, load_s, loop_s, dev, batch_size, load_cpu_s=load_cpu_s, loop_cpu_s=loop_cpu_s),
    }
    return write_generated_file(
        out_path, images, pt, sample=str(info["sample"]), radius=float(info["radius"]),
        provenance_record=provenance(record["config"], sampling_seed=seed, model=model_name, device=str(dev)),
        attrs=attrs,
    )

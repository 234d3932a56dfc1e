"""Generated images from a trained model, written in the images.h5 schema.

x = z * beta with z ~ Bern(sigmoid(logit)) and beta ~ p(. | eta), one fresh noise vector per
image, in batches on the chosen device. The models are unconditional, so /muon/pt holds the
weighted mean real muon pT for every image (the paper's approximation), noted in the attrs.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from imaging.h5schema import write_image_file
from imaging.provenance import file_digest, provenance

from .device import resolve_device
from .errors import ModelError
from .generators import Generator
from .likelihoods import NonZeroLikelihood
from .training import load_model

log = logging.getLogger(__name__)

PT_NOTE = "unconditional model: /muon/pt is the weighted mean muon pT of the training images"


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
) -> np.ndarray:
    """(n, npix, npix) float32 generated images in GeV, reproducible for a given seed and device."""
    if n < 1:
        raise ModelError(f"number of images to generate must be >= 1, got {n}")
    device = torch.device(device)
    generator = generator.to(device).eval()
    npix, noise_dim = generator.spec.npix, generator.spec.noise_dim
    rng = torch.Generator(device=device).manual_seed(int(seed))
    out = np.empty((n, npix, npix), dtype=np.float32)
    for start in tqdm(range(0, n, batch_size), desc="sample", unit="batch", disable=not progress, mininterval=2.0):
        k = min(batch_size, n - start)
        noise = torch.randn(k, noise_dim, generator=rng, device=device)
        logits, eta = generator(noise)  # (k, D)
        z = torch.rand(logits.shape, generator=rng, device=device) < torch.sigmoid(logits)
        values = likelihood.sample(eta, generator=rng)
        x = torch.where(z, values, torch.zeros_like(values))
        out[start:start + k] = x.view(k, npix, npix).cpu().numpy()
    return out


def train_time_s(record: dict[str, Any]) -> float:
    """Seconds spent training a model: the sum of its per-epoch times (resumed epochs included)."""
    return float(sum(float(row.get("time_s", 0.0)) for row in record.get("log", [])))


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
) -> Path:
    """Sample n images (default: as many as the training set) from model.pt into an images.h5 file."""
    dev = resolve_device(device)
    generator, likelihood, record = load_model(model_path, device=dev)
    info = record["training_data"]
    n = int(info["n_images"]) if n is None else int(n)
    log.info("sampling %d images from %s on %s", n, model_path, dev)
    images = sample_images(generator, likelihood, n, seed=seed, batch_size=batch_size, device=dev, progress=progress)
    mean_pt = float(info["mean_muon_pt_gev"])
    extra: dict[str, Any] = {
        "model": model_name, "model_file_digest": file_digest(model_path), "training_data_digest": info["digest"],
        "muon_pt_note": PT_NOTE, "mean_muon_pt_gev": mean_pt, "objective": record["config"]["objective"],
        "arch": record["config"]["arch"],
        "family": record["config"].get("family", "decoupled"),
        "train_time_s": train_time_s(record),
        "real_images": str(real) if real is not None else "",
    }
    return write_image_file(
        out_path, images, np.full(n, mean_pt, dtype=np.float32), np.ones(n), sample=str(info["sample"]),
        radius=float(info["radius"]), kind="generated",
        provenance=provenance(record["config"], sampling_seed=seed, model=model_name, device=str(dev)),
        extra_attrs=extra,
    )

"""The `independent_pixels` baseline: every pixel drawn independently from its empirical marginal.

Pixel i of a generated image is pixel i of a real image chosen with probability proportional
to its weight, independently for every pixel: the exact weighted marginal of each pixel
(zeros included) and no correlation between pixels.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.provenance import provenance

from .data import TrainingData, load_training_data
from .errors import ModelError
from .sampling import PT_NOTE, write_generated_file

log = logging.getLogger(__name__)

MODEL_NAME = "independent_pixels"


def independent_pixel_images(images: np.ndarray, weight: np.ndarray, n: int, rng: np.random.Generator, *,
                            batch_size: int = 4096, progress: bool = False) -> np.ndarray:
    """(n, *image shape) images whose every pixel is that pixel of a real image drawn with probability ∝ weight.

    images (N, ...) and weight (N,): the real images; each pixel of each generated image gets its
    own draw, so the pixels are independent and each follows its exact weighted marginal.
    """
    if n < 1:
        raise ModelError(f"number of images to generate must be >= 1, got {n}")
    x = images.reshape(images.shape[0], -1)  # (N, D)
    cdf = np.cumsum(np.asarray(weight, dtype=np.float64))
    cdf /= cdf[-1]
    d = x.shape[1]
    cols = np.arange(d)
    out = np.empty((n, d), dtype=x.dtype)
    for start in tqdm(range(0, n, batch_size), desc="independent pixels", unit="batch", disable=not progress,
                      mininterval=2.0):
        k = min(batch_size, n - start)
        rows = np.searchsorted(cdf, rng.random((k, d)), side="right").clip(max=len(cdf) - 1)  # (k, D) image indices
        out[start:start + k] = x[rows, cols]
    return out.reshape((n, *images.shape[1:]))


def sample_independent_pixels(data: TrainingData, n: int, *, seed: int, batch_size: int = 4096,
                              progress: bool = True) -> np.ndarray:
    """(n, npix, npix) float32 images, each pixel from its weighted marginal in `data`; seeded."""
    images = independent_pixel_images(data.x.numpy(), data.weight.numpy(), n, np.random.default_rng(seed),
                                      batch_size=batch_size, progress=progress)
    return images.reshape(n, data.npix, data.npix)


def baseline_to_file(images_path: str | Path, out_path: str | Path, *, n: int | None, seed: int,
                     progress: bool = True) -> Path:
    """Read real images, write n independent-pixel images (default: as many as real) to out_path."""
    data = load_training_data(images_path)
    n = len(data) if n is None else int(n)
    log.info("independent-pixel baseline: %d images from %d real ones (%s)", n, len(data), images_path)
    images = sample_independent_pixels(data, n, seed=seed, progress=progress)
    return write_generated_file(
        out_path, images, np.full(n, data.mean_muon_pt_gev, dtype=np.float32), sample=data.sample, radius=data.radius,
        provenance_record=provenance({"model": MODEL_NAME, "seed": seed}, sampling_seed=seed,
                                     training_data_digest=data.digest),
        attrs={"model": MODEL_NAME, "training_data_digest": data.digest, "muon_pt_note": PT_NOTE,
               "mean_muon_pt_gev": data.mean_muon_pt_gev, "family": "baseline",
               "train_time_s": 0.0},  # nothing is trained: the marginals are the data
    )

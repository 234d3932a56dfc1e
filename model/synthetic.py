"""Synthetic sparse images for tests and benchmarks (not physics; no simulation involved).

Each image has a pile-up-like component (every pixel non-zero with a small probability,
exponential ET) and, for a fraction of images, a core: a cluster of deposits near the
centre with a random size. About 99% of pixels are zero, like the real muon images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.provenance import provenance
from imaging.h5schema import write_image_file


def synthetic_images(
    n: int,
    *,
    npix: int = 32,
    seed: int = 0,
    pileup_occupancy: float = 0.006,
    pileup_mean_gev: float = 1.0,
    core_fraction: float = 0.5,
    core_mean_deposits: float = 6.0,
    core_mean_gev: float = 3.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (n, npix, npix) float32 GeV, muon pT (n,) GeV in [10, 15], weights (n,)."""
    rng = np.random.default_rng(seed)
    d = npix * npix
    pileup = (rng.random((n, d)) < pileup_occupancy) * rng.exponential(pileup_mean_gev, (n, d))
    images = pileup.astype(np.float32).reshape(n, npix, npix)
    # core: Poisson number of deposits around the centre, spread growing with a per-image size
    has_core = rng.random(n) < core_fraction
    n_dep = rng.poisson(core_mean_deposits, n) * has_core
    img_idx = np.repeat(np.arange(n), n_dep)
    spread = np.repeat(rng.uniform(0.5, 3.0, n), n_dep)
    centre = (npix - 1) / 2
    ie = np.clip(np.rint(centre + spread * rng.standard_normal(img_idx.size)), 0, npix - 1).astype(int)
    ip = np.clip(np.rint(centre + spread * rng.standard_normal(img_idx.size)), 0, npix - 1).astype(int)
    np.add.at(images, (img_idx, ie, ip), rng.exponential(core_mean_gev, img_idx.size).astype(np.float32))
    muon_pt = rng.uniform(10.0, 15.0, n).astype(np.float32)
    weight = rng.uniform(0.5, 1.5, n)
    return images, muon_pt, weight


def write_synthetic_file(path: str | Path, n: int, *, npix: int = 32, seed: int = 0, sample: str = "signal") -> Path:
    """Write synthetic images in the images.h5 schema (attr synthetic=True)."""
    images, pt, w = synthetic_images(n, npix=npix, seed=seed)
    return write_image_file(
        path, images, pt, w, sample=sample, kind="real",
        provenance=provenance({"synthetic": True, "n": n, "seed": seed}), extra_attrs={"synthetic": True},
    )

"""Synthetic images.h5 files with the paper's qualitative features, for tests and benchmarks.

Real images do not need to exist to exercise the analysis: "signal" toys have only a sparse
uniform (pile-up-like) component, "background" toys add a dense core around the muon (a b
jet). Generated toys are drawn the same way with another seed ("a good model") or by
resampling every pixel independently from the real images (the paper's baseline, model/baseline.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from imaging.h5schema import write_image_file
from model.baseline import independent_pixel_images

from .geometry import delta_r_map

#: pT range of the selected muons (GeV), as in the paper.
PT_RANGE_GEV = (10.0, 15.0)


def toy_images(
    n: int, sample: str, rng: np.random.Generator, *, npix: int = 32, radius: float = 0.4,
    occupancy: float = 0.01, core_scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, npix, npix) GeV, muon pT (n,) GeV, weight (n,)) for a toy `sample`.

    Uniform part: each pixel is non-zero with probability `occupancy`, ET ~ Exp(0.5 GeV).
    Background adds a core: occupancy 0.4 exp(-dR / 0.06) with ET ~ Exp(1 GeV) * core_scale,
    and a per-image jet activity factor so that pixels are correlated.
    """
    if sample not in ("signal", "background"):
        raise ValueError(f"toy sample must be 'signal' or 'background', got {sample!r}")
    shape = (n, npix, npix)
    images = (rng.random(shape) < occupancy) * rng.exponential(0.5, shape)
    if sample == "background":
        dr = delta_r_map(npix, radius)
        activity = rng.uniform(0.2, 1.8, size=(n, 1, 1))  # shared by all pixels of an image
        core = rng.random(shape) < np.clip(0.4 * np.exp(-dr / 0.06) * activity, 0, 1)
        images = images + core * rng.exponential(1.0 * core_scale, shape) * activity
    pt = rng.uniform(*PT_RANGE_GEV, size=n)
    weight = rng.uniform(0.5, 1.5, size=n) if sample == "signal" else np.ones(n)
    return images.astype(np.float32), pt.astype(np.float32), weight


def write_toy_files(
    outdir: str | Path, *, n_images: int = 2000, seed: int = 1, samples: tuple[str, ...] = ("signal", "background"),
    models: tuple[str, ...] = ("decoupled_fc", "independent_pixels"), npix: int = 32, radius: float = 0.4,
) -> dict[str, Path]:
    """Write {sample}/images.h5 and generated/{sample}/{model}.h5 under `outdir` (pipeline layout).

    Generated /muon/pt holds the weighted mean real pT (unconditional models). Returns
    {"sample" or "sample/model": path}.
    """
    outdir = Path(outdir)
    paths: dict[str, Path] = {}
    for i, sample in enumerate(samples):
        rng = np.random.default_rng([seed, i])
        images, pt, weight = toy_images(n_images, sample, rng, npix=npix, radius=radius)
        paths[sample] = write_image_file(outdir / sample / "images.h5", images, pt, weight, sample=sample,
                                         radius=radius, provenance={"toy_seed": seed})
        mean_pt = float(np.average(pt, weights=weight))
        for j, model in enumerate(models):
            grng = np.random.default_rng([seed, i, j + 1])
            if model == "independent_pixels":
                gen = independent_pixel_images(images, weight, n_images, grng)
            else:
                gen, _, _ = toy_images(n_images, sample, grng, npix=npix, radius=radius)
            paths[f"{sample}/{model}"] = write_image_file(
                outdir / "generated" / sample / f"{model}.h5", gen, np.full(n_images, mean_pt), np.ones(n_images),
                sample=sample, radius=radius, kind="generated", provenance={"toy_seed": seed, "model": model},
            )
    return paths

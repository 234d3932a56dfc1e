"""Small known image sets for the model tests (importable as `model_cases`; pytest puts tests/model on sys.path)."""
from __future__ import annotations

import numpy as np


def one_hot_images(n: int, npix: int = 4, seed: int = 0) -> np.ndarray:
    """(n, npix, npix) images with exactly one non-zero pixel (uniform position, ET in [2, 4] GeV)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, npix * npix), np.float32)
    x[np.arange(n), rng.integers(0, npix * npix, n)] = rng.uniform(2.0, 4.0, n)
    return x.reshape(n, npix, npix)

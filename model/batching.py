"""Generating n images in batches from one seeded device stream: the loop every family's sampler shares."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm


def generate_in_batches(
    n: int, npix: int, noise_dim: int, make: Callable[[torch.Tensor, slice, torch.Generator], torch.Tensor], *,
    seed: int, batch_size: int, device: torch.device, progress: bool, desc: str,
) -> np.ndarray:
    """(n, npix, npix) float32: per batch, draw the noise (k, noise_dim) from the seeded stream, then
    `make(noise, rows, rng)` returns the batch's images ((k, ...) tensor; `rows` are its indices
    into the n images, `rng` the same stream for any further draws). Reproducible for a seed and device."""
    rng = torch.Generator(device=device).manual_seed(int(seed))
    out = np.empty((n, npix, npix), dtype=np.float32)
    for start in tqdm(range(0, n, batch_size), desc=desc, unit="batch", disable=not progress, mininterval=2.0):
        k = min(batch_size, n - start)
        noise = torch.randn(k, noise_dim, generator=rng, device=device)
        out[start:start + k] = make(noise, slice(start, start + k), rng).reshape(k, npix, npix).cpu().numpy()
    return out

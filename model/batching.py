"""Generating n images in batches from one seeded device stream: the loop every family's sampler shares.

Fast by construction: inference mode (no autograd records), one output buffer allocated once,
and on a GPU no host synchronisation per batch (batches are written into a device staging
buffer that goes to the host in a few large copies, STAGING_BYTES at a time). The random
stream, and so every image, is the same as drawing and copying batch by batch.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

import numpy as np
import torch
from tqdm import tqdm

#: size of the device buffer that collects generated batches before one copy to the host (GPU only)
STAGING_BYTES = 1 << 30
_ON_DEVICE = contextvars.ContextVar("images_stay_on_device", default=False)


@contextlib.contextmanager
def images_stay_on_device() -> Iterator[None]:
    """Inside this block a GPU sampling loop returns its images as one device tensor, not copied to the host:
    for benchmarks that time the generator without the device-to-host copy (tests/benchmarks/bench_sampling.py)."""
    token = _ON_DEVICE.set(True)
    try:
        yield
    finally:
        _ON_DEVICE.reset(token)


def generate_in_batches(
    n: int, npix: int, noise_dim: int, make: Callable[[torch.Tensor, slice, torch.Generator], torch.Tensor], *,
    seed: int, batch_size: int, device: torch.device, progress: bool, desc: str,
) -> np.ndarray:
    """(n, npix, npix) float32: per batch, draw the noise (k, noise_dim) from the seeded stream, then
    `make(noise, rows, rng)` returns the batch's images ((k, ...) tensor; `rows` are its indices
    into the n images, `rng` the same stream for any further draws). Reproducible for a seed and device."""
    device = torch.device(device)
    rng = torch.Generator(device=device).manual_seed(int(seed))
    d = npix * npix
    on_host = device.type == "cpu"
    keep = not on_host and _ON_DEVICE.get()  # benchmark: the whole output stays on the device
    out = torch.empty((n, d), dtype=torch.float32, device=device if keep else "cpu")  # .numpy() shares it
    # on a GPU: a staging buffer of whole batches, flushed to `out` with one copy (and one sync) per fill
    stage_rows = n if on_host or keep else min(n, max(batch_size, STAGING_BYTES // (4 * d)))
    stage = out if on_host or keep else torch.empty((stage_rows, d), dtype=torch.float32, device=device)
    staged_from = 0  # first image row held in `stage`
    with torch.inference_mode():
        for start in tqdm(range(0, n, batch_size), desc=desc, unit="batch", disable=not progress, mininterval=2.0):
            k = min(batch_size, n - start)
            if not on_host and start + k - staged_from > stage_rows:  # full: to the host, then reuse
                out[staged_from:start].copy_(stage[:start - staged_from])
                staged_from = start
            noise = torch.randn(k, noise_dim, generator=rng, device=device)
            lo = start - staged_from
            stage[lo:lo + k] = make(noise, slice(start, start + k), rng).reshape(k, d)
        if keep:
            return out.reshape(n, npix, npix)
        if not on_host:
            out[staged_from:].copy_(stage[:n - staged_from])
    return out.numpy().reshape(n, npix, npix)

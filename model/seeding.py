"""Seeds for every random stream of the model stage, derived from the master seed.

Streams are named by strings (sample, model, purpose, epoch) so that adding a stream or a
model never shifts another one; the same (seed, names) always gives the same integer.
"""
from __future__ import annotations

import zlib

import numpy as np


def derive_seed(seed: int, *names: str | int) -> int:
    """A 63-bit seed from the master `seed` and a path of stream names (stable across runs)."""
    keys = [int(seed) & 0xFFFFFFFF, int(seed) >> 32]
    keys += [zlib.crc32(str(n).encode()) for n in names]
    state = np.random.SeedSequence(keys).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)

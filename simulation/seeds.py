"""Seeds of every random stream, derived from (master seed, sample, chunk, stream).

Chunks of a sample must be statistically independent and reproducible, whatever order
or machine they run on, so each seed is a hash of its coordinates (not seed + chunk,
which would make neighbouring chunks of two samples share streams).
"""
from __future__ import annotations

import hashlib

#: Pythia accepts Random:seed in [1, 900000000] (0 and negative mean time/default seed).
PYTHIA_SEED_MAX = 900_000_000


def derive_seed(master_seed: int, sample: str, chunk: int, stream: str) -> int:
    """Seed in [1, 900000000] for one random stream of one chunk of one sample.

    `stream` separates generators used by the same chunk ("pythia", "delphes").
    The range suits both Pythia's Random:seed and ROOT's TRandom3 (Delphes RandomSeed).
    """
    if master_seed < 0 or chunk < 0:
        raise ValueError(f"seeds need master_seed >= 0 and chunk >= 0, got {master_seed}, {chunk}")
    key = f"{master_seed}/{sample}/{chunk}/{stream}".encode()
    value = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
    return 1 + value % PYTHIA_SEED_MAX

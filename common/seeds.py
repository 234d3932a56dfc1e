"""Seeds of every random stream, derived from the master seed and the stream's names.

A stream is named by a path of names (sample, chunk, model, purpose, epoch), so that adding a
stream or a model never shifts another one, and the same (seed, names) always gives the same
integer, whatever order or machine the jobs run on (never seed + index, which would make
neighbouring streams of two samples share numbers).

`derive_seed` is the derivation for any stream. Two older streams keep their own formula
because every file made so far depends on their exact values (changing them would change every
simulated event, or every classifier AUC in the tables), and both reduce to the same idea:

- `chunk_seed`  simulation chunks (Pythia Random:seed, Delphes RandomSeed, MadGraph iseed):
                a sha256 of the names, in [1, 900000000], the range Pythia and ROOT accept;
- `pair_seed`   the analysis stream of one (sample, model) pair: a 32-bit `derive_seed`
                variant (the master seed as one entropy word).
"""
from __future__ import annotations

import hashlib
import zlib

import numpy as np

#: Pythia accepts Random:seed in [1, 900000000] (0 and negative mean time/default seed).
PYTHIA_SEED_MAX = 900_000_000


def _name_words(names: tuple[str | int, ...]) -> list[int]:
    """One 32-bit entropy word per stream name (crc32 of its text)."""
    return [zlib.crc32(str(n).encode()) for n in names]


def derive_seed(seed: int, *names: str | int) -> int:
    """A 63-bit seed from the master `seed` and a path of stream names (stable across runs)."""
    keys = [int(seed) & 0xFFFFFFFF, int(seed) >> 32, *_name_words(names)]
    state = np.random.SeedSequence(keys).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def pair_seed(seed: int, sample: str, model: str) -> int:
    """32-bit seed of the analysis stream of one (sample, model) pair."""
    keys = [int(seed), *_name_words((sample, model))]
    return int(np.random.SeedSequence(keys).generate_state(1)[0])


def chunk_seed(master_seed: int, sample: str, chunk: int, stream: str) -> int:
    """Seed in [1, 900000000] for one random stream of one simulation chunk of one sample.

    `stream` separates generators used by the same chunk ("pythia", "delphes", "madgraph").
    The range suits both Pythia's Random:seed and ROOT's TRandom3 (Delphes RandomSeed).
    """
    if master_seed < 0 or chunk < 0:
        raise ValueError(f"seeds need master_seed >= 0 and chunk >= 0, got {master_seed}, {chunk}")
    key = f"{master_seed}/{sample}/{chunk}/{stream}".encode()
    value = int.from_bytes(hashlib.sha256(key).digest()[:8], "big")
    return 1 + value % PYTHIA_SEED_MAX

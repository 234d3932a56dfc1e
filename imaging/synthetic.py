"""Delphes-schema ROOT files written with uproot, for tests and benchmarks (no physics).

The tree is named `Delphes` and its branches carry Delphes' names and types
(`Tower.ET` float32[], counter `Tower_size`, `Muon.Charge` int32[], `Event.Weight`
one entry per event), so the reader treats them like real Delphes output.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

TOWER_FIELDS = ("ET", "Eta", "Phi", "Eem", "Ehad")
MUON_FIELDS = ("PT", "Eta", "Phi", "Charge")


def _jagged(values: Sequence[Sequence[float]] | ak.Array, dtype: type) -> ak.Array:
    """Per-event lists (also zero events) as a typed `var * dtype` awkward array."""
    if isinstance(values, ak.Array):
        return ak.values_astype(values, dtype)
    counts = np.array([len(v) for v in values], dtype=np.int64)  # test-data helper, not a hot path
    flat = np.concatenate([np.asarray(v, dtype=dtype) for v in values]) if len(values) else np.zeros(0, dtype)
    return ak.unflatten(flat.astype(dtype), counts)


def write_delphes_file(
    path: str | Path,
    towers: Mapping[str, Sequence[Sequence[float]] | ak.Array],
    muons: Mapping[str, Sequence[Sequence[float]] | ak.Array],
    event_weight: Sequence[float] | np.ndarray | None = None,
    *,
    layout: str = "ttree",
    drop: Sequence[str] = (),
    compression: str = "zlib",
) -> Path:
    """Write a `Delphes` tree with Tower.*, Muon.* and Event.Weight branches.

    `towers`/`muons` map Delphes field names (ET, Eta, ...) to per-event lists; missing
    Eem/Ehad default to ET-based splits (all EM) so every Tower branch exists. `layout`
    "ttree" (Delphes-like TTree) or "rntuple" (uproot's default for dicts); `drop` removes
    branches by full name (e.g. "Tower.ET") to make broken files on purpose. `compression`:
    "zlib" (level 1, what Delphes writes by default: ROOT setting 101), "lz4" or "zstd".
    """
    tower = {k: _jagged(v, np.float32) for k, v in towers.items()}
    if "ET" in tower and "Eta" in tower:
        cosh = np.cosh(tower["Eta"])
        tower.setdefault("Eem", tower["ET"] * cosh)
        tower.setdefault("Ehad", tower["ET"] * 0)
    muon = {k: _jagged(v, np.int32 if k == "Charge" else np.float32) for k, v in muons.items()}
    n = len(next(iter(tower.values())))
    weight = np.ones(n, np.float32) if event_weight is None else np.asarray(event_weight, np.float32)
    groups = {
        "Tower": {k: v for k, v in tower.items() if f"Tower.{k}" not in drop},
        "Muon": {k: v for k, v in muon.items() if f"Muon.{k}" not in drop},
        "Event": {} if "Event.Weight" in drop else {"Weight": ak.unflatten(weight, np.ones(n, np.int64))},
    }
    data = {name: ak.zip(fields) for name, fields in groups.items() if fields}
    path = Path(path)
    codecs = {"zlib": uproot.ZLIB(1), "lz4": uproot.LZ4(4), "zstd": uproot.ZSTD(5)}
    with uproot.recreate(path, compression=codecs[compression]) as f:
        if layout == "ttree":
            tree = f.mktree("Delphes", {k: v.type.content for k, v in data.items()},
                            field_name=lambda outer, inner: f"{outer}.{inner}",
                            counter_name=lambda counted: f"{counted}_size")
            if n:
                tree.extend(data)
        elif layout == "rntuple":
            f["Delphes"] = data
        else:
            raise ValueError(f"layout must be 'ttree' or 'rntuple', got {layout!r}")
    return path


def random_delphes_events(
    n_events: int,
    *,
    towers_per_event: int = 750,
    seed: int = 0,
    muon_pt_range: tuple[float, float] = (8.0, 17.0),
) -> tuple[dict[str, ak.Array], dict[str, ak.Array], np.ndarray]:
    """Random towers (uniform in |eta| < 4.9, phi; exponential ET ~ 1 GeV) and 0-2 muons per event.

    Occupancy resembles Delphes at mean pile-up 50 (~750 towers per event); only for speed tests.
    """
    rng = np.random.default_rng(seed)
    n_t = rng.poisson(towers_per_event, n_events)
    total = int(n_t.sum())
    eta = rng.uniform(-4.9, 4.9, total).astype(np.float32)
    et = rng.exponential(1.0, total).astype(np.float32)
    frac_em = rng.uniform(0, 1, total).astype(np.float32)
    e = et * np.cosh(eta)
    towers = {
        "ET": ak.unflatten(et, n_t),
        "Eta": ak.unflatten(eta, n_t),
        "Phi": ak.unflatten(rng.uniform(-np.pi, np.pi, total).astype(np.float32), n_t),
        "Eem": ak.unflatten((e * frac_em).astype(np.float32), n_t),
        "Ehad": ak.unflatten((e * (1 - frac_em)).astype(np.float32), n_t),
    }
    n_m = rng.choice([0, 1, 2], size=n_events, p=[0.05, 0.75, 0.20])
    m = int(n_m.sum())
    muons = {
        "PT": ak.unflatten(rng.uniform(*muon_pt_range, m).astype(np.float32), n_m),
        "Eta": ak.unflatten(rng.uniform(-2.5, 2.5, m).astype(np.float32), n_m),
        "Phi": ak.unflatten(rng.uniform(-np.pi, np.pi, m).astype(np.float32), n_m),
        "Charge": ak.unflatten(rng.choice([-1, 1], m).astype(np.int32), n_m),
    }
    return towers, muons, np.ones(n_events)

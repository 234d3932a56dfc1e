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

from .towers import TowerSet

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


def random_towers(
    n_images: int,
    *,
    seed: int = 0,
    ecal_per_image: float = 10.0,
    hcal_per_image: float = 6.0,
    radius: float = 0.4,
    ecal_cell: float = 0.0174,
    hcal_cell: float = 0.087,
) -> TowerSet:
    """Random towers around N muons on Delphes-like cell grids (no physics; for tests and benchmarks).

    ECal-only towers (Poisson mean `ecal_per_image`, cells of `ecal_cell`) and HCal-only towers
    (mean `hcal_per_image`, cells of `hcal_cell`); each grid is offset at random per image, as the
    fixed detector grid is relative to a muon; the tower position is uniform inside its cell and
    within dR < radius + one cell; ET exponential with mean 1 GeV (ECal) and 2 GeV (HCal).
    """
    rng = np.random.default_rng(seed)
    parts = []
    for cell, mean, ecal in ((ecal_cell, ecal_per_image, True), (hcal_cell, hcal_per_image, False)):
        counts = rng.poisson(mean, n_images)
        img = np.repeat(np.arange(n_images), counts)
        grid = rng.uniform(0, cell, (n_images, 2))[img]  # the grid's offset relative to each muon
        reach = radius + cell
        centre = rng.uniform(-reach, reach, (img.size, 2))
        lo = np.floor((centre - grid) / cell) * cell + grid  # the cell holding that point
        pos = lo + rng.uniform(0, cell, lo.shape)
        et = rng.exponential(1.0 if ecal else 2.0, img.size)
        parts.append((img, pos, lo, et, ecal))
    img = np.concatenate([p[0] for p in parts])
    order = np.argsort(img, kind="stable")
    pos = np.concatenate([p[1] for p in parts])[order]
    lo = np.concatenate([p[2] for p in parts])[order]
    width = np.concatenate([np.full(p[0].size, c) for p, c in zip(parts, (ecal_cell, hcal_cell), strict=True)])[order]
    et = np.concatenate([p[3] for p in parts])[order]
    is_ecal = np.concatenate([np.full(p[0].size, p[4]) for p in parts])[order]
    offsets = np.zeros(n_images + 1, dtype=np.int64)
    np.cumsum(np.bincount(img, minlength=n_images), out=offsets[1:])
    f32 = np.float32
    return TowerSet(offsets, pos[:, 0].astype(f32), pos[:, 1].astype(f32), np.where(is_ecal, et, 0).astype(f32),
                    np.where(is_ecal, 0, et).astype(f32),
                    np.column_stack([lo[:, 0], lo[:, 0] + width, lo[:, 1], lo[:, 1] + width]).astype(f32))

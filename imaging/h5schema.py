"""The images.h5 contract shared by imaging (real images), model (generated) and analysis.

```
/images          float32 (N, npix, npix)  ET per pixel in GeV; axis 1 = d-eta, axis 2 = d-phi
/muon/pt         float32 (N,)  muon pT in GeV (generated: the pT the image stands for)
/muon/eta        float32 (N,)  muon eta (NaN for generated images)
/muon/phi        float32 (N,)  muon phi in rad (NaN for generated images)
/muon/charge     float32 (N,)  muon charge (0 for generated images)
/weight          float64 (N,)  per-image weight
/towers/         optional (schema_version 2): the towers each image is rendered from, ragged
  offsets        int64   (N + 1,)  image i owns towers offsets[i]:offsets[i + 1]; offsets[0] = 0, offsets[N] = T
  deta           float32 (T,)      tower eta - muon eta (the position the point rendering uses)
  dphi           float32 (T,)      tower phi - muon phi in rad, wrapped into [-pi, pi)
  et_ecal        float32 (T,)      GeV: ECal part of the tower ET (Eem / cosh eta)
  et_hcal        float32 (T,)      GeV: HCal part of the tower ET (Ehad / cosh eta)
  edges          float32 (T, 4)    the tower's cell relative to the muon: (deta_lo, deta_hi, dphi_lo, dphi_hi)
attrs            schema_version, sample, npix, radius, eta_edges, phi_edges, kind (real|generated),
                 provenance (JSON: config digest, seeds, versions), plus stage extras
                 (real images: quantity, tower_shape, imaging_config, statistics, ...)
```
With /towers, `imaging.towers.render_towers(towers, tower_shape=attrs tower_shape, npix, radius,
quantity=attrs quantity)` equals /images bit for bit: the imaging stage makes its images that
way. A tower is stored when it puts ET into its image under the run's tower_shape (point:
dR < radius of (deta, dphi); cell: its cell overlaps a pixel of the disc; mixed: either, for
its ECal and HCal part), whatever the quantity; `imaging.quantity` only chooses the parts drawn
(et: both, et_ecal / et_hcal: one). Cells are zero-size (deta, deta, dphi, dphi) where the
Delphes input had no Tower.Edges (uproot-written test files, tower_shape point only).
Version 1 files (no /towers) read as before; files without /towers (generated images) are
version 2 files too.
Files are chunked, compressed, written to a temporary name and renamed when complete.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from common.errors import StageError
from common.provenance import atomic_output

from .geometry import pixel_edges
from .towers import TowerSet

MUON_FIELDS = ("pt", "eta", "phi", "charge")
#: HDF5 filter of /images. Images are ~99.6% zeros: gzip level 1 without byte shuffling writes
#: 2x and reads 2.5x faster than gzip-4 + shuffle and makes a smaller file (10k real images:
#: 0.60 vs 0.76 MB; 43 MB uncompressed). Any HDF5 reader has gzip.
IMAGE_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": False}
#: HDF5 filter of /towers, as /images: on 8.7k real towers (mixed) gzip 1 writes 203 kB (of 278 kB raw) in
#: 7 ms; shuffling bytes made it larger (222 kB), gzip 4-6 + shuffle 215-217 kB at 1.2-1.9x the time
TOWER_COMPRESSION = IMAGE_COMPRESSION
TOWER_FIELDS = ("deta", "dphi", "et_ecal", "et_hcal", "edges")
#: 2: optional /towers group. Readers accept every version up to this one.
SCHEMA_VERSION = 2


class ImageFileError(StageError, ValueError):
    """An images.h5 file is missing, malformed or does not match the contract."""


@dataclass
class ImageSet:
    """Images plus their muon kinematics, weights and file attributes (in memory)."""

    images: np.ndarray  # (N, npix, npix) float32, GeV
    muon_pt: np.ndarray  # (N,) float32, GeV
    weight: np.ndarray  # (N,) float64
    muon_eta: np.ndarray | None = None  # (N,) float32
    muon_phi: np.ndarray | None = None  # (N,) float32, rad
    muon_charge: np.ndarray | None = None  # (N,) float32
    attrs: dict[str, Any] = field(default_factory=dict)
    towers: TowerSet | None = None  # the towers behind each image (read_image_file(..., towers=True))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def npix(self) -> int:
        return int(self.images.shape[-1])

    @property
    def radius(self) -> float:
        return float(self.attrs.get("radius", 0.4))

    @property
    def sample(self) -> str:
        return str(self.attrs.get("sample", ""))


def _as_1d(name: str, values: Any, n: int, dtype: Any, fill: float) -> np.ndarray:
    if values is None:
        return np.full(n, fill, dtype=dtype)
    arr = np.asarray(values, dtype=dtype).reshape(-1)
    if arr.shape != (n,):
        raise ImageFileError(f"{name} has {arr.shape[0]} entries but there are {n} images")
    return arr


def write_image_file(
    path: str | Path,
    images: np.ndarray,
    muon_pt: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    muon_eta: np.ndarray | None = None,
    muon_phi: np.ndarray | None = None,
    muon_charge: np.ndarray | None = None,
    sample: str,
    radius: float = 0.4,
    kind: str = "real",
    provenance: Mapping[str, Any] | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
    towers: TowerSet | None = None,
) -> Path:
    """Write an images.h5 file atomically (temp name, then rename) and return its path.

    `towers` (one entry per image) are written to /towers when given.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise ImageFileError(f"images must have shape (N, npix, npix), got {images.shape} for {path}")
    n, npix = images.shape[0], images.shape[1]
    if not np.isfinite(images).all():
        raise ImageFileError(f"images for {path} contain NaN or inf")
    pt = _as_1d("muon_pt", muon_pt, n, np.float32, np.nan)
    w = _as_1d("weight", weight, n, np.float64, 1.0)
    cols = {
        "pt": pt,
        "eta": _as_1d("muon_eta", muon_eta, n, np.float32, np.nan),
        "phi": _as_1d("muon_phi", muon_phi, n, np.float32, np.nan),
        "charge": _as_1d("muon_charge", muon_charge, n, np.float32, 0.0),
    }
    if towers is not None:
        problems = towers.problems()
        if len(towers) != n and not problems:
            problems = [f"'/towers/offsets' describes {len(towers)} images but there are {n}"]
        if problems:
            raise ImageFileError(f"towers for {path}: " + "; ".join(problems))
    chunk_rows = max(1, min(n, 1024))
    edges = pixel_edges(npix, radius)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(
            "images", data=images, chunks=(chunk_rows, npix, npix) if n else None,
            **IMAGE_COMPRESSION,
        )
        grp = f.create_group("muon")
        for key, values in cols.items():
            grp.create_dataset(key, data=values, chunks=(chunk_rows,) if n else None, compression="gzip")
        f.create_dataset("weight", data=w, chunks=(chunk_rows,) if n else None, compression="gzip")
        if towers is not None:
            _write_towers(f.create_group("towers"), towers)
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["sample"] = sample
        f.attrs["kind"] = kind
        f.attrs["npix"] = npix
        f.attrs["radius"] = float(radius)
        f.attrs["eta_edges"] = edges
        f.attrs["phi_edges"] = edges
        f.attrs["provenance"] = json.dumps(dict(provenance or {}), sort_keys=True, default=str)
        for key, value in (extra_attrs or {}).items():
            f.attrs[key] = json.dumps(value, default=str) if isinstance(value, (dict, list)) else value
    return Path(path)


def _write_towers(grp: h5py.Group, towers: TowerSet) -> None:
    """The /towers datasets (chunked and compressed once there are towers)."""
    grp.create_dataset("offsets", data=np.asarray(towers.offsets, dtype=np.int64), compression="gzip")
    t = towers.n_towers
    rows = max(1, min(t, 1 << 16))
    for name in TOWER_FIELDS:
        values = np.asarray(getattr(towers, name), dtype=np.float32)
        grp.create_dataset(name, data=values, chunks=(rows, *values.shape[1:]) if t else None,
                           **(TOWER_COMPRESSION if t else {}))


def _read_towers(f: h5py.File, path: Path, n: int) -> TowerSet:
    """The towers of the first n images, validated; errors name the file and the dataset."""
    if "towers" not in f:
        version = f.attrs.get("schema_version", 1)
        raise ImageFileError(
            f"{path}: no '/towers' group (schema_version {version}, kind {f.attrs.get('kind', '?')!r}); "
            "towers are written by the imaging stage from schema_version 2 on - rebuild the images "
            "(snakemake images), or read without towers")
    grp = f["towers"]
    for name in ("offsets", *TOWER_FIELDS):
        if name not in grp:
            raise ImageFileError(f"{path}: missing dataset '/towers/{name}'; the file is incomplete - rebuild it")
    offsets = grp["offsets"][:]
    n_all, t = f["images"].shape[0], grp["deta"].shape[0]
    if offsets.shape != (n_all + 1,) or not np.issubdtype(offsets.dtype, np.integer):
        raise ImageFileError(f"{path}: '/towers/offsets' is {offsets.dtype} {offsets.shape}, expected integers of "
                             f"shape ({n_all + 1},) (one more than the images); rebuild the file")
    for name in TOWER_FIELDS:
        expected = (t, 4) if name == "edges" else (t,)
        if grp[name].shape != expected:
            raise ImageFileError(f"{path}: '/towers/{name}' has shape {grp[name].shape}, expected {expected} "
                                 "(as '/towers/deta'); rebuild the file")
    whole = TowerSet(offsets, *(np.zeros(grp[k].shape, np.float32) for k in TOWER_FIELDS))  # offsets only
    problems = whole.problems()
    if not problems:
        stop = int(offsets[n])
        towers = TowerSet(offsets[:n + 1].astype(np.int64, copy=False),
                          *(grp[k][:stop].astype(np.float32, copy=False) for k in TOWER_FIELDS))
        problems = towers.problems()
    if problems:
        raise ImageFileError(f"{path}: " + "; ".join(problems) + "; rebuild the file")
    return towers


def file_has_towers(path: str | Path) -> bool:
    """Whether an images.h5 file carries the /towers group (no validation: read_image_file does that)."""
    try:
        with h5py.File(path, "r") as f:
            return "towers" in f
    except OSError as exc:
        raise ImageFileError(f"{path}: not a readable HDF5 file ({exc})") from exc


def read_image_file(path: str | Path, *, max_images: int | None = None, towers: bool = False) -> ImageSet:
    """Read and validate an images.h5 file; errors name the file and the offending key.

    With `towers` the /towers group is read and validated too (an error if the file has none);
    without, it is not touched, so image readers pay nothing for it.
    """
    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"{path}: no such file; run the imaging (or sampling) stage first")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ImageFileError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
        version = f.attrs.get("schema_version", 1)
        if int(version) > SCHEMA_VERSION:
            raise ImageFileError(f"{path}: schema_version {version} is newer than this code reads "
                                 f"({SCHEMA_VERSION}); update the project")
        for key in ("images", "weight", *(f"muon/{m}" for m in MUON_FIELDS)):
            if key not in f:
                raise ImageFileError(f"{path}: missing dataset '/{key}'; is this an images.h5 file?")
        ds = f["images"]
        if ds.ndim != 3 or ds.shape[1] != ds.shape[2]:
            raise ImageFileError(f"{path}: '/images' has shape {ds.shape}, expected (N, npix, npix)")
        n = ds.shape[0] if max_images is None else min(ds.shape[0], max_images)
        images = ds[:n].astype(np.float32, copy=False)
        cols = {m: f[f"muon/{m}"][:n] for m in MUON_FIELDS}
        weight = f["weight"][:n].astype(np.float64, copy=False)
        for key, values in (("weight", weight), *((f"muon/{m}", v) for m, v in cols.items())):
            if values.shape != (n,):
                raise ImageFileError(f"{path}: '/{key}' has shape {values.shape}, expected ({n},)")
        tower_set = _read_towers(f, path, n) if towers else None
        attrs: dict[str, Any] = {}
        for key, value in f.attrs.items():
            if isinstance(value, bytes):
                value = value.decode()
            if key == "provenance" and isinstance(value, str):
                value = json.loads(value)
            attrs[key] = value.tolist() if isinstance(value, np.ndarray) else value
    if not np.isfinite(images).all():
        raise ImageFileError(f"{path}: '/images' contains NaN or inf")
    if not np.isfinite(weight).all():
        raise ImageFileError(f"{path}: '/weight' contains NaN or inf")
    return ImageSet(
        images=images, muon_pt=cols["pt"].astype(np.float32, copy=False), weight=weight,
        muon_eta=cols["eta"], muon_phi=cols["phi"], muon_charge=cols["charge"], attrs=attrs, towers=tower_set,
    )

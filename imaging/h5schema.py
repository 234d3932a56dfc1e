"""The images.h5 contract shared by imaging (real images), model (generated) and analysis.

```
/images        float32 (N, npix, npix)  ET per pixel in GeV; axis 1 = d-eta, axis 2 = d-phi
/muon/pt       float32 (N,)  muon pT in GeV (generated: the pT the image stands for)
/muon/eta      float32 (N,)  muon eta (NaN for generated images)
/muon/phi      float32 (N,)  muon phi in rad (NaN for generated images)
/muon/charge   float32 (N,)  muon charge (0 for generated images)
/weight        float64 (N,)  per-image weight
attrs          sample, npix, radius, eta_edges, phi_edges, kind (real|generated),
               provenance (JSON: config digest, seeds, versions), plus stage extras
```
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

MUON_FIELDS = ("pt", "eta", "phi", "charge")
#: HDF5 filter of /images. Images are ~99.6% zeros: gzip level 1 without byte shuffling writes
#: 2x and reads 2.5x faster than gzip-4 + shuffle and makes a smaller file (10k real images:
#: 0.60 vs 0.76 MB; 43 MB uncompressed). Any HDF5 reader has gzip.
IMAGE_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": False}
SCHEMA_VERSION = 1


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


def pixel_edges(npix: int, radius: float) -> np.ndarray:
    """Pixel edges (npix + 1,) along d-eta or d-phi: [-radius, radius] in npix equal bins."""
    return np.linspace(-radius, radius, npix + 1)


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
) -> Path:
    """Write an images.h5 file atomically (temp name, then rename) and return its path."""
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


def read_image_file(path: str | Path, *, max_images: int | None = None) -> ImageSet:
    """Read and validate an images.h5 file; errors name the file and the offending key."""
    path = Path(path)
    if not path.exists():
        raise ImageFileError(f"{path}: no such file; run the imaging (or sampling) stage first")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ImageFileError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
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
        muon_eta=cols["eta"], muon_phi=cols["phi"], muon_charge=cols["charge"], attrs=attrs,
    )

"""Read real and generated images.h5 files and check they can be compared."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from imaging.h5schema import ImageSet, read_image_file

from .errors import AnalysisError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grid:
    """Image grid of a file: npix x npix pixels over [-radius, radius] in d-eta and d-phi."""

    path: Path
    npix: int
    radius: float


@dataclass
class Images:
    """One file's images for analysis: what it is (sample, label) and where it came from."""

    path: Path
    sample: str
    label: str  # "real" or the model name
    data: ImageSet
    in_memory: bool = False  # made in memory (e.g. the fidelity study's baseline): `path` names its source only

    @property
    def npix(self) -> int:
        return self.data.npix

    @property
    def radius(self) -> float:
        return self.data.radius

    @property
    def grid(self) -> Grid:
        return Grid(self.path, self.npix, self.radius)


def load_images(
    path: str | Path, *, sample: str, label: str, max_images: int | None = None,
) -> Images:
    """Read `path` (images.h5 schema) and check it is usable: images, geometry, pT, weights.

    `sample` must match the file's `sample` attribute when it has one, so swapped inputs
    fail loudly instead of producing a plausible-looking wrong plot.
    """
    path = Path(path)
    data = read_image_file(path, max_images=max_images)
    n = len(data)
    if n == 0:
        raise AnalysisError(f"{path}: contains no images; re-run the stage that writes it")
    file_sample = data.attrs.get("sample")
    if file_sample and str(file_sample) != sample:
        raise AnalysisError(
            f"{path}: file is for sample '{file_sample}' but was given as '{sample}' ({label}); check the inputs"
        )
    npix_attr = data.attrs.get("npix")
    if npix_attr is not None and int(npix_attr) != data.npix:
        raise AnalysisError(f"{path}: attribute npix={npix_attr} but /images is {data.npix}x{data.npix}")
    if "radius" not in data.attrs or not float(data.attrs["radius"]) > 0:
        raise AnalysisError(f"{path}: attribute 'radius' (image half-width in dR) is missing or not positive")
    w = data.weight
    if (w < 0).any() or not w.sum() > 0:
        raise AnalysisError(f"{path}: '/weight' must be >= 0 with a positive sum (min {w.min():.3g})")
    negative = data.images < 0
    if negative.any():
        if data.attrs.get("kind") != "generated":
            raise AnalysisError(f"{path}: '/images' has negative ET values (min {data.images.min():.3g} GeV)")
        # The paper's Gaussian likelihood puts mass below zero: such pixels are kept as
        # generated (they lower isolation sums) and counted in the metrics table.
        nonzero = np.count_nonzero(data.images)
        log.warning("%s: %.1f%% of the non-zero generated pixels are negative (min %.3g GeV)",
                    path, 100.0 * negative.sum() / max(nonzero, 1), data.images.min())
    log.info("read %s: %d %s images (%s), npix=%d radius=%.3g", path, n, sample, label, data.npix, data.radius)
    return Images(path=path, sample=sample, label=label, data=data)


def check_compatible(real: Images | Grid, generated: Images | Grid) -> None:
    """Raise if two files do not describe the same image grid (npix, radius)."""
    if real.npix != generated.npix or not np.isclose(real.radius, generated.radius):
        raise AnalysisError(
            f"{generated.path} ({generated.npix} px, radius {generated.radius}) does not match "
            f"{real.path} ({real.npix} px, radius {real.radius}); regenerate with the imaging settings of the real file"
        )


def parse_labelled(spec: str, what: str) -> tuple[str, str]:
    """Split 'LABEL=PATH' (command-line input spec) into (label, path)."""
    label, sep, path = spec.partition("=")
    if not sep or not label or not path:
        raise AnalysisError(f"{what} '{spec}' must look like LABEL=PATH")
    return label, path


#: Group of images.h5 holding the towers behind each image (ragged: `offsets` (N + 1,) into flat
#: per-tower arrays); the FPD/KPD features use their ECal and HCal ET when a file has them.
TOWER_GROUP = "towers"
TOWER_ET_KEYS = ("et_ecal", "et_hcal")


def read_calo_sums(path: str | Path, n_images: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(ECal ET, HCal ET) summed over each image's towers (GeV, (n_images,) each), or None when
    the file has no /towers group (files written before towers were stored, per-pixel models)."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        if TOWER_GROUP not in f:
            return None
        group = f[TOWER_GROUP]
        for key in ("offsets", *TOWER_ET_KEYS):
            if key not in group:
                raise AnalysisError(f"{path}: /{TOWER_GROUP} lacks '{key}'; re-run the stage that wrote the file")
        offsets = np.asarray(group["offsets"][: n_images + 1], dtype=np.int64)
        if offsets.shape != (n_images + 1,) or offsets[0] != 0 or (np.diff(offsets) < 0).any():
            raise AnalysisError(f"{path}: /{TOWER_GROUP}/offsets must start at 0, rise, and have one entry per "
                                f"image + 1 ({n_images + 1}); got shape {offsets.shape}")
        sums = []
        for key in TOWER_ET_KEYS:
            et = np.asarray(group[key][: offsets[-1]], dtype=np.float64)
            if et.shape != (offsets[-1],):
                raise AnalysisError(f"{path}: /{TOWER_GROUP}/{key} has {et.shape[0]} towers, "
                                    f"its offsets need {offsets[-1]}; re-run the stage that wrote the file")
            # per-image sums without a loop: cumulative sum read at the offsets
            cum = np.concatenate([[0.0], np.cumsum(et)])
            sums.append(cum[offsets[1:]] - cum[offsets[:-1]])
    return sums[0], sums[1]

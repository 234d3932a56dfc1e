"""Imaging settings: one dataclass mirroring the `imaging:` section of config.yaml.

The keys, defaults and meanings are the same as in workflow/schemas/imaging.schema.yaml
(tests/imaging/test_imaging_workflow.py checks it); the CLI takes the section as one JSON
object (`python -m imaging build --config-json '{"muon_pt_min": 10, ...}'`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from .errors import ImagingError

#: Image quantity -> the Delphes Tower branch it stands for. Every quantity reads Tower.ET, Eem and Ehad:
#: the stored towers carry both parts (imaging.towers.tower_et_parts) and the quantity picks what is drawn.
QUANTITY_BRANCHES: dict[str, tuple[str, ...]] = {
    "et": ("Tower.ET",),  # total transverse energy (GeV)
    "et_ecal": ("Tower.Eem",),  # ECAL part, Eem / cosh(eta) (GeV)
    "et_hcal": ("Tower.Ehad",),  # HCAL part, Ehad / cosh(eta) (GeV)
}
MUONS_PER_EVENT = ("leading", "all")
#: point: a tower's value goes to the pixel of its (eta, phi); cell: spread over its cell's area;
#: mixed: the ECal part (Eem) as a point, the HCal part (Ehad) over the cell (a coarse HCal cell does not
#: know where in it the energy fell; Delphes draws the tower position at random inside the cell)
TOWER_SHAPES = ("point", "cell", "mixed")
#: Image quantity -> which calorimeter parts of a tower it draws: (ECal part, HCal part).
QUANTITY_PARTS: dict[str, tuple[bool, bool]] = {"et": (True, True), "et_ecal": (True, False), "et_hcal": (False, True)}


@dataclass(frozen=True)
class ImagingConfig:
    """How Delphes events become muon-centred images (units: GeV, rad)."""

    npix: int = 32  # pixels per side
    radius: float = 0.4  # image half-width and dR cut
    quantity: str = "et"  # et | et_ecal | et_hcal
    tower_shape: str = "point"  # point: pixel of the tower position | cell: spread over the cell | mixed
    muon_pt_min: float = 10.0  # GeV, inclusive
    muon_pt_max: float = 15.0  # GeV, inclusive
    muon_abs_eta_max: float = 2.4  # muon acceptance |eta| <= this
    muons_per_event: str = "leading"  # leading: one image per event; all: one per selected muon
    reweight_pt_bins: int = 10  # equal-width muon-pT bins over [pt_min, pt_max] for reweighting
    use_event_weight: bool = True  # multiply by Event.Weight (normalised to mean 1)
    read_chunk_entries: int = 10000  # events read per chunk (memory vs overhead)

    def __post_init__(self) -> None:
        problems = []
        if self.npix < 1:
            problems.append(f"npix must be >= 1, got {self.npix}")
        if not self.radius > 0:
            problems.append(f"radius must be > 0, got {self.radius}")
        if self.quantity not in QUANTITY_BRANCHES:
            problems.append(f"quantity must be one of {sorted(QUANTITY_BRANCHES)}, got {self.quantity!r}")
        if self.tower_shape not in TOWER_SHAPES:
            problems.append(f"tower_shape must be one of {TOWER_SHAPES}, got {self.tower_shape!r}")
        if not 0 <= self.muon_pt_min < self.muon_pt_max:
            problems.append(f"need 0 <= muon_pt_min < muon_pt_max, got {self.muon_pt_min}, {self.muon_pt_max}")
        if not self.muon_abs_eta_max > 0:
            problems.append(f"muon_abs_eta_max must be > 0, got {self.muon_abs_eta_max}")
        if self.muons_per_event not in MUONS_PER_EVENT:
            problems.append(f"muons_per_event must be one of {MUONS_PER_EVENT}, got {self.muons_per_event!r}")
        if self.reweight_pt_bins < 1:
            problems.append(f"reweight_pt_bins must be >= 1, got {self.reweight_pt_bins}")
        if self.read_chunk_entries < 1:
            problems.append(f"read_chunk_entries must be >= 1, got {self.read_chunk_entries}")
        if problems:
            raise ImagingError("invalid imaging config: " + "; ".join(problems))

    @property
    def pt_edges(self) -> np.ndarray:
        """Muon-pT bin edges (GeV) used for signal-to-background reweighting."""
        return np.linspace(self.muon_pt_min, self.muon_pt_max, self.reweight_pt_bins + 1)

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (the `imaging:` config section), e.g. for digests and HDF5 attrs."""
        return asdict(self)

    @classmethod
    def from_mapping(cls, section: dict[str, Any]) -> ImagingConfig:
        """Build from a config section; unknown keys are an error naming the key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ImagingError(f"unknown imaging config key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**section)

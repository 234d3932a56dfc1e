"""Muon selection: identified muons in a pT window inside the muon acceptance.

`leading` keeps the highest-pT selected muon of each event (one image per event, the
default); `all` keeps every selected muon (an event can give several images, each
centred on its own muon). Delphes' Muon branch holds identified muons only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ImagingError


@dataclass
class SelectedMuons:
    """Selected muons of one chunk, one entry per image, ordered by event."""

    event: np.ndarray  # (n,) int64, event index within the chunk
    pt: np.ndarray  # (n,) float32, GeV
    eta: np.ndarray  # (n,) float32
    phi: np.ndarray  # (n,) float32, rad
    charge: np.ndarray  # (n,) float32
    n_candidates: int  # muons passing the cuts (>= n when mode is leading)

    def __len__(self) -> int:
        return int(self.event.shape[0])


def select_muons(
    offsets: np.ndarray,
    pt: np.ndarray,
    eta: np.ndarray,
    phi: np.ndarray,
    charge: np.ndarray,
    *,
    pt_min: float,
    pt_max: float,
    abs_eta_max: float,
    mode: str = "leading",
) -> SelectedMuons:
    """Apply pT in [pt_min, pt_max] GeV and |eta| <= abs_eta_max to flat per-chunk muons.

    `offsets` (n_events + 1) delimit each event's muons in the flat arrays.
    """
    counts = np.diff(offsets)
    event_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    passed = (pt >= pt_min) & (pt <= pt_max) & (np.abs(eta) <= abs_eta_max)
    idx = np.flatnonzero(passed)
    n_candidates = int(idx.size)
    if mode == "leading":
        # sort candidates by (event, -pT): the first one of each event is its leading muon
        order = np.lexsort((-pt[idx], event_of[idx]))
        idx = idx[order]
        ev = event_of[idx]
        first = np.ones(idx.size, dtype=bool)
        first[1:] = ev[1:] != ev[:-1]
        idx = idx[first]
    elif mode != "all":
        raise ImagingError(f"muons_per_event must be 'leading' or 'all', got {mode!r}")
    return SelectedMuons(
        event=event_of[idx], pt=pt[idx].astype(np.float32), eta=eta[idx].astype(np.float32),
        phi=phi[idx].astype(np.float32), charge=charge[idx].astype(np.float32), n_candidates=n_candidates,
    )

"""Generator-level muon filter: keep events with a final-state muon in a (pT, |eta|) window.

The window is a little wider than the reconstruction cut (pT 10-15 GeV, |eta| < 2.4) so
detector resolution does not bias the selection; Delphes and pile-up time is spent only
on events that can give an image. Columnar over a whole Pythia batch (awkward).
"""
from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np


@dataclass(frozen=True)
class MuonWindow:
    """Acceptance of the generator-level filter (GeV, pseudorapidity)."""

    pt_min_gev: float = 9.0
    pt_max_gev: float = 16.0
    abs_eta_max: float = 2.5

    def __post_init__(self) -> None:
        if not (0 <= self.pt_min_gev < self.pt_max_gev) or self.abs_eta_max <= 0:
            raise ValueError(f"invalid muon filter window {self}")


def final_muons(prt: ak.Array) -> tuple[ak.Array, ak.Array]:
    """(pT in GeV, eta) of every final-state muon, per event; `prt` is nextBatch(...).prt."""
    is_mu = (prt.status > 0) & (abs(prt.id) == 13)
    mom = prt.p[is_mu]
    pt = np.hypot(mom.px, mom.py)
    eta = np.arcsinh(mom.pz / pt)
    return pt, eta


def passes_filter(prt: ak.Array, window: MuonWindow) -> np.ndarray:
    """Boolean per event: at least one final-state muon inside `window`."""
    pt, eta = final_muons(prt)
    inside = (pt >= window.pt_min_gev) & (pt <= window.pt_max_gev) & (abs(eta) < window.abs_eta_max)
    return ak.to_numpy(ak.any(inside, axis=1))

"""Helpers for the imaging tests: Delphes-like events with towers at chosen offsets."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from imaging.geometry import pixel_centres

PROJECT_DIR = Path(__file__).resolve().parents[2]
CENTRES = pixel_centres(32, 0.4)  # d-eta / d-phi pixel centres (default geometry)

def one_muon_event(mu_eta: float, mu_phi: float, tower_offsets: list[tuple[float, float, float]],
                   mu_pt: float = 12.0):
    """Towers (deta, dphi, ET) placed around one muon at (mu_eta, mu_phi): Delphes-like dicts."""
    eta = [mu_eta + de for de, _, _ in tower_offsets]
    phi = [float(np.angle(np.exp(1j * (mu_phi + dp)))) for _, dp, _ in tower_offsets]  # in (-pi, pi]
    et = [e for _, _, e in tower_offsets]
    towers = {"ET": [et], "Eta": [eta], "Phi": [phi]}
    muons = {"PT": [[mu_pt]], "Eta": [[mu_eta]], "Phi": [[mu_phi]], "Charge": [[-1]]}
    return towers, muons

"""Muon selection: pT window (inclusive), acceptance, leading vs all."""
from __future__ import annotations

import numpy as np
import pytest

from imaging import ImagingConfig, ImagingError
from imaging.selection import select_muons

# event 0: 16 (too hard), 11, 12 -> leading 12 (not the first listed); event 1: 9.9 -> none;
# event 2: 14 and 14.5 at |eta| 2.45 -> 14; event 3: 10 and 15 (edges are inclusive) -> 15
PT = np.array([16.0, 11.0, 12.0, 9.9, 14.0, 14.5, 10.0, 15.0], np.float32)
ETA = np.array([0.1, -0.2, 0.3, 0.0, -2.3, 2.45, 1.0, -1.0], np.float32)
OFFSETS = np.array([0, 3, 4, 6, 8])
CUTS = dict(pt_min=10.0, pt_max=15.0, abs_eta_max=2.4)


def _select(mode):
    phi = np.linspace(-3, 3, PT.size).astype(np.float32)
    charge = np.array([1, -1, 1, -1, 1, -1, 1, -1], np.int32)
    return select_muons(OFFSETS, PT, ETA, phi, charge, mode=mode, **CUTS)


def test_leading_selected_muon_per_event():
    sel = _select("leading")
    assert sel.event.tolist() == [0, 2, 3]
    assert sel.pt.tolist() == [12.0, 14.0, 15.0]
    assert sel.charge.tolist() == [1.0, 1.0, -1.0]
    assert sel.n_candidates == 5


def test_all_selected_muons_keep_event_order():
    sel = _select("all")
    assert sel.event.tolist() == [0, 0, 2, 3, 3]
    assert sel.pt.tolist() == [11.0, 12.0, 14.0, 10.0, 15.0]


def test_unknown_mode_and_bad_config_are_errors():
    with pytest.raises(ImagingError, match="muons_per_event"):
        _select("first")
    with pytest.raises(ImagingError, match="muon_pt_min < muon_pt_max"):
        ImagingConfig(muon_pt_min=15, muon_pt_max=10)
    with pytest.raises(ImagingError, match="quantity"):
        ImagingConfig(quantity="energy")
    with pytest.raises(ImagingError, match="unknown imaging config key"):
        ImagingConfig.from_mapping({"npixels": 32})

"""Towers around each selected muon -> npix x npix images over (d-eta, d-phi).

Columnar: for each muon *rank* within its event (first, second, ... selected muon; one
pass for the default leading-muon mode) every tower of the chunk gets its event's muon eta
by `np.repeat`, a vectorised |d-eta| < radius cut keeps the few percent of towers near a
muon, and only those get d-phi (wrapped), the dR < radius cut and a pixel. One
`np.add.at` scatters the tower values into the images: no per-event or per-pixel loop.
"""
from __future__ import annotations

import numpy as np

from .geometry import delta_phi, pixel_index, within_radius


def _rank_in_event(muon_event: np.ndarray) -> np.ndarray:
    """0 for each event's first muon, 1 for its second, ... (order of appearance)."""
    order = np.argsort(muon_event, kind="stable")
    ev = muon_event[order]
    first = np.flatnonzero(np.r_[True, ev[1:] != ev[:-1]])
    rank_sorted = np.arange(ev.size) - np.repeat(first, np.diff(np.r_[first, ev.size]))
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def make_images(
    tower_offsets: np.ndarray,
    tower_eta: np.ndarray,
    tower_phi: np.ndarray,
    tower_value: np.ndarray,
    muon_event: np.ndarray,
    muon_eta: np.ndarray,
    muon_phi: np.ndarray,
    *,
    npix: int = 32,
    radius: float = 0.4,
) -> np.ndarray:
    """Images (n_muons, npix, npix) float32: sum of `tower_value` (GeV) per pixel.

    Axis 1 is d-eta = tower eta - muon eta, axis 2 is d-phi (wrapped into [-pi, pi)),
    both binned on [-radius, radius]; only towers with dR < radius enter, so pixels outside
    the disc stay zero. `muon_event[i]` is the index of muon i's event in `tower_offsets`
    (n_events + 1 offsets into the flat tower arrays).
    """
    n_img = int(muon_event.shape[0])
    if n_img == 0:
        return np.zeros((0, npix, npix), dtype=np.float32)
    n_events = tower_offsets.shape[0] - 1
    counts = np.diff(tower_offsets)
    rank = _rank_in_event(muon_event)
    coarse = np.float32(radius * (1 + 1e-5))  # float32 pre-cut, a hair looser than the exact cut below
    tower_sel, image_sel = [], []
    for r in range(int(rank.max()) + 1):  # loop over muon rank (1 pass for leading muons), not events
        at_rank = np.flatnonzero(rank == r)
        eta_of_event = np.full(n_events, np.nan, dtype=np.float32)
        eta_of_event[muon_event[at_rank]] = muon_eta[at_rank]
        image_of_event = np.full(n_events, -1, dtype=np.int64)
        image_of_event[muon_event[at_rank]] = at_rank
        deta_coarse = np.repeat(eta_of_event, counts)  # float32, reused in place: the one full-size pass
        np.subtract(tower_eta, deta_coarse, out=deta_coarse)
        np.abs(deta_coarse, out=deta_coarse)
        towers = np.flatnonzero(deta_coarse < coarse)  # NaN (event without muon) compares False
        del deta_coarse
        events = np.searchsorted(tower_offsets, towers, side="right") - 1
        tower_sel.append(towers)
        image_sel.append(image_of_event[events])
    towers = np.concatenate(tower_sel)
    images_idx = np.concatenate(image_sel)
    deta = tower_eta[towers].astype(np.float64) - muon_eta[images_idx].astype(np.float64)
    dphi = delta_phi(tower_phi[towers], muon_phi[images_idx])
    inside = within_radius(deta, dphi, radius)
    towers, images_idx, deta, dphi = towers[inside], images_idx[inside], deta[inside], dphi[inside]
    flat_pixel = (images_idx * npix + pixel_index(deta, npix, radius)) * npix + pixel_index(dphi, npix, radius)
    images = np.zeros(n_img * npix * npix, dtype=np.float32)
    np.add.at(images, flat_pixel, tower_value[towers])  # unbuffered scatter-add: repeated pixels sum
    return images.reshape(n_img, npix, npix)

"""Towers around each selected muon -> npix x npix images over (d-eta, d-phi).

Columnar: for each muon *rank* within its event (first, second, ... selected muon; one
pass for the default leading-muon mode) every tower of the chunk gets its event's muon eta
by `np.repeat`, a vectorised |d-eta| < radius cut keeps the few percent of towers near a
muon, and only those get d-phi (wrapped), the dR < radius cut and a pixel. One
`np.add.at` scatters the tower values into the images: no per-event or per-pixel loop.

`make_images` puts each tower's value in the pixel of its (eta, phi) (imaging.tower_shape:
point); `make_cell_images` spreads it over the pixels its calorimeter cell covers, by
overlap area (tower_shape: cell), enumerating (cell, pixel) pairs with `np.repeat`.
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
    towers, images_idx = _tower_image_pairs(tower_offsets, tower_eta, muon_event, muon_eta, radius)
    deta = tower_eta[towers].astype(np.float64) - muon_eta[images_idx].astype(np.float64)
    dphi = delta_phi(tower_phi[towers], muon_phi[images_idx])
    inside = within_radius(deta, dphi, radius)
    towers, images_idx, deta, dphi = towers[inside], images_idx[inside], deta[inside], dphi[inside]
    flat_pixel = (images_idx * npix + pixel_index(deta, npix, radius)) * npix + pixel_index(dphi, npix, radius)
    images = np.zeros(n_img * npix * npix, dtype=np.float32)
    np.add.at(images, flat_pixel, tower_value[towers])  # unbuffered scatter-add: repeated pixels sum
    return images.reshape(n_img, npix, npix)


#: overlaps thinner than this fraction of a pixel are dropped (float32 edges on a pixel edge)
SLIVER = 1e-4


def _tower_image_pairs(
    tower_offsets: np.ndarray, tower_eta: np.ndarray, muon_event: np.ndarray, muon_eta: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray]:
    """(tower, image) index pairs with |tower eta - muon eta| < reach (a hair looser), for every muon rank."""
    n_events = tower_offsets.shape[0] - 1
    counts = np.diff(tower_offsets)
    rank = _rank_in_event(muon_event)
    coarse = np.float32(reach * (1 + 1e-5))
    tower_sel, image_sel = [], []
    for r in range(int(rank.max()) + 1):  # loop over muon rank (1 pass for leading muons), not events
        at_rank = np.flatnonzero(rank == r)
        eta_of_event = np.full(n_events, np.nan, dtype=np.float32)
        eta_of_event[muon_event[at_rank]] = muon_eta[at_rank]
        image_of_event = np.full(n_events, -1, dtype=np.int64)
        image_of_event[muon_event[at_rank]] = at_rank
        deta = np.repeat(eta_of_event, counts)  # float32, reused in place: the one full-size pass
        np.subtract(tower_eta, deta, out=deta)
        np.abs(deta, out=deta)
        towers = np.flatnonzero(deta < coarse)  # NaN (event without muon) compares False
        del deta
        events = np.searchsorted(tower_offsets, towers, side="right") - 1
        tower_sel.append(towers)
        image_sel.append(image_of_event[events])
    return np.concatenate(tower_sel), np.concatenate(image_sel)


def make_cell_images(
    tower_offsets: np.ndarray,
    tower_edges: np.ndarray,
    tower_eta: np.ndarray,
    tower_value: np.ndarray,
    muon_event: np.ndarray,
    muon_eta: np.ndarray,
    muon_phi: np.ndarray,
    *,
    npix: int = 32,
    radius: float = 0.4,
) -> np.ndarray:
    """Images (n_muons, npix, npix) float32 with each tower's value spread over its cell.

    `tower_edges` (n_towers, 4) = (eta_min, eta_max, phi_min, phi_max) of each tower's
    calorimeter cell (Delphes `Tower.Edges`). A pixel gets value x (overlap area of cell and
    pixel) / (cell area) from every tower, so a cell inside the image keeps its whole value;
    pixels whose centre is outside dR < radius are then set to zero (the disc), like the
    point images. Delphes places the tower's (eta, phi) at a random point of its cell; the
    cell is where the energy was measured, so this rendering has no such randomness and
    gives ~10x more non-zero pixels per image (an HCAL cell of 0.087 covers ~16 pixels).
    """
    n_img = int(muon_event.shape[0])
    images = np.zeros((n_img, npix, npix), dtype=np.float32)
    if n_img == 0 or tower_edges.shape[0] == 0:
        return images
    widths = tower_edges[:, 1] - tower_edges[:, 0]
    reach = radius + float(widths.max())  # any cell that can overlap the image
    towers, img = _tower_image_pairs(tower_offsets, tower_eta, muon_event, muon_eta, reach)
    # only cells that reach into the image's eta range (float32 pre-cut, a hair loose; most of the reach is spare)
    near = (tower_edges[towers, 1] > muon_eta[img] - np.float32(radius * 1.0001)) & (
        tower_edges[towers, 0] < muon_eta[img] + np.float32(radius * 1.0001))
    towers, img = towers[near], img[near]
    edges = tower_edges[towers].astype(np.float64)
    eta_lo = edges[:, 0] - muon_eta[img].astype(np.float64)
    eta_hi = edges[:, 1] - muon_eta[img].astype(np.float64)
    phi_lo = delta_phi(edges[:, 2], muon_phi[img])  # low phi edge wrapped around the muon
    phi_hi = phi_lo + (edges[:, 3] - edges[:, 2])
    area = (eta_hi - eta_lo) * (phi_hi - phi_lo)
    pitch = 2.0 * radius / npix
    # pixel index range each cell overlaps, clipped to the image
    i0 = np.floor((eta_lo + radius) / pitch).astype(np.int64).clip(0, npix)
    i1 = np.ceil((eta_hi + radius) / pitch).astype(np.int64).clip(0, npix)
    j0 = np.floor((phi_lo + radius) / pitch).astype(np.int64).clip(0, npix)
    j1 = np.ceil((phi_hi + radius) / pitch).astype(np.int64).clip(0, npix)
    keep = (i1 > i0) & (j1 > j0) & (area > 0)
    towers, img, eta_lo, eta_hi, phi_lo, phi_hi, area, i0, i1, j0, j1 = (
        a[keep] for a in (towers, img, eta_lo, eta_hi, phi_lo, phi_hi, area, i0, i1, j0, j1))
    ni, nj = i1 - i0, j1 - j0
    n_pairs = ni * nj
    owner = np.repeat(np.arange(towers.size), n_pairs)  # one row per (cell, overlapped pixel)
    local = np.arange(owner.size) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    i = i0[owner] + local // nj[owner]
    j = j0[owner] + local % nj[owner]
    low = -radius + pitch * i
    ov_eta = np.minimum(eta_hi[owner], low + pitch) - np.maximum(eta_lo[owner], low)
    low = -radius + pitch * j
    ov_phi = np.minimum(phi_hi[owner], low + pitch) - np.maximum(phi_lo[owner], low)
    sliver = SLIVER * pitch  # float32 cell edges: overlaps this thin are rounding, not area
    ov_eta = np.where(ov_eta > sliver, ov_eta, 0.0)
    ov_phi = np.where(ov_phi > sliver, ov_phi, 0.0)
    frac = ov_eta * ov_phi / area[owner]
    pixel = (img[owner] * npix + i) * npix + j
    summed = np.bincount(pixel, weights=frac * tower_value[towers][owner], minlength=images.size)  # float64 sums
    images = summed.astype(np.float32).reshape(n_img, npix, npix)
    centre = -radius + pitch * (np.arange(npix) + 0.5)
    outside = ~within_radius(centre[:, None], centre[None, :], radius)
    images[:, outside] = 0.0
    return images

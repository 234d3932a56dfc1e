"""The towers behind each image (`TowerSet`) and THE rendering of towers into pixels.

`render_towers` is the one function that turns towers into an image, for real data (the
imaging build extracts the towers of each selected muon with `extract_towers` and renders
them) and for generated towers (a tower-level generator in `model` calls it): an image is a
function of its towers alone, so re-rendering the towers stored in images.h5 gives the
stored image bit for bit.

Coordinates are relative to the muon and float32, as stored: `deta` = tower eta - muon eta,
`dphi` = tower phi - muon phi wrapped into [-pi, pi), `edges` = the tower's calorimeter cell
(deta_lo, deta_hi, dphi_lo, dphi_hi). ET in GeV: `et_ecal` and `et_hcal` are the ECal and
HCal parts of the tower's ET. `imaging.quantity` picks the parts that are drawn:
et = et_ecal + et_hcal, et_ecal = et_ecal only, et_hcal = et_hcal only. `tower_shape`:

- point: the drawn ET goes to the pixel of (deta, dphi) if dR < radius;
- cell:  the drawn ET is spread over the pixels its cell overlaps, by overlap area; pixels
  whose centre lies outside dR < radius stay zero;
- mixed: the ECal part as a point, the HCal part over its cell.

Columnar: one `np.add.at` for points and one `np.bincount` over (cell, pixel) pairs for
cells, over all images at once; no per-image or per-pixel loop.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .config import QUANTITY_PARTS, TOWER_SHAPES
from .errors import ImagingError
from .geometry import delta_phi, pixel_index, within_radius

#: the columns of `TowerSet.features()`: one row per tower (the point-cloud view)
FEATURES = ("deta", "dphi", "et_ecal", "et_hcal", "deta_lo", "deta_hi", "dphi_lo", "dphi_hi")
#: overlaps thinner than this fraction of a pixel are dropped (float32 edges on a pixel edge)
SLIVER = 1e-4
#: images rendered at a time: bounds the float64 cell sums (32 MB at 32 x 32) for 100k-image batches
RENDER_BLOCK = 4096


@dataclass
class TowerSet:
    """Ragged towers of N images: image i owns towers offsets[i]:offsets[i + 1] (all arrays columnar)."""

    offsets: np.ndarray  # (N + 1,) int64, offsets[0] == 0, non-decreasing, offsets[-1] == T
    deta: np.ndarray  # (T,) float32: tower eta - muon eta
    dphi: np.ndarray  # (T,) float32, rad: tower phi - muon phi wrapped into [-pi, pi)
    et_ecal: np.ndarray  # (T,) float32, GeV: ECal part of the tower ET
    et_hcal: np.ndarray  # (T,) float32, GeV: HCal part of the tower ET
    edges: np.ndarray  # (T, 4) float32: the tower's cell relative to the muon (deta_lo, deta_hi, dphi_lo, dphi_hi)

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    @property
    def n_towers(self) -> int:
        return int(self.deta.shape[0])

    def counts(self) -> np.ndarray:
        """(N,) int64 number of towers of each image."""
        return np.diff(self.offsets)

    def image_index(self) -> np.ndarray:
        """(T,) int64 index of the image each tower belongs to."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.counts())

    def features(self) -> np.ndarray:
        """(T, 8) float32, columns `FEATURES`: the point-cloud view of every tower (rows in image order)."""
        return np.column_stack([self.deta, self.dphi, self.et_ecal, self.et_hcal, self.edges]).astype(np.float32)

    def problems(self) -> list[str]:
        """What breaks the contract (shapes, dtypes, offsets, NaN/inf), naming the /towers dataset; [] if fine."""
        out: list[str] = []
        off = np.asarray(self.offsets)
        if off.ndim != 1 or off.shape[0] < 1 or not np.issubdtype(off.dtype, np.integer):
            return [f"'/towers/offsets' must be 1-D integers of length N + 1, got {off.dtype} {off.shape}"]
        t = self.n_towers
        if off[0] != 0:
            out.append(f"'/towers/offsets' must start at 0, starts at {off[0]}")
        if np.any(np.diff(off) < 0):
            out.append(f"'/towers/offsets' decreases at image {int(np.argmax(np.diff(off) < 0))}")
        if off[-1] != t:
            out.append(f"'/towers/offsets' ends at {off[-1]} but there are {t} towers")
        for name in ("deta", "dphi", "et_ecal", "et_hcal", "edges"):
            values = np.asarray(getattr(self, name))
            shape = (t, 4) if name == "edges" else (t,)
            if values.shape != shape:
                out.append(f"'/towers/{name}' has shape {values.shape}, expected {shape}")
            elif not np.issubdtype(values.dtype, np.floating):
                out.append(f"'/towers/{name}' has dtype {values.dtype}, expected float32")
            elif not np.isfinite(values).all():
                out.append(f"'/towers/{name}' contains NaN or inf")
        return out

    def take(self, images: np.ndarray | Sequence[int] | slice) -> TowerSet:
        """The towers of the chosen images (indices, boolean mask or slice), in that order."""
        idx = np.arange(len(self))[images] if isinstance(images, slice) else np.asarray(images)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        counts = self.counts()[idx]
        offsets = np.zeros(idx.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        rows = np.repeat(self.offsets[idx] - offsets[:-1], counts) + np.arange(offsets[-1])
        return TowerSet(offsets, self.deta[rows], self.dphi[rows], self.et_ecal[rows], self.et_hcal[rows],
                        self.edges[rows])

    @classmethod
    def concatenate(cls, parts: Sequence[TowerSet]) -> TowerSet:
        """One TowerSet of the images of `parts`, in order."""
        if not parts:
            return empty_towers(0)
        counts = np.concatenate([p.counts() for p in parts])
        offsets = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        cat = {name: np.concatenate([getattr(p, name) for p in parts]) for name in ("deta", "dphi", "et_ecal",
                                                                                    "et_hcal", "edges")}
        return cls(offsets=offsets, **cat)


def empty_towers(n_images: int) -> TowerSet:
    """A TowerSet of `n_images` images without towers."""
    f32 = np.zeros(0, dtype=np.float32)
    return TowerSet(np.zeros(n_images + 1, dtype=np.int64), f32, f32.copy(), f32.copy(), f32.copy(),
                    np.zeros((0, 4), dtype=np.float32))


def pad_towers(towers: TowerSet, max_towers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, M, 8) float32 features padded with zeros, and the (N, M) bool mask of real towers.

    M = `max_towers` (images with more towers are cut to their first M) or the largest count.
    """
    counts = towers.counts()
    m = int(counts.max(initial=0)) if max_towers is None else int(max_towers)
    img = towers.image_index()
    slot = np.arange(towers.n_towers) - towers.offsets[img]
    keep = slot < m
    padded = np.zeros((len(towers), m, len(FEATURES)), dtype=np.float32)
    padded[img[keep], slot[keep]] = towers.features()[keep]
    mask = np.zeros((len(towers), m), dtype=bool)
    mask[img[keep], slot[keep]] = True
    return padded, mask


def _parts(towers: TowerSet, tower_shape: str, quantity: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(ET drawn as a point, ET drawn over the cell) per tower, float32 GeV; None where the shape draws none."""
    if tower_shape not in TOWER_SHAPES:
        raise ImagingError(f"tower_shape must be one of {TOWER_SHAPES}, got {tower_shape!r}")
    if quantity not in QUANTITY_PARTS:
        raise ImagingError(f"quantity must be one of {sorted(QUANTITY_PARTS)}, got {quantity!r}")
    use_ecal, use_hcal = QUANTITY_PARTS[quantity]
    zero = np.zeros_like(towers.et_ecal)
    ecal = towers.et_ecal if use_ecal else zero
    hcal = towers.et_hcal if use_hcal else zero
    both = ecal + hcal if use_ecal and use_hcal else (ecal if use_ecal else hcal)  # x + 0 would be the same
    if tower_shape == "point":
        return both, None
    if tower_shape == "cell":
        return None, both
    return ecal, hcal  # mixed


def _point_pixels(deta: np.ndarray, dphi: np.ndarray, npix: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(mask of points with dR < radius, their pixel index i * npix + j within the image)."""
    deta64, dphi64 = deta.astype(np.float64), dphi.astype(np.float64)
    inside = within_radius(deta64, dphi64, radius)
    pixel = pixel_index(deta64[inside], npix, radius) * npix + pixel_index(dphi64[inside], npix, radius)
    return inside, pixel


@lru_cache(maxsize=8)
def _disc(npix: int, radius: float) -> np.ndarray:
    """(npix * npix,) bool: pixels whose centre lies within dR < radius (the image's disc)."""
    pitch = 2.0 * radius / npix
    centre = -radius + pitch * (np.arange(npix) + 0.5)
    disc = within_radius(centre[:, None], centre[None, :], radius).reshape(-1)
    disc.flags.writeable = False
    return disc


def _cell_pairs(edges: np.ndarray, npix: int, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(owner cell, pixel i * npix + j, fraction of the cell's area in that pixel) for every in-disc overlap.

    Only pairs with a non-zero overlap (thicker than SLIVER of a pixel in both directions) and a
    pixel centre inside the disc are returned, so a cell with no pair adds nothing to the image.
    """
    e = edges.astype(np.float64)
    eta_lo, eta_hi, phi_lo, phi_hi = e[:, 0], e[:, 1], e[:, 2], e[:, 3]
    area = (eta_hi - eta_lo) * (phi_hi - phi_lo)
    pitch = 2.0 * radius / npix
    # pixel index range each cell overlaps, clipped to the image
    i0 = np.floor((eta_lo + radius) / pitch).astype(np.int64).clip(0, npix)
    i1 = np.ceil((eta_hi + radius) / pitch).astype(np.int64).clip(0, npix)
    j0 = np.floor((phi_lo + radius) / pitch).astype(np.int64).clip(0, npix)
    j1 = np.ceil((phi_hi + radius) / pitch).astype(np.int64).clip(0, npix)
    cells = np.flatnonzero((i1 > i0) & (j1 > j0) & (area > 0))
    ni, nj = (i1 - i0)[cells], (j1 - j0)[cells]
    n_pairs = ni * nj
    owner = np.repeat(cells, n_pairs)  # one row per (cell, overlapped pixel)
    local = np.arange(owner.size) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    nj_row = np.repeat(nj, n_pairs)
    i = i0[owner] + local // nj_row
    j = j0[owner] + local % nj_row
    low = -radius + pitch * i
    ov_eta = np.minimum(eta_hi[owner], low + pitch) - np.maximum(eta_lo[owner], low)
    low = -radius + pitch * j
    ov_phi = np.minimum(phi_hi[owner], low + pitch) - np.maximum(phi_lo[owner], low)
    sliver = SLIVER * pitch  # float32 cell edges: overlaps this thin are rounding, not area
    pixel = i * npix + j
    keep = (ov_eta > sliver) & (ov_phi > sliver) & _disc(npix, radius)[pixel]
    frac = ov_eta[keep] * ov_phi[keep] / area[owner[keep]]
    return owner[keep], pixel[keep], frac


def render_towers(
    towers: TowerSet, *, tower_shape: str, npix: int = 32, radius: float = 0.4, quantity: str = "et"
) -> np.ndarray:
    """Images (N, npix, npix) float32, ET in GeV per pixel, of the towers of N images.

    Axis 1 is d-eta, axis 2 d-phi, both binned on [-radius, radius] (`pixel_edges`). Points sum
    in float32 in tower order (`np.add.at`); cell shares sum in float64 (`np.bincount`) and are
    then rounded to float32 and added to the points (mixed).
    """
    n_img = len(towers)
    size = npix * npix
    point_value, cell_value = _parts(towers, tower_shape, quantity)
    if n_img == 0:
        return np.zeros((0, npix, npix), dtype=np.float32)
    if n_img > RENDER_BLOCK:  # blocks of images bound the float64 sums; each pixel's sum is the same
        out = np.empty((n_img, npix, npix), dtype=np.float32)
        for start in range(0, n_img, RENDER_BLOCK):
            block = slice(start, min(n_img, start + RENDER_BLOCK))
            out[block] = render_towers(towers.take(block), tower_shape=tower_shape, npix=npix, radius=radius,
                                       quantity=quantity)
        return out
    img = towers.image_index()
    images = np.zeros(n_img * size, dtype=np.float32)
    if point_value is not None:
        drawn = np.flatnonzero(point_value != 0)
        inside, pixel = _point_pixels(towers.deta[drawn], towers.dphi[drawn], npix, radius)
        drawn = drawn[inside]
        np.add.at(images, img[drawn] * size + pixel, point_value[drawn])  # unbuffered: repeated pixels sum
    if cell_value is not None:
        drawn = np.flatnonzero(cell_value != 0)
        owner, pixel, frac = _cell_pairs(towers.edges[drawn], npix, radius)
        cells = drawn[owner]
        summed = np.bincount(img[cells] * size + pixel, weights=frac * cell_value[cells], minlength=images.size)
        images += summed.astype(np.float32)
    return images.reshape(n_img, npix, npix)


def contributing_towers(towers: TowerSet, *, tower_shape: str, npix: int = 32, radius: float = 0.4) -> np.ndarray:
    """(T,) bool: towers that put ET into their image under `tower_shape`, for any `quantity`.

    point: a non-zero tower with dR < radius; cell: a non-zero tower whose cell overlaps a pixel of
    the disc; mixed: a non-zero ECal part with dR < radius or a non-zero HCal part whose cell does.
    """
    if tower_shape not in TOWER_SHAPES:
        raise ImagingError(f"tower_shape must be one of {TOWER_SHAPES}, got {tower_shape!r}")
    any_part = (towers.et_ecal != 0) | (towers.et_hcal != 0)
    point_part = {"point": any_part, "cell": None, "mixed": towers.et_ecal != 0}[tower_shape]
    cell_part = {"point": None, "cell": any_part, "mixed": towers.et_hcal != 0}[tower_shape]
    keep = np.zeros(towers.n_towers, dtype=bool)
    if point_part is not None:
        drawn = np.flatnonzero(point_part)
        inside, _ = _point_pixels(towers.deta[drawn], towers.dphi[drawn], npix, radius)
        keep[drawn[inside]] = True
    if cell_part is not None:
        drawn = np.flatnonzero(cell_part)
        owner, _, _ = _cell_pairs(towers.edges[drawn], npix, radius)
        keep[drawn[owner]] = True
    return keep


def tower_et_parts(et: np.ndarray, eem: np.ndarray, ehad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ECal part, HCal part) of each tower's ET in GeV, float32: Delphes' Tower.ET split as Eem : Ehad.

    In exact arithmetic these are Eem / cosh(eta) and Ehad / cosh(eta). They are computed from
    Tower.ET, which Delphes rounds to float32 from its double-precision tower, rather than from the
    float32 Tower.Eta, so that a tower of one calorimeter (every tower of the CMS cards, which merge
    separate ECal and HCal towers) keeps Tower.ET bit for bit in its part and exactly 0 in the other:
    point images of quantity et equal the Tower.ET images of schema_version 1. A tower with
    Eem + Ehad = 0 keeps its ET in the ECal part.
    """
    total = eem.astype(np.float64) + ehad
    ecal_share = np.divide(eem, total, out=np.ones_like(total), where=total != 0)
    hcal_share = np.divide(ehad, total, out=np.zeros_like(total), where=total != 0)
    et64 = et.astype(np.float64)
    return (et64 * ecal_share).astype(np.float32), (et64 * hcal_share).astype(np.float32)


def extract_towers(
    tower_offsets: np.ndarray,
    tower_eta: np.ndarray,
    tower_phi: np.ndarray,
    tower_et: np.ndarray,
    tower_eem: np.ndarray,
    tower_ehad: np.ndarray,
    tower_edges: np.ndarray,
    muon_event: np.ndarray,
    muon_eta: np.ndarray,
    muon_phi: np.ndarray,
    *,
    tower_shape: str,
    npix: int = 32,
    radius: float = 0.4,
) -> TowerSet:
    """The towers of each selected muon that reach its image under `tower_shape`, relative to the muon.

    Tower arrays are flat over a chunk of events with `tower_offsets` (n_events + 1); `muon_event[i]`
    is muon i's event. Delphes' Tower.ET, Eem, Ehad (GeV) give et_ecal and et_hcal (`tower_et_parts`,
    computed for the towers near a muon only). Absolute `tower_edges` (n_towers, 4) = (eta_min,
    eta_max, phi_min, phi_max) of each cell (Delphes Tower.Edges). Relative coordinates are computed
    in float64 and stored as float32; the rendering uses the float32 values, so the stored towers
    reproduce the image. Within an image the towers keep their Delphes order (the order in which
    the points are summed).
    """
    n_img = int(muon_event.shape[0])
    if n_img == 0 or tower_eta.shape[0] == 0:
        return empty_towers(n_img)
    reach = radius
    if tower_shape != "point":  # a cell can reach into the image from up to one cell width beyond it
        reach += float((tower_edges[:, 1] - tower_edges[:, 0]).max(initial=0.0))
    towers, img = _tower_image_pairs(tower_offsets, tower_eta, muon_event, muon_eta, reach)
    if tower_shape != "point":  # float32 pre-cut, a hair loose: cells that reach the image's eta range
        near = (tower_edges[towers, 1] > muon_eta[img] - np.float32(radius * 1.0001)) & (
            tower_edges[towers, 0] < muon_eta[img] + np.float32(radius * 1.0001))
        towers, img = towers[near], img[near]
    mu_eta = muon_eta[img].astype(np.float64)
    mu_phi = muon_phi[img].astype(np.float64)
    abs_edges = tower_edges[towers].astype(np.float64)
    phi_lo = delta_phi(abs_edges[:, 2], mu_phi)  # the low phi edge wrapped around the muon; the cell keeps its width
    rel_edges = np.column_stack([abs_edges[:, 0] - mu_eta, abs_edges[:, 1] - mu_eta, phi_lo,
                                 phi_lo + (abs_edges[:, 3] - abs_edges[:, 2])]).astype(np.float32)
    et_ecal, et_hcal = tower_et_parts(tower_et[towers], tower_eem[towers], tower_ehad[towers])
    candidates = TowerSet(
        offsets=np.array([0, towers.size], dtype=np.int64),  # one pseudo-image: only `contributing_towers` reads it
        deta=(tower_eta[towers].astype(np.float64) - mu_eta).astype(np.float32),
        dphi=delta_phi(tower_phi[towers], mu_phi).astype(np.float32),
        et_ecal=et_ecal, et_hcal=et_hcal, edges=rel_edges,
    )
    keep = contributing_towers(candidates, tower_shape=tower_shape, npix=npix, radius=radius)
    order = np.flatnonzero(keep)
    order = order[np.argsort(img[order], kind="stable")]  # by image, Delphes order within each image
    offsets = np.zeros(n_img + 1, dtype=np.int64)
    np.cumsum(np.bincount(img[order], minlength=n_img), out=offsets[1:])
    return TowerSet(offsets, candidates.deta[order], candidates.dphi[order], candidates.et_ecal[order],
                    candidates.et_hcal[order], candidates.edges[order])


def _rank_in_event(muon_event: np.ndarray) -> np.ndarray:
    """0 for each event's first muon, 1 for its second, ... (order of appearance)."""
    order = np.argsort(muon_event, kind="stable")
    ev = muon_event[order]
    first = np.flatnonzero(np.r_[True, ev[1:] != ev[:-1]])
    rank_sorted = np.arange(ev.size) - np.repeat(first, np.diff(np.r_[first, ev.size]))
    rank = np.empty_like(rank_sorted)
    rank[order] = rank_sorted
    return rank


def _tower_image_pairs(
    tower_offsets: np.ndarray, tower_eta: np.ndarray, muon_event: np.ndarray, muon_eta: np.ndarray, reach: float
) -> tuple[np.ndarray, np.ndarray]:
    """(tower, image) index pairs with |tower eta - muon eta| < reach (a hair looser), for every muon rank.

    For each muon rank (one pass for leading muons, not one per event) every tower gets its
    event's muon eta by `np.repeat`; a float32 cut keeps the few percent of towers near a muon.
    """
    n_events = tower_offsets.shape[0] - 1
    counts = np.diff(tower_offsets)
    rank = _rank_in_event(muon_event)
    coarse = np.float32(reach * (1 + 1e-5))
    tower_sel, image_sel = [], []
    for r in range(int(rank.max()) + 1):  # loop over muon rank, not events
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

"""Tower-level generators: the set of calorimeter towers of an image, drawn by imaging's own rendering.

A real image is the rendering (imaging.towers.render_towers) of the Delphes towers around the
muon. This family generates the towers themselves - which ECal and HCal cells around the muon
hold a tower, its ET, and where in its cell Delphes put it - and renders them with the same
function, so an HCal tower spread over its cell paints its ~12 equal pixels as in the data.

Cells. The calorimeter grids are fixed in absolute (eta, phi); the training file's towers (cell
edges relative to the muon, plus the muon's eta and phi) give each calorimeter's eta rows and
the number of phi cells of each row (`CaloGrid`, measured from the data; the card's EtaPhiBins).
A cell is addressed relative to the muon's own cell: (calorimeter, eta-row offset di, phi-cell
offset dj in that row's segmentation) - a "slot". The slots hit in the training data form a
fixed list of D slots (ECal first, then HCal): each training image becomes a (D,) vector of tower
ET, like an image of pixels.

Model. The paper's decoupled generator run over slots instead of pixels: (noise, one-hot of the
muon's HCal context) -> per-slot (logit pi, eta) by a 4-layer MLP started at the data's
independent-slot marginals given the context; the HCal slots of other contexts are masked off
(they are no cells of this muon's grid). Trained with the K-sample bound (OBJECTIVE.md,
model/objectives.py) on model/training.py's epoch loop, each image scored against K parameter sets
generated for its own context (the batch grouped by context). Tower ET is x0_c + exp(N(eta, s_i))
with a trained per-slot width and the threshold x0_c of its calorimeter (model/likelihoods.py's
threshold log-normal, one per calorimeter); sampling truncates it to the [smallest, largest] tower
ET of that calorimeter in the data, then maps it monotonically from the generated towers' ET
quantiles (reference draws at the end of training) onto the data's (map_tower_et), separately in
the isolation cone and around it, so the tower-ET spectrum of each calorimeter and region is the
data's and no tower falls below the card's threshold or beyond the data's range.
`calibrate_occupancy` shifts each slot's logit after training so its mean occupancy, generated for
the contexts where it is a cell, is the data's (calibrate_context_occupancy).

How many towers (`tower_count`):
- `bernoulli`: each slot with its own chance, z ~ Bern(pi) (the decoupled model over cells), the
  uniforms of an image tied by a Gaussian copula (copula_uniforms, below);
- `multiplicity`: count-then-place. The numbers of ECal and HCal towers follow the data's
  multiplicity distribution of the muon's context exactly (EPiC-GAN's sampled multiplicity): a noise draw's expected
  count sum(pi) is mapped through its quantile among many draws (stored at training) to the same
  quantile of the data's count distribution (CaloClouds-style occupancy calibration on the
  cells), so busier draws get more towers; then that many slots are placed by Gumbel top-k on
  the logits (sampling without replacement, close to independent Bernoullis conditioned on the
  count).

Region copula (model format /3). Given the noise, the generator's cells and tower ETs would be
independent; the data's are not: a busy (pile-up) event has many towers everywhere, and the b jet
around a non-isolated muon makes the towers in the isolation cone many and hot together (on the
default run's background, the cone's summed ECal ET has a standard deviation of 2.9 GeV in the data
against 2.3 from independent draws, and a 99.9th percentile of 31 against 17 GeV). Each image
therefore draws two normal factors, one for the cone (dR < COPULA_CONE) and one for the ring around
it, and every uniform of a slot - the one deciding whether it holds a tower (bernoulli only:
multiplicity draws the data's counts) and the one setting its ET quantile - is a Gaussian copula on
its region's factor, with a loading per group (ECal/HCal x cone/ring, COPULA_GROUPS). A uniform
stays uniform, so every cell keeps its chance and every tower its ET distribution (and the ET map
below holds); the loadings are fitted after training, by bisection through the whole sampling path,
so that each group's variance over images of its tower count, then of its summed ET, is the data's
(fit_copula).

Geometry at sampling: each image first gets a muon (eta, phi) drawn from the training images
(weighted), which fixes the grid around it and the generator's context; a slot becomes the cell at that offset, and the
tower's (eta, phi) a uniform point inside it (Delphes' SmearTowerCenter). As in the data, only
towers that put ET into the image are kept (imaging.towers.contributing_towers): an edge cell is
visible for some muons only, so a slot's occupancy in the data is (chance of a tower) x (its
visibility, measured by Monte Carlo over the training muons) and `bernoulli` sampling draws with
the visibility divided out. Generated images are `render_towers` of the generated TowerSet with
the training file's tower_shape and quantity. A generated tower's ET is shared between its
dominant and the other calorimeter's part with the data's share (split_tower_et): with
tower_shape mixed the ECal part is a point and the HCal part spreads over its cell.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from common.seeds import derive_seed
from imaging.towers import TowerSet, contributing_towers, render_towers

from .config import TrainConfig
from .data import TrainingData, training_data_from_arrays
from .decoupled import CALIBRATION_SHIFT_MAX
from .device import resolve_device
from .errors import ModelError
from .generators import OUTPUT_INIT_GAIN
from .likelihoods import LogNormalThreshold, LogNormalThresholdLearnedSigma, zero_skew_offset
from .objectives import bound_objective, get_objective, log_likelihood_matrix, paper_objective, weighted_loss
from .training import TIMING_COLUMNS, Batch, TrainResult, run_epochs

log = logging.getLogger(__name__)

MODEL_FORMAT = "sparse-muon-towers-model/3"  # /2: context-conditional generator, ET quantile map; /3: region copula
LOG_COLUMNS = ("epoch", "loss", "paper_ll", "bound_ll", "mean_pi", "data_occupancy", *TIMING_COLUMNS)
CALOS = ("ecal", "hcal")
#: values of the `tower_count` setting (module docstring)
TOWER_COUNTS = ("bernoulli", "multiplicity")
#: noise draws whose expected tower counts define the quantiles of the multiplicity coupling
COUNT_REFERENCE_DRAWS = 4096
#: noise draws of the occupancy calibration (~3x the decoupled model's slots per draw: fewer draws, same cost)
CALIBRATION_DRAWS = 4096
#: (muon, slot) pairs per calorimeter context over which a slot's visibility and cone share are averaged, and the
#: fewest muons (slot_acceptance): an HCal context (~100 slots) gets all its muons, the ECal (~1,700 slots) ~2,400
VISIBILITY_PAIRS = 4_000_000
VISIBILITY_MIN_MUONS = 1000
#: seed of the visibility Monte Carlo and of the context reference draws (fixed: derived at every rebuild)
VISIBILITY_SEED = 20191214
#: count-then-place: candidate slots per wanted tower (+ a few), in Gumbel order, of which the first reaching
#: the image are kept (candidates off the disc or the grid are skipped)
CANDIDATES_PER_TOWER = 2
CANDIDATES_EXTRA = 8
#: cell edges (rad) closer than this are the same edge (float32 edges relative to a float32 muon)
EDGE_TOLERANCE = 2e-4
TWO_PI = 2.0 * math.pi
#: logit of a slot that is no cell of the context's grid (pi ~ 1e-13; finite, so 0 * logit stays 0)
MASKED_LOGIT = -30.0
#: radius (rad) of the region whose towers share a copula factor of their own (the paper's isolation cone): activity
#: near the muon (the b jet around a non-isolated muon) makes the cone's towers many and hot together, pile-up the disc
COPULA_CONE = 0.2
#: the copula's groups of slots: calorimeter x region (a slot is in the cone when most of its towers are)
COPULA_GROUPS = ("ecal_cone", "ecal_ring", "hcal_cone", "hcal_ring")
#: images drawn (same random numbers every step) per bisection step of the copula fit, and its steps
COPULA_FIT_IMAGES = 8192
COPULA_FIT_ITERATIONS = 12
COPULA_MAX_LOADING = 0.95
#: fewer towers of a group than this in the data (or the reference draws): its calorimeter's ET map instead
ET_MAP_MIN_TOWERS = 200
#: rounds of (tower-ET map, ET loadings) before the final map (train)
COPULA_MAP_ROUNDS = 2
#: levels of the stored tower-ET quantiles per copula group (data and generated), finer in the upper tail
ET_QUANTILE_LEVELS = np.unique(np.r_[np.linspace(0.0, 0.99, 991), 1.0 - np.geomspace(1e-2, 1e-5, 31), 1.0])
#: generated images whose kept towers give the generated tower-ET quantiles (the map's reference)
ET_REFERENCE_IMAGES = 8192
#: quantiles of a calorimeter's tower ET that bound the bins of the ECal/HCal share (hot towers share more)
ET_SHARE_BINS = (0.5, 0.9, 0.99, 0.999)


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """phi in rad wrapped into [-pi, pi) (float64)."""
    phi = np.asarray(phi, dtype=np.float64)
    return phi - TWO_PI * np.floor((phi + math.pi) / TWO_PI)


# ---------------------------------------------------------------- the calorimeter grids and slots


@dataclass
class CaloGrid:
    """One calorimeter's cells in absolute coordinates: eta rows and the phi segmentation of each."""

    eta_edges: np.ndarray  # (R + 1,) float64, increasing
    nphi: np.ndarray  # (R,) int64, phi cells of each row, from -pi

    def row_of(self, eta: np.ndarray) -> np.ndarray:
        """(n,) eta row index of absolute eta (may be -1 or R outside the grid)."""
        return np.searchsorted(self.eta_edges, np.asarray(eta, dtype=np.float64), side="right") - 1

    def phi_cell(self, phi: np.ndarray, row: np.ndarray) -> np.ndarray:
        """(n,) phi cell index of absolute phi in `row`'s segmentation."""
        n = self.nphi[row]
        return np.floor((wrap_phi(phi) + math.pi) / (TWO_PI / n)).astype(np.int64) % n

    def context(self, eta: np.ndarray) -> np.ndarray:
        """(n,) the segmentation around absolute eta: 16 x (phi cells of its row) + round(2 log2(row height /
        the smallest row height)). Muons of one context see the same cells at the same offsets."""
        row = self.row_of(eta).clip(0, self.nphi.size - 1)
        heights = np.diff(self.eta_edges)
        bucket = np.rint(2 * np.log2(heights[row] / heights.min())).astype(np.int64)
        return 16 * self.nphi[row] + bucket

    def to_dict(self) -> dict[str, list]:
        return {"eta_edges": self.eta_edges.tolist(), "nphi": self.nphi.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list]) -> CaloGrid:
        return cls(np.asarray(d["eta_edges"], dtype=np.float64), np.asarray(d["nphi"], dtype=np.int64))


def measure_grid(eta_lo: np.ndarray, eta_hi: np.ndarray, phi_width: np.ndarray, where: str) -> CaloGrid:
    """The eta rows (and phi cells per row) of one calorimeter from its towers' absolute cell edges.

    Rows no tower hit inside the covered range are filled with rows of the neighbour's width
    (the grid is continuous in the cards); overlapping rows are an error.
    """
    if eta_lo.size == 0:
        raise ModelError(f"{where}: no tower of this calorimeter in the training data; cannot measure its cells")
    key = np.round(eta_lo / EDGE_TOLERANCE).astype(np.int64)
    _, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse)
    lo = np.bincount(inverse, weights=eta_lo) / counts  # (rows hit,) increasing
    hi = np.bincount(inverse, weights=eta_hi) / counts
    nphi = np.rint(TWO_PI * counts / np.bincount(inverse, weights=phi_width)).astype(np.int64)
    edges, rows_nphi = [float(lo[0])], []
    for r in range(lo.size):  # one pass over the rows hit (a few hundred), not over towers
        gap = lo[r] - edges[-1]
        if gap < -10 * EDGE_TOLERANCE:
            raise ModelError(f"{where}: calorimeter rows overlap near eta {lo[r]:.4f}; the towers' cell edges are "
                             "inconsistent (remake the images.h5 with the imaging stage)")
        if gap > 10 * EDGE_TOLERANCE:  # rows never hit: fill the gap with rows of this row's width
            n_fill = max(1, int(round(gap / (hi[r] - lo[r]))))
            start = edges[-1]
            edges.extend(start + gap * f / n_fill for f in range(1, n_fill))
            edges.append(float(lo[r]))
            rows_nphi.extend([int(nphi[r])] * n_fill)
        edges.append(float(hi[r]))
        rows_nphi.append(int(nphi[r]))
    return CaloGrid(np.asarray(edges, dtype=np.float64), np.asarray(rows_nphi, dtype=np.int64))


def tower_calorimeter(towers: TowerSet) -> np.ndarray:
    """(T,) 0 for ECal towers, 1 for HCal towers (the part holding most of the tower's ET)."""
    return (np.asarray(towers.et_hcal) > np.asarray(towers.et_ecal)).astype(np.int64)


def absolute_cells(towers: TowerSet, muon_eta: np.ndarray, muon_phi: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every tower's cell in absolute coordinates: (eta_lo, eta_hi, phi_centre, phi_width), float64 (T,)."""
    img = towers.image_index()
    e = np.asarray(towers.edges, dtype=np.float64)
    eta0 = np.asarray(muon_eta, dtype=np.float64)[img]
    phi_centre = wrap_phi(0.5 * (e[:, 2] + e[:, 3]) + np.asarray(muon_phi, dtype=np.float64)[img])
    return e[:, 0] + eta0, e[:, 1] + eta0, phi_centre, e[:, 3] - e[:, 2]


@dataclass
class SlotMap:
    """The grids of both calorimeters and the D slots (calorimeter, context, di, dj) the model generates over.

    The context (CaloGrid.context) is the segmentation around the muon: an HCal slot (di, dj) is a
    0.087 x 0.087 cell next to a barrel muon but up to 0.22 x 0.17 in the endcap, so each context
    has its own slots (the ECal has one context); a slot is seen only in images of its context.
    """

    grids: tuple[CaloGrid, CaloGrid]
    calo: np.ndarray  # (D,) int64 0 ECal, 1 HCal; ECal slots first
    ctx: np.ndarray  # (D,) int64 the muon's context in that calorimeter
    di: np.ndarray  # (D,) int64 eta-row offset from the muon's row
    dj: np.ndarray  # (D,) int64 phi-cell offset from the muon's cell in that row

    @property
    def n_slots(self) -> int:
        return int(self.calo.size)

    def n_of(self, c: int) -> int:
        return int(np.count_nonzero(self.calo == c))

    def to_dict(self) -> dict[str, Any]:
        return {"grids": [g.to_dict() for g in self.grids], "calo": self.calo.tolist(), "ctx": self.ctx.tolist(),
                "di": self.di.tolist(), "dj": self.dj.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SlotMap:
        grids = tuple(CaloGrid.from_dict(g) for g in d["grids"])
        return cls(grids, *(np.asarray(d[k], dtype=np.int64) for k in ("calo", "ctx", "di", "dj")))  # type: ignore


def slot_offsets(grid: CaloGrid, eta_lo: np.ndarray, eta_hi: np.ndarray, phi_centre: np.ndarray,
                 muon_eta: np.ndarray, muon_phi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(di, dj) of cells (absolute edges) relative to the muon's own cell, in the cell's row segmentation."""
    row = grid.row_of(0.5 * (eta_lo + eta_hi)).clip(0, grid.nphi.size - 1)
    row_mu = grid.row_of(muon_eta)
    n = grid.nphi[row]
    dj = grid.phi_cell(phi_centre, row) - grid.phi_cell(muon_phi, row)
    dj = (dj + n // 2) % n - n // 2  # shortest way round
    return row - row_mu, dj


def towers_to_slots(towers: TowerSet, muon_eta: np.ndarray, muon_phi: np.ndarray, where: str,
                    slots: SlotMap | None = None) -> tuple[SlotMap, np.ndarray]:
    """The slot map (measured here unless given) and the (N, D) float32 tower ET of every image per slot."""
    calo = tower_calorimeter(towers)
    eta_lo, eta_hi, phi_c, phi_w = absolute_cells(towers, muon_eta, muon_phi)
    img = towers.image_index()
    mu_eta = np.asarray(muon_eta, dtype=np.float64)
    mu_phi = np.asarray(muon_phi, dtype=np.float64)
    if not (np.isfinite(mu_eta).all() and np.isfinite(mu_phi).all()):
        raise ModelError(f"{where}: some images have no finite /muon/eta or /muon/phi; the towers family needs the "
                         "muon position of every training image (real images made by the imaging stage)")
    if slots is None:
        grids = tuple(measure_grid(eta_lo[calo == c], eta_hi[calo == c], phi_w[calo == c], f"{where} ({CALOS[c]})")
                      for c in range(2))
    else:
        grids = slots.grids
    ctx, di, dj = (np.zeros(calo.size, np.int64) for _ in range(3))
    for c in range(2):
        sel = calo == c
        di[sel], dj[sel] = slot_offsets(grids[c], eta_lo[sel], eta_hi[sel], phi_c[sel], mu_eta[img[sel]],
                                        mu_phi[img[sel]])
        ctx[sel] = grids[c].context(mu_eta[img[sel]])
    key = np.stack([calo, ctx, di, dj], axis=1)
    if slots is None:
        uniq = np.unique(key, axis=0)  # sorted by calorimeter first: ECal slots, then HCal
        slots = SlotMap(grids, *(uniq[:, i].copy() for i in range(4)))  # type: ignore[arg-type]
    table = {tuple(int(v) for v in k): s for s, k in enumerate(zip(slots.calo, slots.ctx, slots.di, slots.dj,
                                                                    strict=True))}
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)  # map the few distinct keys through the table
    slot_of = np.array([table.get(tuple(int(v) for v in k), -1) for k in uniq], dtype=np.int64)[inverse.ravel()]
    known = slot_of >= 0
    n_img = len(towers.offsets) - 1
    x = np.zeros((n_img, slots.n_slots), dtype=np.float64)
    et = np.asarray(towers.et_ecal, dtype=np.float64) + np.asarray(towers.et_hcal, dtype=np.float64)
    np.add.at(x, (img[known], slot_of[known]), et[known])  # a cell holds one tower; add.at is exact either way
    return slots, x.astype(np.float32)


# ---------------------------------------------------------------- the generator over slots


@dataclass(frozen=True)
class SlotGeneratorSpec:
    """Everything needed to rebuild a slot generator (recorded in model.pt)."""

    n_slots: int
    noise_dim: int
    width: int
    n_contexts: int  # HCal contexts of the training muons (the one-hot condition)
    conditional: bool = False  # not pT-conditional (the context is the only condition)


class SlotGenerator(nn.Module):
    """(noise (K, noise_dim), context index (K,)) -> logit(pi) (K, D) and eta (K, D) per slot.

    The generator is conditioned on the muon's HCal context (a one-hot appended to the noise): an
    HCal slot of another context is not a cell of this muon's grid, so its logit is MASKED_LOGIT
    (pi ~ 1e-13: no tower, no term in the likelihood). 4 dense layers plus per-slot offsets:
    eta = eta_center_i + eta_scale_i * (raw + eta_offset_i) (each slot in its calorimeter's log-ET
    units); logit = raw + logit_offset_i. Starts at the independent-slot model.
    """

    def __init__(self, spec: SlotGeneratorSpec, slot_mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.spec = spec
        d, w = spec.n_slots, spec.width
        self.net = nn.Sequential(nn.Linear(spec.noise_dim + spec.n_contexts, w), nn.LeakyReLU(0.2), nn.Linear(w, w),
                                 nn.LeakyReLU(0.2), nn.Linear(w, w), nn.LeakyReLU(0.2), nn.Linear(w, 2 * d))
        with torch.no_grad():  # different noise must give clearly different (pi, eta): generators.OUTPUT_INIT_GAIN
            self.net[-1].weight.mul_(OUTPUT_INIT_GAIN)
            self.net[-1].bias.zero_()
        self.logit_offset = nn.Parameter(torch.zeros(d))
        self.eta_offset = nn.Parameter(torch.zeros(d))
        self.register_buffer("eta_center", torch.zeros(d))
        self.register_buffer("eta_scale", torch.ones(d))
        # (C, D) the slots that are cells of each context's grid (ECal slots in every context)
        self.register_buffer("slot_mask", torch.ones(spec.n_contexts, d, dtype=torch.bool) if slot_mask is None
                             else slot_mask.to(torch.bool).clone())

    def init_from_marginals(self, occupancy: torch.Tensor, eta_mean: torch.Tensor, eta_center: torch.Tensor,
                            eta_scale: torch.Tensor) -> None:
        """Start at the independent-slot model: logit(occupancy), the mean log-ET excess per slot."""
        occ = occupancy.to(torch.float64).clamp(1e-4, 1 - 1e-4)
        with torch.no_grad():
            self.logit_offset.copy_(torch.log(occ / (1 - occ)).float())
            self.eta_center.copy_(eta_center.float())
            self.eta_scale.copy_(eta_scale.float())
            self.eta_offset.copy_(((eta_mean - eta_center) / eta_scale).float())

    def forward(self, noise: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        context = context.to(device=noise.device, dtype=torch.long)
        onehot = nn.functional.one_hot(context, self.spec.n_contexts).to(noise.dtype)
        raw = self.net(torch.cat([noise, onehot], dim=1)).view(noise.shape[0], 2, self.spec.n_slots)  # (K, 2, D)
        logits = (raw[:, 0] + self.logit_offset).masked_fill(~self.slot_mask[context], MASKED_LOGIT)
        eta = self.eta_center + self.eta_scale * (raw[:, 1] + self.eta_offset)
        return logits, eta


class TowerModel(nn.Module):
    """A trained tower generator: the slot generator, one ET likelihood per calorimeter, and its fixed facts."""

    def __init__(self, generator: SlotGenerator, likelihoods: nn.ModuleList, fixed: dict[str, Any]) -> None:
        super().__init__()
        self.generator, self.likelihoods = generator, likelihoods
        self.fixed = fixed
        self.slots = SlotMap.from_dict(fixed["slots"])
        muons = fixed["muons"]
        self.muon_eta, self.muon_phi = (np.asarray(muons[k], dtype=np.float64) for k in ("eta", "phi"))
        self.muon_weight = np.asarray(muons["weight"], dtype=np.float64)
        self.contexts = np.asarray(fixed["contexts"], dtype=np.int64)  # (C,) the generator's one-hot order
        self.muon_context = context_index(self.slots, self.muon_eta, self.contexts)  # (N,) index into contexts
        self.visibility, cone_share = slot_acceptance(self.slots, self.muon_eta, self.muon_phi, self.muon_weight,
                                                      fixed["image"], cone=fixed["copula"]["cone"],
                                                      seed=VISIBILITY_SEED)
        #: (D,) each slot's copula group (COPULA_GROUPS): 2 x calorimeter + (1 outside the cone)
        self.slot_group = 2 * self.slots.calo + (cone_share < 0.5).astype(np.int64)

    def context_slots(self, context: int) -> np.ndarray:
        """(D,) bool: the HCal slots of one context (its value, not its index)."""
        return (self.slots.calo == 1) & (self.slots.ctx == context)


def context_index(slots: SlotMap, muon_eta: np.ndarray, contexts: np.ndarray) -> np.ndarray:
    """(N,) index into `contexts` of each muon's HCal context; ModelError for a context the model never saw."""
    ctx = slots.grids[1].context(np.asarray(muon_eta, dtype=np.float64))
    idx = np.searchsorted(contexts, ctx).clip(max=contexts.size - 1)
    if ctx.size and not (contexts[idx] == ctx).all():
        raise ModelError(f"muon HCal contexts {sorted(set(ctx[contexts[idx] != ctx].tolist()))} are not among the "
                         f"model's {contexts.tolist()}")
    return idx


def context_slot_mask(slots: SlotMap, contexts: np.ndarray) -> torch.Tensor:
    """(C, D) bool: the slots that are cells of each context's grid (every ECal slot, the context's HCal slots)."""
    return torch.from_numpy((slots.calo[None, :] == 0) | (slots.ctx[None, :] == contexts[:, None]))


# ---------------------------------------------------------------- training


def image_settings(data: TrainingData) -> dict[str, Any]:
    """tower_shape, quantity, npix and radius of the training images (how generated towers are rendered)."""
    attrs = data.image_attrs or {}
    cfg = attrs.get("imaging_config", {})
    if isinstance(cfg, str):
        cfg = json.loads(cfg)
    shape = attrs.get("tower_shape", cfg.get("tower_shape"))
    if shape is None:
        raise ModelError(f"training images of sample '{data.sample}': the file names no tower_shape (attribute "
                         "tower_shape or imaging_config); remake it with the imaging stage")
    return {"tower_shape": str(shape), "quantity": str(attrs.get("quantity", cfg.get("quantity", "et"))),
            "npix": int(data.npix), "radius": float(data.radius)}


def slot_data(data: TrainingData) -> tuple[SlotMap, TrainingData]:
    """The slot map and the training images as (N, D) slot vectors (same weights, digest and pT)."""
    where = f"training images of sample '{data.sample}'"
    if data.towers is None:
        raise ModelError(f"{where}: the file has no /towers; the towers family trains on the towers behind the "
                         "images (images.h5 schema 2, written by the imaging stage): remake the images")
    slots, x = towers_to_slots(data.towers, data.muon_eta, data.muon_phi, where)
    cells = TrainingData(x=torch.from_numpy(x), weight=data.weight, npix=data.npix, radius=data.radius,
                         sample=data.sample, digest=data.digest, mean_muon_pt_gev=data.mean_muon_pt_gev,
                         muon_pt_gev=data.muon_pt_gev)
    return slots, cells


def tower_training_data(towers: TowerSet, muon_eta: np.ndarray, muon_phi: np.ndarray, muon_pt: np.ndarray,
                        weight: np.ndarray, *, tower_shape: str = "point", quantity: str = "et", npix: int = 32,
                        radius: float = 0.4, sample: str = "synthetic") -> TrainingData:
    """TrainingData of in-memory towers: their images (render_towers) plus the towers (used by tests too)."""
    images = render_towers(towers, tower_shape=tower_shape, npix=npix, radius=radius, quantity=quantity)
    data = training_data_from_arrays(images, weight, muon_pt, sample=sample, radius=radius)
    data.towers, data.muon_eta, data.muon_phi = towers, np.asarray(muon_eta), np.asarray(muon_phi)
    data.image_attrs = {"tower_shape": tower_shape, "quantity": quantity}
    return data


def calo_likelihood(cells: TrainingData, sel: torch.Tensor, calo: str) -> tuple[LogNormalThresholdLearnedSigma,
                                                                               dict[str, float]]:
    """The threshold log-normal of one calorimeter's slots, and the range of its tower ET in the data (GeV)."""
    x = cells.x[:, sel]
    nz = x != 0
    values = x[nz].to(torch.float64)
    weight = cells.weight[:, None].expand_as(x)[nz].to(torch.float64)
    if values.numel() < 3:
        raise ModelError(f"training images of sample '{cells.sample}': {values.numel()} {calo} towers; the towers "
                         "family needs at least 3 per calorimeter")
    x0 = zero_skew_offset(values, weight)
    u = (values - x0).log()
    mean = float((weight * u).sum() / weight.sum())
    s = float(torch.sqrt((weight * (u - mean) ** 2).sum() / weight.sum()))
    n = int(sel.sum())
    lik = LogNormalThresholdLearnedSigma(n, LogNormalThreshold(s, x0).sigma_log * 0.05, x0, s)
    return lik, {"offset_gev": x0, "min_et_gev": float(values.min()), "max_et_gev": float(values.max()),
                 "sigma_log": s, "mean_log": mean}


def slot_log_mean(cells: TrainingData, offset_gev: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """(D,) weighted mean of log((ET - x0) / GeV) of each slot's towers (`fallback` where never hit)."""
    x = cells.x.to(torch.float64)
    nz = x != 0
    u = torch.where(nz, x - offset_gev, torch.ones_like(x)).log()
    w = cells.weight.to(torch.float64)
    num, den = w @ u, w @ nz.to(torch.float64)
    return torch.where(den > 0, num / den.clamp_min(1e-300), fallback)


def count_distribution(cells: TrainingData, sel: torch.Tensor, rows: torch.Tensor | None = None) -> list[float]:
    """Weighted probability of 0, 1, 2, ... towers in the given slots per image (of `rows`; the data's multiplicity)."""
    x, w = (cells.x, cells.weight) if rows is None else (cells.x[rows], cells.weight[rows])
    if x.shape[0] == 0:
        return [1.0]
    counts = (x[:, sel] != 0).sum(dim=1)
    pmf = torch.bincount(counts, weights=w.to(torch.float64), minlength=int(counts.max()) + 1)
    return (pmf / pmf.sum()).tolist()


@torch.no_grad()
def context_logits(generator: SlotGenerator, n_contexts: int, draws: int, *, seed: int,
                   device: torch.device | str) -> torch.Tensor:
    """(C, draws, D) logits of `draws` noise vectors generated for every context (the same noise for each)."""
    rng = torch.Generator(device=device).manual_seed(int(seed))
    out = []
    for start in range(0, draws, 4096):
        k = min(4096, draws - start)
        noise = torch.randn(k, generator.spec.noise_dim, generator=rng, device=device)
        out.append(torch.stack([generator(noise, torch.full((k,), c, device=device, dtype=torch.long))[0]
                                for c in range(n_contexts)]))
    return torch.cat(out, dim=1)


@torch.no_grad()
def expected_count_quantiles(generator: SlotGenerator, calo: np.ndarray, *, seed: int, device: torch.device,
                             draws: int = COUNT_REFERENCE_DRAWS) -> list[list[list[float]]]:
    """Per context and calorimeter, the sorted expected tower counts sum(pi) of `draws` noise vectors generated for
    that context (the multiplicity coupling's reference)."""
    pi = torch.sigmoid(context_logits(generator, generator.spec.n_contexts, draws, seed=seed, device=device))
    sel = [torch.as_tensor(calo == c, device=pi.device) for c in range(2)]
    ref = torch.stack([pi[:, :, sel[c]].sum(dim=2) for c in range(2)], dim=2).sort(dim=1).values  # (C, draws, 2)
    ref = ref.cpu().to(torch.float64)
    return [[ref[a, :, c].tolist() for c in range(2)] for a in range(ref.shape[0])]


def context_occupancy(cells: TrainingData, muon_context: torch.Tensor,
                      slot_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D,) each slot's weighted occupancy among the images of the contexts where it is a cell, and the (C, D)
    share of each context in it (the weights of a context's generated draws for that slot)."""
    mask = slot_mask.to(torch.float64)  # (C, D)
    w = cells.weight.to(torch.float64)
    onehot = nn.functional.one_hot(muon_context.long(), mask.shape[0]).to(torch.float64)  # (N, C)
    share = (w @ onehot) / w.sum()  # (C,)
    hits = (onehot * w[:, None]).T @ (cells.x != 0).to(torch.float64)  # (C, D) weighted hits per context
    coef = share[:, None] * mask
    occupancy = (hits * mask).sum(dim=0) / w.sum() / coef.sum(dim=0).clamp_min(1e-300)
    return occupancy, coef / coef.sum(dim=0).clamp_min(1e-300)


@torch.no_grad()
def calibrate_context_occupancy(generator: SlotGenerator, cells: TrainingData, muon_context: torch.Tensor, *,
                                seed: int, device: torch.device | str, draws: int = CALIBRATION_DRAWS,
                                iterations: int = 50) -> dict[str, float]:
    """Shift each slot's logit so that its mean occupancy, generated for the muons' contexts, is the data's.

    The per-context version of model/decoupled.py's calibrate_occupancy: per slot, the occupancy among
    the data's images of each context where the slot is a cell, against the generator's over draws for
    that context, both weighted by the contexts' shares; solved for all slots at once by bisection.
    """
    generator.eval()
    n_ctx = generator.spec.n_contexts
    target, coef = (t.to(device) for t in context_occupancy(cells, muon_context, generator.slot_mask.cpu()))
    per_context = max(1024, draws // n_ctx)
    logits = context_logits(generator, n_ctx, per_context, seed=seed, device=device).to(torch.float64)  # (C, n, D)
    lo = torch.full_like(target, -CALIBRATION_SHIFT_MAX)
    hi = torch.full_like(target, CALIBRATION_SHIFT_MAX)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        above = (coef * torch.sigmoid(logits + mid).mean(dim=1)).sum(dim=0) > target
        hi, lo = torch.where(above, mid, hi), torch.where(above, lo, mid)
    shift = 0.5 * (lo + hi)
    before = float((coef * torch.sigmoid(logits).mean(dim=1)).sum(dim=0).mean())
    generator.logit_offset.add_(shift.to(generator.logit_offset.dtype))
    hit = target > 0
    summary = {
        "draws": int(per_context * n_ctx), "data_occupancy": float(target.mean()), "mean_pi_before": before,
        "mean_pi_after": float((coef * torch.sigmoid(logits + shift).mean(dim=1)).sum(dim=0).mean()),
        "max_abs_shift_hit_pixels": float(shift[hit].abs().max()) if bool(hit.any()) else 0.0,
    }
    log.info("occupancy calibration per context: mean pi %.5f -> %.5f (data %.5f), largest shift of a hit slot %.2f",
             summary["mean_pi_before"], summary["mean_pi_after"], summary["data_occupancy"],
             summary["max_abs_shift_hit_pixels"])
    return summary


def weighted_quantiles(values: np.ndarray, weight: np.ndarray, levels: np.ndarray) -> list[float]:
    """Quantiles of weighted values at `levels` (interpolated weighted CDF; levels 0 and 1 are the min and max)."""
    order = np.argsort(values)
    v, cw = values[order], np.cumsum(weight[order])
    mid = (cw - 0.5 * weight[order]) / cw[-1]  # each value at the middle of its weight
    return np.interp(levels, np.r_[0.0, mid, 1.0], np.r_[v[0], v, v[-1]]).tolist()


def group_et_quantiles(towers: TowerSet, weight: np.ndarray, cone: float) -> list[list[float]]:
    """Per copula group (calorimeter x cone/ring, tower_group), the quantiles (ET_QUANTILE_LEVELS) of the towers' ET,
    weighted like their images; a group with fewer than ET_MAP_MIN_TOWERS towers gets its calorimeter's."""
    group = tower_group(towers, cone)
    et = np.asarray(towers.et_ecal, dtype=np.float64) + np.asarray(towers.et_hcal, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)[towers.image_index()]
    out = []
    for g in range(len(COPULA_GROUPS)):
        sel = group == g
        if np.count_nonzero(sel) < ET_MAP_MIN_TOWERS:
            sel = group // 2 == g // 2
        if np.count_nonzero(sel) < 2:
            raise ModelError(f"{np.count_nonzero(sel)} {CALOS[g // 2]} towers in {len(towers)} images; cannot map the "
                             "generated tower ET onto the data's (train longer or check the training data)")
        out.append(weighted_quantiles(et[sel], w[sel], ET_QUANTILE_LEVELS))
    return out


def generated_et_quantiles(model: TowerModel, *, seed: int, device: torch.device | str,
                           n: int = ET_REFERENCE_IMAGES) -> list[list[float]]:
    """Per copula group, the quantiles of the ET of generated towers that reach the image (before the ET map)."""
    towers, _ = generate_towers(model, n, seed=seed, device=device, progress=False, match_et=False, render_images=False)
    return group_et_quantiles(towers, np.ones(len(towers)), model.fixed["copula"]["cone"])


def train(data: TrainingData, cfg: TrainConfig, checkpoint_dir: str | Path | None, *,
          progress: bool = True) -> TrainResult:
    """Train the slot generator (and the per-slot ET widths) on the towers of `data`."""
    if cfg.tower_count not in TOWER_COUNTS:
        raise ModelError(f"training setting 'tower_count' must be one of {list(TOWER_COUNTS)}, got {cfg.tower_count!r}")
    device = resolve_device(cfg.device)
    slots, cells = slot_data(data)
    calo_t = torch.from_numpy(slots.calo)
    sels = [calo_t == c for c in range(2)]
    likes, ranges = zip(*(calo_likelihood(cells, sels[c], CALOS[c]) for c in range(2)), strict=True)
    likelihoods = nn.ModuleList(likes)
    occupancy = cells.occupancy()
    per_slot = [torch.full((int(sels[c].sum()),), 1.0, dtype=torch.float64) for c in range(2)]
    offset = torch.cat([per_slot[c] * ranges[c]["offset_gev"] for c in range(2)])  # (D,) GeV
    centre = torch.cat([per_slot[c] * ranges[c]["mean_log"] for c in range(2)])  # calorimeter's mean log excess
    scale = torch.cat([per_slot[c] * ranges[c]["sigma_log"] for c in range(2)])
    eta_mean = slot_log_mean(cells, offset, centre)
    # the generator's condition: each training muon's HCal context (barrel / endcap row heights)
    contexts = np.unique(slots.grids[1].context(np.asarray(data.muon_eta, dtype=np.float64)))
    muon_context = torch.from_numpy(context_index(slots, np.asarray(data.muon_eta), contexts))  # (N,)
    spec = SlotGeneratorSpec(n_slots=slots.n_slots, noise_dim=cfg.noise_dim, width=cfg.width,
                             n_contexts=int(contexts.size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        generator = SlotGenerator(spec, context_slot_mask(slots, contexts))
    # started at each slot's occupancy given its context (an HCal slot is a cell in one context only)
    generator.init_from_marginals(context_occupancy(cells, muon_context, generator.slot_mask)[0], eta_mean, centre,
                                  scale)
    generator.to(device)
    likelihoods.to(device)
    n_e = slots.n_of(0)
    optimizer = torch.optim.Adam([*generator.parameters(), *likelihoods.parameters()], lr=cfg.lr)
    objective = get_objective(cfg.objective)
    muon_context_dev = muon_context.to(device)
    log.info("towers: %d ECal + %d HCal slots, %d HCal contexts %s, %d training images, tower_count %s, K=%d", n_e,
             slots.n_of(1), contexts.size, contexts.tolist(), len(cells), cfg.tower_count, cfg.K)

    def step(batch: Batch) -> dict[str, torch.Tensor]:
        x, w = batch.x, batch.weight
        ctx = muon_context_dev[batch.index.to(device)]  # (B,) each image's context
        noise = torch.randn(cfg.K, cfg.noise_dim, generator=batch.rng, device=device)
        ll = torch.zeros(x.shape[0], cfg.K, dtype=x.dtype, device=device)
        pis = []
        for c in torch.unique(ctx).tolist():  # the few contexts of the batch (<= 4), not its images
            rows = (ctx == c).nonzero(as_tuple=True)[0]
            logits, eta = generator(noise, torch.full((cfg.K,), c, dtype=torch.long, device=device))  # (K, D)
            xc = x[rows]
            part = (log_likelihood_matrix(xc[:, :n_e], logits[:, :n_e], eta[:, :n_e], likelihoods[0])
                    + log_likelihood_matrix(xc[:, n_e:], logits[:, n_e:], eta[:, n_e:], likelihoods[1]))  # (b, K)
            ll = ll.index_copy(0, rows, part)
            pis.append(torch.sigmoid(logits.detach()).mean())
        loss = weighted_loss(objective(ll), w)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            lld = ll.detach()
            return {"loss": loss.detach(), "paper_ll": (w * paper_objective(lld)).mean(),
                    "bound_ll": (w * bound_objective(lld)).mean(), "mean_pi": torch.stack(pis).mean()}

    modules = {"generator": generator, "likelihoods": likelihoods}
    rows, start = run_epochs(
        cells, cfg, checkpoint_dir, device=device, modules=modules, optimizers={"model": optimizer}, step=step,
        columns=LOG_COLUMNS, static={"data_occupancy": float(occupancy.mean())}, progress=progress,
    )
    w = data.weight.to(torch.float64)
    fixed: dict[str, Any] = {
        "generator_spec": dict(vars(spec)), "slots": slots.to_dict(), "image": image_settings(data),
        "et_range": list(ranges), "tower_count": cfg.tower_count,
        "likelihoods": [{"name": lik.name, **lik.extra_state_dict()} for lik in likelihoods],
        # the muons whose grids generated images are drawn on (weighted like the training images)
        "muons": {"eta": np.asarray(data.muon_eta, dtype=np.float64).tolist(),
                  "phi": np.asarray(data.muon_phi, dtype=np.float64).tolist(), "weight": w.tolist()},
        "contexts": contexts.tolist(),
        # per context (the generator's order) and calorimeter: the data's tower multiplicity
        "count_pmf": [[count_distribution(cells, sels[c], muon_context == a) for c in range(2)]
                      for a in range(contexts.size)],
        "et_quantiles": {"levels": ET_QUANTILE_LEVELS.tolist(),
                         "data": group_et_quantiles(data.towers, data.weight.numpy(), COPULA_CONE)},
        "dominant_fraction": dominant_fraction_quantiles(data.towers),
    }
    if cfg.calibrate_occupancy:  # after the checkpoints: a resumed run trains the uncalibrated model
        fixed["occupancy_calibration"] = calibrate_context_occupancy(
            generator, cells, muon_context, seed=derive_seed(cfg.seed, "occupancy_calibration"), device=device)
    fixed["count_reference"] = expected_count_quantiles(generator, slots.calo, seed=derive_seed(cfg.seed, "counts"),
                                                        device=device)
    fixed["copula"] = {"cone": COPULA_CONE, "count": [0.0] * len(COPULA_GROUPS), "et": [0.0] * len(COPULA_GROUPS)}
    model = TowerModel(generator, likelihoods, fixed)
    target = group_moments(data.towers, data.weight.numpy(), COPULA_CONE)
    if cfg.tower_count == "bernoulli":  # the data's spread of tower counts per image (multiplicity has it exactly)
        fixed["copula"]["count"] = fit_copula(model, "count", target["count"], seed=derive_seed(cfg.seed, "copula"),
                                              device=device)
    # the generated towers' ET quantiles (before the map), so that sampling maps them onto the data's, and the ET
    # loadings. Each slot's ET keeps its distribution under the copula, but with a count loading a slot holds a tower
    # more often when its ET uniform is high (one factor for both): the spectrum of the towers drawn shifts with the
    # ET loadings, so the map is measured again with them, and the loadings fitted again through the new map
    for _ in range(COPULA_MAP_ROUNDS):
        fixed["et_quantiles"]["generated"] = generated_et_quantiles(
            model, seed=derive_seed(cfg.seed, "et_reference"), device=device)
        fixed["copula"]["et"] = fit_copula(model, "et", target["et"], seed=derive_seed(cfg.seed, "copula"),
                                           device=device)
    fixed["et_quantiles"]["generated"] = generated_et_quantiles(model, seed=derive_seed(cfg.seed, "et_reference"),
                                                                device=device)
    generator.train()
    return TrainResult(modules, cfg, fixed, rows, str(device), start,
                       {"n_slots": slots.n_slots, "n_towers": int(len(data.towers.deta))})


def rebuild(record: dict[str, Any], device: torch.device | str = "cpu") -> TowerModel:
    """The trained tower model from a model.pt record."""
    fixed = record["fixed"]
    if record.get("format") != MODEL_FORMAT or "n_contexts" not in fixed["generator_spec"] \
            or "et_quantiles" not in fixed or "copula" not in fixed:
        raise ModelError(f"tower model of format {record.get('format')!r} (before the region copula of counts and "
                         f"tower ET); this version reads {MODEL_FORMAT!r}: retrain it with `python -m model train`")
    generator = SlotGenerator(SlotGeneratorSpec(**fixed["generator_spec"]))
    generator.load_state_dict(record["modules"]["generator"])
    likelihoods = nn.ModuleList()
    for settings in fixed["likelihoods"]:
        s = dict(settings)
        if s.pop("name") != LogNormalThresholdLearnedSigma.name:
            raise ModelError(f"tower ET likelihood {settings['name']!r} is not known to this version; retrain")
        likelihoods.append(LogNormalThresholdLearnedSigma(s["n_pixels"], s["sigma_floor_log"], s["offset_gev"]))
    likelihoods.load_state_dict(record["modules"]["likelihoods"])
    return TowerModel(generator, likelihoods, fixed).to(device).eval()


def conditional(model: TowerModel) -> bool:
    """Not pT-conditional (the HCal context is drawn with the muon inside the family)."""
    return False


def sample_attrs(record: dict[str, Any]) -> dict[str, Any]:
    """Attributes of a generated file that describe this family's model."""
    fixed = record["fixed"]
    return {"objective": record["config"]["objective"], "likelihood": "lognormal_threshold_learned_sigma (truncated)",
            "tower_count": fixed["tower_count"], "tower_shape": fixed["image"]["tower_shape"]}


# ---------------------------------------------------------------- sampling


def truncated_tower_et(lik: LogNormalThresholdLearnedSigma, eta: torch.Tensor, lo_gev: float, hi_gev: float,
                       uniforms: torch.Tensor) -> torch.Tensor:
    """(K, D) x0 + exp(N(eta, s_i)) truncated to [lo_gev, hi_gev] by inverse-CDF sampling (no tail beyond the data),
    at the (K, D) uniforms (the copula's: a higher uniform, a hotter tower)."""
    s = lik.sigma().to(eta.dtype)
    x0 = lik.offset_gev
    a = torch.special.ndtr((math.log(max(lo_gev - x0, 1e-12)) - eta) / s)
    b = torch.special.ndtr((math.log(hi_gev - x0) - eta) / s)
    u = a + (b - a) * uniforms.to(eta.dtype)
    u = u.clamp(torch.finfo(eta.dtype).tiny, 1 - torch.finfo(eta.dtype).eps)
    return (x0 + torch.exp(eta + s * torch.special.ndtri(u))).clamp(lo_gev, hi_gev)


def coupled_counts(pi: torch.Tensor, reference: list[float], pmf: list[float]) -> torch.Tensor:
    """(K,) tower counts: each draw's expected count sum(pi) at its quantile among the reference draws, mapped
    to the same quantile of the data's count distribution `pmf` (so the counts follow the data exactly)."""
    ref = torch.as_tensor(reference, dtype=torch.float64, device=pi.device)
    m = pi.sum(dim=1).to(torch.float64)
    q = (torch.searchsorted(ref, m, right=False).to(torch.float64) + 0.5) / (ref.numel() + 1)
    cdf = torch.cumsum(torch.as_tensor(pmf, dtype=torch.float64, device=pi.device), 0)
    return torch.searchsorted(cdf / cdf[-1], q.clamp(0, 1 - 1e-12), right=True).clamp(max=pi.shape[1])


def slot_towers(slots: SlotMap, img: np.ndarray, slot: np.ndarray, et: np.ndarray, mu_eta: np.ndarray,
                mu_phi: np.ndarray, u_eta: np.ndarray, u_phi: np.ndarray, n_images: int) -> tuple[TowerSet, np.ndarray]:
    """Towers at (image img, slot) pairs around each image's muon (mu_eta, mu_phi per image), their (eta, phi) at
    fraction (u_eta, u_phi) of their cell; returns the TowerSet (pairs off the grid dropped; pairs must be
    grouped by image) and the index of each kept pair."""
    eta0, phi0 = mu_eta[img], mu_phi[img]
    calo = slots.calo[slot]
    deta_lo, deta_hi, dphi_lo, dphi_hi = (np.zeros(img.size) for _ in range(4))
    on_grid = np.zeros(img.size, dtype=bool)
    for c in range(2):
        sel = np.flatnonzero(calo == c)
        grid = slots.grids[c]
        row = grid.row_of(eta0[sel]) + slots.di[slot[sel]]
        on_grid[sel] = (row >= 0) & (row < grid.nphi.size) & (grid.context(eta0[sel]) == slots.ctx[slot[sel]])
        row = row.clip(0, grid.nphi.size - 1)
        n = grid.nphi[row]
        width = TWO_PI / n
        cell = (grid.phi_cell(phi0[sel], row) + slots.dj[slot[sel]]) % n
        centre = wrap_phi(-math.pi + (cell + 0.5) * width - phi0[sel])
        deta_lo[sel], deta_hi[sel] = grid.eta_edges[row] - eta0[sel], grid.eta_edges[row + 1] - eta0[sel]
        dphi_lo[sel], dphi_hi[sel] = centre - 0.5 * width, centre + 0.5 * width
    keep = np.flatnonzero(on_grid & (et > 0))
    img, calo, et, u_eta, u_phi = img[keep], calo[keep], et[keep], u_eta[keep], u_phi[keep]
    deta_lo, deta_hi, dphi_lo, dphi_hi = deta_lo[keep], deta_hi[keep], dphi_lo[keep], dphi_hi[keep]
    f32 = np.float32
    towers = TowerSet(
        offsets=np.r_[0, np.cumsum(np.bincount(img, minlength=n_images))].astype(np.int64),
        deta=(deta_lo + u_eta * (deta_hi - deta_lo)).astype(f32),
        dphi=wrap_phi(dphi_lo + u_phi * (dphi_hi - dphi_lo)).astype(f32),
        et_ecal=np.where(calo == 0, et, 0.0).astype(f32), et_hcal=np.where(calo == 1, et, 0.0).astype(f32),
        edges=np.stack([deta_lo, deta_hi, dphi_lo, dphi_hi], axis=1).astype(f32),
    )
    return towers, keep


def slot_acceptance(slots: SlotMap, mu_eta: np.ndarray, mu_phi: np.ndarray, mu_weight: np.ndarray,
                    image: dict[str, Any], *, cone: float, seed: int,
                    pairs: int = VISIBILITY_PAIRS) -> tuple[np.ndarray, np.ndarray]:
    """(D,) chance that a tower in the slot reaches the image, over the (weighted) training muons of its context, and
    (D,) the share of those towers within dR < cone of the muon (Monte Carlo).

    A real image holds only the towers that put ET into it (imaging.towers.contributing_towers): a
    cell at the edge of the disc, or beyond the grid for this muon's eta, is seen for some muons
    only. Given the context, the generator's slot occupancy is (chance of a tower) x (this
    visibility); sampling divides it out again and keeps only the contributing towers, so edge
    slots are not under-filled. Each calorimeter's context is done on its own, with its own muons
    (all of them, or as many as keep (muons x slots) <= `pairs`): the visibility of an edge slot
    is an average over where the muon sits in its cell, and an endcap context has few muons.
    """
    rng = np.random.default_rng(seed)
    w_all = np.asarray(mu_weight, dtype=np.float64)
    visibility, cone_share = np.zeros(slots.n_slots), np.zeros(slots.n_slots)
    for c in range(2):
        muon_ctx = slots.grids[c].context(mu_eta)
        for a in np.unique(slots.ctx[slots.calo == c]):
            cols = np.flatnonzero((slots.calo == c) & (slots.ctx == a))
            muons = np.flatnonzero(muon_ctx == a)
            if muons.size == 0:
                continue
            n_max = max(VISIBILITY_MIN_MUONS, pairs // cols.size)
            if muons.size > n_max:
                muons = np.sort(rng.choice(muons, size=n_max, replace=False))
            n, d = muons.size, cols.size
            img, slot = np.repeat(np.arange(n), d), np.tile(cols, n)
            towers, kept = slot_towers(slots, img, slot, np.ones(img.size), mu_eta[muons], mu_phi[muons],
                                       rng.random(img.size), rng.random(img.size), n)
            seen, inside = np.zeros(img.size), np.zeros(img.size)
            seen[kept] = contributing_towers(towers, tower_shape=image["tower_shape"], npix=image["npix"],
                                             radius=image["radius"])
            inside[kept] = seen[kept] * (np.hypot(towers.deta, towers.dphi) < cone)
            w = w_all[muons]
            seen_w = w @ seen.reshape(n, d)
            visibility[cols] = seen_w / w.sum()
            cone_share[cols] = (w @ inside.reshape(n, d)) / np.maximum(seen_w, 1e-300)
    return visibility, cone_share


def copula_uniforms(loadings: list[float], group: np.ndarray, factors: torch.Tensor,
                    rng: torch.Generator) -> torch.Tensor:
    """(k, D) uniforms, each uniform on its own, but those of an image's slots sharing their region's normal factor
    (factors (k, 2): the cone's and the ring's; a Gaussian copula with loading loadings[g] in slot group g). A slot
    holds a tower when u > 1 - p, which keeps its chance p, and a tower's ET is at quantile u, which keeps its ET
    distribution; a high factor means many and hot towers in the region together (busy and quiet events: pile-up;
    a b jet around the muon), as in the data."""
    loading = torch.as_tensor(np.asarray(loadings, dtype=np.float64)[group], dtype=factors.dtype,
                              device=factors.device)  # (D,)
    region = torch.as_tensor(group % 2, device=factors.device)
    e = torch.randn(factors.shape[0], group.size, generator=rng, device=factors.device)
    return torch.special.ndtr(loading * factors[:, region] + torch.sqrt(1 - loading ** 2) * e)


def tower_group(towers: TowerSet, cone: float) -> np.ndarray:
    """(T,) each tower's copula group (COPULA_GROUPS): 2 x its dominant calorimeter + (1 unless dR < cone of the
    muon)."""
    return 2 * tower_calorimeter(towers) + (np.hypot(towers.deta, towers.dphi) >= cone).astype(np.int64)


def group_sums(towers: TowerSet, cone: float) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) number and (n, 4) summed ET of each image's towers per copula group (tower_group)."""
    key = towers.image_index() * len(COPULA_GROUPS) + tower_group(towers, cone)
    size = len(towers) * len(COPULA_GROUPS)
    et = np.asarray(towers.et_ecal, dtype=np.float64) + np.asarray(towers.et_hcal, dtype=np.float64)
    return (np.bincount(key, minlength=size).reshape(len(towers), -1).astype(np.float64),
            np.bincount(key, weights=et, minlength=size).reshape(len(towers), -1))


def group_moments(towers: TowerSet, weight: np.ndarray, cone: float) -> dict[str, np.ndarray]:
    """Per copula group, the weighted variance over images of the number ('count') and summed ET ('et') of towers."""
    w = np.asarray(weight, dtype=np.float64)[:, None]
    out = {}
    for name, v in zip(("count", "et"), group_sums(towers, cone), strict=True):
        mean = (w * v).sum(axis=0) / w.sum()
        out[name] = (w * (v - mean) ** 2).sum(axis=0) / w.sum()
    return out


@torch.no_grad()
def fit_copula(model: TowerModel, part: str, target: np.ndarray, *, seed: int, device: torch.device | str,
               images: int = COPULA_FIT_IMAGES, iterations: int = COPULA_FIT_ITERATIONS) -> list[float]:
    """The copula loadings of `part` ('count': which cells hold a tower; 'et': the towers' ET) per group, for which the
    generated variance over images of the group's tower count / summed ET is the data's (`target`, (4,)).

    A group's variance rises with its own loading and does not depend on the other groups' loadings of
    the same part, so all four are solved at once by bisection, each step drawing the same `images`
    images through the whole sampling path (common random numbers; the ET after the map onto the
    data's spectrum). A loading stays 0 where independent draws already spread the group as much as the
    data; model.fixed['copula'][part] is left at the result.
    """
    copula = model.fixed["copula"]
    index = 0 if part == "count" else 1
    lo, hi = np.zeros(len(COPULA_GROUPS)), np.full(len(COPULA_GROUPS), COPULA_MAX_LOADING)

    def variance(loadings: np.ndarray) -> np.ndarray:
        copula[part] = loadings.tolist()
        towers, _ = generate_towers(model, images, seed=seed, device=device, progress=False, render_images=False,
                                    match_et=part == "et")
        return group_sums(towers, copula["cone"])[index].var(axis=0)

    independent = variance(lo) >= target
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        below = variance(mid) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    loadings = np.where(independent, 0.0, 0.5 * (lo + hi))
    copula[part] = loadings.tolist()
    log.info("%s copula loadings (%s): %s", part, ", ".join(COPULA_GROUPS), ", ".join(f"{v:.3f}" for v in loadings))
    return copula[part]


@torch.no_grad()
def draw_towers(model: TowerModel, noise: torch.Tensor, rng: torch.Generator, *, match_et: bool = True) -> TowerSet:
    """The towers of len(noise) images: a weighted training muon, slots generated for its HCal context, ET, their
    cells around the muon, a point in each; only the towers that reach the image (contributing_towers), as in the
    data. With match_et, each calorimeter's tower ET is mapped onto the data's quantiles (map_tower_et)."""
    fixed, slots, image = model.fixed, model.slots, model.fixed["image"]
    k, n_e, dev = noise.shape[0], slots.n_of(0), noise.device
    calos = (slice(0, n_e), slice(n_e, None))
    # a weighted training muon first: its context is the generator's condition, its grid the towers' cells
    u_muon = torch.rand(k, generator=rng, device=dev, dtype=torch.float64).cpu().numpy()
    mcdf = np.cumsum(model.muon_weight)
    pick = np.searchsorted(mcdf / mcdf[-1], u_muon, side="right").clip(max=mcdf.size - 1)
    context = torch.as_tensor(model.muon_context[pick], device=dev)
    logits, eta = model.generator(noise, context)  # (k, D); other contexts' HCal slots masked
    pi = torch.sigmoid(logits)
    copula = fixed["copula"]
    factors = torch.randn(k, 2, generator=rng, device=dev)  # the image's activity in the cone and in the ring
    # the chance of a tower in the cell: the visibility within the context divided out (capped at 1)
    visibility = torch.as_tensor(model.visibility, dtype=logits.dtype, device=dev).clamp_min(1e-3)
    p_cell = (pi / visibility).clamp(max=1.0)
    counts = None
    if fixed["tower_count"] == "multiplicity":
        # candidates in Gumbel top-k order; the first `count` that reach the image are kept (below)
        counts = torch.zeros(k, 2, dtype=torch.long, device=dev)
        for a in torch.unique(context).tolist():  # the few contexts (<= 4): each has its own counts
            rows = (context == a).nonzero(as_tuple=True)[0]
            counts[rows] = torch.stack([coupled_counts(pi[rows][:, cols], fixed["count_reference"][a][c],
                                                       fixed["count_pmf"][a][c]) for c, cols in enumerate(calos)],
                                       dim=1)
        keys = logits - torch.log(-torch.log(torch.rand(logits.shape, generator=rng, device=dev).clamp_min(1e-20)))
        rank = torch.cat([torch.argsort(torch.argsort(keys[:, cols], dim=1, descending=True), dim=1)
                          for cols in calos], dim=1)  # (k, D) rank within the calorimeter
        reach = torch.cat([(CANDIDATES_PER_TOWER * counts[:, c] + CANDIDATES_EXTRA)[:, None].expand(-1, n_e if c == 0
                           else slots.n_slots - n_e) for c in range(2)], dim=1)
        z = rank < reach
    else:
        # u > 1 - p: a high factor means more towers (and, below, hotter ones)
        z = copula_uniforms(copula["count"], model.slot_group, factors, rng) > 1.0 - p_cell
    u_et = copula_uniforms(copula["et"], model.slot_group, factors, rng)
    et = torch.cat([truncated_tower_et(model.likelihoods[c], eta[:, cols], fixed["et_range"][c]["min_et_gev"],
                                       fixed["et_range"][c]["max_et_gev"], u_et[:, cols])
                    for c, cols in enumerate(calos)], dim=1)
    img, slot = (t.cpu().numpy() for t in z.nonzero(as_tuple=True))  # row-major: grouped by image
    u_eta, u_phi = (torch.rand(img.size, generator=rng, device=dev, dtype=torch.float64).cpu().numpy()
                    for _ in range(2))
    mu_eta, mu_phi = model.muon_eta[pick], model.muon_phi[pick]
    towers, kept = slot_towers(slots, img, slot, et[z].cpu().numpy().astype(np.float64), mu_eta, mu_phi, u_eta, u_phi,
                               k)
    reaches = contributing_towers(towers, tower_shape=image["tower_shape"], npix=image["npix"], radius=image["radius"])
    if counts is not None:  # keep the first `count` reaching candidates of each image and calorimeter, in rank order
        calo = slots.calo[slot[kept]]
        order = np.lexsort((rank[z].cpu().numpy()[kept], calo, img[kept]))
        group = img[kept][order] * 2 + calo[order]
        hits = reaches[order].astype(np.int64)
        before = np.cumsum(hits) - hits  # reaching candidates ahead in the same group
        start = np.searchsorted(group, group, side="left")
        taken = before - (np.cumsum(hits) - hits)[start]
        allowed = counts.cpu().numpy()[img[kept][order], calo[order]]
        keep_sorted = (hits == 1) & (taken < allowed)
        reaches = np.zeros_like(reaches)
        reaches[order[keep_sorted]] = True
    towers = select_towers(towers, reaches)
    if match_et:
        towers = map_tower_et(model, towers)
    if "dominant_fraction" in fixed:  # share the ET between the tower's ECal and HCal parts as in the data
        u = torch.rand(towers.n_towers, generator=rng, device=dev, dtype=torch.float64).cpu().numpy()
        towers = split_tower_et(towers, fixed["dominant_fraction"], u)
    return towers


def dominant_fraction_quantiles(towers: TowerSet) -> dict[str, list]:
    """Per calorimeter and tower-ET bin (edges at the data's ET_SHARE_BINS quantiles), the quantiles (101 levels) of
    the share of a tower's ET in its dominant part, over the data's towers (unweighted): a real tower often has
    both an ECal and an HCal part, the hottest ones most of all."""
    e, h = np.asarray(towers.et_ecal, dtype=np.float64), np.asarray(towers.et_hcal, dtype=np.float64)
    calo = tower_calorimeter(towers)
    total = e + h
    share = np.where(calo == 1, h, e) / np.maximum(total, 1e-30)
    levels = np.linspace(0.0, 1.0, 101)
    edges, quantiles = [], []
    for c in range(2):
        sel = calo == c
        if not sel.any():
            edges.append([])
            quantiles.append([[1.0] * levels.size])
            continue
        cuts = np.quantile(total[sel], ET_SHARE_BINS)
        bins = np.searchsorted(cuts, total[sel], side="right")
        edges.append(cuts.tolist())
        quantiles.append([np.quantile(share[sel][bins == b], levels).tolist() if np.any(bins == b)
                          else [1.0] * levels.size for b in range(cuts.size + 1)])
    return {"et_edges": edges, "quantiles": quantiles}


def split_tower_et(towers: TowerSet, table: dict[str, list] | list, u: np.ndarray) -> TowerSet:
    """The towers with each one's ET shared between its dominant part (a share drawn, by the uniforms u (T,), from the
    data's shares of towers of its calorimeter and ET bin: dominant_fraction_quantiles) and the other calorimeter's
    part; the total and the dominant calorimeter are kept. It matters where the parts are drawn differently
    (tower_shape mixed: an ECal point, an HCal cell)."""
    if isinstance(table, list):  # one ET bin per calorimeter (models trained before the bins)
        table = {"et_edges": [[], []], "quantiles": [[q] for q in table]}
    calo = tower_calorimeter(towers)
    total = np.asarray(towers.et_ecal, dtype=np.float64) + np.asarray(towers.et_hcal, dtype=np.float64)
    share = np.ones(total.size)
    for c in range(2):
        bins = np.searchsorted(np.asarray(table["et_edges"][c], dtype=np.float64), total, side="right")
        for b, q in enumerate(table["quantiles"][c]):  # a few ET bins, not towers
            sel = (calo == c) & (bins == b)
            share[sel] = np.interp(u[sel], np.linspace(0.0, 1.0, len(q)), q)
    share = share.clip(0.5 + 1e-6, 1.0)  # the dominant part stays dominant
    dominant, other = share * total, (1.0 - share) * total
    return TowerSet(offsets=towers.offsets, deta=towers.deta, dphi=towers.dphi,
                    et_ecal=np.where(calo == 0, dominant, other).astype(np.float32),
                    et_hcal=np.where(calo == 1, dominant, other).astype(np.float32), edges=towers.edges)


def map_tower_et(model: TowerModel, towers: TowerSet) -> TowerSet:
    """The towers with their ET mapped from the generated quantiles onto the data's (stored at training), per copula
    group (calorimeter x cone/ring).

    A monotone map per group: it keeps which tower of a region is the hottest but gives the towers
    the data's ET spectrum of their calorimeter and region (the b jet's hot towers in the cone, the
    pile-up's softer ones around it), so no tower is below the data's smallest (the card's
    threshold) or above its largest ET.
    """
    q = model.fixed["et_quantiles"]
    calo = tower_calorimeter(towers)
    group = tower_group(towers, model.fixed["copula"]["cone"])
    parts = [np.asarray(towers.et_ecal, dtype=np.float64), np.asarray(towers.et_hcal, dtype=np.float64)]
    for g in range(len(COPULA_GROUPS)):
        sel = group == g
        gen, real = np.asarray(q["generated"][g]), np.asarray(q["data"][g])
        gen = np.maximum.accumulate(gen)  # a non-decreasing abscissa for interp
        parts[g // 2][sel] = np.interp(parts[g // 2][sel], gen, real)
    return TowerSet(offsets=towers.offsets, deta=towers.deta, dphi=towers.dphi,
                    et_ecal=np.where(calo == 0, parts[0], towers.et_ecal).astype(np.float32),
                    et_hcal=np.where(calo == 1, parts[1], towers.et_hcal).astype(np.float32), edges=towers.edges)


def select_towers(towers: TowerSet, keep: np.ndarray) -> TowerSet:
    """The towers where `keep` (T,) is true, each staying with its image."""
    per_image = np.bincount(towers.image_index()[keep], minlength=len(towers))
    return TowerSet(offsets=np.r_[0, np.cumsum(per_image)].astype(np.int64), deta=towers.deta[keep],
                    dphi=towers.dphi[keep], et_ecal=towers.et_ecal[keep], et_hcal=towers.et_hcal[keep],
                    edges=towers.edges[keep])


def render(model: TowerModel, towers: TowerSet) -> np.ndarray:
    """(n, npix, npix) float32 images of generated towers: imaging's render_towers, the training images' settings."""
    image = model.fixed["image"]
    return render_towers(towers, tower_shape=image["tower_shape"], npix=image["npix"], radius=image["radius"],
                         quantity=image["quantity"])


@torch.no_grad()
def generate_towers(model: TowerModel, n: int, *, seed: int, batch_size: int = 4096,
                    device: torch.device | str = "cpu", progress: bool = True, match_et: bool = True,
                    render_images: bool = True) -> tuple[TowerSet, np.ndarray]:
    """n images' generated towers and their rendered images (an empty array without render_images), reproducible
    for a seed and device; match_et=False leaves out the tower-ET map (the map's own reference draws)."""
    if n < 1:
        raise ModelError(f"number of images to generate must be >= 1, got {n}")
    device = torch.device(device)
    model = model.to(device).eval()
    rng = torch.Generator(device=device).manual_seed(int(seed))
    sets, images = [], []
    for start in tqdm(range(0, n, batch_size), desc="sample towers", unit="batch", disable=not progress,
                      mininterval=2.0):
        k = min(batch_size, n - start)
        noise = torch.randn(k, model.generator.spec.noise_dim, generator=rng, device=device)
        towers = draw_towers(model, noise, rng, match_et=match_et)
        sets.append(towers)
        if render_images:
            images.append(render(model, towers))
    return TowerSet.concatenate(sets), (np.concatenate(images) if images else np.zeros((0,), dtype=np.float32))


def generate(model: TowerModel, n: int, *, seed: int, batch_size: int = 4096, device: torch.device | str = "cpu",
             progress: bool = True, pt_gev: np.ndarray | None = None) -> np.ndarray:
    """(n, npix, npix) float32 images: render_towers of generated towers (unconditional: pt_gev must be None)."""
    if pt_gev is not None:
        raise ModelError("the towers family is unconditional; it cannot be sampled at given muon pTs")
    return generate_towers(model, n, seed=seed, batch_size=batch_size, device=device, progress=progress)[1]

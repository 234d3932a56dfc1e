"""Synthetic sparse images for tests and benchmarks (not physics; no simulation involved).

Each image has a pile-up-like component (every pixel non-zero with a small probability,
exponential ET) and, for a fraction of images, a core: a cluster of deposits near the
centre with a random size. About 99% of pixels are zero, like the real muon images.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from common.provenance import provenance
from imaging.h5schema import write_image_file


def synthetic_images(
    n: int,
    *,
    npix: int = 32,
    seed: int = 0,
    pileup_occupancy: float = 0.006,
    pileup_mean_gev: float = 1.0,
    core_fraction: float = 0.5,
    core_mean_deposits: float = 6.0,
    core_mean_gev: float = 3.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images (n, npix, npix) float32 GeV, muon pT (n,) GeV in [10, 15], weights (n,)."""
    rng = np.random.default_rng(seed)
    d = npix * npix
    pileup = (rng.random((n, d)) < pileup_occupancy) * rng.exponential(pileup_mean_gev, (n, d))
    images = pileup.astype(np.float32).reshape(n, npix, npix)
    # core: Poisson number of deposits around the centre, spread growing with a per-image size
    has_core = rng.random(n) < core_fraction
    n_dep = rng.poisson(core_mean_deposits, n) * has_core
    img_idx = np.repeat(np.arange(n), n_dep)
    spread = np.repeat(rng.uniform(0.5, 3.0, n), n_dep)
    centre = (npix - 1) / 2
    ie = np.clip(np.rint(centre + spread * rng.standard_normal(img_idx.size)), 0, npix - 1).astype(int)
    ip = np.clip(np.rint(centre + spread * rng.standard_normal(img_idx.size)), 0, npix - 1).astype(int)
    np.add.at(images, (img_idx, ie, ip), rng.exponential(core_mean_gev, img_idx.size).astype(np.float32))
    muon_pt = rng.uniform(10.0, 15.0, n).astype(np.float32)
    weight = rng.uniform(0.5, 1.5, n)
    return images, muon_pt, weight


def write_synthetic_file(path: str | Path, n: int, *, npix: int = 32, seed: int = 0, sample: str = "signal") -> Path:
    """Write synthetic images in the images.h5 schema (attr synthetic=True)."""
    images, pt, w = synthetic_images(n, npix=npix, seed=seed)
    return write_image_file(
        path, images, pt, w, sample=sample, kind="real",
        provenance=provenance({"synthetic": True, "n": n, "seed": seed}), extra_attrs={"synthetic": True},
    )


#: synthetic calorimeter grids like the CMS card's: (eta row edges, phi cells per row) of ECal and HCal
SYNTHETIC_ECAL_ETA = np.round(np.arange(-172, 173) * 0.0174, 4)  # |eta| < 3, 0.0174 rows, 360 phi cells
SYNTHETIC_HCAL_ETA = np.r_[np.arange(-2.8, -1.65, 0.1), np.arange(-19, 20) * 0.087, np.arange(1.753, 2.9, 0.1)]


def _synthetic_cells(eta_edges: np.ndarray, nphi_of_row: np.ndarray, eta: np.ndarray,
                     phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, phi cell and cell edges (eta_lo, eta_hi, phi_lo, phi_hi absolute) of absolute points."""
    row = (np.searchsorted(eta_edges, eta, side="right") - 1).clip(0, eta_edges.size - 2)
    width = 2 * np.pi / nphi_of_row[row]
    cell = np.floor((phi + np.pi) / width).astype(np.int64) % nphi_of_row[row]
    phi_lo = -np.pi + cell * width
    return row, cell, np.stack([eta_edges[row], eta_edges[row + 1], phi_lo, phi_lo + width], axis=1)


def synthetic_towers(n: int, *, seed: int = 0, ecal_mean: float = 12.0, hcal_mean: float = 2.0,
                     core_fraction: float = 0.5) -> dict[str, np.ndarray]:
    """Towers of n synthetic images on card-like ECal/HCal grids (not physics), in the towers-data layout.

    Pile-up-like towers spread over the image, and for a fraction of images a core of towers near
    the muon; one tower per cell, ET above a per-calorimeter threshold (0.5 / 1.0 GeV), each
    tower's position uniform inside its cell. Returns offsets, deta, dphi, et_ecal, et_hcal, edges
    (relative to the muon) and the images' muon_eta, muon_phi, muon_pt, weight.
    """
    rng = np.random.default_rng(seed)
    mu_eta, mu_phi = rng.uniform(-2.4, 2.4, n), rng.uniform(-np.pi, np.pi, n)
    grids = ((SYNTHETIC_ECAL_ETA, np.full(SYNTHETIC_ECAL_ETA.size - 1, 360)),
             (SYNTHETIC_HCAL_ETA, np.where(np.abs(SYNTHETIC_HCAL_ETA[:-1]) < 1.65, 72, 36)))
    parts = []
    for c, (edges, nphi) in enumerate(grids):
        core = rng.random(n) < core_fraction
        count = rng.poisson(ecal_mean if c == 0 else hcal_mean, n) + core * rng.poisson(4 if c == 0 else 1, n)
        img = np.repeat(np.arange(n), count)
        in_core = np.repeat(core, count) & (rng.random(img.size) < 0.5)
        spread = np.where(in_core, 0.05, 0.2)
        deta, dphi = spread * rng.standard_normal(img.size), spread * rng.standard_normal(img.size)
        deta, dphi = deta.clip(-0.5, 0.5), dphi.clip(-0.5, 0.5)
        eta, phi = mu_eta[img] + deta, mu_phi[img] + dphi
        row, cell, cells = _synthetic_cells(edges, nphi, eta, phi)
        _, first = np.unique(np.stack([img, row, cell], 1), axis=0, return_index=True)  # one tower per cell
        img, cells = img[first], cells[first]
        threshold = 0.5 if c == 0 else 1.0
        et = threshold + rng.lognormal(-0.5 + np.where(in_core[first], 1.0, 0.0), 0.8)
        parts.append((img, cells, et, np.full(img.size, c)))
    img, cells, et, calo = (np.concatenate([p[i] for p in parts]) for i in range(4))
    order = np.argsort(img, kind="stable")
    img, cells, et, calo = img[order], cells[order], et[order], calo[order]
    u = rng.random((img.size, 2))
    eta_lo, eta_hi = cells[:, 0] - mu_eta[img], cells[:, 1] - mu_eta[img]
    phi_lo = cells[:, 2] - mu_phi[img]
    phi_lo = phi_lo - 2 * np.pi * np.floor((phi_lo + 0.5 * (cells[:, 3] - cells[:, 2]) + np.pi) / (2 * np.pi))
    phi_hi = phi_lo + (cells[:, 3] - cells[:, 2])
    f32 = np.float32
    return {
        "offsets": np.r_[0, np.cumsum(np.bincount(img, minlength=n))].astype(np.int64),
        "deta": (eta_lo + u[:, 0] * (eta_hi - eta_lo)).astype(f32),
        "dphi": (phi_lo + u[:, 1] * (phi_hi - phi_lo)).astype(f32),
        "et_ecal": np.where(calo == 0, et, 0).astype(f32), "et_hcal": np.where(calo == 1, et, 0).astype(f32),
        "edges": np.stack([eta_lo, eta_hi, phi_lo, phi_hi], 1).astype(f32),
        "muon_eta": mu_eta.astype(f32), "muon_phi": mu_phi.astype(f32),
        "muon_pt": rng.uniform(10.0, 15.0, n).astype(f32), "weight": rng.uniform(0.5, 1.5, n),
    }

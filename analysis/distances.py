"""Distances between two weighted 1-D distributions: EMD and CaloChallenge separation power."""
from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

from .errors import AnalysisError


def _checked(name: str, values: np.ndarray, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise AnalysisError(f"{name}: no values to compare")
    if w.shape != v.shape:
        raise AnalysisError(f"{name}: {w.size} weights for {v.size} values")
    if not (np.isfinite(v).all() and np.isfinite(w).all()):
        raise AnalysisError(f"{name}: values or weights contain NaN or inf")
    if (w < 0).any() or w.sum() <= 0:
        raise AnalysisError(f"{name}: weights must be >= 0 with a positive sum")
    return v, w


def weighted_emd(
    u: np.ndarray, v: np.ndarray, u_weights: np.ndarray | None = None, v_weights: np.ndarray | None = None,
) -> float:
    """Earth mover's (1-D Wasserstein-1) distance between weighted samples, in units of the values."""
    u, uw = _checked("first sample", u, u_weights)
    v, vw = _checked("second sample", v, v_weights)
    return float(wasserstein_distance(u, v, uw, vw))


def emd_noise_floor(
    values: np.ndarray, weights: np.ndarray, n_other: int, rng: np.random.Generator, n_splits: int = 10,
) -> float:
    """EMD that finite statistics alone give: real vs a perfect generator of `n_other` images.

    Mean EMD between two random halves of the real sample, scaled from their sizes to the
    comparison at hand (N real vs `n_other` generated): the EMD of two samples of one
    distribution falls like sqrt(1/n1 + 1/n2). A model cannot be told apart from the truth
    below this value.
    """
    values, weights = _checked("real sample", values, weights)
    n = values.size
    if n < 4:
        return float("nan")
    halves = []
    for _ in range(n_splits):
        idx = rng.permutation(n)
        a, b = idx[: n // 2], idx[n // 2:]
        halves.append(wasserstein_distance(values[a], values[b], weights[a], weights[b]))
    scale = np.sqrt((1.0 / n + 1.0 / n_other) / (1.0 / (n // 2) + 1.0 / (n - n // 2)))
    return float(np.mean(halves) * scale)


def reference_bins(reference: np.ndarray, other: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin edges at quantiles of `reference` (equal-population bins), plus one bin on each side
    for values of `other` outside the reference range.

    Quantile edges keep heavy-tailed features (pixel intensities) resolved where the
    reference has its mass; duplicate edges of discrete features are merged. The side bins
    make samples with disjoint ranges fully separated (separation power 1).
    """
    if n_bins < 1:
        raise AnalysisError(f"number of bins must be >= 1, got {n_bins}")
    edges = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, n_bins + 1)))
    top = np.nextafter(edges[-1], np.inf)  # the reference maximum belongs to the last reference bin
    edges = np.append(edges[:-1], top) if edges.size > 1 else np.array([edges[0], top])
    lo, hi = float(np.min(other)), float(np.max(other))
    if lo < edges[0]:
        edges = np.insert(edges, 0, lo)
    if hi >= edges[-1]:
        edges = np.append(edges, np.nextafter(hi, np.inf))
    return edges


def separation_power(
    u: np.ndarray, v: np.ndarray, u_weights: np.ndarray | None = None, v_weights: np.ndarray | None = None,
    *, n_bins: int = 50,
) -> float:
    """Separation power 1/2 sum_i (h_u,i - h_v,i)^2 / (h_u,i + h_v,i) of normalised histograms.

    0 for identical histograms, 1 for disjoint ones (CaloChallenge definition); bins are
    equal-population bins of `u` (the reference, i.e. the real sample).
    """
    u, uw = _checked("first sample", u, u_weights)
    v, vw = _checked("second sample", v, v_weights)
    edges = reference_bins(u, v, n_bins)
    hu, _ = np.histogram(u, edges, weights=uw)
    hv, _ = np.histogram(v, edges, weights=vw)
    hu, hv = hu / hu.sum(), hv / hv.sum()
    total = hu + hv
    nz = total > 0
    return float(0.5 * np.sum((hu[nz] - hv[nz]) ** 2 / total[nz]))

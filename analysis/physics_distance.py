"""Fréchet and kernel physics distances (FPD, KPD) of Kansal et al., arXiv:2211.10295.

The estimators of the `jetnet` package (jetnet.evaluation.fpd / kpd, version 0.2.5), rewritten
here because jetnet pulls ~60 packages (coffea, numba, pandas, pyarrow, ...) into the pinned
environment: the same feature normalisation (each feature divided by its largest |value| in the
real sample), the same random draws for a given seed, the same fits.

- FPD: Fréchet distance between Gaussians fitted to real and generated features, measured at
  `num_points` batch sizes evenly spaced in 1/N between `min_samples` and `max_samples` (mean of
  `num_batches` draws each) and extrapolated linearly in 1/N to N = infinity; the value is the
  intercept, the error its fit uncertainty.
- KPD: unbiased squared MMD with the polynomial kernel k(x, y) = (x.y / d + 1)^degree on
  `num_batches` batches of `batch_size`; the value is the median, the error half the 16-84%
  inter-quantile range. jetnet uses degree 4 (its code; KID used 3).

Draws are with replacement, so batches may be larger than the files. Real images with unequal
weights are drawn with probability proportional to their weight (jetnet has no weights; with
equal weights the draws are exactly jetnet's). tests/benchmarks/check_fpd_kpd.py compares the
two implementations on the same arrays.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

from .errors import AnalysisError


@dataclass(frozen=True)
class PhysicsDistanceSettings:
    """Batches of FPD and KPD (config `analysis.metrics.fpd_kpd`)."""

    fpd_min_samples: int = 2000
    fpd_max_samples: int = 10000
    fpd_num_batches: int = 20
    fpd_num_points: int = 10
    kpd_num_batches: int = 10
    kpd_batch_size: int = 5000
    kpd_degree: int = 4
    isolation_cones: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4)


def normalise_features(real: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both feature arrays (N, d) divided by the real sample's max |value| per feature (1 where it is 0)."""
    maxes = np.max(np.abs(real), axis=0)
    maxes[maxes == 0] = 1.0
    return real / maxes, generated / maxes


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet distance of two Gaussians: |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

    tr (S1 S2)^(1/2) is the sum of square roots of the eigenvalues of the symmetric
    S1^(1/2) S2 S1^(1/2) (same eigenvalues, no complex matrix square root).
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    e1, v1 = np.linalg.eigh(sigma1)
    root1 = (v1 * np.sqrt(np.clip(e1, 0, None))) @ v1.T
    inner = root1 @ sigma2 @ root1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(0.5 * (inner + inner.T)), 0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def _probabilities(weight: np.ndarray | None, n: int) -> np.ndarray | None:
    """Draw probabilities ∝ weight; None (uniform, jetnet's draws) when absent or all equal."""
    if weight is None:
        return None
    w = np.asarray(weight, dtype=np.float64)
    if w.shape != (n,) or (w < 0).any() or not w.sum() > 0:
        raise AnalysisError(f"FPD/KPD: weights must be ({n},) and >= 0 with a positive sum")
    return None if np.all(w == w[0]) else w / w.sum()


def _check(real: np.ndarray, generated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(real, dtype=np.float64), np.asarray(generated, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or x.shape[1] == 0:
        raise AnalysisError(f"FPD/KPD need feature arrays (N, d) with the same d, got {x.shape} and {y.shape}")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise AnalysisError(f"FPD/KPD need >= 2 images per sample, got {x.shape[0]} and {y.shape[0]}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise AnalysisError("FPD/KPD: features contain NaN or inf; drop such columns before")
    return x, y


def _linear(x: np.ndarray, intercept: float, slope: float) -> np.ndarray:
    return intercept + slope * x


def fpd(
    real: np.ndarray, generated: np.ndarray, *, min_samples: int = 20_000, max_samples: int = 50_000,
    num_batches: int = 20, num_points: int = 10, normalise: bool = True, seed: int = 42,
    real_weight: np.ndarray | None = None, generated_weight: np.ndarray | None = None,
) -> tuple[float, float]:
    """(FPD, its error) between feature arrays (N, d), extrapolated to infinite batch size (defaults: jetnet's)."""
    x, y = _check(real, generated)
    if not 2 <= min_samples < max_samples or num_batches < 1 or num_points < 2:
        raise AnalysisError(f"FPD needs 2 <= min_samples < max_samples, num_batches >= 1, num_points >= 2; got "
                            f"{min_samples}, {max_samples}, {num_batches}, {num_points}")
    px, py = _probabilities(real_weight, x.shape[0]), _probabilities(generated_weight, y.shape[0])
    if normalise:
        x, y = normalise_features(x, y)
    batches = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    vals = []
    for batch_size in batches:
        points = []
        for _ in range(num_batches):
            sx = x[rng.choice(len(x), size=batch_size, p=px)]
            sy = y[rng.choice(len(y), size=batch_size, p=py)]
            points.append(frechet_distance(sx.mean(axis=0), np.cov(sx, rowvar=False),
                                           sy.mean(axis=0), np.cov(sy, rowvar=False)))
        vals.append(np.mean(points))
    params, covs = curve_fit(_linear, 1 / batches, vals, bounds=([0, 0], [np.inf, np.inf]))
    return float(params[0]), float(np.sqrt(np.diag(covs)[0]))


def polynomial_feature_map(x: np.ndarray, degree: int) -> np.ndarray:
    """Explicit features phi (N, C(d + degree, degree)) of the kernel (a.b / d + 1)^degree: phi(a).phi(b) = k(a, b).

    With u = (1, a / sqrt(d)), (u.v)^p = sum over multi-indices |alpha| = p of p!/alpha! u^alpha
    v^alpha, so phi_alpha = sqrt(p!/alpha!) u^alpha (one column per monomial, not per image).
    """
    u = np.concatenate([np.ones((x.shape[0], 1)), x / np.sqrt(x.shape[1])], axis=1)
    cols = []
    for combo in itertools.combinations_with_replacement(range(u.shape[1]), degree):
        counts = np.bincount(combo)
        coef = math.factorial(degree) / math.prod(math.factorial(int(c)) for c in counts)
        cols.append(np.sqrt(coef) * np.prod(u[:, combo], axis=1))
    return np.stack(cols, axis=1)


def mmd_poly_unbiased(x: np.ndarray, y: np.ndarray, degree: int = 4) -> float:
    """Unbiased squared MMD of samples x (m, d) and y (n, d), kernel (a.b / d + 1)^degree (diagonal terms left out).

    Pair sums come from the kernel's explicit feature map (sum_ij k(x_i, y_j) = Phi_x . Phi_y with
    Phi_x = sum_i phi(x_i)): the same value as the m x n kernel matrices, at O(N) cost.
    """
    m, n = x.shape[0], y.shape[0]
    fx, fy = polynomial_feature_map(x, degree).sum(axis=0), polynomial_feature_map(y, degree).sum(axis=0)
    gamma = 1.0 / x.shape[1]
    diag_x = float((((x * x).sum(axis=1) * gamma + 1.0) ** degree).sum())
    diag_y = float((((y * y).sum(axis=1) * gamma + 1.0) ** degree).sum())
    return float((fx @ fx - diag_x) / (m * (m - 1)) + (fy @ fy - diag_y) / (n * (n - 1)) - 2.0 * (fx @ fy) / (m * n))


def kpd(
    real: np.ndarray, generated: np.ndarray, *, num_batches: int = 10, batch_size: int = 5_000,
    normalise: bool = True, seed: int = 42, degree: int = 4,
    real_weight: np.ndarray | None = None, generated_weight: np.ndarray | None = None,
) -> tuple[float, float]:
    """(KPD, its error): median and half the 16-84% range of the batch MMD^2 values (defaults: jetnet's)."""
    x, y = _check(real, generated)
    if num_batches < 1 or batch_size < 2 or degree < 1:
        raise AnalysisError(f"KPD needs num_batches >= 1, batch_size >= 2, degree >= 1; got "
                            f"{num_batches}, {batch_size}, {degree}")
    px, py = _probabilities(real_weight, x.shape[0]), _probabilities(generated_weight, y.shape[0])
    if normalise:
        x, y = normalise_features(x, y)
    vals = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)
        sx = x[rng.choice(len(x), size=batch_size, p=px)]
        sy = y[rng.choice(len(y), size=batch_size, p=py)]
        vals.append(mmd_poly_unbiased(sx, sy, degree))
    lo, hi = np.percentile(vals, [16.275, 83.725])
    return float(np.median(vals)), float((hi - lo) / 2)

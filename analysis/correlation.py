"""Pixel-pixel correlation matrices and how far a generated one is from the real one."""
from __future__ import annotations

import numpy as np

#: Images per block when accumulating moments (bounds memory to ~block x P float64).
BLOCK = 8192


def pixel_correlation(images: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted Pearson correlation (P, P), P = npix^2, between pixel ET values.

    Pixels that never vary (e.g. always zero) have no defined correlation; their rows and
    columns are set to 0 (diagonal too), so they count as "uncorrelated" in differences.
    """
    n = images.shape[0]
    flat = images.reshape(n, -1)
    w = np.asarray(weight, dtype=np.float64)
    p = flat.shape[1]
    sum_w = w.sum()
    sum_x = np.zeros(p)
    sum_xx = np.zeros((p, p))
    for start in range(0, n, BLOCK):
        x = flat[start:start + BLOCK].astype(np.float64)
        wb = w[start:start + BLOCK]
        sum_x += wb @ x
        sum_xx += x.T @ (x * wb[:, None])
    mean = sum_x / sum_w
    cov = sum_xx / sum_w - np.outer(mean, mean)
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    ok = std > 1e-12 * max(1.0, float(std.max(initial=0.0)))
    corr = np.zeros_like(cov)
    corr[np.ix_(ok, ok)] = cov[np.ix_(ok, ok)] / np.outer(std[ok], std[ok])
    return np.clip(corr, -1.0, 1.0)


def correlation_difference(real: np.ndarray, generated: np.ndarray) -> dict[str, float]:
    """Summary of |C_gen - C_real| over off-diagonal pixel pairs: mean, max and Frobenius norm / P."""
    diff = generated - real
    off = ~np.eye(diff.shape[0], dtype=bool)
    a = np.abs(diff[off])
    return {
        "corr_mean_abs_diff": float(a.mean()),
        "corr_max_abs_diff": float(a.max()),
        "corr_frobenius_diff": float(np.sqrt(np.sum(diff[off] ** 2)) / diff.shape[0]),
    }


def correlation_noise_floor(
    images: np.ndarray, weight: np.ndarray, n_other: int, rng: np.random.Generator,
) -> float:
    """Mean |C_a - C_b| (off-diagonal) expected from finite statistics alone.

    Measured between two random halves of `images` and scaled from their sizes (N/2, N/2)
    to the comparison at hand (N real vs `n_other` generated): noise variance ~ 1/n1 + 1/n2.
    """
    n = images.shape[0]
    idx = rng.permutation(n)
    a, b = idx[: n // 2], idx[n // 2:]
    halves = correlation_difference(pixel_correlation(images[a], weight[a]), pixel_correlation(images[b], weight[b]))
    scale = np.sqrt((1.0 / n + 1.0 / n_other) / (1.0 / a.size + 1.0 / b.size))
    return float(halves["corr_mean_abs_diff"] * scale)

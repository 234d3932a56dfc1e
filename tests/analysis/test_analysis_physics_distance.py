"""FPD and KPD (JetNet's estimators), the tail percentiles, the features and the radial profile: invariants."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from analysis.errors import AnalysisError
from analysis.features import et_weighted_radius, physics_features, radial_profile, ring_edges, weighted_percentile
from analysis.geometry import delta_r_map
from analysis.inputs import read_calo_sums
from analysis.metrics import percentile_key, tail_percentiles
from analysis.physics_distance import fpd, frechet_distance, kpd, mmd_poly_unbiased, normalise_features
from imaging.h5schema import write_image_file

SMALL = {"min_samples": 500, "max_samples": 2000, "num_batches": 10, "num_points": 5}


def _gauss(n: int, shift: float, seed: int, d: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_frechet_distance_of_known_gaussians() -> None:
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([0.0]), np.array([[1.0]])) == \
        pytest.approx(1.0 + 1.0)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert frechet_distance(np.zeros(2), cov, np.zeros(2), cov) == pytest.approx(0.0, abs=1e-12)


def test_fpd_is_zero_for_one_sample_and_grows_with_a_shift() -> None:
    x = _gauss(4000, 0.0, 1)
    same, err = fpd(x, x, **SMALL)
    assert 0 <= same < 3 * err + 1e-5 and same < 1e-3  # ~0 within the extrapolation's error
    values = [fpd(x, _gauss(4000, s, 2), **SMALL)[0] for s in (0.0, 0.1, 0.3)]
    assert values[0] < 2e-3 < values[1] < values[2]
    # the mean term dominates: ~ d * shift^2 after normalising by the real max |value| (~4)
    assert values[2] == pytest.approx(4 * 0.3**2 / np.abs(x).max(axis=0).mean() ** 2, rel=0.5)


def test_kpd_is_unbiased_for_one_distribution_and_grows_with_a_shift() -> None:
    x, y, far = _gauss(3000, 0.0, 3), _gauss(3000, 0.0, 4), _gauss(3000, 0.3, 5)
    value, err = kpd(x, y, num_batches=10, batch_size=1000)
    assert abs(value) < 3 * err + 1e-6  # unbiased: centred on 0, negative values allowed
    assert kpd(x, far, num_batches=10, batch_size=1000)[0] > 10 * max(abs(value), err)


def test_mmd_feature_map_equals_the_kernel_matrices() -> None:
    a, b = _gauss(40, 0.0, 6, d=3), _gauss(50, 0.5, 7, d=3)
    for degree in (1, 3, 4):
        def k(p: np.ndarray, q: np.ndarray, degree: int = degree) -> np.ndarray:
            return (p @ q.T / 3 + 1) ** degree
        kxx, kyy = k(a, a), k(b, b)
        ref = ((kxx.sum() - np.trace(kxx)) / (40 * 39) + (kyy.sum() - np.trace(kyy)) / (50 * 49)
               - 2 * k(a, b).mean())
        assert mmd_poly_unbiased(a, b, degree) == pytest.approx(ref, rel=1e-9)


def test_normalisation_uses_the_real_maxima_and_weights_draw_images() -> None:
    x, y = np.array([[2.0, 0.0], [-4.0, 0.0]]), np.array([[8.0, 3.0]])
    nx, ny = normalise_features(x, y)
    np.testing.assert_allclose(nx, [[0.5, 0.0], [-1.0, 0.0]])
    np.testing.assert_allclose(ny, [[2.0, 3.0]])
    # weight 0 on the shifted half of a sample: it is never drawn, so FPD against the unshifted sample is ~0
    x = np.concatenate([_gauss(2000, 0.0, 8), _gauss(2000, 3.0, 9)])
    w = np.r_[np.ones(2000), np.zeros(2000)]
    assert fpd(x, _gauss(4000, 0.0, 10), real_weight=w, **SMALL)[0] < 5e-3
    assert fpd(x, _gauss(4000, 0.0, 10), **SMALL)[0] > 0.1
    with pytest.raises(AnalysisError, match="NaN or inf"):
        fpd(np.full((5, 2), np.nan), x[:, :2], **SMALL)


def test_weighted_percentile_and_tail_ratios() -> None:
    v = np.arange(1, 1001, dtype=float)
    for q in (50, 99, 99.9):
        assert weighted_percentile(v, np.ones_like(v), q) == pytest.approx(np.percentile(v, q, method="hazen"))
    # only relative weights count, and a value holding almost all the weight holds the percentile
    w = np.random.default_rng(0).uniform(0.5, 1.5, v.size)
    assert weighted_percentile(v, w, 99) == pytest.approx(weighted_percentile(v, 7 * w, 99))
    w[500] = 1e6
    assert weighted_percentile(v, w, 10) == pytest.approx(501, abs=1)  # interpolated from its neighbour
    assert weighted_percentile(v, w, 99.9) == pytest.approx(501, abs=1)
    feats = {"max_pixel_et": (v, np.ones_like(v)), "total_et": (10 * v, np.ones_like(v))}
    gen = {"max_pixel_et": (2 * v, np.ones_like(v)), "total_et": (10 * v, np.ones_like(v))}
    rec = tail_percentiles(feats, gen)
    assert percentile_key("max_pixel_et", 99.9) == "max_pixel_et_p99_9"
    assert rec["max_pixel_et_p99_real"] == pytest.approx(990.5)
    assert rec["max_pixel_et_p99_9_ratio"] == pytest.approx(2.0)
    assert rec["total_et_p99_ratio"] == pytest.approx(1.0)


def test_radial_profile_of_known_images() -> None:
    edges = ring_edges(0.1, 0.4)
    np.testing.assert_allclose(edges, [0, 0.1, 0.2, 0.3, 0.4])
    img = np.zeros((2, 8, 8))  # pixel 0.1 wide: centres at +-0.05, +-0.15, ...
    img[0, 3, 3] = 4.0  # dR = 0.0707: ring 0, which holds the 4 central pixels
    img[1, 0, 3] = 9.0  # (d-eta -0.35, d-phi -0.05): dR = 0.354, ring 3
    mean, err, counts = radial_profile(img, np.array([1.0, 3.0]), 0.4, edges)
    assert counts[0] == 4 and counts.sum() < 64  # corners beyond 0.4 belong to no ring
    # image values: ring 0 -> (1.0, 0), ring 3 -> (0, 9 / counts[3]); weights 1 and 3
    assert mean[0] == pytest.approx(0.25) and mean[1] == 0 and mean[3] == pytest.approx(3 * 9 / counts[3] / 4)
    # standard error of the weighted mean: sqrt(sum w^2 (x - m)^2) / sum w
    assert err[0] == pytest.approx(np.sqrt(1 * 0.75**2 + 9 * 0.25**2) / 4)
    assert err[1] == 0


def test_features_with_and_without_towers(tmp_path) -> None:
    img = np.zeros((2, 8, 8), np.float32)
    img[0, 3, 3] = 2.0
    img[0, 0, 3] = 2.0
    feats, names = physics_features(img, np.array([10.0, 10.0]), 0.4, (0.1, 0.4))
    assert names == ["isolation_0.1", "isolation_0.4", "n_nonzero", "max_pixel_et", "et_weighted_radius"]
    np.testing.assert_allclose(feats[:, 0], [0.2, 0.0])
    np.testing.assert_allclose(feats[:, 2:4], [[2, 2], [0, 0]])
    assert et_weighted_radius(img, 0.4)[0] == pytest.approx(0.5 * (np.hypot(0.05, 0.05) + np.hypot(0.35, 0.05)))
    assert et_weighted_radius(img, 0.4)[1] == 0.0  # empty image
    signed = img.copy()
    signed[1, 0, 3], signed[1, 3, 3] = 1.0, -0.999  # a Gaussian model's near-cancelling pair
    r = et_weighted_radius(signed, 0.4)
    assert r[0] == et_weighted_radius(img, 0.4)[0]  # no negative pixel: unchanged
    assert r[1] == pytest.approx(np.hypot(0.35, 0.05))  # the positive pixel's dR, not 0.35 / 0.001
    assert np.all(r <= delta_r_map(8, 0.4).max())
    path = write_image_file(tmp_path / "t.h5", img, np.full(2, 10.0), sample="signal", radius=0.4)
    assert read_calo_sums(path, 2) is None  # no towers: the ECal / HCal columns are left out
    with h5py.File(path, "a") as f:
        f["towers/offsets"] = [0, 3, 3]
        f["towers/et_ecal"] = [1.0, 0.5, 0.0]
        f["towers/et_hcal"] = [0.0, 1.0, 1.5]
    ecal, hcal = read_calo_sums(path, 2)
    np.testing.assert_allclose(ecal, [1.5, 0.0])
    np.testing.assert_allclose(hcal, [2.5, 0.0])
    feats, names = physics_features(img, np.array([10.0, 10.0]), 0.4, (0.2,), (ecal, hcal))
    assert names[-2:] == ["ecal_et", "hcal_et"] and feats[0, -1] == 2.5
    with h5py.File(path, "a") as f:
        del f["towers/et_hcal"]
    with pytest.raises(AnalysisError, match="lacks 'et_hcal'"):
        read_calo_sums(path, 2)

"""Per-(sample, model) metrics on synthetic files: invariants and the expected ordering."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.classifier import ClassifierSettings
from analysis.cnn_classifier import CnnSettings
from analysis.correlation import correlation_difference, pixel_correlation
from analysis.errors import AnalysisError
from analysis.features import average_image, zero_pixel_fraction
from analysis.inputs import load_images
from analysis.metrics import MetricSettings, pair_metrics
from analysis.physics_distance import PhysicsDistanceSettings
from imaging.h5schema import write_image_file
from model.baseline import independent_pixel_images

FAST = MetricSettings(classifier=ClassifierSettings(hidden_layers=(32,), epochs=10),
                      cnn=CnnSettings(epochs=6, patience=2, bootstrap=20, device="cpu"),
                      fpd_kpd=PhysicsDistanceSettings(fpd_min_samples=1000, fpd_max_samples=4000, kpd_batch_size=1000))


def test_zero_fraction_and_average_image_by_hand() -> None:
    img = np.zeros((2, 2, 2), np.float32)
    img[0, 0, 0] = 4.0             # image 0: 3/4 zero
    img[1] = [[1.0, 2.0], [0, 0]]  # image 1: 2/4 zero
    assert zero_pixel_fraction(img, np.array([1.0, 1.0])) == pytest.approx(0.625)
    assert zero_pixel_fraction(img, np.array([3.0, 1.0])) == pytest.approx((3 * 0.75 + 0.5) / 4)
    np.testing.assert_allclose(average_image(img, np.array([1.0, 3.0])), [[(4 + 3) / 4, 6 / 4], [0, 0]])


def test_independent_pixels_have_no_correlation() -> None:
    rng = np.random.default_rng(2)
    base = rng.exponential(1.0, (4000, 1, 1)) * np.ones((1, 4, 4))  # fully correlated pixels
    corr = pixel_correlation(base, np.ones(4000))
    np.testing.assert_allclose(corr, 1.0, atol=1e-9)
    shuffled = independent_pixel_images(base, np.ones(4000), 4000, rng)
    off = ~np.eye(16, dtype=bool)
    corr_shuffled = pixel_correlation(shuffled, np.ones(4000))
    assert np.abs(corr_shuffled[off]).max() < 0.1
    diff = correlation_difference(corr, corr_shuffled)
    assert diff["corr_mean_abs_diff"] == pytest.approx(1.0, abs=0.05)
    assert correlation_difference(corr, corr)["corr_max_abs_diff"] == 0.0


def test_real_against_itself_is_perfect(toy_dir) -> None:
    real = load_images(toy_dir / "background" / "images.h5", sample="background", label="real")
    same = load_images(toy_dir / "background" / "images.h5", sample="background", label="copy")
    rec = pair_metrics(real, same, seed=1, settings=FAST)
    for key in ("isolation_emd", "total_et_emd", "n_nonzero_emd", "pixel_et_emd", "isolation_separation",
                "corr_mean_abs_diff"):
        assert rec[key] == pytest.approx(0.0, abs=1e-9), key
    assert rec["zero_fraction_real"] == rec["zero_fraction_generated"]
    for key in ("max_pixel_et_p99_ratio", "max_pixel_et_p99_9_ratio", "total_et_p99_ratio", "total_et_p99_9_ratio"):
        assert rec[key] == 1.0, key
    assert 0 <= rec["fpd"] < 3 * rec["fpd_err"] + 1e-5  # ~0 within its extrapolation error
    assert abs(rec["kpd"]) < 3 * rec["kpd_err"] + 1e-7


def test_good_model_beats_independent_pixel_baseline_on_background(toy_dir) -> None:
    real = load_images(toy_dir / "background" / "images.h5", sample="background", label="real")
    recs = {m: pair_metrics(real, load_images(toy_dir / "generated" / "background" / f"{m}.h5",
                                              sample="background", label=m), seed=1, settings=FAST)
            for m in ("decoupled_fc", "independent_pixels")}
    good, base = recs["decoupled_fc"], recs["independent_pixels"]
    # the baseline keeps every pixel's marginal but loses the jet's correlations
    assert base["isolation_emd"] > 3 * good["isolation_emd"]
    assert base["total_et_separation"] > good["total_et_separation"]
    assert base["classifier_auc"] > good["classifier_auc"] + 0.1
    assert abs(good["classifier_auc"] - 0.5) < 0.07
    # the field's metrics agree: the pixel CNN, FPD and KPD all rank the baseline worse
    assert base["cnn_auc"] > good["cnn_auc"] + 0.1 and abs(good["cnn_auc"] - 0.5) < 0.1
    assert base["fpd"] > 10 * good["fpd"] and base["kpd"] > 10 * max(good["kpd"], good["kpd_err"])
    # generated images use the stored (mean real) pT
    assert good["generated_pt_mean_gev"] == pytest.approx(good["real_pt_mean_gev"], rel=1e-5)
    # the toy's pixel-pair correlations are weak: at 1500 images both differences are noise
    for rec in (good, base):
        assert rec["corr_mean_abs_diff"] == pytest.approx(rec["corr_mean_abs_diff_noise"], rel=0.3)


def test_incompatible_grids_are_a_clear_error(tmp_path, toy_dir) -> None:
    real = load_images(toy_dir / "signal" / "images.h5", sample="signal", label="real")
    path = write_image_file(tmp_path / "m.h5", np.zeros((4, 16, 16)), np.full(4, 12.0), sample="signal", radius=0.4)
    with pytest.raises(AnalysisError, match=r"m\.h5 \(16 px, radius 0.4\) does not match .*32 px"):
        pair_metrics(real, load_images(path, sample="signal", label="m"), seed=1, settings=FAST)

"""Pixel CNN two-sample test: ~0.5 for two halves of one sample, > 0.9 for images a CNN must tell apart."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.cnn_classifier import CnnSettings, PixelCnn, cnn_classifier_auc, pixel_input
from analysis.errors import AnalysisError
from analysis.toy import toy_images

FAST = CnnSettings(epochs=8, patience=2, max_images_per_class=1500, bootstrap=50, device="cpu")


@pytest.fixture(scope="module")
def background() -> tuple[np.ndarray, np.ndarray]:
    images, _, weight = toy_images(3000, "background", np.random.default_rng(21))
    return images, weight


def test_auc_is_one_half_for_two_halves_of_one_sample(background) -> None:
    images, weight = background
    res = cnn_classifier_auc(images[:1500], weight[:1500], images[1500:], weight[1500:], seed=3, settings=FAST)
    assert (res.n_train, res.n_validation, res.n_test) == (900, 300, 300)
    # held-out AUC of 300 + 300 images: statistical spread ~0.024 (the bootstrap says the same)
    assert abs(res.auc - 0.5) < 0.05
    assert 0.01 < res.auc_err < 0.05
    assert 1 <= res.best_epoch <= res.epochs <= FAST.epochs


def test_auc_is_reproducible_with_the_same_seed(background) -> None:
    images, weight = background
    small = CnnSettings(epochs=2, max_images_per_class=300, bootstrap=10, device="cpu")
    a, b = (cnn_classifier_auc(images[:300], weight[:300], images[300:600], weight[300:600], seed=5, settings=small)
            for _ in range(2))
    assert (a.auc, a.auc_err, a.best_epoch) == (b.auc, b.auc_err, b.best_epoch)


def test_doubled_pixels_are_told_apart() -> None:
    # pile-up-like images (~40 pixels of Exp(0.5 GeV)) against the same kind with every pixel doubled (with
    # ~10 pixels per image the two overlap: the CNN plateaus at AUC ~0.90 there)
    real, _, w_real = toy_images(1500, "signal", np.random.default_rng(22), occupancy=0.04)
    other, _, w_other = toy_images(1500, "signal", np.random.default_rng(23), occupancy=0.04)
    res = cnn_classifier_auc(real, w_real, 2.0 * other, w_other, seed=3, settings=FAST)
    assert res.auc > 0.9


def test_towers_smeared_over_blocks_of_equal_pixels_are_told_apart(background) -> None:
    # each 2x2 block of pixels replaced by its mean: what drawing a coarse tower over its cell does
    images, weight = background
    other = images[1500:]
    blocks = other.reshape(-1, 16, 2, 16, 2).mean(axis=(2, 4))
    smeared = np.repeat(np.repeat(blocks, 2, axis=1), 2, axis=2)
    assert np.allclose(smeared.sum(axis=(1, 2)), other.sum(axis=(1, 2)), rtol=1e-4)  # same ET per image
    res = cnn_classifier_auc(images[:1500], weight[:1500], smeared, weight[1500:], seed=3, settings=FAST)
    assert res.auc > 0.9


def test_input_is_signed_log_and_shapes() -> None:
    x = pixel_input(np.array([[[0.0, 1.0], [-1.0, np.e - 1]]], dtype=np.float32))
    assert x.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(x[0, 0], [[0.0, np.log(2)], [-np.log(2), 1.0]], rtol=1e-6)
    with pytest.raises(AnalysisError, match="divisible by 8"):
        PixelCnn(12)


def test_bad_splits_and_too_few_images_are_clear_errors(background) -> None:
    images, weight = background
    with pytest.raises(AnalysisError, match="splits must be three positive fractions summing to 1"):
        cnn_classifier_auc(images, weight, images, weight, seed=1, settings=CnnSettings(splits=(0.5, 0.2, 0.2)))
    with pytest.raises(AnalysisError, match="needs >= 6 generated images"):
        cnn_classifier_auc(images, weight, images[:3], weight[:3], seed=1, settings=FAST)

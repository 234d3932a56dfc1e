"""Classifier two-sample test: ~0.5 for two halves of one sample, ~1 for clearly different samples."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.classifier import ClassifierSettings, classifier_auc
from analysis.errors import AnalysisError
from analysis.toy import toy_images

FAST = ClassifierSettings(hidden_layers=(32,), epochs=15, max_images_per_class=4000)


@pytest.fixture(scope="module")
def background() -> tuple[np.ndarray, np.ndarray]:
    images, _, weight = toy_images(4000, "background", np.random.default_rng(11))
    return images, weight


def test_auc_is_one_half_for_two_halves_of_one_sample(background) -> None:
    images, weight = background
    res = classifier_auc(images[:2000], weight[:2000], images[2000:], weight[2000:], radius=0.4, seed=3, settings=FAST)
    assert res.n_test == 1000
    # held-out AUC of 1000 + 1000 images: statistical spread ~0.013
    assert abs(res.auc - 0.5) < 0.06


def test_auc_is_near_one_for_clearly_different_samples() -> None:
    # pile-up-like images with ~10 vs ~50 non-zero pixels per image (Poisson spreads ~3 and ~7)
    quiet, _, w_quiet = toy_images(2000, "signal", np.random.default_rng(12), occupancy=0.01)
    busy, _, w_busy = toy_images(2000, "signal", np.random.default_rng(13), occupancy=0.05)
    res = classifier_auc(quiet, w_quiet, busy, w_busy, radius=0.4, seed=3, settings=FAST)
    assert res.auc > 0.99


def test_auc_is_reproducible_with_the_same_seed(background) -> None:
    images, weight = background
    a, b = (classifier_auc(images[:600], weight[:600], images[600:1200], weight[600:1200], radius=0.4, seed=5,
                           settings=FAST) for _ in range(2))
    assert a == b


def test_too_few_images_is_a_clear_error(background) -> None:
    images, weight = background
    with pytest.raises(AnalysisError, match="needs >= 4 generated images"):
        classifier_auc(images, weight, images[:2], weight[:2], radius=0.4, seed=1, settings=FAST)

"""Classifier two-sample test: AUC of a small MLP that tells real from generated images.

Trained on one part of each sample and scored on held-out images, so AUC = 0.5 means the
classifier cannot tell them apart and 1.0 means it always can (CaloChallenge practice).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from .errors import AnalysisError
from .features import classifier_features

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassifierSettings:
    """Size and training budget of the two-sample classifier (from config `analysis.classifier`)."""

    hidden_layers: tuple[int, ...] = (64, 64)
    epochs: int = 20
    learning_rate: float = 1e-3
    test_fraction: float = 0.5
    max_images_per_class: int = 20000


@dataclass(frozen=True)
class ClassifierResult:
    auc: float
    n_train: int  # images per class used for training
    n_test: int  # images per class used for the AUC


def _split(n: int, rng: np.random.Generator, settings: ClassifierSettings) -> tuple[np.ndarray, np.ndarray]:
    idx = rng.permutation(n)[: min(n, settings.max_images_per_class)]
    n_test = max(1, int(round(settings.test_fraction * idx.size)))
    return idx[n_test:], idx[:n_test]


def classifier_auc(
    real: np.ndarray, real_weight: np.ndarray, generated: np.ndarray, generated_weight: np.ndarray,
    *, radius: float, seed: int, settings: ClassifierSettings = ClassifierSettings(),
) -> ClassifierResult:
    """Train on a seeded split of both samples; weighted ROC AUC on the held-out parts.

    Inputs are per-image physics features (features.classifier_features: totals, isolation
    cone, radial profile); `radius` is the image half-width in dR.

    Each class's weights are normalised to the same total in training (so class sizes do
    not matter) and the image weights enter the held-out AUC.
    """
    if not 0 < settings.test_fraction < 1:
        raise AnalysisError(f"classifier test_fraction must be in (0, 1), got {settings.test_fraction}")
    for name, arr in (("real", real), ("generated", generated)):
        if arr.shape[0] < 4:
            raise AnalysisError(f"classifier test needs >= 4 {name} images, got {arr.shape[0]}")
    if real.shape[1:] != generated.shape[1:]:
        raise AnalysisError(f"real images {real.shape[1:]} and generated images {generated.shape[1:]} differ in shape")
    rng = np.random.default_rng(seed)
    r_tr, r_te = _split(real.shape[0], rng, settings)
    g_tr, g_te = _split(generated.shape[0], rng, settings)

    def weights(w: np.ndarray) -> np.ndarray:
        w = np.asarray(w, dtype=np.float64)
        return w / w.sum() if w.sum() > 0 else np.full_like(w, 1.0 / w.size)

    x_train = np.concatenate([classifier_features(real[r_tr], radius), classifier_features(generated[g_tr], radius)])
    y_train = np.concatenate([np.ones(r_tr.size), np.zeros(g_tr.size)])
    w_train = np.concatenate([weights(real_weight[r_tr]), weights(generated_weight[g_tr])])
    w_train *= w_train.size / w_train.sum()  # mean weight 1 keeps the loss scale familiar
    scaler = StandardScaler().fit(x_train)
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(settings.hidden_layers), learning_rate_init=settings.learning_rate,
        max_iter=settings.epochs, batch_size=256, alpha=1e-4, random_state=int(seed % 2**32),
        shuffle=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed epoch budget is intended
        clf.fit(scaler.transform(x_train), y_train, sample_weight=w_train)
    x_test = np.concatenate([classifier_features(real[r_te], radius), classifier_features(generated[g_te], radius)])
    y_test = np.concatenate([np.ones(r_te.size), np.zeros(g_te.size)])
    w_test = np.concatenate([weights(real_weight[r_te]), weights(generated_weight[g_te])])
    score = clf.predict_proba(scaler.transform(x_test))[:, 1]
    auc = float(roc_auc_score(y_test, score, sample_weight=w_test))
    log.info("classifier AUC %.4f (train %d+%d, test %d+%d images)", auc, r_tr.size, g_tr.size, r_te.size, g_te.size)
    return ClassifierResult(auc=auc, n_train=int(min(r_tr.size, g_tr.size)), n_test=int(min(r_te.size, g_te.size)))

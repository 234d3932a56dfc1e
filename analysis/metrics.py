"""All real-vs-generated metrics for one (sample, model) pair, as one flat record.

Paper metric: EMD of the isolation distributions. CaloChallenge-style metrics: zero-pixel
fraction, non-zero pixels per image, pixel-intensity spectrum, total ET, pixel-pixel
correlations, a classifier two-sample AUC, and EMD + separation power of every 1-D feature.
Beyond: the near-zero isolation fraction (the paper's generated deficit at isolation ~ 0), and
the generated file's `family`, `train_time_s` and sampling-cost (`sampling_*`) attributes copied for
the results table.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.seeds import pair_seed

from .classifier import ClassifierSettings, classifier_auc
from .correlation import correlation_difference, correlation_noise_floor, pixel_correlation
from .distances import emd_noise_floor, separation_power, weighted_emd
from .errors import AnalysisError
from .features import image_features, nonzero_pixel_values, zero_pixel_fraction
from .inputs import Images, check_compatible
from .isolation import DEFAULT_CONE, DEFAULT_LOW_ISOLATION, empty_cone_fraction, low_isolation_fraction
from .results_table import family_of

log = logging.getLogger(__name__)

#: 1-D features compared with EMD and separation power (pixel_et = intensity spectrum).
COMPARED_FEATURES = ("isolation", "total_et", "n_nonzero", "max_pixel_et", "pixel_et")


@dataclass(frozen=True)
class MetricSettings:
    """Settings of the metrics (config `analysis:`)."""

    cone: float = DEFAULT_CONE
    separation_bins: int = 50
    low_isolation: float = DEFAULT_LOW_ISOLATION  # isolation below this counts as near zero
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)


def generated_info(generated: Images) -> dict[str, Any]:
    """`family` and `train_time_s` (seconds, None if absent) from the generated file's attributes.

    Files written before these attributes existed get family "decoupled" (the baseline model
    `independent_pixels` gets "baseline") and train_time_s None (a blank in the tables).
    """
    attrs = generated.data.attrs
    family = family_of({"model": generated.label, "family": attrs.get("family")})
    seconds = attrs.get("train_time_s")
    if seconds is not None:
        try:
            seconds = float(seconds)
        except (TypeError, ValueError):
            raise AnalysisError(f"{generated.path}: attribute train_time_s={seconds!r} is not a number of seconds; "
                                "re-run the sampling stage") from None
        if not (np.isfinite(seconds) and seconds >= 0):
            raise AnalysisError(f"{generated.path}: attribute train_time_s={seconds} must be finite and >= 0")
    return {"family": family, "train_time_s": seconds, **sampling_info(generated)}


#: what the sampler recorded about its cost (model/sampling.py), copied into the record when present
SAMPLING_ATTRS = {"sampling_n_images": int, "sampling_load_s": float, "sampling_loop_s": float,
                  "sampling_load_cpu_s": float, "sampling_loop_cpu_s": float, "sampling_threads": int,
                  "sampling_device": str, "sampling_device_name": str, "sampling_batch_size": int}


def sampling_info(generated: Images) -> dict[str, Any]:
    """The generated file's sampling-cost attributes (files written before they existed: none)."""
    attrs = generated.data.attrs
    out: dict[str, Any] = {}
    for key, kind in SAMPLING_ATTRS.items():
        if key in attrs:
            try:
                out[key] = kind(attrs[key])
            except (TypeError, ValueError):
                raise AnalysisError(f"{generated.path}: attribute {key}={attrs[key]!r} is not a {kind.__name__}; "
                                    "re-run the sampling stage") from None
    return out


def _features(images: Images, cone: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    d = images.data
    feats = image_features(d.images, d.muon_pt, images.radius, cone, source=str(images.path))
    out = {name: (values, d.weight) for name, values in feats.items()}
    out["pixel_et"] = nonzero_pixel_values(d.images, d.weight)
    return out


def _negative_fraction(images: np.ndarray) -> float:
    """Fraction of the non-zero pixels that are negative (0 when there are none)."""
    nonzero = np.count_nonzero(images)
    return float(np.count_nonzero(images < 0) / nonzero) if nonzero else 0.0


def pair_metrics(real: Images, generated: Images, *, seed: int,
                 settings: MetricSettings = MetricSettings()) -> dict[str, Any]:
    """Every metric comparing `generated` to `real` (same sample); distances are in feature units."""
    check_compatible(real, generated)
    r, g = real.data, generated.data
    fr, fg = _features(real, settings.cone), _features(generated, settings.cone)
    rec: dict[str, Any] = {
        "sample": real.sample,
        "model": generated.label,
        **generated_info(generated),
        "n_real": len(r),
        "n_generated": len(g),
        "real_pt_mean_gev": float(np.average(r.muon_pt, weights=r.weight)),
        "generated_pt_mean_gev": float(np.average(g.muon_pt, weights=g.weight)),
        "zero_fraction_real": zero_pixel_fraction(r.images, r.weight),
        "zero_fraction_generated": zero_pixel_fraction(g.images, g.weight),
        # share of non-zero pixels below zero (a Gaussian likelihood can generate them)
        "negative_fraction_real": _negative_fraction(r.images),
        "negative_fraction_generated": _negative_fraction(g.images),
    }
    for name in COMPARED_FEATURES:
        (rv, rw), (gv, gw) = fr[name], fg[name]
        rec[f"{name}_mean_real"] = float(np.average(rv, weights=rw)) if rv.size else float("nan")
        rec[f"{name}_mean_generated"] = float(np.average(gv, weights=gw)) if gv.size else float("nan")
        if rv.size and gv.size:
            rec[f"{name}_emd"] = weighted_emd(rv, gv, rw, gw)
            rec[f"{name}_separation"] = separation_power(rv, gv, rw, gw, n_bins=settings.separation_bins)
        else:  # e.g. a generator that only produces empty images: no intensity spectrum to compare
            rec[f"{name}_emd"] = rec[f"{name}_separation"] = float("nan")
    (rv, rw), _ = fr["isolation"], fg["isolation"]
    rec["low_isolation_threshold"] = settings.low_isolation
    rec["low_isolation_fraction_real"] = low_isolation_fraction(rv, rw, settings.low_isolation)
    rec["low_isolation_fraction_generated"] = low_isolation_fraction(*fg["isolation"], settings.low_isolation)
    rec["empty_cone_fraction_real"] = empty_cone_fraction(r.images, r.weight, real.radius, settings.cone)
    rec["empty_cone_fraction_generated"] = empty_cone_fraction(g.images, g.weight, real.radius, settings.cone)
    rec["isolation_emd_noise"] = emd_noise_floor(
        rv, rw, len(g), np.random.default_rng([pair_seed(seed, real.sample, generated.label), 2]))
    log.info("%s/%s: isolation EMD %.4f (statistical floor %.4f)", real.sample, generated.label,
             rec["isolation_emd"], rec["isolation_emd_noise"])
    rec.update(correlation_difference(pixel_correlation(r.images, r.weight), pixel_correlation(g.images, g.weight)))
    stream = pair_seed(seed, real.sample, generated.label)
    rec["corr_mean_abs_diff_noise"] = correlation_noise_floor(
        r.images, r.weight, len(g), np.random.default_rng([stream, 1]))
    result = classifier_auc(
        r.images, r.weight, g.images, g.weight, radius=real.radius, seed=stream, settings=settings.classifier,
    )
    rec["classifier_auc"] = result.auc
    rec["classifier_n_test"] = result.n_test
    return rec

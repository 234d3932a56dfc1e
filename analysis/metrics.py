"""All real-vs-generated metrics for one (sample, model) pair, as one flat record.

Paper metric: EMD of the isolation distributions. CaloChallenge-style metrics: zero-pixel
fraction, non-zero pixels per image, pixel-intensity spectrum, total ET, pixel-pixel
correlations, a classifier two-sample AUC on per-image features and one on the pixels (a small
CNN), EMD + separation power of every 1-D feature, FPD and KPD (JetNet's estimators) on
high-level features, and the 99th / 99.9th percentiles of max pixel ET and total ET. Beyond: the
near-zero isolation fraction (the paper's generated deficit at isolation ~ 0), and the generated
file's `family`, `train_time_s` and sampling-cost (`sampling_*`) attributes copied for the results
table.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.seeds import derive_seed, pair_seed

from .classifier import ClassifierSettings, classifier_auc
from .cnn_classifier import CnnSettings, cnn_classifier_auc
from .correlation import correlation_difference, correlation_noise_floor, pixel_correlation
from .distances import emd_noise_floor, separation_power, weighted_emd
from .errors import AnalysisError
from .features import image_features, nonzero_pixel_values, physics_features, weighted_percentile, zero_pixel_fraction
from .inputs import Images, check_compatible, read_calo_sums
from .isolation import DEFAULT_CONE, DEFAULT_LOW_ISOLATION, empty_cone_fraction, low_isolation_fraction
from .physics_distance import PhysicsDistanceSettings, fpd, kpd
from .results_table import family_of

log = logging.getLogger(__name__)

#: 1-D features compared with EMD and separation power (pixel_et = intensity spectrum).
COMPARED_FEATURES = ("isolation", "total_et", "n_nonzero", "max_pixel_et", "pixel_et")

#: Per-image features whose upper tail is compared, and the percentiles (a model's ET tail).
TAIL_FEATURES = ("max_pixel_et", "total_et")
TAIL_PERCENTILES = (99.0, 99.9)


def percentile_key(feature: str, q: float) -> str:
    """Record key stem of a tail percentile: ('max_pixel_et', 99.9) -> 'max_pixel_et_p99_9'."""
    return f"{feature}_p{q:g}".replace(".", "_")


@dataclass(frozen=True)
class MetricSettings:
    """Settings of the metrics (config `analysis:`)."""

    cone: float = DEFAULT_CONE
    separation_bins: int = 50
    low_isolation: float = DEFAULT_LOW_ISOLATION  # isolation below this counts as near zero
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    cnn: CnnSettings = field(default_factory=CnnSettings)
    fpd_kpd: PhysicsDistanceSettings = field(default_factory=PhysicsDistanceSettings)


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


def tail_percentiles(fr: dict[str, tuple[np.ndarray, np.ndarray]],
                     fg: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Weighted 99th / 99.9th percentiles of max pixel ET and total ET (GeV), real, generated and gen / real."""
    rec: dict[str, float] = {}
    for name in TAIL_FEATURES:
        for q in TAIL_PERCENTILES:
            key = percentile_key(name, q)
            real, gen = weighted_percentile(*fr[name], q), weighted_percentile(*fg[name], q)
            rec[f"{key}_real"], rec[f"{key}_generated"] = real, gen
            rec[f"{key}_ratio"] = gen / real if real > 0 else float("nan")
    return rec


def physics_distances(real: Images, generated: Images, *, seed: int,
                      settings: PhysicsDistanceSettings) -> dict[str, Any]:
    """FPD and KPD (with errors) on the high-level features of both files, their names and the time taken.

    The ECal / HCal sums join the features only when both files store towers; otherwise they
    are left out and the record says so (`fpd_kpd_features`).
    """
    t0 = time.perf_counter()
    r, g = real.data, generated.data
    sums_r = read_calo_sums(real.path, len(r))
    sums_g = None if generated.in_memory else read_calo_sums(generated.path, len(g))
    with_towers = sums_r is not None and sums_g is not None
    xr, names = physics_features(r.images, r.muon_pt, real.radius, settings.isolation_cones,
                                 sums_r if with_towers else None, source=str(real.path))
    xg, _ = physics_features(g.images, g.muon_pt, real.radius, settings.isolation_cones,
                             sums_g if with_towers else None, source=str(generated.path))
    f_val, f_err = fpd(xr, xg, min_samples=settings.fpd_min_samples, max_samples=settings.fpd_max_samples,
                       num_batches=settings.fpd_num_batches, num_points=settings.fpd_num_points,
                       seed=derive_seed(seed, "fpd") % 2**32, real_weight=r.weight, generated_weight=g.weight)
    k_val, k_err = kpd(xr, xg, num_batches=settings.kpd_num_batches, batch_size=settings.kpd_batch_size,
                       degree=settings.kpd_degree, seed=derive_seed(seed, "kpd") % 2**31,
                       real_weight=r.weight, generated_weight=g.weight)
    seconds = time.perf_counter() - t0
    log.info("%s/%s: FPD %.3g +- %.2g, KPD %.3g +- %.2g on %s (%.1f s)", real.sample, generated.label,
             f_val, f_err, k_val, k_err, ", ".join(names), seconds)
    return {"fpd": f_val, "fpd_err": f_err, "kpd": k_val, "kpd_err": k_err, "fpd_kpd_features": names,
            "fpd_kpd_seconds": seconds}


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
    rec.update(tail_percentiles(fr, fg))
    rec.update(physics_distances(real, generated, seed=stream, settings=settings.fpd_kpd))
    cnn = cnn_classifier_auc(r.images, r.weight, g.images, g.weight, seed=stream, settings=settings.cnn)
    rec.update({"cnn_auc": cnn.auc, "cnn_auc_err": cnn.auc_err, "cnn_n_test": cnn.n_test,
                "cnn_best_epoch": cnn.best_epoch, "cnn_seconds": cnn.seconds})
    return rec

"""Benchmark of the analysis stage's hot paths on synthetic images (prints a table).

    .venv/bin/python tests/benchmarks/bench_analysis.py [--n 5000 20000]

Not a test (pytest collects only test_*.py). Times are wall-clock seconds on this machine.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.classifier import ClassifierSettings, classifier_auc
from analysis.correlation import pixel_correlation
from analysis.distances import separation_power, weighted_emd
from analysis.features import average_image, image_features, nonzero_pixel_values
from analysis.figure_isolation import WeightedValues, plot_figure2
from analysis.isolation import isolation
from analysis.toy import toy_images


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _time_one_size(n: int) -> tuple[int, dict[str, float], float]:
    """Times of every hot path on n real and n generated toy images, and the classifier AUC."""
    rng = np.random.default_rng(0)
    real, pt, w = toy_images(n, "background", rng)
    gen, _, _ = toy_images(n, "background", rng)
    gw = np.ones(n)
    t = {}
    t["isolation"], iso_r = _timed(lambda: isolation(real, pt, 0.4))
    iso_g = isolation(gen, np.full(n, 12.0), 0.4)
    t["features"], _ = _timed(lambda: image_features(real, pt, 0.4))
    t["emd iso"], _ = _timed(lambda: weighted_emd(iso_r, iso_g, w, gw))
    pr, pw = nonzero_pixel_values(real, w)
    pg, pgw = nonzero_pixel_values(gen, gw)
    t["emd+sep pixels"], _ = _timed(lambda: (weighted_emd(pr, pg, pw, pgw), separation_power(pr, pg, pw, pgw)))
    t["average image"], _ = _timed(lambda: average_image(real, w))
    t["correlation"], _ = _timed(lambda: pixel_correlation(real, w))
    t["classifier"], res = _timed(lambda: classifier_auc(real, w, gen, gw, radius=0.4, seed=1,
                                                         settings=ClassifierSettings()))
    with tempfile.TemporaryDirectory() as tmp:
        t["figure2 (pdf+png)"], _ = _timed(lambda: plot_figure2(
            {"background": WeightedValues(iso_r, w)}, {"background": {"m": WeightedValues(iso_g, gw)}},
            [Path(tmp) / "f.pdf", Path(tmp) / "f.png"]))
    return n, t, res.auc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[5000, 20000], help="images per sample")
    args = parser.parse_args()
    rows = [_time_one_size(n) for n in args.n]
    names = list(rows[0][1])
    print(f"{'images':>8} " + " ".join(f"{k:>18}" for k in names) + f" {'AUC':>6}")
    for n, t, auc in rows:
        print(f"{n:>8} " + " ".join(f"{t[k]:>17.3f}s" for k in names) + f" {auc:>6.3f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()

"""Check analysis/physics_distance.py (our FPD and KPD) against the `jetnet` package on the same arrays.

jetnet is not in the pinned environment (it pulls ~60 packages: coffea, numba, pandas, pyarrow,
...), so run this in a scratch venv that sees the project's venv and adds jetnet on top:

    python3 -m venv /tmp/jn
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/jn/lib/python3.11/site-packages/project.pth
    /tmp/jn/bin/pip install -c envs/constraints.txt jetnet==0.2.5
    PYTHONPATH=$PWD /tmp/jn/bin/python tests/benchmarks/check_fpd_kpd.py \\
        [--real results/signal/images.h5 --generated results/generated/signal/independent_pixels.h5]

Cases: Gaussian features (the same distribution and shifted ones) and, given image files, the
pipeline's per-image features of real vs generated images and of two halves of the real file.
Draws are unweighted here (jetnet has no weights). Prints both implementations' values and
their relative differences; exits 1 if any differs by more than --rtol. Not a test (pytest
collects only test_*.py).
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import types
import warnings

import numpy as np

from analysis.features import physics_features
from analysis.inputs import load_images, read_calo_sums
from analysis.physics_distance import PhysicsDistanceSettings, fpd, kpd
from imaging.h5schema import read_image_file


def _import_jetnet() -> types.ModuleType:
    """jetnet.evaluation; energyflow imports `wasserstein`, whose compiled part fails on numpy 2 and which
    FPD/KPD do not use: an empty stand-in module takes its place if (and only if) it cannot be imported."""
    try:
        importlib.import_module("wasserstein")
    except ImportError as exc:
        print(f"note: `wasserstein` does not import ({exc}); FPD/KPD do not use it, an empty module stands in")
        sys.modules["wasserstein"] = types.ModuleType("wasserstein")
    try:
        return importlib.import_module("jetnet.evaluation")
    except ImportError as exc:
        sys.exit(f"error: jetnet is not importable ({exc}); set up the scratch venv as this script's docstring says")


def _features(path: str, sample: str, label: str, cones: tuple[float, ...]) -> np.ndarray:
    images = load_images(path, sample=sample, label=label)
    d = images.data
    sums = read_calo_sums(images.path, len(d))
    feats, _ = physics_features(d.images, d.muon_pt, images.radius, cones, sums, source=path)
    return feats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", help="real images.h5 (optional)")
    parser.add_argument("--generated", help="generated images file of the same sample (optional)")
    parser.add_argument("--sample", default=None, help="sample name of the files (default: the real file's)")
    parser.add_argument("--rtol", type=float, default=1e-6, help="largest relative difference accepted")
    args = parser.parse_args()
    jn = _import_jetnet()
    warnings.simplefilter("ignore", RuntimeWarning)  # jetnet warns below 50,000 samples
    s = PhysicsDistanceSettings()
    fpd_kw = {"min_samples": s.fpd_min_samples, "max_samples": s.fpd_max_samples,
              "num_batches": s.fpd_num_batches, "num_points": s.fpd_num_points}
    kpd_kw = {"num_batches": s.kpd_num_batches, "batch_size": s.kpd_batch_size}

    rng = np.random.default_rng(1)
    cases = {f"gauss d=8, shift {shift:g}": (rng.normal(size=(20000, 8)), rng.normal(size=(20000, 8)) + shift)
             for shift in (0.0, 0.05, 0.2)}
    if args.real:
        sample = args.sample or str(read_image_file(args.real, max_images=1).attrs.get("sample", ""))
        real = _features(args.real, sample, "real", s.isolation_cones)
        half = real.shape[0] // 2
        cases[f"{sample}: real half vs half"] = (real[:half], real[half:])
        if args.generated:
            cases[f"{sample}: real vs generated"] = (real, _features(args.generated, sample, "generated",
                                                                     s.isolation_cones))
    worst = 0.0
    print(f"settings: FPD batches {s.fpd_min_samples}-{s.fpd_max_samples} ({s.fpd_num_points} sizes x "
          f"{s.fpd_num_batches}), KPD {s.kpd_num_batches} x {s.kpd_batch_size}, kernel degree {s.kpd_degree}")
    print("| case | N real / gen | FPD ours | FPD jetnet | FPD err ours / jetnet | KPD ours | KPD jetnet | "
          "KPD err ours / jetnet | max rel. diff | time ours / jetnet [s] |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (x, y) in cases.items():
        t0 = time.perf_counter()
        ours = (*fpd(x, y, seed=42, **fpd_kw), *kpd(x, y, seed=42, degree=s.kpd_degree, **kpd_kw))
        t1 = time.perf_counter()
        theirs = (*jn.fpd(x, y, seed=42, **fpd_kw), *jn.kpd(x, y, seed=42, **kpd_kw))
        t2 = time.perf_counter()
        rel = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(ours, theirs, strict=True))
        worst = max(worst, rel)
        print(f"| {name} | {len(x)} / {len(y)} | {ours[0]:.6g} | {theirs[0]:.6g} | {ours[1]:.3g} / {theirs[1]:.3g} "
              f"| {ours[2]:.6g} | {theirs[2]:.6g} | {ours[3]:.3g} / {theirs[3]:.3g} | {rel:.1e} "
              f"| {t1 - t0:.2f} / {t2 - t1:.2f} |")
    print(f"largest relative difference {worst:.2e} (accepted: {args.rtol:g})")
    return 0 if worst <= args.rtol else 1


if __name__ == "__main__":
    sys.exit(main())

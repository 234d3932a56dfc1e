"""Imaging throughput on one core: images per second, split into read / select / pixelise.

Not a test (pytest collects only test_*.py). Run:

    .venv/bin/python tests/benchmarks/bench_imaging.py                 # real Delphes files under results/ if any,
                                                                      # else a synthetic Delphes-schema file
    .venv/bin/python tests/benchmarks/bench_imaging.py --file results/background/delphes/chunk0.root
    .venv/bin/python tests/benchmarks/bench_imaging.py --synthetic --events 20000 --towers 750

Target (issue 5): >= 20k images/s on one core for the whole stage (read + select + pixelise).
Times are CPU seconds of this single-threaded process pinned to one core (time.process_time),
so a busy shared machine does not distort them; the wall-clock rate is printed as well.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from imaging import ImagingConfig, build_images, write_images  # noqa: E402
from imaging.build import input_digest  # noqa: E402
from imaging.pixelise import make_images  # noqa: E402
from imaging.reader import iter_chunks  # noqa: E402
from imaging.selection import select_muons  # noqa: E402
from imaging.synthetic import random_delphes_events, write_delphes_file  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[2]
TARGET_IMAGES_PER_S = 20_000


def _clock() -> float:
    """CPU seconds of this (single-threaded, one-core) process: robust on a shared, loaded machine."""
    return time.process_time()


def _stages(files: list[Path], cfg: ImagingConfig) -> dict[str, float]:
    """CPU seconds spent reading, selecting and pixelising, plus counts."""
    t = {"read": 0.0, "select": 0.0, "pixelise": 0.0, "events": 0, "images": 0, "towers": 0}
    it = iter_chunks(files, cfg.quantity, cfg.use_event_weight, cfg.read_chunk_entries)
    while True:
        t0 = _clock()
        chunk = next(it, None)
        t1 = _clock()
        t["read"] += t1 - t0
        if chunk is None:
            return t
        mu = select_muons(chunk.muon_offsets, chunk.muon_pt, chunk.muon_eta, chunk.muon_phi, chunk.muon_charge,
                          pt_min=cfg.muon_pt_min, pt_max=cfg.muon_pt_max, abs_eta_max=cfg.muon_abs_eta_max,
                          mode=cfg.muons_per_event)
        t2 = _clock()
        make_images(chunk.tower_offsets, chunk.tower_eta, chunk.tower_phi, chunk.tower_value,
                    mu.event, mu.eta, mu.phi, npix=cfg.npix, radius=cfg.radius)
        t3 = _clock()
        t["select"] += t2 - t1
        t["pixelise"] += t3 - t2
        t["events"] += chunk.n_events
        t["images"] += len(mu)
        t["towers"] += int(chunk.tower_eta.size)


def _real_files() -> list[Path]:
    return sorted((PROJECT_DIR / "results").glob("*/delphes/chunk*.root"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", action="append", type=Path, help="Delphes ROOT file (repeatable)")
    parser.add_argument("--synthetic", action="store_true", help="use a synthetic Delphes-schema file")
    parser.add_argument("--events", type=int, default=20000, help="synthetic events (default 20000)")
    parser.add_argument("--towers", type=int, default=750, help="synthetic towers per event (mu = 50: ~750)")
    parser.add_argument("--compression", default="zlib", choices=["zlib", "lz4", "zstd"],
                        help="synthetic file compression (Delphes writes zlib level 1)")
    parser.add_argument("--repeat", type=int, default=3, help="timing repeats; the best is reported")
    parser.add_argument("--muons-per-event", default="leading", choices=["leading", "all"])
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    cfg = ImagingConfig(muons_per_event=args.muons_per_event)
    with tempfile.TemporaryDirectory() as tmp:
        files = args.file or ([] if args.synthetic else _real_files())
        source = "real Delphes"
        if not files:
            towers, muons, w = random_delphes_events(args.events, towers_per_event=args.towers, seed=1)
            files = [write_delphes_file(Path(tmp) / "chunk0.root", towers, muons, w, compression=args.compression)]
            source = f"synthetic, {args.compression}"
        best = min((_stages(files, cfg) for _ in range(args.repeat)), key=lambda r: r["read"] + r["select"] + r["pixelise"])
        t0, w0 = _clock(), time.perf_counter()
        build = build_images(files, cfg, sample="background")
        t_build, wall_build = _clock() - t0, time.perf_counter() - w0
        t0 = _clock()
        write_images(Path(tmp) / "images.h5", build, cfg, sample="background")
        t_write = _clock() - t0
        t0 = _clock()
        for f in files:
            input_digest(f)
        t_digest = _clock() - t0
        size_mb = sum(Path(f).stat().st_size for f in files) / 1e6
    n_img, n_ev = best["images"], best["events"]
    total = best["read"] + best["select"] + best["pixelise"]
    print(f"imaging benchmark, one core: {source}, {len(files)} file(s), {n_ev} events, "
          f"{best['towers'] / max(n_ev, 1):.0f} towers/event, {n_img} images ({args.muons_per_event})")
    print(f"{'step':<28}{'CPU s':>10}{'images/s':>12}{'events/s':>12}")
    for name, sec in (("read (uproot, 8 branches)", best["read"]), ("select muons", best["select"]),
                      ("pixelise (dR<0.4, add.at)", best["pixelise"]), ("read+select+pixelise", total),
                      ("build_images (end to end)", t_build), ("  input xxh3 (provenance)", t_digest),
                      ("  write images.h5 (gzip 4)", t_write - t_digest), ("write_images (both)", t_write)):
        print(f"{name:<28}{sec:>10.3f}{n_img / sec:>12.0f}{n_ev / sec:>12.0f}")
    verdict = "meets" if n_img / t_build >= TARGET_IMAGES_PER_S else "misses"
    print(f"build_images: {n_img / t_build:.0f} images/s per CPU second ({verdict} the target of "
          f"{TARGET_IMAGES_PER_S}); wall clock {n_img / wall_build:.0f} images/s at load average "
          f"{os.getloadavg()[0]:.1f}; input {size_mb:.1f} MB")


if __name__ == "__main__":
    main()

"""Imaging throughput on one core: images per second, split into read / select / pixelise.

Not a test (pytest collects only test_*.py). Run:

    .venv/bin/python tests/benchmarks/bench_imaging.py                 # real Delphes files under results/ if any,
                                                                      # else a synthetic Delphes-schema file
    .venv/bin/python tests/benchmarks/bench_imaging.py --file results/background/delphes/chunk0.root
    .venv/bin/python tests/benchmarks/bench_imaging.py --merge   # also the same events hadd-merged into one file
    .venv/bin/python tests/benchmarks/bench_imaging.py --synthetic --events 20000 --towers 750

Target (issue 5): >= 20k images/s on one core for the whole stage (read + select + pixelise +
write). Opening a Delphes file costs ~30 ms whatever its size (uproot deserialises the
metadata of all ~70 branches), so the rate depends on events per file: the benchmark
separates the per-file, per-event and per-image costs and projects the rate for file sizes
(the default run writes 900-event chunks, the paper profile 2,500).
Times are CPU seconds of this single-threaded process pinned to one core (time.process_time),
so a busy shared machine does not distort them; the wall-clock rate is printed as well.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

from imaging import ImagingConfig, build_images, write_images  # noqa: E402
from imaging.build import input_digest, render_images  # noqa: E402
from imaging.reader import branches_needed, iter_input_chunks, open_delphes_tree, open_inputs  # noqa: E402
from imaging.selection import select_muons  # noqa: E402
from imaging.synthetic import random_delphes_events, write_delphes_file  # noqa: E402

PROJECT_DIR = Path(__file__).resolve().parents[2]
TARGET_IMAGES_PER_S = 20_000


def _clock() -> float:
    """CPU seconds of this (single-threaded, one-core) process: robust on a shared, loaded machine."""
    return time.process_time()


def _stages(files: list[Path], cfg: ImagingConfig) -> dict[str, float]:
    """CPU seconds spent opening, reading, selecting and pixelising, plus counts."""
    t = {"open": 0.0, "read": 0.0, "select": 0.0, "pixelise": 0.0, "events": 0, "images": 0, "towers": 0,
         "uproot_arrays": 0.0}
    t0 = _clock()
    inputs = open_inputs(files, cfg.quantity, cfg.use_event_weight, cfg.tower_shape)
    t["open"] = _clock() - t0
    it = iter_input_chunks(inputs, cfg.quantity, cfg.read_chunk_entries, cfg.tower_shape)
    while True:
        t0 = _clock()
        chunk = next(it, None)
        t1 = _clock()
        t["read"] += t1 - t0
        if chunk is None:
            break
        mu = select_muons(chunk.muon_offsets, chunk.muon_pt, chunk.muon_eta, chunk.muon_phi, chunk.muon_charge,
                          pt_min=cfg.muon_pt_min, pt_max=cfg.muon_pt_max, abs_eta_max=cfg.muon_abs_eta_max,
                          mode=cfg.muons_per_event)
        t2 = _clock()
        render_images(chunk, mu, cfg)
        t3 = _clock()
        t["select"] += t2 - t1
        t["pixelise"] += t3 - t2
        t["events"] += chunk.n_events
        t["images"] += len(mu)
        t["towers"] += int(chunk.tower_eta.size)
    # reference in the same process: uproot's own tree.arrays of the same branches (freshly opened)
    names = list(branches_needed(cfg.quantity, cfg.use_event_weight, cfg.tower_shape))
    t["branches"] = len(names)
    for f in files:
        tree = open_delphes_tree(f)
        t0 = _clock()
        tree.arrays(names, library="ak")
        t["uproot_arrays"] += _clock() - t0
    return t


def _merge(files: list[Path], out: Path) -> Path:
    """One real Delphes file from several, with ROOT's hadd (from the `root` wheel)."""
    import ROOT  # noqa: F401  (the wheel's hadd needs its libraries set up)

    hadd = Path(ROOT.__file__).parent / "bin" / "hadd"
    subprocess.run([str(hadd), "-f404", str(out), *map(str, files)], check=True, capture_output=True)
    return out


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
    parser.add_argument("--tower-shape", default="point", choices=["point", "cell", "mixed"],
                        help="image rendering (imaging.tower_shape); cell needs real Delphes files (Tower.Edges)")
    parser.add_argument("--merge", action="store_true",
                        help="also time the same events merged into one file with ROOT's hadd "
                             "(per-file cost amortised)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    cfg = ImagingConfig(muons_per_event=args.muons_per_event, tower_shape=args.tower_shape)
    with tempfile.TemporaryDirectory() as tmp:
        files = args.file or ([] if args.synthetic else _real_files())
        source = "real Delphes"
        if not files:
            towers, muons, w = random_delphes_events(args.events, towers_per_event=args.towers, seed=1)
            files = [write_delphes_file(Path(tmp) / "chunk0.root", towers, muons, w, compression=args.compression)]
            source = f"synthetic, {args.compression}"
        runs = [(f"{len(files)} file(s) as given", files)]
        if args.merge and len(files) > 1:
            runs.append(("the same, merged by hadd into one file", [_merge(files, Path(tmp) / "merged.root")]))
        for title, inputs in runs:
            _report(f"{source}: {title}", inputs, cfg, args.repeat, Path(tmp), args.muons_per_event)


def _report(title: str, files: list[Path], cfg: ImagingConfig, repeat: int, tmp: Path, mode: str) -> None:
    """Time every step on `files` (best of `repeat`) and print the table and the verdict."""
    best = min((_stages(files, cfg) for _ in range(repeat)),
               key=lambda r: r["open"] + r["read"] + r["select"] + r["pixelise"])
    builds = []
    for _ in range(repeat):
        t0, w0 = _clock(), time.perf_counter()
        build = build_images(files, cfg, sample="background")
        builds.append((_clock() - t0, time.perf_counter() - w0))
    t_build, wall_build = min(builds)
    writes = []
    for _ in range(repeat):
        t0 = _clock()
        write_images(tmp / "images.h5", build, cfg, sample="background")
        writes.append(_clock() - t0)
    t_write = min(writes)
    size_towers = (tmp / "images.h5").stat().st_size
    bare = replace(build, towers=None)  # the same images without /towers (what schema_version 1 wrote)
    writes_bare = []
    for _ in range(repeat):
        t0 = _clock()
        write_images(tmp / "images_bare.h5", bare, cfg, sample="background")
        writes_bare.append(_clock() - t0)
    size_bare = (tmp / "images_bare.h5").stat().st_size
    t0 = _clock()
    for f in files:
        input_digest(f)
    t_digest = _clock() - t0
    size_mb = sum(Path(f).stat().st_size for f in files) / 1e6
    n_img, n_ev, n_files = best["images"], best["events"], len(files)
    print(f"\nimaging benchmark, one core, {title}: {n_ev} events, {best['towers'] / max(n_ev, 1):.0f} "
          f"towers/event, {n_img} images ({mode}), {size_mb:.1f} MB")
    print(f"{'step':<34}{'CPU s':>9}{'images/s':>11}{'per unit':>22}")
    write_h5 = t_write - t_digest
    core = best["open"] + best["read"] + best["select"] + best["pixelise"]
    rows = (
        ("open + check (TTree metadata)", best["open"], f"{best['open'] / n_files * 1e3:.1f} ms/file"),
        (f"read (uproot, {best['branches']} branches)", best["read"], f"{best['read'] / n_ev * 1e6:.1f} us/event"),
        ("  reference: uproot tree.arrays", best["uproot_arrays"],
         f"ratio read/ref {best['read'] / best['uproot_arrays']:.2f}"),
        ("select muons", best["select"], f"{best['select'] / n_img * 1e6:.2f} us/image"),
        (f"towers + render ({cfg.tower_shape})", best["pixelise"], f"{best['pixelise'] / n_img * 1e6:.1f} us/image"),
        ("open+read+select+pixelise", core, "the issue's measure"),
        ("build_images (end to end)", t_build, ""),
        ("  input xxh3 (provenance)", t_digest, f"{size_mb / t_digest:.0f} MB/s"),
        ("  write images.h5 (gzip 1)", write_h5, f"{write_h5 / n_img * 1e6:.1f} us/image"),
        ("build_images + write_images", t_build + t_write, ""),
        ("  write images.h5 without towers", min(writes_bare) - t_digest,
         f"{(min(writes_bare) - t_digest) / n_img * 1e6:.1f} us/image"),
    )
    for name, sec, unit in rows:
        print(f"{name:<34}{sec:>9.3f}{n_img / sec:>11.0f}{unit:>22}")
    n_towers = build.towers.n_towers
    print(f"towers stored: {n_towers} ({n_towers / n_img:.1f} per image); images.h5 {size_towers / 1e3:.1f} kB with "
          f"towers, {size_bare / 1e3:.1f} kB without ({size_towers / n_img:.0f} / {size_bare / n_img:.0f} B per image)")
    per_file = best["open"] / n_files + t_digest / n_files
    per_event = best["read"] / n_ev
    per_image = (best["select"] + best["pixelise"] + write_h5) / n_img
    img_per_event = n_img / n_ev
    steady = 1.0 / (per_event / img_per_event + per_image)
    print(f"steady state (no per-file cost): {steady:.0f} images/s; per-file cost {per_file * 1e3:.0f} ms "
          f"(open + digest); projected images/s for files of")
    for events in (900, 2500, 10000):
        rate = events * img_per_event / (per_file + events * (per_event + img_per_event * per_image))
        print(f"  {events:>6} events: {rate:8.0f}")
    verdict = "meets" if n_img / core >= TARGET_IMAGES_PER_S else "misses"
    print(f"open+read+select+pixelise: {n_img / core:.0f} images/s per CPU second ({verdict} the target of "
          f"{TARGET_IMAGES_PER_S}); with the images.h5 write and input digests {n_img / (t_build + t_write):.0f}; "
          f"wall clock of build_images {n_img / wall_build:.0f} images/s at load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

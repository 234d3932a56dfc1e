"""Benchmark of the simulation stage (a script, not a test): CPU ms per event by step.

    .venv/bin/python tests/benchmarks/bench_simulation.py [--kept 200] [--pileup-events 1000]

For each sample it generates `--kept` filtered events twice over the same seed:
  file transport: Pythia -> filter -> HepMC2 file (timed per step inside the process),
                  then DelphesHepMC2 at mu = 50 on that file (child CPU time);
  pipe transport: the same chunk streamed into Delphes (process + child CPU time, wall).
Delphes is also run once at mu = 0 to separate pile-up from the hard event's cost.
Times are CPU seconds (user + system) so other jobs on a shared machine inflate them less
than wall time; init costs (Pythia, Delphes card) are reported separately.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import uproot

PROJECT_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_DIR))

from common.seeds import chunk_seed  # noqa: E402
from simulation.chunk import ChunkSpec, DetectorSpec, delphes_from_file, generate_to_file, run_chunk_pipe  # noqa: E402
from simulation.pileup import make_pileup_library, reuse_factor  # noqa: E402


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed_delphes(hepmc: Path, det: DetectorSpec, out: Path, seed: int, n: int) -> float:
    c0 = children_cpu()
    delphes_from_file(hepmc, det, out, f"bench mu={det.mean_pileup:g}", seed, n)
    return children_cpu() - c0


def delphes_init_cpu(det: DetectorSpec, hepmc_one: Path, out: Path, seed: int) -> float:
    """Delphes CPU for a 1-event file: card parsing, tower grids, pile-up index (per-job overhead)."""
    return timed_delphes(hepmc_one, det, out, seed, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kept", type=int, default=200, help="kept events per sample (default 200)")
    ap.add_argument("--pileup-events", type=int, default=1000, help="pile-up library size to time (default 1000)")
    ap.add_argument("--seed", type=int, default=20191214)
    ap.add_argument("--samples", nargs="+", default=["signal", "background"])
    args = ap.parse_args()

    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench_sim_") as tmp_s:
        tmp = Path(tmp_s)
        lib = tmp / "minbias.pileup"
        c0, w0 = self_cpu() + children_cpu(), time.perf_counter()
        st = make_pileup_library(lib, args.pileup_events, chunk_seed(args.seed, "minbias", 0, "pythia"))
        pu_cpu, pu_wall = self_cpu() + children_cpu() - c0, time.perf_counter() - w0
        gen_s = st.seconds["pythia"] + st.seconds["hepmc"]
        rows.append(("pile-up library", "Pythia SoftQCD + HepMC2 + hepmc2pileup, per event",
                     f"{1e3 * gen_s / args.pileup_events:.1f} ms (loop), {pu_cpu:.0f} s CPU / {pu_wall:.0f} s wall "
                     f"for {args.pileup_events} incl. init"))
        one = tmp / "one.hepmc"
        for sample in args.samples:
            spec = ChunkSpec(sample, 0, args.kept, args.seed)
            hepmc, stats_path = tmp / f"{sample}.hepmc", tmp / f"{sample}.json"
            c0 = self_cpu()
            g = generate_to_file(spec, hepmc, stats_path)
            gen_total = self_cpu() - c0
            n_gen, n_kept = g.generated, g.kept
            py_s, filt_s, hep_s = g.seconds["pythia"], g.seconds["filter"], g.seconds["hepmc"]
            init_s = gen_total - py_s - filt_s - hep_s
            first = hepmc.read_bytes()
            one.write_bytes(first[: first.index(b"\nE ", first.index(b"\nE ") + 1) + 1])
            d_init = delphes_init_cpu(DetectorSpec(lib, 50.0), one, tmp / "one.root", spec.delphes_seed)
            d50 = timed_delphes(hepmc, DetectorSpec(lib, 50.0), tmp / f"{sample}_mu50.root", spec.delphes_seed, n_kept)
            d0 = timed_delphes(hepmc, DetectorSpec(lib, 0.0), tmp / f"{sample}_mu0.root", spec.delphes_seed, n_kept)
            size_kb = hepmc.stat().st_size / n_kept / 1024
            # pipe: the same chunk end to end
            c0, k0, w0 = self_cpu(), children_cpu(), time.perf_counter()
            run_chunk_pipe(spec, DetectorSpec(lib, 50.0), tmp / f"{sample}_pipe.root", tmp / f"{sample}_pipe.json")
            pipe_cpu = (self_cpu() - c0) + (children_cpu() - k0)
            pipe_wall = time.perf_counter() - w0
            file_cpu = gen_total + d50
            with uproot.open(tmp / f"{sample}_mu50.root") as f:
                mu = f["Delphes"].arrays(["Muon.PT", "Muon.Eta"])
            selected = (mu["Muon.PT"] > 10) & (mu["Muon.PT"] < 15) & (abs(mu["Muon.Eta"]) < 2.4)
            image_fraction = float(ak.mean(ak.any(selected, axis=1)))
            eff = n_kept / n_gen
            ms = lambda s, n: f"{1e3 * s / n:.1f}"  # noqa: E731
            det_per_kept = (d50 - d_init) / max(n_kept - 1, 1)
            rows += [
                (sample, "filter efficiency (kept / generated)", f"{eff:.4f} ({n_kept} / {n_gen})"),
                (sample, "kept events with a Delphes muon 10-15 GeV, |eta|<2.4", f"{image_fraction:.3f}"),
                (sample, "Pythia ms / generated event", ms(py_s, n_gen)),
                (sample, "Pythia ms / kept event", ms(py_s, n_kept)),
                (sample, "filter ms / generated event", ms(filt_s, n_gen)),
                (sample, "HepMC2 write ms / kept event", f"{ms(hep_s, n_kept)} ({size_kb:.0f} kB/event)"),
                (sample, "Delphes mu=50 ms / kept event (init removed)", f"{1e3 * det_per_kept:.1f}"),
                (sample, "Delphes mu=0 ms / kept event (incl. init)", ms(d0, n_kept)),
                (sample, "init CPU s: Pythia / Delphes(mu=50)", f"{init_s:.1f} / {d_init:.1f}"),
                (sample, "detector+pile-up+I/O vs Pythia, per kept",
                 f"{(hep_s / n_kept + det_per_kept) * 1e3:.1f} vs {ms(py_s, n_kept)} ms"),
                (sample, "file transport: total CPU ms / kept", ms(file_cpu, n_kept)),
                (sample, "pipe transport: total CPU ms / kept (wall)",
                 f"{ms(pipe_cpu, n_kept)} ({ms(pipe_wall, n_kept)} wall)"),
            ]
    width = max(len(r[1]) for r in rows)
    print(f"\nsimulation benchmark: {args.kept} kept events per sample, pile-up library {args.pileup_events} events, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"| {'sample':<15} | {'quantity':<{width}} | value")
    print(f"|{'-' * 17}|{'-' * (width + 2)}|------")
    for sample, what, value in rows:
        print(f"| {sample:<15} | {what:<{width}} | {value}")
    print(f"\nreuse of each library event: {reuse_factor(1, 50.0, 1):.0f} x (kept events x samples) / library size")


if __name__ == "__main__":
    main()

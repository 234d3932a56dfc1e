"""Benchmark of the simulation stage (a script, not a test): CPU ms per event by step.

    .venv/bin/python tests/benchmarks/bench_simulation.py [--kept 200] [--pileup-events 1000]

For each sample it generates `--kept` filtered events twice over the same seed:
  file transport: Pythia -> filter -> HepMC2 file (timed per step inside the process),
                  then DelphesHepMC2 at mu = 50 on that file (child CPU time);
  pipe transport: the same chunk streamed into Delphes (process + child CPU time, wall).
Delphes is also run once at mu = 0 to separate pile-up from the hard event's cost.
`--stages N` first splits Pythia's CPU per generated event into its steps on N events of each
sample (docs/simulation_throughput.md): parton level (hard process + MPI + ISR/FSR, run with
HadronLevel:all = off), hadronisation + decays (forceHadronLevel on the same events), the
awkward conversion that nextBatch adds (nextBatch vs next on the same seed), and what a Python
scan of the parton-level record (what a pre-hadronisation veto would have to do) costs.
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
from simulation.pythia_setup import make_pythia, process_cards  # noqa: E402


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


def pythia_stages(sample: str, n_events: int, seed: int) -> dict[str, float]:
    """CPU ms per generated event of each Pythia step (see the module docstring); `n_events` a multiple of 100."""
    cards = process_cards(sample)
    out: dict[str, float] = {}
    py = make_pythia(cards, seed, ["HadronLevel:all = off"])
    parton = hadron = 0.0
    for _ in range(n_events):
        c0 = self_cpu()
        py.next()
        c1 = self_cpu()
        py.forceHadronLevel()
        parton, hadron = parton + c1 - c0, hadron + self_cpu() - c1
    out["parton level (hard process, MPI, ISR, FSR)"] = parton
    out["hadronisation + decays (forceHadronLevel)"] = hadron
    for how in ("next", "nextBatch"):
        py = make_pythia(cards, seed)
        c0 = self_cpu()
        if how == "next":
            for _ in range(n_events):
                py.next()
        else:
            for _ in range(n_events // 100):
                py.nextBatch(100)
        out[f"whole event, {how}"] = self_cpu() - c0
    out["nextBatch conversion to awkward (difference)"] = out["whole event, nextBatch"] - out["whole event, next"]
    py = make_pythia(cards, seed, ["HadronLevel:all = off"])
    scan = 0.0
    for _ in range(n_events):
        py.next()
        c0 = self_cpu()
        ev = py.event
        heavy = [i for i in range(ev.size()) if ev[i].idAbs() in (4, 5, 13)]  # noqa: F841
        scan += self_cpu() - c0
    out["Python scan of the parton-level record (per event)"] = scan
    return {k: 1e3 * v / n_events for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kept", type=int, default=200, help="kept events per sample (default 200)")
    ap.add_argument("--pileup-events", type=int, default=1000, help="pile-up library size to time (default 1000)")
    ap.add_argument("--seed", type=int, default=20191214)
    ap.add_argument("--samples", nargs="+", default=["signal", "background"])
    ap.add_argument("--stages", type=int, default=0, metavar="N",
                    help="also profile Pythia's steps on N generated events per sample (multiple of 100; 0: skip)")
    args = ap.parse_args()

    rows: list[tuple[str, str, str]] = []
    for sample in args.samples if args.stages else ():
        seed = chunk_seed(args.seed, sample, 0, "pythia")
        for what, ms_per_event in pythia_stages(sample, args.stages, seed).items():
            rows.append((sample, f"Pythia step: {what}, ms / generated", f"{ms_per_event:.2f}"))
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

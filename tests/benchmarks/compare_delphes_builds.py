"""Do two Delphes builds write the same events? (a script, not a test; issue 25)

    .venv/bin/python tests/benchmarks/compare_delphes_builds.py --patched .deps/delphes \\
        --unpatched /tmp/delphes-unpatched [--events 100] [--pileup-events 1000] [--stock-card]

Made for the SimpleCalorimeter patch (envs/delphes-3.5.1-simplecalorimeter-fractions.patch): build
an unpatched Delphes once with a copy of envs/install_delphes.sh in a folder without the patch
(docs/simulation.md), then run this. It generates `--events` kept events per sample with the
pipeline's generator (real Pythia 8, muon filter, HepMC2 files) and a minimum-bias library
(`python -m simulation pileup`'s code), runs the same files through both builds' DelphesHepMC2 with
the same card, seed and pile-up, and compares every leaf of every branch (TObject bookkeeping and
references to generator particles aside) value by value. With `--stock-card` it also runs Delphes'
own CMS pile-up card (many more branches: jets, photons, electrons, MET, vertices) with its e-flow
photon and neutral-hadron towers written, whose pile-up flag is what the unpatched read fed.

Prints one markdown table per card (branch, objects, leaves, values compared, leaves that differ and
how many of their values) and exits
with status 1 when the Tower or Muon branch differs, 2 when a build fails.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

PROJECT_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_DIR))

from common.seeds import chunk_seed  # noqa: E402
from simulation.chunk import ChunkSpec, generate_to_file  # noqa: E402
from simulation.delphes import DEFAULT_CARD, TREE_NAME, render_card  # noqa: E402
from simulation.pileup import make_pileup_library  # noqa: E402

#: leaves that are not event data: TObject bookkeeping, references (TRef/TRefArray) to other objects,
#: Delphes' own timings, and the per-event counts (`*_size`: compared through each leaf's structure)
SKIPPED_SUFFIXES = (".fUniqueID", ".fBits", ".Particles", ".Particle", ".Constituents", ".References",
                    ".ProcTime", ".ReadTime", "_size")
#: the e-flow towers (neutral excess over the tracks) whose pile-up flag fNeutralEnergy set: written to the
#: stock card's output too, so that the comparison shows what the patch changes
EFLOW_BRANCHES = ("  add Branch ECal/eflowPhotons EFlowPhoton Tower\n"
                  "  add Branch HCal/eflowNeutralHadrons EFlowNeutralHadron Tower\n")
MUST_MATCH = ("Tower", "Muon")
STOCK_CARD = "delphes_card_CMS_PileUp.tcl"


def run_delphes(build: Path, card_text: str, hepmc: Path, output: Path) -> tuple[int, float, str]:
    """DelphesHepMC2 of `build` on `hepmc`: (exit code, CPU seconds, log tail). ROOT stack traces off."""
    workdir = output.parent
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / ".rootrc").write_text("Root.Stacktrace: no\n")
    (workdir / "card.tcl").write_text(card_text)
    output.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    before = os.times()
    done = subprocess.run([str(build / "bin" / "DelphesHepMC2"), "card.tcl", str(output), str(hepmc)],
                          cwd=workdir, env=env, capture_output=True, text=True, errors="replace")
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return done.returncode, cpu, (done.stdout + done.stderr)[-1500:]


def data_leaves(tree) -> dict[str, list[str]]:
    """branch -> its leaves that hold event data (what is compared)."""
    out: dict[str, list[str]] = {}
    for branch in tree.branches:
        leaves = [sub.name for sub in branch.branches if not sub.name.endswith(SKIPPED_SUFFIXES)]
        if leaves:
            out[branch.name] = leaves
        elif not branch.branches and not branch.name.endswith(SKIPPED_SUFFIXES):
            out[branch.name] = [branch.name]
    return out


def same(a: ak.Array, b: ak.Array) -> tuple[int, int]:
    """(values that differ, values compared) of one leaf in two files (NaN equal to NaN); a different
    structure (object counts) counts every value as differing."""
    flat_a, flat_b = ak.to_numpy(ak.ravel(a)), ak.to_numpy(ak.ravel(b))
    structure = all(ak.all(ak.num(a, axis=d) == ak.num(b, axis=d)) for d in range(1, a.ndim)) if a.ndim > 1 else True
    if not structure or flat_a.shape != flat_b.shape:
        return max(flat_a.size, flat_b.size), int(flat_a.size)
    equal = flat_a == flat_b
    if flat_a.dtype.kind == "f":
        equal |= np.isnan(flat_a) & np.isnan(flat_b)
    return int(flat_a.size - np.count_nonzero(equal)), int(flat_a.size)


def compare(file_a: Path, file_b: Path) -> dict[str, dict]:
    """branch -> {leaves, objects, values, differ: {leaf: values that differ}, unreadable: [leaf, ...]}."""
    result: dict[str, dict] = {}
    with uproot.open(file_a) as fa, uproot.open(file_b) as fb:
        ta, tb = fa[TREE_NAME], fb[TREE_NAME]
        if ta.num_entries != tb.num_entries:
            raise SystemExit(f"{file_a} has {ta.num_entries} events, {file_b} {tb.num_entries}")
        leaves_a, leaves_b = data_leaves(ta), data_leaves(tb)
        if leaves_a != leaves_b:
            raise SystemExit(f"the two files have different branches: {sorted(set(leaves_a) ^ set(leaves_b))}")
        for branch, leaves in leaves_a.items():
            entry = result[branch] = {"leaves": len(leaves), "objects": 0, "values": 0, "differ": {},
                                      "unreadable": []}
            for leaf in leaves:
                try:
                    a, b = ta[leaf].array(library="ak"), tb[leaf].array(library="ak")
                    n_differ, n = same(a, b)
                except Exception:  # uproot cannot interpret a few ROOT streamers: say so, never hide it
                    entry["unreadable"].append(leaf)
                    continue
                if not entry["objects"]:  # objects of the branch: entries of its first readable leaf
                    entry["objects"] = int(ak.sum(ak.num(a, axis=1))) if a.ndim > 1 else len(a)
                entry["values"] += n
                if n_differ:
                    entry["differ"][leaf] = n_differ
    return result


def table(results: dict[str, dict]) -> str:
    rows = ["| branch | objects | leaves | values compared | leaves that differ (values) |", "|---|---:|---:|---:|---|"]
    for branch, r in results.items():
        differ = ", ".join(f"{leaf.split('.', 1)[-1]} ({n:,})" for leaf, n in r["differ"].items()) or "none"
        if r["unreadable"]:
            skipped = ", ".join(leaf.split(".", 1)[-1] for leaf in r["unreadable"])
            differ += f" (not readable by uproot, skipped: {skipped})"
        rows.append(f"| {branch} | {r['objects']:,} | {r['leaves']} | {r['values']:,} | {differ} |")
    return "\n".join(rows)


def stock_card_text(build: Path, library: Path, mean_pileup: float, seed: int, work: Path) -> str:
    """Delphes' own CMS pile-up card with the library, mean pile-up, a fixed seed (its own is time-based)
    and the e-flow photon and neutral-hadron branches written."""
    text = (build / "cards" / STOCK_CARD).read_text()
    anchor = "  add Branch Rho/rho Rho Rho\n"
    if anchor not in text:
        raise SystemExit(f"{build / 'cards' / STOCK_CARD}: no line {anchor.strip()!r} to add the e-flow branches after")
    seeded = work / STOCK_CARD
    seeded.write_text("set RandomSeed 1\n" + text.replace(anchor, anchor + EFLOW_BRANCHES))
    return render_card(seeded, library, mean_pileup, seed)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--patched", type=Path, required=True, help="prefix of the patched Delphes build (bin/, cards/)")
    ap.add_argument("--unpatched", type=Path, required=True, help="prefix of the unpatched Delphes build")
    ap.add_argument("--samples", nargs="+", default=["signal", "background"], choices=["signal", "background"])
    ap.add_argument("--events", type=int, default=100, help="kept events per sample (default 100)")
    ap.add_argument("--pileup-events", type=int, default=1000, help="minimum-bias library size (default 1000)")
    ap.add_argument("--pileup", type=Path, help="use this pile-up library instead of making one")
    ap.add_argument("--mean-pileup", type=float, default=50.0)
    ap.add_argument("--seed", type=int, default=20191214, help="master seed (chunk seeds as in the pipeline)")
    ap.add_argument("--chunk", type=int, default=0, help="chunk index whose seeds are used")
    ap.add_argument("--card", type=Path, default=DEFAULT_CARD, help="project card (default: the pipeline's)")
    ap.add_argument("--stock-card", action="store_true", help=f"also compare with Delphes' {STOCK_CARD}")
    ap.add_argument("--work", type=Path, help="keep the inputs and outputs here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, help="write the comparison as JSON")
    args = ap.parse_args(argv)
    for build in (args.patched, args.unpatched):
        if not (build / "bin" / "DelphesHepMC2").is_file():
            ap.error(f"{build} has no bin/DelphesHepMC2: pass a Delphes install prefix")
    os.environ["DELPHES_DIR"] = str(args.patched.resolve())  # hepmc2pileup for the library
    with tempfile.TemporaryDirectory(prefix="compare_delphes_") as tmp:
        work = (args.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        library = args.pileup
        if library is None:
            library = work / "minbias.pileup"
            if not library.is_file():
                make_pileup_library(library, args.pileup_events, chunk_seed(args.seed, "minbias", 0, "pythia"),
                                    batch_size=min(200, args.pileup_events))
        inputs = {}
        for sample in args.samples:
            spec = ChunkSpec(sample, args.chunk, args.events, args.seed)
            hepmc = work / sample / "events.hepmc"
            if not hepmc.is_file():
                hepmc.parent.mkdir(parents=True, exist_ok=True)
                generate_to_file(spec, hepmc, hepmc.with_suffix(".json"))
            inputs[sample] = (hepmc, spec.delphes_seed)
        print(f"inputs: {len(args.samples)} x {args.events} kept events, library {library.name}, "
              f"mu = {args.mean_pileup:g} ({time.time() - t0:.0f} s)")
        cards = {"project card " + args.card.name: lambda build, seed: render_card(
            args.card, library, args.mean_pileup, seed)}
        if args.stock_card:
            cards["stock card " + STOCK_CARD] = lambda build, seed: stock_card_text(
                build, library, args.mean_pileup, seed, work)
        report: dict[str, dict] = {}
        status = 0
        for card_name, card_text in cards.items():
            merged: dict[str, dict] = {}
            for sample, (hepmc, seed) in inputs.items():
                files = {}
                for name, build in (("patched", args.patched), ("unpatched", args.unpatched)):
                    out = work / card_name.split()[0] / sample / name / "out.root"
                    rc, cpu, log = run_delphes(build.resolve(), card_text(build, seed), hepmc, out)
                    print(f"{card_name}, {sample}, {name}: exit {rc}, Delphes CPU {cpu:.1f} s")
                    if rc != 0:
                        print(log, file=sys.stderr)
                        return 2
                    files[name] = out
                for branch, r in compare(files["patched"], files["unpatched"]).items():
                    m = merged.setdefault(branch, {"leaves": r["leaves"], "objects": 0, "values": 0, "differ": {},
                                                   "unreadable": []})
                    m["objects"] += r["objects"]
                    m["values"] += r["values"]
                    for leaf, n in r["differ"].items():
                        m["differ"][leaf] = m["differ"].get(leaf, 0) + n
                    m["unreadable"] = sorted(set(m["unreadable"]) | set(r["unreadable"]))
            report[card_name] = merged
            print(f"\n{card_name}: {len(inputs)} x {args.events} events, patched vs unpatched\n{table(merged)}\n")
            if any(merged.get(b, {}).get("differ") for b in MUST_MATCH):
                status = 1
        if args.json:
            args.json.write_text(json.dumps({"events_per_sample": args.events, "samples": args.samples,
                                             "mean_pileup": args.mean_pileup, "cards": report}, indent=1))
    print("Tower and Muon identical" if status == 0 else "Tower or Muon DIFFER")
    return status


if __name__ == "__main__":
    sys.exit(main())

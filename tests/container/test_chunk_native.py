"""The container rules' own commands, run natively: LHE -> Pythia shower -> muon filter -> Delphes.

MadGraph and the image cannot run here, so a small LHE file (real 2 -> 2 kinematics) stands in
for the gridpack's output; everything after it is what the container rules run, with the
image's programs swapped for native ones through config only: the real Pythia 8 reads the
rendered shower card (Beams:frameType = 4), the real Delphes runs the project's card with a
pile-up library made by the container pile-up rules.
"""
from __future__ import annotations

import json
import shutil
import subprocess

import awkward as ak
import numpy as np
import pytest
import uproot
from container_helpers import place_lhe, snakemake

from simulation.container.cards import CARDS_DIR
from simulation.delphes import check_delphes_output

pytestmark = pytest.mark.slow

SCRIPT = CARDS_DIR.parent / "container" / "shower_to_delphes.sh"
LHE_EVENTS = {"signal": 12, "background": 30}
NATIVE_RULES = ["container_shower_card", "container_delphes_card", "container_shower_delphes",
                "container_minbias_hepmc", "container_pileup_library"]


def _config(native_tools, seed=11):
    return {"seed": seed, "simulation": {
        "backend": "container", "events_per_sample": 6, "events_per_chunk": 6, "pileup_events": 40,
        "container": {**native_tools, "lhe_events_per_kept": {"signal": 2.0, "background": 5.0}}}}


def _run(workdir, native_tools, samples=("signal", "background"), seed=11, pileup=None):
    if pileup is not None:                           # reuse a library (its own seed is not under test)
        (workdir / "results" / "pileup").mkdir(parents=True)
        shutil.copy(pileup, workdir / "results" / "pileup" / "minbias.pileup")
    for i, sample in enumerate(samples):
        place_lhe(workdir / "results" / sample / "madgraph" / "chunk0.lhe.gz",
                  "dimuon" if sample == "signal" else "bbbar", LHE_EVENTS[sample], seed=100 + i)
    targets = [f"results/{s}/delphes/chunk0.root" for s in samples]
    proc = snakemake(workdir, *targets, "--cores", "2", "--allowed-rules", *NATIVE_RULES,
                     overrides=_config(native_tools, seed))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return workdir / "results"


@pytest.fixture(scope="module")
def run_a(tmp_path_factory, native_tools):
    return _run(tmp_path_factory.mktemp("container_a"), native_tools)


@pytest.mark.parametrize("sample", ["signal", "background"])
def test_chunk_has_the_native_tree_with_every_kept_event(run_a, sample):
    counts = json.loads((run_a / sample / "generator" / "chunk0.json").read_text())["generation"]
    assert counts["generated"] == LHE_EVENTS[sample]          # every LHE event was showered
    assert 0 < counts["kept"] <= counts["generated"]
    root = run_a / sample / "delphes" / "chunk0.root"
    check_delphes_output(root, counts["kept"], f"container {sample}")   # the native contract
    towers = uproot.open(root)["Delphes"]["Tower.ET"].array()
    assert ak.mean(ak.num(towers)) > 300                       # mean pile-up 50 fills the calorimeter
    assert "Beams:frameType = 4" in (run_a / sample / "container" / "chunk0" / "shower.cmnd").read_text()


def test_background_keeps_non_isolated_muons(run_a):
    tree = uproot.open(run_a / "background" / "delphes" / "chunk0.root")["Delphes"]
    muons = tree.arrays(["Muon.PT", "Muon.Eta", "Muon.Phi"])
    towers = tree.arrays(["Tower.ET", "Tower.Eta", "Tower.Phi"])
    assert ak.sum(ak.num(muons["Muon.PT"])) > 0
    # ET in towers within dR < 0.4 of each reconstructed muon: b jets put far more there than pile-up
    pairs = ak.cartesian([ak.zip({"eta": muons["Muon.Eta"], "phi": muons["Muon.Phi"]}),
                          ak.zip({"eta": towers["Tower.Eta"], "phi": towers["Tower.Phi"], "et": towers["Tower.ET"]})],
                         nested=True)
    mu, tw = ak.unzip(pairs)
    dphi = (tw.phi - mu.phi + np.pi) % (2 * np.pi) - np.pi
    cone = ak.sum(ak.where((tw.eta - mu.eta) ** 2 + dphi ** 2 < 0.16, tw.et, 0.0), axis=-1)
    assert ak.max(ak.flatten(cone)) > 5.0


def test_same_seed_same_chunk_other_seed_differs(run_a, tmp_path, native_tools):
    library = run_a / "pileup" / "minbias.pileup"
    again = _run(tmp_path / "again", native_tools, samples=("signal",), pileup=library)
    other = _run(tmp_path / "other", native_tools, samples=("signal",), seed=12, pileup=library)

    def towers(results):
        return uproot.open(results / "signal" / "delphes" / "chunk0.root")["Delphes"]["Tower.ET"].array()

    assert ak.to_list(towers(again)) == ak.to_list(towers(run_a))
    assert ak.to_list(towers(other)) != ak.to_list(towers(run_a))


def test_a_crashing_shower_fails_the_chunk_without_output_or_hang(run_a, tmp_path, delphes):
    work = "results/signal/container/chunk0"
    out = tmp_path / "chunk0.root"
    proc = subprocess.run(
        ["bash", str(SCRIPT), "false", f"{work}/shower.cmnd", "9", "16", "2.5",
         str(tmp_path / "counts.json"), str(delphes / "bin" / "DelphesHepMC2"), f"{work}/delphes.tcl", str(out)],
        capture_output=True, text=True, timeout=120, cwd=run_a.parent)
    assert proc.returncode != 0
    assert "shower" in proc.stderr and "failed" in proc.stderr
    assert not out.exists() and not out.with_suffix(".root.part").exists()

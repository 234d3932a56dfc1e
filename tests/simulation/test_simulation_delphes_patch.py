"""The SimpleCalorimeter patch (envs/delphes-3.5.1-simplecalorimeter-fractions.patch, issue 25) is needed
and changes no output: the unpatched module reads past the end of its per-track vector on a particle
hit, the patched one does not, and both write the same towers and muons.

The unpatched and patched SimpleCalorimeter.cc are compiled alone from the Delphes source the build
uses and preloaded into the installed Delphes (delphes_patch_cases.py), ~5 s each instead of two full
builds. Events are hand-made (delphes_patch_cases.hand_made_columns): with the project's card only
muons are tracks, so nearly every calorimeter hit is a particle whose index exceeds the track count.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from delphes_patch_cases import (
    PATCHES,
    apply_patches,
    compile_module,
    extract_source,
    hand_made_columns,
    run_delphes,
    source_tarball,
    write_hepmc2,
)

from simulation.delphes import DEFAULT_CARD, TREE_NAME, hepmc2pileup_run, render_card

#: branches compared leaf by leaf (every physics leaf)
COMPARED_BRANCHES = ("Tower", "Muon")
N_HARD, N_LIBRARY, MEAN_PILEUP, SEED = 4, 20, 50, 4242
#: the assertion libstdc++ prints for an out-of-range std::vector<double>::operator[]
BOUNDS_MESSAGE = "Assertion '__n < this->size()' failed"


@pytest.fixture(scope="module")
def modules(tmp_path_factory, delphes) -> dict[str, Path]:
    """SimpleCalorimeter.cc of the build's Delphes source, compiled three ways into preloadable libraries."""
    if sys.platform != "linux":
        pytest.skip("overriding a Delphes module with LD_PRELOAD needs Linux's dynamic linker")
    work = tmp_path_factory.mktemp("simplecalorimeter")
    tarball, why_not = source_tarball(work)
    if tarball is None:
        pytest.skip(why_not)
    pristine = extract_source(tarball, work / "pristine")
    patched = extract_source(tarball, work / "patched")
    apply_patches(patched)
    jobs = {"unpatched_checked": (pristine, True), "patched_checked": (patched, True),
            "unpatched": (pristine, False)}
    running = {name: compile_module(src, work / f"{name}.so", delphes, checks) for name, (src, checks) in jobs.items()}
    for name, proc in running.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"compiling SimpleCalorimeter.cc ({name}) failed:\n{out[-3000:]}"
    return {name: work / f"{name}.so" for name in jobs}


@pytest.fixture(scope="module")
def events(tmp_path_factory, delphes) -> dict[str, Path]:
    """Hand-made inputs: hard events (a muon, 150 neutrals, 10 pions) with mu = 50 from a 20-event
    library, and events with neutral particles only (no track at all) without pile-up."""
    work = tmp_path_factory.mktemp("events")
    rng = np.random.default_rng(SEED)
    write_hepmc2(work / "minbias.hepmc", hand_made_columns(N_LIBRARY, 40, 40, False, rng))
    library = work / "minbias.pileup"
    with hepmc2pileup_run(library, N_LIBRARY, [work / "minbias.hepmc"]):
        pass
    cards = {}
    for name, mu in (("pileup", MEAN_PILEUP), ("no_pileup", 0)):
        cards[name] = work / f"card_{name}.tcl"
        cards[name].write_text(render_card(DEFAULT_CARD, library, mu, SEED))
    return {"hard": write_hepmc2(work / "hard.hepmc", hand_made_columns(N_HARD, 150, 10, True, rng)),
            "neutral": write_hepmc2(work / "neutral.hepmc", hand_made_columns(2, 50, 0, False, rng)),
            **{f"card_{k}": v for k, v in cards.items()}}


def run(delphes: Path, tmp_path: Path, name: str, card: Path, hepmc: Path,
        preload: Path | None) -> tuple[int, str, Path]:
    """DelphesHepMC2 in tmp_path/name: (exit code, log, output file)."""
    out_dir = tmp_path / name
    out_dir.mkdir()
    rc, log = run_delphes(delphes, card, out_dir / "out.root", hepmc, preload)
    return rc, log, out_dir / "out.root"


def read(path: Path, leaves: tuple[str, ...]) -> ak.Array:
    with uproot.open(path) as f:
        return f[TREE_NAME].arrays(list(leaves))


def branch_leaves(path: Path, branch: str) -> tuple[str, ...]:
    """Every leaf of `branch` but TObject bookkeeping and the references to generator particles."""
    with uproot.open(path) as f:
        return tuple(k for k in f[TREE_NAME][branch].keys()
                     if not k.endswith((".fUniqueID", ".fBits", ".Particles", ".Particle")))


def test_installed_delphes_is_built_with_the_patches(delphes):
    """envs/install_delphes.sh stamps the patches' digest: the Delphes under test carries them."""
    assert PATCHES, "envs/delphes-3.5.1-*.patch is missing"
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in PATCHES)).hexdigest()[:12]
    stamps = [p.name for p in delphes.glob(".built-*")]
    assert any(s.endswith(f"-p{digest}") for s in stamps), (
        f"Delphes in {delphes} was not built with the current patches (stamps {stamps}, digest {digest}): "
        "rerun envs/install_delphes.sh (`make setup`)")


@pytest.mark.slow
def test_unpatched_module_reads_past_the_track_fractions(modules, events, delphes, tmp_path):
    """With bounds checks the unpatched particle branch aborts on the first event: fTrackFractions[number]."""
    rc, log, _ = run(delphes, tmp_path, "unpatched", events["card_pileup"], events["hard"],
                     modules["unpatched_checked"])
    assert rc != 0, f"the unpatched SimpleCalorimeter ran through with bounds checks:\n{log[-2000:]}"
    assert BOUNDS_MESSAGE in log and "operator[]" in log and "_Tp = double" in log, log[-2000:]


@pytest.mark.slow
def test_patched_module_with_bounds_checks_writes_towers(modules, events, delphes, tmp_path):
    """The same events through the patched module, bounds-checked: every hit index is in range."""
    rc, log, out = run(delphes, tmp_path, "patched", events["card_pileup"], events["hard"],
                       modules["patched_checked"])
    assert rc == 0, f"the patched SimpleCalorimeter failed with bounds checks:\n{log[-2000:]}"
    assert BOUNDS_MESSAGE not in log
    a = read(out, ("Tower.ET", "Tower.Eem", "Tower.Ehad", "Muon.PT"))
    assert len(a) == N_HARD
    assert ak.all(ak.num(a["Tower.ET"]) > 100)  # 150 neutrals + ~50 x 80 pile-up particles per event
    assert ak.all(a["Tower.ET"] > 0) and ak.any(a["Tower.Eem"] > 0) and ak.any(a["Tower.Ehad"] > 0)
    assert ak.sum(ak.num(a["Muon.PT"])) >= N_HARD // 2


@pytest.mark.slow
def test_unpatched_module_crashes_on_a_first_event_without_tracks(modules, events, delphes, tmp_path):
    """No flags needed: before any track the per-track vector has no storage, and the unpatched
    particle branch reads through its null data pointer (segmentation violation). Patched: towers."""
    rc, log, _ = run(delphes, tmp_path, "unpatched", events["card_no_pileup"], events["neutral"], modules["unpatched"])
    assert rc != 0 and "segmentation violation" in log, log[-2000:]
    rc, log, out = run(delphes, tmp_path, "installed", events["card_no_pileup"], events["neutral"], None)
    assert rc == 0, f"the installed (patched) Delphes failed on events without tracks:\n{log[-2000:]}"
    assert ak.all(ak.num(read(out, ("Tower.ET",))["Tower.ET"]) > 10)


@pytest.mark.slow
def test_patch_changes_no_tower_and_no_muon(modules, events, delphes, tmp_path):
    """The installed (patched) Delphes and the unpatched module write identical Tower and Muon branches:
    the bad read only fed fNeutralEnergy (the e-flow towers' pile-up flag), which this card never writes."""
    rc, log, patched = run(delphes, tmp_path, "installed", events["card_pileup"], events["hard"], None)
    assert rc == 0, log[-2000:]
    rc, log, unpatched = run(delphes, tmp_path, "unpatched", events["card_pileup"], events["hard"],
                             modules["unpatched"])
    assert rc == 0, f"the unpatched module crashed (the bug this patch fixes):\n{log[-2000:]}"
    for branch in COMPARED_BRANCHES:
        leaves = branch_leaves(patched, branch)
        assert f"{branch}.ET" in leaves or f"{branch}.PT" in leaves
        a, b = read(patched, leaves), read(unpatched, leaves)
        for leaf in leaves:
            assert ak.all(ak.num(a[leaf], axis=1) == ak.num(b[leaf], axis=1)), f"{leaf}: tower or muon counts differ"
            assert ak.all(ak.ravel(a[leaf] == b[leaf])), f"{leaf} differs between the patched and unpatched module"
    assert ak.sum(ak.num(a := read(patched, ("Tower.ET",))["Tower.ET"])) > 100 * N_HARD, ak.num(a)


def test_patch_file_targets_the_particle_branch_only():
    """The patch replaces exactly the two fTrackFractions reads of the particle branch, nothing else."""
    removed, added = [], []
    for patch_file in PATCHES:
        for line in patch_file.read_text().splitlines():
            if line.startswith("-") and not line.startswith("---"):
                removed.append(line[1:].strip())
            elif line.startswith("+") and not line.startswith("+++"):
                added.append(line[1:].strip())
    assert removed == ["energy = momentum.E() * fTrackFractions[number];", "if(fTrackFractions[number] > 1.0E-9)"]
    assert added == [r.replace("fTrackFractions", "fTowerFractions") for r in removed]

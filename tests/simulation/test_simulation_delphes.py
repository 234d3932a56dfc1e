"""Real Pythia 8 + real Delphes, small: outputs, pile-up, non-isolated muons, seeds, faults."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from imaging import ImagingConfig, build_images, write_images
from imaging.h5schema import read_image_file
from imaging.towers import render_towers
from simulation.chunk import (
    ChunkSpec,
    DetectorSpec,
    count_hepmc2_events,
    delphes_from_file,
    generate_to_file,
    run_chunk_pipe,
)
from simulation.delphes import REQUIRED_LEAVES, TREE_NAME
from simulation.errors import SimulationError

pytestmark = pytest.mark.slow
N_KEPT = 8


def read(path: Path, *leaves: str) -> ak.Array:
    with uproot.open(path) as f:
        return f[TREE_NAME].arrays(list(leaves))


def no_partial_files(folder: Path) -> bool:
    return not any(p.suffix == ".root" for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def both_samples(tmp_path_factory, pileup_library):
    """signal and background chunk 0, N_KEPT events each, mu = 50, streamed through a pipe."""
    out = tmp_path_factory.mktemp("chunks")
    made = {}
    for sample in ("signal", "background"):
        spec = ChunkSpec(sample, 0, N_KEPT, master_seed=11)
        root, stats = out / sample / "chunk0.root", out / sample / "chunk0.json"
        run_chunk_pipe(spec, DetectorSpec(pileup_library, 50.0), root, stats)
        made[sample] = (root, json.loads(stats.read_text()))
    return made


@pytest.mark.parametrize("sample", ["signal", "background"])
def test_both_samples_write_towers_and_muons(both_samples, sample):
    root, stats = both_samples[sample]
    with uproot.open(root) as f:
        tree = f[TREE_NAME]
        assert tree.num_entries == N_KEPT
        for leaf in REQUIRED_LEAVES:
            assert f"{leaf.split('.')[0]}/{leaf}" in tree.keys()
    a = read(root, "Tower.ET", "Tower.Eem", "Tower.Ehad", "Muon.PT", "Event.Weight")
    assert ak.all(ak.num(a["Tower.ET"]) > 100)  # mu = 50: hundreds of towers in every event
    assert ak.all(a["Tower.ET"] > 0) and ak.all((a["Tower.Eem"] >= 0) & (a["Tower.Ehad"] >= 0))
    # every kept event has a generator muon in 9-16 GeV: most are identified by Delphes (pT > 10)
    assert ak.sum(ak.num(a["Muon.PT"]) > 0) >= N_KEPT // 2
    assert ak.all(a["Event.Weight"] == 1.0)
    gen = stats["generation"]
    assert gen["kept"] == N_KEPT and gen["generated"] >= N_KEPT and gen["sigma_gen_mb"] > 0
    assert stats["pythia_seed"] != stats["delphes_seed"]
    with uproot.open(root) as f:  # the same record travels inside the ROOT file
        embedded = json.loads(str(f["provenance"]))
    assert embedded["generation"] == gen and "set MeanPileUp 50" in embedded["delphes_card_text"]
    # Delphes' CPU in the chunk record too (the simulation cost per image reads it there)
    assert stats["delphes_cpu_s"] == embedded["delphes_cpu_s"] > 0


def test_background_keeps_non_isolated_muons(tmp_path, pileup_library):
    """Without pile-up, b-jet muons carry calorimeter energy: the stock card would drop them."""
    root = tmp_path / "bb.root"
    run_chunk_pipe(ChunkSpec("background", 1, 12, master_seed=11), DetectorSpec(pileup_library, 0.0),
                   root, tmp_path / "bb.json")
    iso = ak.flatten(read(root, "Muon.IsolationVar")["Muon.IsolationVar"])
    assert len(iso) >= 6
    assert ak.sum(iso > 0.25) >= 2  # stock CMS card: PTRatioMax 0.25 would have removed these


def test_pileup_adds_towers_same_hard_events(tmp_path, pileup_library, monkeypatch):
    """One HepMC2 file through Delphes at mu = 0 and mu = 50 (file transport, relative paths as in rules)."""
    monkeypatch.chdir(tmp_path)
    spec = ChunkSpec("signal", 2, 6, master_seed=11)
    hepmc, stats = Path("c.hepmc"), Path("c.json")
    generate_to_file(spec, hepmc, stats)
    assert count_hepmc2_events(hepmc) == 6 == json.loads(stats.read_text())["generation"]["kept"]
    n_towers, sum_et = {}, {}
    for mu in (0.0, 50.0):
        root = Path("out") / f"mu{mu:g}.root"
        delphes_from_file(hepmc, DetectorSpec(pileup_library, mu), root, "test chunk", spec.delphes_seed, 6)
        et = read(root, "Tower.ET")["Tower.ET"]
        n_towers[mu], sum_et[mu] = ak.mean(ak.num(et)), ak.mean(ak.sum(et, axis=1))
    assert n_towers[50.0] > 3 * n_towers[0.0]
    assert sum_et[50.0] > 3 * sum_et[0.0]


def test_same_seed_identical_other_seed_different(tmp_path, pileup_library):
    det = DetectorSpec(pileup_library, 50.0)
    spec = ChunkSpec("signal", 0, 4, master_seed=99)
    leaves = ("Tower.ET", "Tower.Eta", "Muon.PT", "Muon.Phi")
    runs = {}
    for name, s in (("a", spec), ("b", spec), ("other", replace(spec, master_seed=100))):
        root = tmp_path / f"{name}.root"
        run_chunk_pipe(s, det, root, tmp_path / f"{name}.json")
        runs[name] = read(root, *leaves)
    for leaf in leaves:
        assert ak.to_list(runs["a"][leaf]) == ak.to_list(runs["b"][leaf])
    assert ak.to_list(runs["a"]["Tower.ET"]) != ak.to_list(runs["other"]["Tower.ET"])


def test_missing_pileup_names_the_chunk_and_writes_nothing(tmp_path):
    root = tmp_path / "out" / "chunk3.root"
    with pytest.raises(SimulationError, match="background chunk 3.*missing.pileup.*does not exist"):
        run_chunk_pipe(ChunkSpec("background", 3, 2, 1), DetectorSpec(tmp_path / "missing.pileup"), root,
                       tmp_path / "s.json")
    assert not root.exists()


def test_unknown_process_names_the_chunk(tmp_path, pileup_library):
    root = tmp_path / "chunk0.root"
    with pytest.raises(SimulationError, match="ttbar chunk 0: unknown process 'ttbar'"):
        run_chunk_pipe(ChunkSpec("ttbar", 0, 2, 1), DetectorSpec(pileup_library), root, tmp_path / "s.json")
    assert not root.exists() and no_partial_files(tmp_path)


def test_delphes_crash_names_the_chunk_and_leaves_no_root(tmp_path, pileup_library):
    from simulation.delphes import DEFAULT_CARD

    broken = tmp_path / "broken.tcl"  # a module on the execution path that is not configured
    broken.write_text(DEFAULT_CARD.read_text().replace("  TreeWriter\n}", "  NoSuchModule\n  TreeWriter\n}", 1))
    root = tmp_path / "out" / "chunk5.root"
    with pytest.raises(SimulationError, match=r"(?s)signal chunk 5: DelphesHepMC2 failed.*NoSuchModule"):
        run_chunk_pipe(ChunkSpec("signal", 5, 2, 1), DetectorSpec(pileup_library, 50.0, broken), root,
                       tmp_path / "s.json")
    assert no_partial_files(tmp_path)


def test_truncated_hepmc_is_caught(tmp_path, pileup_library):
    spec = ChunkSpec("signal", 4, 3, master_seed=5)
    hepmc, stats = tmp_path / "c.hepmc", tmp_path / "c.json"
    generate_to_file(spec, hepmc, stats)
    data = hepmc.read_bytes()
    hepmc.write_bytes(data[: data.rindex(b"\nE ") + 1])  # drop the last event, as a killed writer would
    root = tmp_path / "chunk4.root"
    with pytest.raises(SimulationError,
                       match="signal chunk 4: HepMC input .* holds 2 events but generation recorded 3"):
        delphes_from_file(hepmc, DetectorSpec(pileup_library), root, "signal chunk 4", spec.delphes_seed, 3)
    assert not root.exists()


def test_cli_known_error_exits_2_without_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "simulation", "chunk", "--sample", "signal", "--chunk", "0", "--n-kept", "2",
         "--seed", "1", "--stats", str(tmp_path / "s.json"), "--pileup", str(tmp_path / "nope.pileup"),
         "--out", str(tmp_path / "chunk0.root")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: signal chunk 0" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "chunk0.root").exists()


@pytest.mark.parametrize("shape", ["point", "mixed"])
def test_images_re_render_from_their_stored_towers_at_pile_up_50(both_samples, tmp_path, shape):
    """The project's card at mu = 50 -> images.h5 with /towers -> render_towers == /images, every image (issue 22)."""
    files = [both_samples[sample][0] for sample in ("signal", "background")]
    cfg = ImagingConfig(tower_shape=shape, muon_pt_min=3.0, muon_pt_max=60.0, muons_per_event="all")
    path = write_images(tmp_path / "images.h5", build_images(files, cfg, sample="background"), cfg,
                        sample="background")
    data = read_image_file(path, towers=True)
    assert len(data) >= N_KEPT and data.towers.n_towers >= 5 * len(data)  # pile-up: ~12-15 towers per image
    again = render_towers(data.towers, tower_shape=shape, npix=data.npix, radius=data.radius, quantity="et")
    assert np.array_equal(again, data.images)

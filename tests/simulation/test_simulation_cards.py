"""Every Delphes card of simulation/cards, run by the real Delphes on the same generated events.

The detector variants of the fidelity study (docs/fidelity.md) differ in calorimeter
thresholds and granularity; each test pins what its card is for: the 2-sigma CMS card drops
every HCal tower below ~9.1 GeV, the 1-sigma one keeps them from ~2.3 GeV, the ATLAS card has
combined towers (Eem and Ehad in one 0.1 x 10-degree cell), the paper-granularity card has
separate ECal cells of 0.025 x pi/126 and HCal cells of 0.1 x pi/31. Also: the b bbar pT-hat
override reaches Pythia, and `mixed` images of real towers keep the energy.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from imaging.build import build_images
from imaging.config import ImagingConfig
from simulation.chunk import ChunkSpec, DetectorSpec, delphes_from_file, generate_to_file
from simulation.delphes import CARD_DIR, REQUIRED_LEAVES, TREE_NAME
from simulation.errors import SimulationError

pytestmark = pytest.mark.slow
N_KEPT = 6
CARDS = {
    "cms_sig2": "delphes_card_CMS_PileUp_muon_images.tcl",
    "cms_sig1": "delphes_card_CMS_PileUp_muon_images_sig1.tcl",
    "atlas": "delphes_card_ATLAS_PileUp_muon_images.tcl",
    "paper_granularity": "delphes_card_paper_granularity_muon_images.tcl",
}
LEAVES = ("Tower.ET", "Tower.Eta", "Tower.Eem", "Tower.Ehad", "Tower.Edges[4]", "Muon.PT")


def test_every_card_in_the_folder_is_tested():
    assert sorted(p.name for p in CARD_DIR.glob("delphes_card_*.tcl")) == sorted(CARDS.values())


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> tuple[Path, Path]:
    """One background chunk's generated events (HepMC2) and generation record: the same input for every card."""
    out = tmp_path_factory.mktemp("events")
    spec = ChunkSpec("background", 0, N_KEPT, master_seed=23)
    generate_to_file(spec, out / "chunk0.hepmc", out / "chunk0.json")
    return out / "chunk0.hepmc", out / "chunk0.json"


@pytest.fixture(scope="module")
def card_outputs(tmp_path_factory, events, pileup_library) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("cards")
    hepmc, stats = events
    record = json.loads(stats.read_text())
    made = {}
    for name, card in CARDS.items():
        made[name] = out / f"{name}.root"
        delphes_from_file(hepmc, DetectorSpec(pileup_library, 50.0, CARD_DIR / card), made[name], name,
                          random_seed=5, expected_events=N_KEPT, metadata=record)
    return made


def _towers(path: Path) -> dict[str, np.ndarray]:
    with uproot.open(path) as f:
        a = f[TREE_NAME].arrays(list(LEAVES))
    flat = {k: ak.to_numpy(ak.flatten(a[k])) for k in LEAVES if k not in ("Tower.Edges[4]", "Muon.PT")}
    flat["edges"] = ak.to_numpy(ak.flatten(a["Tower.Edges[4]"]))
    flat["n_muons"] = int(ak.sum(ak.num(a["Muon.PT"])))
    return flat


@pytest.mark.parametrize("name", list(CARDS))
def test_card_writes_what_imaging_reads_and_its_cpu_time(card_outputs, name):
    with uproot.open(card_outputs[name]) as f:
        tree = f[TREE_NAME]
        assert tree.num_entries == N_KEPT  # the same events went in
        keys = set(tree.keys())
        assert all(f"{leaf.split('.')[0]}/{leaf}" in keys for leaf in REQUIRED_LEAVES)
        record = json.loads(str(f["provenance"]))
    assert record["delphes_cpu_s"] > 0 and record["delphes_card"] == CARDS[name]
    t = _towers(card_outputs[name])
    assert t["Tower.ET"].size > 100 * N_KEPT  # mu = 50: hundreds of towers per event
    assert t["n_muons"] > 0  # muons identified and kept whatever their isolation
    # ET = (Eem + Ehad) / cosh(eta) for every tower: the ECal/HCal split imaging uses adds up
    np.testing.assert_allclose(t["Tower.ET"], (t["Tower.Eem"] + t["Tower.Ehad"]) / np.cosh(t["Tower.Eta"]),
                               rtol=1e-4, atol=1e-5)


def test_cms_thresholds_two_sigma_against_one_sigma(card_outputs):
    sig2, sig1 = _towers(card_outputs["cms_sig2"]), _towers(card_outputs["cms_sig1"])
    # HCal sigma(E) = sqrt(0.05^2 E^2 + 1.5^2 E): E >= 2 sigma needs E >= 9.09 GeV, E >= 1 sigma 2.26 GeV
    had2, had1 = sig2["Tower.Ehad"][sig2["Tower.Ehad"] > 0], sig1["Tower.Ehad"][sig1["Tower.Ehad"] > 0]
    assert had2.min() >= 9.09 - 1e-3
    assert had1.min() >= 2.25 and (had1 < 9.0).sum() > 100 * N_KEPT  # the soft hadronic towers come back
    assert len(sig1["Tower.ET"]) > 1.5 * len(sig2["Tower.ET"])


def test_atlas_card_has_combined_towers(card_outputs):
    t = _towers(card_outputs["atlas"])
    both = (t["Tower.Eem"] > 0) & (t["Tower.Ehad"] > 0)
    assert both.any()  # one calorimeter: a tower carries ECal and HCal energy
    central = np.abs(t["Tower.Eta"]) < 2.4
    widths = t["edges"][central, 1] - t["edges"][central, 0]
    np.testing.assert_allclose(widths, 0.1, atol=1e-4)
    np.testing.assert_allclose(t["edges"][central, 3] - t["edges"][central, 2], math.pi / 18, atol=1e-4)


def test_paper_granularity_card_has_separate_fine_ecal_and_coarse_hcal(card_outputs):
    t = _towers(card_outputs["paper_granularity"])
    ecal, hcal = t["Tower.Ehad"] == 0, t["Tower.Eem"] == 0
    assert not ((t["Tower.Eem"] > 0) & (t["Tower.Ehad"] > 0)).any()  # ECal and HCal towers are separate
    central = np.abs(t["Tower.Eta"]) < 3.1
    e, h = t["edges"][ecal & central], t["edges"][hcal & central]
    assert len(e) and len(h)
    np.testing.assert_allclose(e[:, 1] - e[:, 0], 0.025, atol=1e-4)  # one image pixel
    np.testing.assert_allclose(e[:, 3] - e[:, 2], math.pi / 126, atol=1e-4)
    np.testing.assert_allclose(h[:, 1] - h[:, 0], 0.1, atol=1e-4)
    np.testing.assert_allclose(h[:, 3] - h[:, 2], math.pi / 31, atol=1e-4)


def test_mixed_images_of_real_towers_keep_the_energy(card_outputs):
    """mixed = ECal part as points (equal to the et_ecal point images) + HCal part over cells."""
    path = card_outputs["paper_granularity"]
    cfg = dict(muon_pt_min=3.0, muon_pt_max=60.0)
    point = build_images([path], ImagingConfig(**cfg), sample="background").images
    mixed = build_images([path], ImagingConfig(tower_shape="mixed", **cfg), sample="background").images
    ecal = build_images([path], ImagingConfig(quantity="et_ecal", **cfg), sample="background").images
    hcal_cells = build_images([path], ImagingConfig(quantity="et_hcal", tower_shape="cell", **cfg),
                              sample="background").images
    assert len(point) > 0 and mixed.shape == point.shape
    np.testing.assert_allclose(mixed, ecal + hcal_cells, rtol=1e-5, atol=1e-5)
    assert np.count_nonzero(mixed) > np.count_nonzero(point)
    # the same energy, up to HCal cells crossing the disc edge (in either direction)
    assert mixed.sum() == pytest.approx(point.sum(), rel=0.15)


def test_pthat_override_reaches_pythia_and_only_for_the_background(tmp_path):
    spec = ChunkSpec("background", 0, 2, master_seed=3, pthat_min_gev=20.0)
    stats = generate_to_file(spec, tmp_path / "b.hepmc", tmp_path / "b.json")
    assert json.loads((tmp_path / "b.json").read_text())["generation"]["settings"]["extra"] == [
        "PhaseSpace:pTHatMin = 20"]
    default = generate_to_file(ChunkSpec("background", 0, 2, master_seed=3), tmp_path / "d.hepmc", tmp_path / "d.json")
    assert stats.sigma_gen_mb < 0.5 * default.sigma_gen_mb  # a higher threshold: a smaller cross-section
    with pytest.raises(SimulationError, match="background"):
        ChunkSpec("signal", 0, 2, master_seed=3, pthat_min_gev=20.0)

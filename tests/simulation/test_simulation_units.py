"""Fast checks: seeds, chunk plan, cards, Pythia settings errors, filter window."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.seeds import PYTHIA_SEED_MAX, chunk_seed
from simulation.delphes import DEFAULT_CARD, _tail, pileup_entries, render_card
from simulation.errors import SimulationError
from simulation.muon_filter import MuonWindow
from simulation.plan import chunk_sizes
from simulation.pythia_setup import make_pythia, process_cards, read_cmnd


def test_seeds_are_in_pythia_range_deterministic_and_distinct():
    seeds = {(s, c, k): chunk_seed(20191214, s, c, k)
             for s in ("signal", "background") for c in range(200) for k in ("pythia", "delphes")}
    assert all(1 <= v <= PYTHIA_SEED_MAX for v in seeds.values())
    assert len(set(seeds.values())) == len(seeds)  # no two streams share a seed
    assert chunk_seed(20191214, "signal", 3, "pythia") == seeds[("signal", 3, "pythia")]
    assert chunk_seed(1, "signal", 3, "pythia") != chunk_seed(2, "signal", 3, "pythia")


def test_chunk_sizes_cover_the_sample_exactly():
    assert chunk_sizes(4000, 1000) == [1000] * 4
    assert chunk_sizes(2500, 1000) == [1000, 1000, 500]
    assert chunk_sizes(7, 100) == [7]
    with pytest.raises(ValueError):
        chunk_sizes(0, 10)


def test_project_card_is_the_trimmed_cms_pileup_card():
    text = DEFAULT_CARD.read_text()
    path = re.search(r"set ExecutionPath \{(.*?)\}", text, re.S).group(1).split()
    # towers come from the Calorimeter merger, after HCal; muons after isolation
    assert path.index("Calorimeter") > path.index("HCal") > path.index("ECal")
    assert path[0] == "PileUpMerger" and path[-1] == "TreeWriter"
    assert path.index("CentralParticles") < path.index("ParticlePropagator")
    assert "set InputArray CentralParticles/stableParticles" in text
    assert "{(abs(eta) < 3.5) * 1.0}" in text and "set UseMomentumVector true" in text
    for dropped in ("FastJetFinder", "Rho", "BTagging", "MissingET", "ElectronIsolation", "PhotonIsolation"):
        assert dropped not in path
    assert "add Branch Calorimeter/towers Tower Tower" in text
    assert "add Branch MuonIsolation/muons Muon Muon" in text
    ratio = float(re.search(r"set PTRatioMax\s+(\S+)", text).group(1))
    assert ratio >= 1e6  # isolation never drops a muon
    assert re.search(r"set MeanPileUp 50\b", text)
    # towers kept from 1 sigma of the noise in ECal and HCal (2 sigma drops HCal below ~9.1 GeV)
    assert re.findall(r"^\s*set EnergySignificanceMin\s+(\S+)", text, re.M) == ["1.0", "1.0"]


def test_render_card_fills_pileup_mu_and_seed(tmp_path):
    lib = tmp_path / "lib.pileup"
    text = render_card(DEFAULT_CARD, lib, 0, 12345)
    assert f"set PileUpFile {lib.resolve()}" in text
    assert re.search(r"^\s*set MeanPileUp 0$", text, re.M)
    assert re.search(r"^set RandomSeed 12345$", text, re.M)


def test_render_card_refuses_a_card_without_the_lines_to_fill(tmp_path):
    card = tmp_path / "card.tcl"
    card.write_text(DEFAULT_CARD.read_text().replace("set RandomSeed 1", ""))
    with pytest.raises(SimulationError, match="RandomSeed"):
        render_card(card, tmp_path / "x.pileup", 50, 1)


@pytest.mark.parametrize("content", [b"", b"not a pileup file at all", b"\x00" * 8 + b"\x7f" + b"\x00" * 7])
def test_broken_pileup_library_is_reported(tmp_path, content):
    lib = tmp_path / "bad.pileup"
    lib.write_bytes(content)
    with pytest.raises(SimulationError, match="bad.pileup"):
        pileup_entries(lib)
    with pytest.raises(SimulationError, match="does not exist"):
        pileup_entries(tmp_path / "missing.pileup")


def _settings(card: Path) -> dict[str, str]:
    """{setting: value} of a .cmnd card (inline comments stripped)."""
    return {k.strip(): v.strip() for k, v in (line.split("=", 1) for _, line in read_cmnd(card))}


def test_cards_hold_the_physics():
    common, signal = (_settings(c) for c in process_cards("signal"))
    assert float(common["Beams:eCM"]) == 13000.0
    assert float(signal["32:m0"]) == 20.0 and signal["Zprime:gmZmode"] == "3" and signal["32:onIfAny"] == "13"
    background = _settings(process_cards("background")[1])
    assert background["HardQCD:hardbbbar"] == "on" and float(background["PhaseSpace:pTHatMin"]) == 10.0
    assert [c.name for c in process_cards("background", True)][-1] == "force_b_muonic.cmnd"
    assert "force_b_muonic.cmnd" not in [c.name for c in process_cards("background", False)]
    assert "force_b_muonic.cmnd" not in [c.name for c in process_cards("signal", True)]


def test_unknown_process_is_an_error_naming_it():
    with pytest.raises(SimulationError, match="unknown process 'ttbar'.*signal, background"):
        process_cards("ttbar")


def test_misspelt_pythia_setting_names_card_and_line(tmp_path):
    card = tmp_path / "typo.cmnd"
    card.write_text("! comment\nHardQCD:hardbbbar = on\nPhaseSpace:pTHatMinn = 10.\n")
    with pytest.raises(SimulationError, match=r"pTHatMinn.*typo\.cmnd:3"):
        make_pythia([card], 1)


@pytest.mark.parametrize("seed", [0, -5, PYTHIA_SEED_MAX + 1])
def test_pythia_seed_outside_allowed_range_is_refused(seed):
    with pytest.raises(SimulationError, match="900000000"):
        make_pythia(process_cards("signal"), seed)


def test_muon_window_rejects_nonsense():
    with pytest.raises(ValueError):
        MuonWindow(16.0, 9.0, 2.5)


def test_a_crash_report_keeps_the_crash_line_and_the_event_count(tmp_path: Path) -> None:
    """A Delphes segfault prints ~40 lines of stack trace after the line that says what happened;
    the error message must still show that line and how far Delphes got."""
    log = tmp_path / "delphes.log"
    trace = [f"#{i}  0x0000 in frame{i} ()" for i in range(40)]
    log.write_text("\n".join(["** Reading standard input", "** 1 events processed", "** 2 events processed",
                              " *** Break *** segmentation violation", *trace]) + "\n")
    text = _tail(log)
    assert text.splitlines()[:2] == ["** 2 events processed", " *** Break *** segmentation violation"]
    assert text.splitlines()[-1] == "#39  0x0000 in frame39 ()"
    assert _tail(tmp_path / "missing.log") == "(no log)"

"""The MadGraph cards of the container backend: valid, complete, consistent with the native cards."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from simulation.container import cards
from simulation.container.errors import ContainerCardError

NATIVE_CARDS = cards.CARDS_DIR
#: LO run_card entries of MG5 3.x that the cards may set (a typo would be silently ignored
#: by `set`, so the names are pinned here).
MG5_LO_RUN_CARD_NAMES = {
    "lpp1", "lpp2", "ebeam1", "ebeam2", "pdlabel", "lhaid", "use_syst", "gridpack", "nevents", "iseed",
    "mmll", "mmllmax", "ptl", "ptlmax", "etal", "drll", "ptb", "ptbmax", "etab", "drbb", "ptj", "etaj",
    "drjj", "xqcut", "ickkw", "dynamical_scale_choice", "maxjetflavor", "cut_decays", "mmbb", "mmbbmax",
}


def _native_setting(card: str, name: str) -> float:
    text = (NATIVE_CARDS / card).read_text()
    match = re.search(rf"^\s*{re.escape(name)}\s*=\s*([0-9.eE+-]+)", text, flags=re.M)
    assert match, f"{name} not in {card}"
    return float(match.group(1))


@pytest.mark.parametrize("sample", cards.SAMPLES)
def test_process_cards_use_a_builtin_model_and_one_process(sample):
    commands = cards.read_proc_commands(cards.proc_card(sample))
    assert commands[0] == "import model sm"       # built into MG5: nothing downloaded at run time
    generates = [c for c in commands if c.startswith("generate")]
    assert len(generates) == 1


def test_signal_is_a_20_gev_dimuon_resonance_window_without_z():
    generate = [c for c in cards.read_proc_commands(cards.proc_card("signal")) if c.startswith("generate")][0]
    assert generate.split(">")[1].split("/")[0].split() == ["mu+", "mu-"]
    assert "z" in generate.split("/")[1].split()   # no Z propagator: nothing at 91 GeV
    run = cards.read_run_settings(cards.run_settings_card("signal"))
    low, high = float(run["mmll"]), float(run["mmllmax"])
    z_prime_mass = _native_setting("signal.cmnd", "32:m0")
    assert low < z_prime_mass < high and high - low <= 1.0 + 1e-9
    assert (low + high) / 2 == pytest.approx(z_prime_mass)
    # no parton-level muon cuts: the generator-level filter after the shower selects, as native
    assert float(run["ptl"]) == 0 and float(run["etal"]) < 0 and float(run["drll"]) == 0


def test_background_b_threshold_equals_native_pthat_min():
    generate = [c for c in cards.read_proc_commands(cards.proc_card("background")) if c.startswith("generate")][0]
    assert generate == "generate p p > b b~"
    run = cards.read_run_settings(cards.run_settings_card("background"))
    assert float(run["ptb"]) == _native_setting("background.cmnd", "PhaseSpace:pTHatMin")
    assert float(run["etab"]) < 0


@pytest.mark.parametrize("sample", cards.SAMPLES)
def test_run_settings_are_known_run_card_entries_at_13_tev(sample):
    run = cards.read_run_settings(cards.run_settings_card(sample))
    assert set(run) <= MG5_LO_RUN_CARD_NAMES, set(run) - MG5_LO_RUN_CARD_NAMES
    assert float(run["ebeam1"]) + float(run["ebeam2"]) == 13000.0
    assert run["pdlabel"] == "nn23lo1"             # MG5's built-in PDF: no LHAPDF set to fetch
    assert run["gridpack"] == "True" and run["use_syst"] == "False"


@pytest.mark.parametrize("sample", cards.SAMPLES)
def test_gridpack_script_builds_then_launches_with_every_setting(sample):
    script = cards.mg5_gridpack_script(sample, "work/proc", nb_core=16).splitlines()
    body = [line for line in script if not line.startswith("#")]
    order = [next(i for i, line in enumerate(body) if line.startswith(word))
             for word in ("import model", "generate", "output work/proc", "launch work/proc")]
    assert order == sorted(order)
    assert "set nb_core 16" in body and body.count("done") == 2
    for switch in ("shower=OFF", "detector=OFF"):
        assert switch in body                       # Pythia and Delphes are separate steps
    launch = body.index("launch work/proc")
    for name, value in cards.read_run_settings(cards.run_settings_card(sample)).items():
        assert body.index(f"set {name} {value}") > launch


def test_bad_cards_are_refused_with_the_file_and_line(tmp_path):
    proc = tmp_path / "proc.dat"
    proc.write_text("import model sm\ngenerate p p > b b~\nlaunch\n")
    with pytest.raises(ContainerCardError, match=r"proc\.dat:3"):
        cards.read_proc_commands(proc)
    proc.write_text("import model /somewhere/Zprime_UFO\ngenerate p p > zp > mu+ mu-\n")
    with pytest.raises(ContainerCardError, match="not a built-in MG5 model"):
        cards.read_proc_commands(proc)
    run = tmp_path / "run.dat"
    run.write_text("1 = lpp1\n1 = lpp2\n6500.0 = ebeam1\n6500.0 = ebeam2\nTrue = gridpack\n10000 = nevents\n")
    with pytest.raises(ContainerCardError, match="nevents"):
        cards.read_run_settings(run)
    run.write_text("1 = lpp1\n")
    with pytest.raises(ContainerCardError, match="ebeam1"):
        cards.read_run_settings(run)
    run.write_text("lpp1 1\n")
    with pytest.raises(ContainerCardError, match="run.dat:1"):
        cards.read_run_settings(run)


def test_cli_renders_and_reports_errors_without_traceback(tmp_path, project_dir):
    out = tmp_path / "gridpack.mg5"
    ok = subprocess.run([sys.executable, "-m", "simulation.container", "mg5-script", "--sample", "signal",
                         "--process-dir", "p", "--out", str(out)], capture_output=True, text=True, cwd=project_dir)
    assert ok.returncode == 0, ok.stderr
    assert out.read_text() == cards.mg5_gridpack_script("signal", "p")
    bad = subprocess.run([sys.executable, "-m", "simulation.container", "delphes-card", "--card",
                          str(tmp_path / "missing.tcl"), "--pileup", "x.pileup", "--seed", "1",
                          "--config-json", '{"mean_pileup": 50}', "--out", str(tmp_path / "d.tcl")],
                         capture_output=True, text=True, cwd=project_dir)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "missing.tcl" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "d.tcl").exists()

"""The detector-fidelity study through Snakemake on a tiny config: real Pythia, real Delphes.

Checks the study's contract (docs/fidelity.md): every card sees the same generated events,
every Delphes output is imaged with every rendering, the other pT-hat thresholds go through
their cards only, and one table and one figure come out with a row per variant and class.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import uproot
import yaml

pytestmark = pytest.mark.slow

PROJECT_DIR = Path(__file__).resolve().parents[2]
CARDS = {"cms_sig1": "simulation/cards/delphes_card_CMS_PileUp_muon_images_sig1.tcl",
         "paper_granularity": "simulation/cards/delphes_card_paper_granularity_muon_images.tcl"}
TINY = {
    "outdir": "results",
    "seed": 4242,
    "simulation": {"pileup_events": 200},
    "analysis": {"metrics": {"classifier": {"epochs": 2, "hidden_layers": [8]}}},
    # config.yaml's other cards are left out with null (a --configfile merges into the mapping)
    "fidelity": {"events_per_sample": 40, "events_per_chunk": 20, "cards": {**CARDS, "cms_sig2": None, "atlas": None},
                 "tower_shapes": ["point", "mixed"], "pthat_min_gev": [10, 20], "pthat_cards": ["paper_granularity"],
                 "n_baseline": 300},
}


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cfg = workdir / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(PROJECT_DIR / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(cfg), "--cores", "2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("fidelity")
    proc = _snakemake(workdir, "fidelity")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return workdir / "results" / "fidelity"


def test_dry_run_lists_cards_times_renderings_plus_thresholds(tmp_path):
    proc = _snakemake(tmp_path, "fidelity", "-n", "--quiet", "rules")
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = {line.split()[0]: int(line.split()[1]) for line in proc.stdout.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    # event sets: signal, background (pT-hat 10), background_pthat20; 2 chunks each
    assert counts["fidelity_generate"] == 3 * 2
    # (2 cards x (signal + background) + 1 card x background_pthat20) x 2 chunks
    assert counts["fidelity_delphes"] == (2 * 2 + 1) * 2
    # variants: 2 cards x 2 renderings + 1 card x 2 renderings at pT-hat 20
    assert counts["fidelity_variant"] == 6


def test_study_table_and_figure(study):
    rows = list(csv.DictReader((study / "fidelity.csv").open()))
    variants = [r["variant"] for r in rows if r["sample"] == "background"]
    assert variants == ["cms_sig1/point", "cms_sig1/mixed", "paper_granularity/point", "paper_granularity/mixed",
                        "paper_granularity/point/pthat20", "paper_granularity/mixed/pthat20"]
    for r in rows:
        assert 0.5 < float(r["zero_fraction"]) < 1.0 and float(r["delphes_ms_per_event"]) > 0
        assert float(r["baseline_isolation_emd_floor"]) > 0 and 0 <= float(r["baseline_classifier_auc"]) <= 1
    by = {(r["variant"], r["sample"]): r for r in rows}
    # mixed spreads HCal towers over their cells: many more non-zero pixels than points
    for card in CARDS:
        assert float(by[(f"{card}/mixed", "background")]["nonzero_per_image"]) > \
            2 * float(by[(f"{card}/point", "background")]["nonzero_per_image"])
    # the signal does not depend on the b bbar threshold; the background does
    assert by[("paper_granularity/point/pthat20", "signal")]["isolation_mean"] == \
        by[("paper_granularity/point", "signal")]["isolation_mean"]
    assert by[("paper_granularity/point/pthat20", "background")]["isolation_mean"] != \
        by[("paper_granularity/point", "background")]["isolation_mean"]
    assert "## background" in (study / "fidelity.md").read_text()
    assert (study / "fidelity_average_images.png").stat().st_size > 10_000


def test_every_card_saw_the_same_generated_events(study):
    seen = {}
    for card in CARDS:
        with uproot.open(study / "delphes" / card / "background" / "chunk0.root") as f:
            record = json.loads(str(f["provenance"]))
        seen[card] = (record["pythia_seed"], record["generation"]["generated"], record["hepmc_events"])
        assert record["delphes_card"] == Path(CARDS[card]).name
    assert len(set(seen.values())) == 1

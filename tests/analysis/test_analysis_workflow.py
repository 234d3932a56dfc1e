"""The analysis rules under Snakemake: figures from cached files, plotting-only reruns, report.

Runs the project's own workflow/rules/{common,analysis}.smk in a scratch workflow whose
Snakefile stands in for the training stage (it only defines GENERATED_MODELS), with
synthetic images.h5 and generated files as the cache.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.toy import write_toy_files

PROJECT = Path(__file__).resolve().parents[2]
MODELS = ["decoupled_fc", "independent_pixels"]

SNAKEFILE = f"""
configfile: "config.yaml"
include: "workflow/rules/common.smk"
GENERATED_MODELS = {MODELS!r}  # stands in for workflow/rules/training.smk
include: "workflow/rules/analysis.smk"
rule figures:
    input: analysis_targets()
"""

CONFIG = """
outdir: results
seed: 5
samples: [signal, background]
analysis:
  metrics:
    classifier: {hidden_layers: [16], epochs: 5}
  plots: {dpi: 50}
"""


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = tmp_path_factory.mktemp("wf")
    for rel in ("workflow/rules/common.smk", "workflow/rules/analysis.smk", "workflow/schemas/config.schema.yaml",
                "workflow/schemas/analysis.schema.yaml", "envs/pipeline.yaml"):
        (wd / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / rel, wd / rel)
    shutil.copytree(PROJECT / "workflow" / "report", wd / "workflow" / "report")
    (wd / "Snakefile").write_text(SNAKEFILE)
    (wd / "config.yaml").write_text(CONFIG)
    write_toy_files(wd / "results", n_images=400, seed=2, models=tuple(MODELS))
    return wd


@pytest.mark.slow
def test_figures_target_then_plot_only_rerun_then_report(workflow_dir: Path) -> None:
    wd = workflow_dir
    _snakemake(wd, "figures")
    res = wd / "results"
    expected = [res / "figures" / f"figure2_isolation.{e}" for e in ("pdf", "png")]
    expected += [res / "figures" / f"figure3_average_images_{s}.{e}" for s in ("linear", "log") for e in ("pdf", "png")]
    expected += [res / "figures" / f"{k}_{s}.{e}" for k in ("features", "correlations")
                 for s in ("signal", "background") for e in ("pdf", "png")]
    expected += [res / "tables" / f"{t}.{e}" for t in ("isolation_emd", "metrics") for e in ("csv", "md")]
    for path in expected:
        assert path.stat().st_size > 0, path
    metrics = sorted((res / "analysis").glob("*/*.metrics.json"))
    assert len(metrics) == 4
    before = {p: p.stat().st_mtime_ns for p in [*metrics, *expected]}

    # a plotting-only change: only Figure 2 is redrawn; metrics, tables and the other figures stay
    (wd / "config.yaml").write_text(CONFIG + "  figure2: {bins: 25}\n")
    dry = _snakemake(wd, "figures", "--dry-run")
    assert "analysis_figure2" in dry.stdout
    for rule in ("analysis_metrics ", "analysis_emd_table", "analysis_figure3", "analysis_features"):
        assert rule not in dry.stdout, rule
    _snakemake(wd, "figures")
    changed = {p for p, t in before.items() if p.stat().st_mtime_ns != t}
    assert changed == {res / "figures" / "figure2_isolation.pdf", res / "figures" / "figure2_isolation.png"}

    _snakemake(wd, "--report", "report.html")
    html = (wd / "report.html").read_text(errors="replace")
    assert "Paper: EMD 0.06" in html and "Pixel-pixel correlations, background" in html

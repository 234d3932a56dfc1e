"""The analysis rules under Snakemake: figures from cached files, plotting-only reruns, report.

Runs the project's own workflow/rules/{common,analysis}.smk in a scratch workflow whose
Snakefile stands in for the training stage (it only defines GENERATED_MODELS), with
synthetic images.h5 and generated files as the cache.
"""
from __future__ import annotations

import os
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
    cnn_classifier: {epochs: 2, bootstrap: 10}
    fpd_kpd: {fpd_max_samples: 3000, kpd_batch_size: 500}
  plots: {dpi: 50}
"""


def _snakemake(workdir: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    # the rule files import the project's packages, and the rules run its CLIs: from this checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=900, env=env)
    if ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _make_workflow(wd: Path, n_images: int) -> Path:
    """Scratch workflow in `wd`: the project's rule files and schemas, toy images as the cache."""
    for rel in ("workflow/rules/common.smk", "workflow/rules/analysis.smk", "workflow/schemas/config.schema.yaml",
                "workflow/schemas/analysis.schema.yaml", "envs/pipeline.yaml"):
        (wd / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT / rel, wd / rel)
    shutil.copytree(PROJECT / "workflow" / "report", wd / "workflow" / "report")
    (wd / "Snakefile").write_text(SNAKEFILE)
    (wd / "config.yaml").write_text(CONFIG)
    write_toy_files(wd / "results", n_images=n_images, seed=2, models=tuple(MODELS))
    return wd


@pytest.fixture(scope="module")
def workflow_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_workflow(tmp_path_factory.mktemp("wf"), 400)


@pytest.fixture(scope="module")
def dry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workflow that is only ever dry-run (tiny cache files)."""
    return _make_workflow(tmp_path_factory.mktemp("dry"), 20)


@pytest.mark.slow  # ~5-9 s: one Snakemake start-up
def test_dry_run_plans_the_results_table(dry_dir: Path) -> None:
    dry = _snakemake(dry_dir, "figures", "--dry-run", "--printshellcmds")
    assert "rule analysis_results_table:" in dry.stdout or "localrule analysis_results_table:" in dry.stdout
    assert "tables/results.csv" in dry.stdout and "tables/results.md" in dry.stdout
    assert '"low_isolation": 0.02' in dry.stdout  # schema default reaches every metrics job
    assert '"kpd_degree": 4' in dry.stdout and '"splits": [0.6, 0.2, 0.2]' in dry.stdout
    # the radial profile beside Figure 3: real vs the Figure-3 models and the baseline, plot settings only
    cmd = dry.stdout[dry.stdout.index("analysis radial-profile"):].split("\n")[0]
    assert "background:independent_pixels=" in cmd and "signal:decoupled_fc=" in cmd
    assert '"ring_width": 0.02' in cmd and "cnn_classifier" not in cmd


@pytest.mark.slow
@pytest.mark.parametrize("figure, target", [("figure2", "figure2_isolation.png"),
                                            ("figure3", "figure3_average_images_log.png")])
def test_figure_models_chooses_the_drawn_models(dry_dir: Path, figure: str, target: str) -> None:
    (dry_dir / "config.yaml").write_text(CONFIG + f"  {figure}: {{models: [decoupled_fc]}}\n")
    try:
        dry = _snakemake(dry_dir, f"results/figures/{target}", "--dry-run", "--printshellcmds")
        cmd = dry.stdout[dry.stdout.index(f"analysis {figure}"):].split("\n")[0]
        assert "signal:decoupled_fc=" in cmd and "background:decoupled_fc=" in cmd
        assert "independent_pixels" not in cmd
        (dry_dir / "config.yaml").write_text(CONFIG + f"  {figure}: {{models: [decoupled_fc, lagan]}}\n")
        bad = _snakemake(dry_dir, "figures", "--dry-run", ok=False)
        assert bad.returncode != 0
        assert f"analysis.{figure}.models: unknown model(s) lagan; choose from decoupled_fc, independent_pixels" in (
            bad.stdout + bad.stderr)
    finally:
        (dry_dir / "config.yaml").write_text(CONFIG)


@pytest.mark.slow
def test_figures_target_then_plot_only_rerun_then_report(workflow_dir: Path) -> None:
    wd = workflow_dir
    _snakemake(wd, "figures")
    res = wd / "results"
    expected = [res / "figures" / f"figure2_isolation.{e}" for e in ("pdf", "png")]
    expected += [res / "figures" / f"figure3_average_images_{s}.{e}" for s in ("linear", "log") for e in ("pdf", "png")]
    expected += [res / "figures" / f"radial_profile.{e}" for e in ("pdf", "png")]
    expected += [res / "figures" / f"{k}_{s}.{e}" for k in ("features", "correlations")
                 for s in ("signal", "background") for e in ("pdf", "png")]
    expected += [res / "tables" / f"{t}.{e}" for t in ("isolation_emd", "metrics", "results") for e in ("csv", "md")]
    for path in expected:
        assert path.stat().st_size > 0, path
    metrics = sorted((res / "analysis").glob("*/*.metrics.json"))
    assert len(metrics) == 4
    before = {p: p.stat().st_mtime_ns for p in [*metrics, *expected]}

    # plotting-only changes (bins, the models drawn, ring width): only Figure 2 and the radial profile
    # are redrawn; metrics, tables and the other figures stay
    (wd / "config.yaml").write_text(CONFIG + "  figure2: {bins: 25, models: [decoupled_fc]}\n"
                                    + "  radial_profile: {ring_width: 0.04}\n")
    dry = _snakemake(wd, "figures", "--dry-run")
    assert "analysis_figure2" in dry.stdout and "analysis_radial_profile" in dry.stdout
    for rule in ("analysis_metrics ", "analysis_emd_table", "analysis_results_table", "analysis_figure3",
                 "analysis_features"):
        assert rule not in dry.stdout, rule
    _snakemake(wd, "figures")
    changed = {p for p, t in before.items() if p.stat().st_mtime_ns != t}
    assert changed == {res / "figures" / f"{name}.{e}" for name in ("figure2_isolation", "radial_profile")
                       for e in ("pdf", "png")}

    _snakemake(wd, "--report", "report.html")
    html = (wd / "report.html").read_text(errors="replace")
    assert "Paper: EMD 0.06" in html and "Pixel-pixel correlations, background" in html
    assert "Results table: every model, both samples" in html
    assert "Radial ET profile (beside Figure 3)" in html

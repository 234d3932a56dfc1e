# Analysis: isolation (paper eq. 3), EMD table, CaloChallenge-style metrics, Figures 2 and 3.
# Owner: analysis/ (python -m analysis ...). Inputs are ONLY the cached image files
# {sample}/images.h5 and generated/{sample}/{model}.h5, never model checkpoints, so
# `snakemake figures` after a plotting-only change redraws plots and retrains nothing.
# Plot settings are params of the plotting rules only: changing analysis.figure2/figure3/
# features/plots reruns those rules, not the metrics (and vice versa).

from analysis.settings import READS as ANALYSIS_READS
from snakemake.exceptions import WorkflowError

ANALYSIS = config["analysis"]
ANALYSIS_MODELS = list(GENERATED_MODELS)  # from training.smk (included before), incl. "independent_pixels"


def analysis_settings(command):
    """--config-json of `python -m analysis <command>`: the keys of `analysis:` it reads (analysis/settings.py)."""
    return section_json(ANALYSIS, ANALYSIS_READS[command])


def _real_images(sample):
    return out(sample, "images.h5")


def _generated_images(sample, model):
    return out("generated", sample, f"{model}.h5")


def _metrics_records():
    return [out("analysis", s, f"{m}.metrics.json") for s in SAMPLES for m in ANALYSIS_MODELS]


# SAMPLE=PATH and SAMPLE:MODEL=PATH arguments of the multi-sample figure commands.
_REAL_ARGS = [f"{s}={_real_images(s)}" for s in SAMPLES]


def _figure_models(figure):
    """analysis.<figure>.models (in that order) that this run generates, or every generated model when null.

    A name that is configured in training.models but left out by training.run is skipped (so
    the default figure lists work with any `run`); a name configured nowhere is an error.
    """
    chosen = ANALYSIS[figure]["models"]
    if chosen is None or not ANALYSIS_MODELS:
        return ANALYSIS_MODELS
    configured = set((config.get("training") or {}).get("models") or {}) | set(ANALYSIS_MODELS)
    unknown = [m for m in chosen if m not in configured]
    if unknown:
        raise WorkflowError(
            f"config analysis.{figure}.models: unknown model(s) {', '.join(unknown)}; "
            f"choose from {', '.join(ANALYSIS_MODELS)} (or null for all)"
        )
    drawn = [m for m in chosen if m in ANALYSIS_MODELS]
    return drawn or ANALYSIS_MODELS


# Figures 2 and 3 draw a chosen subset (plotting only): their inputs and arguments, nothing else, depend on it.
def _figure_images(models):
    return [_real_images(s) for s in SAMPLES] + [_generated_images(s, m) for s in SAMPLES for m in models]


def _figure_args(models):
    return [f"{s}:{m}={_generated_images(s, m)}" for s in SAMPLES for m in models]


FIGURE2_MODELS = _figure_models("figure2")
FIGURE3_MODELS = _figure_models("figure3")
_FIGURE2_IMAGES, _FIGURE2_ARGS = _figure_images(FIGURE2_MODELS), _figure_args(FIGURE2_MODELS)
_FIGURE3_IMAGES, _FIGURE3_ARGS = _figure_images(FIGURE3_MODELS), _figure_args(FIGURE3_MODELS)

FIGURE2 = [out("figures", f"figure2_isolation.{ext}") for ext in ("pdf", "png")]
FIGURE3_LINEAR = [out("figures", f"figure3_average_images_linear.{ext}") for ext in ("pdf", "png")]
FIGURE3_LOG = [out("figures", f"figure3_average_images_log.{ext}") for ext in ("pdf", "png")]
#: the many-model comparison of average images (every generated model), beside the paper-layout Figure 3
FIGURE3_ALL = [out("figures", f"average_images_all_models_{scale}.{ext}") for scale in ("linear", "log")
               for ext in ("pdf", "png")]
_ALL_IMAGES, _ALL_ARGS = _figure_images(ANALYSIS_MODELS), _figure_args(ANALYSIS_MODELS)
EMD_TABLE = [out("tables", f"isolation_emd.{ext}") for ext in ("csv", "md")]
METRICS_TABLE = [out("tables", f"metrics.{ext}") for ext in ("csv", "md")]
RESULTS_TABLE = [out("tables", f"results.{ext}") for ext in ("csv", "md")]


def analysis_targets():
    """Figures and tables of the analysis stage (the `figures` target)."""
    if not ANALYSIS_MODELS:
        return []
    per_sample = [
        out("figures", f"{kind}_{s}.{ext}")
        for kind in ("features", "correlations")
        for s in SAMPLES
        for ext in ("pdf", "png")
    ]
    return (FIGURE2 + FIGURE3_LINEAR + FIGURE3_LOG + FIGURE3_ALL + per_sample + EMD_TABLE + METRICS_TABLE
            + RESULTS_TABLE)


localrules: analysis_emd_table, analysis_metrics_table, analysis_results_table


rule analysis_metrics:
    """All real-vs-generated metrics of one sample and model (isolation EMD, classifier AUC, ...)."""
    input:
        real=_real_images("{sample}"),
        generated=_generated_images("{sample}", "{model}"),
    output:
        out("analysis", "{sample}", "{model}.metrics.json"),
    params:
        seed=SEED,
        settings=analysis_settings("metrics"),
    log:
        LOGS / "analysis" / "metrics_{sample}_{model}.log",
    benchmark:
        BENCH / "analysis" / "metrics_{sample}_{model}.tsv"
    threads: 1
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "{PYTHON} -m analysis metrics --real {input.real} --generated {input.generated}"
        " --sample {wildcards.sample} --model {wildcards.model} --seed {params.seed}"
        " --config-json {params.settings:q} --out {output} > {log} 2>&1"


rule analysis_emd_table:
    """Isolation EMD per sample and model beside the paper's values."""
    input:
        _metrics_records(),
    output:
        report(EMD_TABLE[0], caption="../report/isolation_emd.rst", category="Tables"),
        EMD_TABLE[1],
    log:
        LOGS / "analysis" / "emd_table.log",
    conda:
        CONDA_ENV
    shell:
        "{PYTHON} -m analysis emd-table --metrics {input} --out-csv {output[0]} --out-md {output[1]} > {log} 2>&1"


rule analysis_metrics_table:
    """One metrics table for the run (all samples and models)."""
    input:
        _metrics_records(),
    output:
        report(METRICS_TABLE[0], caption="../report/metrics.rst", category="Tables"),
        METRICS_TABLE[1],
    log:
        LOGS / "analysis" / "metrics_table.log",
    conda:
        CONDA_ENV
    shell:
        "{PYTHON} -m analysis metrics-table --metrics {input} --out-csv {output[0]} --out-md {output[1]} > {log} 2>&1"


rule analysis_results_table:
    """Results table: every model on both samples (EMD, vs baseline, zero-fraction error, AUC, train time)."""
    input:
        _metrics_records(),
    output:
        report(RESULTS_TABLE[0], caption="../report/results.rst", category="Tables"),
        RESULTS_TABLE[1],
    log:
        LOGS / "analysis" / "results_table.log",
    conda:
        CONDA_ENV
    shell:
        "{PYTHON} -m analysis results-table --metrics {input} --out-csv {output[0]} --out-md {output[1]} > {log} 2>&1"


rule analysis_figure2:
    """Paper Figure 2: isolation histograms, real vs each model of analysis.figure2.models (all by default)."""
    input:
        _FIGURE2_IMAGES,
    output:
        FIGURE2[0],
        report(FIGURE2[1], caption="../report/figure2.rst", category="Figures", subcategory="Paper"),
    params:
        real=_REAL_ARGS,
        generated=_FIGURE2_ARGS,
        settings=analysis_settings("figure2"),
    log:
        LOGS / "analysis" / "figure2.log",
    benchmark:
        BENCH / "analysis" / "figure2.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        CONDA_ENV
    shell:
        "{PYTHON} -m analysis figure2 --real {params.real} --generated {params.generated}"
        " --config-json {params.settings:q} --out {output} > {log} 2>&1"


rule analysis_figure3:
    """Paper Figure 3: average images real | generated per sample (analysis.figure3.models), linear and log scale."""
    input:
        _FIGURE3_IMAGES,
    output:
        FIGURE3_LINEAR[0],
        report(FIGURE3_LINEAR[1], caption="../report/figure3.rst", category="Figures", subcategory="Paper"),
        FIGURE3_LOG[0],
        report(FIGURE3_LOG[1], caption="../report/figure3.rst", category="Figures", subcategory="Paper"),
    params:
        real=_REAL_ARGS,
        generated=_FIGURE3_ARGS,
        settings=analysis_settings("figure3"),
    log:
        LOGS / "analysis" / "figure3.log",
    benchmark:
        BENCH / "analysis" / "figure3.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        CONDA_ENV
    shell:
        "{PYTHON} -m analysis figure3 --real {params.real} --generated {params.generated}"
        " --config-json {params.settings:q}"
        " --out-linear {output[0]} {output[1]} --out-log {output[2]} {output[3]} > {log} 2>&1"


use rule analysis_figure3 as analysis_average_images_all_models with:
    input:
        _ALL_IMAGES,
    output:
        FIGURE3_ALL[0],
        report(FIGURE3_ALL[1], caption="../report/figure3.rst", category="Figures", subcategory="Comparison"),
        FIGURE3_ALL[2],
        report(FIGURE3_ALL[3], caption="../report/figure3.rst", category="Figures", subcategory="Comparison"),
    params:
        real=_REAL_ARGS,
        generated=_ALL_ARGS,
        settings=analysis_settings("figure3"),
    log:
        LOGS / "analysis" / "average_images_all_models.log",
    benchmark:
        BENCH / "analysis" / "average_images_all_models.tsv"


rule analysis_features:
    """CaloChallenge-style figures of one sample: feature distributions and pixel correlations."""
    input:
        real=_real_images("{sample}"),
        generated=lambda wc: [_generated_images(wc.sample, m) for m in ANALYSIS_MODELS],
    output:
        out("figures", "features_{sample}.pdf"),
        report(out("figures", "features_{sample}.png"), caption="../report/features.rst",
               category="Figures", subcategory="Features"),
        out("figures", "correlations_{sample}.pdf"),
        report(out("figures", "correlations_{sample}.png"), caption="../report/correlations.rst",
               category="Figures", subcategory="Correlations"),
    params:
        generated=lambda wc: [f"{m}={_generated_images(wc.sample, m)}" for m in ANALYSIS_MODELS],
        settings=analysis_settings("features"),
    log:
        LOGS / "analysis" / "features_{sample}.log",
    benchmark:
        BENCH / "analysis" / "features_{sample}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        CONDA_ENV
    shell:
        "{PYTHON} -m analysis features --sample {wildcards.sample} --real {input.real}"
        " --generated {params.generated} --config-json {params.settings:q}"
        " --out-features {output[0]} {output[1]} --out-correlations {output[2]} {output[3]} > {log} 2>&1"

# Analysis: isolation (paper eq. 3), EMD table, CaloChallenge-style metrics, Figures 2 and 3.
# Owner: analysis/ (python -m analysis ...). Inputs are ONLY the cached image files
# {sample}/images.h5 and generated/{sample}/{model}.h5, never model checkpoints, so
# `snakemake figures` after a plotting-only change redraws plots and retrains nothing.
# Plot settings are params of the plotting rules only: changing analysis.figure2/figure3/
# features/plots reruns those rules, not the metrics (and vice versa).

ANALYSIS_MODELS = list(GENERATED_MODELS)  # from training.smk (included before), incl. "independent_pixels"


# SAMPLE=PATH and SAMPLE:MODEL=PATH arguments of the multi-sample figure commands.
_REAL_ARGS = [f"{s}={_real_images(s)}" for s in SAMPLES]


# Figures 2 and 3 draw a chosen subset (plotting only): their inputs and arguments, nothing else, depend on it.
FIGURE2_MODELS = _figure_models("figure2")
FIGURE3_MODELS = _figure_models("figure3")
_FIGURE2_IMAGES, _FIGURE2_ARGS = _figure_images(FIGURE2_MODELS), _figure_args(FIGURE2_MODELS)
_FIGURE3_IMAGES, _FIGURE3_ARGS = _figure_images(FIGURE3_MODELS), _figure_args(FIGURE3_MODELS)

FIGURE2 = [out("figures", f"figure2_isolation.{ext}") for ext in ("pdf", "png")]
FIGURE3_LINEAR = [out("figures", f"figure3_average_images_linear.{ext}") for ext in ("pdf", "png")]
FIGURE3_LOG = [out("figures", f"figure3_average_images_log.{ext}") for ext in ("pdf", "png")]
#: the radial ET profile beside Figure 3: its models and the independent-pixel baseline (when generated)
PROFILE_MODELS = FIGURE3_MODELS + [m for m in ANALYSIS_MODELS if m == "independent_pixels" and m not in FIGURE3_MODELS]
_PROFILE_IMAGES, _PROFILE_ARGS = _figure_images(PROFILE_MODELS), _figure_args(PROFILE_MODELS)
#: the many-model comparison of average images (every generated model), beside the paper-layout Figure 3
FIGURE3_ALL = [out("figures", f"average_images_all_models_{scale}.{ext}") for scale in ("linear", "log")
               for ext in ("pdf", "png")]
_ALL_IMAGES, _ALL_ARGS = _figure_images(ANALYSIS_MODELS), _figure_args(ANALYSIS_MODELS)
RADIAL_PROFILE = [out("figures", f"radial_profile.{ext}") for ext in ("pdf", "png")]
EMD_TABLE = [out("tables", f"isolation_emd.{ext}") for ext in ("csv", "md")]
METRICS_TABLE = [out("tables", f"metrics.{ext}") for ext in ("csv", "md")]
RESULTS_TABLE = [out("tables", f"results.{ext}") for ext in ("csv", "md")]
SIMULATION_COST = [out("tables", f"simulation_cost.{ext}") for ext in ("json", "md")]


localrules: analysis_emd_table, analysis_metrics_table, analysis_results_table, analysis_simulation_cost


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
        mem_mb=_images_mem_mb,  # scales with the images: ~1.2 GB at the default scale, ~2.6 GB at paper scale
        runtime=60,
    conda:
        CONDA_ENV
    shell:
        "python -m analysis metrics --real {input.real} --generated {input.generated}"
        " --sample {wildcards.sample} --model {wildcards.model} --seed {params.seed}"
        " --config-json {params.settings:q} --out {output} > {log} 2>&1"


rule analysis_emd_table:
    """Isolation EMD per sample and model beside the paper's values."""
    input:
        _metrics_records(),
    output:
        csv=report(EMD_TABLE[0], caption="../report/isolation_emd.rst", category="Tables"),
        md=EMD_TABLE[1],
    log:
        LOGS / "analysis" / "emd_table.log",
    conda:
        CONDA_ENV
    shell:
        "python -m analysis emd-table --metrics {input} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule analysis_metrics_table:
    """One metrics table for the run (all samples and models)."""
    input:
        _metrics_records(),
    output:
        csv=report(METRICS_TABLE[0], caption="../report/metrics.rst", category="Tables"),
        md=METRICS_TABLE[1],
    log:
        LOGS / "analysis" / "metrics_table.log",
    conda:
        CONDA_ENV
    shell:
        "python -m analysis metrics-table --metrics {input} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


rule analysis_simulation_cost:
    """Simulation CPU per image by step and sample, from the run's own records (the speed-up's numerator).
    The imaging job's benchmark file is read when present (not an input: a missing one reruns nothing)."""
    input:
        chunks=[f for s in SAMPLES for f in simulation_records(s)] if HAS_SIMULATION else [],
        delphes=[f for s in SAMPLES for f in delphes_chunks(s)] if HAS_SIMULATION else [],
        images=[_real_images(s) for s in SAMPLES],
        pileup=pileup_record() if HAS_SIMULATION else [],
    output:
        json=SIMULATION_COST[0],
        md=SIMULATION_COST[1],
    params:
        chunks=[f"{s}={f}" for s in SAMPLES for f in simulation_records(s)] if HAS_SIMULATION else [],
        delphes=[f"{s}={f}" for s in SAMPLES for f in delphes_chunks(s)] if HAS_SIMULATION else [],
        images=[f"{s}={_real_images(s)}" for s in SAMPLES],
        bench=[f"{s}={BENCH / 'imaging' / f'{s}.tsv'}" for s in SAMPLES],
        pileup=" ".join(f"--pileup {f}" for f in pileup_record()) if HAS_SIMULATION else "",
    log:
        LOGS / "analysis" / "simulation_cost.log",
    conda:
        CONDA_ENV
    shell:
        "python -m analysis simulation-cost --chunks {params.chunks} --delphes {params.delphes}"
        " --images {params.images} --imaging-benchmark {params.bench} {params.pileup}"
        " --out-json {output.json} --out-md {output.md} > {log} 2>&1"


rule analysis_results_table:
    """Results table: every model on both samples (EMD, vs baseline, zero-fraction error, AUC, train time,
    speed-up over the simulation)."""
    input:
        metrics=_metrics_records(),
        cost=SIMULATION_COST[0] if HAS_SIMULATION else [],
    output:
        csv=report(RESULTS_TABLE[0], caption="../report/results.rst", category="Tables"),
        md=RESULTS_TABLE[1],
    params:
        cost=f"--simulation-cost {SIMULATION_COST[0]}" if HAS_SIMULATION else "",
    log:
        LOGS / "analysis" / "results_table.log",
    conda:
        CONDA_ENV
    shell:
        "python -m analysis results-table --metrics {input.metrics} {params.cost}"
        " --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


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
        mem_mb=_images_mem_mb,
        runtime=20,
    conda:
        CONDA_ENV
    shell:
        "python -m analysis figure2 --real {params.real} --generated {params.generated}"
        " --config-json {params.settings:q} --out {output} > {log} 2>&1"


rule analysis_figure3:
    """Paper Figure 3: average images real | generated per sample (analysis.figure3.models), linear and log scale."""
    input:
        _FIGURE3_IMAGES,
    output:
        linear_pdf=FIGURE3_LINEAR[0],
        linear_png=report(FIGURE3_LINEAR[1], caption="../report/figure3.rst", category="Figures", subcategory="Paper"),
        log_pdf=FIGURE3_LOG[0],
        log_png=report(FIGURE3_LOG[1], caption="../report/figure3.rst", category="Figures", subcategory="Paper"),
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
        mem_mb=_images_mem_mb,
        runtime=20,
    conda:
        CONDA_ENV
    shell:
        "python -m analysis figure3 --real {params.real} --generated {params.generated}"
        " --config-json {params.settings:q}"
        " --out-linear {output.linear_pdf} {output.linear_png} --out-log {output.log_pdf} {output.log_png} > {log} 2>&1"


rule analysis_radial_profile:
    """Radial ET profile beside Figure 3: mean ET per pixel against dR, real vs its models and the baseline."""
    input:
        _PROFILE_IMAGES,
    output:
        RADIAL_PROFILE[0],
        report(RADIAL_PROFILE[1], caption="../report/radial_profile.rst", category="Figures", subcategory="Paper"),
    params:
        real=_REAL_ARGS,
        generated=_PROFILE_ARGS,
        settings=analysis_settings("radial-profile"),
    log:
        LOGS / "analysis" / "radial_profile.log",
    benchmark:
        BENCH / "analysis" / "radial_profile.tsv"
    threads: 1
    resources:
        mem_mb=_images_mem_mb,
        runtime=20,
    conda:
        CONDA_ENV
    shell:
        "python -m analysis radial-profile --real {params.real} --generated {params.generated}"
        " --config-json {params.settings:q} --out {output} > {log} 2>&1"


use rule analysis_figure3 as analysis_average_images_all_models with:
    input:
        _ALL_IMAGES,
    output:
        linear_pdf=FIGURE3_ALL[0],
        linear_png=report(FIGURE3_ALL[1], caption="../report/figure3.rst", category="Figures", subcategory="Comparison"),
        log_pdf=FIGURE3_ALL[2],
        log_png=report(FIGURE3_ALL[3], caption="../report/figure3.rst", category="Figures", subcategory="Comparison"),
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
        features_pdf=out("figures", "features_{sample}.pdf"),
        features_png=report(out("figures", "features_{sample}.png"), caption="../report/features.rst",
                            category="Figures", subcategory="Features"),
        correlations_pdf=out("figures", "correlations_{sample}.pdf"),
        correlations_png=report(out("figures", "correlations_{sample}.png"), caption="../report/correlations.rst",
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
        mem_mb=_images_mem_mb,
        runtime=20,
    conda:
        CONDA_ENV
    shell:
        "python -m analysis features --sample {wildcards.sample} --real {input.real}"
        " --generated {params.generated} --config-json {params.settings:q}"
        " --out-features {output.features_pdf} {output.features_png}"
        " --out-correlations {output.correlations_pdf} {output.correlations_png} > {log} 2>&1"

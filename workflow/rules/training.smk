# Training + sampling: decoupled sparse generators per sample, and the independent-pixel baseline.
# Rules: train_model (the name `train` is the Snakefile's target), sample_model, baseline.
# Rules only call `python -m model ...`; settings come from config `training:` (schema:
# workflow/schemas/training.schema.yaml). Each model's checkpoints live in
# models/{sample}/{model}/checkpoints/ (not a declared output), so a killed or interrupted
# training job resumes from its last epoch when Snakemake reruns it.
import re

from snakemake.exceptions import WorkflowError

#: `training.run` picks which configured models run (null: all). --configfile merges `models`
#: into config.yaml's, so this is how a run leaves default models out.
if TRAINING.get("run") is None:
    TRAINED_MODELS = list(TRAINING["models"])
else:
    _unknown = sorted(set(TRAINING["run"]) - set(TRAINING["models"]))
    if _unknown:
        raise WorkflowError(
            f"config training.run names {_unknown}, which training.models does not define; "
            f"defined: {sorted(TRAINING['models'])}"
        )
    TRAINED_MODELS = list(dict.fromkeys(TRAINING["run"]))
GENERATED_MODELS = TRAINED_MODELS + ["independent_pixels"]
_TRAINED_RE = "|".join(map(re.escape, TRAINED_MODELS)) or "(?!)"


rule train_model:
    input:
        images=out("{sample}", "images.h5"),
    output:
        model=out("models", "{sample}", "{model}", "model.pt"),
        log=out("models", "{sample}", "{model}", "train_log.csv"),
    wildcard_constraints:
        model=_TRAINED_RE,
    log:
        LOGS / "train" / "{sample}_{model}.log",
    benchmark:
        BENCH / "train" / "{sample}_{model}.tsv"
    params:
        checkpoints=lambda w: out("models", w.sample, w.model, "checkpoints"),
        seed=SEED,
        settings=lambda w: training_settings("train", w.model),
    threads: TRAINING["threads"]
    resources:
        mem_mb=TRAINING["mem_mb"],
        runtime=TRAINING["runtime_min"],
        gpu=TRAINING["gpus"],
    conda:
        CONDA_ENV
    shell:
        "python -m model train --in {input.images} --out {output.model} --log-csv {output.log}"
        " --checkpoint-dir {params.checkpoints} --model-name {wildcards.model} --sample {wildcards.sample}"
        " --seed {params.seed} --config-json {params.settings:q} > {log} 2>&1"


rule sample_model:
    input:
        model=out("models", "{sample}", "{model}", "model.pt"),
        real=out("{sample}", "images.h5"),
    output:
        out("generated", "{sample}", "{model}.h5"),
    wildcard_constraints:
        model=_TRAINED_RE,
    log:
        LOGS / "sample" / "{sample}_{model}.log",
    benchmark:
        BENCH / "sample" / "{sample}_{model}.tsv"
    params:
        seed=SEED,
        settings=lambda w: training_settings("sample", w.model),
    threads: TRAINING["threads"]
    resources:
        mem_mb=TRAINING["mem_mb"],
        runtime=30,
        gpu=TRAINING["gpus"],
    conda:
        CONDA_ENV
    shell:
        "python -m model sample --model {input.model} --real {input.real} --out {output} --model-name {wildcards.model}"
        " --sample {wildcards.sample} --seed {params.seed} --config-json {params.settings:q} > {log} 2>&1"


rule baseline:
    input:
        images=out("{sample}", "images.h5"),
    output:
        out("generated", "{sample}", "independent_pixels.h5"),
    log:
        LOGS / "sample" / "{sample}_independent_pixels.log",
    benchmark:
        BENCH / "sample" / "{sample}_independent_pixels.tsv"
    params:
        seed=SEED,
        settings=training_settings("baseline"),
    threads: 1
    resources:
        mem_mb=TRAINING["mem_mb"],
        runtime=30,
    conda:
        CONDA_ENV
    shell:
        "python -m model baseline --in {input.images} --out {output} --sample {wildcards.sample}"
        " --seed {params.seed} --config-json {params.settings:q} > {log} 2>&1"

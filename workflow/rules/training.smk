# Training + sampling: decoupled sparse generators per sample, and the independent-pixel baseline.
# Rules: train_model (the name `train` is the Snakefile's target), sample_model, baseline.
# Rules only call `python -m model ...`; settings come from config `training:` (schema:
# workflow/schemas/training.schema.yaml). Each model's checkpoints live in
# models/{sample}/{model}/checkpoints/ (not a declared output), so a killed or interrupted
# training job resumes from its last epoch when Snakemake reruns it.
import json
import re

from snakemake.exceptions import WorkflowError

TRAINING = config["training"]
#: top-level keys that are not per-model training settings; every other key of `training:` is a
#: default a model entry may override (what TrainConfig takes, passed as --settings JSON)
_NOT_MODEL_KEYS = ("threads", "gpus", "n_generated", "sample_batch_size", "mem_mb", "runtime_min", "models", "run")
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


def model_settings(model):
    """Top-level training defaults with the model's own overrides applied."""
    settings = {k: v for k, v in TRAINING.items() if k not in _NOT_MODEL_KEYS}
    settings.update(TRAINING["models"][model])
    return settings


def _setting(key):
    return lambda wildcards: model_settings(wildcards.model)[key]


def _n_generated_flag():
    n = TRAINING["n_generated"]
    return "" if n is None else f"--n {int(n)}"


def training_targets():
    """Trained models (+ logs) and generated images for every sample and model."""
    targets = []
    for sample in SAMPLES:
        for model in TRAINED_MODELS:
            targets += [out("models", sample, model, "model.pt"), out("models", sample, model, "train_log.csv")]
        targets += [out("generated", sample, f"{model}.h5") for model in GENERATED_MODELS]
    return targets


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
        settings=lambda w: json.dumps(model_settings(w.model), sort_keys=True),
    threads: TRAINING["threads"]
    resources:
        mem_mb=TRAINING["mem_mb"],
        runtime=TRAINING["runtime_min"],
        gpu=TRAINING["gpus"],
    conda:
        CONDA_ENV
    shell:
        "{PYTHON} -m model train --in {input.images} --out {output.model} --log-csv {output.log}"
        " --checkpoint-dir {params.checkpoints} --model-name {wildcards.model} --sample {wildcards.sample}"
        " --seed {SEED} --settings {params.settings:q} --threads {threads} > {log} 2>&1"


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
        n=_n_generated_flag(),
        batch=TRAINING["sample_batch_size"],
        device=_setting("device"),
    threads: TRAINING["threads"]
    resources:
        mem_mb=TRAINING["mem_mb"],
        runtime=30,
        gpu=TRAINING["gpus"],
    conda:
        CONDA_ENV
    shell:
        "{PYTHON} -m model sample --model {input.model} --real {input.real} --out {output} --model-name {wildcards.model}"
        " --sample {wildcards.sample} --seed {SEED} {params.n} --batch-size {params.batch}"
        " --device {params.device} --threads {threads} > {log} 2>&1"


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
        n=_n_generated_flag(),
    threads: 1
    resources:
        mem_mb=TRAINING["mem_mb"],
        runtime=30,
    conda:
        CONDA_ENV
    shell:
        "{PYTHON} -m model baseline --in {input.images} --out {output} --sample {wildcards.sample}"
        " --seed {SEED} {params.n} --threads {threads} > {log} 2>&1"

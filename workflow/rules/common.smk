# What every stage's .smk uses: config validation, paths, seeds, wildcard constraints, and the
# functions of each stage (targets, input functions, the --config-json of each command), so that
# the stage files hold rules only (the layout of the snakemake-workflows template; `snakemake
# --lint` checks it). Each stage's functions read the constants its own .smk defines.
import errno
import math
import os
import shlex
import sys
from pathlib import Path

import h5py
from analysis.settings import READS as ANALYSIS_READS
from common.settings import SettingsError, check_section, section_json
from model.settings import READS as TRAINING_READS
from simulation.plan import chunk_sizes
from simulation.settings import reads as simulation_reads
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

PROJECT_DIR = Path(workflow.basedir)
SCHEMA_DIR = PROJECT_DIR / "workflow" / "schemas"
CONFIG_SECTIONS = ("simulation", "imaging", "training", "analysis", "fidelity")


def _validate_section(data, schema_file, prefix):
    """Fill in a config section's defaults and check it (common.settings, the validator the stage CLIs use too);
    name every key that is wrong."""
    try:
        check_section(data, schema_file, prefix)
    except SettingsError as exc:
        raise WorkflowError(str(exc)) from None


_validate_section(config, SCHEMA_DIR / "config.schema.yaml", ())
for _section in CONFIG_SECTIONS:
    _schema = SCHEMA_DIR / f"{_section}.schema.yaml"
    if _schema.exists():
        _validate_section(config[_section], _schema, (_section,))

# simulation.container (container backend images and paths) has its own schema; it is
# checked here because its python_image is also the image of the Python stages under
# --use-singularity --use-conda.
_CONTAINER_SCHEMA = PROJECT_DIR / "simulation" / "container" / "config.schema.yaml"
if _CONTAINER_SCHEMA.exists():  # (absent only in stripped-down test workflows)
    _validate_section(config["simulation"].setdefault("container", {}), _CONTAINER_SCHEMA,
                      ("simulation", "container"))


OUTDIR = Path(config["outdir"])
SAMPLES = list(config["samples"])
SEED = int(config["seed"])

# Where each rule runs is decided by the deployment flags (envs/containers.md, "Which flags do
# what"). Rules with an image of their own (the MadGraph/Pythia/Delphes rules) run in it under
# --use-singularity/--use-apptainer. The Python stages (the rules whose `conda` is CONDA_ENV) run
#   - without --use-conda: on this machine, in the Python that runs Snakemake (the venv of
#     `make setup`), also under --use-singularity (no image of theirs, so no container);
#   - with --use-conda: in envs/pipeline.yaml, which Snakemake builds inside
#     simulation.container.python_image (a conda base image) when containers are on too.
from snakemake.settings.types import DeploymentMethod

_DEPLOY = workflow.deployment_settings.deployment_method
USES_CONDA = DeploymentMethod.CONDA in _DEPLOY
USES_CONTAINERS = DeploymentMethod.APPTAINER in _DEPLOY
PYTHON = "python" if USES_CONDA else sys.executable

if USES_CONTAINERS and USES_CONDA and _CONTAINER_SCHEMA.exists():
    # rules without an image of their own: the conda-capable image that envs/pipeline.yaml is built in
    container: config["simulation"]["container"]["python_image"]

if USES_CONTAINERS and "--writable-tmpfs" not in workflow.deployment_settings.apptainer_args.split():
    # MadGraph writes small caches next to its installation inside the image (read-only without it)
    workflow.deployment_settings.apptainer_args = (
        f"{workflow.deployment_settings.apptainer_args} --writable-tmpfs".strip())

# simulation.backend: auto -> the container backend when Snakemake runs containers.
if config["simulation"].get("backend", "auto") == "auto":
    config["simulation"]["backend"] = "container" if USES_CONTAINERS else "native"
if USES_CONTAINERS or USES_CONDA:
    _where = (f"in envs/pipeline.yaml inside {config['simulation'].get('container', {}).get('python_image')}"
              if USES_CONTAINERS and USES_CONDA else "in envs/pipeline.yaml" if USES_CONDA
              else f"on this machine with {sys.executable}, no container")
    logger.info(f"Python stages run {_where} (envs/containers.md).")
CONDA_ENV = str(PROJECT_DIR / "envs" / "pipeline.yaml")
# The package CLIs (python -m simulation|imaging|model|analysis) import from the project
# folder, whatever the working directory (--directory) is. Shell commands call them as
# `python -m ...`: without --use-conda `python` is a shell function for the Python that runs
# Snakemake (so which interpreter runs a job is not a job parameter: a new venv path reruns
# nothing); with it, the environment's own python. Scripts a rule starts (bash ...) do not see
# the function: inside an image they find the image's own python.
# (Snakemake formats the prefix: doubled braces are literal braces.)
_SHELL_PREFIX = f'export PYTHONPATH="{PROJECT_DIR}${{{{PYTHONPATH:+:$PYTHONPATH}}}}"; '
if PYTHON != "python":
    _SHELL_PREFIX += f'python() {{{{ {shlex.quote(PYTHON)} "$@"; }}}}; '
shell.prefix(_SHELL_PREFIX)
LOGS = OUTDIR / "logs"
BENCH = OUTDIR / "benchmarks"


def out(*parts):
    """Path under outdir as a string (Snakemake wants strings)."""
    return str(OUTDIR.joinpath(*map(str, parts)))


#: where the simulation's outputs live (pile-up library, Delphes chunks, generation records):
#: `simulation_outdir`, or outdir when null. A profile that re-images the default run's events
#: (workflow/profiles/correlated) points it at the default run's folder instead of simulating again.
SIM_OUTDIR = Path(config.get("simulation_outdir") or config["outdir"])


def sim_out(*parts):
    """Path under the simulation's output folder as a string."""
    return str(SIM_OUTDIR.joinpath(*map(str, parts)))


wildcard_constraints:
    sample="signal|background",
    chunk=r"\d+",
    model=r"[A-Za-z0-9_]+",


# Config sections of the stages (defaults filled in above).
SIM = config["simulation"]
IMAGING = config["imaging"]
TRAINING = config["training"]
ANALYSIS = config["analysis"]
FID = config["fidelity"]
#: whether this workflow has the simulation's settings: stripped-down test workflows of the analysis
#: rules (toy images, no simulation schema) have none, and their results table no speed-up column
HAS_SIMULATION = "events_per_sample" in SIM


# ---------------------------------------------------------------- simulation (simulation.smk, simulation_container.smk)


def simulation_settings(command, sample=None, section=None):
    """--config-json of `python -m simulation <command>` for `sample`: the keys of `simulation:` (or of
    `section`, a variant of it) that the command reads (simulation/settings.py)."""
    return section_json(section or SIM, simulation_reads(command, sample))


def delphes_chunks(sample):
    """Every Delphes chunk file of one sample (what imaging reads)."""
    n = len(chunk_sizes(SIM["events_per_sample"], SIM["events_per_chunk"]))
    return [sim_out(sample, "delphes", f"chunk{i}.root") for i in range(n)]


def simulation_records(sample):
    """Every chunk's generation record (CPU by step, events) of one sample."""
    n = len(chunk_sizes(SIM["events_per_sample"], SIM["events_per_chunk"]))
    return [sim_out(sample, "generator", f"chunk{i}.json") for i in range(n)]


def pileup_record():
    """The pile-up library's generation record (native backend; the container backend writes none)."""
    return [] if SIM["backend"] == "container" else [sim_out("pileup", "minbias.json")]


def simulation_targets():
    """All Delphes chunk files of the configured samples."""
    return [path for sample in SAMPLES for path in delphes_chunks(sample)]


def _kept_in_chunk(wildcards):
    sizes = chunk_sizes(SIM["events_per_sample"], SIM["events_per_chunk"])
    i = int(wildcards.chunk)
    if i >= len(sizes):
        raise WorkflowError(f"chunk {i} of {wildcards.sample} does not exist: simulation.events_per_sample="
                            f"{SIM['events_per_sample']} makes {len(sizes)} chunks of {SIM['events_per_chunk']}")
    return sizes[i]


def container_lhe_events(wildcards):
    """LHE events per chunk: native kept events per chunk x expected LHE events per kept event."""
    return math.ceil(_kept_in_chunk(wildcards) * _CT["lhe_events_per_kept"][wildcards.sample])


def _work(*parts):
    return sim_out("{sample}", "container", "chunk{chunk}", *parts)


# ---------------------------------------------------------------- imaging (imaging.smk)


def _delphes_chunks(wildcards):
    """Delphes chunk files of a sample (simulation.smk, included before)."""
    return delphes_chunks(wildcards.sample)


def _reweight_reference(wildcards):
    """Signal is reweighted to the background muon pT: background/images.h5, when configured."""
    if wildcards.sample == "signal" and "background" in SAMPLES:
        return out("background", "images.h5")
    return []


def imaging_targets():
    """images.h5 of every configured sample."""
    return [out(sample, "images.h5") for sample in SAMPLES]


# ---------------------------------------------------------------- training (training.smk)


def training_settings(command, model=None):
    """--config-json of `python -m model <command>`: the keys of `training:` it reads (model/settings.py),
    with `models` reduced to `model` (so changing another model does not rerun this one)."""
    override = {} if model is None else {"models": {model: TRAINING["models"][model]}}
    return section_json(TRAINING, TRAINING_READS[command], **override)


def training_targets():
    """Trained models (+ logs) and generated images for every sample and model."""
    targets = []
    for sample in SAMPLES:
        for model in TRAINED_MODELS:
            targets += [out("models", sample, model, "model.pt"), out("models", sample, model, "train_log.csv")]
        targets += [out("generated", sample, f"{model}.h5") for model in GENERATED_MODELS]
    return targets


# ---------------------------------------------------------------- analysis (analysis.smk)


def analysis_settings(command):
    """--config-json of `python -m analysis <command>`: the keys of `analysis:` it reads (analysis/settings.py)."""
    return section_json(ANALYSIS, ANALYSIS_READS[command])


def _images_mem_mb(wildcards, input) -> int:
    """Memory (MB) of a job that holds every image of its input files at once: 1000 MB for Python
    and its libraries plus 8 kB per image (measured for `analysis metrics`: ~0.5 GB peak for
    2,200 + 20,000 images, ~1.4 GB for 100,000 + 100,000). The image counts come from the files'
    HDF5 metadata when the job is scheduled; until the files exist the value is to be determined."""
    n_images = 0
    for path in input:
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "not written yet", path)
        with h5py.File(path, "r") as f:
            n = f["images"].shape[0]
        n_images += n if ANALYSIS["max_images"] is None else min(n, ANALYSIS["max_images"])
    return 1000 + math.ceil(8 * n_images / 1000)


def _real_images(sample):
    return out(sample, "images.h5")


def _generated_images(sample, model):
    return out("generated", sample, f"{model}.h5")


def _metrics_records():
    return [out("analysis", s, f"{m}.metrics.json") for s in SAMPLES for m in ANALYSIS_MODELS]


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


def _figure_images(models):
    return [_real_images(s) for s in SAMPLES] + [_generated_images(s, m) for s in SAMPLES for m in models]


def _figure_args(models):
    return [f"{s}:{m}={_generated_images(s, m)}" for s in SAMPLES for m in models]


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
    return (FIGURE2 + FIGURE3_LINEAR + FIGURE3_LOG + FIGURE3_ALL + RADIAL_PROFILE + per_sample + EMD_TABLE
            + METRICS_TABLE + RESULTS_TABLE)


# ---------------------------------------------------------------- fidelity (fidelity.smk)


#: a fidelity variant's name is card/shape[/pthatN]; in file names and wildcards the parts are
#: joined by VARIANT_KEY_SEP instead
VARIANT_SEP = "/"
VARIANT_KEY_SEP = "__"


def variant_key(name):
    """A fidelity variant's name as used in file names and the {variant} wildcard."""
    return name.replace(VARIANT_SEP, VARIANT_KEY_SEP)


def _events_name(pthat):
    """Event-set name of the background at a pT-hat threshold (the first threshold is plain `background`)."""
    return "background" if pthat == _DEFAULT_PTHAT else f"background_pthat{pthat:g}"


def _pthat_of(events):
    return float(events.split("_pthat")[1]) if "_pthat" in events else _DEFAULT_PTHAT


def fidelity_variants():
    """(name, card, tower_shape, background event set, pT-hat) of every variant of the study."""
    variants = []
    for pthat in FID["pthat_min_gev"]:
        cards = FID_CARDS if pthat == _DEFAULT_PTHAT else FID["pthat_cards"]
        for card in cards:
            for shape in FID["tower_shapes"]:
                parts = [card, shape] + ([] if pthat == _DEFAULT_PTHAT else [f"pthat{pthat:g}"])
                variants.append((VARIANT_SEP.join(parts), card, shape, _events_name(pthat), pthat))
    return variants


def _fid_chunks():
    return range(len(chunk_sizes(FID["events_per_sample"], FID["events_per_chunk"])))


def _fid_delphes(card, events):
    return [out(*FID_DIR, "delphes", card, events, f"chunk{i}.root") for i in _fid_chunks()]


def _fid_images(card, shape, events):
    return out(*FID_DIR, "images", card, shape, f"{events}.h5")


def _fid_record(name):
    return out(*FID_DIR, "records", f"{variant_key(name)}.json")


def _fid_reference(w):
    """Signal is reweighted to the background muon pT of the same card and rendering."""
    return _fid_images(w.card, w.shape, "background") if w.events == "signal" else []


def _fid_variant_inputs(w):
    name, card, shape, events, pthat = _FID_VARIANTS[w.variant]
    return {
        "signal": _fid_images(card, shape, "signal"),
        "background": _fid_images(card, shape, events),
        "delphes_signal": _fid_delphes(card, "signal"),
        "delphes_background": _fid_delphes(card, events),
    }

# Shared by every rule file: config validation, paths, seeds, wildcard constraints.
import os
import sys
from pathlib import Path

from common.settings import SettingsError, check_section, section_json
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
# checked here because its python_image is also the image of every Python stage.
_CONTAINER_SCHEMA = PROJECT_DIR / "simulation" / "container" / "config.schema.yaml"
if _CONTAINER_SCHEMA.exists():  # (absent only in stripped-down test workflows)
    _validate_section(config["simulation"].setdefault("container", {}), _CONTAINER_SCHEMA,
                      ("simulation", "container"))

    # With --use-apptainer, rules without an image of their own run in this conda-capable
    # image, where `conda:` (envs/pipeline.yaml) builds the Python environment (envs/containers.md).
    container: config["simulation"]["container"]["python_image"]


OUTDIR = Path(config["outdir"])
SAMPLES = list(config["samples"])
SEED = int(config["seed"])

# Which Python runs the package CLIs: by default the one that runs Snakemake (the project
# venv); with --use-conda / --use-apptainer, the `python` of the rule's environment.
from snakemake.settings.types import DeploymentMethod

_DEPLOY = workflow.deployment_settings.deployment_method
USES_CONDA = DeploymentMethod.CONDA in _DEPLOY
USES_CONTAINERS = DeploymentMethod.APPTAINER in _DEPLOY
PYTHON = "python" if (USES_CONDA or USES_CONTAINERS) else sys.executable

# simulation.backend: auto -> the container backend when Snakemake runs containers.
if config["simulation"].get("backend", "auto") == "auto":
    config["simulation"]["backend"] = "container" if USES_CONTAINERS else "native"
if USES_CONTAINERS and not USES_CONDA:
    logger.warning(
        "Containers are on but conda is not: the Python stages run in simulation.container.python_image "
        "with envs/pipeline.yaml only when --use-conda is given too. Use "
        "`snakemake --cores 16 --use-singularity --use-conda` or `--profile workflow/profiles/paper`."
    )
CONDA_ENV = str(PROJECT_DIR / "envs" / "pipeline.yaml")
# The package CLIs (python -m simulation|imaging|model|analysis) import from the project
# folder, whatever the working directory (--directory) is.
# (Snakemake formats the prefix: doubled braces are literal braces.)
shell.prefix('export PYTHONPATH="' + str(PROJECT_DIR) + '${{PYTHONPATH:+:$PYTHONPATH}}"; ')
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

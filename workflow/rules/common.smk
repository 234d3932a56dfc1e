# Shared by every rule file: config validation, paths, seeds, wildcard constraints.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

PROJECT_DIR = Path(workflow.basedir)
SCHEMA_DIR = PROJECT_DIR / "workflow" / "schemas"
CONFIG_SECTIONS = ("simulation", "imaging", "training", "analysis")


def _validate_section(data, schema_file, where):
    """Validate (and fill defaults of) one config section; name the key that is wrong."""
    try:
        validate(data, str(schema_file), set_default=True)
    except WorkflowError as exc:
        raise WorkflowError(
            f"config error in {where} (schema {schema_file.relative_to(PROJECT_DIR)}):\n{exc}\n"
            "Fix the key named above in your config file (see config.yaml for the documented defaults)."
        ) from None


_validate_section(config, SCHEMA_DIR / "config.schema.yaml", "the top level of the config")
for _section in CONFIG_SECTIONS:
    _schema = SCHEMA_DIR / f"{_section}.schema.yaml"
    if _schema.exists():
        _validate_section(config[_section], _schema, f"section '{_section}:'")

OUTDIR = Path(config["outdir"])
SAMPLES = list(config["samples"])
SEED = int(config["seed"])
# Python of the environment that runs Snakemake (the project venv, or the conda env).
PYTHON = sys.executable
LOGS = OUTDIR / "logs"
BENCH = OUTDIR / "benchmarks"


def out(*parts):
    """Path under outdir as a string (Snakemake wants strings)."""
    return str(OUTDIR.joinpath(*map(str, parts)))


wildcard_constraints:
    sample="signal|background",
    chunk=r"\d+",
    model=r"[A-Za-z0-9_]+",

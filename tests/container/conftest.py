"""Fixtures of the container-backend tests."""
from __future__ import annotations

import os
import sys

import pytest

# What Snakemake asks a conda installation while it plans an environment in a dry run (inside
# an image under --use-singularity --use-conda, on this machine under --use-conda alone).
_CONDA_ANSWERS = """
  *"info --json"*) echo '{"conda_prefix": "/opt/conda", "platform": "linux-64"}'; exit 0;;
  *"conda --version"*) echo "conda 24.9.2"; exit 0;;
  *"type conda"*) echo "conda is /opt/conda/bin/conda"; exit 0;;
  *"channel_priority"*) echo '{"get": {"channel_priority": "strict"}}'; exit 0;;"""


@pytest.fixture(scope="session")
def native_tools(delphes) -> dict:
    """simulation.container settings that run the container rules' commands with native tools."""
    return {"shower_command": f"{sys.executable} -m simulation.container shower",
            "delphes_bin": str(delphes / "bin")}


@pytest.fixture(scope="module")
def fake_runtime(tmp_path_factory) -> dict:
    """Environment whose PATH has a stand-in `apptainer` and `conda`: they answer what Snakemake
    asks while it plans a run (the version; conda's info, inside an image or not) and refuse to
    run anything else, so a dry run (which pulls and builds nothing) works without either."""
    bin_dir = tmp_path_factory.mktemp("bin")
    for name, query in (("apptainer", "apptainer version 1.3.4"), ("conda", "conda 24.9.2")):
        exe = bin_dir / name
        exe.write_text(f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "{query}"; exit 0; fi\n'
                       f'case "$*" in{_CONDA_ANSWERS}\nesac\n'
                       f'echo "stand-in {name}: these tests run nothing in it: $*" >&2; exit 1\n')
        exe.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

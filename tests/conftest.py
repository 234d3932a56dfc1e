"""Fixtures shared by every test package: project paths and the Delphes install."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1]


def delphes_dir() -> Path:
    """Delphes install used by the pipeline: $DELPHES_DIR or <project>/.deps/delphes."""
    return Path(os.environ.get("DELPHES_DIR", PROJECT_DIR / ".deps" / "delphes")).resolve()


@pytest.fixture(scope="session")
def project_dir() -> Path:
    return PROJECT_DIR


@pytest.fixture(scope="session")
def delphes() -> Path:
    """The Delphes install; fails (not skips) when missing: `make setup` builds it."""
    d = delphes_dir()
    if not (d / "bin" / "DelphesHepMC2").exists():
        pytest.fail(f"Delphes is not built in {d}: run `make setup` (or set DELPHES_DIR)")
    return d


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable

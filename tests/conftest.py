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


@pytest.fixture(scope="session")
def seeded_stock_card(delphes):
    """Write a stock Delphes card with a fixed `RandomSeed` (the stock cards' 0 means a time-based
    seed, so their output differs run to run); `replace` maps card text to its replacement."""
    def write(path: Path, seed: int, name: str = "delphes_card_CMS.tcl", replace: dict[str, str] | None = None) -> Path:
        text = (delphes / "cards" / name).read_text()
        for old, new in (replace or {}).items():
            if old not in text:
                raise AssertionError(f"stock card {name} no longer contains {old!r}")
            text = text.replace(old, new)
        path.write_text(f"set RandomSeed {seed}\n" + text)
        return path
    return write

"""Fixtures for the imaging tests: small Delphes-schema ROOT files written with uproot."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from imaging.synthetic import write_delphes_file


@pytest.fixture
def delphes_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory: write_delphes_file into tmp_path under a fresh name."""
    counter = iter(range(10**6))

    def make(towers, muons, event_weight=None, *, name: str | None = None, **kwargs) -> Path:
        path = tmp_path / (name or f"chunk{next(counter)}.root")
        return write_delphes_file(path, towers, muons, event_weight, **kwargs)

    return make

"""Shared fixtures of the simulation tests: one small real pile-up library per session."""
from __future__ import annotations

from pathlib import Path

import pytest

from common.seeds import chunk_seed
from simulation.pileup import make_pileup_library

#: Small but real: Pythia SoftQCD events converted by Delphes' hepmc2pileup.
LIBRARY_EVENTS = 60


@pytest.fixture(scope="session")
def pileup_library(tmp_path_factory, delphes) -> Path:
    """A real minimum-bias library (takes ~15-30 s: Pythia's SoftQCD initialisation)."""
    path = tmp_path_factory.mktemp("pileup") / "minbias.pileup"
    make_pileup_library(path, LIBRARY_EVENTS, chunk_seed(7, "minbias", 0, "pythia"), batch_size=LIBRARY_EVENTS)
    return path

"""Fixtures of the container-backend tests."""
from __future__ import annotations

import sys

import pytest


@pytest.fixture(scope="session")
def native_tools(delphes) -> dict:
    """simulation.container settings that run the container rules' commands with native tools."""
    return {"shower_command": f"{sys.executable} -m simulation.container shower",
            "delphes_bin": str(delphes / "bin")}

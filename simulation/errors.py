"""The simulation stage's one exception type: a known, explained failure (CLI exits 2)."""
from __future__ import annotations

from common.errors import StageError


class SimulationError(StageError, RuntimeError):
    """Bad input or a failed step of the simulation; the message names the chunk/file and the fix."""

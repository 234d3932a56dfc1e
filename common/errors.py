"""The base of every stage's known error (the CLI prints `error: <message>` and exits 2)."""
from __future__ import annotations


class StageError(Exception):
    """A known, explained failure of a stage: bad input, bad setting or a failed step.

    The message says what was wrong, which file or key, and what to do. Each stage subclasses
    it (SimulationError, ImagingError, ModelError, AnalysisError, ImageFileError); the CLI entry
    in `common.cli` reports any of them without a traceback.
    """

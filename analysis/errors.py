"""The analysis stage's known error: bad inputs or settings, reported without a traceback."""
from __future__ import annotations

from common.errors import StageError


class AnalysisError(StageError, ValueError):
    """An input file or setting cannot be analysed; the message says which and what to do."""

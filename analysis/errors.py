"""The analysis stage's known error: bad inputs or settings, reported without a traceback."""
from __future__ import annotations


class AnalysisError(ValueError):
    """An input file or setting cannot be analysed; the message says which and what to do."""

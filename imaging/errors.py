"""The imaging stage's known-error class (the CLI prints it as `error: ...`, exit 2)."""
from __future__ import annotations

from common.errors import StageError


class ImagingError(StageError, ValueError):
    """Bad input to the imaging stage: unreadable/non-Delphes file, missing branch, no muons."""

"""The model stage's known-error class: the CLI prints `error: <message>` and exits 2."""
from __future__ import annotations

from common.errors import StageError


class ModelError(StageError, RuntimeError):
    """Bad input or configuration for training/sampling; the message says what to do."""

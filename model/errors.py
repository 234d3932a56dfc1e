"""The model stage's known-error class: the CLI prints `error: <message>` and exits 2."""


class ModelError(RuntimeError):
    """Bad input or configuration for training/sampling; the message says what to do."""

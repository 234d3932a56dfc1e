"""The config's `training:` section as the model stage reads it: which keys each command reads, and
the settings of one model (the top-level defaults with the model's own entry applied).

The rules pass exactly READS[command] as --config-json, with `models` reduced to the one model
(so changing another model, or a sampling key, does not retrain this one); the CLI builds its
settings from exactly these keys (schema defaults for those a by-hand call leaves out). Keys,
types and defaults: workflow/schemas/training.schema.yaml, whose `models` entries also define
which top-level keys are per-model settings. No torch here: the workflow reads this module.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.settings import load_schema, schema_path

from .errors import ModelError


def model_keys() -> tuple[str, ...]:
    """Per-model settings: the keys a `training.models` entry may set, but `arch` (which each entry sets)."""
    entry = load_schema(schema_path("training"))["properties"]["models"]["additionalProperties"]["properties"]
    return tuple(k for k in entry if k != "arch")


MODEL_KEYS = model_keys()
READS: dict[str, tuple[str, ...]] = {
    "train": (*MODEL_KEYS, "threads", "models"),
    "sample": ("device", "n_generated", "sample_batch_size", "sample_batch_size_cuda", "threads", "models"),
    "baseline": ("n_generated",),
}


def model_settings(section: Mapping[str, Any], model: str) -> dict[str, Any]:
    """Settings of model `model`: the section's top-level per-model keys, then the model's entry."""
    models = section.get("models") or {}
    if model not in models:
        raise ModelError(f"training.models has no entry '{model}' (--model-name); configured: {sorted(models)}")
    return {**{k: section[k] for k in MODEL_KEYS if k in section}, **models[model]}

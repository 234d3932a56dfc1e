"""Config sections checked against their schema: the one validator of the workflow and the stage CLIs.

The schemas in workflow/schemas/ are the single source of every config key, its type and its
default. The Snakefile checks config.yaml with `check_section` (defaults filled in); each rule
then hands its stage CLI the part of its section that the command reads as one JSON object
(`--config-json`), and the CLI checks it against the same schema with the same function, so a
key a rule leaves out (or a user running the CLI by hand) takes the schema's default.

`select(section, keys)` is how both sides agree on that part: a stage lists, per command, the
top-level keys it reads (its `READS` table); the rule passes exactly those (so changing another
key does not rerun the job) and the CLI builds its settings from exactly those (so a key it
reads but did not declare is an error in the tests, not a silent default in the workflow).
"""
from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import StageError

#: workflow/schemas/ of the project this package belongs to
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "workflow" / "schemas"


class SettingsError(StageError, ValueError):
    """A config section (or a --config-json object) does not match its schema."""


def schema_path(section: str) -> Path:
    """workflow/schemas/<section>.schema.yaml."""
    return SCHEMA_DIR / f"{section}.schema.yaml"


@functools.cache
def _load_schema(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise SettingsError(f"schema {p} not found: the stage CLIs read workflow/schemas/ of the project folder")
    return yaml.safe_load(p.read_text())


def load_schema(path: Path) -> dict[str, Any]:
    """The schema at `path` (YAML or JSON), parsed once per process; do not modify it."""
    return _load_schema(str(Path(path).resolve()))


def _with_defaults(validator_class: type) -> type:
    """A validator class that fills in each property's `default` where the instance lacks it."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultingValidator = _with_defaults(jsonschema.Draft202012Validator)


def check_section(data: dict[str, Any], schema_file: Path, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """Fill in `data`'s defaults from `schema_file` (in place) and check it; returns `data`.

    A SettingsError names every key that is wrong (as `section.key.subkey`) and the schema file.
    """
    schema = load_schema(schema_file)
    validator = _DefaultingValidator(schema)
    problems = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        key = ".".join([*prefix, *map(str, err.absolute_path)]) or "<top level>"
        problems.append(f"  - key '{key}': {err.message}")
    if problems:
        where = f"section '{'.'.join(prefix)}:'" if prefix else "the top level"
        raise SettingsError(
            f"config error in {where} (checked against {_shown(schema_file)}):\n" + "\n".join(problems)
            + "\nFix these keys in your config file; config.yaml and the schema document every key."
        )
    return data


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(SCHEMA_DIR.parents[1]))
    except ValueError:
        return str(path)


def select(section: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The part of a config section a command reads: its keys that are in `keys`."""
    keys = tuple(keys)
    return {k: v for k, v in section.items() if k in keys}


def section_json(section: Mapping[str, Any], keys: Iterable[str] | None = None, **override: Any) -> str:
    """What a rule passes as --config-json: the section (or its `keys`), with `override` applied."""
    part = dict(section) if keys is None else select(section, keys)
    part.update(override)
    return json.dumps(part, sort_keys=True)


def parse_section(text: str | None, section: str, keys: Iterable[str] | None = None,
                  schema_file: Path | None = None) -> dict[str, Any]:
    """A --config-json value checked against the section's schema, defaults filled in, restricted to `keys`.

    `text` is a JSON object (or `@path` to a JSON file); None or empty means every key takes its default.
    """
    if text and text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            raise SettingsError(f"--config-json {text}: cannot read the file ({exc})") from None
    try:
        data = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise SettingsError(f"--config-json is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"--config-json must be a JSON object (the config's `{section}:` section), got {text!r}")
    check_section(data, schema_file or schema_path(section), (section,))
    return data if keys is None else select(data, keys)


def describe_keys(section: str, keys: Iterable[str] | None = None, schema_file: Path | None = None) -> str:
    """`key (default X)` for each key a command reads, for --help."""
    props = load_schema(schema_file or schema_path(section)).get("properties", {})
    names = list(props) if keys is None else [k for k in keys if k in props]
    text = ", ".join(f"{k} (default {json.dumps(props[k]['default'])})" if "default" in props[k] and
                     not isinstance(props[k]["default"], dict) else k for k in names)
    return text.replace("%", "%%")  # argparse formats help strings


def add_config_argument(parser: Any, section: str, keys: Iterable[str] | None = None) -> None:
    """The --config-json option of a stage command that reads `keys` of config section `section`."""
    parser.add_argument(
        "--config-json", metavar="JSON", default=None,
        help=f"settings: the config's `{section}:` section as a JSON object (or @file.json), as the workflow "
             f"passes it; keys left out take their default from workflow/schemas/{section}.schema.yaml. "
             f"This command reads: {describe_keys(section, keys)}",
    )

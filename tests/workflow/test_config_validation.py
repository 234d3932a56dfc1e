"""config.yaml is validated at start-up: unknown keys and wrong types stop with a readable message."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]


def dry_run(workdir: Path, overrides: dict | None = None, *targets: str) -> subprocess.CompletedProcess:
    """`snakemake -n` of the project's Snakefile in `workdir`, with an override config file."""
    cmd = [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--snakefile", str(PROJECT_DIR / "Snakefile"),
           "--directory", str(workdir)]
    if overrides is not None:
        cfg = workdir / "override.yaml"
        cfg.write_text(yaml.safe_dump(overrides))
        cmd += ["--configfile", str(cfg)]
    return subprocess.run([*cmd, *targets], capture_output=True, text=True, timeout=300)


def test_default_config_validates(tmp_path):
    proc = dry_run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"seeed": 1}, ["seeed", "top level", "Additional properties"]),
        ({"seed": "abc"}, ["key 'seed'", "'abc' is not of type 'integer'"]),
        ({"samples": ["signal", "ttbar"]}, ["ttbar"]),
        ({"seed": -1}, ["-1", "minimum"]),
    ],
)
def test_bad_config_stops_with_message_naming_the_key(tmp_path, overrides, expected):
    proc = dry_run(tmp_path, overrides)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    for text in expected:
        assert text in output, f"{text!r} not in:\n{output[-3000:]}"
    assert "Traceback" not in output


@pytest.mark.parametrize("section", ["simulation", "imaging", "training", "analysis"])
def test_unknown_key_in_a_section_is_rejected(tmp_path, section):
    proc = dry_run(tmp_path, {section: {"no_such_option": 1}})
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "no_such_option" in output and f"section '{section}:'" in output, output[-3000:]

"""Lint checks as tests, so that `make test` (and CI) enforce them.

- `ruff check` over the Python code with the rules of pyproject.toml ([tool.ruff]);
- `snakemake --lint` over the workflow, with the default config (native simulation backend)
  and with the container backend (whose rules are only defined then).

`ruff format --check` is not run: the code keeps its compact hand layout (reformatting it
would rewrite most lines of every module for no change in behaviour); the line length and
whitespace rules of `ruff check` (E, W) hold it together.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    """The pinned ruff of the environment (envs/requirements.txt): the module, else the executable on PATH."""
    if importlib.util.find_spec("ruff") is not None:
        return [sys.executable, "-m", "ruff"]
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed: `make setup` installs it (envs/requirements.txt)")
    return [exe]


def test_ruff_check_finds_nothing():
    proc = subprocess.run([*_ruff(), "check", "--no-cache", "--output-format", "concise", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (f"ruff check found problems (fix them; `ruff check --fix` fixes some):\n"
                                  f"{proc.stdout[-6000:]}{proc.stderr[-2000:]}")


def test_ruff_is_the_pinned_version():
    pinned = [line.split("==")[1].strip() for line in (ROOT / "envs" / "requirements.txt").read_text().splitlines()
              if line.startswith("ruff==")]
    assert len(pinned) == 1, "envs/requirements.txt pins ruff once"
    version = subprocess.run([*_ruff(), "--version"], capture_output=True, text=True, timeout=60).stdout.split()
    assert version[-1] == pinned[0], f"ruff {version[-1]} is installed, envs/requirements.txt pins {pinned[0]}"


@pytest.mark.slow  # two Snakemake start-ups
@pytest.mark.parametrize("backend", ["native", "container"])
def test_snakemake_lint_finds_nothing(tmp_path, backend):
    config = tmp_path / "backend.yaml"
    config.write_text(yaml.safe_dump({"simulation": {"backend": backend}}))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(ROOT / "config.yaml"), str(config), "--lint"],
        capture_output=True, text=True, timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Lints for" not in output, (
        f"snakemake --lint ({backend} backend):\n{output[-6000:]}")
    assert "your workflow is in a good condition" in output

"""Helpers of the container-backend tests: run the project's workflow, place LHE files."""
from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import yaml

PROJECT_DIR = Path(__file__).resolve().parents[2]
from lhe_builder import write_lhe  # noqa: E402  (same folder: on sys.path under pytest)


def snakemake(workdir: Path, *args: str, overrides: dict | None = None, env: dict | None = None,
              snakefile: Path = PROJECT_DIR / "Snakefile", timeout: int = 900) -> subprocess.CompletedProcess:
    """`snakemake` on the project's Snakefile in `workdir`, with an optional override config file."""
    cmd = [sys.executable, "-m", "snakemake", *args, "--snakefile", str(snakefile), "--directory", str(workdir)]
    if overrides is not None:
        cfg = workdir / "override.yaml"
        cfg.write_text(yaml.safe_dump(overrides))
        cmd += ["--configfile", str(cfg)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)


def place_lhe(path: Path, process: str, n_events: int, seed: int) -> Path:
    """A gzipped LHE file where the gridpack rule would put it (MG5 cannot run here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plain = write_lhe(path.with_suffix(""), process, n_events, seed)
    with open(plain, "rb") as src, gzip.open(path, "wb") as dst:
        dst.write(src.read())
    plain.unlink()
    return path

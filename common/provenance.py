"""Provenance shared by every stage: config digests, software versions, atomic outputs.

Every output file of the pipeline records where it came from (config digest, seeds,
versions) and is written under a temporary name and renamed only when complete, so a
killed job never leaves a partial file under its final name.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import sys
import uuid
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions go into every output's metadata.
TRACKED_PACKAGES = ("numpy", "scipy", "uproot", "awkward", "h5py", "torch", "pythia8mc", "pyhepmc", "snakemake")


def config_digest(obj: Any) -> str:
    """sha256 (hex, 16 chars) of a JSON-serialisable object with sorted keys."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_digest(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """sha256 (hex, 16 chars) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk_bytes), b""):
            h.update(block)
    return h.hexdigest()[:16]


def software_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """Versions of Python and the tracked packages that are installed."""
    versions = {"python": platform.python_version()}
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def provenance(config: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """Provenance record: config digest, versions, command line, plus `extra` (seeds, inputs)."""
    record: dict[str, Any] = {
        "software_versions": software_versions(),
        "command": " ".join(sys.argv),
    }
    if config is not None:
        record["config_digest"] = config_digest(config)
    record.update(extra)
    return record


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it to `path` only if the block succeeds.

    The temporary name keeps the suffix (tools such as ROOT infer the format from it) and
    lives in the same directory, so the final rename is atomic on POSIX file systems.
    On any exception the temporary file is removed and `path` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:8]}.tmp{final.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_output: nothing was written to {tmp} for {final}")
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()

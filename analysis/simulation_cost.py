"""What one real image costs to simulate: CPU seconds per image by step and sample, from the run's own records.

Generative models exist to replace this cost; the results table divides it by what a generated
image costs (the speed-up column, analysis/results_table.py). Sources, all written by the workflow:
- `{sample}/generator/chunk{i}.json`: CPU seconds of Pythia, the generator-level muon filter and the
  HepMC2 writing (`generation.seconds`), and the events kept; since issue 24 also Delphes' CPU
  (`delphes_cpu_s`, pipe transport);
- `{sample}/delphes/chunk{i}.root`: Delphes' CPU in the file's provenance (`delphes_cpu_s`), read when
  the chunk record lacks it (file transport, runs made before);
- `pileup/minbias.json`: CPU of the minimum-bias library, shared by every sample and charged to each
  image in equal parts (the library's own Delphes conversion is not recorded and is small);
- `benchmarks/imaging/{sample}.tsv` (optional): the imaging job's CPU as Snakemake's benchmark measured
  it (the whole job, interpreter start-up included);
- `{sample}/images.h5`: how many images the sample's events gave.
A step whose record is missing stays None; the total then is None too (never an estimate).
"""
from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import uproot

from common.provenance import atomic_output

from .errors import AnalysisError
from .tables import markdown_table, write_text

log = logging.getLogger(__name__)

#: the steps of a simulated image, in the order of the tables
STEPS = ("generation", "delphes", "imaging", "pileup_share")
STEP_LABELS = {"generation": "generation (Pythia + filter + HepMC2)", "delphes": "Delphes (with pile-up)",
               "imaging": "imaging", "pileup_share": "pile-up library (shared)"}


@dataclass
class SampleRecords:
    """The records of one sample: chunk JSONs, their Delphes files, images.h5, the imaging benchmark."""

    chunks: list[Path]
    images: Path
    delphes: list[Path] = field(default_factory=list)
    imaging_benchmark: Path | None = None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise AnalysisError(f"{path}: no such simulation record; run the simulation first") from None
    except json.JSONDecodeError as exc:
        raise AnalysisError(f"{path}: not valid JSON ({exc}); delete it and re-run its simulation job") from None
    if not isinstance(data, dict):
        raise AnalysisError(f"{path}: not a simulation record (a JSON object); re-run its simulation job")
    return data


def generation_cpu_s(record: Mapping[str, Any], source: Path) -> float | None:
    """Pythia + filter + HepMC2 CPU seconds of a generation record (None when it has no timings)."""
    seconds = (record.get("generation") or {}).get("seconds")
    if not isinstance(seconds, Mapping) or not seconds:
        return None
    try:
        return float(sum(float(v) for v in seconds.values()))
    except (TypeError, ValueError):
        raise AnalysisError(f"{source}: generation.seconds {dict(seconds)!r} are not numbers of seconds") from None


def delphes_file_cpu_s(path: Path) -> float | None:
    """Delphes' CPU seconds from the provenance stored in a chunk's ROOT file (None if not recorded)."""
    try:
        with uproot.open(path) as f:
            record = json.loads(str(f["provenance"]))
    except (OSError, KeyError, ValueError) as exc:
        raise AnalysisError(f"{path}: cannot read the Delphes provenance ({exc}); re-run its simulation job") from None
    value = record.get("delphes_cpu_s")
    return None if value is None else float(value)


def imaging_cpu_s(path: Path | None) -> float | None:
    """CPU seconds of the imaging job from Snakemake's benchmark TSV (column cpu_time); None if absent."""
    if path is None or not Path(path).is_file():
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    try:
        return float(rows[-1]["cpu_time"])
    except (IndexError, KeyError, ValueError):
        raise AnalysisError(f"{path}: not a Snakemake benchmark file with a cpu_time column; delete it") from None


def n_images(path: Path) -> int:
    """Number of images in an images.h5 file."""
    try:
        with h5py.File(path, "r") as f:
            return int(f["images"].shape[0])
    except (OSError, KeyError) as exc:
        raise AnalysisError(f"{path}: cannot read /images ({exc}); re-run the imaging step") from None


def _sum(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else float(sum(values))  # type: ignore[arg-type]


def sample_cost(records: SampleRecords) -> dict[str, Any]:
    """CPU seconds of one sample by step (pile-up share not yet included), events and images."""
    if not records.chunks:
        raise AnalysisError(f"{records.images}: no simulation chunk records given")
    if records.delphes and len(records.delphes) != len(records.chunks):
        raise AnalysisError(f"{len(records.chunks)} chunk records but {len(records.delphes)} Delphes files")
    generation, delphes, kept, generated, sources = [], [], 0, 0, set()
    for i, path in enumerate(records.chunks):
        rec = _read_json(path)
        generation.append(generation_cpu_s(rec, path))
        gen = rec.get("generation") or {}
        kept += int(gen.get("kept", 0))
        generated += int(gen.get("generated", 0))
        seconds = rec.get("delphes_cpu_s")
        if seconds is not None:
            sources.add("chunk records")
        elif records.delphes:
            seconds = delphes_file_cpu_s(records.delphes[i])
            sources.add("Delphes files")
        delphes.append(None if seconds is None else float(seconds))
    images = n_images(records.images)
    if images < 1:
        raise AnalysisError(f"{records.images}: holds no image; the simulation cost per image is undefined")
    return {"n_images": images, "n_chunks": len(records.chunks), "events_kept": kept, "events_generated": generated,
            "delphes_cpu_source": ", ".join(sorted(sources)) or None,
            "cpu_s": {"generation": _sum(generation), "delphes": _sum(delphes),
                      "imaging": imaging_cpu_s(records.imaging_benchmark)}}


def simulation_cost(samples: Mapping[str, SampleRecords], pileup: Path | None = None) -> dict[str, Any]:
    """Per sample: CPU seconds by step, per image (ms) and in total (s per image); see the module docstring."""
    if not samples:
        raise AnalysisError("no samples given")
    out = {name: sample_cost(rec) for name, rec in samples.items()}
    pileup_cpu = None
    if pileup is not None:
        pileup_cpu = generation_cpu_s(_read_json(pileup), pileup)
    all_images = sum(s["n_images"] for s in out.values())
    for name, s in out.items():
        cpu = s["cpu_s"]
        cpu["pileup_share"] = None if pileup_cpu is None else pileup_cpu * s["n_images"] / all_images
        if cpu["imaging"] is None:
            log.warning("%s: no imaging benchmark record; the imaging step stays out of the total", name)
        known = [cpu[k] for k in ("generation", "delphes")]
        total = _sum(known)
        if total is not None:
            total += sum(cpu[k] or 0.0 for k in ("imaging", "pileup_share"))
        s["cpu_ms_per_image"] = {k: None if v is None else 1e3 * v / s["n_images"] for k, v in cpu.items()}
        s["total_cpu_s_per_image"] = None if total is None else total / s["n_images"]
        if total is None:
            log.warning("%s: generation or Delphes CPU not recorded; no simulation cost per image", name)
    return {"samples": out, "pileup_library_cpu_s": pileup_cpu,
            "note": "CPU seconds (user + system) of one core; total = generation + Delphes + imaging (when recorded) "
                    "+ the sample's share of the pile-up library, over the sample's images"}


def _ms(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.1f}"


def simulation_cost_markdown(cost: Mapping[str, Any]) -> str:
    """One row per sample: images, events, CPU per image by step and in total (ms)."""
    header = ["sample", "images", "kept events", *(f"{STEP_LABELS[k]} [ms]" for k in STEPS), "total [ms / image]"]
    rows = []
    for name, s in cost["samples"].items():
        per = s["cpu_ms_per_image"]
        total = s["total_cpu_s_per_image"]
        rows.append([name, str(s["n_images"]), str(s["events_kept"]), *(_ms(per[k]) for k in STEPS),
                     _ms(None if total is None else 1e3 * total)])
    return "\n".join(["# Simulation cost per image (CPU, one core)\n",
                      "CPU milliseconds per real image, from the run's chunk records (docs/benchmarks.md); "
                      "the pile-up library is shared by all samples and charged per image.\n",
                      markdown_table(header, rows)])


def write_simulation_cost(samples: Mapping[str, SampleRecords], pileup: Path | None, out_json: str | Path,
                          out_md: str | Path) -> dict[str, Any]:
    """Compute the simulation cost per image and write it as JSON and Markdown (atomic)."""
    cost = simulation_cost(samples, pileup)
    with atomic_output(out_json) as tmp:
        Path(tmp).write_text(json.dumps(cost, indent=1, sort_keys=True))
    write_text(out_md, simulation_cost_markdown(cost))
    return cost


def read_simulation_cost(path: str | Path) -> dict[str, float | None]:
    """Simulation CPU seconds per image by sample from a simulation_cost.json."""
    data = _read_json(Path(path))
    try:
        return {name: s["total_cpu_s_per_image"] for name, s in data["samples"].items()}
    except (KeyError, TypeError, AttributeError):
        raise AnalysisError(f"{path}: not a simulation-cost record; re-run `python -m analysis simulation-cost`") \
            from None

"""Results table of the run: every model (decoupled, GAN, VAE, baseline) on both samples, one row each.

Reads the per-(sample, model) metrics records and puts side by side what decides between
models: isolation EMD (paper metric) with its statistical floor and relative to the
independent-pixel baseline of the same sample, the zero-pixel fraction error, the classifier
AUC, the training time, and the near-zero isolation fraction of real and generated images
(the paper reports that its generator under-populates isolation ~ 0). Given the simulation's cost
(analysis/simulation_cost.py), also each model's speed-up over the simulation per image: simulation
CPU per image / sampling cost per image as the sampler recorded it (model loading + the sampling
loop, amortised over the images it generated; process start-up excluded): CPU seconds when it
sampled on the CPU, wall seconds on a GPU.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import AnalysisError
from .simulation_cost import read_simulation_cost
from .tables import BASELINE_MODEL, markdown_table, read_records, write_csv, write_text

log = logging.getLogger(__name__)

#: Family of records without one (written before generated files carried a `family` attribute).
DEFAULT_FAMILY = "decoupled"
BASELINE_FAMILY = "baseline"

#: Optional numbers of the field's metrics (blank for records written before they existed): pixel
#: CNN AUC, FPD and KPD with their errors, and gen / real of the tail percentiles (TAIL_KEYS).
FIELD_KEYS = ("cnn_auc", "cnn_auc_err", "fpd", "fpd_err", "kpd", "kpd_err")
TAIL_KEYS = ("max_pixel_et_p99", "max_pixel_et_p99_9", "total_et_p99", "total_et_p99_9")

#: Numeric keys the table needs from every metrics record.
NUMERIC_KEYS = (
    "isolation_emd", "isolation_emd_noise", "zero_fraction_real", "zero_fraction_generated", "classifier_auc",
    "low_isolation_threshold", "low_isolation_fraction_real", "low_isolation_fraction_generated",
)
REQUIRED_KEYS = ("sample", "model", *NUMERIC_KEYS)

RESULT_COLUMNS = (
    "sample", "model", "family", "is_baseline", "isolation_emd", "isolation_emd_noise", "emd_ratio_to_baseline",
    "zero_fraction_error_pp", "classifier_auc", "train_time_s", "low_isolation_threshold",
    "low_isolation_real_pct", "low_isolation_generated_pct", "low_isolation_diff_pp",
    "empty_cone_real_pct", "empty_cone_generated_pct", "empty_cone_diff_pp",
    "simulation_cpu_ms_per_image", "sampling_device", "sampling_threads", "sampling_us_per_image", "speedup_cpu",
    "speedup_gpu",
    *FIELD_KEYS, *(f"{k}_ratio" for k in TAIL_KEYS),
)


def _number(rec: dict[str, Any], key: str, source: str, *, optional: bool = False) -> float | None:
    """rec[key] as float; None when optional and absent/null; AnalysisError naming the file otherwise."""
    value = rec.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnalysisError(f"{source}: '{key}' is {value!r}, expected a number; re-run the metrics step")
    return float(value)


def family_of(rec: dict[str, Any]) -> str:
    """The record's model family; records without one: 'baseline' for independent_pixels, else 'decoupled'."""
    family = rec.get("family")
    if family:
        return str(family)
    return BASELINE_FAMILY if rec["model"] == BASELINE_MODEL else DEFAULT_FAMILY


def _is_baseline(rec: dict[str, Any]) -> bool:
    return rec["model"] == BASELINE_MODEL or family_of(rec) == BASELINE_FAMILY


def _baseline_emd(records: list[dict[str, Any]], sample: str) -> float | None:
    """Isolation EMD of the sample's baseline: `independent_pixels`, else the only 'baseline'-family record."""
    named = [r for r in records if r["sample"] == sample and r["model"] == BASELINE_MODEL]
    candidates = named or [r for r in records if r["sample"] == sample and family_of(r) == BASELINE_FAMILY]
    if len(candidates) != 1:
        log.warning("%s: %s baseline records; the EMD / baseline column stays blank", sample,
                    "no" if not candidates else "several")
        return None
    return float(candidates[0]["isolation_emd"])


def speedup_columns(rec: dict[str, Any], simulation_s_per_image: float | None, source: str) -> dict[str, Any]:
    """Sampling cost per image (us) and the speed-up over the simulation, CPU or GPU (blank when not recorded)."""
    out: dict[str, Any] = {"simulation_cpu_ms_per_image": None if simulation_s_per_image is None
                           else 1e3 * simulation_s_per_image, "sampling_device": rec.get("sampling_device"),
                           "sampling_threads": rec.get("sampling_threads"), "sampling_us_per_image": None,
                           "speedup_cpu": None, "speedup_gpu": None}
    n = _number(rec, "sampling_n_images", source, optional=True)
    device = str(rec.get("sampling_device") or "")
    if not n or not device:
        return out
    on_gpu = device.startswith("cuda")
    keys = ("sampling_load_s", "sampling_loop_s") if on_gpu else ("sampling_load_cpu_s", "sampling_loop_cpu_s")
    seconds = [_number(rec, k, source, optional=True) for k in keys]
    if any(v is None for v in seconds):
        return out
    per_image = sum(seconds) / n  # type: ignore[arg-type]
    out["sampling_us_per_image"] = 1e6 * per_image
    if simulation_s_per_image is not None and per_image > 0:
        out["speedup_gpu" if on_gpu else "speedup_cpu"] = simulation_s_per_image / per_image
    return out


def results_rows(records: Sequence[dict[str, Any]],
                 sources: Sequence[str | Path] | None = None,
                 simulation_cost: dict[str, float | None] | None = None) -> list[dict[str, Any]]:
    """One row per (sample, model): checked, derived (ratio, differences in percentage points), sorted.

    `sources` names the file of each record in error messages; `simulation_cost` (simulation CPU seconds
    per image by sample) adds the speed-up columns. Rows are grouped by sample
    (first-seen order) and sorted by isolation EMD within each sample (NaN last).
    """
    records = list(records)
    names = [str(s) for s in sources] if sources is not None else [f"record {i}" for i in range(len(records))]
    if len(names) != len(records):
        raise AnalysisError(f"{len(records)} records but {len(names)} source names")
    if not records:
        raise AnalysisError("no metrics records given")
    seen: dict[tuple[str, str], str] = {}
    rows = []
    for rec, source in zip(records, names, strict=True):
        for key in REQUIRED_KEYS:
            if key not in rec:
                raise AnalysisError(f"{source}: metrics record lacks '{key}'; re-run the metrics step")
        key = (str(rec["sample"]), str(rec["model"]))
        if key in seen:
            raise AnalysisError(f"{source}: sample '{key[0]}', model '{key[1]}' is also in {seen[key]}; give each once")
        seen[key] = source
        num = {k: _number(rec, k, source) for k in NUMERIC_KEYS}
        rows.append({
            "sample": key[0], "model": key[1], "family": family_of(rec), "is_baseline": _is_baseline(rec),
            "isolation_emd": num["isolation_emd"], "isolation_emd_noise": num["isolation_emd_noise"],
            "zero_fraction_error_pp": 100.0 * (num["zero_fraction_generated"] - num["zero_fraction_real"]),
            "classifier_auc": num["classifier_auc"],
            "train_time_s": _number(rec, "train_time_s", source, optional=True),
            "low_isolation_threshold": num["low_isolation_threshold"],
            "low_isolation_real_pct": 100.0 * num["low_isolation_fraction_real"],
            "low_isolation_generated_pct": 100.0 * num["low_isolation_fraction_generated"],
            "low_isolation_diff_pp": 100.0 * (num["low_isolation_fraction_generated"]
                                              - num["low_isolation_fraction_real"]),
            **_empty_cone_columns(rec, source),
            **speedup_columns(rec, (simulation_cost or {}).get(key[0]), source),
            **{k: _number(rec, k, source, optional=True) for k in FIELD_KEYS},
            **{f"{k}_ratio": _number(rec, f"{k}_ratio", source, optional=True) for k in TAIL_KEYS},
        })
    thresholds = sorted({r["low_isolation_threshold"] for r in rows})
    if len(thresholds) > 1:
        raise AnalysisError(f"metrics records use different low-isolation thresholds {thresholds}; "
                            "re-run the metrics step with one analysis.metrics.low_isolation")
    for sample in dict.fromkeys(r["sample"] for r in rows):
        base = _baseline_emd(rows, sample)
        for row in rows:
            if row["sample"] == sample:
                row["emd_ratio_to_baseline"] = row["isolation_emd"] / base if base else None
    samples = list(dict.fromkeys(r["sample"] for r in rows))
    return sorted(rows, key=lambda r: (samples.index(r["sample"]), math.isnan(r["isolation_emd"]), r["isolation_emd"]))


def _empty_cone_columns(rec: dict[str, Any], source: str) -> dict[str, float | None]:
    """Empty-cone shares in % and their difference (blank for records written before the metric existed)."""
    real = _number(rec, "empty_cone_fraction_real", source, optional=True)
    gen = _number(rec, "empty_cone_fraction_generated", source, optional=True)
    if real is None or gen is None:
        return {"empty_cone_real_pct": None, "empty_cone_generated_pct": None, "empty_cone_diff_pp": None}
    return {"empty_cone_real_pct": 100.0 * real, "empty_cone_generated_pct": 100.0 * gen,
            "empty_cone_diff_pp": 100.0 * (gen - real)}


def _cell(value: float | None, spec: str) -> str:
    """Format a number for the Markdown table: blank when unknown (None), '-' when NaN."""
    if value is None:
        return ""
    return "-" if math.isnan(value) else format(value, spec)


MD_HEADER = (
    "model", "family", "isolation EMD", "stat. floor", "EMD / baseline", "zero-pixel frac. gen - real [pp]",
    "classifier AUC", "train time [s]",
)


FIELD_HEADER = (
    "model", "pixel-CNN AUC", "FPD", "KPD", "max pixel ET p99 gen / real", "p99.9 gen / real",
    "total ET p99 gen / real", "p99.9 gen / real",
)


def _pm(value: float | None, err: float | None, spec: str) -> str:
    """'value ± err' for the Markdown table (blank when the record has no value)."""
    if value is None:
        return ""
    return _cell(value, spec) if err is None or math.isnan(err) else f"{_cell(value, spec)} ± {_cell(err, spec)}"


def results_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown: an explanation, then one table per sample sorted by isolation EMD, the baseline marked."""
    t = rows[0]["low_isolation_threshold"]
    parts = [
        "# Results: every model, both samples\n",
        "Isolation EMD (paper metric, weighted 1-D Wasserstein distance) with the EMD that finite",
        "statistics alone give, and relative to the independent-pixel baseline of the same sample",
        "(< 1: better than the baseline). Zero-pixel fraction error and the near-zero isolation",
        f"difference are generated - real in percentage points; 'iso < {t:g}' is the weighted share",
        "of images whose isolation is below that (the paper's generator has too few near 0: a",
        "negative difference); 'empty cone' counts images with no non-zero pixel in the cone (a",
        "generated cone whose positive and negative values cancel is near-zero but not empty).",
        "Classifier AUC on held-out images (0.5 = indistinguishable).",
        "The second table per sample has the field's metrics (blank: not in the record): the AUC of",
        "a small CNN on the pixels (test images never trained on; ± bootstrap standard deviation),",
        "FPD and KPD (JetNet's estimators on per-image features; ± their errors; 0 = identical)",
        "and generated / real of the 99th and 99.9th percentiles of max pixel ET and total ET.",
        "Training time is from the generated file (blank: not recorded). Sorted by isolation EMD;",
        "the baseline row is marked.\n",
    ]
    speed = any(r["sampling_us_per_image"] is not None for r in rows)
    if speed:
        parts += [
            "Speed-up: the simulation's CPU per real image (Pythia + Delphes + imaging, one core;",
            "docs/benchmarks.md) / the sampling cost per generated image as the sampler recorded it",
            "(model loading + sampling loop over the images generated, process start-up excluded):",
            "CPU seconds on the CPU (threads as given), wall seconds on a GPU.\n",
        ]
    header = [*MD_HEADER, f"iso < {t:g} real [%]", f"iso < {t:g} gen [%]", "gen - real [pp]",
              "empty cone real [%]", "empty cone gen [%]", "gen - real [pp]"]
    if speed:
        header += ["sim. CPU / image [ms]", "sampled on", "sampling / image [us]", "speed-up (CPU)",
                   "speed-up (GPU)"]
    for sample in dict.fromkeys(r["sample"] for r in rows):
        table = []
        for r in (r for r in rows if r["sample"] == sample):
            name = f"**{r['model']}** (baseline)" if r["is_baseline"] else r["model"]
            table.append([
                name, r["family"], _cell(r["isolation_emd"], ".4f"), _cell(r["isolation_emd_noise"], ".4f"),
                _cell(r["emd_ratio_to_baseline"], ".2f"), _cell(r["zero_fraction_error_pp"], "+.2f"),
                _cell(r["classifier_auc"], ".3f"), _cell(r["train_time_s"], ".0f"),
                _cell(r["low_isolation_real_pct"], ".1f"), _cell(r["low_isolation_generated_pct"], ".1f"),
                _cell(r["low_isolation_diff_pp"], "+.1f"), _cell(r["empty_cone_real_pct"], ".1f"),
                _cell(r["empty_cone_generated_pct"], ".1f"), _cell(r["empty_cone_diff_pp"], "+.1f"),
            ])
            if speed:
                table[-1] += [_cell(r["simulation_cpu_ms_per_image"], ".1f"), _device(r),
                              _cell(r["sampling_us_per_image"], ".2f"), _cell(r["speedup_cpu"], ",.0f"),
                              _cell(r["speedup_gpu"], ",.0f")]
        parts += [f"## {sample}\n", markdown_table(header, table)]
        field = [[f"**{r['model']}** (baseline)" if r["is_baseline"] else r["model"],
                  _pm(r["cnn_auc"], r["cnn_auc_err"], ".3f"), _pm(r["fpd"], r["fpd_err"], ".3g"),
                  _pm(r["kpd"], r["kpd_err"], ".3g"), *(_cell(r[f"{k}_ratio"], ".2f") for k in TAIL_KEYS)]
                 for r in rows if r["sample"] == sample]
        parts += [f"### The field's metrics, {sample}\n", markdown_table(FIELD_HEADER, field)]
    return "\n".join(parts)


def _device(row: dict[str, Any]) -> str:
    """Where a model sampled: 'cpu, 1 thread', 'cuda', or blank."""
    device = row["sampling_device"] or ""
    if device == "cpu" and row["sampling_threads"]:
        return f"cpu, {row['sampling_threads']} thread{'s' if row['sampling_threads'] != 1 else ''}"
    return device


def write_results_table(paths: Sequence[str | Path], csv_path: str | Path, md_path: str | Path, *,
                        simulation_cost: str | Path | None = None) -> list[dict[str, Any]]:
    """Read metrics records from `paths` (and the simulation's cost per image, when given), write the results
    table (CSV + Markdown), return its rows."""
    paths = [Path(p) for p in paths]
    cost = read_simulation_cost(simulation_cost) if simulation_cost else None
    rows = results_rows(read_records(paths, required=REQUIRED_KEYS), paths, cost)
    write_csv(csv_path, rows, RESULT_COLUMNS)
    write_text(md_path, results_markdown(rows))
    return rows

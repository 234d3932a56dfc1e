"""Tables (CSV + Markdown): isolation EMD beside the paper's values, and the metrics table."""
from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from common.provenance import atomic_output

from .errors import AnalysisError

#: The paper's name-free baseline: every pixel sampled independently from its empirical distribution.
BASELINE_MODEL = "independent_pixels"

#: Isolation EMD reported by the paper (Lu et al. 2019), per sample, for its model and its baseline.
PAPER_EMD = {
    ("signal", "model"): 0.06, ("background", "model"): 0.17,
    ("signal", "baseline"): 0.35, ("background", "baseline"): 0.89,
}

#: Metrics-table rows: (record key or key prefix, label). "_real"/"_generated" pairs share a row.
METRIC_ROWS = (
    ("n", "images"),
    ("zero_fraction", "zero-pixel fraction"),
    ("negative_fraction", "negative share of non-zero pixels"),
    ("n_nonzero_mean", "mean non-zero pixels / image"),
    ("total_et_mean", "mean total ET / image [GeV]"),
    ("isolation_mean", "mean isolation"),
    ("isolation_emd", "EMD isolation"),
    ("isolation_emd_noise", "  EMD isolation expected from statistics alone"),
    ("isolation_separation", "separation power isolation"),
    ("low_isolation_fraction", "share of images with near-zero isolation"),
    ("empty_cone_fraction", "share of images with an empty isolation cone (no non-zero pixel)"),
    ("total_et_emd", "EMD total ET [GeV]"),
    ("total_et_separation", "separation power total ET"),
    ("n_nonzero_emd", "EMD non-zero pixels / image"),
    ("n_nonzero_separation", "separation power non-zero pixels / image"),
    ("max_pixel_et_emd", "EMD max pixel ET [GeV]"),
    ("max_pixel_et_separation", "separation power max pixel ET"),
    ("pixel_et_emd", "EMD pixel-intensity spectrum [GeV]"),
    ("pixel_et_separation", "separation power pixel-intensity spectrum"),
    ("corr_mean_abs_diff", "mean abs. pixel-correlation difference"),
    ("corr_mean_abs_diff_noise", "  same, expected from statistics alone"),
    ("corr_max_abs_diff", "max abs. pixel-correlation difference"),
    ("classifier_auc", "classifier AUC (0.5 = indistinguishable)"),
    ("cnn_auc", "pixel-CNN classifier AUC (test images)"),
    ("cnn_auc_err", "  its bootstrap standard deviation"),
    ("fpd", "FPD (Frechet physics distance)"),
    ("fpd_err", "  its error"),
    ("kpd", "KPD (kernel physics distance)"),
    ("kpd_err", "  its error"),
    ("max_pixel_et_p99", "99th percentile max pixel ET [GeV]"),
    ("max_pixel_et_p99_9", "99.9th percentile max pixel ET [GeV]"),
    ("total_et_p99", "99th percentile total ET [GeV]"),
    ("total_et_p99_9", "99.9th percentile total ET [GeV]"),
)


#: Keys every metrics record must have for the EMD and metrics tables.
REQUIRED_KEYS = ("sample", "model", "isolation_emd")


def read_records(paths: Iterable[str | Path], required: Sequence[str] = REQUIRED_KEYS) -> list[dict[str, Any]]:
    """Load per-(sample, model) metric records (JSON written by `python -m analysis metrics`).

    Every record must hold the `required` keys; a missing one is an AnalysisError naming the file.
    """
    records = []
    for path in paths:
        path = Path(path)
        try:
            rec = json.loads(path.read_text())
        except FileNotFoundError:
            raise AnalysisError(f"{path}: no such metrics file; run `python -m analysis metrics` first") from None
        except json.JSONDecodeError as exc:
            raise AnalysisError(f"{path}: not valid JSON ({exc}); delete it and re-run the metrics step") from None
        if not isinstance(rec, dict):
            raise AnalysisError(f"{path}: not a metrics record (a JSON object); re-run the metrics step")
        for key in dict.fromkeys((*REQUIRED_KEYS, *required)):
            if key not in rec:
                raise AnalysisError(f"{path}: metrics record lacks '{key}'; re-run the metrics step")
        records.append(rec)
    if not records:
        raise AnalysisError("no metrics records given")
    return records


def paper_emd(sample: str, model: str) -> float:
    """The paper's isolation EMD for this sample: its baseline's for `independent_pixels`, else its model's."""
    return PAPER_EMD.get((sample, "baseline" if model == BASELINE_MODEL else "model"), math.nan)


def _fmt(value: Any) -> str:
    if value is None:  # not known (e.g. no training time recorded): a blank cell
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Write rows as CSV (atomic), full float precision."""
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically (never a partial file under its final name)."""
    with atomic_output(path) as tmp:
        Path(tmp).write_text(text)


def _ordered(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Samples in first-seen order, the baseline last within each sample."""
    samples = list(dict.fromkeys(r["sample"] for r in records))
    return sorted(records, key=lambda r: (samples.index(r["sample"]), r["model"] == BASELINE_MODEL))


EMD_COLUMNS = (
    "sample", "model", "isolation_emd", "isolation_emd_noise", "paper_emd", "isolation_mean_real",
    "isolation_mean_generated", "generated_pt_mean_gev", "n_real", "n_generated",
)


def write_emd_table(records: list[dict[str, Any]], csv_path: str | Path, md_path: str | Path) -> list[dict[str, Any]]:
    """Isolation EMD per sample and model, with the paper's value beside ours; returns the rows."""
    rows = [{**{k: r.get(k, math.nan) for k in EMD_COLUMNS}, "paper_emd": paper_emd(r["sample"], r["model"])}
            for r in _ordered(records)]
    write_csv(csv_path, rows, EMD_COLUMNS)
    md = [
        "# Isolation: earth mover's distance, real vs generated\n",
        "Weighted 1-D EMD (scipy `wasserstein_distance`) between the isolation (paper eq. 3) of real",
        "and generated images. Paper: Lu et al. 2019 (model 0.06 / 0.17, independent-pixel baseline",
        "0.35 / 0.89 for signal / background); `independent_pixels` is compared with the paper's",
        "baseline, every other model with the paper's model. 'Stat. floor' is the EMD that finite",
        "statistics alone give (two halves of the real sample, scaled to N real vs N generated).\n",
        markdown_table(
            ["sample", "model", "EMD (ours)", "stat. floor", "EMD (paper)", "mean iso real", "mean iso gen",
             "gen pT [GeV]", "N real", "N gen"],
            [[row[k] for k in EMD_COLUMNS] for row in rows],
        ),
    ]
    write_text(md_path, "\n".join(md))
    return rows


def write_metrics_table(records: list[dict[str, Any]], csv_path: str | Path, md_path: str | Path) -> None:
    """One metrics table per run: CSV one row per (sample, model); Markdown one table per sample."""
    records = _ordered(records)
    columns = list(dict.fromkeys(k for r in records for k in r if not k.startswith("_")))  # _provenance stays in JSON
    write_csv(csv_path, records, columns)
    parts = [
        "# Real vs generated: metrics\n",
        "Distances are weighted and computed on the full files; separation power uses "
        f"{records[0].get('separation_bins', '?')}",
        "equal-population bins of the real sample (0 = identical, 1 = disjoint). The classifier AUC",
        "is measured on held-out images (0.5 = indistinguishable, 1 = always told apart).\n",
    ]
    for sample in dict.fromkeys(r["sample"] for r in records):
        recs = [r for r in records if r["sample"] == sample]
        rows = []
        for key, label in METRIC_ROWS:
            if f"{key}_real" in recs[0]:
                rows.append([label, recs[0][f"{key}_real"], *(r.get(f"{key}_generated", math.nan) for r in recs)])
            else:
                rows.append([label, math.nan, *(r.get(key, math.nan) for r in recs)])
        parts += [f"## {sample}\n", markdown_table(["metric", "real", *(r["model"] for r in recs)], rows)]
    write_text(md_path, "\n".join(parts))

"""Detector-fidelity study: what a Delphes card and a tower rendering do to the images.

One record per variant (card x tower rendering x b bbar pT-hat threshold) with, per class:
sparsity (zero-pixel fraction, non-zero pixels per image), isolation (mean, quartiles, share of
empty cones), the radial profile (mean ET per pixel in dR rings; core ratio = ring 0-0.1 over
ring 0.3-0.4), the independent-pixel baseline's isolation EMD with its statistical floor and
its classifier AUC (does the baseline fail on these images?), the muon pT and Delphes' CPU
time per event. `fidelity_table` turns the records into one table and one figure of the
average images of every variant.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import uproot
from matplotlib.colors import Normalize

from common.seeds import pair_seed
from imaging.h5schema import ImageSet
from model.baseline import MODEL_NAME as BASELINE
from model.baseline import sample_independent_pixels
from model.data import load_training_data

from .errors import AnalysisError
from .features import average_image, zero_pixel_fraction
from .figure_isolation import SAMPLE_TITLES, weighted_quantile
from .geometry import delta_r_map
from .inputs import Images, load_images
from .isolation import cone_et, isolation
from .metrics import MetricSettings, pair_metrics
from .style import save_figure, use_style
from .tables import markdown_table, write_csv, write_text

log = logging.getLogger(__name__)

#: dR ring edges of the radial profile; the core ratio is the first ring over the last.
RING_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4)
SAMPLES = ("signal", "background")
#: muon-pT bins (GeV) of the spectrum shape in the record
PT_EDGES_GEV = np.arange(10.0, 15.01, 1.0)


def radial_profile(images: np.ndarray, weight: np.ndarray, radius: float,
                   edges: Sequence[float] = RING_EDGES) -> np.ndarray:
    """Weighted mean ET per pixel (GeV) in each dR ring of pixel centres: (len(edges) - 1,)."""
    dr = delta_r_map(images.shape[1], radius)
    avg = average_image(images, weight)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        ring = (dr >= lo) & (dr < hi)
        if not ring.any():
            raise AnalysisError(f"dR ring [{lo}, {hi}) holds no pixel centre of a {images.shape[1]}-pixel image")
        out.append(float(avg[ring].mean()))
    return np.asarray(out)


def delphes_cpu_ms_per_event(paths: Sequence[str | Path]) -> float | None:
    """Delphes CPU per event (ms) from the provenance the simulation stores in each chunk file."""
    seconds = events = 0.0
    for path in paths:
        try:
            with uproot.open(path) as f:
                record = json.loads(str(f["provenance"]))
                n = int(f["Delphes"].num_entries)
        except (OSError, KeyError, ValueError) as exc:
            raise AnalysisError(
                f"{path}: cannot read the Delphes provenance ({exc}); re-run its simulation job") from None
        if "delphes_cpu_s" not in record:
            return None  # written before the CPU time was recorded
        seconds += float(record["delphes_cpu_s"])
        events += n
    return 1e3 * seconds / events if events else None


def _baseline(real: Images, n: int, seed: int) -> Images:
    """The independent-pixel baseline of `real` (n images), in memory."""
    data = load_training_data(real.path)
    images = sample_independent_pixels(data, n, seed=seed, progress=False)
    attrs = {"sample": real.sample, "radius": real.radius, "family": "baseline", "train_time_s": 0.0}
    generated = ImageSet(images, np.full(n, data.mean_muon_pt_gev, np.float32), np.ones(n), attrs=attrs)
    return Images(real.path, real.sample, BASELINE, generated, in_memory=True)


def class_record(real: Images, *, seed: int, n_baseline: int, settings: MetricSettings) -> dict[str, Any]:
    """Fidelity figures of one class of one variant (see the module docstring)."""
    d = real.data
    w = d.weight
    iso = isolation(d.images, d.muon_pt, real.radius, settings.cone, source=str(real.path))
    cone = cone_et(d.images, real.radius, settings.cone)
    rings = radial_profile(d.images, w, real.radius)
    baseline = _baseline(real, n_baseline, pair_seed(seed, real.sample, BASELINE))
    metrics = pair_metrics(real, baseline, seed=seed, settings=settings)
    return {
        "n_images": len(d),
        "muon_pt_mean_gev": float(np.average(d.muon_pt, weights=w)),
        # weighted share of images per 1-GeV muon-pT bin over the selection window (the spectrum's shape)
        "muon_pt_fractions": (np.histogram(d.muon_pt, PT_EDGES_GEV, weights=w)[0] / w.sum()).tolist(),
        "zero_fraction": zero_pixel_fraction(d.images, w),
        "nonzero_per_image": float(np.average(np.count_nonzero(d.images.reshape(len(d), -1), axis=1), weights=w)),
        "isolation_mean": float(np.average(iso, weights=w)),
        **{f"isolation_q{q}": weighted_quantile(iso, w, q / 100) for q in (25, 50, 75)},
        "empty_cone_fraction": float(np.average(cone == 0, weights=w)),
        "ring_et_per_pixel_gev": rings.tolist(),
        "core_ratio": float(rings[0] / rings[-1]) if rings[-1] > 0 else float("inf"),
        "baseline_isolation_emd": metrics["isolation_emd"],
        "baseline_isolation_emd_floor": metrics["isolation_emd_noise"],
        "baseline_classifier_auc": metrics["classifier_auc"],
        "baseline_empty_cone_fraction": float(np.mean(cone_et(baseline.data.images, real.radius, settings.cone) == 0)),
        "average_image_gev": average_image(d.images, w).tolist(),
    }


def variant_record(name: str, images: dict[str, str | Path], delphes: dict[str, Sequence[str | Path]],
                   settings_of_variant: dict[str, Any], *, seed: int, n_baseline: int,
                   settings: MetricSettings = MetricSettings()) -> dict[str, Any]:
    """Record of one variant: `images[sample]` and `delphes[sample]` (chunk files) for each class."""
    record: dict[str, Any] = {"variant": name, **settings_of_variant}
    for sample in SAMPLES:
        real = load_images(images[sample], sample=sample, label="real")
        if record.setdefault("radius", real.radius) != real.radius:
            raise AnalysisError(f"{images[sample]}: image radius {real.radius} differs from the other class's "
                                f"{record['radius']}; image both classes of a variant with the same settings")
        record[sample] = class_record(real, seed=seed, n_baseline=n_baseline, settings=settings)
        record[sample]["delphes_ms_per_event"] = delphes_cpu_ms_per_event(delphes.get(sample, ()))
        log.info("%s %s: %.2f%% zero pixels, %.1f non-zero per image, mean isolation %.3f, core ratio %.2f, "
                 "baseline EMD %.4f (floor %.4f), AUC %.3f", name, sample, 100 * record[sample]["zero_fraction"],
                 record[sample]["nonzero_per_image"], record[sample]["isolation_mean"], record[sample]["core_ratio"],
                 record[sample]["baseline_isolation_emd"], record[sample]["baseline_isolation_emd_floor"],
                 record[sample]["baseline_classifier_auc"])
    return record


#: (column, record key, format) of the fidelity table, per class.
COLUMNS = (
    ("zero px %", "zero_fraction", lambda v: f"{100 * v:.2f}"),
    ("non-zero px", "nonzero_per_image", lambda v: f"{v:.1f}"),
    ("iso mean", "isolation_mean", lambda v: f"{v:.3f}"),
    ("iso q25/q50/q75", None, None),
    ("empty cones %", "empty_cone_fraction", lambda v: f"{100 * v:.1f}"),
    ("core ratio", "core_ratio", lambda v: f"{v:.2f}"),
    ("baseline EMD / floor", None, None),
    ("baseline AUC", "baseline_classifier_auc", lambda v: f"{v:.3f}"),
    ("muon pT", "muon_pt_mean_gev", lambda v: f"{v:.2f}"),
    ("Delphes ms/ev", "delphes_ms_per_event", lambda v: "-" if v is None else f"{v:.0f}"),
    ("images", "n_images", lambda v: f"{v}"),
)


def _cell(rec: dict[str, Any], column: str, key: str | None, fmt) -> str:
    if column.startswith("iso q"):
        return "/".join(f"{rec[f'isolation_q{q}']:.3f}" for q in (25, 50, 75))
    if column.startswith("baseline EMD"):
        return f"{rec['baseline_isolation_emd']:.4f} / {rec['baseline_isolation_emd_floor']:.4f}"
    return fmt(rec[key])


def read_fidelity_records(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Variant records (JSON from `analysis fidelity-variant`), checked for both classes."""
    records = []
    for path in paths:
        try:
            rec = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise AnalysisError(f"{path}: not a fidelity record ({exc}); re-run `analysis fidelity-variant`") from None
        missing = [k for k in ("variant", *SAMPLES) if k not in rec]
        if missing:
            raise AnalysisError(f"{path}: fidelity record lacks {missing}; re-run `analysis fidelity-variant`")
        records.append(rec)
    return records


def fidelity_table(records: Sequence[dict[str, Any]], csv_path: str | Path, md_path: str | Path) -> None:
    """One row per variant and class (CSV), one Markdown table per class."""
    rows = []
    for rec in records:
        for sample in SAMPLES:
            c = rec[sample]
            rows.append({"variant": rec["variant"], "sample": sample,
                         **{k: rec.get(k) for k in ("card", "tower_shape", "pthat_min_gev")},
                         **{k: v for k, v in c.items() if not isinstance(v, list)},
                         **{f"ring{i}_et_per_pixel_gev": v for i, v in enumerate(c["ring_et_per_pixel_gev"])},
                         **{f"muon_pt_fraction_{lo:g}_{lo + 1:g}": v
                            for lo, v in zip(PT_EDGES_GEV, c.get("muon_pt_fractions", []), strict=False)}})
    write_csv(csv_path, rows, list(rows[0]))
    parts = ["# Detector fidelity: one row per variant (card / tower rendering / b bbar pT-hat)\n",
             "Paper: 98.83% zero pixels (~12 non-zero per image); background core dense, signal flat.\n"]
    for sample in SAMPLES:
        header = ["variant", *(c[0] for c in COLUMNS)]
        body = [[rec["variant"], *(_cell(rec[sample], *c) for c in COLUMNS)] for rec in records]
        parts.append(f"\n## {sample}\n\n" + markdown_table(header, body))
    write_text(md_path, "\n".join(parts) + "\n")


def plot_fidelity_averages(records: Sequence[dict[str, Any]], outputs: Sequence[str | Path], *,
                           style: str = "CMS", cmap: str = "viridis", dpi: int = 120) -> None:
    """Average images: one row per (card, pT-hat), one column per (class, rendering); one linear scale per class."""
    radii = {r.get("radius") for r in records}
    if None in radii or len(radii) != 1:
        raise AnalysisError(f"fidelity figure: the records' image radii are {sorted(map(str, radii))}; the figure "
                            "needs one (re-run `fidelity-variant` for records without one)")
    radius = float(radii.pop())
    use_style(style)
    rows = list(dict.fromkeys((r.get("card", r["variant"]), r.get("pthat_min_gev")) for r in records))
    shapes = list(dict.fromkeys(r.get("tower_shape", "") for r in records))
    cols = [(sample, shape) for sample in SAMPLES for shape in shapes]
    by_key = {(r.get("card", r["variant"]), r.get("pthat_min_gev"), r.get("tower_shape", "")): r for r in records}
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.9 * len(cols) + 1.6, 1.9 * len(rows) + 0.6),
                             squeeze=False, constrained_layout=True)
    extent = (-radius, radius, -radius, radius)
    norms = {}
    for sample in SAMPLES:
        stack = np.array([r[sample]["average_image_gev"] for r in records])
        positive = stack[stack > 0]
        if positive.size == 0:
            raise AnalysisError(f"fidelity figure: every average pixel of {sample} is zero")
        norms[sample] = Normalize(vmin=0.0, vmax=float(positive.max()))
    images = {}
    for i, (card, pthat) in enumerate(rows):
        for j, (sample, shape) in enumerate(cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            rec = by_key.get((card, pthat, shape))
            if rec is None:
                ax.set_visible(False)
                continue
            avg = np.asarray(rec[sample]["average_image_gev"])
            images[sample] = ax.imshow(np.ma.masked_less_equal(avg, 0), origin="lower", extent=extent,
                                       norm=norms[sample], cmap=cmap, aspect="equal")
            if i == 0:
                ax.set_title(f"{sample}\n{shape}", fontsize=9)
            if j == 0:
                ax.set_ylabel(f"{card}" + ("" if pthat is None else f"\npT-hat > {pthat:g}"), fontsize=8)
    for j, sample in enumerate(SAMPLES):
        if sample in images:
            cbar = fig.colorbar(images[sample], ax=axes[:, j * len(shapes):(j + 1) * len(shapes)].ravel().tolist(),
                                shrink=0.8, location="bottom")
            cbar.set_label(f"{SAMPLE_TITLES.get(sample, sample)}: mean $E_T$ per pixel [GeV]", fontsize=9)
    save_figure(fig, outputs, dpi=dpi)

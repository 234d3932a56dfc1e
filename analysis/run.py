"""What each `python -m analysis` command does, given its inputs and settings (no argument parsing).

Every function reads image files (each once, keeping only what a figure needs), computes, and
writes its outputs atomically with provenance; analysis/cli.py only turns the command line and
the config section into these calls.
"""
from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from common.provenance import atomic_output, file_digest, provenance

from .classifier import ClassifierSettings
from .cnn_classifier import CnnSettings
from .correlation import pixel_correlation
from .errors import AnalysisError
from .features import average_image, image_features, nonzero_pixel_values, radial_profile, ring_edges
from .fidelity import fidelity_table, plot_fidelity_averages, read_fidelity_records, variant_record
from .figure_average import plot_average_images
from .figure_correlation import plot_correlations
from .figure_features import plot_features
from .figure_isolation import Figure2Settings, WeightedValues, plot_figure2
from .figure_profile import Profile, plot_radial_profiles
from .inputs import Grid, Images, check_compatible, load_images
from .isolation import isolation
from .metrics import MetricSettings, pair_metrics
from .physics_distance import PhysicsDistanceSettings
from .results_table import write_results_table
from .simulation_cost import SampleRecords, write_simulation_cost
from .tables import read_records, write_emd_table, write_metrics_table

log = logging.getLogger("analysis")

#: (sample, path) of a real images.h5 file, (sample, model, path) of a generated one
Real = tuple[str, str]
Generated = tuple[str, str, str]


def metric_settings(section: Mapping[str, Any]) -> MetricSettings:
    """MetricSettings from the config's `analysis:` section (isolation_cone and metrics)."""
    m, clf, cnn, pd = (section["metrics"], section["metrics"]["classifier"], section["metrics"]["cnn_classifier"],
                       section["metrics"]["fpd_kpd"])
    return MetricSettings(
        cone=section["isolation_cone"], separation_bins=m["separation_bins"], low_isolation=m["low_isolation"],
        classifier=ClassifierSettings(
            hidden_layers=tuple(clf["hidden_layers"]), epochs=clf["epochs"], learning_rate=clf["learning_rate"],
            test_fraction=clf["test_fraction"], max_images_per_class=clf["max_images_per_class"]),
        cnn=CnnSettings(
            channels=tuple(cnn["channels"]), hidden=cnn["hidden"], epochs=cnn["epochs"], patience=cnn["patience"],
            learning_rate=cnn["learning_rate"], batch_size=cnn["batch_size"], splits=tuple(cnn["splits"]),
            max_images_per_class=cnn["max_images_per_class"], bootstrap=cnn["bootstrap"], device=cnn["device"],
            threads=cnn["threads"]),
        fpd_kpd=PhysicsDistanceSettings(
            fpd_min_samples=pd["fpd_min_samples"], fpd_max_samples=pd["fpd_max_samples"],
            fpd_num_batches=pd["fpd_num_batches"], fpd_num_points=pd["fpd_num_points"],
            kpd_num_batches=pd["kpd_num_batches"], kpd_batch_size=pd["kpd_batch_size"], kpd_degree=pd["kpd_degree"],
            isolation_cones=tuple(pd["isolation_cones"])))


def _write_json(path: str | Path, record: dict[str, Any], indent: int | None = None) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=indent, sort_keys=False) + "\n")
    log.info("wrote %s", path)


def metrics(real_path: str, generated_path: str, out: str, *, sample: str, model: str, seed: int,
            settings: MetricSettings, max_images: int | None) -> None:
    """Every metric of one (sample, model) pair -> JSON record."""
    real = load_images(real_path, sample=sample, label="real", max_images=max_images)
    gen = load_images(generated_path, sample=sample, label=model, max_images=max_images)
    record = pair_metrics(real, gen, seed=seed, settings=settings)
    record["separation_bins"] = settings.separation_bins
    record["_provenance"] = provenance(
        seed=seed, inputs={str(real.path): file_digest(real.path), str(gen.path): file_digest(gen.path)},
    )
    _write_json(out, record, indent=1)


def emd_table(records: Sequence[str], out_csv: str, out_md: str) -> None:
    """Isolation EMD table (CSV + Markdown) beside the paper's values."""
    for row in write_emd_table(read_records(records), out_csv, out_md):
        log.info("%s %-20s EMD %.4f (paper %.2f)", row["sample"], row["model"], row["isolation_emd"], row["paper_emd"])


def metrics_table(records: Sequence[str], out_csv: str, out_md: str) -> None:
    """Metrics table of the run (CSV + Markdown)."""
    write_metrics_table(read_records(records), out_csv, out_md)
    log.info("wrote %s and %s", out_csv, out_md)


def results_table(records: Sequence[str], out_csv: str, out_md: str, *, simulation_cost: str | None = None) -> None:
    """Results table: one row per sample and model, sorted by isolation EMD (with the speed-up over the
    simulation when its cost record is given)."""
    for r in write_results_table(records, out_csv, out_md, simulation_cost=simulation_cost):
        ratio = "-" if r["emd_ratio_to_baseline"] is None else f"{r['emd_ratio_to_baseline']:.2f}"
        log.info("%s %-28s %-10s EMD %.4f (x%s baseline) zero-frac %+.2f pp, AUC %.3f, iso<%g %+.1f pp",
                 r["sample"], r["model"], r["family"], r["isolation_emd"], ratio, r["zero_fraction_error_pp"],
                 r["classifier_auc"], r["low_isolation_threshold"], r["low_isolation_diff_pp"])
    log.info("wrote %s and %s", out_csv, out_md)


def _check_inputs(real: Sequence[Real], generated: Sequence[Generated]) -> None:
    samples = [s for s, _ in real]
    if len(set(samples)) != len(samples):
        raise AnalysisError(f"--real names a sample twice: {samples}")
    for sample, model, path in generated:
        if sample not in samples:
            raise AnalysisError(f"--generated {sample}:{model}={path}: no --real file for sample '{sample}'")


def reduce_files(
    real: Sequence[Real], generated: Sequence[Generated], reduce: Callable[[Images], Any], desc: str,
    max_images: int | None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, Grid]]:
    """Read each file once, keep only `reduce(images)` (so memory holds one file at a time).

    Returns ({sample: reduced real}, {sample: {model: reduced generated}}, {sample: real grid}).
    """
    _check_inputs(real, generated)
    real_out: dict[str, Any] = {}
    geometry: dict[str, Grid] = {}
    gen_out: dict[str, dict[str, Any]] = {s: {} for s, _ in real}
    jobs = [(s, "real", p) for s, p in real] + list(generated)
    for sample, label, path in tqdm(jobs, desc=desc, unit="file", file=sys.stderr, disable=None):
        images = load_images(path, sample=sample, label=label, max_images=max_images)
        if label == "real":
            geometry[sample] = images.grid
            real_out[sample] = reduce(images)
        else:
            check_compatible(geometry[sample], images)
            gen_out[sample][label] = reduce(images)
        del images
    return real_out, gen_out, geometry


def figure2(real: Sequence[Real], generated: Sequence[Generated], out: Sequence[str], *, cone: float,
            settings: Figure2Settings, style: str, dpi: int, max_images: int | None) -> None:
    """Isolation histograms, real vs generated (paper Figure 2)."""
    def iso(images: Images) -> WeightedValues:
        d = images.data
        return WeightedValues(isolation(d.images, d.muon_pt, images.radius, cone, source=str(images.path)), d.weight)

    real_iso, gen_iso, _ = reduce_files(real, generated, iso, "isolation", max_images)
    emds = plot_figure2(real_iso, gen_iso, out, settings=settings, style=style, dpi=dpi, cone=cone)
    for (sample, model), emd in emds.items():
        log.info("figure 2: %s %s isolation EMD %.4f", sample, model, emd)


def figure3(real: Sequence[Real], generated: Sequence[Generated], out_linear: Sequence[str], out_log: Sequence[str],
            *, cmap: str, style: str, dpi: int, max_images: int | None) -> None:
    """Average images, real | generated (paper Figure 3), linear and logarithmic colour scale."""
    real_avg, gen_avg, grids = reduce_files(
        real, generated, lambda im: average_image(im.data.images, im.data.weight), "average images", max_images)
    averages = {s: {"real": real_avg[s], **gen_avg[s]} for s in real_avg}
    radii = {g.radius for g in grids.values()}
    if len(radii) != 1:
        raise AnalysisError(f"figure 3: samples have different image radii {sorted(radii)}; one figure needs one grid")
    radius = radii.pop()
    plot_average_images(averages, radius, out_linear, log=False, style=style, cmap=cmap, dpi=dpi)
    plot_average_images(averages, radius, out_log, log=True, style=style, cmap=cmap, dpi=dpi)


def radial_profiles(real: Sequence[Real], generated: Sequence[Generated], out: Sequence[str], *, ring_width: float,
                    r_max: float, log_y: bool, style: str, dpi: int, max_images: int | None) -> None:
    """Mean ET per pixel in dR rings, real vs generated, per sample (the profile beside Figure 3)."""
    edges = ring_edges(ring_width, r_max)

    def reduce(images: Images) -> Profile:
        mean, err, _ = radial_profile(images.data.images, images.data.weight, images.radius, edges)
        return Profile(mean, err)

    real_prof, gen_prof, _ = reduce_files(real, generated, reduce, "radial profiles", max_images)
    plot_radial_profiles(real_prof, gen_prof, edges, out, log_y=log_y, style=style, dpi=dpi)
    for sample, prof in real_prof.items():
        log.info("radial profile %s real: %.3g GeV per pixel in the first ring, %.3g in the last", sample,
                 prof.mean[0], prof.mean[np.isfinite(prof.mean)][-1])


def features(sample: str, real_path: str, generated: Sequence[tuple[str, str]], out_features: Sequence[str],
             out_correlations: Sequence[str], *, cone: float, bins: int, style: str, dpi: int,
             max_images: int | None) -> None:
    """CaloChallenge-style feature distributions and pixel correlations of one sample."""
    def reduce(images: Images) -> tuple[dict[str, WeightedValues], np.ndarray]:
        d = images.data
        feats = {k: WeightedValues(v, d.weight) for k, v in
                 image_features(d.images, d.muon_pt, images.radius, cone, source=str(images.path)).items()}
        feats["pixel_et"] = WeightedValues(*nonzero_pixel_values(d.images, d.weight))
        return feats, pixel_correlation(d.images, d.weight)

    real_red, gen_red, _ = reduce_files([(sample, real_path)], [(sample, m, p) for m, p in generated], reduce,
                                        "features", max_images)
    labelled = {"real": real_red[sample], **gen_red[sample]}
    by_feature = {name: {label: f[name] for label, (f, _) in labelled.items()} for name in labelled["real"][0]}
    plot_features(sample, by_feature, out_features, bins=bins, style=style, dpi=dpi)
    plot_correlations(sample, labelled["real"][1], {m: c for m, (_, c) in gen_red[sample].items()},
                      out_correlations, style=style, dpi=dpi)


def fidelity_variant(name: str, images: Mapping[str, str], delphes: Mapping[str, Sequence[str]],
                     describe: Mapping[str, Any], out: str, *, seed: int, n_baseline: int,
                     settings: MetricSettings) -> None:
    """Detector-fidelity figures of one variant (both classes) -> JSON record."""
    record = variant_record(name, dict(images), dict(delphes), dict(describe), seed=seed, n_baseline=n_baseline,
                            settings=settings)
    record["_provenance"] = provenance(seed=seed, inputs={p: file_digest(p) for p in images.values()})
    _write_json(out, record)


def fidelity_study_table(records: Sequence[str], out_csv: str, out_md: str, out_figure: Sequence[str], *,
                         style: str, dpi: int) -> None:
    """The fidelity study's table (CSV + Markdown) and average-image figure."""
    recs = read_fidelity_records(records)
    fidelity_table(recs, out_csv, out_md)
    plot_fidelity_averages(recs, out_figure, style=style, dpi=dpi)
    log.info("wrote %s, %s and %s", out_csv, out_md, ", ".join(out_figure))


def simulation_cost(samples: Mapping[str, SampleRecords], pileup: Path | None, out_json: str, out_md: str) -> None:
    """Simulation CPU per image by step and sample (JSON + Markdown)."""
    cost = write_simulation_cost(samples, pileup, out_json, out_md)
    for name, s in cost["samples"].items():
        per, total = s["cpu_ms_per_image"], s["total_cpu_s_per_image"]
        log.info("%s: %d images, CPU per image %s ms (%s)", name, s["n_images"],
                 "?" if total is None else f"{1e3 * total:.1f}",
                 ", ".join(f"{k} {'?' if v is None else f'{v:.1f}'}" for k, v in per.items()))
    log.info("wrote %s and %s", out_json, out_md)

"""Command-line interface: `python -m analysis <subcommand> ...` (what the Snakemake rules call)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from imaging.h5schema import ImageFileError
from common import cli
from common.provenance import atomic_output, file_digest, provenance

from .classifier import ClassifierSettings
from .errors import AnalysisError
from .fidelity import fidelity_table, plot_fidelity_averages, read_fidelity_records, variant_record
from .inputs import Grid, Images, check_compatible, load_images, parse_labelled
from .isolation import DEFAULT_CONE, DEFAULT_LOW_ISOLATION, isolation
from .metrics import MetricSettings, pair_metrics
from .style import STYLES

log = logging.getLogger("analysis")


def _sample_model(spec: str) -> tuple[str, str, str]:
    """'SAMPLE:MODEL=PATH' -> (sample, model, path)."""
    key, path = parse_labelled(spec, "--generated")
    sample, sep, model = key.partition(":")
    if not sep or not sample or not model:
        raise AnalysisError(f"--generated '{spec}' must look like SAMPLE:MODEL=PATH")
    return sample, model, path


def _progress(items: Sequence, desc: str) -> tqdm:
    return tqdm(items, desc=desc, unit="file", file=sys.stderr, disable=None)


# ---------------------------------------------------------------------------- subcommands
def cmd_metrics(args: argparse.Namespace) -> None:
    real = load_images(args.real, sample=args.sample, label="real", max_images=args.max_images)
    gen = load_images(args.generated, sample=args.sample, label=args.model, max_images=args.max_images)
    settings = MetricSettings(
        cone=args.cone, separation_bins=args.separation_bins, low_isolation=args.low_isolation,
        classifier=ClassifierSettings(
            hidden_layers=tuple(args.clf_hidden), epochs=args.clf_epochs, learning_rate=args.clf_learning_rate,
            test_fraction=args.clf_test_fraction, max_images_per_class=args.clf_max_images,
        ),
    )
    record = pair_metrics(real, gen, seed=args.seed, settings=settings)
    record["separation_bins"] = args.separation_bins
    record["_provenance"] = provenance(
        seed=args.seed, inputs={str(real.path): file_digest(real.path), str(gen.path): file_digest(gen.path)},
    )
    with atomic_output(args.out) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1, sort_keys=False) + "\n")
    log.info("wrote %s", args.out)


def cmd_emd_table(args: argparse.Namespace) -> None:
    from .tables import read_records, write_emd_table

    rows = write_emd_table(read_records(args.metrics), args.out_csv, args.out_md)
    for row in rows:
        log.info("%s %-20s EMD %.4f (paper %.2f)", row["sample"], row["model"], row["isolation_emd"], row["paper_emd"])


def cmd_metrics_table(args: argparse.Namespace) -> None:
    from .tables import read_records, write_metrics_table

    write_metrics_table(read_records(args.metrics), args.out_csv, args.out_md)
    log.info("wrote %s and %s", args.out_csv, args.out_md)


def cmd_results_table(args: argparse.Namespace) -> None:
    from .results_table import write_results_table

    rows = write_results_table(args.metrics, args.out_csv, args.out_md)
    for r in rows:
        ratio = "-" if r["emd_ratio_to_baseline"] is None else f"{r['emd_ratio_to_baseline']:.2f}"
        log.info("%s %-28s %-10s EMD %.4f (x%s baseline) zero-frac %+.2f pp, AUC %.3f, iso<%g %+.1f pp",
                 r["sample"], r["model"], r["family"], r["isolation_emd"], ratio, r["zero_fraction_error_pp"],
                 r["classifier_auc"], r["low_isolation_threshold"], r["low_isolation_diff_pp"])
    log.info("wrote %s and %s", args.out_csv, args.out_md)


def _load_all(args: argparse.Namespace) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    real = [parse_labelled(s, "--real") for s in args.real]
    gen = [_sample_model(s) for s in args.generated]
    samples = [s for s, _ in real]
    if len(set(samples)) != len(samples):
        raise AnalysisError(f"--real names a sample twice: {samples}")
    for sample, model, path in gen:
        if sample not in samples:
            raise AnalysisError(f"--generated {sample}:{model}={path}: no --real file for sample '{sample}'")
    return real, gen


def _reduce_files(
    args: argparse.Namespace, reduce: Callable[[Images], object], desc: str,
) -> tuple[dict[str, object], dict[str, dict[str, object]], dict[str, Grid]]:
    """Read each file once, keep only `reduce(images)` (so memory holds one file at a time)."""
    real_specs, gen_specs = _load_all(args)
    real_out: dict[str, object] = {}
    geometry: dict[str, Grid] = {}
    gen_out: dict[str, dict[str, object]] = {s: {} for s, _ in real_specs}
    jobs = [(s, "real", p) for s, p in real_specs] + list(gen_specs)
    for sample, label, path in _progress(jobs, desc):
        images = load_images(path, sample=sample, label=label, max_images=args.max_images)
        if label == "real":
            geometry[sample] = images.grid
            real_out[sample] = reduce(images)
        else:
            check_compatible(geometry[sample], images)
            gen_out[sample][label] = reduce(images)
        del images
    return real_out, gen_out, geometry


def cmd_figure2(args: argparse.Namespace) -> None:
    from .figure_isolation import Figure2Settings, WeightedValues, plot_figure2

    def iso(images: Images) -> WeightedValues:
        d = images.data
        return WeightedValues(isolation(d.images, d.muon_pt, images.radius, args.cone, source=str(images.path)), d.weight)

    real, gen, _ = _reduce_files(args, iso, "isolation")
    settings = Figure2Settings(bins=args.bins, iso_max=args.iso_max, log_y=args.log_y)
    emds = plot_figure2(real, gen, args.out, settings=settings, style=args.style, dpi=args.dpi, cone=args.cone)
    for (sample, model), emd in emds.items():
        log.info("figure 2: %s %s isolation EMD %.4f", sample, model, emd)


def cmd_figure3(args: argparse.Namespace) -> None:
    from .features import average_image
    from .figure_average import plot_average_images

    real, gen, grids = _reduce_files(args, lambda im: average_image(im.data.images, im.data.weight), "average images")
    averages = {s: {"real": real[s], **gen[s]} for s in real}
    radii = {g.radius for g in grids.values()}
    if len(radii) != 1:
        raise AnalysisError(f"figure 3: samples have different image radii {sorted(radii)}; one figure needs one grid")
    radius = radii.pop()
    plot_average_images(averages, radius, args.out_linear, log=False, style=args.style, cmap=args.cmap, dpi=args.dpi)
    plot_average_images(averages, radius, args.out_log, log=True, style=args.style, cmap=args.cmap, dpi=args.dpi)


def cmd_features(args: argparse.Namespace) -> None:
    from .correlation import pixel_correlation
    from .features import image_features, nonzero_pixel_values
    from .figure_correlation import plot_correlations
    from .figure_features import plot_features
    from .figure_isolation import WeightedValues

    def reduce(images: Images) -> tuple[dict[str, WeightedValues], np.ndarray]:
        d = images.data
        feats = {k: WeightedValues(v, d.weight) for k, v in
                 image_features(d.images, d.muon_pt, images.radius, args.cone, source=str(images.path)).items()}
        feats["pixel_et"] = WeightedValues(*nonzero_pixel_values(d.images, d.weight))
        return feats, pixel_correlation(d.images, d.weight)

    args.real = [f"{args.sample}={args.real}"]
    args.generated = [f"{args.sample}:{spec}" for spec in args.generated]
    real, gen, _ = _reduce_files(args, reduce, "features")
    labelled = {"real": real[args.sample], **gen[args.sample]}
    features = {name: {label: f[name] for label, (f, _) in labelled.items()} for name in labelled["real"][0]}
    plot_features(args.sample, features, args.out_features, bins=args.bins, style=args.style, dpi=args.dpi)
    plot_correlations(args.sample, labelled["real"][1], {m: c for m, (_, c) in gen[args.sample].items()},
                      args.out_correlations, style=args.style, dpi=args.dpi)


# ---------------------------------------------------------------------------- parser
def cmd_fidelity_variant(args: argparse.Namespace) -> None:
    settings = _metric_settings(json.loads(args.settings))
    record = variant_record(
        args.name, {"signal": args.signal, "background": args.background},
        {"signal": args.delphes_signal, "background": args.delphes_background},
        json.loads(args.describe), seed=args.seed, n_baseline=args.n_baseline, settings=settings)
    record["_provenance"] = provenance(seed=args.seed, inputs={p: file_digest(p) for p in (args.signal, args.background)})
    with atomic_output(args.out) as tmp:
        Path(tmp).write_text(json.dumps(record) + "\n")
    log.info("wrote %s", args.out)


def cmd_fidelity_table(args: argparse.Namespace) -> None:
    records = read_fidelity_records(args.records)
    fidelity_table(records, args.out_csv, args.out_md)
    plot_fidelity_averages(records, args.radius, args.out_figure, style=args.style, dpi=args.dpi)
    log.info("wrote %s, %s and %s", args.out_csv, args.out_md, ", ".join(args.out_figure))


def _metric_settings(section: dict) -> MetricSettings:
    """MetricSettings from the config's `analysis:` section (isolation_cone and metrics)."""
    m, clf = section["metrics"], section["metrics"]["classifier"]
    return MetricSettings(
        cone=section["isolation_cone"], separation_bins=m["separation_bins"], low_isolation=m["low_isolation"],
        classifier=ClassifierSettings(
            hidden_layers=tuple(clf["hidden_layers"]), epochs=clf["epochs"], learning_rate=clf["learning_rate"],
            test_fraction=clf["test_fraction"], max_images_per_class=clf["max_images_per_class"]))


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _plot_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--style", default="CMS", choices=STYLES, help="mplhep style (default: %(default)s)")
    p.add_argument("--dpi", type=_positive_int, default=150, help="PNG resolution (default: %(default)s)")
    p.add_argument("--max-images", type=_positive_int, default=None, help="read at most this many images per file")
    p.add_argument("--cone", type=float, default=DEFAULT_CONE, help="isolation cone dR (default: %(default)s)")


def _multi_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--real", nargs="+", required=True, metavar="SAMPLE=PATH", help="real images.h5 per sample")
    p.add_argument("--generated", nargs="+", required=True, metavar="SAMPLE:MODEL=PATH", help="generated files")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    cli.add_verbose(parser)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("metrics", help="all metrics of one (sample, model) pair -> JSON record")
    p.add_argument("--real", required=True, help="real images.h5")
    p.add_argument("--generated", required=True, help="generated/{sample}/{model}.h5")
    p.add_argument("--sample", required=True, help="sample name (checked against the files)")
    p.add_argument("--model", required=True, help="model name (label in tables)")
    p.add_argument("--seed", type=int, required=True, help="master seed (classifier split and init)")
    p.add_argument("--cone", type=float, default=DEFAULT_CONE, help="isolation cone dR (default: %(default)s)")
    p.add_argument("--separation-bins", type=_positive_int, default=50, help="bins for separation power")
    p.add_argument("--low-isolation", type=_positive_float, default=DEFAULT_LOW_ISOLATION,
                   help="isolation below this counts as near zero (default: %(default)s)")
    p.add_argument("--clf-hidden", type=_positive_int, nargs="+", default=[64, 64], help="classifier hidden layer sizes")
    p.add_argument("--clf-epochs", type=_positive_int, default=20, help="classifier training epochs")
    p.add_argument("--clf-learning-rate", type=float, default=1e-3, help="classifier Adam learning rate")
    p.add_argument("--clf-test-fraction", type=float, default=0.5, help="held-out fraction for the AUC")
    p.add_argument("--clf-max-images", type=_positive_int, default=20000, help="images per class for the classifier")
    p.add_argument("--max-images", type=_positive_int, default=None, help="read at most this many images per file")
    p.add_argument("--out", required=True, help="output JSON")
    p.set_defaults(func=cmd_metrics)

    for name, func, text in (("emd-table", cmd_emd_table, "isolation EMD table with the paper's values"),
                             ("metrics-table", cmd_metrics_table, "metrics table of the run"),
                             ("results-table", cmd_results_table,
                              "results table: one row per sample and model, sorted by isolation EMD")):
        p = sub.add_parser(name, help=f"{text} (CSV + Markdown) from metrics JSON records")
        p.add_argument("--metrics", nargs="+", required=True, help="JSON records from `metrics`")
        p.add_argument("--out-csv", required=True, help="CSV output (one row per sample and model)")
        p.add_argument("--out-md", required=True, help="Markdown output (one table per sample)")
        p.set_defaults(func=func)

    p = sub.add_parser("figure2", help="isolation histograms real vs generated (paper Figure 2)")
    _multi_inputs(p)
    p.add_argument("--bins", type=_positive_int, default=40, help="histogram bins (default: %(default)s)")
    p.add_argument("--iso-max", type=float, default=None, help="upper edge; default: 99.5%% quantile of real")
    p.add_argument("--log-y", action="store_true", help="logarithmic y axis")
    p.add_argument("--out", nargs="+", required=True, help="figure files (.pdf/.png/.svg)")
    _plot_options(p)
    p.set_defaults(func=cmd_figure2)

    p = sub.add_parser("figure3", help="average images real | generated (paper Figure 3)")
    _multi_inputs(p)
    p.add_argument("--cmap", default="viridis", help="matplotlib colour map (default: %(default)s)")
    p.add_argument("--out-linear", nargs="+", required=True, help="figure files, linear colour scale")
    p.add_argument("--out-log", nargs="+", required=True, help="figure files, logarithmic colour scale")
    _plot_options(p)
    p.set_defaults(func=cmd_figure3)

    p = sub.add_parser("features", help="CaloChallenge-style feature and correlation figures of one sample")
    p.add_argument("--sample", required=True)
    p.add_argument("--real", required=True, help="real images.h5")
    p.add_argument("--generated", nargs="+", required=True, metavar="MODEL=PATH", help="generated files")
    p.add_argument("--bins", type=_positive_int, default=40, help="histogram bins (default: %(default)s)")
    p.add_argument("--out-features", nargs="+", required=True, help="feature-distribution figure files")
    p.add_argument("--out-correlations", nargs="+", required=True, help="correlation figure files")
    _plot_options(p)
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("fidelity-variant", help="detector-fidelity figures of one variant (both classes) -> JSON")
    p.add_argument("--name", required=True, help="variant name (row label)")
    p.add_argument("--signal", required=True, help="signal images.h5 of the variant")
    p.add_argument("--background", required=True, help="background images.h5 of the variant")
    p.add_argument("--delphes-signal", nargs="*", default=[], help="signal Delphes chunk files (CPU per event)")
    p.add_argument("--delphes-background", nargs="*", default=[], help="background Delphes chunk files")
    p.add_argument("--describe", default="{}", help="JSON object stored in the record (card, rendering, ...)")
    p.add_argument("--settings", required=True, help="JSON of the config's analysis: section (cone, metrics)")
    p.add_argument("--seed", type=int, required=True, help="master seed (baseline sampling, classifier)")
    p.add_argument("--n-baseline", type=_positive_int, default=20000, help="independent-pixel images per class")
    p.add_argument("--out", required=True, help="output JSON record")
    p.set_defaults(func=cmd_fidelity_variant)

    p = sub.add_parser("fidelity-table", help="fidelity table (CSV + Markdown) and average-image figure")
    p.add_argument("--records", nargs="+", required=True, help="JSON records from fidelity-variant")
    p.add_argument("--radius", type=_positive_float, default=0.4, help="image half-width (default: %(default)s)")
    p.add_argument("--out-csv", required=True, help="CSV output")
    p.add_argument("--out-md", required=True, help="Markdown output")
    p.add_argument("--out-figure", nargs="+", required=True, help="figure files (.png/.pdf)")
    _plot_options(p)
    p.set_defaults(func=cmd_fidelity_table)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; a known error (AnalysisError, ImageFileError, ...) prints `error: ...` and returns 2."""
    return cli.main(build_parser(), argv)

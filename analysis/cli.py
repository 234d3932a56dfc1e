"""Command-line interface: `python -m analysis <command> ...` (what the Snakemake rules call).

Flags name the input and output files; settings come from the config's `analysis:` section as
one JSON object (`--config-json`), checked against workflow/schemas/analysis.schema.yaml (keys
left out take the schema default). analysis/run.py does the work.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import cli
from common.settings import parse_section

from . import run
from .errors import AnalysisError
from .figure_isolation import Figure2Settings
from .inputs import parse_labelled
from .settings import READS
from .simulation_cost import SampleRecords


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The command's part of the analysis section, defaults filled in."""
    return parse_section(args.config_json, "analysis", READS[args.command])


def _sample_model(spec: str) -> tuple[str, str, str]:
    """'SAMPLE:MODEL=PATH' -> (sample, model, path)."""
    key, path = parse_labelled(spec, "--generated")
    sample, sep, model = key.partition(":")
    if not sep or not sample or not model:
        raise AnalysisError(f"--generated '{spec}' must look like SAMPLE:MODEL=PATH")
    return sample, model, path


def _real(args: argparse.Namespace) -> list[tuple[str, str]]:
    return [parse_labelled(s, "--real") for s in args.real]


def _generated(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    return [_sample_model(s) for s in args.generated]


# ---------------------------------------------------------------------------- commands
def cmd_metrics(args: argparse.Namespace) -> None:
    s = _settings(args)
    run.metrics(args.real, args.generated, args.out, sample=args.sample, model=args.model, seed=args.seed,
                settings=run.metric_settings(s), max_images=s["max_images"])


def cmd_emd_table(args: argparse.Namespace) -> None:
    run.emd_table(args.metrics, args.out_csv, args.out_md)


def cmd_metrics_table(args: argparse.Namespace) -> None:
    run.metrics_table(args.metrics, args.out_csv, args.out_md)


def cmd_results_table(args: argparse.Namespace) -> None:
    run.results_table(args.metrics, args.out_csv, args.out_md, simulation_cost=args.simulation_cost)


def _by_sample(specs: Sequence[str] | None, what: str) -> dict[str, list[str]]:
    """'SAMPLE=PATH' arguments grouped by sample, in the order given."""
    out: dict[str, list[str]] = {}
    for spec in specs or ():
        sample, path = parse_labelled(spec, what)
        out.setdefault(sample, []).append(path)
    return out


def cmd_simulation_cost(args: argparse.Namespace) -> None:
    chunks, images = _by_sample(args.chunks, "--chunks"), _by_sample(args.images, "--images")
    delphes, bench = _by_sample(args.delphes, "--delphes"), _by_sample(args.imaging_benchmark, "--imaging-benchmark")
    if set(images) != set(chunks) or any(len(v) != 1 for v in images.values()):
        raise AnalysisError(f"give one --images SAMPLE=PATH for each sample of --chunks ({sorted(chunks)}), "
                            f"got {sorted(images)}")
    samples = {name: SampleRecords(chunks=[Path(p) for p in paths], images=Path(images[name][0]),
                                   delphes=[Path(p) for p in delphes.get(name, [])],
                                   imaging_benchmark=Path(bench[name][0]) if name in bench else None)
               for name, paths in chunks.items()}
    run.simulation_cost(samples, Path(args.pileup) if args.pileup else None, args.out_json, args.out_md)


def cmd_figure2(args: argparse.Namespace) -> None:
    s = _settings(args)
    f2 = s["figure2"]
    run.figure2(_real(args), _generated(args), args.out, cone=s["isolation_cone"],
                settings=Figure2Settings(bins=f2["bins"], iso_max=f2["iso_max"], log_y=f2["log_y"]),
                style=s["plots"]["style"], dpi=s["plots"]["dpi"], max_images=s["max_images"])


def cmd_figure3(args: argparse.Namespace) -> None:
    s = _settings(args)
    run.figure3(_real(args), _generated(args), args.out_linear, args.out_log, cmap=s["figure3"]["cmap"],
                style=s["plots"]["style"], dpi=s["plots"]["dpi"], max_images=s["max_images"])


def cmd_radial_profile(args: argparse.Namespace) -> None:
    s = _settings(args)
    rp = s["radial_profile"]
    run.radial_profiles(_real(args), _generated(args), args.out, ring_width=rp["ring_width"], r_max=rp["r_max"],
                        log_y=rp["log_y"], style=s["plots"]["style"], dpi=s["plots"]["dpi"],
                        max_images=s["max_images"])


def cmd_features(args: argparse.Namespace) -> None:
    s = _settings(args)
    generated = [parse_labelled(spec, "--generated") for spec in args.generated]
    run.features(args.sample, args.real, generated, args.out_features, args.out_correlations,
                 cone=s["isolation_cone"], bins=s["features"]["bins"], style=s["plots"]["style"],
                 dpi=s["plots"]["dpi"], max_images=s["max_images"])


def cmd_fidelity_variant(args: argparse.Namespace) -> None:
    s = _settings(args)
    try:
        describe = json.loads(args.describe)
    except json.JSONDecodeError as exc:
        raise AnalysisError(f"--describe is not valid JSON ({exc}): {args.describe!r}") from None
    run.fidelity_variant(
        args.name, {"signal": args.signal, "background": args.background},
        {"signal": args.delphes_signal, "background": args.delphes_background}, describe, args.out,
        seed=args.seed, n_baseline=args.n_baseline, settings=run.metric_settings(s))


def cmd_fidelity_table(args: argparse.Namespace) -> None:
    s = _settings(args)
    run.fidelity_study_table(args.records, args.out_csv, args.out_md, args.out_figure, style=s["plots"]["style"],
                             dpi=s["plots"]["dpi"])


# ---------------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _multi_inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--real", nargs="+", required=True, metavar="SAMPLE=PATH", help="real images.h5 per sample")
    p.add_argument("--generated", nargs="+", required=True, metavar="SAMPLE:MODEL=PATH", help="generated files")


def build_parser() -> argparse.ArgumentParser:
    parser, sub = cli.stage_parser("python -m analysis", __doc__)

    def command(name: str, func: Any, text: str) -> argparse.ArgumentParser:
        return cli.add_command(sub, name, func, text, section="analysis", reads=READS[name])

    p = command("metrics", cmd_metrics, "all metrics of one (sample, model) pair -> JSON record")
    p.add_argument("--real", required=True, help="real images.h5")
    p.add_argument("--generated", required=True, help="generated/{sample}/{model}.h5")
    p.add_argument("--sample", required=True, help="sample name (checked against the files)")
    p.add_argument("--model", required=True, help="model name (label in tables)")
    p.add_argument("--seed", type=int, required=True, help="master seed (classifier split and init)")
    p.add_argument("--out", required=True, help="output JSON")

    for name, func, text in (("emd-table", cmd_emd_table, "isolation EMD table with the paper's values"),
                             ("metrics-table", cmd_metrics_table, "metrics table of the run"),
                             ("results-table", cmd_results_table,
                              "results table: one row per sample and model, sorted by isolation EMD")):
        p = command(name, func, f"{text} (CSV + Markdown) from metrics JSON records")
        p.add_argument("--metrics", nargs="+", required=True, help="JSON records from `metrics`")
        p.add_argument("--out-csv", required=True, help="CSV output (one row per sample and model)")
        p.add_argument("--out-md", required=True, help="Markdown output (one table per sample)")
        if name == "results-table":
            p.add_argument("--simulation-cost", help="simulation_cost.json (`simulation-cost`): adds the speed-up "
                                                     "of every model over the simulation")

    p = command("simulation-cost", cmd_simulation_cost,
                "simulation CPU per image by step and sample, from the run's records (JSON + Markdown)")
    p.add_argument("--chunks", nargs="+", required=True, metavar="SAMPLE=PATH",
                   help="{sample}/generator/chunk{i}.json records")
    p.add_argument("--delphes", nargs="*", metavar="SAMPLE=PATH",
                   help="the chunks' Delphes files, same order (their provenance holds Delphes' CPU when a record "
                        "lacks it)")
    p.add_argument("--images", nargs="+", required=True, metavar="SAMPLE=PATH", help="images.h5 of each sample")
    p.add_argument("--imaging-benchmark", nargs="*", metavar="SAMPLE=PATH",
                   help="Snakemake benchmark TSV of each sample's imaging job (optional; a missing file is skipped)")
    p.add_argument("--pileup", help="pileup/minbias.json (the shared pile-up library's CPU)")
    p.add_argument("--out-json", required=True, help="JSON output")
    p.add_argument("--out-md", required=True, help="Markdown output")

    p = command("figure2", cmd_figure2, "isolation histograms real vs generated (paper Figure 2)")
    _multi_inputs(p)
    p.add_argument("--out", nargs="+", required=True, help="figure files (.pdf/.png/.svg)")

    p = command("figure3", cmd_figure3, "average images real | generated (paper Figure 3)")
    _multi_inputs(p)
    p.add_argument("--out-linear", nargs="+", required=True, help="figure files, linear colour scale")
    p.add_argument("--out-log", nargs="+", required=True, help="figure files, logarithmic colour scale")

    p = command("radial-profile", cmd_radial_profile,
                "radial ET profile (mean ET per pixel against dR) real vs generated, beside Figure 3")
    _multi_inputs(p)
    p.add_argument("--out", nargs="+", required=True, help="figure files (.pdf/.png/.svg)")

    p = command("features", cmd_features, "CaloChallenge-style feature and correlation figures of one sample")
    p.add_argument("--sample", required=True)
    p.add_argument("--real", required=True, help="real images.h5")
    p.add_argument("--generated", nargs="+", required=True, metavar="MODEL=PATH", help="generated files")
    p.add_argument("--out-features", nargs="+", required=True, help="feature-distribution figure files")
    p.add_argument("--out-correlations", nargs="+", required=True, help="correlation figure files")

    p = command("fidelity-variant", cmd_fidelity_variant,
                "detector-fidelity figures of one variant (both classes) -> JSON")
    p.add_argument("--name", required=True, help="variant name (row label)")
    p.add_argument("--signal", required=True, help="signal images.h5 of the variant")
    p.add_argument("--background", required=True, help="background images.h5 of the variant")
    p.add_argument("--delphes-signal", nargs="*", default=[], help="signal Delphes chunk files (CPU per event)")
    p.add_argument("--delphes-background", nargs="*", default=[], help="background Delphes chunk files")
    p.add_argument("--describe", default="{}", help="JSON object stored in the record (card, rendering, ...)")
    p.add_argument("--seed", type=int, required=True, help="master seed (baseline sampling, classifier)")
    p.add_argument("--n-baseline", type=_positive_int, default=20000,
                   help="independent-pixel images per class (config fidelity.n_baseline)")
    p.add_argument("--out", required=True, help="output JSON record")

    p = command("fidelity-table", cmd_fidelity_table, "fidelity table (CSV + Markdown) and average-image figure")
    p.add_argument("--records", nargs="+", required=True, help="JSON records from fidelity-variant")
    p.add_argument("--out-csv", required=True, help="CSV output")
    p.add_argument("--out-md", required=True, help="Markdown output")
    p.add_argument("--out-figure", nargs="+", required=True, help="figure files (.png/.pdf)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; a known error (AnalysisError, ImageFileError, ...) prints `error: ...` and returns 2."""
    return cli.main(build_parser(), argv)

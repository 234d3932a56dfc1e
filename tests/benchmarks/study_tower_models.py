"""Study (not a test): tower-level generators against the independent-pixel baseline and the best pixel model.

    .venv/bin/python tests/benchmarks/study_tower_models.py \\
        --real default=results/{sample}/images.h5 --real correlated=results-correlated/{sample}/images.h5 \\
        --workdir /tmp/tower_study --out-md tower_study.md

For every regime and class ({sample}: signal, background) the real images.h5 (with /towers) is the
training set of every model. Models are `training.models` entries (--variants; default: the
towers family's two designs of config.yaml and decoupled_deconv_calibrated), trained and sampled
by the model stage's CLI (`python -m model train|sample`, tests/benchmarks/study_model_variants.py),
plus the independent-pixel baseline (`python -m model baseline`). Each is scored with the analysis
stage's functions: isolation EMD (and as a multiple of the baseline's), zero-pixel fraction,
empty-cone share, the 99.9th percentile of the largest pixel ET per image, and the feature
classifier's AUC (analysis/classifier.py). docs/models.md "Tower-level generators" has the tables
this made. Trained models in --workdir are reused (delete a folder to retrain it).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from study_model_variants import run_variant  # noqa: E402

from analysis.classifier import classifier_auc  # noqa: E402
from analysis.distances import emd_noise_floor, weighted_emd  # noqa: E402
from analysis.features import zero_pixel_fraction  # noqa: E402
from analysis.isolation import empty_cone_fraction, isolation  # noqa: E402
from imaging.h5schema import read_image_file  # noqa: E402

DEFAULT_VARIANTS = ("towers_cells", "towers_count", "decoupled_deconv_calibrated")
COLUMNS = ("model", "train [s]", "iso. EMD", "x baseline", "floor", "zero frac. [%]", "empty cone [%]",
           "max pixel p99.9 [GeV]", "x real", "AUC")


def weighted_quantile(values: np.ndarray, weight: np.ndarray, q: float) -> float:
    """The q-quantile of weighted values (step CDF)."""
    order = np.argsort(values)
    cdf = np.cumsum(weight[order]) / weight.sum()
    return float(values[order][min(np.searchsorted(cdf, q), len(cdf) - 1)])


def score(real, gen, seed: int) -> dict[str, float]:
    """Every compared quantity of one generated set against its real set."""
    iso_r = isolation(real.images, real.muon_pt, real.radius)
    iso_g = isolation(gen.images, gen.muon_pt, gen.radius)
    max_g = gen.images.reshape(len(gen), -1).max(axis=1)
    return {
        "emd": weighted_emd(iso_r, iso_g, real.weight, gen.weight),
        "floor": emd_noise_floor(iso_r, real.weight, len(gen), np.random.default_rng(seed)),
        "zero": 100 * zero_pixel_fraction(gen.images, gen.weight),
        "empty": 100 * empty_cone_fraction(gen.images, gen.weight, gen.radius),
        "p999": weighted_quantile(max_g, gen.weight, 0.999),
        "auc": classifier_auc(real.images, real.weight, gen.images, gen.weight, radius=real.radius, seed=seed).auc,
    }


def study_file(regime: str, sample: str, real_path: Path, variants: dict, base: dict, workdir: Path,
               seed: int) -> list[list[str]]:
    """Rows of one (regime, class): real, baseline, then every variant."""
    real = read_image_file(real_path)
    max_r = real.images.reshape(len(real), -1).max(axis=1)
    p999_real = weighted_quantile(max_r, real.weight, 0.999)
    folder = workdir / regime / sample
    rows = [[f"real ({regime}, {sample}, {len(real)} images)", "", "", "", "",
             f"{100 * zero_pixel_fraction(real.images, real.weight):.2f}",
             f"{100 * empty_cone_fraction(real.images, real.weight, real.radius):.1f}", f"{p999_real:.1f}", "1", ""]]
    baseline = folder / "independent_pixels" / "generated.h5"
    if not baseline.exists():
        baseline.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "model", "baseline", "--in", str(real_path), "--out", str(baseline),
                        "--sample", sample, "--seed", str(seed), "--no-progress", "--config-json",
                        json.dumps({"n_generated": base.get("n_generated")})], check=True, cwd=ROOT)
    base_emd = float("nan")
    for name in ("independent_pixels", *variants):
        if name == "independent_pixels":
            s, seconds = score(real, read_image_file(baseline), seed), float("nan")
            base_emd = s["emd"]
        else:
            path, seconds = run_variant(name, variants[name], real_path, folder, base, seed, sample)
            s = score(real, read_image_file(path), seed)
        rows.append([name, "" if np.isnan(seconds) else f"{seconds:.0f}", f"{s['emd']:.4f}",
                     f"{s['emd'] / base_emd:.2f}", f"{s['floor']:.4f}", f"{s['zero']:.2f}", f"{s['empty']:.1f}",
                     f"{s['p999']:.1f}", f"{s['p999'] / p999_real:.2f}", f"{s['auc']:.3f}"])
        print(regime, sample, " | ".join(rows[-1]), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", action="append", required=True,
                   help="REGIME=PATH with {sample} in PATH (repeatable), e.g. default=results/{sample}/images.h5")
    p.add_argument("--samples", default="signal,background", help="comma-separated classes")
    p.add_argument("--variants", default=None,
                   help="JSON object {name: training.models entry} (or @file.json); default: config.yaml's "
                        + ", ".join(DEFAULT_VARIANTS))
    p.add_argument("--workdir", type=Path, required=True, help="folder for the models and samples")
    p.add_argument("--seed", type=int, default=None, help="master seed (default: config.yaml's)")
    p.add_argument("--out-md", type=Path, default=None, help="also write the tables here (Markdown)")
    args = p.parse_args(argv)

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    if args.variants is None:
        variants = {k: config["training"]["models"][k] for k in DEFAULT_VARIANTS}
    else:
        text = Path(args.variants[1:]).read_text() if args.variants.startswith("@") else args.variants
        variants = json.loads(text)
    base = {k: v for k, v in config["training"].items() if k not in ("models", "run")}
    seed = config["seed"] if args.seed is None else args.seed
    out = []
    for spec in args.real:
        regime, _, pattern = spec.partition("=")
        for sample in args.samples.split(","):
            rows = study_file(regime, sample, Path(pattern.format(sample=sample)), variants, base, args.workdir, seed)
            out += [f"\n**{regime}, {sample}**\n", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS),
                    *("| " + " | ".join(r) + " |" for r in rows)]
    text = "\n".join(out) + "\n"
    if args.out_md:
        args.out_md.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Study (not a test): train model variants on one images.h5 and compare what they generate.

    .venv/bin/python tests/benchmarks/study_model_variants.py --real results-correlated/signal/images.h5 \\
        --variants '{"fc_k128": {"arch": "fc", "K": 128}, "fc_k512": {"arch": "fc", "K": 512}}' \\
        --workdir /tmp/variants --out-md variants.md

Each variant is a `training.models` entry on top of config.yaml's `training:` section. It is
trained and sampled by the model stage's own CLI (`python -m model train|sample`, as the
workflow runs it) and compared with the real images: isolation EMD (and its statistical floor),
zero-pixel fraction, share of empty isolation cones (no non-zero pixel at dR < 0.2), share of
near-zero isolation, mean and spread of the non-zero pixel count in the cone, and the
two-sample classifier AUC, all with the analysis stage's functions. Trained variants in
--workdir are reused (delete a variant's folder to retrain it). docs/scale_study.md has the
tables this made.

With --seeds each variant is trained once per master seed (folders <variant>/seed<S>). With
--baseline the independent-pixel baseline (`python -m model baseline`) is scored too, and each
row gets its isolation EMD over the baseline's ("x base") and a "diverged" verdict: training
stopped on a non-finite loss, or the isolation EMD is over DIVERGED_EMD_RATIO x the baseline's,
or over half the generated images are empty (a collapse of the pixel occupancy).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from analysis.classifier import classifier_auc  # noqa: E402
from analysis.distances import emd_noise_floor, weighted_emd  # noqa: E402
from analysis.features import zero_pixel_fraction  # noqa: E402
from analysis.geometry import cone_mask  # noqa: E402
from analysis.isolation import DEFAULT_CONE, empty_cone_fraction, isolation, low_isolation_fraction  # noqa: E402
from imaging.h5schema import read_image_file  # noqa: E402

COLUMNS = ("variant", "train [s]", "iso. EMD", "floor", "zero frac. [%]", "empty cone [%]", "iso<0.02 [%]",
           "cone count mean", "cone count sd", "AUC")
#: with --baseline: the variant's isolation EMD over the baseline's, and whether it diverged
BASELINE_COLUMNS = ("x base", "diverged")
#: a variant whose isolation EMD is above this multiple of the baseline's has diverged
DIVERGED_EMD_RATIO = 5.0
#: ... as has one whose generated images are more than this share entirely empty
DIVERGED_EMPTY_IMAGES = 0.5


def describe(images: np.ndarray, pt: np.ndarray, weight: np.ndarray, radius: float) -> dict[str, float | np.ndarray]:
    """The compared quantities of one image set (weighted)."""
    w = weight / weight.sum()
    mask = cone_mask(images.shape[1], radius, DEFAULT_CONE).reshape(-1)
    count = np.count_nonzero(images.reshape(len(images), -1)[:, mask], axis=1)
    iso = isolation(images, pt, radius)
    mean = float(w @ count)
    return {"iso": iso, "zero": zero_pixel_fraction(images, weight),
            "empty": empty_cone_fraction(images, weight, radius), "low": low_isolation_fraction(iso, weight),
            "count_mean": mean,
            "count_sd": float(np.sqrt(w @ (count - mean) ** 2))}


def run_variant(name: str, entry: dict, real: Path, workdir: Path, base: dict, seed: int,
                sample: str, folder: Path | None = None) -> tuple[Path | None, float]:
    """Train (unless already trained) and sample one variant with the model CLI; (generated file, train s).

    The file is None when training stopped with an error (e.g. a non-finite loss: diverged); train.log says why.
    """
    folder = folder or workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    settings = json.dumps({**base, "models": {name: entry}})
    common = ["--model-name", name, "--sample", sample, "--seed", str(seed), "--config-json", settings]
    model, generated = folder / "model.pt", folder / "generated.h5"
    seconds = float("nan")
    if not model.exists():
        start = time.perf_counter()
        with open(folder / "train.log", "w") as log:
            done = subprocess.run([sys.executable, "-m", "model", "train", "--no-progress", "--in", str(real),
                                   "--out", str(model), "--checkpoint-dir", str(folder / "checkpoints"), *common],
                                  cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            return None, seconds
        generated.unlink(missing_ok=True)
    if not generated.exists():
        with open(folder / "sample.log", "w") as log:
            subprocess.run([sys.executable, "-m", "model", "sample", "--model", str(model), "--real", str(real),
                            "--out", str(generated), *common],
                           check=True, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    return generated, seconds


def run_baseline(real: Path, workdir: Path, base: dict, seed: int, sample: str) -> Path:
    """The independent-pixel baseline's generated file (made once with the model CLI)."""
    out = workdir / "independent_pixels" / "generated.h5"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "model", "baseline", "--in", str(real), "--out", str(out),
                        "--sample", sample, "--seed", str(seed), "--no-progress",
                        "--config-json", json.dumps({"n_generated": base.get("n_generated")})],
                       check=True, cwd=ROOT)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", type=Path, required=True, help="real images.h5 to train on and compare with")
    p.add_argument("--variants", required=True,
                   help="JSON object {name: training.models entry} (or @file.json)")
    p.add_argument("--workdir", type=Path, required=True, help="folder for the variants' models and samples")
    p.add_argument("--sample", default=None, help="sample name for the seed streams (default: the file's)")
    p.add_argument("--seed", type=int, default=None, help="master seed (default: config.yaml's)")
    p.add_argument("--out-md", type=Path, default=None, help="also write the table here (Markdown)")
    p.add_argument("--out-json", type=Path, default=None, help="also write the rows here (JSON list of objects)")
    p.add_argument("--seeds", default=None,
                   help="comma-separated master seeds: train every variant once per seed (default: --seed only)")
    p.add_argument("--base-json", default=None,
                   help="JSON object of training keys set over config.yaml's (e.g. n_generated, sample_batch_size)")
    p.add_argument("--baseline", action="store_true",
                   help="also score the independent-pixel baseline; add 'x base' and 'diverged' columns")
    args = p.parse_args(argv)

    text = Path(args.variants[1:]).read_text() if args.variants.startswith("@") else args.variants
    variants = json.loads(text)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    base = {k: v for k, v in config["training"].items() if k not in ("models", "run")}
    base.update(json.loads(args.base_json) if args.base_json else {})
    seed = config["seed"] if args.seed is None else args.seed
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [seed]
    real = read_image_file(args.real)
    sample = args.sample or real.sample or "signal"
    ref = describe(real.images, real.muon_pt, real.weight, real.radius)
    columns = COLUMNS + (BASELINE_COLUMNS if args.baseline else ())
    rows = [["real", "", "", "", f"{100 * ref['zero']:.2f}", f"{100 * ref['empty']:.1f}", f"{100 * ref['low']:.1f}",
             f"{ref['count_mean']:.1f}", f"{ref['count_sd']:.1f}", ""] + ([""] * 2 if args.baseline else [])]
    print(" | ".join(rows[0]), flush=True)

    def score(path: Path) -> tuple[dict, float, float, float, float]:
        gen = read_image_file(path)
        got = describe(gen.images, gen.muon_pt, gen.weight, gen.radius)
        emd = weighted_emd(ref["iso"], got["iso"], real.weight, gen.weight)
        floor = emd_noise_floor(ref["iso"], real.weight, len(gen), np.random.default_rng(seed))
        auc = classifier_auc(real.images, real.weight, gen.images, gen.weight, radius=real.radius, seed=seed).auc
        empty_images = float(np.mean(~gen.images.reshape(len(gen), -1).any(axis=1)))
        return got, emd, floor, auc, empty_images

    records: list[dict] = []
    baseline_emd = float("nan")
    if args.baseline:
        got, baseline_emd, floor, auc, _ = score(run_baseline(args.real, args.workdir, base, seed, sample))
        rows.append(["independent_pixels", "0", f"{baseline_emd:.4f}", f"{floor:.4f}", f"{100 * got['zero']:.2f}",
                     f"{100 * got['empty']:.1f}", f"{100 * got['low']:.1f}", f"{got['count_mean']:.1f}",
                     f"{got['count_sd']:.1f}", f"{auc:.3f}", "1.00", "no"])
        records.append({"variant": "independent_pixels", "seed": seed, "iso_emd": baseline_emd, "floor": floor,
                        "zero": got["zero"], "empty_cone": got["empty"], "auc": auc, "x_base": 1.0,
                        "diverged": False})
        print(" | ".join(rows[-1]), flush=True)
    for name, entry in variants.items():
        for s in seeds:
            label = name if len(seeds) == 1 else f"{name} (seed {s})"
            folder = args.workdir / name if len(seeds) == 1 else args.workdir / name / f"seed{s}"
            path, seconds = run_variant(name, entry, args.real, args.workdir, base, s, sample, folder)
            if path is None:  # training stopped (non-finite loss): diverged
                rows.append([label, f"{seconds:.0f}"] + ["-"] * (len(columns) - 3) + ["yes (loss)"])
                records.append({"variant": name, "seed": s, "train_s": seconds, "diverged": True,
                                "reason": "training stopped (train.log)"})
                print(" | ".join(rows[-1]), flush=True)
                continue
            got, emd, floor, auc, empty_images = score(path)
            row = [label, f"{seconds:.0f}", f"{emd:.4f}", f"{floor:.4f}", f"{100 * got['zero']:.2f}",
                   f"{100 * got['empty']:.1f}", f"{100 * got['low']:.1f}", f"{got['count_mean']:.1f}",
                   f"{got['count_sd']:.1f}", f"{auc:.3f}"]
            record = {"variant": name, "seed": s, "train_s": seconds, "iso_emd": emd, "floor": floor,
                      "zero": got["zero"], "empty_cone": got["empty"], "low": got["low"],
                      "count_mean": got["count_mean"], "count_sd": got["count_sd"], "auc": auc,
                      "empty_images": empty_images}
            if args.baseline:
                ratio = emd / baseline_emd
                diverged = ratio > DIVERGED_EMD_RATIO or empty_images > DIVERGED_EMPTY_IMAGES
                row += [f"{ratio:.2f}", "yes" if diverged else "no"]
                record.update(x_base=ratio, diverged=diverged)
            rows.append(row)
            records.append(record)
            print(" | ".join(rows[-1]), flush=True)
    table = "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
                       *("| " + " | ".join(r) + " |" for r in rows)]) + "\n"
    if args.out_md:
        args.out_md.write_text(table)
    if args.out_json:
        args.out_json.write_text(json.dumps({"real": str(args.real), "sample": sample, "real_zero": ref["zero"],
                                             "real_empty_cone": ref["empty"], "rows": records}, indent=1))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

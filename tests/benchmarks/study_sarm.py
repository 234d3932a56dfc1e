"""Study (not a test): configured models against the independent-pixel baseline on real images.

    .venv/bin/python tests/benchmarks/study_sarm.py --real results/signal/images.h5 --workdir /tmp/sarm_study \\
        [--models sarm] [--n-generated 20000] [--threads 1] [--out-md table.md]

Each model is a `training.models` entry of config.yaml, trained and sampled by the model stage's
own CLI (`python -m model train|sample`, as the workflow runs them; the `sarm` entry by default);
the baseline by `python -m model baseline`. Every generated set is compared with the real images
with the analysis stage's functions (tests/benchmarks/study_model_variants.py `describe`):
isolation EMD, its statistical floor, the ratio to the baseline's EMD, zero-pixel fraction,
empty isolation cones, near-zero isolation and the two-sample classifier AUC, plus the wall
and process CPU seconds of training and sampling. Trained models in --workdir are reused.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))

from study_model_variants import describe  # noqa: E402

from analysis.classifier import classifier_auc  # noqa: E402
from analysis.distances import emd_noise_floor, weighted_emd  # noqa: E402
from imaging.h5schema import read_image_file  # noqa: E402

COLUMNS = ("model", "train wall [s]", "train cpu [s]", "sample wall [s]", "sample cpu [s]", "iso. EMD", "floor",
           "/ baseline", "zero frac. [%]", "empty cone [%]", "iso<0.02 [%]", "AUC")


def run_timed(cmd: list[str], log: Path) -> tuple[float, float]:
    """Run a CLI command (output to `log`); (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as f:
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--real", type=Path, required=True, help="real images.h5 to train on and compare with")
    p.add_argument("--workdir", type=Path, required=True, help="folder for the models and generated files")
    p.add_argument("--models", nargs="+", default=["sarm"], help="training.models entries of config.yaml")
    p.add_argument("--n-generated", type=int, default=20000, help="images generated per model")
    p.add_argument("--threads", type=int, default=1, help="training.threads of train and sample")
    p.add_argument("--override", default="{}",
                   help="JSON merged into every model's entry, e.g. '{\"epochs\": 10}' (more epochs resume the "
                        "checkpoint in --workdir)")
    p.add_argument("--out-md", type=Path, help="also write the table here (Markdown)")
    args = p.parse_args(argv)

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    seed = config["seed"]
    real = read_image_file(args.real)
    sample = real.sample or "signal"
    ref = describe(real.images, real.muon_pt, real.weight, real.radius)
    base = {k: v for k, v in config["training"].items() if k not in ("models", "run")}
    base.update(n_generated=args.n_generated, threads=args.threads)
    generated: dict[str, Path] = {}
    times: dict[str, list[float]] = {}
    for name in ["independent_pixels", *args.models]:
        folder = args.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        out, model = folder / "generated.h5", folder / "model.pt"
        common = ["--sample", sample, "--seed", str(seed), "--no-progress"]
        times[name] = [0.0, 0.0, 0.0, 0.0]
        if name == "independent_pixels":
            if not out.exists():
                times[name][2:] = run_timed([sys.executable, "-m", "model", "baseline", "--in", str(args.real), "--out",
                                             str(out), "--config-json", json.dumps({"n_generated": args.n_generated}),
                                             *common], folder / "baseline.log")
        else:
            entry = {**config["training"]["models"][name], **json.loads(args.override)}
            settings = json.dumps({**base, "models": {name: entry}})
            named = ["--model-name", name, "--config-json", settings, *common]
            if not model.exists():
                times[name][:2] = run_timed([sys.executable, "-m", "model", "train", "--in", str(args.real), "--out",
                                             str(model), "--checkpoint-dir", str(folder / "checkpoints"), *named],
                                            folder / "train.log")
                out.unlink(missing_ok=True)
            if not out.exists():
                times[name][2:] = run_timed([sys.executable, "-m", "model", "sample", "--model", str(model), "--real",
                                             str(args.real), "--out", str(out), *named], folder / "sample.log")
        generated[name] = out

    rows = [["real", "", "", "", "", "", "", "", f"{100 * ref['zero']:.2f}", f"{100 * ref['empty']:.1f}",
             f"{100 * ref['low']:.1f}", ""]]
    baseline_emd = None
    for name, path in generated.items():
        gen = read_image_file(path)
        got = describe(gen.images, gen.muon_pt, gen.weight, gen.radius)
        emd = weighted_emd(ref["iso"], got["iso"], real.weight, gen.weight)
        baseline_emd = emd if baseline_emd is None else baseline_emd
        floor = emd_noise_floor(ref["iso"], real.weight, len(gen), np.random.default_rng(seed))
        auc = classifier_auc(real.images, real.weight, gen.images, gen.weight, radius=real.radius, seed=seed).auc
        t = times[name]
        rows.append([name, *(f"{v:.0f}" if v else "(reused)" if i < 2 and name != "independent_pixels" else ""
                             for i, v in enumerate(t)), f"{emd:.4f}", f"{floor:.4f}", f"{emd / baseline_emd:.2f}",
                     f"{100 * got['zero']:.2f}", f"{100 * got['empty']:.1f}", f"{100 * got['low']:.1f}", f"{auc:.3f}"])
        print(" | ".join(rows[-1]), flush=True)
    table = "\n".join(["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS),
                       *("| " + " | ".join(r) + " |" for r in rows)]) + "\n"
    if args.out_md:
        args.out_md.write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

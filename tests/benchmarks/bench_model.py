"""Benchmark of the model stage: training images/s and sampling images/s (not a test).

    .venv/bin/python tests/benchmarks/bench_model.py [--threads 2] [--n 20000] [--epochs 1] [--device auto]

Trains each configured architecture (config.yaml `training:` defaults) on synthetic sparse
images for a couple of epochs and prints a table with images/s and the projected time for
the target workload (30 epochs on 100k images; target <= 10 min on 2 CPU cores).
On a shared machine wall-clock rates depend on the load, so the table also gives the process
CPU time per image and the projection from it (CPU seconds / threads = wall time on idle cores).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from model.baseline import sample_independent_pixels  # noqa: E402
from model.config import TrainConfig  # noqa: E402
from model.data import training_data_from_arrays  # noqa: E402
from model.families import family_module, load_model, save_model, train  # noqa: E402
from model.synthetic import synthetic_images  # noqa: E402


def configured_models() -> dict[str, dict]:
    """Per-model settings from config.yaml `training:` (top-level defaults + per-model overrides)."""
    section = yaml.safe_load((ROOT / "config.yaml").read_text()).get("training", {}) or {}
    keys = {f for f in TrainConfig.__dataclass_fields__ if f != "seed"}
    base = {k: v for k, v in section.items() if k in keys}
    models = section.get("models") or {"decoupled_fc": {"arch": "fc"}, "decoupled_deconv": {"arch": "deconv"}}
    return {name: {**base, **over} for name, over in models.items()}


def _train(data, cfg: TrainConfig):
    """Train one model of any family; returns its result and a function n -> generated images."""
    res = train(data, cfg, None, progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        save_model(Path(tmp) / "model.pt", res, data)
        model, record = load_model(Path(tmp) / "model.pt", device=res.device)
    family = family_module(cfg.family)
    return res, lambda n: family.generate(
        model, n, seed=2, device=res.device, progress=False,
        pt_gev=np.resize(data.muon_pt_gev.numpy(), n) if family.conditional(model) else None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--n", type=int, default=20000, help="synthetic training images")
    p.add_argument("--epochs", type=int, default=2, help="epochs timed per model (first is warm-up if > 1)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--target-images", type=int, default=100_000)
    p.add_argument("--target-epochs", type=int, default=30)
    p.add_argument("--models", nargs="+", help="only these configured models (default: all)")
    args = p.parse_args()
    models = configured_models()
    unknown = sorted(set(args.models or ()) - set(models))
    if unknown:
        raise SystemExit(f"error: --models {unknown} are not in config.yaml training.models ({sorted(models)})")
    torch.set_num_threads(args.threads)
    images, pt, w = synthetic_images(args.n, seed=1)
    data = training_data_from_arrays(images, w, pt)
    print(f"# {args.n} synthetic images, {100 * (images == 0).mean():.2f}% zero pixels, torch {torch.__version__}, "
          f"{args.threads} threads, device {args.device}")
    header = (f"{'model':<33}{'arch':<7}{'obj':<6}{'width':>6}{'B':>5}{'K':>5}{'train img/s':>12}{'30ep@100k min':>14}"
              f"{'cpu us/img':>11}{'30ep@100k min (cpu)':>20}{'sample img/s':>13}")
    print(header)
    print("-" * len(header))
    for name, settings in models.items():
        if args.models and name not in args.models:
            continue
        cfg = TrainConfig.from_mapping({**settings, "epochs": args.epochs, "seed": 1, "device": args.device})
        cpu0 = time.process_time()
        res, sampler = _train(data, cfg)
        cpu_per_image = (time.process_time() - cpu0) / (args.n * args.epochs)  # includes set-up
        rows = res.log_rows[1:] if len(res.log_rows) > 1 else res.log_rows
        rate = sum(r["images_per_s"] for r in rows) / len(rows)
        cpu_minutes = args.target_epochs * args.target_images * cpu_per_image / args.threads / 60
        t0 = time.perf_counter()
        sampler(20000)
        srate = 20000 / (time.perf_counter() - t0)
        minutes = args.target_epochs * args.target_images / rate / 60
        print(f"{name:<33}{cfg.arch:<7}{cfg.objective:<6}{cfg.width:>6}{cfg.batch_size:>5}{cfg.K:>5}{rate:>12.0f}"
              f"{minutes:>14.1f}{cpu_per_image * 1e6:>11.0f}{cpu_minutes:>20.1f}{srate:>13.0f}", flush=True)
    t0 = time.perf_counter()
    sample_independent_pixels(data, 20000, seed=3, progress=False)
    print(f"{'independent_pixels':<33}{'-':<7}{'-':<6}{'':>6}{'':>5}{'':>5}{'':>12}{'':>14}{'':>11}{'':>20}"
          f"{20000 / (time.perf_counter() - t0):>13.0f}")
    print(f"# load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()

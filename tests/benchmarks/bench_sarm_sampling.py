"""Benchmark of SARM sampling (not a test): images/s of the cached pixel-by-pixel sampler.

    .venv/bin/python tests/benchmarks/bench_sarm_sampling.py [--model results/models/signal/sarm/model.pt]
        [--n 20000] [--threads 1 2] [--device cpu] [--batch-size 4096] [--reference 64]

Without --model, a SARM with config.yaml's `sarm` settings is trained for one epoch on synthetic
sparse images (zero outside the dR < radius disc, as real images): sampling costs the same for any
trained weights. For each thread count it samples --n images and prints wall time, process CPU
time and the projection from it (CPU seconds / threads = wall time on idle cores; the shared
machine's wall clock depends on its load), and the time projected for 20,000 images (target
<= 10 min on 2 CPU cores). --reference N also times the naive sampler (the full network before
every pixel) on N images, for the speed-up of the caches.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from model import sarm  # noqa: E402
from model.config import TrainConfig  # noqa: E402
from model.data import training_data_from_arrays  # noqa: E402
from model.families import load_model, train  # noqa: E402
from model.synthetic import synthetic_images  # noqa: E402


def configured_sarm() -> dict:
    """config.yaml's `training:` defaults with its `sarm` entry applied."""
    section = yaml.safe_load((ROOT / "config.yaml").read_text())["training"]
    keys = {f for f in TrainConfig.__dataclass_fields__ if f != "seed"}
    return {**{k: v for k, v in section.items() if k in keys}, **section["models"]["sarm"]}


def untrained_model(device: str) -> sarm.SarmNet:
    """A SARM trained one epoch on 2,000 synthetic disc images (the config's settings)."""
    images, pt, w = synthetic_images(2000, seed=1)
    images = images * sarm.disc_mask(images.shape[1]).view(images.shape[1], -1).numpy()
    data = training_data_from_arrays(images, w, pt)
    cfg = TrainConfig.from_mapping({**configured_sarm(), "epochs": 1, "seed": 1, "device": device})
    return train(data, cfg, None, progress=False).modules["net"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="a trained sarm model.pt (default: train one on synthetic images)")
    p.add_argument("--n", type=int, default=20000, help="images to sample per timing")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch CPU thread counts to time")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--batch-size", type=int, default=4096, help="images sampled at once")
    p.add_argument("--reference", type=int, default=0, help="also time the naive sampler on this many images")
    args = p.parse_args()
    torch.set_num_threads(max(args.threads))
    net = load_model(args.model, device=args.device)[0] if args.model else untrained_model(args.device)
    spec = net.spec
    print(f"# sarm {spec.layers} layers x {spec.channels} channels, kernel {spec.kernel}, {spec.components} "
          f"components; {int(net.support.sum())} of {net.support.numel()} pixels sampled; torch {torch.__version__}, "
          f"device {args.device}, batch {args.batch_size}")
    print(f"{'threads':>8}{'images':>8}{'wall s':>9}{'img/s':>8}{'cpu s':>9}{'img/s (cpu)':>12}{'20k min (cpu)':>14}"
          f"{'zero frac':>10}")
    for threads in args.threads if args.device == "cpu" else [max(args.threads)]:
        torch.set_num_threads(threads)
        if args.device != "cpu":
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        images = sarm.sample_images(net, args.n, seed=3, batch_size=args.batch_size, device=args.device, progress=False)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        cpu_rate = args.n / (cpu / threads)
        print(f"{threads:>8}{args.n:>8}{wall:>9.1f}{args.n / wall:>8.0f}{cpu:>9.1f}{cpu_rate:>12.0f}"
              f"{20000 / cpu_rate / 60:>14.1f}{(images == 0).mean():>10.4f}", flush=True)
    if args.reference:
        wall = time.perf_counter()
        sarm.sample_images_reference(net, args.reference, seed=3, batch_size=args.batch_size, device=args.device)
        wall = time.perf_counter() - wall
        print(f"# naive sampler (full network before every pixel): {args.reference / wall:.1f} img/s wall "
              f"({max(args.threads)} threads)")
    print(f"# load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()

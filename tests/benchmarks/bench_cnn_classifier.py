"""Benchmark of the pixel CNN classifier (analysis/cnn_classifier.py): AUC and time per device.

    .venv/bin/python tests/benchmarks/bench_cnn_classifier.py [--pair REAL.h5 GEN.h5 ...] [--device cpu cuda]

Without --pair it uses toy images (two halves of one toy sample, and the toy against its
independent-pixel resampling). Prints one Markdown row per (pair, device): test AUC with its
bootstrap error, epochs, wall time. Not a test (pytest collects only test_*.py).
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from analysis.cnn_classifier import CnnSettings, cnn_classifier_auc
from analysis.toy import toy_images
from imaging.h5schema import read_image_file
from model.baseline import independent_pixel_images


def _pairs(args: argparse.Namespace) -> dict[str, tuple[np.ndarray, ...]]:
    if args.pair:
        out = {}
        for real_path, gen_path in args.pair:
            r, g = read_image_file(real_path), read_image_file(gen_path)
            out[f"{real_path} vs {gen_path}"] = (r.images, r.weight, g.images, g.weight)
        return out
    rng = np.random.default_rng(0)
    images, _, w = toy_images(2 * args.n, "background", rng)
    resampled = independent_pixel_images(images[: args.n], w[: args.n], args.n, rng)
    return {"toy background: half vs half": (images[: args.n], w[: args.n], images[args.n:], w[args.n:]),
            "toy background vs independent pixels": (images[: args.n], w[: args.n], resampled, np.ones(args.n))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pair", nargs=2, action="append", metavar=("REAL", "GENERATED"), help="two images files")
    parser.add_argument("--device", nargs="+", default=["cpu"], help="torch devices (cpu, cuda)")
    parser.add_argument("--n", type=int, default=2000, help="toy images per class (without --pair)")
    parser.add_argument("--seed", type=int, default=20191214)
    args = parser.parse_args()
    print(f"torch {torch.__version__}; CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    print("| pair | device | images per class (train / val / test) | AUC | best epoch / epochs | time [s] |")
    print("|---|---|---|---|---|---|")
    for name, (r, rw, g, gw) in _pairs(args).items():
        for device in args.device:
            res = cnn_classifier_auc(r, rw, g, gw, seed=args.seed, settings=dataclasses.replace(CnnSettings(),
                                                                                                device=device))
            print(f"| {name} | {device} | {res.n_train} / {res.n_validation} / {res.n_test} | {res.auc:.3f} ± "
                  f"{res.auc_err:.3f} | {res.best_epoch} / {res.epochs} | {res.seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()

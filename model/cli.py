"""`python -m model {train,sample,baseline,synthetic}`: the model stage's command line."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from common import cli
from common.provenance import config_digest
from common.seeds import derive_seed

from .baseline import MODEL_NAME, baseline_to_file
from .config import TrainConfig
from .data import load_training_data
from .errors import ModelError
from .families import train_and_save
from .likelihoods import LIKELIHOODS
from .sampling import sample_to_file
from .synthetic import write_synthetic_file

log = logging.getLogger("model")


def _set_threads(n: int) -> None:
    torch.set_num_threads(max(1, n))


def _settings_json(text: str | None) -> dict:
    """The --settings JSON object (training settings by TrainConfig key), or {}."""
    if not text:
        return {}
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"--settings is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(settings, dict):
        raise ModelError(f"--settings must be a JSON object of training settings, got {text!r}")
    if "seed" in settings:
        raise ModelError("--settings may not set 'seed': the model's seed derives from --seed, --sample and --model-name")
    return settings


def cmd_train(args: argparse.Namespace) -> None:
    settings = _settings_json(args.settings)
    # explicit flags win over --settings; what neither gives takes TrainConfig's default
    settings.update({k: v for k, v in (
        ("arch", args.arch), ("width", args.width), ("noise_dim", args.noise_dim), ("epochs", args.epochs),
        ("batch_size", args.batch_size), ("K", args.K), ("lr", args.lr), ("objective", args.objective),
        ("likelihood", args.likelihood), ("device", args.device),
    ) if v is not None})
    settings["seed"] = derive_seed(args.seed, "train", args.sample or "", args.model_name)
    cfg = TrainConfig.from_mapping(settings)
    data = load_training_data(args.input, max_images=args.max_images)
    out = Path(args.out)
    ckpt_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else out.parent / "checkpoints"
    train_and_save(data, cfg, ckpt_dir, out, args.log_csv or out.with_name("train_log.csv"),
                   progress=not args.no_progress, extra={
                       "master_seed": args.seed, "model_name": args.model_name, "training_images": str(args.input),
                       "settings_digest": config_digest(cfg.to_dict())})
    log.info("wrote %s", out)


def cmd_sample(args: argparse.Namespace) -> None:
    seed = derive_seed(args.seed, "sample", args.sample or "", args.model_name)
    path = sample_to_file(args.model, args.out, n=args.n, seed=seed, model_name=args.model_name,
                  device=args.device, batch_size=args.batch_size, progress=not args.no_progress,
                  real=args.real)
    log.info("wrote %s", path)


def cmd_baseline(args: argparse.Namespace) -> None:
    seed = derive_seed(args.seed, "sample", args.sample or "", MODEL_NAME)
    path = baseline_to_file(args.input, args.out, n=args.n, seed=seed, progress=not args.no_progress)
    log.info("wrote %s", path)


def cmd_synthetic(args: argparse.Namespace) -> None:
    path = write_synthetic_file(args.out, args.n, npix=args.npix, seed=args.seed, sample=args.sample or "signal")
    log.info("wrote %s (%d synthetic images)", path, args.n)


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m model", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--seed", type=int, default=0, help="master seed (streams derive from seed, sample, model)")
        sp.add_argument("--sample", default="", help="sample name (signal/background), part of the seed stream")
        sp.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: fastest per core at these sizes)")
        sp.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")

    t = sub.add_parser("train", help="train one model (decoupled generator, GAN or VAE: setting `family`) on an images.h5 file")
    t.add_argument("--in", dest="input", required=True, help="training images (images.h5)")
    t.add_argument("--out", required=True, help="model file to write (model.pt)")
    t.add_argument("--log-csv", help="per-epoch CSV log (default: train_log.csv next to --out)")
    t.add_argument("--checkpoint-dir", help="checkpoint folder (default: checkpoints/ next to --out)")
    t.add_argument("--model-name", default="model", help="model name (part of the seed stream)")
    t.add_argument("--settings", metavar="JSON",
                   help="training settings as a JSON object keyed like config.yaml `training:` model entries "
                        "(the workflow passes every setting this way); the flags below override it")
    t.add_argument("--arch", choices=["fc", "deconv"], help=f"generator architecture (default {d.arch})")
    t.add_argument("--width", type=int, help=f"hidden units (fc) / first deconv channels (default {d.width})")
    t.add_argument("--noise-dim", type=int, help=f"noise vector size (default {d.noise_dim})")
    t.add_argument("--epochs", type=int, help=f"training epochs (default {d.epochs})")
    t.add_argument("--batch-size", type=int, help=f"data images per step (default {d.batch_size})")
    t.add_argument("--K", type=int, help=f"generated parameter sets per step (default {d.K})")
    t.add_argument("--lr", type=float, help=f"Adam learning rate (default {d.lr})")
    t.add_argument("--objective", choices=["bound", "paper"], help=f"training objective (default {d.objective})")
    t.add_argument("--likelihood", choices=sorted(LIKELIHOODS),
                   help=f"non-zero value likelihood (default {d.likelihood})")
    t.add_argument("--device", help=f"auto | cpu | cuda | cuda:N (default {d.device})")
    t.add_argument("--max-images", type=int, help="use only the first N images (tests, benchmarks)")
    common(t)
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="generate images from a trained model into the images.h5 schema")
    s.add_argument("--model", required=True, help="trained model.pt")
    s.add_argument("--out", required=True, help="generated images file (.h5)")
    s.add_argument("--model-name", required=True, help="model name (recorded; part of the seed stream)")
    s.add_argument("--n", type=int, help="number of images (default: as many as the training images)")
    s.add_argument("--real", help="the real images.h5 the model was trained on (pT-conditional models draw "
                                  "their muon pT from its weighted pT distribution)")
    s.add_argument("--batch-size", type=int, default=4096, help="images per batch")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    common(s)
    s.set_defaults(func=cmd_sample)

    b = sub.add_parser("baseline", help="independent-pixel baseline from real images")
    b.add_argument("--in", dest="input", required=True, help="real images (images.h5)")
    b.add_argument("--out", required=True, help="generated images file (.h5)")
    b.add_argument("--n", type=int, help="number of images (default: as many as real)")
    common(b)
    b.set_defaults(func=cmd_baseline)

    y = sub.add_parser("synthetic", help="write synthetic sparse images (tests/benchmarks; not physics)")
    y.add_argument("--out", required=True, help="images.h5 to write")
    y.add_argument("--n", type=int, default=1000, help="number of images")
    y.add_argument("--npix", type=int, default=32, help="image side in pixels")
    common(y)
    y.set_defaults(func=cmd_synthetic)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; a ModelError prints `error: <message>` and returns 2."""
    return cli.main(build_parser(), argv, before=lambda args: _set_threads(args.threads))

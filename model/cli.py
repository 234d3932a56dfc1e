"""`python -m model {train,sample,baseline,synthetic}`: the model stage's command line."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from common import cli
from common.provenance import config_digest
from common.seeds import derive_seed
from common.settings import parse_section

from .baseline import MODEL_NAME, baseline_to_file
from .config import FAMILIES, TrainConfig
from .data import load_training_data
from .families import train_and_save
from .sampling import sample_to_file
from .settings import READS, model_settings
from .synthetic import write_synthetic_file

log = logging.getLogger("model")


def _section(args: argparse.Namespace) -> dict[str, Any]:
    """The command's part of the training section, defaults filled in; sets torch's CPU threads."""
    section = parse_section(args.config_json, "training", READS[args.command])
    # train and sample use training.threads (their rules' `threads:`); the baseline (numpy) declares one
    torch.set_num_threads(max(1, int(section["threads"])) if "threads" in section else 1)
    return section


def cmd_train(args: argparse.Namespace) -> None:
    settings = model_settings(_section(args), args.model_name)
    settings["seed"] = derive_seed(args.seed, "train", args.sample or "", args.model_name)
    cfg = TrainConfig.from_mapping(settings)
    data = load_training_data(args.input, max_images=args.max_images, towers=cfg.family == "towers")
    out = Path(args.out)
    ckpt_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else out.parent / "checkpoints"
    train_and_save(data, cfg, ckpt_dir, out, args.log_csv or out.with_name("train_log.csv"),
                   progress=not args.no_progress, extra={
                       "master_seed": args.seed, "model_name": args.model_name, "training_images": str(args.input),
                       "settings_digest": config_digest(cfg.to_dict())})
    log.info("wrote %s", out)


def cmd_sample(args: argparse.Namespace) -> None:
    section = _section(args)
    # the model's own device setting, else the default (a by-hand call needs no models entry)
    device = section["models"].get(args.model_name, {}).get("device", section["device"])
    seed = derive_seed(args.seed, "sample", args.sample or "", args.model_name)
    path = sample_to_file(args.model, args.out, n=section["n_generated"], seed=seed, model_name=args.model_name,
                          device=device, batch_size=section["sample_batch_size"], progress=not args.no_progress,
                          real=args.real, cuda_batch_size=section["sample_batch_size_cuda"])
    log.info("wrote %s", path)


def cmd_baseline(args: argparse.Namespace) -> None:
    section = _section(args)
    seed = derive_seed(args.seed, "sample", args.sample or "", MODEL_NAME)
    path = baseline_to_file(args.input, args.out, n=section["n_generated"], seed=seed, progress=not args.no_progress)
    log.info("wrote %s", path)


def cmd_synthetic(args: argparse.Namespace) -> None:
    path = write_synthetic_file(args.out, args.n, npix=args.npix, seed=args.seed, sample=args.sample or "signal")
    log.info("wrote %s (%d synthetic images)", path, args.n)


def build_parser() -> argparse.ArgumentParser:
    p, sub = cli.stage_parser("python -m model", __doc__)

    def command(name: str, func: Any, text: str) -> argparse.ArgumentParser:
        sp = cli.add_command(sub, name, func, text, section="training", reads=READS.get(name, ()))
        sp.add_argument("--seed", type=int, default=0, help="master seed (streams derive from seed, sample, model)")
        sp.add_argument("--sample", default="", help="sample name (signal/background), part of the seed stream")
        sp.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
        return sp

    t = command("train", cmd_train, f"train one model ({', '.join(FAMILIES)}: setting `family`) on an images.h5 file")
    t.add_argument("--in", dest="input", required=True, help="training images (images.h5)")
    t.add_argument("--out", required=True, help="model file to write (model.pt)")
    t.add_argument("--model-name", required=True,
                   help="the model: its entry of training.models gives its settings (and it is part of the seed "
                        "stream)")
    t.add_argument("--log-csv", help="per-epoch CSV log (default: train_log.csv next to --out)")
    t.add_argument("--checkpoint-dir", help="checkpoint folder (default: checkpoints/ next to --out)")
    t.add_argument("--max-images", type=int, help="use only the first N images (tests, benchmarks)")

    s = command("sample", cmd_sample, "generate images from a trained model (any family) into the images.h5 schema")
    s.add_argument("--model", required=True, help="trained model.pt")
    s.add_argument("--out", required=True, help="generated images file (.h5)")
    s.add_argument("--model-name", required=True, help="model name (its training.models entry gives its device; "
                                                       "recorded; part of the seed stream)")
    s.add_argument("--real", help="the real images.h5 the model was trained on (pT-conditional models draw "
                                  "their muon pT from its weighted pT distribution)")

    b = command("baseline", cmd_baseline, "independent-pixel baseline from real images")
    b.add_argument("--in", dest="input", required=True, help="real images (images.h5)")
    b.add_argument("--out", required=True, help="generated images file (.h5)")

    y = command("synthetic", cmd_synthetic, "write synthetic sparse images (tests/benchmarks; not physics)")
    y.add_argument("--out", required=True, help="images.h5 to write")
    y.add_argument("--n", type=int, default=1000, help="number of images")
    y.add_argument("--npix", type=int, default=32, help="image side in pixels")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; a ModelError prints `error: <message>` and returns 2."""
    return cli.main(build_parser(), argv)

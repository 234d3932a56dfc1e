"""Command line of the imaging stage: `python -m imaging {build,info} ...`."""
from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence

import numpy as np

from common import cli
from common.settings import add_config_argument, parse_section

from .build import build_images, write_images
from .config import ImagingConfig
from .h5schema import file_has_towers, read_image_file

log = logging.getLogger("imaging")

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m imaging",
        description="Delphes ROOT -> muon-centred calorimeter images (images.h5).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "build", help="make images.h5 from Delphes chunk files",
        description="Select muons in Delphes chunk files, image the towers around them and write "
                    "images.h5. Signal is reweighted to the muon pT of --reweight-to (background images.h5). "
                    "Settings: the config's `imaging:` section as --config-json.",
    )
    b.add_argument("--in", dest="inputs", nargs="*", required=True, metavar="ROOT",
                   help="Delphes ROOT files (tree 'Delphes'), e.g. signal/delphes/chunk*.root")
    b.add_argument("--out", required=True, metavar="H5", help="output images.h5")
    b.add_argument("--sample", required=True, help="sample name stored in the file (signal, background)")
    b.add_argument("--reweight-to", metavar="H5", default=None,
                   help="reference images.h5 (the background): reweight muon pT to its histogram; "
                        "empty or absent: no reweighting")
    b.add_argument("--seed", type=int, default=None, help="master seed of the run (recorded; imaging is not random)")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_argument(b, "imaging")
    b.set_defaults(func=_cmd_build)
    i = sub.add_parser("info", help="print the statistics and geometry of an images.h5",
                       description="Print an images.h5 file's statistics, geometry and provenance summary.")
    i.add_argument("path", metavar="H5", help="images.h5 file")
    i.set_defaults(func=_cmd_info)
    return parser


def _cmd_build(args: argparse.Namespace) -> None:
    config = ImagingConfig.from_mapping(parse_section(args.config_json, "imaging"))
    build = build_images(args.inputs, config, sample=args.sample, reference=args.reweight_to or None,
                         progress=not args.no_progress)
    path = write_images(args.out, build, config, sample=args.sample, seed=args.seed)
    log.info("wrote %d images to %s", len(build.muon_pt), path)
    print(f"imaging statistics for {args.sample} -> {path}")
    print(build.statistics.table())


def _cmd_info(args: argparse.Namespace) -> None:
    data = read_image_file(args.path, towers=file_has_towers(args.path))
    raw = data.attrs.get("statistics") or "{}"
    try:
        stats = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (ValueError, TypeError):
        stats = {"statistics": raw}
    print(f"{args.path}: {len(data)} images, sample={data.sample!r}, kind={data.attrs.get('kind')!r}, "
          f"npix={data.npix}, radius={data.radius}")
    print(f"  quantity={data.attrs.get('quantity', '?')}  muons_per_event={data.attrs.get('muons_per_event', '?')}"
          f"  reweighted_to={data.attrs.get('reweighted_to') or '-'}")
    prov = data.attrs.get("provenance", {})
    print(f"  config digest={prov.get('config_digest', '?')}  seeds={prov.get('seeds', '?')}")
    for key, value in stats.items():
        print(f"  {key:<24} {value}")
    zero = 1.0 - (data.images != 0).mean() if len(data) else float("nan")
    wmean = float((data.weight * data.muon_pt).sum() / data.weight.sum()) if len(data) else float("nan")
    print(f"  zero-pixel fraction={100 * zero:.2f} %  weighted mean muon pT={wmean:.3f} GeV")
    print(f"  schema_version={data.attrs.get('schema_version', 1)}  tower_shape={data.attrs.get('tower_shape', '?')}  "
          + (f"towers={data.towers.n_towers} ({data.towers.n_towers / max(len(data), 1):.2f} per image; "
             f"ECal {np.count_nonzero(data.towers.et_ecal)}, HCal {np.count_nonzero(data.towers.et_hcal)})"
             if data.towers is not None else "towers=none"))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; known errors print `error: ...` and return 2."""
    return cli.main(build_parser(), argv)

"""Images of the tower path (render_towers of the stored towers) against an earlier commit's imaging code.

Not a test (pytest collects only test_*.py). The earlier imaging package is taken from git
(`git archive REF imaging`) into a temporary folder and imported as `imaging_old`; both build
the same Delphes files with the default selection and each tower shape, and the script prints
the towers per image and how many pixels differ, by how much. It also checks that the towers
written to images.h5 re-render the stored images bit for bit. Run:

    .venv/bin/python tests/benchmarks/compare_tower_path.py --ref 0eebdc9 --sample signal \\
        results/signal/delphes/chunk0.root results/signal/delphes/chunk1.root

(0eebdc9: the last commit before the tower path; its imaging used make_images / make_cell_images.)
"""
from __future__ import annotations

import argparse
import importlib
import io
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from imaging import ImagingConfig, build_images, write_images
from imaging.h5schema import read_image_file
from imaging.towers import render_towers

PROJECT_DIR = Path(__file__).resolve().parents[2]


def _old_imaging(ref: str, where: Path):
    """The imaging package of git commit `ref`, importable as `imaging_old` (build, config modules)."""
    archive = subprocess.run(["git", "-C", str(PROJECT_DIR), "archive", ref, "imaging"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(where, filter="data")
    (where / "imaging").rename(where / "imaging_old")
    sys.path.insert(0, str(where))
    return importlib.import_module("imaging_old.build"), importlib.import_module("imaging_old.config")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="Delphes ROOT files of one sample")
    parser.add_argument("--ref", required=True, help="git commit of the imaging code to compare with")
    parser.add_argument("--sample", default="background", help="sample name (signal, background)")
    parser.add_argument("--shape", action="append", choices=["point", "mixed", "cell"],
                        help="tower shape to compare (repeatable; default all three)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old_build, old_config = _old_imaging(args.ref, Path(tmp))
        for shape in args.shape or ["point", "mixed", "cell"]:
            for quantity in ("et", "et_ecal", "et_hcal") if shape == "point" else ("et",):
                cfg = ImagingConfig(tower_shape=shape, quantity=quantity)
                new = build_images(args.files, cfg, sample=args.sample)
                old = old_build.build_images(args.files, old_config.ImagingConfig(tower_shape=shape, quantity=quantity),
                                             sample=args.sample)
                a, b = new.images, old.images
                diff = a != b
                moved = int(np.sum((a != 0) != (b != 0)))
                largest = float(np.abs(a.astype(np.float64) - b).max()) if len(a) else 0.0
                sums = np.abs(a.sum((1, 2), dtype=np.float64) - b.sum((1, 2), dtype=np.float64)).max()
                t = new.towers
                print(f"{args.sample} {shape:5s} {quantity:7s}: {len(a)} images, {t.n_towers / len(a):.2f} towers per "
                      f"image (ECal {np.count_nonzero(t.et_ecal) / len(a):.2f}, HCal "
                      f"{np.count_nonzero(t.et_hcal) / len(a):.2f}); pixels differing {int(diff.sum())} of "
                      f"{np.count_nonzero(b)} non-zero in {int(np.any(diff, axis=(1, 2)).sum())} images; zero <-> "
                      f"non-zero {moved}; largest difference {largest:.2e} GeV; image sums within {sums:.2e} GeV")
                path = write_images(Path(tmp) / "images.h5", new, cfg, sample=args.sample)
                back = read_image_file(path, towers=True)
                again = render_towers(back.towers, tower_shape=shape, npix=back.npix, radius=back.radius,
                                      quantity=quantity)
                if not (np.array_equal(again, back.images) and np.array_equal(back.images, a)):
                    raise SystemExit(f"{shape}/{quantity}: the stored towers do not re-render the stored images")


if __name__ == "__main__":
    main()

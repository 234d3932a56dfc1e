"""Detector-fidelity records, table and figure (analysis/fidelity.py), on synthetic image files."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from analysis.cli import main
from analysis.fidelity import RING_EDGES, radial_profile
from analysis.geometry import delta_r_map
from imaging.h5schema import write_image_file

SETTINGS = {"isolation_cone": 0.2,
            "metrics": {"separation_bins": 20, "low_isolation": 0.02,
                        "classifier": {"hidden_layers": [8], "epochs": 3, "learning_rate": 0.001,
                                       "test_fraction": 0.5, "max_images_per_class": 2000},
                        "cnn_classifier": {"epochs": 2, "bootstrap": 0},
                        "fpd_kpd": {"fpd_max_samples": 3000, "kpd_batch_size": 500}}}


def test_radial_profile_is_the_mean_pixel_et_per_ring():
    dr = delta_r_map(32, 0.4)
    image = np.where(dr < 0.1, 2.0, np.where(dr < 0.4, 0.5, 0.0)).astype(np.float32)[None]
    rings = radial_profile(np.repeat(image, 3, axis=0), np.ones(3), 0.4)
    np.testing.assert_allclose(rings, [2.0, 0.5, 0.5, 0.5])
    assert len(rings) == len(RING_EDGES) - 1
    weighted = radial_profile(np.stack([image[0], 3 * image[0]]), np.array([3.0, 1.0]), 0.4)
    np.testing.assert_allclose(weighted, 1.5 * rings)  # (3 x 1 + 1 x 3) / 4


def _images(path: Path, sample: str, n: int, core: float, seed: int) -> Path:
    """Sparse images: a few pile-up pixels anywhere, plus (background) a dense core of correlated pixels."""
    rng = np.random.default_rng(seed)
    images = (rng.random((n, 32, 32)) < 0.002) * rng.exponential(1.0, (n, 32, 32))
    dr = delta_r_map(32, 0.4)
    jet = rng.random(n) < 0.6  # a jet in 60% of the images: the whole core at once
    images += (jet[:, None, None] * (dr < 0.1)) * core * rng.exponential(1.0, (n, 32, 32))
    images[:, dr >= 0.4] = 0
    pt = rng.uniform(10, 15, n)
    return write_image_file(path, images.astype(np.float32), pt.astype(np.float32), np.ones(n), sample=sample,
                            radius=0.4, kind="real")


@pytest.fixture(scope="module")
def variant_files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fidelity")
    return {"signal": _images(root / "signal.h5", "signal", 800, 0.0, 1),
            "background": _images(root / "background.h5", "background", 800, 2.0, 2)}


def test_fidelity_variant_record_and_table(variant_files, tmp_path):
    records = []
    for name, shape in (("card_a/point", "point"), ("card_a/mixed", "mixed")):
        out = tmp_path / f"{shape}.json"
        rc = main(["fidelity-variant", "--name", name, "--signal", str(variant_files["signal"]),
                   "--background", str(variant_files["background"]),
                   "--describe", json.dumps({"card": "card_a", "tower_shape": shape, "pthat_min_gev": 10}),
                   "--config-json", json.dumps(SETTINGS), "--seed", "3", "--n-baseline", "2000", "--out", str(out)])
        assert rc == 0
        records.append(out)
    rec = json.loads(records[0].read_text())
    sig, bkg = rec["signal"], rec["background"]
    assert rec["variant"] == "card_a/point" and rec["tower_shape"] == "point"
    # the synthetic background has a dense core, the signal none: the profile and core ratio say so
    assert bkg["core_ratio"] > 5 and 0.5 < sig["core_ratio"] < 2
    assert bkg["isolation_mean"] > 1.3 * sig["isolation_mean"]
    assert 0.99 < sig["zero_fraction"] < 1.0 and sig["nonzero_per_image"] == pytest.approx(
        1024 * (1 - sig["zero_fraction"]), rel=1e-6)
    assert sig["isolation_q25"] <= sig["isolation_q50"] <= sig["isolation_q75"]
    # the independent-pixel baseline cannot make the all-or-nothing core: it misses the empty cones
    assert bkg["baseline_empty_cone_fraction"] < bkg["empty_cone_fraction"] - 0.1
    assert bkg["baseline_isolation_emd"] > 2 * bkg["baseline_isolation_emd_floor"]
    assert bkg["baseline_classifier_auc"] > 0.6
    assert sig["delphes_ms_per_event"] is None  # no Delphes files given
    assert np.asarray(sig["average_image_gev"]).shape == (32, 32)

    csv_path, md_path, fig = tmp_path / "f.csv", tmp_path / "f.md", tmp_path / "f.png"
    assert main(["fidelity-table", "--records", *map(str, records), "--out-csv", str(csv_path),
                 "--out-md", str(md_path), "--out-figure", str(fig)]) == 0
    rows = list(csv.DictReader(csv_path.open()))
    assert [(r["variant"], r["sample"]) for r in rows] == [
        ("card_a/point", "signal"), ("card_a/point", "background"),
        ("card_a/mixed", "signal"), ("card_a/mixed", "background")]
    assert float(rows[1]["core_ratio"]) == pytest.approx(bkg["core_ratio"])
    md = md_path.read_text()
    assert "## signal" in md and "## background" in md and "| card_a/mixed |" in md
    assert fig.stat().st_size > 10_000


def test_fidelity_table_refuses_a_record_without_both_classes(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"variant": "x", "signal": {}}))
    assert main(["fidelity-table", "--records", str(bad), "--out-csv", str(tmp_path / "a.csv"),
                 "--out-md", str(tmp_path / "a.md"), "--out-figure", str(tmp_path / "a.png")]) == 2
    assert "lacks ['background']" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()

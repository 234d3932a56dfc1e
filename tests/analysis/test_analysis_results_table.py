"""Results table: derived columns on hand-built records, blanks, clear errors, the low-isolation metric."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from analysis.cli import main
from analysis.errors import AnalysisError
from analysis.inputs import load_images
from analysis.isolation import low_isolation_fraction
from analysis.metrics import generated_info
from analysis.results_table import RESULT_COLUMNS, results_rows, write_results_table
from imaging.h5schema import write_image_file


def _record(sample: str, model: str, emd: float, **extra) -> dict:
    rec = {
        "sample": sample, "model": model, "isolation_emd": emd, "isolation_emd_noise": 0.01,
        "zero_fraction_real": 0.9883, "zero_fraction_generated": 0.9783, "classifier_auc": 0.75,
        "low_isolation_threshold": 0.02, "low_isolation_fraction_real": 0.40, "low_isolation_fraction_generated": 0.35,
        "_provenance": {"seed": 1},
    }
    rec.update(extra)
    return rec


def _write(tmp_path: Path, records: list[dict]) -> list[Path]:
    paths = []
    for rec in records:
        path = tmp_path / rec["sample"] / f"{rec['model']}.metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
        paths.append(path)
    return paths


HAND_BUILT = [
    _record("signal", "decoupled_fc", 0.06, family="decoupled", train_time_s=120.5,
            empty_cone_fraction_real=0.10, empty_cone_fraction_generated=0.07, cnn_auc=0.61, cnn_auc_err=0.02,
            fpd=0.0123, fpd_err=0.0004, kpd=-1e-5, kpd_err=2e-5, max_pixel_et_p99_ratio=1.1,
            max_pixel_et_p99_9_ratio=1.35, total_et_p99_ratio=0.9, total_et_p99_9_ratio=0.95),
    _record("signal", "independent_pixels", 0.30, family="baseline", train_time_s=0.0,
            low_isolation_fraction_generated=0.25),
    _record("signal", "lagan", 0.15, family="gan", train_time_s=300.0, zero_fraction_generated=0.9983),
    _record("background", "independent_pixels", 0.80),  # family missing: baseline by name
    _record("background", "decoupled_fc", 0.20),        # family and train time missing
]


def test_ratio_differences_and_order_on_hand_built_records(tmp_path: Path) -> None:
    paths = _write(tmp_path, HAND_BUILT)
    csv_path, md_path = tmp_path / "t" / "results.csv", tmp_path / "t" / "results.md"
    assert main(["results-table", "--metrics", *map(str, paths), "--out-csv", str(csv_path),
                 "--out-md", str(md_path)]) == 0
    rows = list(csv.DictReader(csv_path.open()))
    assert tuple(rows[0]) == RESULT_COLUMNS
    # grouped by sample (first seen), sorted by isolation EMD within each
    assert [(r["sample"], r["model"]) for r in rows] == [
        ("signal", "decoupled_fc"), ("signal", "lagan"), ("signal", "independent_pixels"),
        ("background", "decoupled_fc"), ("background", "independent_pixels"),
    ]
    by = {(r["sample"], r["model"]): r for r in rows}
    assert float(by["signal", "decoupled_fc"]["emd_ratio_to_baseline"]) == pytest.approx(0.06 / 0.30)
    assert float(by["signal", "lagan"]["emd_ratio_to_baseline"]) == pytest.approx(0.5)
    assert float(by["signal", "independent_pixels"]["emd_ratio_to_baseline"]) == 1.0
    assert float(by["background", "decoupled_fc"]["emd_ratio_to_baseline"]) == pytest.approx(0.25)
    assert float(by["signal", "decoupled_fc"]["zero_fraction_error_pp"]) == pytest.approx(-1.0)
    assert float(by["signal", "lagan"]["zero_fraction_error_pp"]) == pytest.approx(1.0)
    assert float(by["signal", "decoupled_fc"]["low_isolation_real_pct"]) == pytest.approx(40.0)
    assert float(by["signal", "decoupled_fc"]["low_isolation_generated_pct"]) == pytest.approx(35.0)
    assert float(by["signal", "decoupled_fc"]["low_isolation_diff_pp"]) == pytest.approx(-5.0)
    assert float(by["signal", "independent_pixels"]["low_isolation_diff_pp"]) == pytest.approx(-15.0)
    assert float(by["signal", "decoupled_fc"]["empty_cone_diff_pp"]) == pytest.approx(-3.0)
    assert float(by["signal", "decoupled_fc"]["empty_cone_generated_pct"]) == pytest.approx(7.0)
    assert by["signal", "lagan"]["empty_cone_diff_pp"] == ""  # record without the metric -> blank
    assert [by[k]["family"] for k in sorted(by)] == ["decoupled", "baseline", "decoupled", "baseline", "gan"]
    assert by["signal", "lagan"]["train_time_s"] == "300.0"
    assert by["background", "decoupled_fc"]["train_time_s"] == ""  # missing -> blank
    assert by["signal", "independent_pixels"]["is_baseline"] == "True"
    # the field's metrics: numbers where the record has them, blank for records written before them
    assert float(by["signal", "decoupled_fc"]["cnn_auc"]) == 0.61
    assert float(by["signal", "decoupled_fc"]["max_pixel_et_p99_9_ratio"]) == 1.35
    assert by["signal", "lagan"]["fpd"] == "" and by["signal", "lagan"]["total_et_p99_ratio"] == ""

    md = md_path.read_text()
    signal, background = md.split("## signal")[1].split("## background")
    assert (signal.index("| decoupled_fc |") < signal.index("| lagan |")
            < signal.index("**independent_pixels** (baseline)"))
    assert "| decoupled_fc | decoupled | 0.2000 | 0.0100 | 0.25 | -1.00 | 0.750 |  | 40.0 | 35.0 | -5.0 |" in background
    assert "| lagan | gan | 0.1500 | 0.0100 | 0.50 | +1.00 | 0.750 | 300 | 40.0 | 35.0 | -5.0 |" in signal
    assert "iso < 0.02 real [%]" in md
    assert "| decoupled_fc | 0.610 ± 0.020 | 0.0123 ± 0.0004 | -1e-05 ± 2e-05 | 1.10 | 1.35 | 0.90 | 0.95 |" in signal
    assert "| lagan |  |  |  |  |  |  |  |" in signal
    assert not list(csv_path.parent.glob(".*tmp*")), "temporary files left behind"


def test_missing_baseline_leaves_the_ratio_blank() -> None:
    rows = results_rows([_record("signal", "decoupled_fc", 0.06)])
    assert rows[0]["emd_ratio_to_baseline"] is None


def test_record_lacking_a_key_is_a_clear_error_naming_the_file(tmp_path: Path, capsys) -> None:
    bad = dict(HAND_BUILT[0])
    del bad["low_isolation_fraction_real"]
    paths = _write(tmp_path, [bad, HAND_BUILT[1]])
    out_csv, out_md = tmp_path / "r.csv", tmp_path / "r.md"
    assert main(["results-table", "--metrics", *map(str, paths), "--out-csv", str(out_csv),
                 "--out-md", str(out_md)]) == 2
    err = capsys.readouterr().err
    assert f"{paths[0]}: metrics record lacks 'low_isolation_fraction_real'; re-run the metrics step" in err
    assert "Traceback" not in err
    assert not out_csv.exists() and not out_md.exists()


@pytest.mark.parametrize(
    ("records", "match"),
    [
        ([_record("signal", "m", "0.1")], "'isolation_emd' is '0.1', expected a number"),
        ([_record("signal", "m", 0.1, train_time_s="slow")], "'train_time_s' is 'slow', expected a number"),
        ([_record("signal", "m", 0.1), _record("signal", "m", 0.2)], "model 'm' is also in a.json"),
        ([_record("signal", "m", 0.1), _record("background", "m", 0.2, low_isolation_threshold=0.05)],
         "different low-isolation thresholds"),
    ],
)
def test_bad_records_are_clear_errors(records: list[dict], match: str) -> None:
    with pytest.raises(AnalysisError, match=match):
        results_rows(records, ["a.json", "b.json"][: len(records)])


def test_low_isolation_fraction_on_constructed_images(tmp_path: Path) -> None:
    """8x8 images, radius 0.4 (0.1 per pixel): pixels (3|4, 3|4) are in the dR < 0.2 cone, (0, 0) is not."""
    n = 10
    images = np.zeros((n, 8, 8), np.float32)
    images[:, 0, 0] = 50.0          # a corner pixel, outside the cone: no effect on isolation
    images[3, 4, 4] = 0.1           # iso 0.01 (< 0.02): near zero
    images[4, 3, 3] = 0.25          # iso 0.025: above 0.02, below 0.03
    images[5, 4, 3] = 1.0           # iso 0.1
    images[6, 3, 4] = -0.5          # negative generated pixel: iso -0.05, counted as near zero
    images[7:, 4, 4] = 3.0          # iso 0.3
    pt = np.full(n, 10.0)
    weight = np.arange(1, n + 1, dtype=np.float64)
    path = write_image_file(tmp_path / "g.h5", images, pt, weight, sample="signal", radius=0.4, kind="generated")
    data = load_images(path, sample="signal", label="m").data
    from analysis.isolation import isolation

    iso = isolation(data.images, data.muon_pt, 0.4)
    np.testing.assert_allclose(iso[:7], [0, 0, 0, 0.01, 0.025, 0.1, -0.05], atol=1e-7)
    low = [0, 1, 2, 3, 6]  # images 0-2 empty cone, 3 below, 6 negative
    assert low_isolation_fraction(iso, data.weight, 0.02) == pytest.approx(weight[low].sum() / weight.sum())
    assert low_isolation_fraction(iso, np.ones(n), 0.02) == pytest.approx(0.5)
    assert low_isolation_fraction(iso, np.ones(n), 0.03) == pytest.approx(0.6)
    with pytest.raises(AnalysisError, match="threshold must be > 0"):
        low_isolation_fraction(iso, np.ones(n), 0.0)


def test_metrics_record_has_low_isolation_family_and_train_time(toy_dir: Path, tmp_path: Path) -> None:
    """Through the CLI: the record carries the low-isolation fractions, and the file's family/train time."""
    real = toy_dir / "signal" / "images.h5"
    src = load_images(toy_dir / "generated" / "signal" / "decoupled_fc.h5", sample="signal", label="x").data
    gen = write_image_file(tmp_path / "gan.h5", src.images, src.muon_pt, src.weight, sample="signal", radius=0.4,
                           kind="generated", extra_attrs={"family": "gan", "train_time_s": 42.5})
    out = tmp_path / "gan.metrics.json"
    assert main(["metrics", "--real", str(real), "--generated", str(gen), "--sample", "signal", "--model", "lagan",
                 "--seed", "3", "--config-json", json.dumps({"metrics": {"low_isolation": 0.05, "classifier": {
                     "hidden_layers": [8], "epochs": 2}}}),
                 "--out", str(out)]) == 0
    rec = json.loads(out.read_text())
    assert rec["family"] == "gan" and rec["train_time_s"] == 42.5
    assert rec["low_isolation_threshold"] == 0.05
    r = load_images(real, sample="signal", label="real").data
    from analysis.isolation import isolation

    expected = low_isolation_fraction(isolation(r.images, r.muon_pt, 0.4), r.weight, 0.05)
    assert rec["low_isolation_fraction_real"] == pytest.approx(expected)
    assert 0.0 < rec["low_isolation_fraction_generated"] < 1.0


def test_generated_file_without_attributes_gets_defaults(toy_dir: Path) -> None:
    old = toy_dir / "generated" / "signal"
    assert generated_info(load_images(old / "decoupled_fc.h5", sample="signal", label="decoupled_fc")) == {
        "family": "decoupled", "train_time_s": None}
    assert generated_info(load_images(old / "independent_pixels.h5", sample="signal", label="independent_pixels")) == {
        "family": "baseline", "train_time_s": None}


def test_write_results_table_returns_the_rows(tmp_path: Path) -> None:
    paths = _write(tmp_path, HAND_BUILT[:2])
    rows = write_results_table(paths, tmp_path / "r.csv", tmp_path / "r.md")
    assert [r["model"] for r in rows] == ["decoupled_fc", "independent_pixels"]
    assert rows[0]["train_time_s"] == 120.5


def test_empty_cone_share_counts_occupancy_not_cancelling_values() -> None:
    from analysis.isolation import empty_cone_fraction
    images = np.zeros((4, 8, 8), dtype=np.float32)  # radius 0.4: pixel 0.1, the 0.2 cone is the central 4x4
    images[1, 3, 3] = 0.5                      # in the cone
    images[2, 3, 4], images[2, 4, 3] = 0.5, -0.5  # in the cone, cancelling: near-zero isolation, not empty
    images[3, 0, 0] = 5.0                      # outside the cone only
    w = np.array([1.0, 1.0, 1.0, 2.0])
    assert empty_cone_fraction(images, w, 0.4) == pytest.approx(3.0 / 5.0)
    with pytest.raises(AnalysisError, match="weights"):
        empty_cone_fraction(images, w[:3], 0.4)

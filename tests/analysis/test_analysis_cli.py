"""The CLI end to end on synthetic files: tables, figures, and clear errors for bad inputs."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.cli import main
from imaging.h5schema import write_image_file

MODELS = ("decoupled_fc", "independent_pixels")
FAST_CLF = ["--config-json", json.dumps({"metrics": {
    "classifier": {"hidden_layers": [16], "epochs": 5}, "cnn_classifier": {"epochs": 3, "bootstrap": 20},
    "fpd_kpd": {"fpd_max_samples": 4000, "kpd_batch_size": 1000}}})]
LOW_DPI = ["--config-json", json.dumps({"plots": {"dpi": 60}})]


def _gen_args(root: Path, samples=("signal", "background")) -> list[str]:
    return [f"{s}:{m}={root / 'generated' / s / f'{m}.h5'}" for s in samples for m in MODELS]


def _real_args(root: Path, samples=("signal", "background")) -> list[str]:
    return [f"{s}={root / s / 'images.h5'}" for s in samples]


@pytest.fixture(scope="module")
def records(toy_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("metrics")
    paths = []
    for s in ("signal", "background"):
        for m in MODELS:
            path = out / f"{s}_{m}.json"
            assert main(["metrics", "--real", str(toy_dir / s / "images.h5"),
                         "--generated", str(toy_dir / "generated" / s / f"{m}.h5"),
                         "--sample", s, "--model", m, "--seed", "4", "--out", str(path), *FAST_CLF]) == 0
            paths.append(path)
    return paths


def test_metrics_record_has_every_metric(records: list[Path]) -> None:
    rec = json.loads(records[0].read_text())
    for key in ("isolation_emd", "isolation_separation", "zero_fraction_real", "zero_fraction_generated",
                "n_nonzero_emd", "pixel_et_emd", "total_et_emd", "corr_mean_abs_diff", "classifier_auc",
                "cnn_auc", "cnn_auc_err", "fpd", "fpd_err", "kpd", "kpd_err", "max_pixel_et_p99_9_real",
                "max_pixel_et_p99_9_generated", "max_pixel_et_p99_9_ratio", "total_et_p99_ratio"):
        assert np.isfinite(rec[key]), key
    # the toy files have no towers: the ECal / HCal sums are left out of the FPD/KPD features, and said so
    assert rec["fpd_kpd_features"] == ["isolation_0.1", "isolation_0.2", "isolation_0.3", "isolation_0.4",
                                       "n_nonzero", "max_pixel_et", "et_weighted_radius"]
    assert rec["sample"] == "signal" and rec["model"] == "decoupled_fc"
    assert rec["_provenance"]["seed"] == 4


def test_emd_table_has_paper_values_beside_ours(records: list[Path], tmp_path: Path) -> None:
    csv_path, md_path = tmp_path / "emd.csv", tmp_path / "emd.md"
    assert main(["emd-table", "--metrics", *map(str, records), "--out-csv", str(csv_path),
                 "--out-md", str(md_path)]) == 0
    rows = {(r["sample"], r["model"]): r for r in csv.DictReader(csv_path.open())}
    assert set(rows) == {(s, m) for s in ("signal", "background") for m in MODELS}
    assert float(rows["signal", "decoupled_fc"]["paper_emd"]) == 0.06
    assert float(rows["background", "decoupled_fc"]["paper_emd"]) == 0.17
    assert float(rows["signal", "independent_pixels"]["paper_emd"]) == 0.35
    assert float(rows["background", "independent_pixels"]["paper_emd"]) == 0.89
    ours = {(r["sample"], r["model"]): r["isolation_emd"] for r in map(json.loads, (p.read_text() for p in records))}
    for key, row in rows.items():
        assert float(row["isolation_emd"]) == ours[key]
    md = md_path.read_text()
    assert "| EMD (ours) | stat. floor | EMD (paper) |" in md and "| 0.89 |" in md
    assert all(float(row["isolation_emd_noise"]) > 0 for row in rows.values())


def test_metrics_table(records: list[Path], tmp_path: Path) -> None:
    csv_path, md_path = tmp_path / "m.csv", tmp_path / "m.md"
    assert main(["metrics-table", "--metrics", *map(str, records), "--out-csv", str(csv_path),
                 "--out-md", str(md_path)]) == 0
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == 4 and "classifier_auc" in rows[0] and "_provenance" not in rows[0]
    md = md_path.read_text()
    assert "## signal" in md and "## background" in md and "classifier AUC" in md


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


@pytest.mark.slow
def test_figures_are_produced(toy_dir: Path, tmp_path: Path) -> None:
    f2 = [tmp_path / "f2.pdf", tmp_path / "f2.png"]
    assert main(["figure2", "--real", *_real_args(toy_dir), "--generated", *_gen_args(toy_dir),
                 "--out", *map(str, f2), *LOW_DPI]) == 0
    f3lin, f3log = [tmp_path / "f3lin.pdf", tmp_path / "f3lin.png"], [tmp_path / "f3log.png"]
    assert main(["figure3", "--real", *_real_args(toy_dir), "--generated", *_gen_args(toy_dir), *LOW_DPI,
                 "--out-linear", *map(str, f3lin), "--out-log", *map(str, f3log)]) == 0
    feats, corrs = [tmp_path / "feat.png"], [tmp_path / "corr.pdf"]
    assert main(["features", "--sample", "background", "--real", str(toy_dir / "background" / "images.h5"),
                 "--generated", *(f"{m}={toy_dir / 'generated' / 'background' / f'{m}.h5'}" for m in MODELS),
                 *LOW_DPI, "--out-features", *map(str, feats), "--out-correlations", *map(str, corrs)]) == 0
    for path in (*f2, *f3lin, *f3log, *feats, *corrs):
        assert path.stat().st_size > 5000, path
        if path.suffix == ".pdf":
            assert path.read_bytes()[:5] == b"%PDF-"
    width, height = _png_size(f2[1])
    assert width > height > 300  # two sample columns side by side
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"


# ------------------------------------------------------------------ bad inputs -> clear errors
def test_missing_file_exits_2_with_clear_message_and_no_traceback(tmp_path: Path, toy_dir: Path) -> None:
    out = tmp_path / "x.json"
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "metrics", "--real", str(tmp_path / "nope.h5"),
         "--generated", str(toy_dir / "generated" / "signal" / "decoupled_fc.h5"), "--sample", "signal",
         "--model", "m", "--seed", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr and "nope.h5: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_swapped_samples_are_refused(tmp_path: Path, toy_dir: Path, capsys) -> None:
    out = tmp_path / "f.png"
    gen = [f"signal:decoupled_fc={toy_dir / 'generated' / 'background' / 'decoupled_fc.h5'}"]
    assert main(["figure2", "--real", *_real_args(toy_dir, ("signal",)), "--generated", *gen, "--out", str(out)]) == 2
    assert "is for sample 'background' but was given as 'signal'" in capsys.readouterr().err
    assert not out.exists()


def test_generated_file_without_pt_is_refused(tmp_path: Path, toy_dir: Path, capsys) -> None:
    bad = write_image_file(tmp_path / "nopt.h5", np.zeros((10, 32, 32)), np.full(10, np.nan), sample="signal",
                           kind="generated")
    out = tmp_path / "m.json"
    assert main(["metrics", "--real", str(toy_dir / "signal" / "images.h5"), "--generated", str(bad),
                 "--sample", "signal", "--model", "m", "--seed", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nopt.h5: /muon/pt has 10 non-positive or NaN values" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["figure2", "--real", "signal", "--generated", "signal:m=x.h5", "--out", "f.png"],
         "must look like LABEL=PATH"),
        (["figure2", "--real", "signal=a.h5", "--generated", "signal=x.h5", "--out", "f.png"],
         "must look like SAMPLE:MODEL=PATH"),
        (["figure2", "--real", "signal=a.h5", "--generated", "background:m=x.h5", "--out", "f.png"],
         "no --real file for sample 'background'"),
    ],
)
def test_bad_arguments_are_clear_errors(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_not_an_hdf5_file_and_bad_figure_format(tmp_path: Path, toy_dir: Path, capsys) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    assert main(["figure3", "--real", f"signal={junk}", "--generated", *_gen_args(toy_dir, ("signal",)),
                 "--out-linear", str(tmp_path / "a.png"), "--out-log", str(tmp_path / "b.png")]) == 2
    assert "junk.h5: not a readable HDF5 file" in capsys.readouterr().err
    assert main(["figure2", "--real", *_real_args(toy_dir, ("signal",)), "--generated",
                 *_gen_args(toy_dir, ("signal",)), "--out", str(tmp_path / "f.jpg")]) == 2
    assert "unsupported format '.jpg'" in capsys.readouterr().err

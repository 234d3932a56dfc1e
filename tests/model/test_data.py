"""Training data validation: bad images are clear errors, statistics are weighted."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from imaging.h5schema import write_image_file
from model.data import load_training_data, training_data_from_arrays
from model.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]


def _images(n=20, npix=32):
    x = np.zeros((n, npix, npix), np.float32)
    x[:, 3, 4] = np.arange(1, n + 1)
    return x


@pytest.mark.parametrize("shape", [(10, 32, 31), (10, 1024), (0, 32, 32)])
def test_wrong_shape_is_a_clear_error(shape):
    with pytest.raises(ModelError, match=r"shape .*expected \(N, npix, npix\)"):
        training_data_from_arrays(np.ones(shape, np.float32))


def test_nan_and_negative_and_all_zero_are_clear_errors():
    x = _images()
    x[3, 0, 0] = np.nan
    with pytest.raises(ModelError, match="1 images contain NaN"):
        training_data_from_arrays(x)
    x = _images()
    x[1, 2, 2] = -1.0
    with pytest.raises(ModelError, match="negative ET"):
        training_data_from_arrays(x)
    with pytest.raises(ModelError, match="every pixel of every image is zero"):
        training_data_from_arrays(np.zeros((5, 32, 32), np.float32))
    with pytest.raises(ModelError, match="weights"):
        training_data_from_arrays(_images(), weight=np.zeros(20))


def test_weighted_statistics():
    x = _images(4)  # pixel (3, 4) has values 1, 2, 3, 4
    w = np.array([1.0, 1.0, 0.0, 2.0])
    data = training_data_from_arrays(x, w, muon_pt_gev=np.array([10.0, 12.0, 99.0, 14.0]))
    assert data.x.shape == (4, 1024) and float(data.weight.mean()) == pytest.approx(1.0)
    values, ww = np.array([1, 2, 3, 4.0]), w
    mean = (values * ww).sum() / ww.sum()
    assert data.nonzero_std() == pytest.approx(np.sqrt((ww * (values - mean) ** 2).sum() / ww.sum()))
    assert data.mean_muon_pt_gev == pytest.approx((10 + 12 + 28) / 4)
    occ = data.occupancy().numpy()
    assert occ[3 * 32 + 4] == pytest.approx(1.0) and occ.sum() == pytest.approx(1.0)


@pytest.mark.slow
def test_file_errors_name_the_file(tmp_path):
    path = tmp_path / "zeros.h5"
    write_image_file(path, np.zeros((5, 32, 32)), np.full(5, 12.0), sample="signal")
    with pytest.raises(ModelError, match=r"zeros\.h5.*every pixel"):
        load_training_data(path)
    nan_path = tmp_path / "nan.h5"
    write_image_file(nan_path, _images(5), np.full(5, 12.0), sample="signal")
    with h5py.File(nan_path, "r+") as f:
        f["images"][0, 0, 0] = np.nan
    with pytest.raises(ModelError, match=r"nan\.h5.*NaN"):
        load_training_data(nan_path)
    with pytest.raises(ModelError, match="no such file"):
        load_training_data(tmp_path / "missing.h5")
    # the CLI turns the known error into `error: ...` and exit code 2, no traceback
    proc = subprocess.run(
        [sys.executable, "-m", "model", "train", "--in", str(path), "--out", str(tmp_path / "m" / "model.pt"),
         "--model-name", "m", "--config-json", '{"models": {"m": {"arch": "fc", "epochs": 1}}}', "--no-progress"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m" / "model.pt").exists()

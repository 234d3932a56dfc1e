"""The stage end to end: chunk files -> images.h5 via the CLI, with provenance and statistics."""
from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
from imaging_cases import PROJECT_DIR

from common.provenance import config_digest, file_digest
from imaging import ImagingConfig, build_images, write_images
from imaging.build import input_digest
from imaging.h5schema import read_image_file
from imaging.synthetic import random_delphes_events


@pytest.fixture
def chunks(delphes_file):
    files = []
    for i in range(3):
        towers, muons, w = random_delphes_events(400, towers_per_event=300, seed=10 + i)
        files.append(delphes_file(towers, muons, w, name=f"chunk{i}.root"))
    return files


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "imaging", *map(str, args)], capture_output=True, text=True,
                          cwd=PROJECT_DIR, timeout=300)


def test_chunked_reading_gives_the_same_images(chunks):
    whole = build_images(chunks, ImagingConfig(read_chunk_entries=100000), sample="background")
    pieces = build_images(chunks, ImagingConfig(read_chunk_entries=37), sample="background")
    np.testing.assert_array_equal(whole.images, pieces.images)
    np.testing.assert_array_equal(whole.muon_pt, pieces.muon_pt)
    np.testing.assert_array_equal(whole.weight, pieces.weight)
    assert whole.statistics == pieces.statistics
    assert whole.statistics.events_read == 1200


def test_cli_writes_the_contract_with_provenance_and_statistics(chunks, tmp_path):
    out = tmp_path / "background" / "images.h5"
    proc = _cli("build", "--in", *chunks, "--out", out, "--sample", "background", "--seed", 7, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "zero-pixel fraction" in proc.stdout and "weighted mean muon pT" in proc.stdout
    data = read_image_file(out)
    assert data.images.shape[1:] == (32, 32) and data.attrs["npix"] == 32 and data.attrs["radius"] == 0.4
    assert data.sample == "background" and data.attrs["kind"] == "real"
    prov = data.attrs["provenance"]
    assert prov["config_digest"] == config_digest(ImagingConfig().as_dict())
    assert prov["seeds"]["seed"] == 7
    assert [i["path"] for i in prov["inputs"]] == [str(c) for c in chunks]
    assert prov["inputs"][0]["xxh3_128"] == input_digest(chunks[0]) and prov["inputs"][0]["events"] == 400
    assert prov["inputs"][0]["xxh3_128"] != prov["inputs"][1]["xxh3_128"]
    assert "uproot" in prov["software_versions"] and "awkward" in prov["software_versions"]
    stats = json.loads(data.attrs["statistics"])
    assert stats == prov["statistics"]
    assert stats["images"] == len(data) and stats["events_read"] == 1200
    assert stats["zero_pixel_fraction"] == pytest.approx((data.images == 0).mean())
    w_mean = (data.weight * data.muon_pt).sum() / data.weight.sum()
    assert stats["weighted_mean_muon_pt"] == pytest.approx(w_mean, rel=1e-6)
    assert ((data.muon_pt >= 10) & (data.muon_pt <= 15) & (np.abs(data.muon_eta) <= 2.4)).all()
    with h5py.File(out) as f:
        assert f["images"].compression == "gzip" and f["images"].chunks is not None
    info = _cli("info", out)
    assert info.returncode == 0 and "zero-pixel fraction" in info.stdout


def test_signal_cli_reweights_to_the_background_file(chunks, delphes_file, tmp_path):
    bkg = tmp_path / "background.h5"
    assert _cli("build", "--in", *chunks, "--out", bkg, "--sample", "background", "--no-progress").returncode == 0
    towers, muons, w = random_delphes_events(800, towers_per_event=100, seed=99, muon_pt_range=(10.0, 30.0))
    sig_in = delphes_file(towers, muons, w, name="signal_chunk0.root")
    sig = tmp_path / "signal.h5"
    proc = _cli("build", "--in", sig_in, "--out", sig, "--sample", "signal", "--reweight-to", bkg,
                "--config-json", json.dumps({"reweight_pt_bins": 5}), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    s, b = read_image_file(sig), read_image_file(bkg)
    edges = np.linspace(10, 15, 6)
    hs = np.histogram(s.muon_pt, edges, weights=s.weight)[0]
    hb = np.histogram(b.muon_pt, edges, weights=b.weight)[0]
    np.testing.assert_allclose(hs / hs.sum(), hb / hb.sum(), rtol=1e-6)
    ref = s.attrs["provenance"]["reweight_reference"]
    assert ref["path"] == str(bkg) and ref["sha256_16"] == file_digest(bkg)
    assert s.attrs["reweighted_to"] == str(bkg)


def test_same_inputs_same_output(chunks, tmp_path):
    cfg = ImagingConfig()
    a = write_images(tmp_path / "a.h5", build_images(chunks, cfg, sample="background"), cfg, sample="background")
    b = write_images(tmp_path / "b.h5", build_images(chunks, cfg, sample="background"), cfg, sample="background")
    da, db = read_image_file(a), read_image_file(b)
    np.testing.assert_array_equal(da.images, db.images)
    np.testing.assert_array_equal(da.weight, db.weight)
    assert da.attrs["provenance"]["config_digest"] == db.attrs["provenance"]["config_digest"]


def test_rntuple_input_reads_like_a_ttree(delphes_file):
    towers, muons, w = random_delphes_events(300, towers_per_event=100, seed=3)
    tree = build_images([delphes_file(towers, muons, w, layout="ttree")], ImagingConfig(), sample="background")
    rnt = build_images([delphes_file(towers, muons, w, layout="rntuple")], ImagingConfig(), sample="background")
    np.testing.assert_array_equal(tree.images, rnt.images)
    assert len(tree.muon_pt) > 100

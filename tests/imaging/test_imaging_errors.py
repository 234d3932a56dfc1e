"""Bad inputs stop with a clear error naming the file and what to do; no output is left behind."""
from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
import uproot
from imaging_cases import PROJECT_DIR, one_muon_event

from imaging import ImagingConfig, ImagingError, build_images
from imaging.synthetic import random_delphes_events


def _good(delphes_file, **kwargs):
    towers, muons = one_muon_event(0.0, 0.0, [(0.1, 0.1, 1.0)])
    return delphes_file(towers, muons, **kwargs)


@pytest.mark.parametrize("branch", ["Tower.ET", "Tower.Phi", "Muon.PT", "Muon.Charge", "Event.Weight"])
def test_missing_branch_is_named(delphes_file, branch):
    path = _good(delphes_file, drop=[branch])
    with pytest.raises(ImagingError, match=rf"{path.name}: missing branch\(es\) \['{branch}'\]"):
        build_images([path], ImagingConfig(), sample="signal")


def test_tower_parts_are_needed_for_every_quantity(delphes_file):
    """The stored towers carry their ECal and HCal ET whatever the image quantity, so Eem/Ehad are always read."""
    path = _good(delphes_file, drop=["Tower.Eem", "Tower.Ehad", "Event.Weight"])
    for quantity in ("et", "et_hcal"):
        with pytest.raises(ImagingError, match=r"missing branch\(es\) \['Tower.Eem', 'Tower.Ehad'\]"):
            build_images([path], ImagingConfig(use_event_weight=False, quantity=quantity), sample="signal")
    path = _good(delphes_file, drop=["Event.Weight"])  # no Tower.Edges either: allowed for point images
    assert len(build_images([path], ImagingConfig(use_event_weight=False), sample="signal").muon_pt) == 1
    with pytest.raises(ImagingError, match=r"missing branch\(es\) \['Tower.Edges\[4\]'\]"):
        build_images([path], ImagingConfig(use_event_weight=False, tower_shape="mixed"), sample="signal")


def test_zero_byte_file(tmp_path):
    path = tmp_path / "chunk0.root"
    path.touch()
    with pytest.raises(ImagingError, match=r"chunk0.root: empty file \(0 bytes\)"):
        build_images([path], ImagingConfig(), sample="signal")


def test_tree_without_events(delphes_file, caplog):
    empty = delphes_file({"ET": [], "Eta": [], "Phi": []}, {"PT": [], "Eta": [], "Phi": [], "Charge": []})
    with pytest.raises(ImagingError, match="no events in 1 input file"):
        build_images([empty], ImagingConfig(), sample="signal")
    with caplog.at_level(logging.WARNING):  # an empty chunk next to a good one only warns
        build = build_images([empty, _good(delphes_file)], ImagingConfig(), sample="signal")
    assert len(build.muon_pt) == 1 and "has no events" in caplog.text


def test_no_muon_selected(delphes_file):
    towers, muons, w = random_delphes_events(50, towers_per_event=20, seed=1, muon_pt_range=(2.0, 9.0))
    path = delphes_file(towers, muons, w)
    with pytest.raises(ImagingError, match=r"no muon passed the selection \(pT in \[10.0, 15.0\] GeV"):
        build_images([path], ImagingConfig(), sample="background")


def test_non_root_file(tmp_path):
    path = tmp_path / "chunk0.root"
    path.write_text("this is a HepMC file, not ROOT\n")
    with pytest.raises(ImagingError, match="chunk0.root: not a readable ROOT file"):
        build_images([path], ImagingConfig(), sample="signal")


def test_missing_file_and_missing_tree(tmp_path):
    with pytest.raises(ImagingError, match="no such file; run the simulation stage"):
        build_images([tmp_path / "nope.root"], ImagingConfig(), sample="signal")
    other = tmp_path / "other.root"
    with uproot.recreate(other) as f:
        f.mktree("Events", {"x": np.float32}).extend({"x": np.ones(3, np.float32)})
    with pytest.raises(ImagingError, match=r"other.root: no 'Delphes' tree \(found \['Events'\]\)"):
        build_images([other], ImagingConfig(), sample="signal")


def test_truncated_file(delphes_file):
    towers, muons, w = random_delphes_events(200, towers_per_event=200, seed=2)
    path = delphes_file(towers, muons, w)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImagingError, match="chunk0.root"):
        build_images([path], ImagingConfig(), sample="signal")


def test_bad_reference_file(delphes_file, tmp_path):
    ref = tmp_path / "background.h5"
    ref.write_text("not hdf5")
    with pytest.raises(ImagingError, match="reweighting reference: .*background.h5: not a readable HDF5 file"):
        build_images([_good(delphes_file)], ImagingConfig(), sample="signal", reference=ref)


def test_cli_error_exits_2_without_traceback_or_output(tmp_path):
    bad = tmp_path / "chunk0.root"
    bad.write_text("garbage")
    out = tmp_path / "signal" / "images.h5"
    proc = subprocess.run(
        [sys.executable, "-m", "imaging", "build", "--in", str(bad), "--out", str(out), "--sample", "signal"],
        capture_output=True, text=True, cwd=PROJECT_DIR, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "chunk0.root" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.rglob("*.h5"))

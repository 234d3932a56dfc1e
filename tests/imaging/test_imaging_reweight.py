"""Signal weights reproduce the background muon-pT histogram; background weights are 1."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from imaging import ImagingConfig, build_images, write_images
from imaging.h5schema import read_image_file
from imaging.reweight import bin_index, reweight_to_reference
from imaging.synthetic import random_delphes_events


def _sample(delphes_file, n, seed, pt_range, weights=None):
    towers, muons, w = random_delphes_events(n, towers_per_event=50, seed=seed, muon_pt_range=pt_range)
    return delphes_file(towers, muons, w if weights is None else weights(n))


def test_signal_weights_reproduce_the_background_pt_histogram(delphes_file, tmp_path):
    cfg = ImagingConfig(reweight_pt_bins=10)
    bkg_file = _sample(delphes_file, 3000, 1, (9.0, 13.0))  # soft spectrum: most muons at low pT
    sig_file = _sample(delphes_file, 3000, 2, (9.5, 20.0))  # hard spectrum
    bkg = build_images([bkg_file], cfg, sample="background")
    assert (bkg.weight == 1.0).all()
    ref = write_images(tmp_path / "background" / "images.h5", bkg, cfg, sample="background", seed=1)
    sig = build_images([sig_file], cfg, sample="signal", reference=ref)
    edges = cfg.pt_edges
    h_bkg, _ = np.histogram(bkg.muon_pt, edges, weights=bkg.weight)
    h_sig, _ = np.histogram(sig.muon_pt, edges, weights=sig.weight)
    h_raw, _ = np.histogram(sig.muon_pt, edges)
    np.testing.assert_allclose(h_sig / h_sig.sum(), h_bkg / h_bkg.sum(), rtol=1e-12)
    assert not np.allclose(h_raw / h_raw.sum(), h_bkg / h_bkg.sum(), rtol=0.05)  # it did need reweighting
    assert sig.weight.sum() == pytest.approx(len(sig.weight))  # normalisation kept
    assert sig.statistics.weighted_mean_muon_pt == pytest.approx(bkg.statistics.weighted_mean_muon_pt, abs=0.02)
    assert sig.statistics.mean_muon_pt > bkg.statistics.mean_muon_pt + 0.5


def test_event_weights_enter_both_histograms(delphes_file, tmp_path):
    cfg = ImagingConfig(reweight_pt_bins=5)
    bkg = build_images([_sample(delphes_file, 2000, 3, (9.0, 16.0), weights=lambda n: np.arange(n) % 3 + 1.0)],
                       cfg, sample="background")
    levels = np.unique(bkg.weight.round(9))
    np.testing.assert_allclose(levels / levels[0], [1.0, 2.0, 3.0])  # 1:2:3, normalised to mean 1
    assert bkg.weight.mean() == pytest.approx(1.0)
    ref = write_images(tmp_path / "bkg.h5", bkg, cfg, sample="background")
    sig = build_images([_sample(delphes_file, 2000, 4, (9.0, 16.0))], cfg, sample="signal", reference=ref)
    h_bkg, _ = np.histogram(bkg.muon_pt, cfg.pt_edges, weights=bkg.weight)
    h_sig, _ = np.histogram(sig.muon_pt, cfg.pt_edges, weights=sig.weight)
    np.testing.assert_allclose(h_sig / h_sig.sum(), h_bkg / h_bkg.sum(), rtol=1e-12)
    stored = read_image_file(ref)
    np.testing.assert_array_equal(stored.weight, bkg.weight)


def test_unmatched_bins_warn_and_get_weight_zero(caplog):
    edges = np.array([10.0, 11.0, 12.0, 13.0])
    pt = np.array([10.5, 10.5, 12.5])  # nothing in bin 1
    ref_pt = np.array([10.2, 11.5, 11.5])  # nothing in bin 2
    with caplog.at_level(logging.WARNING):
        res = reweight_to_reference(pt, np.ones(3), ref_pt, np.ones(3), edges)
    assert res.weight.tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert res.bins_without_sample == 1 and res.images_without_reference == 1
    assert "cannot match" in caplog.text and "weight 0" in caplog.text


def test_bin_index_matches_numpy_histogram():
    edges = np.linspace(10, 15, 11)
    pt = np.concatenate([np.random.default_rng(0).uniform(10, 15, 1000), edges])
    counts = np.bincount(bin_index(pt, edges), minlength=10)
    np.testing.assert_array_equal(counts, np.histogram(pt, edges)[0])


def test_signal_without_reference_keeps_weight_one_and_warns(delphes_file, caplog):
    with caplog.at_level(logging.WARNING):
        sig = build_images([_sample(delphes_file, 300, 5, (9.0, 16.0))], ImagingConfig(), sample="signal")
    assert (sig.weight == 1.0).all()
    assert "not reweighted" in caplog.text

"""Sampling and the independent-pixel baseline: file contract, reproducibility, marginals."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from imaging.h5schema import read_image_file
from model.baseline import baseline_to_file, sample_independent_pixels
from model.config import TrainConfig
from model.data import load_training_data, training_data_from_arrays
from model.decoupled import sample_images
from model.errors import ModelError
from model.families import save_model, train
from model.sampling import PT_NOTE, sample_to_file

SMALL = TrainConfig(arch="deconv", width=16, noise_dim=8, epochs=1, batch_size=128, K=16, seed=3, device="cpu")


def test_sampled_file_follows_the_images_contract(synthetic_file, tmp_path):
    data = load_training_data(synthetic_file)
    res = train(data, SMALL, None, progress=False)
    model_path = save_model(tmp_path / "model.pt", res, data)
    out = sample_to_file(model_path, tmp_path / "gen.h5", n=None, seed=5, model_name="decoupled_deconv",
                         device="cpu", batch_size=150, progress=False)
    gen = read_image_file(out)
    assert gen.images.shape == (len(data), 32, 32)  # default: as many as real
    assert gen.attrs["kind"] == "generated" and gen.attrs["sample"] == "background"
    assert gen.attrs["model"] == "decoupled_deconv" and gen.attrs["muon_pt_note"] == PT_NOTE
    real = read_image_file(synthetic_file)
    mean_pt = np.sum(real.weight * real.muon_pt) / np.sum(real.weight)
    np.testing.assert_allclose(gen.muon_pt, mean_pt, rtol=1e-6)
    assert gen.attrs["training_data_digest"] == data.digest
    assert 0.5 < (gen.images != 0).mean() / (real.images != 0).mean() < 2.0  # sparse like the data
    # same seed, same images, in any batch size; other seed, other images
    a = sample_images(res.modules["generator"], res.modules["likelihood"], 300, seed=5, batch_size=300, progress=False)
    b = sample_images(res.modules["generator"], res.modules["likelihood"], 300, seed=5, batch_size=300, progress=False)
    c = sample_images(res.modules["generator"], res.modules["likelihood"], 300, seed=6, batch_size=300, progress=False)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_sample_n_images_and_reject_bad_n(synthetic_data):
    res = train(synthetic_data, dataclasses.replace(SMALL, arch="fc"), None, progress=False)
    generator, likelihood = res.modules["generator"], res.modules["likelihood"]
    assert sample_images(generator, likelihood, 7, seed=1, batch_size=3, progress=False).shape == (7, 32, 32)
    with pytest.raises(ModelError, match=">= 1"):
        sample_images(res.modules["generator"], res.modules["likelihood"], 0, seed=1)


def test_independent_pixels_follow_the_weighted_marginals():
    rng = np.random.default_rng(4)
    n = 400
    x = np.zeros((n, 8, 8), np.float32)
    x[:, 1, 1] = rng.uniform(1, 2, n) * (rng.random(n) < 0.3)  # pixel A, occupancy 0.3
    x[:, 5, 6] = 9.0  # pixel B, always 9 GeV ...
    w = np.ones(n)
    w[: n // 2] = 0.0  # ... but the first half has zero weight
    x[: n // 2, 2, 2] = 50.0  # and only zero-weight images light pixel C
    data = training_data_from_arrays(x, w)
    gen = sample_independent_pixels(data, 20000, seed=1, batch_size=3000, progress=False)
    assert (gen[:, 2, 2] == 0).all()  # zero-weight images are never drawn
    occ_a = (x[n // 2:, 1, 1] != 0).mean()
    assert (gen[:, 1, 1] != 0).mean() == pytest.approx(occ_a, abs=0.015)
    assert set(np.unique(gen[:, 1, 1])) <= set(np.unique(x[n // 2:, 1, 1]))  # values are real pixel values
    assert (gen[:, 5, 6] == 9.0).all()
    # pixels are independent: occupancy of A does not depend on another independent-ish pixel draw
    again = sample_independent_pixels(data, 20000, seed=1, batch_size=7000, progress=False)
    assert not np.array_equal(gen, sample_independent_pixels(data, 20000, seed=2, progress=False))
    assert np.array_equal(gen[:3000], again[:3000])  # same seed and first batch -> same images


def test_baseline_file(synthetic_file, tmp_path):
    out = baseline_to_file(synthetic_file, tmp_path / "independent_pixels.h5", n=123, seed=9, progress=False)
    gen = read_image_file(out)
    assert gen.images.shape == (123, 32, 32) and gen.attrs["kind"] == "generated"
    assert gen.attrs["model"] == "independent_pixels"
    real = read_image_file(synthetic_file)
    np.testing.assert_allclose(gen.muon_pt, np.sum(real.weight * real.muon_pt) / np.sum(real.weight), rtol=1e-6)
    assert torch.is_tensor(load_training_data(synthetic_file).x)

"""The threshold (three-parameter) log-normal: x = x0 + exp(N(eta, s)), x0 the detector's ET threshold.

Pins: the (B, K) matrix form equals torch's LogNormal of x - x0 (values and gradients), the
zero-skewness estimator recovers a known threshold, samples never fall below it, the settings
round-trip through model.pt, and a short CLI training on thresholded data generates no pixel
below the data's smallest value.
"""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, LogNormal

from imaging.h5schema import read_image_file, write_image_file
from model.cli import main as cli_main
from model.config import TrainConfig
from model.data import training_data_from_arrays
from model.decoupled import sample_images
from model.errors import ModelError
from model.families import load_model, train
from model.likelihoods import LogNormalThreshold, build_likelihood, zero_skew_offset
from model.objectives import bound_objective, log_likelihood_matrix, paper_objective, weighted_loss
from model.sampling import sample_to_file

THRESHOLD_GEV = 0.45
SMALL = TrainConfig(arch="fc", width=32, noise_dim=8, epochs=4, batch_size=128, K=16, lr=3e-3, seed=3, device="cpu",
                    likelihood="lognormal_threshold")


def thresholded_images(n: int, seed: int = 0, npix: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(n, npix, npix) sparse images whose non-zero values are 0.45 GeV + log-normal (mu 0, s 0.8), and weights."""
    rng = np.random.default_rng(seed)
    occupied = rng.random((n, npix, npix)) < 0.15
    values = THRESHOLD_GEV + np.exp(rng.normal(0.0, 0.8, (n, npix, npix)))
    return (occupied * values).astype(np.float32), rng.uniform(0.5, 1.5, n)


def test_matrix_form_equals_torch_lognormal_of_the_excess_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    b, k, d, x0, s = 7, 5, 64, 0.4, 0.9
    x = (x0 + torch.rand(b, d, generator=g, dtype=torch.float64) * 8 + 1e-3)
    x = x * (torch.rand(b, d, generator=g, dtype=torch.float64) < 0.2)
    logits = torch.randn(k, d, generator=g, dtype=torch.float64, requires_grad=True)
    eta = torch.randn(k, d, generator=g, dtype=torch.float64, requires_grad=True)
    lik = LogNormalThreshold(s, x0)
    ll = log_likelihood_matrix(x, logits, eta, lik)

    z = (x != 0).to(x.dtype)[:, None, :].expand(-1, k, -1)
    excess = torch.where(x != 0, x - x0, torch.ones_like(x))[:, None, :].expand(-1, k, -1)
    per_pixel = LogNormal(eta[None], s).log_prob(excess)
    ref = (Bernoulli(logits=logits[None]).log_prob(z)
           + torch.where(z != 0, per_pixel, torch.zeros_like(per_pixel))).sum(-1)
    torch.testing.assert_close(ll, ref, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(lik.log_prob(x[x != 0], eta[0, :1].expand(int((x != 0).sum()))),
                               LogNormal(eta[0, :1], s).log_prob(x[x != 0] - x0))
    w = torch.linspace(0.5, 1.5, b, dtype=torch.float64)
    for objective in (paper_objective, bound_objective):
        g1 = torch.autograd.grad(weighted_loss(objective(ll), w), (logits, eta), retain_graph=True)
        g2 = torch.autograd.grad(weighted_loss(objective(ref), w), (logits, eta), retain_graph=True)
        for a, c in zip(g1, g2, strict=True):
            torch.testing.assert_close(a, c, rtol=1e-9, atol=1e-10)


def test_zero_skew_offset_recovers_a_known_threshold():
    rng = np.random.default_rng(4)
    values = torch.as_tensor(THRESHOLD_GEV + np.exp(rng.normal(0.2, 0.7, 200_000)))
    weight = torch.ones_like(values)
    assert zero_skew_offset(values, weight) == pytest.approx(THRESHOLD_GEV, abs=0.01)
    # weights enter: the same values with the upper half weighted up have a different log skewness
    heavy = torch.where(values > values.median(), 3.0, 1.0).to(torch.float64)
    assert abs(zero_skew_offset(values, heavy) - THRESHOLD_GEV) > 0.02
    # already left-skewed in log (no threshold to find) -> a plain log-normal
    left = torch.as_tensor(np.exp(-rng.exponential(1.0, 10_000)))
    assert zero_skew_offset(left, torch.ones_like(left)) == 0.0
    with pytest.raises(ModelError, match="must be > 0"):
        zero_skew_offset(torch.tensor([0.0, 1.0, 2.0]), torch.ones(3))


def test_from_data_settings_round_trip_and_samples_stay_above_the_threshold():
    images, w = thresholded_images(3000, seed=1)
    data = training_data_from_arrays(images, w)
    lik = LogNormalThreshold.from_data(data)
    smallest = float(images[images != 0].min())
    assert 0.35 < lik.offset_gev < smallest  # close to the true 0.45, never at or above the data
    assert lik.sigma_log == pytest.approx(0.8, rel=0.1)
    again = build_likelihood(lik.name, **lik.extra_state_dict())
    assert isinstance(again, LogNormalThreshold) and again.extra_state_dict() == lik.extra_state_dict()
    draws = lik.sample(torch.full((100, 1000), -4.0), generator=torch.Generator().manual_seed(2))
    assert float(draws.min()) > lik.offset_gev
    start, _ = lik.eta_marginals(data)
    assert float(start.mean()) == pytest.approx(0.0, abs=0.15)  # mean log(x - x0) of the data (true mu 0)
    two = np.zeros((4, 8, 8), np.float32)
    two[0, 1, 1], two[2, 3, 3] = 1.0, 2.0
    with pytest.raises(ModelError, match="at least 3"):
        LogNormalThreshold.from_data(training_data_from_arrays(two, np.ones(4)))
    with pytest.raises(ModelError, match="offset"):
        LogNormalThreshold(0.5, -1.0)


def test_short_training_keeps_the_value_spectrum_above_the_threshold():
    images, w = thresholded_images(1500, seed=2)
    data = training_data_from_arrays(images, w)
    res = train(data, dataclasses.replace(SMALL, epochs=8), None, progress=False)
    assert all(math.isfinite(r["loss"]) for r in res.log_rows) and res.log_rows[-1]["loss"] < res.log_rows[0]["loss"]
    gen = sample_images(res.modules["generator"], res.modules["likelihood"], 2000, seed=5, progress=False)
    values, real = gen[gen != 0], images[images != 0]
    assert values.min() > res.modules["likelihood"].offset_gev
    assert np.median(values) == pytest.approx(np.median(real), rel=0.15)
    assert 0.8 < (gen != 0).mean() / (images != 0).mean() < 1.25


def test_cli_trains_and_samples_a_threshold_model(tmp_path):
    images, w = thresholded_images(400, seed=3)
    path = tmp_path / "images.h5"
    write_image_file(path, images, np.full(len(images), 12.0, np.float32), w, sample="background", radius=0.4,
                     kind="real", provenance={})
    model_path = tmp_path / "m" / "model.pt"
    settings = {"arch": "fc", "width": 16, "noise_dim": 8, "epochs": 1, "batch_size": 200, "K": 8,
                "likelihood": "lognormal_threshold", "device": "cpu"}
    rc = cli_main(["train", "--in", str(path), "--out", str(model_path), "--model-name", "model",
                   "--config-json", json.dumps({"models": {"model": settings}}), "--no-progress"])
    assert rc == 0
    model, record = load_model(model_path)
    lik = model.likelihood
    assert isinstance(lik, LogNormalThreshold) and record["fixed"]["likelihood"]["offset_gev"] == lik.offset_gev > 0.3
    out = read_image_file(sample_to_file(model_path, tmp_path / "gen.h5", n=300, seed=2, model_name="m",
                                         device="cpu", progress=False))
    assert out.images[out.images != 0].min() > lik.offset_gev

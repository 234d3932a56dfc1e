"""The log-normal likelihood of non-zero values: matrix form, sampling, config/CLI, short training."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from jsonschema import Draft202012Validator
from torch.distributions import Bernoulli, LogNormal

from imaging.h5schema import read_image_file
from model.cli import main as cli_main
from model.config import TrainConfig
from model.decoupled import init_model, sample_images
from model.errors import ModelError
from model.families import load_model, train
from model.likelihoods import LogNormalFixedSigma, build_likelihood
from model.objectives import bound_objective, log_likelihood_matrix, paper_objective, weighted_loss
from model.sampling import sample_to_file

ROOT = Path(__file__).resolve().parents[2]
SMALL = TrainConfig(arch="fc", width=32, noise_dim=8, epochs=1, batch_size=128, K=16, seed=3, device="cpu",
                    likelihood="lognormal_fixed_sigma")


def _random_problem(b=7, k=5, d=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, d, generator=g, dtype=torch.float64) * 8.0 + 1e-3  # ET > 0 ...
    x = x * (torch.rand(b, d, generator=g, dtype=torch.float64) < 0.2)  # ... where non-zero
    logits = torch.randn(k, d, generator=g, dtype=torch.float64, requires_grad=True)
    eta = (0.5 + torch.randn(k, d, generator=g, dtype=torch.float64)).requires_grad_(True)
    return x, logits, eta


def _direct(x, logits, eta, s):
    """Per-pixel log p with torch.distributions.LogNormal on a (B, K, D) tensor, summed over pixels."""
    z = x != 0
    zf = z.to(x.dtype)[:, None, :].expand(-1, logits.shape[0], -1)
    bern = Bernoulli(logits=logits[None, :, :]).log_prob(zf)
    safe_x = torch.where(z, x, torch.ones_like(x))[:, None, :]  # LogNormal has no density at 0
    lognormal = LogNormal(eta[None, :, :], s).log_prob(safe_x.expand(-1, eta.shape[0], -1))
    return (bern + torch.where(zf != 0, lognormal, torch.zeros_like(lognormal))).sum(dim=-1)


@pytest.mark.parametrize("s", [0.4, 1.7])
def test_matrix_form_equals_torch_lognormal_values_and_gradients(s):
    x, logits, eta = _random_problem()
    lik = LogNormalFixedSigma(s)
    ll = log_likelihood_matrix(x, logits, eta, lik)
    ref = _direct(x, logits, eta, s)
    assert ll.shape == (7, 5) and torch.isfinite(ll).all()
    torch.testing.assert_close(ll, ref, rtol=1e-10, atol=1e-9)
    w = torch.linspace(0.5, 1.5, 7, dtype=torch.float64)
    for objective in (paper_objective, bound_objective):
        g1 = torch.autograd.grad(weighted_loss(objective(ll), w), (logits, eta), retain_graph=True)
        g2 = torch.autograd.grad(weighted_loss(objective(ref), w), (logits, eta), retain_graph=True)
        for a, b in zip(g1, g2, strict=True):
            assert torch.isfinite(a).all()
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_log_prob_matches_torch_lognormal_and_differs_from_gaussian():
    lik = LogNormalFixedSigma(0.8)
    x = torch.rand(10, dtype=torch.float64) * 5 + 0.01
    eta = torch.randn(10, dtype=torch.float64)
    torch.testing.assert_close(lik.log_prob(x, eta), LogNormal(eta, 0.8).log_prob(x))
    gauss = build_likelihood("gaussian_fixed_sigma", sigma_gev=0.8)
    assert not torch.allclose(lik.log_prob(x, eta), gauss.log_prob(x, eta))


def test_samples_are_positive_with_the_lognormal_moments():
    lik = LogNormalFixedSigma(1.2)
    eta = torch.full((200, 1000), -3.0)  # median ~0.05 GeV: a Gaussian would often go negative here
    values = lik.sample(eta, generator=torch.Generator().manual_seed(1))
    assert (values > 0).all()
    assert float(values.log().mean()) == pytest.approx(-3.0, abs=0.02)
    assert float(values.log().std()) == pytest.approx(1.2, rel=0.02)


def test_settings_come_from_log_of_the_nonzero_values(synthetic_data):
    generator, lik = init_model(synthetic_data, SMALL)
    nonzero = synthetic_data.x[synthetic_data.x != 0].double()
    w = synthetic_data.weight[:, None].expand_as(synthetic_data.x)[synthetic_data.x != 0].double()
    log_mean = float((w * nonzero.log()).sum() / w.sum())
    log_std = math.sqrt(float((w * (nonzero.log() - log_mean) ** 2).sum() / w.sum()))
    assert isinstance(lik, LogNormalFixedSigma) and lik.sigma_log == pytest.approx(log_std, rel=1e-9)
    # the generator starts near the per-pixel mean of log ET, not of ET
    with torch.no_grad():
        _, eta = generator(torch.zeros(1, SMALL.noise_dim))
    start = synthetic_data.nonzero_mean(log_values=True).float()
    assert float((eta[0] - start).abs().mean()) < 0.5 * float(
        (eta[0] - synthetic_data.nonzero_mean().float()).abs().mean())


def test_bad_settings_are_clear_errors():
    with pytest.raises(ModelError, match="log-normal sigma"):
        LogNormalFixedSigma(0.0)
    with pytest.raises(ModelError, match="does not take"):
        build_likelihood("lognormal_fixed_sigma", sigma_gev=1.0)
    assert TrainConfig.from_mapping({"likelihood": "lognormal_fixed_sigma"}).likelihood == "lognormal_fixed_sigma"
    with pytest.raises(ModelError, match="likelihood"):
        TrainConfig.from_mapping({"likelihood": "lognormal"})


def test_schema_accepts_lognormal_globally_and_per_model():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "training.schema.yaml").read_text())
    validator = Draft202012Validator(schema)
    ok = {"likelihood": "lognormal_fixed_sigma", "models": {"m": {"arch": "fc", "likelihood": "lognormal_fixed_sigma"}}}
    assert not list(validator.iter_errors(ok))
    assert list(validator.iter_errors({"models": {"m": {"arch": "fc", "likelihood": "lognormal"}}}))


@pytest.mark.parametrize("objective", ["bound", "paper"])
def test_short_training_reproduces_the_nonzero_values(synthetic_data, objective):
    """Fixed-s log-normal fits E[log ET] (the geometric mean), not the arithmetic mean.

    The synthetic values are exponential, for which a log-normal with one global s (1.39 here,
    inflated by the spread between pixels) overshoots the arithmetic mean by ~60%: a property of
    the model, not a bug. So the data check is on the geometric mean, and the arithmetic mean is
    checked against what the trained model itself predicts, sum pi exp(eta + s^2/2) / sum pi.
    """
    cfg = dataclasses.replace(SMALL, epochs=6, K=32, lr=3e-3, objective=objective)
    res = train(synthetic_data, cfg, None, progress=False)
    assert all(math.isfinite(r["loss"]) for r in res.log_rows)
    assert res.log_rows[-1]["loss"] < res.log_rows[0]["loss"]
    gen = sample_images(res.modules["generator"], res.modules["likelihood"], 3000, seed=4, progress=False)
    assert (gen >= 0).all()
    values = gen[gen != 0].astype(np.float64)
    x = synthetic_data.x.numpy().astype(np.float64)
    nz = x != 0
    w = np.broadcast_to(synthetic_data.weight.numpy()[:, None], x.shape)[nz]
    real_log_mean = float(np.sum(w * np.log(x[nz])) / np.sum(w))
    assert float(np.log(values).mean()) == pytest.approx(real_log_mean, abs=math.log(1.2))  # geo. mean within 20%
    assert 0.8 < (gen != 0).mean() / nz.mean() < 1.25
    with torch.no_grad():
        noise = torch.randn(3000, SMALL.noise_dim, generator=torch.Generator().manual_seed(8))
        logits, eta = res.modules["generator"](noise)
        pi = torch.sigmoid(logits).double()
        sigma_log = res.modules["likelihood"].sigma_log
        predicted = float((pi * torch.exp(eta.double() + 0.5 * sigma_log**2)).sum() / pi.sum())
    assert float(values.mean()) == pytest.approx(predicted, rel=0.2)


def test_cli_trains_saves_and_samples_a_lognormal_model(synthetic_file, tmp_path):
    model_path = tmp_path / "m" / "model.pt"
    settings = {"arch": "fc", "width": 16, "noise_dim": 8, "epochs": 1, "batch_size": 200, "K": 8,
                "likelihood": "lognormal_fixed_sigma", "device": "cpu"}
    rc = cli_main(["train", "--in", synthetic_file, "--out", str(model_path), "--model-name", "model",
                   "--config-json", json.dumps({"models": {"model": settings}}), "--no-progress"])
    assert rc == 0
    model, record = load_model(model_path)
    lik = model.likelihood
    assert isinstance(lik, LogNormalFixedSigma) and record["fixed"]["likelihood"]["name"] == "lognormal_fixed_sigma"
    assert record["config"]["likelihood"] == "lognormal_fixed_sigma" and lik.sigma_log > 0
    out = sample_to_file(model_path, tmp_path / "gen.h5", n=200, seed=2, model_name="m", device="cpu", progress=False)
    assert (read_image_file(out).images >= 0).all()
    with pytest.raises(SystemExit):  # argparse rejects an unknown likelihood name
        cli_main(["train", "--in", synthetic_file, "--out", str(model_path), "--likelihood", "lognormal"])

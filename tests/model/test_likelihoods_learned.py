"""Trained likelihoods (gaussian_learned_sigma, gamma, lognormal_threshold_learned_sigma): matrix form,
sampling, initialisation, training moves their parameters, and model.pt / checkpoints keep them."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from jsonschema import Draft202012Validator
from torch.distributions import Bernoulli, Gamma, Normal

from model.config import TrainConfig
from model.data import training_data_from_arrays
from model.decoupled import init_model, sample_images
from model.errors import ModelError
from model.families import load_model, save_model, train
from model.likelihoods import GammaLearnedShape, GaussianLearnedSigma, build_likelihood, standard_gamma
from model.objectives import bound_objective, log_likelihood_matrix, paper_objective, weighted_loss

ROOT = Path(__file__).resolve().parents[2]
LEARNED = ("gaussian_learned_sigma", "gamma", "lognormal_threshold_learned_sigma")
LEARNED_SETTINGS = {"gaussian_learned_sigma": {"sigma_floor_gev": 0.1}, "gamma": {},
                    "lognormal_threshold_learned_sigma": {"sigma_floor_log": 0.05, "offset_gev": 1e-3}}
SMALL = TrainConfig(arch="fc", width=32, noise_dim=8, epochs=2, batch_size=128, K=16, lr=3e-3, seed=5, device="cpu")


def _likelihood(name: str, d: int, seed: int = 0):
    """A float64 learned likelihood with random (not initial) per-pixel parameters."""
    g = torch.Generator().manual_seed(seed)
    lik = build_likelihood(name, n_pixels=d, **LEARNED_SETTINGS[name])
    lik = lik.double()
    with torch.no_grad():
        for p in lik.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return lik


def _random_problem(b=7, k=5, d=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, d, generator=g, dtype=torch.float64) * 6.0 + 1e-3
    x = x * (torch.rand(b, d, generator=g, dtype=torch.float64) < 0.25)  # sparse, ET > 0 where non-zero
    logits = torch.randn(k, d, generator=g, dtype=torch.float64, requires_grad=True)
    eta = (0.5 + torch.randn(k, d, generator=g, dtype=torch.float64)).requires_grad_(True)
    return x, logits, eta


def _reference(x, logits, eta, lik):
    """sum_i [log Bern(z_i) + z_i log p(x_i | eta_i)] on a (B, K, D) tensor, with the elementwise log_prob."""
    z = (x != 0)[:, None, :].expand(-1, logits.shape[0], -1)
    bern = Bernoulli(logits=logits[None]).log_prob(z.to(x.dtype))
    safe_x = torch.where(z, x[:, None, :], torch.ones_like(z, dtype=x.dtype))  # log_prob(0) is not needed
    value = lik.log_prob(safe_x, eta[None].expand_as(safe_x))
    return (bern + torch.where(z, value, torch.zeros_like(value))).sum(-1)


@pytest.mark.parametrize("name", LEARNED)
def test_matrix_form_equals_elementwise_log_prob_values_and_gradients(name):
    x, logits, eta = _random_problem()
    lik = _likelihood(name, 64)
    ll = log_likelihood_matrix(x, logits, eta, lik)
    ref = _reference(x, logits, eta, lik)
    assert ll.shape == (7, 5) and torch.isfinite(ll).all()
    torch.testing.assert_close(ll, ref, rtol=1e-10, atol=1e-8)
    w = torch.linspace(0.5, 1.5, 7, dtype=torch.float64)
    wrt = (logits, eta, *lik.parameters())
    for objective in (paper_objective, bound_objective):
        g1 = torch.autograd.grad(weighted_loss(objective(ll), w), wrt, retain_graph=True)
        g2 = torch.autograd.grad(weighted_loss(objective(ref), w), wrt, retain_graph=True)
        for a, b in zip(g1, g2, strict=True):
            assert torch.isfinite(a).all()
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-9)
    # the likelihood's own parameters get a gradient (they are trained)
    assert all(bool(g.abs().sum() > 0) for g in torch.autograd.grad(-bound_objective(ll).sum(), list(lik.parameters())))


def test_log_prob_matches_torch_distributions_per_pixel():
    d = 6
    x = torch.rand(3, d, dtype=torch.float64) * 4 + 0.05
    eta = torch.randn(3, d, dtype=torch.float64)
    gauss = _likelihood("gaussian_learned_sigma", d)
    sigma = gauss.sigma()
    assert sigma.shape == (d,) and (sigma > 0.1).all() and sigma.unique().numel() == d  # per pixel, above floor
    torch.testing.assert_close(gauss.log_prob(x, eta), Normal(eta, sigma).log_prob(x))
    gamma = _likelihood("gamma", d)
    alpha = gamma.alpha()
    torch.testing.assert_close(gamma.log_prob(x, eta), Gamma(alpha, alpha / eta.exp()).log_prob(x))
    # `pixels` lines up per-pixel settings with values not laid out as (..., D)
    pixels = torch.tensor([5, 0, 5, 2])
    xs, es = x[0, pixels], eta[0, pixels]
    torch.testing.assert_close(gamma.log_prob(xs, es, pixels=pixels), gamma.log_prob(x, eta)[0, pixels])
    torch.testing.assert_close(gauss.log_prob(xs, es, pixels=pixels), gauss.log_prob(x, eta)[0, pixels])


def test_gamma_samples_are_positive_with_the_gamma_moments_and_seeded():
    lik = build_likelihood("gamma", n_pixels=3)
    lik.set_alpha(torch.tensor([0.3, 1.0, 6.0]))  # alpha < 1 takes the boosted branch
    eta = torch.tensor([0.0, 1.0, -1.0]).expand(40000, 3)
    values = lik.sample(eta, generator=torch.Generator().manual_seed(2))
    assert (values > 0).all() and torch.isfinite(values).all()
    mean = eta[0].exp()
    var = mean**2 / lik.alpha().detach()
    torch.testing.assert_close(values.mean(0), mean, rtol=0.03, atol=0)
    torch.testing.assert_close(values.var(0), var, rtol=0.08, atol=0)
    again = lik.sample(eta, generator=torch.Generator().manual_seed(2))
    other = lik.sample(eta, generator=torch.Generator().manual_seed(3))
    assert torch.equal(values, again) and not torch.equal(values, other)
    # the seeded Marsaglia-Tsang sampler against torch's (unseedable) one: same distribution
    ours = standard_gamma(torch.full((20000,), 2.5, dtype=torch.float64), torch.Generator().manual_seed(0))
    theirs = Gamma(torch.tensor(2.5, dtype=torch.float64), 1.0).sample((20000,))
    qs = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    torch.testing.assert_close(ours.quantile(qs), theirs.quantile(qs), rtol=0.05, atol=0)


def test_learned_sigma_samples_have_the_per_pixel_widths():
    lik = build_likelihood("gaussian_learned_sigma", n_pixels=2, sigma_floor_gev=0.05)
    lik.set_sigma(torch.tensor([0.2, 3.0]))
    torch.testing.assert_close(lik.sigma().detach(), torch.tensor([0.2, 3.0]))
    values = lik.sample(torch.tensor([5.0, 5.0]).expand(30000, 2), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(values.mean(0), torch.tensor([5.0, 5.0]), rtol=0.01, atol=0)
    torch.testing.assert_close(values.std(0), torch.tensor([0.2, 3.0]), rtol=0.02, atol=0)


def test_initial_widths_and_shapes_come_from_each_pixels_values():
    """Pixel A: many N(10, 0.5) values; pixel B: many exponential values; the rest: rarely or never hit."""
    rng = np.random.default_rng(0)
    n = 4000
    x = np.zeros((n, 8, 8), np.float32)
    x[:, 1, 1] = rng.normal(10.0, 0.5, n)
    x[:, 2, 2] = rng.exponential(2.0, n)
    x[:3, 6, 6] = 7.0  # hit 3 times, no spread
    data = training_data_from_arrays(x)
    _, gauss = init_model(data, dataclasses.replace(SMALL, likelihood="gaussian_learned_sigma"))
    sigma = gauss.sigma().detach().double()
    global_std = data.nonzero_std()
    assert sigma[1 * 8 + 1] == pytest.approx(0.5, rel=0.05)
    assert sigma[0] == pytest.approx(global_std, rel=1e-4)  # never hit: the global std
    assert 0.3 * global_std < sigma[6 * 8 + 6] < global_std  # 3 equal values: pulled towards it
    assert gauss.sigma_floor_gev == pytest.approx(0.05 * global_std)
    _, gamma = init_model(data, dataclasses.replace(SMALL, likelihood="gamma"))
    alpha = gamma.alpha().detach().double()
    assert alpha[2 * 8 + 2] == pytest.approx(1.0, rel=0.1)  # exponential: shape 1
    # (10 / 0.5)^2 = 400, pulled a little by the 5-image prior towards the pooled CV^2 (~0.5): 1 / (1/400 + 2.5/4000)
    assert alpha[1 * 8 + 1] == pytest.approx(320.0, rel=0.1)
    assert alpha[0] == pytest.approx(1.0 / 0.5, rel=0.05)  # never hit: the pooled shape


@pytest.mark.parametrize("name", LEARNED)
def test_learned_parameters_move_and_are_restored_from_model_file(synthetic_data, tmp_path, name):
    cfg = dataclasses.replace(SMALL, likelihood=name)
    _, start = init_model(synthetic_data, cfg)
    res = train(synthetic_data, cfg, tmp_path / "ckpt", progress=False)
    assert all(math.isfinite(r["loss"]) for r in res.log_rows) and res.log_rows[-1]["loss"] < res.log_rows[0]["loss"]
    before = {k: v.detach().clone() for k, v in start.state_dict().items()}
    after = {k: v.detach().clone() for k, v in res.modules["likelihood"].state_dict().items()}
    assert before.keys() == after.keys() and len(after) == 1
    (key,) = after
    assert float((after[key] - before[key]).abs().max()) > 1e-3  # trained, not fixed
    ckpt = torch.load(tmp_path / "ckpt" / "last.pt", weights_only=True)
    assert torch.equal(ckpt["modules"]["likelihood"][key], after[key])
    model, record = load_model(save_model(tmp_path / "model.pt", res, synthetic_data))
    gen, lik = model.generator, model.likelihood
    assert type(lik) is type(res.modules["likelihood"]) and record["fixed"]["likelihood"]["name"] == name
    assert torch.equal(lik.state_dict()[key], after[key])
    a = sample_images(res.modules["generator"], res.modules["likelihood"], 200, seed=3, progress=False)
    b = sample_images(gen, lik, 200, seed=3, progress=False)
    assert np.array_equal(a, b)  # the reloaded model is the trained one


def test_resume_restores_likelihood_and_its_adam_state_bitwise(synthetic_data, tmp_path):
    cfg = dataclasses.replace(SMALL, likelihood="gaussian_learned_sigma", epochs=3)
    full = train(synthetic_data, cfg, tmp_path / "full", progress=False)
    train(synthetic_data, dataclasses.replace(cfg, epochs=1), tmp_path / "resumed", progress=False)
    resumed = train(synthetic_data, cfg, tmp_path / "resumed", progress=False)
    assert resumed.resumed_from_epoch == 1
    assert torch.equal(full.modules["likelihood"].raw_sigma, resumed.modules["likelihood"].raw_sigma)
    for k, v in full.modules["generator"].state_dict().items():
        assert torch.equal(v, resumed.modules["generator"].state_dict()[k]), k
    assert [r["loss"] for r in resumed.log_rows] == [r["loss"] for r in full.log_rows]


def test_gamma_training_gives_positive_values_with_the_data_mean(synthetic_data):
    cfg = dataclasses.replace(SMALL, likelihood="gamma", epochs=6, K=32)
    res = train(synthetic_data, cfg, None, progress=False)
    gen = sample_images(res.modules["generator"], res.modules["likelihood"], 3000, seed=4, progress=False)
    assert (gen >= 0).all() and np.isfinite(gen).all()
    x = synthetic_data.x.numpy()
    nz = x != 0
    w = np.broadcast_to(synthetic_data.weight.numpy()[:, None], x.shape)[nz]
    assert 0.8 < (gen != 0).mean() / nz.mean() < 1.25
    assert float(gen[gen != 0].mean()) == pytest.approx(float(np.sum(w * x[nz]) / np.sum(w)), rel=0.2)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ModelError, match="n_pixels"):
        GaussianLearnedSigma(0, 0.1)
    with pytest.raises(ModelError, match="floor"):
        GammaLearnedShape(4, alpha_floor=0.0)
    with pytest.raises(ModelError, match="does not take"):
        build_likelihood("gamma", sigma_gev=1.0)
    for name in LEARNED:
        assert TrainConfig.from_mapping({"likelihood": name}).likelihood == name


def test_schema_accepts_the_new_likelihoods_and_conditional():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "training.schema.yaml").read_text())
    validator = Draft202012Validator(schema)
    ok = {"likelihood": "gamma", "conditional": False,
          "models": {"a": {"arch": "deconv", "likelihood": "gaussian_learned_sigma", "conditional": True}}}
    assert not list(validator.iter_errors(ok))
    assert list(validator.iter_errors({"conditional": "yes"}))
    assert list(validator.iter_errors({"models": {"a": {"arch": "fc", "conditional": 1}}}))
    assert schema["properties"]["conditional"]["default"] is False
    defaults = schema["properties"]["models"]["default"]
    config = yaml.safe_load((ROOT / "config.yaml").read_text())["training"]["models"]
    for model in ("decoupled_deconv_conditional", "decoupled_deconv_learned_sigma", "decoupled_deconv_gamma"):
        assert defaults[model] == config[model]
        TrainConfig.from_mapping({k: v for k, v in config[model].items()})  # valid training settings


def test_threshold_lognormal_learned_sigma_samples_and_start(synthetic_data):
    """Samples lie above the threshold x0 with log(x - x0) ~ N(eta, s_i); training starts at the
    fixed-width threshold log-normal (same x0, every s_i = its global s) and the bad threshold is an error."""
    lik = build_likelihood("lognormal_threshold_learned_sigma", n_pixels=2, sigma_floor_log=0.02, offset_gev=0.4)
    lik.set_sigma(torch.tensor([0.1, 0.9]))
    values = lik.sample(torch.tensor([0.0, 1.0]).expand(30000, 2), generator=torch.Generator().manual_seed(2))
    assert bool((values > 0.4).all())
    u = (values - 0.4).log()
    torch.testing.assert_close(u.mean(0), torch.tensor([0.0, 1.0]), rtol=0, atol=0.02)
    torch.testing.assert_close(u.std(0), torch.tensor([0.1, 0.9]), rtol=0.02, atol=0)
    fixed = build_likelihood("lognormal_threshold", sigma_log=1.0).from_data(synthetic_data)
    learned = build_likelihood("lognormal_threshold_learned_sigma", n_pixels=1, sigma_floor_log=0.1,
                               offset_gev=0.0).from_data(synthetic_data)
    assert learned.offset_gev == fixed.offset_gev
    torch.testing.assert_close(learned.sigma().detach().double(),
                               torch.full((synthetic_data.n_pixels,), fixed.sigma_log, dtype=torch.float64))
    with pytest.raises(ModelError, match="threshold"):
        build_likelihood("lognormal_threshold_learned_sigma", n_pixels=2, sigma_floor_log=0.02, offset_gev=-1.0)

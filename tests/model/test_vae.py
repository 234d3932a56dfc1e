"""Sparse VAE (model/vae.py): its reconstruction term is the decoupled likelihood, KL, resumable
training, the CLI file contract, and that it learns pixel correlations on the one-hot toy."""
from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch
from model_cases import one_hot_images

from imaging.h5schema import read_image_file
from model import vae
from model.cli import main
from model.config import TrainConfig
from model.data import training_data_from_arrays
from model.errors import ModelError
from model.families import load_model, model_family, train
from model.likelihoods import LIKELIHOODS
from model.objectives import log_likelihood_matrix

TINY = TrainConfig(family="vae", arch="fc", width=32, noise_dim=4, epochs=3, batch_size=128, lr=3e-3, seed=9,
                   device="cpu")


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_reconstruction_term_equals_the_decoupled_log_likelihood(synthetic_data, name):
    likelihood = LIKELIHOODS[name].from_data(synthetic_data)
    x = synthetic_data.x[:16].double()
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(x.shape, generator=gen, dtype=torch.float64) * 3 - 4
    eta, _ = likelihood.eta_marginals(synthetic_data)
    eta = eta.double() + 0.3 * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    recon = vae.reconstruction_log_likelihood(x, logits, eta, likelihood)
    # image b against its own parameters b: the diagonal of the decoupled (B, K) matrix
    torch.testing.assert_close(recon, torch.diagonal(log_likelihood_matrix(x, logits, eta, likelihood)))
    # and, written out: Bernoulli of every pixel plus log p(x | eta) of the non-zero ones
    z = x != 0
    explicit = (torch.where(z, torch.sigmoid(logits), 1 - torch.sigmoid(logits)).log().sum(1)
                + torch.stack([likelihood.log_prob(x[b][z[b]], eta[b][z[b]], z[b].nonzero().squeeze(1)).sum()
                               for b in range(len(x))]))
    torch.testing.assert_close(recon, explicit)
    assert torch.isfinite(recon).all()


def test_kl_term_is_the_gaussian_kl_to_the_prior():
    gen = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    torch.testing.assert_close(vae.kl_to_standard_normal(mu, logvar), torch.distributions.kl_divergence(q, p).sum(1))
    assert torch.equal(vae.kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3)), torch.zeros(2))


def test_bad_vae_settings_are_clear_errors():
    with pytest.raises(ModelError, match="kl_weight"):
        TrainConfig.from_mapping({"family": "vae", "kl_weight": 0})
    cfg = dataclasses.replace(TINY, epochs=30, kl_weight=2.0)
    assert vae.kl_weight_at(cfg, 0) == pytest.approx(2.0 / vae.KL_WARMUP_EPOCHS)
    assert vae.kl_weight_at(cfg, vae.KL_WARMUP_EPOCHS - 1) == vae.kl_weight_at(cfg, 29) == 2.0
    # the schedule does not depend on the configured epochs (resuming with more epochs stays exact)
    assert vae.kl_weight_at(dataclasses.replace(cfg, epochs=1), 0) == vae.kl_weight_at(cfg, 0)


def _state(result):
    return {f"{m}.{k}": v.detach().clone() for m, mod in result.modules.items() for k, v in mod.state_dict().items()}


@pytest.mark.parametrize("arch", ["fc", "deconv"])
def test_resume_gives_the_same_networks_as_an_uninterrupted_run(synthetic_data, tmp_path, arch):
    cfg = dataclasses.replace(TINY, arch=arch, width=16 if arch == "deconv" else 32)
    full = train(synthetic_data, cfg, tmp_path / "full", progress=False)
    train(synthetic_data, dataclasses.replace(cfg, epochs=1), tmp_path / "resumed", progress=False)
    resumed = train(synthetic_data, cfg, tmp_path / "resumed", progress=False)
    assert resumed.resumed_from_epoch == 1
    a, b = _state(full), _state(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in full.log_rows] == [r["loss"] for r in resumed.log_rows]
    for row in full.log_rows:  # elbo = recon - KL; the loss weighs the KL by the warm-up weight
        assert row["elbo"] == pytest.approx(row["recon_ll"] - row["kl"])
        beta = vae.kl_weight_at(cfg, row["epoch"] - 1)
        assert row["loss"] == pytest.approx(-(row["recon_ll"] - beta * row["kl"]))


def test_cli_trains_and_samples_a_vae_into_the_images_contract(synthetic_file, tmp_path):
    settings = {"family": "vae", "arch": "fc", "width": 32, "noise_dim": 4, "epochs": 2, "batch_size": 100,
                "likelihood": "lognormal_fixed_sigma"}
    model = tmp_path / "sparse_vae" / "model.pt"
    assert main(["train", "--in", synthetic_file, "--out", str(model),
                 "--config-json", json.dumps({"device": "cpu", "models": {"sparse_vae": settings}}),
                 "--model-name", "sparse_vae", "--sample", "background", "--no-progress"]) == 0
    assert model_family(model) == "vae"
    rebuilt, record = load_model(model)
    assert record["format"] == vae.MODEL_FORMAT and record["fixed"]["likelihood"]["name"] == "lognormal_fixed_sigma"
    with open(model.with_name("train_log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == vae.LOG_COLUMNS and [int(r["epoch"]) for r in rows] == [1, 2]
    out = tmp_path / "sparse_vae.h5"
    assert main(["sample", "--model", str(model), "--out", str(out), "--model-name", "sparse_vae",
                 "--sample", "background", "--no-progress", "--config-json", json.dumps({"device": "cpu"})]) == 0
    gen, real = read_image_file(out), read_image_file(synthetic_file)
    assert gen.images.shape == real.images.shape  # default: as many as the training images
    assert (gen.images >= 0).all()  # log-normal non-zero values are positive
    assert gen.attrs["kind"] == "generated" and gen.attrs["family"] == "vae" and gen.attrs["model"] == "sparse_vae"
    assert gen.attrs["train_time_s"] == pytest.approx(sum(float(r["time_s"]) for r in rows))
    np.testing.assert_allclose(gen.muon_pt, np.sum(real.weight * real.muon_pt) / np.sum(real.weight), rtol=1e-6)
    assert 0.3 < (gen.images != 0).mean() / (real.images != 0).mean() < 3.0  # sparse like the data
    # a decoupled model.pt is not a vae file
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "missing.pt")


def _one_hot_fraction(model, n: int = 4000) -> float:
    images = vae.sample_images(model, n, seed=2, progress=False)
    return float(((images.reshape(n, -1) != 0).sum(axis=1) == 1).mean())


@pytest.mark.slow
def test_vae_learns_that_each_toy_image_has_exactly_one_deposit():
    """Independent pixels give ~37% one-hot images on the 16-pixel toy; a VAE using its latent
    must do clearly better (posterior collapse would leave it at the independent-pixel value)."""
    data = training_data_from_arrays(one_hot_images(2000, npix=4, seed=1))
    cfg = dataclasses.replace(TINY, width=64, batch_size=64, epochs=20)
    untrained = train(data, dataclasses.replace(cfg, epochs=1, lr=1e-12), None, progress=False)
    result = train(data, cfg, None, progress=False)
    start = _one_hot_fraction(vae.SparseVAE(*untrained.modules.values()))
    trained = _one_hot_fraction(vae.SparseVAE(*result.modules.values()))
    assert trained > 0.47 and trained > start + 0.1, (start, trained)
    assert result.log_rows[-1]["kl"] > 0.5  # the latent carries information

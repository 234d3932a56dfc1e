"""SARM (model/sarm.py): causal masks, the cached sampler against full re-evaluation, a normalised
likelihood, seeded and resumable training, generated images, and the CLI file contract."""
from __future__ import annotations

import csv
import dataclasses
import itertools
import json

import numpy as np
import pytest
import torch
from model_cases import one_hot_images

from imaging.h5schema import read_image_file, write_image_file
from model import sarm
from model.cli import main
from model.config import TrainConfig
from model.data import training_data_from_arrays
from model.errors import ModelError
from model.families import load_model, model_family, train
from model.synthetic import synthetic_images

TINY = TrainConfig(family="sarm", arch="pixelcnn", sarm_channels=6, sarm_layers=3, sarm_components=2, epochs=2,
                   batch_size=64, lr=3e-3, seed=4, device="cpu")


def disc_images(n: int, npix: int, seed: int) -> np.ndarray:
    """Synthetic sparse images with every pixel outside the dR < radius disc zero (as in real images)."""
    images, _, _ = synthetic_images(n, npix=npix, seed=seed, core_mean_deposits=3.0)
    return images * sarm.disc_mask(npix).view(npix, npix).numpy()


def random_net(npix: int, *, kernel: int = 3, layers: int = 3, seed: int = 0) -> sarm.SarmNet:
    """A float64 network whose every weight (the head's last layer too) is random, with a disc support."""
    spec = sarm.SarmSpec(npix=npix, channels=5, layers=layers, kernel=kernel, components=3, t_mean=0.3, t_std=0.9,
                         t_min=-1.0, t_max=2.5)
    torch.manual_seed(seed)
    net = sarm.SarmNet(spec, sarm.disc_mask(npix)).double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.6 * torch.randn_like(p))
    return net.eval()


@pytest.mark.parametrize("kernel", [3, 5])
def test_masked_convolutions_are_causal(kernel):
    """Changing pixel k changes no output at pixels <= k (raster order), and changes some later one."""
    npix = 6
    net = random_net(npix, kernel=kernel)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(3, npix, npix, generator=gen, dtype=torch.float64) * (torch.rand(3, npix, npix, generator=gen) < 0.4)
    with torch.no_grad():
        base = net(x).flatten(2)
        for k in range(npix * npix):
            changed = x.clone().view(3, -1)
            # zero <-> non-zero in image 0, 1; a new value in image 2
            changed[:2, k] = torch.where(changed[:2, k] == 0, 2.0, 0.0)
            changed[2, k] = changed[2, k] + 1.5
            diff = (net(changed.view_as(x)).flatten(2) - base).abs().amax(dim=(0, 1))
            assert float(diff[:k + 1].max()) == 0.0, k
            if k < npix * npix - 1:
                assert float(diff[k + 1:].max()) > 0, k  # the later pixels do see it


@pytest.mark.parametrize("kernel", [3, 5])
def test_cached_sampler_draws_what_full_reevaluation_draws(kernel):
    npix = 7
    net = random_net(npix, kernel=kernel, layers=3, seed=2)
    with torch.no_grad():  # a support with a hole and an extra pixel beyond the disc corner
        net.support[2 * npix + 3] = False
        net.support[0] = True
    cached = sarm.sample_images(net, 30, seed=5, batch_size=16, progress=False, dtype=torch.float64)
    reference = sarm.sample_images_reference(net, 30, seed=5, batch_size=16, dtype=torch.float64)
    np.testing.assert_array_equal(cached != 0, reference != 0)
    np.testing.assert_allclose(cached, reference, rtol=1e-6, atol=0)
    nonzero = cached[cached != 0]
    assert 0.1 < (cached != 0).mean() < 0.9 and nonzero.size > 20  # the test exercises both branches
    assert (cached.reshape(30, -1)[:, ~net.support.numpy()] == 0).all()
    lo, hi = np.exp(net.spec.t_min), np.exp(net.spec.t_max)
    assert nonzero.min() >= lo * (1 - 1e-6) and nonzero.max() <= hi * (1 + 1e-6)
    # the same seed gives the same images, another seed others
    np.testing.assert_array_equal(cached, sarm.sample_images(net, 30, seed=5, batch_size=16, progress=False,
                                                             dtype=torch.float64))
    assert not np.array_equal(cached, sarm.sample_images(net, 30, seed=6, batch_size=16, progress=False,
                                                         dtype=torch.float64))


def test_log_likelihood_is_a_normalised_density():
    """On 2x2 images with 3 support pixels: the sum over every zero pattern of the integral of p(x) over the
    non-zero values (Gauss-Legendre in log ET) is 1, and pixels outside the support contribute nothing."""
    net = random_net(2, layers=2, seed=3)
    with torch.no_grad():
        net.support[3] = False
    lo, hi = net.spec.t_min, net.spec.t_max
    nodes, weights = np.polynomial.legendre.leggauss(48)
    t = torch.tensor(0.5 * (hi - lo) * nodes + 0.5 * (hi + lo))
    wt = torch.tensor(0.5 * (hi - lo) * weights)
    total = 0.0
    for pattern in itertools.product([0, 1], repeat=3):
        on = [i for i in range(3) if pattern[i]]
        m = len(t) ** len(on)
        x = torch.zeros(m, 4, dtype=torch.float64)
        weight = torch.ones(m, dtype=torch.float64)  # quadrature weight times dx / dt = x
        if on:
            for i, g, wg in zip(on, torch.meshgrid(*([t] * len(on)), indexing="ij"),
                                torch.meshgrid(*([wt] * len(on)), indexing="ij"), strict=True):
                x[:, i] = g.reshape(-1).exp()
                weight = weight * wg.reshape(-1) * x[:, i]
        with torch.no_grad():
            ll_zero, ll_value, _ = sarm.log_likelihood(net, x)
        total += float((torch.exp(ll_zero + ll_value) * weight).sum())
    assert total == pytest.approx(1.0, abs=1e-6)


def _state(result):
    return {k: v.detach().clone() for k, v in result.modules["net"].state_dict().items()}


def test_seeded_training_is_deterministic_and_resumes_exactly(tmp_path):
    data = training_data_from_arrays(disc_images(200, 8, seed=3), np.linspace(0.5, 1.5, 200))
    full = train(data, TINY, tmp_path / "full", progress=False)
    again = train(data, TINY, None, progress=False)
    train(data, dataclasses.replace(TINY, epochs=1), tmp_path / "resumed", progress=False)
    resumed = train(data, TINY, tmp_path / "resumed", progress=False)
    assert resumed.resumed_from_epoch == 1
    a, b, c = _state(full), _state(again), _state(resumed)
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in a)
    assert [r["loss"] for r in full.log_rows] == [r["loss"] for r in resumed.log_rows]
    for row in full.log_rows:  # the loss is the exact NLL: its two parts
        assert row["loss"] == pytest.approx(row["nll_zero"] + row["nll_value"], rel=1e-5)
    assert full.log_rows[-1]["loss"] < full.log_rows[0]["loss"]
    other = train(data, dataclasses.replace(TINY, seed=5), None, progress=False)
    assert not torch.equal(_state(other)["pixel_logit"], a["pixel_logit"])


def test_generate_gives_images_in_the_support_and_the_data_range():
    npix = 12
    images = disc_images(300, npix, seed=7)
    data = training_data_from_arrays(images)
    result = train(data, dataclasses.replace(TINY, epochs=1), None, progress=False)
    net = result.modules["net"]
    out = sarm.generate(net, 50, seed=1, batch_size=32, progress=False)
    assert out.shape == (50, npix, npix) and out.dtype == np.float32
    outside = ~sarm.disc_mask(npix).view(npix, npix).numpy()
    assert (out[:, outside] == 0).all() and (images[:, outside] == 0).all()
    nonzero = out[out != 0]
    values = images[images != 0]
    assert nonzero.size > 0
    assert nonzero.min() >= values.min() * (1 - 1e-6) and nonzero.max() <= values.max() * (1 + 1e-6)
    assert 0.3 < (out != 0).mean() / (images != 0).mean() < 3.0  # starts at the data's marginals
    with pytest.raises(ModelError, match="unconditional"):
        sarm.generate(net, 5, seed=1, pt_gev=np.full(5, 12.0))


def test_bad_sarm_settings_are_clear_errors():
    with pytest.raises(ModelError, match="arch"):
        TrainConfig.from_mapping({"family": "sarm", "arch": "fc"})
    with pytest.raises(ModelError, match="arch"):
        TrainConfig.from_mapping({"family": "decoupled", "arch": "pixelcnn"})
    with pytest.raises(ModelError, match="sarm_kernel"):
        TrainConfig.from_mapping({"family": "sarm", "arch": "pixelcnn", "sarm_kernel": 4})
    with pytest.raises(ModelError, match="sarm_layers"):
        TrainConfig.from_mapping({"family": "sarm", "arch": "pixelcnn", "sarm_layers": 0})
    one_value = training_data_from_arrays(np.where(one_hot_images(20, seed=1) > 0, 2.0, 0.0).astype(np.float32))
    with pytest.raises(ModelError, match="two different non-zero values"):
        sarm.data_spec(TINY, one_value)


def test_cli_trains_and_samples_a_sarm_into_the_images_contract(tmp_path):
    real = tmp_path / "images.h5"
    images = disc_images(150, 32, seed=9)
    write_image_file(real, images, np.full(150, 12.0, np.float32), np.ones(150), sample="signal", radius=0.4,
                     kind="real", provenance={"test": True})
    settings = {"family": "sarm", "arch": "pixelcnn", "sarm_channels": 4, "sarm_layers": 2, "epochs": 1,
                "batch_size": 75}
    model = tmp_path / "sarm" / "model.pt"
    assert main(["train", "--in", str(real), "--out", str(model), "--config-json",
                 json.dumps({"device": "cpu", "models": {"sarm": settings}}), "--model-name", "sarm",
                 "--sample", "signal", "--no-progress"]) == 0
    assert model_family(model) == "sarm"
    _, record = load_model(model)
    assert record["format"] == sarm.MODEL_FORMAT and record["fixed"]["spec"]["layers"] == 2
    with open(model.with_name("train_log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == sarm.LOG_COLUMNS and [int(r["epoch"]) for r in rows] == [1]
    out = tmp_path / "sarm.h5"
    assert main(["sample", "--model", str(model), "--out", str(out), "--model-name", "sarm", "--sample", "signal",
                 "--no-progress", "--config-json", json.dumps({"device": "cpu", "n_generated": 40,
                                                               "sample_batch_size": 16})]) == 0
    gen = read_image_file(out)
    assert gen.images.shape == (40, 32, 32) and (gen.images >= 0).all()
    assert gen.attrs["family"] == "sarm" and gen.attrs["model"] == "sarm" and gen.attrs["objective"] == "exact_nll"
    assert (gen.images[:, ~sarm.disc_mask(32).view(32, 32).numpy()] == 0).all()

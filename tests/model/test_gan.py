"""LAGAN-style GAN (model/gan.py): locally connected layers, minibatch discrimination, sparsity,
resumable training, the CLI file contract, and that it learns a known occupancy pattern."""
from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imaging.h5schema import read_image_file
from model import gan
from model.cli import main
from model.config import TrainConfig
from model.data import training_data_from_arrays
from model.errors import ModelError
from model.families import load_model, model_family, train

TINY = TrainConfig(family="gan", arch="fc", width=32, noise_dim=8, epochs=3, batch_size=64, lr=2e-3, seed=5,
                   device="cpu")


def pattern_images(n: int, seed: int = 0) -> np.ndarray:
    """(n, 8, 8) images with a known occupancy: central 2x2 block 80%, pixel (1, 6) 30%, the rest never."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 8, 8), np.float32)
    x[:, 3:5, 3:5] = (rng.random((n, 2, 2)) < 0.8) * rng.uniform(1.0, 3.0, (n, 2, 2))
    x[:, 1, 6] = (rng.random(n) < 0.3) * rng.uniform(1.0, 3.0, n)
    return x


@pytest.fixture(scope="module")
def pattern_data():
    return training_data_from_arrays(pattern_images(512, seed=1), np.random.default_rng(2).uniform(0.5, 1.5, 512))


def _reference_locally_connected(lc: gan.LocallyConnected2d, x: torch.Tensor) -> torch.Tensor:
    """Output position by position: each position's own kernel applied to its receptive field."""
    k, s, p, m = lc.kernel_size, lc.stride, lc.padding, lc.out_size
    xp = F.pad(x, (p, p, p, p))
    out = torch.empty(x.shape[0], lc.out_channels, m, m, dtype=torch.float64)
    for i in range(m):
        for j in range(m):
            patch = xp[:, :, i * s:i * s + k, j * s:j * s + k].reshape(x.shape[0], -1).double()  # order (c, di, dj)
            pos = i * m + j
            out[:, :, i, j] = patch @ lc.weight[pos].double().T + lc.bias[pos].double()
    return out


@pytest.mark.parametrize("in_size,kernel,stride,padding", [(7, 3, 2, 1), (6, 2, 1, 0), (8, 3, 1, 1)])
def test_locally_connected_layer_equals_position_by_position_reference(in_size, kernel, stride, padding):
    torch.manual_seed(0)
    lc = gan.LocallyConnected2d(3, 4, in_size, kernel, stride=stride, padding=padding)
    with torch.no_grad():
        lc.bias.normal_()
    x = torch.randn(5, 3, in_size, in_size)
    out = lc(x)
    assert out.shape == (5, 4, lc.out_size, lc.out_size)
    torch.testing.assert_close(out.double(), _reference_locally_connected(lc, x), rtol=1e-5, atol=1e-5)
    # no weight sharing: the same input patch at two positions gives different outputs
    const = torch.ones(1, 3, in_size, in_size)
    inner = lc(const)[0, :, 1:-1, 1:-1] if lc.out_size > 2 else lc(const)[0]
    assert inner.flatten(1).std(dim=1).min() > 0
    with pytest.raises(ModelError, match="expects"):
        lc(torch.randn(2, 3, in_size + 1, in_size + 1))


def test_minibatch_discrimination_depends_on_the_other_batch_members():
    torch.manual_seed(1)
    mbd = gan.MinibatchDiscrimination(6, kernels=5, kernel_dim=3)
    f = torch.randn(4, 6)
    base = mbd(f)
    assert base.shape == (4, 5) and (base >= 0).all()
    changed = f.clone()
    changed[3] += 2.0  # move only sample 3
    after = mbd(changed)
    assert not torch.allclose(after[0], base[0])  # sample 0's features see sample 3
    # a lone sample has nothing to compare with; B identical samples each see B - 1 exact matches
    assert torch.equal(mbd(f[:1]), torch.zeros(1, 5))
    torch.testing.assert_close(mbd(f[:1].expand(4, 6)), torch.full((4, 5), 3.0))


def test_generator_output_has_exact_zeros_and_sampling_is_seeded():
    spec = gan.GanSpec(npix=16, noise_dim=8, width=32, scale_gev=2.0)
    generator, discriminator = gan.build_gan(spec, seed=3)
    images = gan.sample_images(generator, 64, seed=1, batch_size=20, progress=False)
    assert images.shape == (64, 16, 16) and (images >= 0).all()
    assert 0.05 < (images == 0).mean() < 0.95  # ReLU output: exact zeros, not merely small values
    assert np.array_equal(images, gan.sample_images(generator, 64, seed=1, batch_size=20, progress=False))
    # other batching: the same noise, equal up to float rounding of the batched products
    np.testing.assert_allclose(gan.sample_images(generator, 64, seed=1, batch_size=64, progress=False), images,
                               rtol=1e-5, atol=1e-6)
    assert not np.array_equal(images, gan.sample_images(generator, 64, seed=2, progress=False))
    assert discriminator(torch.from_numpy(images)).shape == (64,)
    g2, _ = gan.build_gan(spec, seed=3)  # same seed, same networks
    assert all(torch.equal(a, b)
               for a, b in zip(generator.state_dict().values(), g2.state_dict().values(), strict=True))


def test_bad_gan_settings_are_clear_errors(pattern_data):
    with pytest.raises(ModelError, match="family"):
        TrainConfig.from_mapping({"family": "flow"})
    with pytest.raises(ModelError, match="gan_critic_steps"):
        TrainConfig.from_mapping({"family": "gan", "gan_critic_steps": 0})
    with pytest.raises(ModelError, match="one architecture"):
        train(pattern_data, dataclasses.replace(TINY, arch="deconv"), None, progress=False)
    odd = training_data_from_arrays(np.pad(pattern_images(20), ((0, 0), (0, 2), (0, 2))))
    with pytest.raises(ModelError, match="divisible by 8"):
        train(odd, TINY, None, progress=False)
    if "conditional" in {f.name for f in dataclasses.fields(TrainConfig)}:
        with pytest.raises(ModelError, match="conditional"):
            TrainConfig.from_mapping({"family": "gan", "conditional": True})


def _state(result):
    return {f"{m}.{k}": v.detach().clone() for m, mod in result.modules.items() for k, v in mod.state_dict().items()}


def test_resume_gives_the_same_networks_as_an_uninterrupted_run(pattern_data, tmp_path):
    cfg = dataclasses.replace(TINY, gan_critic_steps=2)
    full = train(pattern_data, cfg, tmp_path / "full", progress=False)
    first = train(pattern_data, dataclasses.replace(cfg, epochs=1), tmp_path / "resumed", progress=False)
    assert len(first.log_rows) == 1
    resumed = train(pattern_data, cfg, tmp_path / "resumed", progress=False)
    assert resumed.resumed_from_epoch == 1
    a, b = _state(full), _state(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in full.log_rows] == [r["loss"] for r in resumed.log_rows]
    # other settings: the checkpoint is not resumed
    other = train(pattern_data, dataclasses.replace(cfg, lr=1e-3), tmp_path / "resumed", progress=False)
    assert other.resumed_from_epoch == 0


def test_cli_trains_and_samples_a_gan_into_the_images_contract(synthetic_file, tmp_path):
    settings = {"family": "gan", "arch": "fc", "width": 32, "noise_dim": 8, "epochs": 2, "batch_size": 100}
    model = tmp_path / "lagan" / "model.pt"
    assert main(["train", "--in", synthetic_file, "--out", str(model),
                 "--config-json", json.dumps({"device": "cpu", "models": {"lagan": settings}}),
                 "--model-name", "lagan", "--sample", "background", "--no-progress"]) == 0
    assert model_family(model) == "gan"
    _, record = load_model(model)
    assert record["format"] == gan.MODEL_FORMAT and record["config"]["family"] == "gan"
    with open(model.with_name("train_log.csv")) as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == gan.LOG_COLUMNS and [int(r["epoch"]) for r in rows] == [1, 2]
    out = tmp_path / "lagan.h5"
    assert main(["sample", "--model", str(model), "--out", str(out), "--model-name", "lagan",
                 "--config-json", json.dumps({"n_generated": 150, "device": "cpu"}),
                 "--real", synthetic_file, "--sample", "background", "--no-progress"]) == 0
    gen, real = read_image_file(out), read_image_file(synthetic_file)
    assert gen.images.shape == (150, 32, 32) and (gen.images >= 0).all()
    assert gen.attrs["kind"] == "generated" and gen.attrs["family"] == "gan" and gen.attrs["model"] == "lagan"
    assert gen.attrs["sample"] == "background" and gen.attrs["objective"] == gan.OBJECTIVE
    assert gen.attrs["train_time_s"] == pytest.approx(sum(float(r["time_s"]) for r in rows))
    np.testing.assert_allclose(gen.muon_pt, np.sum(real.weight * real.muon_pt) / np.sum(real.weight), rtol=1e-6)
    assert gen.attrs["training_data_digest"] == record["training_data"]["digest"]


def _occupancy_error(images: np.ndarray, data) -> float:
    """Mean absolute difference between generated and (weighted) real per-pixel occupancy."""
    gen_occ = (images.reshape(len(images), -1) != 0).mean(axis=0)
    return float(np.abs(gen_occ - data.occupancy().numpy()).mean())


def _mean_image_error(images: np.ndarray, data) -> float:
    """L1 distance between generated and (weighted) real mean images, relative to the real one."""
    w = data.weight.numpy().astype(np.float64)
    real = (w[:, None] * data.x.numpy()).sum(axis=0) / w.sum()
    return float(np.abs(images.reshape(len(images), -1).mean(axis=0) - real).sum() / real.sum())


def test_generator_starts_at_the_data_occupancy(pattern_data):
    spec = gan.gan_spec(TINY, pattern_data)
    plain, _ = gan.build_gan(spec, TINY.seed)
    started, _ = gan.build_gan(spec, TINY.seed, pattern_data.occupancy())
    dense = gan.sample_images(plain, 1000, seed=4, progress=False)
    sparse = gan.sample_images(started, 1000, seed=4, progress=False)
    assert _occupancy_error(sparse, pattern_data) < 0.02 < 0.2 < _occupancy_error(dense, pattern_data)


@pytest.mark.slow
def test_gan_learns_the_mean_image_of_a_known_pattern(pattern_data):
    """Started at the right occupancy but with tiny values, training must bring the mean image
    (where and how much energy) close to the data's while keeping the images sparse.

    Adversarial training on 512 images does not converge for every seed (here about one in
    three goes astray), so the test asks it of at least two of three seeds.
    """
    outcomes = []
    for seed in (5, 6, 7):
        cfg = dataclasses.replace(TINY, width=64, batch_size=32, epochs=25, seed=seed)
        untrained, _ = gan.build_gan(gan.gan_spec(cfg, pattern_data), cfg.seed, pattern_data.occupancy())
        before = _mean_image_error(gan.sample_images(untrained, 2000, seed=4, progress=False), pattern_data)
        result = train(pattern_data, cfg, None, progress=False)
        images = gan.sample_images(result.modules["generator"], 2000, seed=4, progress=False)
        after, occupancy_error = _mean_image_error(images, pattern_data), _occupancy_error(images, pattern_data)
        zeros = float((images == 0).mean())  # the data are 94.5% zeros
        outcomes.append((seed, round(before, 3), round(after, 3), round(occupancy_error, 3), round(zeros, 3)))
    learned = [o for o in outcomes if o[2] < 0.6 * o[1] and o[3] < 0.06 and o[4] > 0.85]
    assert len(learned) >= 2, outcomes


# --- the LAGAN recipe's options and the stabilisers (issue 23) ---

def test_gradient_penalty_of_a_linear_critic_is_known():
    """A linear critic D(x) = <a, x> has gradient a everywhere: penalty (||a|| - 1)^2, whatever the mix."""
    a = torch.arange(16, dtype=torch.float32).view(4, 4) / 10.0

    class Linear(torch.nn.Module):
        def forward(self, x):
            return (x * a).flatten(1).sum(dim=1)

    real, fake = torch.rand(6, 4, 4), torch.rand(6, 4, 4)
    expected = (a.norm() - 1.0) ** 2
    for eps in (torch.zeros(6), torch.rand(6)):
        torch.testing.assert_close(gan.gradient_penalty(Linear(), real, fake, eps), expected)
    # a critic with gradient norm 1 everywhere has no penalty
    unit = a / a.norm()

    class Unit(torch.nn.Module):
        def forward(self, x):
            return (x * unit).flatten(1).sum(dim=1)

    assert float(gan.gradient_penalty(Unit(), real, fake, torch.rand(6))) < 1e-10
    # in units of unit_gev: the gradient with respect to x / unit_gev is unit_gev * a
    torch.testing.assert_close(gan.gradient_penalty(Linear(), real, fake, torch.rand(6), unit_gev=0.25),
                               (0.25 * a.norm() - 1.0) ** 2)
    assert float(gan.gradient_penalty(Unit(), real, fake, torch.rand(6), unit_gev=3.0)) == pytest.approx(4.0)


def test_soft_occupancy_scale_is_floored_relative_to_the_pixel_et_spread():
    """t = x0 / 4 unless that makes the occupancy channel more than OCCUPANCY_MAX_GAIN times steeper
    at zero than log(1 + x / scale): tower-over-cells images have x0 ~ 1e-3 GeV at scale ~0.25 GeV."""
    assert gan.occupancy_scale(0.25, 1.5) == pytest.approx(0.0625)  # default images: x0 / 4
    assert gan.occupancy_scale(1e-3, 0.25) == pytest.approx(0.25 / gan.OCCUPANCY_MAX_GAIN)
    assert 0.25 / gan.occupancy_scale(1e-3, 0.25) <= gan.OCCUPANCY_MAX_GAIN + 1e-9


def test_wgan_gp_critic_and_penalty_do_not_depend_on_the_energy_scale_below_1_gev(pattern_data):
    """Images with every ET x 0.01 (as towers spread over cells make them smaller): with the penalty per
    min(scale, 1 GeV) and the floored occupancy scale, the same critic gives the same values and the
    same penalty. Per GeV, the penalty on the small images would differ (the divergence at scale)."""
    assert gan.penalty_unit(0.25) == pytest.approx(0.25) and gan.penalty_unit(1.9) == 1.0
    c = 0.01
    images = pattern_images(512, seed=1)
    small_data = training_data_from_arrays(images * c, np.random.default_rng(2).uniform(0.5, 1.5, 512))
    cfg = dataclasses.replace(TINY, gan_loss="wgan_gp", gan_sparsity_features=True)
    built = []
    for data in (pattern_data, small_data):
        spec = gan.gan_spec(cfg, data)
        assert spec.scale_gev < 1.0
        _, critic = gan.build_gan(spec, 1, options=gan.critic_options(cfg, data))
        built.append((spec, critic))
    (spec, critic), (small_spec, small_critic) = built
    assert small_spec.scale_gev == pytest.approx(c * spec.scale_gev, rel=1e-5)
    real = torch.from_numpy(images[:16])
    fake = torch.from_numpy(pattern_images(16, seed=5)) * 1.3
    eps = torch.rand(16, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(small_critic(real * c), critic(real), rtol=1e-4, atol=1e-5)
    penalty = gan.gradient_penalty(critic, real, fake, eps, gan.penalty_unit(spec.scale_gev))
    small_penalty = gan.gradient_penalty(small_critic, real * c, fake * c, eps, gan.penalty_unit(small_spec.scale_gev))
    torch.testing.assert_close(small_penalty, penalty, rtol=1e-3, atol=1e-5)
    per_gev = gan.gradient_penalty(small_critic, real * c, fake * c, eps)
    assert float(per_gev.detach()) > 100 * float(penalty.detach()) + 1.0


def test_spectral_norm_bounds_each_kernel_and_the_locally_connected_layer():
    torch.manual_seed(2)
    lc = gan.LocallyConnected2d(3, 4, 8, 3, stride=2, padding=1, spectral_norm=True)
    with torch.no_grad():
        lc.weight.mul_(5.0)  # far from norm 1
    lc.train()
    for _ in range(30):  # power iterations
        lc(torch.randn(2, 3, 8, 8))
    sigma = torch.linalg.matrix_norm(lc.kernels().detach(), ord=2)  # (L,) largest singular values
    torch.testing.assert_close(sigma, torch.ones_like(sigma), rtol=1e-3, atol=1e-3)
    assert torch.linalg.matrix_norm(lc.weight.detach(), ord=2).min() > 2.0  # the raw kernels are not
    lc.eval()
    x, y = torch.randn(50, 3, 8, 8), torch.randn(50, 3, 8, 8)
    with torch.no_grad():
        ratio = (lc(x) - lc(y)).flatten(1).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    assert float(ratio.max()) <= 2.0  # ceil(k / stride) = 2
    assert "sn_u" in lc.state_dict()  # the power-iteration state is checkpointed
    spec = gan.GanSpec(npix=16, noise_dim=8, width=32, scale_gev=2.0)
    _, critic = gan.build_gan(spec, 1, options=gan.CriticOptions(spectral_norm=True))
    assert nn_parametrized(critic.conv) and nn_parametrized(critic.head)


def nn_parametrized(module: torch.nn.Module) -> bool:
    return torch.nn.utils.parametrize.is_parametrized(module, "weight")


def test_threshold_output_makes_zeros_or_values_above_the_threshold():
    spec = gan.GanSpec(npix=16, noise_dim=8, width=32, scale_gev=2.0)
    plain, _ = gan.build_gan(spec, seed=3)
    thresholded, _ = gan.build_gan(dataclasses.replace(spec, threshold_gev=0.7), seed=3)
    a = gan.sample_images(plain, 200, seed=1, progress=False)
    b = gan.sample_images(thresholded, 200, seed=1, progress=False)
    assert np.array_equal(a == 0, b == 0) and 0.05 < (b == 0).mean() < 0.95  # the same pixels are empty
    assert b[b > 0].min() >= 0.7 > a[a > 0].min()  # ReLU makes values near 0, the threshold output never
    np.testing.assert_allclose(b[b > 0], a[a > 0] + 0.7, rtol=1e-6)
    with pytest.raises(ModelError, match="threshold"):
        dataclasses.replace(spec, threshold_gev=-1.0).check()


@pytest.mark.parametrize("threshold_gev", [0.0, 0.7])
def test_straight_through_output_keeps_the_values_and_gives_switched_off_pixels_a_gradient(threshold_gev):
    """gan_straight_through: the generated images are unchanged (training and sampling), but a pixel the output
    switched off (pre-activation <= 0) gets a gradient, pointing up where the loss wants more ET; without it none."""
    spec = gan.GanSpec(npix=16, noise_dim=8, width=32, scale_gev=2.0, threshold_gev=threshold_gev)
    noise = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    grads, images = [], []
    for straight in (False, True):
        generator, _ = gan.build_gan(spec, seed=3)
        generator.straight_through = straight
        a = generator.pre_activation(noise).detach()
        x = generator(noise)
        images.append(x.detach())
        (-x.sum()).backward()  # a loss that wants every pixel brighter
        grads.append(generator.out.bias.grad[:, 0].clone())
        off = (a <= 0).all(dim=0).flatten()  # positions switched off for every noise draw
    assert off.any()
    torch.testing.assert_close(images[0], images[1], rtol=0, atol=0)
    assert torch.all(grads[0][off] == 0)  # the ReLU: dead for good
    assert torch.all(grads[1][off] < 0)  # gradient descent raises their bias: they can switch on again
    with torch.no_grad():  # sampling is the plain output
        torch.testing.assert_close(generator(noise), images[1], rtol=0, atol=0)


def test_sparsity_features_tell_small_values_from_zeros(pattern_data):
    """With the auxiliary sparsity terms the critic sees a soft occupancy channel and per-image
    features; tiny values that log(1 + x / scale) would hide show as occupied pixels."""
    cfg = dataclasses.replace(TINY, gan_sparsity_features=True)
    options = gan.critic_options(cfg, pattern_data)
    assert options.occupancy_scale_gev == pytest.approx(0.25 * gan.et_threshold(pattern_data))
    spec = gan.gan_spec(cfg, pattern_data)
    _, critic = gan.build_gan(spec, 1, options=options)
    assert critic.conv.in_channels == 2 and critic.sparsity_mbd is not None
    zeros, tiny = torch.zeros(4, 8, 8), torch.full((4, 8, 8), 1e-3)
    x = torch.from_numpy(pattern_images(4, seed=9))
    occupancy = (x / (x + options.occupancy_scale_gev))[x > 0]
    assert occupancy.min() >= 0.8 - 1e-6  # real deposits (>= threshold) look occupied
    out = critic(torch.cat([zeros, tiny, x]))
    assert out.shape == (12,) and torch.isfinite(out).all()
    out.sum().backward()
    assert critic.sparsity_mbd.T.grad.abs().sum() > 0 and critic.head.weight.grad.abs().sum() > 0
    # the WGAN-GP critic has no minibatch discrimination (per-image outputs for the penalty)
    wgan = gan.critic_options(dataclasses.replace(cfg, gan_loss="wgan_gp"), pattern_data)
    _, critic = gan.build_gan(spec, 1, options=wgan)
    assert critic.mbd is None and critic.sparsity_mbd is None
    torch.testing.assert_close(critic(x[:1]), critic(torch.cat([x[:1], zeros]))[:1])  # no batch dependence


def test_wgan_gp_critic_learns_to_separate_real_from_fake(pattern_data):
    """Critic steps alone (generator fixed): the critic loss falls and the Wasserstein estimate
    E_w[D(real)] - E[D(fake)] becomes positive."""
    cfg = dataclasses.replace(TINY, gan_loss="wgan_gp", gan_sparsity_features=True)
    spec = gan.gan_spec(cfg, pattern_data)
    generator, critic = gan.build_gan(spec, 1, options=gan.critic_options(cfg, pattern_data))
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.999))
    real = pattern_data.x[:128].view(-1, 8, 8)
    with torch.no_grad():
        fake = generator(torch.randn(128, spec.noise_dim, generator=torch.Generator().manual_seed(0)))
    eps = torch.rand(128, generator=torch.Generator().manual_seed(1))
    losses = []
    for _ in range(40):
        loss = critic(fake).mean() - critic(real).mean() + 10.0 * gan.gradient_penalty(critic, real, fake, eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        estimate = float(critic(real).mean() - critic(fake).mean())
    assert losses[-1] < losses[0] - 0.1 and estimate > 0.1, losses[::10]


@pytest.mark.parametrize("options", [
    {"gan_label_flip": 0.05, "gan_sparsity_features": True, "gan_threshold_output": True},
    {"gan_loss": "wgan_gp", "gan_critic_steps": 2, "gan_spectral_norm": True, "gan_sparsity_features": True},
    {"gan_loss": "wgan_gp", "gan_straight_through": True, "gan_threshold_output": True, "gan_adam_beta1": 0.0,
     "gan_adam_beta2": 0.9},
])
def test_new_options_train_finitely_and_resume_exactly(pattern_data, tmp_path, options):
    cfg = dataclasses.replace(TINY, **options)
    full = train(pattern_data, cfg, tmp_path / "full", progress=False)
    assert all(np.isfinite(r["loss"]) and np.isfinite(r["g_loss"]) for r in full.log_rows)
    train(pattern_data, dataclasses.replace(cfg, epochs=2), tmp_path / "resumed", progress=False)
    resumed = train(pattern_data, cfg, tmp_path / "resumed", progress=False)
    assert resumed.resumed_from_epoch == 2
    a, b = _state(full), _state(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    images = gan.sample_images(full.modules["generator"], 500, seed=2, progress=False)
    if cfg.gan_threshold_output:
        assert images[images > 0].min() >= gan.et_threshold(pattern_data) - 1e-6


def test_bad_new_gan_settings_are_clear_errors():
    for bad, match in [({"gan_loss": "hinge"}, "gan_loss"), ({"gan_label_flip": 0.5}, "gan_label_flip"),
                       ({"gan_gp_weight": -1.0}, "gan_gp_weight"), ({"gan_spectral_norm": 1}, "gan_spectral_norm"),
                       ({"gan_straight_through": "yes"}, "gan_straight_through"),
                       ({"gan_adam_beta1": 1.0}, "gan_adam_beta1"), ({"gan_adam_beta2": -0.1}, "gan_adam_beta2")]:
        with pytest.raises(ModelError, match=match):
            TrainConfig.from_mapping({"family": "gan", **bad})


def test_occupancy_calibration_brings_a_drifted_generator_to_the_data_occupancy(pattern_data):
    """A generator started half-dense (no occupancy init) is calibrated to the data's per-pixel
    occupancy; only the output bias moves (one constant per pixel), and the config allows it for gan."""
    spec = gan.gan_spec(TINY, pattern_data)
    generator, _ = gan.build_gan(spec, TINY.seed)
    before = gan.sample_images(generator, 2000, seed=4, progress=False)
    assert _occupancy_error(before, pattern_data) > 0.2
    noise = torch.randn(5, spec.noise_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        pre_before = generator.pre_activation(noise)
    summary = gan.calibrate_occupancy(generator, pattern_data.occupancy(), seed=2, draws=4000)
    after = gan.sample_images(generator, 2000, seed=4, progress=False)
    assert _occupancy_error(after, pattern_data) < 0.02
    assert summary["occupancy_after"] == pytest.approx(float(pattern_data.occupancy().mean()), abs=1e-3)
    with torch.no_grad():
        shift = generator.pre_activation(noise) - pre_before
    torch.testing.assert_close(shift, shift[:1].expand_as(shift), rtol=0, atol=1e-5)
    TrainConfig(family="gan", calibrate_occupancy=True).check()


def test_averaged_minibatch_discrimination_keeps_its_scale_at_any_batch_size():
    """The summed features grow with the batch (B identical samples: B - 1 each); averaged ones do not."""
    torch.manual_seed(3)
    summed = gan.MinibatchDiscrimination(6, kernels=5, kernel_dim=3)
    averaged = gan.MinibatchDiscrimination(6, kernels=5, kernel_dim=3, average=True)
    averaged.T = summed.T
    f = torch.randn(1, 6)
    for b in (4, 64, 256):
        same = f.expand(b, 6)
        torch.testing.assert_close(summed(same), torch.full((b, 5), float(b - 1)))
        torch.testing.assert_close(averaged(same), torch.ones(b, 5))
    g = torch.randn(9, 6)
    torch.testing.assert_close(averaged(g), summed(g) / 8)
    cfg = dataclasses.replace(TINY, gan_minibatch_average=True)
    assert TrainConfig.from_mapping({"family": "gan", "gan_minibatch_average": True}).gan_minibatch_average
    assert cfg.gan_minibatch_average

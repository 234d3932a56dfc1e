"""The marginal-occupancy term: KL(Bern(data occupancy) || Bern(generator occupancy)) per pixel."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model.config import TrainConfig
from model.data import training_data_from_arrays
from model.decoupled import calibrate_occupancy, sample_images
from model.errors import ModelError
from model.families import train
from model.objectives import marginal_kl


def test_zero_when_the_generator_occupancy_equals_the_data():
    occ = torch.tensor([0.01, 0.2, 0.5, 0.9], dtype=torch.float64)
    p = torch.stack([occ * 0.5, occ * 1.5])  # two parameter sets whose occupancies average to `occ`
    p[:, 3] = torch.tensor([0.85, 0.95], dtype=torch.float64)
    assert abs(float(marginal_kl(p, occ))) < 1e-6


def test_value_is_the_bernoulli_kl_summed_over_pixels():
    occ = torch.tensor([0.1, 0.3])
    gen = torch.tensor([0.2, 0.3])
    expected = 0.1 * math.log(0.1 / 0.2) + 0.9 * math.log(0.9 / 0.8)
    assert float(marginal_kl(gen[None, :], occ)) == pytest.approx(expected, rel=1e-5)


def test_gradient_moves_the_generator_towards_the_data_occupancy():
    occ = torch.tensor([0.05, 0.05, 0.6])
    logits = torch.zeros(8, 3, requires_grad=True)  # generator at 0.5 everywhere
    marginal_kl(torch.sigmoid(logits), occ).backward()
    grad = logits.grad.sum(dim=0)
    assert grad[0] > 0 and grad[1] > 0  # too high: lower these logits
    assert grad[2] < 0  # too low: raise this one


def test_leading_dimensions_are_averaged():
    occ = torch.tensor([0.2, 0.4])
    pi = torch.rand(3, 5, 2)
    assert torch.allclose(marginal_kl(pi, occ), marginal_kl(pi.reshape(15, 2), occ))


def _block_images(n: int, seed: int, npix: int = 16, size: int = 4, blocks: int = 5) -> np.ndarray:
    """Images with up to `blocks` random size x size blocks of equal ET (correlated pixels, like cell images)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, npix, npix), np.float32)
    for _ in range(blocks):  # a few vectorised passes, not a per-image loop
        on = np.flatnonzero(rng.random(n) < 0.4)
        i, j = rng.integers(0, npix - size + 1, on.size), rng.integers(0, npix - size + 1, on.size)
        value = rng.exponential(1.0, on.size).astype(np.float32) + 0.2
        for a in range(size):
            for b in range(size):
                images[on, i + a, j + b] = value
    return images


def test_marginal_term_holds_the_generated_occupancy_at_the_data():
    """The finite-K bound overshoots the occupancy of correlated images; the term removes most of that."""
    data = training_data_from_arrays(_block_images(600, 1))
    target = float(data.occupancy().mean())
    errors = {}
    for weight in (0.0, 30.0):
        cfg = TrainConfig(arch="fc", width=32, noise_dim=8, epochs=12, batch_size=32, K=16, seed=3,
                          likelihood="lognormal_fixed_sigma", marginal_weight=weight, device="cpu")
        result = train(data, cfg, None, progress=False)
        images = sample_images(result.modules["generator"], result.modules["likelihood"], 4000, seed=9, progress=False)
        errors[weight] = abs(float(np.mean(images != 0)) - target)
    assert errors[30.0] < 0.5 * errors[0.0], errors
    assert errors[30.0] < 0.02, errors


def test_occupancy_calibration_matches_each_pixel_and_keeps_the_correlations():
    """calibrate_occupancy: after training, every pixel's generated occupancy is the data's (the bound
    alone overshoots on block images), and pixels still fire together (the blocks survive)."""
    data = training_data_from_arrays(_block_images(600, 1))
    occ = data.occupancy().numpy()
    out = {}
    for calibrate in (False, True):
        cfg = TrainConfig(arch="fc", width=32, noise_dim=8, epochs=12, batch_size=32, K=16, seed=3,
                          likelihood="lognormal_fixed_sigma", calibrate_occupancy=calibrate, device="cpu")
        result = train(data, cfg, None, progress=False)
        images = sample_images(result.modules["generator"], result.modules["likelihood"], 20000, seed=9,
                               progress=False).reshape(20000, -1)
        out[calibrate] = (images != 0), result.fixed.get("occupancy_calibration")
    (raw, none), (cal, summary) = out[False], out[True]
    assert none is None and summary["draws"] > 0
    assert summary["mean_pi_after"] == pytest.approx(float(occ.mean()), rel=1e-6)
    raw_err, cal_err = np.abs(raw.mean(axis=0) - occ), np.abs(cal.mean(axis=0) - occ)
    print(f"per-pixel occupancy error: raw max {raw_err.max():.4f} mean {raw_err.mean():.4f}, "
          f"calibrated max {cal_err.max():.4f} mean {cal_err.mean():.4f}")
    assert cal_err.mean() < 0.5 * raw_err.mean()
    assert cal_err.max() < 0.015  # per pixel, within sampling noise
    assert abs(cal.mean() - occ.mean()) < 0.005  # noise of 16k calibration + 20k sampling draws of block images
    # correlations kept: the shift is one constant per pixel, the same for every noise vector
    gen = result.modules["generator"]
    noise = torch.randn(7, 8, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        before = gen(noise)[0]
        calibrate_occupancy(gen, torch.full((256,), 0.05, dtype=torch.float64), seed=1, draws=2000)
        shift = gen(noise)[0] - before
    torch.testing.assert_close(shift, shift[:1].expand_as(shift), rtol=0, atol=1e-4)
    assert float(shift.abs().max()) > 0.1


def test_occupancy_calibration_is_refused_where_it_is_not_implemented():
    with pytest.raises(ModelError, match="calibrate_occupancy"):
        TrainConfig(family="vae", calibrate_occupancy=True).check()
    with pytest.raises(ModelError, match="calibrate_occupancy"):
        TrainConfig(conditional=True, calibrate_occupancy=True).check()
    with pytest.raises(ModelError, match="true or false"):
        TrainConfig(calibrate_occupancy="yes").check()

"""The marginal-occupancy term: KL(Bern(data occupancy) || Bern(generator occupancy)) per pixel."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model.config import TrainConfig
from model.data import training_data_from_arrays
from model.decoupled import sample_images
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

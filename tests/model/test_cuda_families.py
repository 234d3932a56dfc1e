"""Every model family on a CUDA GPU (skipped without one): trains there, samples reproducibly there, and its
model.pt samples on a CPU-only machine too. The GPU check scripts (tests/benchmarks/gpu_check.sh,
device_study.py --pytest) run these; on CPU machines they are skipped."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from imaging.towers import TowerSet
from model.config import TrainConfig
from model.families import family_module, load_model, save_model, train
from model.synthetic import synthetic_towers
from model.towers import tower_training_data

DEVICE = "cuda"
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA GPU")

TINY = {"epochs": 2, "batch_size": 32, "K": 64, "width": 64, "noise_dim": 8, "seed": 3, "device": DEVICE}
CASES = {
    "decoupled_deconv_calibrated": {"arch": "deconv", "width": 16, "likelihood": "lognormal_threshold_learned_sigma",
                                    "calibrate_occupancy": True},
    "gan_wgan_gp": {"arch": "fc", "family": "gan", "gan_loss": "wgan_gp", "gan_sparsity_features": True,
                    "gan_threshold_output": True},
    "lagan_recipe": {"arch": "fc", "family": "gan", "gan_label_flip": 0.05, "gan_sparsity_features": True,
                     "gan_minibatch_average": True, "gan_threshold_output": True},
    "sparse_vae": {"arch": "fc", "family": "vae"},
    "sarm": {"arch": "pixelcnn", "family": "sarm", "sarm_channels": 6, "sarm_layers": 3, "sarm_components": 2},
    "towers_cells": {"arch": "fc", "family": "towers", "calibrate_occupancy": True},
    "towers_count": {"arch": "fc", "family": "towers", "tower_count": "multiplicity"},
}


@pytest.fixture(scope="module")
def data():
    """Synthetic towers with their images (mixed rendering: HCal towers over their cells)."""
    raw = synthetic_towers(300, seed=4)
    towers = TowerSet(**{k: raw[k] for k in ("offsets", "deta", "dphi", "et_ecal", "et_hcal", "edges")})
    return tower_training_data(towers, raw["muon_eta"], raw["muon_phi"], raw["muon_pt"], raw["weight"],
                               tower_shape="mixed")


@pytest.mark.parametrize("name", sorted(CASES))
def test_family_trains_and_samples_on_cuda(name, data, tmp_path):
    cfg = TrainConfig(**{**TINY, **CASES[name]})
    result = train(data, cfg, tmp_path / "checkpoints", progress=False)
    assert result.device.startswith(DEVICE)
    path = save_model(tmp_path / "model.pt", result, data)
    family = family_module(cfg.family)
    model, _ = load_model(path, DEVICE)
    a = family.generate(model, 600, seed=11, batch_size=256, device=DEVICE, progress=False)
    b = family.generate(model, 600, seed=11, batch_size=256, device=DEVICE, progress=False)
    assert a.shape == (600, data.npix, data.npix) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)  # seeded on the GPU as on the CPU
    assert (a != 0).any()
    cpu_model, _ = load_model(path, "cpu")  # a model trained on a GPU samples on a CPU-only machine
    c = family.generate(cpu_model, 200, seed=11, batch_size=256, device="cpu", progress=False)
    assert c.shape == (200, data.npix, data.npix) and np.isfinite(c).all()

"""Shared fixtures for the model tests: small synthetic sparse images and a one-hot toy."""
from __future__ import annotations

import pytest
import torch

from model.data import TrainingData, training_data_from_arrays
from model.synthetic import synthetic_images, write_synthetic_file


@pytest.fixture(autouse=True)
def _one_thread():
    """Small problems on a shared 2-core machine: 1 torch thread is fastest (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synthetic_data() -> TrainingData:
    """600 synthetic 32x32 sparse images with non-uniform weights and muon pT."""
    images, pt, w = synthetic_images(600, seed=11)
    return training_data_from_arrays(images, w, pt, sample="signal")


@pytest.fixture(scope="session")
def synthetic_file(tmp_path_factory) -> str:
    """A small images.h5 file (imaging schema) of synthetic images."""
    path = tmp_path_factory.mktemp("syn") / "images.h5"
    write_synthetic_file(path, 400, seed=5, sample="background")
    return str(path)

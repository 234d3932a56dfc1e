"""The (image, towers) torch Dataset and its two collate functions, on a file written through the contract."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from imaging.h5schema import read_image_file, write_image_file
from imaging.synthetic import random_towers
from imaging.towers import render_towers
from model.errors import ModelError
from model.towerdata import ImageTowerDataset, collate_padded, collate_ragged


@pytest.fixture
def tower_file(tmp_path):
    towers = random_towers(40, seed=6)
    images = render_towers(towers, tower_shape="mixed")
    return write_image_file(tmp_path / "images.h5", images, np.full(40, 12.0), np.linspace(0.5, 1.5, 40),
                            sample="background", towers=towers), towers, images


def test_items_are_the_image_and_its_towers(tower_file):
    path, towers, images = tower_file
    data = ImageTowerDataset(path)
    assert len(data) == 40 and data.weight.dtype == torch.float64
    for i in (0, 17, 39):
        image, feats = data[i]
        np.testing.assert_array_equal(image.numpy(), images[i])
        np.testing.assert_array_equal(feats.numpy(), towers.take([i]).features())
    assert data.feature_names[:4] == ("deta", "dphi", "et_ecal", "et_hcal")
    assert len(ImageTowerDataset(path, max_images=5)) == 5
    assert len(ImageTowerDataset(read_image_file(path, towers=True))) == 40


def test_padded_and_ragged_batches_hold_the_same_towers(tower_file):
    path, towers, _ = tower_file
    data = ImageTowerDataset(path)
    padded = next(iter(DataLoader(data, batch_size=8, collate_fn=collate_padded)))
    ragged = next(iter(DataLoader(data, batch_size=8, collate_fn=collate_ragged)))
    images, feats, mask = padded
    counts = towers.counts()[:8]
    assert images.shape == (8, 32, 32) and feats.shape == (8, counts.max(), 8) and mask.dtype == torch.bool
    np.testing.assert_array_equal(mask.sum(1).numpy(), counts)
    assert torch.equal(feats[mask], ragged[1]) and torch.equal(images, ragged[0])
    np.testing.assert_array_equal(ragged[2].numpy(), towers.offsets[:9])
    assert not feats[~mask].any()  # padding is zeros


def test_a_file_without_towers_is_a_clear_error(tmp_path):
    path = write_image_file(tmp_path / "gen.h5", np.zeros((2, 32, 32), np.float32), np.full(2, 12.0),
                            sample="signal", kind="generated")
    with pytest.raises(ModelError, match=r"gen.h5: no '/towers' group"):
        ImageTowerDataset(path)
    with pytest.raises(ModelError, match="has no towers"):
        ImageTowerDataset(read_image_file(path))

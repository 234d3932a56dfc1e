"""Images and the towers behind them as a torch `Dataset`, for image and point-cloud models alike.

Both views come from one reader (`imaging.h5schema.read_image_file(path, towers=True)`); each
item is `(image, towers)`: the (npix, npix) float32 image in GeV and the image's towers as an
(n_towers, 8) float32 array with the columns `imaging.towers.FEATURES` (deta, dphi, et_ecal,
et_hcal, deta_lo, deta_hi, dphi_lo, dphi_hi). Two collate functions batch the ragged towers:
`collate_padded` (zero-padded + mask) and `collate_ragged` (concatenated + offsets).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from imaging.h5schema import ImageFileError, ImageSet, read_image_file
from imaging.towers import FEATURES

from .errors import ModelError


class ImageTowerDataset(Dataset):
    """Per-image `(image, towers)` of an images.h5 file with /towers (or of an `ImageSet` with towers).

    `weight` (N,) float64 holds the per-image weights, `images` the (N, npix, npix) tensor and
    `features` the (T, 8) tensor of all towers; `offsets` (N + 1,) slices it per image.
    """

    def __init__(self, source: str | Path | ImageSet, *, max_images: int | None = None) -> None:
        if isinstance(source, ImageSet):
            data, where = source, "the given ImageSet"
            if max_images is not None:
                raise ModelError("max_images applies to files; slice the ImageSet instead")
        else:
            where = str(source)
            try:
                data = read_image_file(source, max_images=max_images, towers=True)
            except ImageFileError as exc:
                raise ModelError(str(exc)) from None
        if data.towers is None:
            raise ModelError(f"{where} has no towers; read it with read_image_file(path, towers=True)")
        self.images = torch.from_numpy(np.ascontiguousarray(data.images, dtype=np.float32))
        self.features = torch.from_numpy(data.towers.features())
        self.offsets = np.asarray(data.towers.offsets, dtype=np.int64)
        self.weight = torch.from_numpy(np.asarray(data.weight, dtype=np.float64))
        self.feature_names = FEATURES

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(image (npix, npix), towers (n_towers, 8)) of image i; the towers are a view, not a copy."""
        return self.images[i], self.features[self.offsets[i]:self.offsets[i + 1]]


def collate_padded(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor,
                                                                                 torch.Tensor]:
    """(images (B, npix, npix), towers (B, M, 8) zero-padded, mask (B, M) bool of real towers); M = most towers."""
    images = torch.stack([image for image, _ in batch])
    towers = torch.nn.utils.rnn.pad_sequence([t for _, t in batch], batch_first=True)
    counts = torch.tensor([t.shape[0] for _, t in batch])
    mask = torch.arange(towers.shape[1])[None, :] < counts[:, None]
    return images, towers, mask


def collate_ragged(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor,
                                                                                 torch.Tensor]:
    """(images (B, npix, npix), towers (sum of n_towers, 8) concatenated, offsets (B + 1,) int64)."""
    images = torch.stack([image for image, _ in batch])
    towers = torch.cat([t for _, t in batch])
    offsets = torch.zeros(len(batch) + 1, dtype=torch.int64)
    torch.cumsum(torch.tensor([t.shape[0] for _, t in batch], dtype=torch.int64), 0, out=offsets[1:])
    return images, towers, offsets

"""Training images: load an images.h5 file, validate it, and summarise it for the model.

Validation happens here, once, so that training never starts on data it cannot fit:
wrong shape, NaN/inf, negative ET, or no non-zero pixel at all are clear errors.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.provenance import file_digest
from imaging.h5schema import ImageFileError, read_image_file
from imaging.towers import TowerSet

from .errors import ModelError


@dataclass
class TrainingData:
    """Flattened training images with normalised weights and the statistics the model needs."""

    x: torch.Tensor  # (N, D) float32, ET in GeV, D = npix * npix
    weight: torch.Tensor  # (N,) float32, normalised to mean 1
    npix: int
    radius: float
    sample: str
    digest: str  # sha256 of the file (or of the arrays) the data came from
    mean_muon_pt_gev: float  # weighted mean muon pT (what unconditional samples stand for)
    muon_pt_gev: torch.Tensor | None = None  # (N,) float64 muon pT in GeV (NaN where unknown)
    # the towers behind the images (tower-level models, model/towers.py): read only when asked for
    towers: TowerSet | None = None
    muon_eta: np.ndarray | None = None  # (N,) muon eta (the calorimeter grid around it)
    muon_phi: np.ndarray | None = None  # (N,) muon phi in rad
    image_attrs: dict[str, Any] | None = None  # the file's attributes (imaging_config: tower_shape, quantity)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_pixels(self) -> int:
        return int(self.x.shape[1])

    def occupancy(self) -> torch.Tensor:
        """(D,) weighted fraction of images in which each pixel is non-zero."""
        z = (self.x != 0).to(torch.float64)
        w = self.weight.to(torch.float64)
        return (w @ z) / w.sum()

    def nonzero_mean(self, log_values: bool = False, offset_gev: float = 0.0) -> torch.Tensor:
        """(D,) weighted mean ET (GeV) of each pixel where it is non-zero (global mean if never).

        With log_values, the mean of log((ET - offset_gev) / GeV) instead (the log-normal's eta).
        """
        w = self.weight.to(torch.float64)
        x = self.x.to(torch.float64)
        nz = x != 0
        z = nz.to(torch.float64)
        if log_values:
            x = torch.where(nz, x - offset_gev, torch.ones_like(x)).log()  # 0 where the pixel is zero
        num, den = w @ x, w @ z
        global_mean = float(num.sum() / den.sum())
        return torch.where(den > 0, num / den.clamp_min(1e-300), torch.full_like(num, global_mean))

    def nonzero_pixel_var(self, prior_count: float = 5.0, relative: bool = False) -> torch.Tensor:
        """(D,) per-pixel weighted variance of the non-zero values, shrunk towards the pooled one.

        var_i = (sum_b w_b z_bi d_bi^2 + n0 var_pool) / (sum_b w_b z_bi + n0), n0 = prior_count, so
        pixels hit rarely (or never) get about the pooled variance. d = x - m_i (GeV) with the pooled
        variance nonzero_std()^2; relative: d = x / m_i - 1 (squared coefficient of variation,
        1 / the gamma shape) pooled over all non-zero values.
        """
        w = self.weight.to(torch.float64)
        x = self.x.to(torch.float64)
        nz = x != 0
        m = self.nonzero_mean()  # (D,) > 0
        dev = torch.where(nz, x / m - 1.0 if relative else x - m, torch.zeros_like(x))
        ss, n = w @ (dev * dev), w @ nz.to(torch.float64)
        pooled = float(ss.sum() / n.sum()) if relative else self.nonzero_std() ** 2
        return (ss + prior_count * pooled) / (n + prior_count)

    def conditioning_pt(self) -> torch.Tensor:
        """(N,) float32 muon pT (GeV) of every image; ModelError if any is missing (pT-conditional models)."""
        if self.muon_pt_gev is None or not bool(torch.isfinite(self.muon_pt_gev).all()):
            bad = len(self) if self.muon_pt_gev is None else int((~torch.isfinite(self.muon_pt_gev)).sum())
            raise ModelError(
                f"training images of sample '{self.sample}': {bad} images have no finite muon pT (/muon/pt); "
                "the pT-conditional model needs it for every image (set training.conditional: false otherwise)"
            )
        return self.muon_pt_gev.to(torch.float32)

    def pt_normalisation(self) -> tuple[float, float]:
        """Weighted mean and std (GeV) of the muon pT: how the conditional generator scales its pT input."""
        pt = self.conditioning_pt().to(torch.float64)
        w = self.weight.to(torch.float64)
        mean = float((w * pt).sum() / w.sum())
        std = float(torch.sqrt((w * (pt - mean) ** 2).sum() / w.sum()))
        if not std > 0:
            raise ModelError(
                f"training images of sample '{self.sample}': every image has the same muon pT ({mean} GeV); "
                "a pT-conditional model has nothing to condition on (set training.conditional: false)"
            )
        return mean, std

    def nonzero_std(self, log_values: bool = False, offset_gev: float = 0.0) -> float:
        """Weighted standard deviation (GeV) of all non-zero pixel values: the paper's sigma.

        With log_values, the std of log((ET - offset_gev) / GeV) over the non-zero pixels (the
        log-normal's s).
        """
        values, w = self.nonzero_values()
        if log_values:
            values = (values - offset_gev).log()
        mean = (w * values).sum() / w.sum()
        return float(torch.sqrt((w * (values - mean) ** 2).sum() / w.sum()))

    def nonzero_values(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every non-zero pixel value (GeV) and the weight of its image, both float64 (M,)."""
        mask = self.x != 0
        w = self.weight[:, None].expand_as(self.x)[mask].to(torch.float64)
        return self.x[mask].to(torch.float64), w


def validate_images(images: np.ndarray, weight: np.ndarray, where: str) -> None:
    """Raise ModelError unless images are (N, npix, npix), finite, >= 0, not all zero."""
    if images.ndim != 3 or images.shape[1] != images.shape[2] or images.shape[0] == 0:
        raise ModelError(
            f"{where}: images have shape {tuple(images.shape)}, expected (N, npix, npix) with N > 0; "
            "pass the images.h5 written by the imaging stage"
        )
    if not np.isfinite(images).all():
        bad = int((~np.isfinite(images)).any(axis=(1, 2)).sum())
        raise ModelError(f"{where}: {bad} images contain NaN or inf; fix or drop them before training")
    if (images < 0).any():
        raise ModelError(
            f"{where}: {int((images < 0).sum())} pixels have negative ET; the sparse model needs ET >= 0 "
            "(zero means 'no deposit')"
        )
    n_nonzero = int(np.count_nonzero(images))
    if n_nonzero == 0:
        raise ModelError(f"{where}: every pixel of every image is zero; there is nothing to learn")
    if weight.shape != (images.shape[0],):
        raise ModelError(f"{where}: weight has shape {weight.shape}, expected ({images.shape[0]},)")
    if not np.isfinite(weight).all() or (weight < 0).any() or weight.sum() <= 0:
        raise ModelError(f"{where}: weights must be finite, >= 0 and not all zero")


def training_data_from_arrays(
    images: np.ndarray,
    weight: np.ndarray | None = None,
    muon_pt_gev: np.ndarray | None = None,
    *,
    sample: str = "synthetic",
    radius: float = 0.4,
    digest: str | None = None,
    where: str = "training images",
) -> TrainingData:
    """Validate in-memory images (N, npix, npix) and build TrainingData (used by tests too)."""
    images = np.asarray(images)
    n = images.shape[0] if images.ndim >= 1 else 0
    weight = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    validate_images(images, weight, where)
    if digest is None:  # digest of the array bytes themselves
        digest = hashlib.sha256(np.ascontiguousarray(images, dtype=np.float32).tobytes()).hexdigest()[:16]
    pt = np.full(n, np.nan) if muon_pt_gev is None else np.asarray(muon_pt_gev, dtype=np.float64)
    if pt.shape != (n,):
        raise ModelError(f"{where}: muon pT has shape {pt.shape}, expected ({n},)")
    finite = np.isfinite(pt)
    mean_pt = float(np.sum(weight[finite] * pt[finite]) / np.sum(weight[finite])) if finite.any() else float("nan")
    w = weight / weight.mean()
    npix = int(images.shape[1])
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32).reshape(n, npix * npix))
    return TrainingData(
        x=x, weight=torch.from_numpy(w.astype(np.float32)), npix=npix, radius=float(radius),
        sample=sample, digest=digest, mean_muon_pt_gev=mean_pt, muon_pt_gev=torch.from_numpy(pt),
    )


def load_training_data(path: str | Path, max_images: int | None = None, *, towers: bool = False) -> TrainingData:
    """Read and validate an images.h5 file; the digest is the file's sha256. With towers, also the towers
    behind the images, the muon positions and the file's attributes (the tower-level family)."""
    path = Path(path)
    try:
        data = read_image_file(path, max_images=max_images, towers=towers)
    except ImageFileError as exc:
        raise ModelError(str(exc)) from None
    result = training_data_from_arrays(
        data.images, data.weight, data.muon_pt, sample=data.sample or path.parent.name,
        radius=data.radius, digest=file_digest(path), where=str(path),
    )
    if towers:
        result.towers, result.muon_eta, result.muon_phi = data.towers, data.muon_eta, data.muon_phi
        result.image_attrs = dict(data.attrs)
    return result

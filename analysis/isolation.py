"""Muon isolation from an image (paper eq. 3): ET within dR < cone of the centre / muon pT."""
from __future__ import annotations

import numpy as np

from .errors import AnalysisError
from .geometry import cone_mask

#: The paper's isolation cone (dR).
DEFAULT_CONE = 0.2


def cone_et(images: np.ndarray, radius: float, cone: float = DEFAULT_CONE) -> np.ndarray:
    """Sum of pixel ET (GeV) with pixel-centre dR < cone, per image: (N, npix, npix) -> (N,)."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise AnalysisError(f"images must have shape (N, npix, npix), got {images.shape}")
    if not 0 < cone:
        raise AnalysisError(f"isolation cone must be > 0, got {cone}")
    mask = cone_mask(images.shape[1], radius, cone)
    # (N, P) @ (P,) in float64: one matrix-vector product, no per-image loop.
    flat = images.reshape(images.shape[0], -1)
    return flat @ mask.reshape(-1).astype(flat.dtype)


def isolation(
    images: np.ndarray, muon_pt_gev: np.ndarray, radius: float, cone: float = DEFAULT_CONE,
    *, source: str = "images",
) -> np.ndarray:
    """Isolation per image (dimensionless): cone ET / muon pT.

    Real images use their own muon pT; generated files carry in /muon/pt the pT each image
    stands for (the mean real pT for unconditional models, the image's own pT for
    pT-conditional ones), so the same formula applies to both. `source` names the input in
    error messages.
    """
    pt = np.asarray(muon_pt_gev, dtype=np.float64).reshape(-1)
    if pt.shape[0] != np.shape(images)[0]:
        raise AnalysisError(f"{source}: {pt.shape[0]} muon pT values for {np.shape(images)[0]} images")
    bad = ~(np.isfinite(pt) & (pt > 0))
    if bad.any():
        raise AnalysisError(
            f"{source}: /muon/pt has {int(bad.sum())} non-positive or NaN values (first at index "
            f"{int(np.argmax(bad))}); isolation needs the muon pT of every image - generated files "
            "must store the pT each image stands for (re-run the sampling stage)"
        )
    return cone_et(images, radius, cone).astype(np.float64) / pt

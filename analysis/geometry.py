"""Pixel-centre geometry of a muon-centred (d-eta, d-phi) image, from its npix and radius."""
from __future__ import annotations

import numpy as np

from imaging.h5schema import pixel_edges


def pixel_centres(npix: int, radius: float) -> np.ndarray:
    """Pixel centres (npix,) along d-eta or d-phi, in units of the radius (rad / eta)."""
    edges = pixel_edges(npix, radius)
    return 0.5 * (edges[:-1] + edges[1:])


def delta_r_map(npix: int, radius: float) -> np.ndarray:
    """dR (npix, npix) of every pixel centre from the image centre; axis 0 = d-eta, 1 = d-phi."""
    c = pixel_centres(npix, radius)
    return np.hypot(c[:, None], c[None, :])


def cone_mask(npix: int, radius: float, cone: float) -> np.ndarray:
    """Boolean (npix, npix): pixels whose centre lies strictly inside dR < cone."""
    return delta_r_map(npix, radius) < cone

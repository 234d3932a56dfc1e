"""Signal-to-background muon-pT reweighting.

The paper weights the signal so its muon pT distribution matches the background's. Here
the per-image weight of the sample being reweighted becomes

    w_i = w_event_i * p_ref(bin(pt_i)) / p(bin(pt_i)),

with p and p_ref the weighted, unit-normalised muon-pT histograms of the sample and the
reference (background images.h5: /muon/pt and /weight) in the configured binning. Then the
weighted pT histogram of the sample equals the reference's bin by bin (both normalised),
and the weights keep the sum of the event weights (when every reference bin is populated).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .errors import ImagingError

log = logging.getLogger(__name__)


@dataclass
class ReweightResult:
    """New weights plus what could not be matched (for logs and provenance)."""

    weight: np.ndarray  # (n,) float64
    factor_per_bin: np.ndarray  # (n_bins,) p_ref / p, 0 where p == 0
    bins_without_sample: int  # reference bins with entries but no sample images
    images_without_reference: int  # sample images in bins where the reference is empty (weight 0)


def bin_index(pt: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each pT on `edges` as np.histogram does (last bin closed); -1 outside."""
    idx = np.searchsorted(edges, pt, side="right") - 1
    idx[pt == edges[-1]] = len(edges) - 2
    idx[(pt < edges[0]) | (pt > edges[-1])] = -1
    return idx


def normalised_histogram(pt: np.ndarray, weight: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Weighted pT histogram on `edges` scaled to unit sum (all zero if empty)."""
    counts, _ = np.histogram(pt, bins=edges, weights=weight)
    total = counts.sum()
    return counts / total if total != 0 else counts


def reweight_to_reference(
    pt: np.ndarray,
    weight: np.ndarray,
    ref_pt: np.ndarray,
    ref_weight: np.ndarray,
    edges: np.ndarray,
) -> ReweightResult:
    """Weights that make (pt, weight)'s histogram match (ref_pt, ref_weight)'s on `edges` (GeV)."""
    if ref_pt.size == 0:
        raise ImagingError("the reweighting reference holds no images")
    p = normalised_histogram(pt, weight, edges)
    p_ref = normalised_histogram(ref_pt, ref_weight, edges)
    if not p_ref.any():
        raise ImagingError(
            f"no reference muon pT inside [{edges[0]}, {edges[-1]}] GeV; "
            "was the reference made with the same muon pT cut?"
        )
    factor = np.divide(p_ref, p, out=np.zeros_like(p_ref), where=p != 0)
    bins = bin_index(np.asarray(pt, dtype=np.float64), edges)
    if (bins < 0).any():
        raise ImagingError(f"{int((bins < 0).sum())} muon pT values fall outside [{edges[0]}, {edges[-1]}] GeV")
    new_weight = np.asarray(weight, dtype=np.float64) * factor[bins]
    bins_without_sample = int(((p == 0) & (p_ref != 0)).sum())
    images_without_reference = int((p_ref[bins] == 0).sum())
    if bins_without_sample:
        log.warning("%d pT bins have reference entries but no images to reweight: "
                    "the weighted histogram cannot match there (coarser reweight_pt_bins or more events)",
                    bins_without_sample)
    if images_without_reference:
        log.warning("%d images fall in pT bins where the reference is empty: they get weight 0",
                    images_without_reference)
    return ReweightResult(new_weight, factor, bins_without_sample, images_without_reference)

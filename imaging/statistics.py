"""Per-sample statistics of an image set: printed by the CLI and stored in images.h5."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass
class SampleStatistics:
    """Counts and summary numbers of one imaging run (pT in GeV)."""

    sample: str
    files: int
    events_read: int
    events_selected: int  # events with at least one selected muon
    muons_selected: int  # muons passing the cuts (before the leading-muon choice)
    images: int
    zero_pixel_fraction: float  # over all pixels of all images
    mean_nonzero_pixels: float  # per image
    mean_muon_pt: float  # unweighted
    weighted_mean_muon_pt: float
    sum_weights: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """Aligned two-column text table for logs and stdout."""
        rows = [
            ("sample", self.sample),
            ("input files", self.files),
            ("events read", self.events_read),
            ("events selected", f"{self.events_selected} ({_pct(self.events_selected, self.events_read)})"),
            ("muons selected", self.muons_selected),
            ("images", self.images),
            ("zero-pixel fraction", f"{100 * self.zero_pixel_fraction:.2f} %"),
            ("non-zero pixels / image", f"{self.mean_nonzero_pixels:.2f}"),
            ("mean muon pT", f"{self.mean_muon_pt:.3f} GeV"),
            ("weighted mean muon pT", f"{self.weighted_mean_muon_pt:.3f} GeV"),
            ("sum of weights", f"{self.sum_weights:.6g}"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _pct(num: int, den: int) -> str:
    return f"{100 * num / den:.1f} %" if den else "n/a"


def summarise(
    sample: str,
    files: int,
    events_read: int,
    events_selected: int,
    muons_selected: int,
    nonzero_pixels: int,
    npix: int,
    muon_pt: np.ndarray,
    weight: np.ndarray,
) -> SampleStatistics:
    """Build the statistics record; `nonzero_pixels` counts non-zero pixels over all images."""
    n = int(muon_pt.shape[0])
    total_pixels = n * npix * npix
    sum_w = float(np.sum(weight))
    return SampleStatistics(
        sample=sample, files=files, events_read=events_read, events_selected=events_selected,
        muons_selected=muons_selected, images=n,
        zero_pixel_fraction=1.0 - nonzero_pixels / total_pixels if total_pixels else float("nan"),
        mean_nonzero_pixels=nonzero_pixels / n if n else float("nan"),
        mean_muon_pt=float(np.mean(muon_pt, dtype=np.float64)) if n else float("nan"),
        weighted_mean_muon_pt=float(np.sum(weight * muon_pt) / sum_w) if n and sum_w else float("nan"),
        sum_weights=sum_w,
    )

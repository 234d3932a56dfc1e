"""CaloChallenge-style feature figure: 1-D distributions of image features, real vs each model."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .errors import AnalysisError
from .features import FEATURE_LABELS
from .figure_isolation import SAMPLE_TITLES, WeightedValues
from .style import REAL_COLOUR, model_colour, save_figure, use_style

#: Panels: feature name, log-spaced bins?, log y?
PANELS = (("n_nonzero", False, False), ("pixel_et", True, True), ("total_et", False, False),
          ("max_pixel_et", False, False))


def _edges(values: list[np.ndarray], log_bins: bool, discrete: bool, bins: int) -> np.ndarray:
    allv = np.concatenate([v for v in values if v.size])
    hi = float(np.quantile(allv, 0.999)) if allv.size else 1.0
    if discrete:
        return np.arange(-0.5, max(hi, 1.0) + 1.5, max(1, int(np.ceil((hi + 1) / bins))))
    if log_bins:
        pos = allv[allv > 0]
        lo = float(np.quantile(pos, 0.001)) if pos.size else 1e-3
        return np.geomspace(lo, max(hi, lo * 10), bins + 1)
    return np.linspace(0.0, max(hi, 1e-9), bins + 1)


def plot_features(
    sample: str, features: dict[str, dict[str, WeightedValues]], outputs: Sequence[str | Path], *,
    bins: int = 40, style: str = "CMS", dpi: int = 150,
) -> None:
    """`features[feature][label]`: label "real" first, then models; each panel normalised to unit area."""
    use_style(style)
    for name, *_ in PANELS:
        if "real" not in features.get(name, {}):
            raise AnalysisError(f"feature figure for {sample}: missing real '{name}' values")
    fig, axes = plt.subplots(2, 2, figsize=(14, 11), constrained_layout=True)
    for ax, (name, log_bins, log_y) in zip(axes.flat, PANELS, strict=False):
        per_label = features[name]
        edges = _edges([v.values for v in per_label.values()], log_bins, name == "n_nonzero", bins)
        for i, (label, wv) in enumerate(per_label.items()):
            vals = np.clip(wv.values, edges[0], np.nextafter(edges[-1], edges[0]))
            h, _ = np.histogram(vals, edges, weights=wv.weights)
            h = h / max(h.sum(), 1e-300)
            if label == "real":
                ax.stairs(h, edges, fill=True, color=REAL_COLOUR, alpha=0.6, label="real")
            else:
                colour = model_colour(label, i - 1)
                ax.stairs(h, edges, color=colour, lw=1.8, ls="--" if colour == "black" else "-", label=label)
        text, unit = FEATURE_LABELS[name]
        ax.set_xlabel(f"{text} [{unit}]" if unit else text, fontsize=18)
        ax.set_ylabel("fraction of entries", fontsize=18)
        if log_bins:
            ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        ax.legend(fontsize=11)
    fig.suptitle(f"{SAMPLE_TITLES.get(sample, sample)}: image features (outer bins include under-/overflow)",
                 fontsize=16)
    save_figure(fig, outputs, dpi=dpi)

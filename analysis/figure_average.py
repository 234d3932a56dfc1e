"""Figure 3 of the paper: average image, real | generated, per sample (linear and log colour)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm, Normalize

from .errors import AnalysisError
from .figure_isolation import SAMPLE_TITLES
from .style import save_figure, use_style


def plot_average_images(
    averages: dict[str, dict[str, np.ndarray]], radius: float, outputs: Sequence[str | Path], *,
    log: bool, style: str = "CMS", cmap: str = "viridis", dpi: int = 150,
) -> None:
    """One row per sample, columns real then each model; one colour scale shared along each row.

    `averages[sample]` maps "real" and each model to a (npix, npix) mean image in GeV
    (axis 0 = d-eta, axis 1 = d-phi). Rows have their own scale because the background's
    dense core is far brighter than the signal's uniform pile-up.
    """
    use_style(style)
    if not averages:
        raise AnalysisError("figure 3 needs at least one sample")
    for sample, images in averages.items():
        if "real" not in images or len(images) < 2:
            raise AnalysisError(f"figure 3: sample '{sample}' needs the real average and at least one generated one")
    n_cols = max(len(v) for v in averages.values())
    fig, axes = plt.subplots(
        len(averages), n_cols, figsize=(4.2 * n_cols + 1.2, 4.2 * len(averages)), squeeze=False,
        constrained_layout=True,
    )
    extent = (-radius, radius, -radius, radius)
    for row, (sample, images) in enumerate(averages.items()):
        stack = np.stack(list(images.values()))
        vmax = float(stack.max())
        if log:
            positive = stack[stack > 0]
            if positive.size == 0:
                raise AnalysisError(f"figure 3 (log): every average pixel of sample '{sample}' is zero")
            norm = LogNorm(vmin=float(positive.min()), vmax=vmax)
        else:
            norm = Normalize(vmin=0.0, vmax=vmax if vmax > 0 else 1.0)
        for col, (label, avg) in enumerate(images.items()):
            ax = axes[row, col]
            shown = np.ma.masked_less_equal(avg, 0.0) if log else avg
            im = ax.imshow(shown, origin="lower", extent=extent, norm=norm, cmap=cmap, aspect="equal")
            ax.set_title(f"{sample}: {label}", fontsize=14)
            ax.set_xlabel(r"$\Delta\phi$", fontsize=14)
            ax.set_ylabel(r"$\Delta\eta$", fontsize=14)
            ax.tick_params(labelsize=10)
        for col in range(len(images), n_cols):
            axes[row, col].set_visible(False)
        cbar = fig.colorbar(im, ax=axes[row, :].tolist(), shrink=0.9)
        cbar.set_label(f"mean $E_T$ per pixel [GeV] ({'log' if log else 'linear'})", fontsize=12)
        cbar.ax.tick_params(labelsize=11)
        axes[row, 0].text(-0.35, 0.5, SAMPLE_TITLES.get(sample, sample), transform=axes[row, 0].transAxes,
                          rotation=90, va="center", ha="center", fontsize=13)
    save_figure(fig, outputs, dpi=dpi)

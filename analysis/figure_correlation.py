"""Pixel-pixel correlation figure: the real correlation matrix and (generated - real) per model."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .correlation import correlation_difference
from .figure_isolation import SAMPLE_TITLES
from .style import save_figure, use_style


def plot_correlations(
    sample: str, real: np.ndarray, generated: dict[str, np.ndarray], outputs: Sequence[str | Path], *,
    style: str = "CMS", dpi: int = 150,
) -> None:
    """Real (P, P) correlation, then generated - real for each model on a common [-1, 1] scale.

    Pixels are flattened row-major (index = i_eta * npix + i_phi).
    """
    use_style(style)
    n = 1 + len(generated)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n + 1, 5.6), squeeze=False, constrained_layout=True)
    im0 = axes[0, 0].imshow(real, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    axes[0, 0].set_title("real: correlation", fontsize=13)
    for ax, (model, corr) in zip(axes[0, 1:], generated.items(), strict=True):
        diff = corr - real
        ax.imshow(diff, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        mean_abs = correlation_difference(real, corr)["corr_mean_abs_diff"]
        ax.set_title(f"{model} $-$ real\nmean |diff| {mean_abs:.3f}", fontsize=13)
    for ax in axes.flat:
        ax.set_xlabel("pixel index", fontsize=11)
        ax.set_ylabel("pixel index", fontsize=11)
        ax.tick_params(labelsize=9)
    fig.colorbar(im0, ax=axes[0, :].tolist(), shrink=0.85).set_label("correlation / difference", fontsize=12)
    fig.suptitle(f"{SAMPLE_TITLES.get(sample, sample)}: pixel-pixel correlations", fontsize=15)
    save_figure(fig, outputs, dpi=dpi)

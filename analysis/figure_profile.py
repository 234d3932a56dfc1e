"""Radial ET profile beside Figure 3: mean ET per pixel against dR, real vs generated, per sample.

At the default run's ~2,000 images per class the average image (Figure 3) is too noisy to show
the background's core; averaging over rings of dR shows it, with the statistical uncertainty.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .errors import AnalysisError
from .figure_isolation import SAMPLE_TITLES
from .style import REAL_COLOUR, model_colour, save_figure, use_style


@dataclass
class Profile:
    """Mean ET per pixel (GeV) in each dR ring and its standard error (NaN for rings with no pixel centre)."""

    mean: np.ndarray
    err: np.ndarray


def _band(ax: plt.Axes, edges: np.ndarray, lo: np.ndarray, hi: np.ndarray, **style: object) -> None:
    """A filled band between `lo` and `hi`, constant over each ring [edges[i], edges[i+1])."""
    ax.fill_between(edges, np.r_[lo, lo[-1]], np.r_[hi, hi[-1]], step="post", lw=0, **style)


def plot_radial_profiles(
    real: dict[str, Profile], generated: dict[str, dict[str, Profile]], edges: np.ndarray,
    outputs: Sequence[str | Path], *, log_y: bool = True, style: str = "CMS", dpi: int = 150,
) -> None:
    """One column per sample: profiles with +-1 standard-error bands on top, generated / real below."""
    use_style(style)
    samples = list(real)
    if not samples:
        raise AnalysisError("radial profile figure needs at least one real sample")
    missing = [s for s in samples if not generated.get(s)]
    if missing:
        raise AnalysisError(f"radial profile figure: no generated files given for sample(s) {', '.join(missing)}")
    fig, axes = plt.subplots(
        2, len(samples), figsize=(8 * len(samples), 8), squeeze=False,
        gridspec_kw={"height_ratios": [3, 1], "hspace": 0.06, "wspace": 0.28}, sharex="col",
    )
    for col, sample in enumerate(samples):
        main, ratio = axes[0, col], axes[1, col]
        ref = real[sample]
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(ref.mean > 0, ref.err / ref.mean, np.nan)
        _band(main, edges, ref.mean - ref.err, ref.mean + ref.err, color=REAL_COLOUR, alpha=0.5)
        main.stairs(ref.mean, edges, baseline=None, color=REAL_COLOUR, lw=2, label="real")
        _band(ratio, edges, 1 - rel, 1 + rel, color=REAL_COLOUR, alpha=0.5)
        for i, (model, prof) in enumerate(generated[sample].items()):
            colour = model_colour(model, i)
            ls = "--" if colour == "black" else "-"
            _band(main, edges, prof.mean - prof.err, prof.mean + prof.err, color=colour, alpha=0.25)
            main.stairs(prof.mean, edges, baseline=None, color=colour, ls=ls, lw=1.6, label=model)
            with np.errstate(divide="ignore", invalid="ignore"):
                rat = np.where(ref.mean > 0, prof.mean / ref.mean, np.nan)
                rat_err = np.where(ref.mean > 0, prof.err / ref.mean, np.nan)
            _band(ratio, edges, rat - rat_err, rat + rat_err, color=colour, alpha=0.25)
            ratio.stairs(rat, edges, baseline=None, color=colour, ls=ls, lw=1.4)
        main.set_title(SAMPLE_TITLES.get(sample, sample), fontsize=18)
        main.set_ylabel(r"mean $E_T$ per pixel [GeV]", fontsize=16)
        main.set_xlim(edges[0], edges[-1])
        if log_y:
            main.set_yscale("log")
        else:
            main.set_ylim(0.0, None)
        main.legend(fontsize=12, title=f"{sample}; bands: $\\pm 1$ standard error", title_fontsize=12)
        ratio.axhline(1.0, color=REAL_COLOUR, lw=1)  # y range follows the data: a 5% offset stays visible
        ratio.set_xlabel(r"$\Delta R$ from the muon (ring of the pixel centre)", fontsize=16)
        ratio.set_ylabel("gen / real", fontsize=16)
    fig.align_ylabels(axes[:, 0])
    fig.subplots_adjust(left=0.1, right=0.98, top=0.93, bottom=0.1)
    save_figure(fig, outputs, dpi=dpi)

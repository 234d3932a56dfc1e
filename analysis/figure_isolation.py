"""Figure 2 of the paper: weighted isolation histograms, real vs each model, per sample, with ratios."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import hist
import matplotlib.pyplot as plt
import mplhep
import numpy as np

from .distances import weighted_emd
from .errors import AnalysisError
from .style import REAL_COLOUR, model_colour, save_figure, use_style

SAMPLE_TITLES = {"signal": r"isolated $\mu$ ($Z' \to \mu\mu$)", "background": r"non-isolated $\mu$ ($b\bar{b}$)"}


@dataclass
class WeightedValues:
    """A 1-D weighted sample (e.g. isolation of every image in one file)."""

    values: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class Figure2Settings:
    """Plotting-only settings (config `analysis.figure2`)."""

    bins: int = 40
    iso_max: float | None = None  # None: 99.5% weighted quantile of the real sample, per sample
    log_y: bool = False
    ratio_range: tuple[float, float] = (0.0, 2.0)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Quantile q in [0, 1] of a weighted sample (inverse of the weighted CDF)."""
    order = np.argsort(values)
    cdf = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cdf, q * cdf[-1], side="left").clip(0, values.size - 1)])


def density_hist(sample: WeightedValues, lo: float, hi: float, bins: int) -> hist.Hist:
    """Weighted histogram normalised to unit area; entries above `hi` go into the last bin."""
    h = hist.Hist(hist.axis.Regular(bins, lo, hi, underflow=False, overflow=False), storage=hist.storage.Weight())
    h.fill(np.clip(sample.values, lo, np.nextafter(hi, lo)), weight=sample.weights)
    total = h.values().sum() * (hi - lo) / bins
    if total > 0:
        view = h.view()
        view.value /= total
        view.variance /= total**2
    return h


def plot_figure2(
    real: dict[str, WeightedValues], generated: dict[str, dict[str, WeightedValues]],
    outputs: Sequence[str | Path], *, settings: Figure2Settings = Figure2Settings(), style: str = "CMS",
    dpi: int = 150, cone: float = 0.2,
) -> dict[tuple[str, str], float]:
    """Draw the isolation figure (one column per sample) and return the EMD of every (sample, model)."""
    use_style(style)
    samples = list(real)
    if not samples:
        raise AnalysisError("figure 2 needs at least one real sample")
    missing = [s for s in samples if not generated.get(s)]
    if missing:
        raise AnalysisError(f"figure 2: no generated files given for sample(s) {', '.join(missing)}")
    fig, axes = plt.subplots(
        2, len(samples), figsize=(8 * len(samples), 8), squeeze=False,
        gridspec_kw={"height_ratios": [3, 1], "hspace": 0.06, "wspace": 0.25}, sharex="col",
    )
    emds: dict[tuple[str, str], float] = {}
    for col, sample in enumerate(samples):
        ref = real[sample]
        hi = settings.iso_max or 1.02 * weighted_quantile(ref.values, ref.weights, 0.995)
        hi = hi if hi > 0 else 1.0
        main, ratio = axes[0, col], axes[1, col]
        h_real = density_hist(ref, 0.0, hi, settings.bins)
        mplhep.histplot(h_real, ax=main, histtype="fill", color=REAL_COLOUR, alpha=0.6, label="real", flow="none")
        edges = h_real.axes[0].edges
        centres = h_real.axes[0].centers
        r_val = h_real.values()
        for i, (model, gen) in enumerate(generated[sample].items()):
            emd = weighted_emd(ref.values, gen.values, ref.weights, gen.weights)
            emds[(sample, model)] = emd
            colour = model_colour(model, i)
            ls = "--" if colour == "black" else "-"
            h_gen = density_hist(gen, 0.0, hi, settings.bins)
            mplhep.histplot(h_gen, ax=main, histtype="step", color=colour, ls=ls, lw=1.8, flow="none",
                            label=f"{model} (EMD {emd:.3f})")
            g_val, g_err = h_gen.values(), np.sqrt(h_gen.variances())
            with np.errstate(divide="ignore", invalid="ignore"):
                rat = np.where(r_val > 0, g_val / r_val, np.nan)
                rat_err = np.where(r_val > 0, g_err / r_val, np.nan)
            ratio.errorbar(centres, rat, yerr=rat_err, xerr=0.5 * np.diff(edges), fmt="o", ms=3,
                           color=colour, elinewidth=1)
        main.set_title(SAMPLE_TITLES.get(sample, sample), fontsize=18)
        main.set_xlabel("")
        main.set_ylabel("normalised entries", fontsize=16)
        main.set_xlim(0.0, hi)
        if settings.log_y:
            main.set_yscale("log")
        else:
            main.set_ylim(0.0, None)
        main.legend(fontsize=12, title=f"{sample}; last bin: overflow", title_fontsize=12)
        ratio.axhline(1.0, color=REAL_COLOUR, lw=1)
        ratio.set_ylim(*settings.ratio_range)
        ratio.set_xlabel(rf"isolation = $E_T(\Delta R<{cone:g})\,/\,p_T^\mu$", fontsize=16)
        ratio.set_ylabel("gen / real", fontsize=16)
    fig.align_ylabels(axes[:, 0])
    fig.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.1)
    save_figure(fig, outputs, dpi=dpi)
    return emds

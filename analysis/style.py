"""Matplotlib set-up shared by every figure: Agg backend (no screen), mplhep style, saving."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (batch jobs, CI)

from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import mplhep  # noqa: E402

from common.provenance import atomic_output  # noqa: E402

from .errors import AnalysisError  # noqa: E402
from .tables import BASELINE_MODEL  # noqa: E402

#: mplhep styles one may choose in config `analysis.style`.
STYLES = ("CMS", "ATLAS", "LHCb2", "ALICE", "ROOT")
SUPPORTED_FORMATS = (".pdf", ".png", ".svg")

#: Fixed colours: real in grey, models in a colour-blind-safe cycle, baseline dashed black.
REAL_COLOUR = "0.55"
MODEL_COLOURS = ("#3f90da", "#e76300", "#bd1f01", "#832db6", "#a96b59", "#94a4a2", "#717581")
BASELINE_COLOUR = "black"


def use_style(style: str) -> None:
    """Apply an mplhep style (fonts, ticks); experiment labels are deliberately not drawn."""
    if style not in STYLES:
        raise AnalysisError(f"unknown plot style '{style}'; choose one of {', '.join(STYLES)}")
    plt.style.use(getattr(mplhep.style, style))
    plt.rcParams["figure.max_open_warning"] = 0


def save_figure(fig: plt.Figure, paths: Sequence[str | Path], dpi: int = 150) -> None:
    """Save `fig` to every path (format from the suffix), each atomically; then close it."""
    for path in paths:
        suffix = Path(path).suffix.lower()
        if suffix not in SUPPORTED_FORMATS:
            raise AnalysisError(
                f"figure output {path}: unsupported format '{suffix}' (use {', '.join(SUPPORTED_FORMATS)})")
    try:
        for path in paths:
            with atomic_output(path) as tmp:
                fig.savefig(tmp, dpi=dpi, format=Path(path).suffix[1:].lower())
    finally:
        plt.close(fig)


def model_colour(model: str, index: int) -> str:
    """Colour of a model's curves: the baseline is always black, others cycle."""
    return BASELINE_COLOUR if model == BASELINE_MODEL else MODEL_COLOURS[index % len(MODEL_COLOURS)]

"""Background pT-hat threshold study: muon pT spectrum of b bbar for several thresholds.

A pT-hat threshold makes b bbar generation affordable but must not sculpt the muon pT
spectrum inside the analysis window [10, 15] GeV. This generates the background card
(forced muonic decays as configured) with PhaseSpace:pTHatMin overridden, histograms every
final-state muon with |eta| < 2.5 as d sigma / d pT (cross-section from Pythia), and
draws the spectra with their ratio to the lowest threshold.
"""
from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path

import awkward as ak
import numpy as np
from tqdm import tqdm

from common.provenance import atomic_output
from common.seeds import chunk_seed

from .errors import SimulationError
from .muon_filter import final_muons
from .pythia_setup import cross_section_mb, make_pythia, process_cards

log = logging.getLogger(__name__)

PT_EDGES_GEV = np.arange(4.0, 26.0, 1.0)
WINDOW_GEV = (10.0, 15.0)
MB_TO_PB = 1e9


def muon_pt_spectrum(pthat_min_gev: float, n_events: int, seed: int, force_muonic_b_decays: bool = True,
                     batch_size: int = 500) -> tuple[np.ndarray, np.ndarray, float]:
    """(d sigma/d pT in pb/GeV, its stat. error, sigma_gen in pb) of muons with |eta| < 2.5."""
    pythia = make_pythia(process_cards("background", force_muonic_b_decays), seed,
                         [f"PhaseSpace:pTHatMin = {pthat_min_gev}"])
    counts = np.zeros(len(PT_EDGES_GEV) - 1)
    done = 0
    with tqdm(total=n_events, desc=f"pTHatMin {pthat_min_gev:g} GeV", unit="ev", mininterval=5) as bar:
        while done < n_events:
            batch = pythia.nextBatch(min(batch_size, n_events - done))
            pt, eta = final_muons(batch.prt)
            pt = ak.to_numpy(ak.flatten(pt[abs(eta) < 2.5]))
            counts += np.histogram(pt, PT_EDGES_GEV)[0]
            done += len(batch)
            bar.update(len(batch))
    sigma_pb = cross_section_mb(pythia)[0] * MB_TO_PB
    scale = sigma_pb / n_events / np.diff(PT_EDGES_GEV)
    return counts * scale, np.sqrt(counts) * scale, sigma_pb


def window_ratio(dsig: Sequence[np.ndarray], err: Sequence[np.ndarray]) -> list[tuple[float, float]]:
    """sigma(10 < pT < 15 GeV) of each threshold over the first one's, with stat. error."""
    inside = (PT_EDGES_GEV[:-1] >= WINDOW_GEV[0]) & (PT_EDGES_GEV[1:] <= WINDOW_GEV[1])
    s = [float(d[inside].sum()) for d in dsig]
    e = [float(np.sqrt((x[inside] ** 2).sum())) for x in err]
    if s[0] <= 0:
        raise SimulationError("no muon in [10, 15] GeV at the lowest threshold: raise --n-events")
    return [(si / s[0], (si / s[0]) * np.hypot(ei / max(si, 1e-300), e[0] / s[0])) for si, ei in zip(s, e, strict=True)]


def pthat_study(thresholds: Sequence[float], n_events: Sequence[int], master_seed: int, figure: Path,
                table: Path, force_muonic_b_decays: bool = True) -> list[tuple[float, float]]:
    """Run the study, write the figure and the CSV table; return the window ratios."""
    thresholds = sorted(thresholds)
    if len(n_events) == 1:
        n_events = list(n_events) * len(thresholds)
    if len(n_events) != len(thresholds):
        raise SimulationError("--n-events takes one value or one per --pthat-min")
    results = [muon_pt_spectrum(t, n, chunk_seed(master_seed, "background", i, f"pthat{t:g}"), force_muonic_b_decays)
               for i, (t, n) in enumerate(zip(thresholds, n_events, strict=True))]
    dsig, err = [r[0] for r in results], [r[1] for r in results]
    ratios = window_ratio(dsig, err)
    for t, n, (r, dr) in zip(thresholds, n_events, ratios, strict=True):
        log.info("pTHatMin %g GeV (%d events): sigma(10 < pT_mu < 15 GeV) / lowest threshold = %.3f +- %.3f",
                 t, n, r, dr)
    with atomic_output(table) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pt_lo_gev", "pt_hi_gev"]
                   + [f"{k}_pthatmin{t:g}" for t in thresholds for k in ("dsigma_pb_per_gev", "err")])
        for i in range(len(PT_EDGES_GEV) - 1):
            w.writerow([PT_EDGES_GEV[i], PT_EDGES_GEV[i + 1]]
                       + [f"{v:.6g}" for d, e in zip(dsig, err, strict=True) for v in (d[i], e[i])])
        for t, n, (r, dr) in zip(thresholds, n_events, ratios, strict=True):
            w.writerow([f"# pthatmin {t:g} GeV, {n} events, window [10,15] GeV ratio to lowest", f"{r:.4f}",
                        f"{dr:.4f}"])
    _draw(thresholds, dsig, err, ratios, figure)
    return ratios


def _draw(thresholds, dsig, err, ratios, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centers = 0.5 * (PT_EDGES_GEV[1:] + PT_EDGES_GEV[:-1])
    fig, (ax, rax) = plt.subplots(2, 1, sharex=True, figsize=(6, 6), gridspec_kw={"height_ratios": [3, 1]})
    for t, d, e, (r, dr) in zip(thresholds, dsig, err, ratios, strict=True):
        ax.errorbar(centers, d, e, drawstyle="steps-mid", label=f"pTHatMin {t:g} GeV (window ratio {r:.2f}±{dr:.2f})")
        with np.errstate(divide="ignore", invalid="ignore"):
            rax.errorbar(centers, d / dsig[0], e / dsig[0], fmt="o", ms=3)
    for a in (ax, rax):
        a.axvspan(*WINDOW_GEV, color="grey", alpha=0.15)
    ax.set_yscale("log")
    ax.set_ylabel(r"d$\sigma$/d$p_T^\mu$ [pb/GeV], |$\eta$| < 2.5")
    ax.set_title(r"p p $\to$ b $\bar{b}$ (13 TeV), muons; shaded: image window")
    ax.legend(fontsize=8)
    rax.set_ylabel("ratio to lowest")
    rax.set_ylim(0, 2)
    rax.axhline(1, color="k", lw=0.5)
    rax.set_xlabel(r"muon $p_T$ [GeV]")
    fig.tight_layout()
    with atomic_output(figure) as tmp:
        fig.savefig(tmp)
    plt.close(fig)

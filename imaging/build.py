"""The imaging stage end to end: Delphes chunk files -> selected muons -> images -> weights.

`build_images` does the work in memory (chunk by chunk, columnar); `write_images` stores
the result with the shared images.h5 contract plus provenance and statistics.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from tqdm.auto import tqdm

from common.provenance import file_digest, provenance

from .config import ImagingConfig
from .errors import ImagingError
from .h5schema import ImageFileError, read_image_file, write_image_file
from .reader import EventChunk, iter_input_chunks, open_inputs
from .reweight import ReweightResult, reweight_to_reference
from .selection import SelectedMuons, select_muons
from .statistics import SampleStatistics, summarise
from .towers import TowerSet, extract_towers, render_towers

log = logging.getLogger(__name__)


@dataclass
class ImageBuild:
    """Everything one imaging run produced, before it is written."""

    images: np.ndarray  # (N, npix, npix) float32, GeV
    muon_pt: np.ndarray  # (N,) float32, GeV
    muon_eta: np.ndarray  # (N,) float32
    muon_phi: np.ndarray  # (N,) float32, rad
    muon_charge: np.ndarray  # (N,) float32
    weight: np.ndarray  # (N,) float64
    statistics: SampleStatistics
    entries: dict[Path, int]  # events per input file
    reweight: ReweightResult | None = None
    reference: Path | None = None
    notes: list[str] = field(default_factory=list)
    towers: TowerSet | None = None  # the towers each image is rendered from (render_towers(towers) == images)


def _load_reference(reference: Path, sample: str) -> tuple[np.ndarray, np.ndarray]:
    """Muon pT (GeV) and weights of the reweighting reference images.h5."""
    try:
        ref = read_image_file(reference)
    except ImageFileError as exc:
        raise ImagingError(f"reweighting reference: {exc}") from exc
    if ref.sample == sample:
        log.warning("reweighting reference %s is itself sample '%s'", reference, sample)
    return ref.muon_pt.astype(np.float64), ref.weight


def chunk_towers(chunk: EventChunk, mu: SelectedMuons, config: ImagingConfig) -> TowerSet:
    """The towers of the selected muons of one chunk that reach their images under `config.tower_shape`."""
    return extract_towers(chunk.tower_offsets, chunk.tower_eta, chunk.tower_phi, chunk.tower_et, chunk.tower_eem,
                          chunk.tower_ehad, chunk.tower_edges, mu.event, mu.eta, mu.phi,
                          tower_shape=config.tower_shape, npix=config.npix, radius=config.radius)


def render_images(chunk: EventChunk, mu: SelectedMuons, config: ImagingConfig) -> tuple[np.ndarray, TowerSet]:
    """Images of the selected muons of one chunk and the towers they are rendered from (`render_towers`)."""
    towers = chunk_towers(chunk, mu, config)
    images = render_towers(towers, tower_shape=config.tower_shape, npix=config.npix, radius=config.radius,
                           quantity=config.quantity)
    return images, towers


def build_images(
    paths: Sequence[str | Path],
    config: ImagingConfig,
    *,
    sample: str,
    reference: str | Path | None = None,
    progress: bool = False,
) -> ImageBuild:
    """Read Delphes files, select muons, make images and per-image weights.

    With `reference` (a background images.h5) the weights are reweighted so the muon-pT
    histogram matches the reference's; without it the weight is the event weight
    normalised to mean 1 (exactly 1 for unweighted generation).
    """
    if not paths:
        raise ImagingError(f"no input Delphes files given for sample '{sample}' (--in); "
                           f"the simulation stage must produce {sample}/delphes/chunk*.root first")
    paths = [Path(p) for p in paths]
    inputs = open_inputs(paths, config.quantity, config.use_event_weight, config.tower_shape)  # fail fast
    entries = {i.path: i.n_entries for i in inputs}
    total = sum(entries.values())
    if total == 0:
        raise ImagingError(f"no events in {len(paths)} input file(s) ({', '.join(map(str, paths))}); "
                           "the simulation produced empty trees - rerun it with more events")
    log.info("%s: %d events in %d file(s)", sample, total, len(paths))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("images", "pt", "eta", "phi", "charge", "w")}  # per chunk
    tower_parts: list[TowerSet] = []
    events_selected = muons_selected = nonzero = 0
    bar = tqdm(total=total, unit="ev", desc=f"images {sample}", disable=not progress, mininterval=2.0)
    for chunk in iter_input_chunks(inputs, config.quantity, config.read_chunk_entries, config.tower_shape):
        mu = select_muons(
            chunk.muon_offsets, chunk.muon_pt, chunk.muon_eta, chunk.muon_phi, chunk.muon_charge,
            pt_min=config.muon_pt_min, pt_max=config.muon_pt_max,
            abs_eta_max=config.muon_abs_eta_max, mode=config.muons_per_event,
        )
        images, towers = render_images(chunk, mu, config)
        tower_parts.append(towers)
        events_selected += int(np.count_nonzero(np.diff(mu.event, prepend=-1))) if len(mu) else 0
        muons_selected += mu.n_candidates
        nonzero += int(np.count_nonzero(images))
        new = {"images": images, "pt": mu.pt, "eta": mu.eta, "phi": mu.phi, "charge": mu.charge,
               "w": chunk.event_weight[mu.event]}
        for key, values in new.items():
            parts[key].append(values)
        bar.update(chunk.n_events)
    bar.close()
    images = np.concatenate(parts["images"]) if parts["images"] else np.zeros((0, config.npix, config.npix), np.float32)
    pt, eta, phi, charge, event_weight = (np.concatenate(parts[k]) for k in ("pt", "eta", "phi", "charge", "w"))
    if len(pt) == 0:
        raise ImagingError(
            f"no muon passed the selection (pT in [{config.muon_pt_min}, {config.muon_pt_max}] GeV, "
            f"|eta| <= {config.muon_abs_eta_max}) in {total} events of {', '.join(map(str, paths))}; "
            "check that the Delphes card keeps muons and that the generator filter matches these cuts"
        )
    weight = _normalised_event_weight(event_weight) if config.use_event_weight else np.ones(len(pt))
    result_reweight = None
    ref_path = Path(reference) if reference is not None else None
    if ref_path is not None:
        ref_pt, ref_w = _load_reference(ref_path, sample)
        result_reweight = reweight_to_reference(pt.astype(np.float64), weight, ref_pt, ref_w, config.pt_edges)
        weight = result_reweight.weight
        log.info("%s: reweighted to the muon pT of %s (%d bins)", sample, ref_path, config.reweight_pt_bins)
    elif sample == "signal":
        log.warning("signal is not reweighted to the background muon pT (no reference given): weights are "
                    "the event weights; configure the background sample to reweight")
    stats = summarise(sample, len(paths), total, events_selected, muons_selected, nonzero, config.npix, pt, weight)
    return ImageBuild(images, pt, eta, phi, charge, weight, stats, entries, result_reweight, ref_path,
                      towers=TowerSet.concatenate(tower_parts))


def _normalised_event_weight(w: np.ndarray) -> np.ndarray:
    """Event weights scaled to mean 1 (a constant weight becomes exactly 1)."""
    w = np.asarray(w, dtype=np.float64)
    if not np.isfinite(w).all():
        raise ImagingError("Event.Weight holds NaN or inf; check the generator's event weights")
    mean = w.mean()
    if not mean > 0:
        raise ImagingError(f"Event.Weight of the selected events sums to {w.sum():.6g} <= 0; "
                           "set use_event_weight: false to ignore generator weights")
    return np.ones_like(w) if np.all(w == w[0]) else w / mean


def input_digest(path: str | Path, block_bytes: int = 1 << 22) -> str:
    """xxh3-128 (hex) of a file's bytes: identifies big Delphes inputs at ~10x sha256's speed.

    sha256 of the inputs cost ~5x more CPU than reading them; the (small) reweighting
    reference keeps the pipeline-wide sha256 `file_digest`.
    """
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(block_bytes), b""):
            h.update(block)
    return h.hexdigest()


def write_images(
    path: str | Path,
    build: ImageBuild,
    config: ImagingConfig,
    *,
    sample: str,
    seed: int | None = None,
) -> Path:
    """Write `build` to `path` (images.h5 contract) with provenance and statistics attrs."""
    inputs = [{"path": str(p), "bytes": p.stat().st_size, "xxh3_128": input_digest(p), "events": n}
              for p, n in build.entries.items()]
    reference: dict[str, Any] | None = None
    if build.reference is not None:
        reference = {"path": str(build.reference), "sha256_16": file_digest(build.reference),
                     "pt_edges_gev": config.pt_edges.tolist(),
                     "bins_without_sample": build.reweight.bins_without_sample,
                     "images_without_reference": build.reweight.images_without_reference}
    stats = build.statistics.as_dict()
    record = provenance(
        config.as_dict(),
        stage="imaging",
        sample=sample,
        seeds={"seed": seed, "note": "imaging draws no random numbers; the seed is the run's master seed"},
        inputs=inputs,
        reweight_reference=reference,
        statistics=stats,
    )
    return write_image_file(
        path, build.images, build.muon_pt, build.weight,
        muon_eta=build.muon_eta, muon_phi=build.muon_phi, muon_charge=build.muon_charge,
        sample=sample, radius=config.radius, kind="real", provenance=record, towers=build.towers,
        extra_attrs={"imaging_config": config.as_dict(), "statistics": stats, "quantity": config.quantity,
                     "muons_per_event": config.muons_per_event, "tower_shape": config.tower_shape,
                     "reweighted_to": str(build.reference) if build.reference is not None else ""},
    )

"""Columnar reading of Delphes ROOT trees: only the branches imaging needs, in chunks.

Accepts real Delphes output (TClonesArray split branches such as `Tower/Tower.ET`, counter
`Tower_size`, `Event/Event.Weight` one entry per event) and the flat TTrees or RNTuples
that uproot writes with the same branch names (`Tower.ET` etc.; `Event.Weight` flat or
jagged). Each chunk comes back as whole arrays: no per-event Python loop.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from .errors import ImagingError

log = logging.getLogger(__name__)


def _one_line(exc: BaseException) -> str:
    """An exception as `Type: message` on one line (uproot's messages span several)."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"

TREE_NAME = "Delphes"
TOWER_POSITION = ("Tower.Eta", "Tower.Phi")
MUON_BRANCHES = ("Muon.PT", "Muon.Eta", "Muon.Phi", "Muon.Charge")
EVENT_WEIGHT = "Event.Weight"
TOWER_EDGES = "Tower.Edges[4]"  # (eta_min, eta_max, phi_min, phi_max) of each tower's cell
TOWER_VALUES = ("Tower.ET", "Tower.Eem", "Tower.Ehad")  # tower ET, its ECal and HCal energy (GeV)


@dataclass
class EventChunk:
    """One block of consecutive events of one file, as flat numpy arrays.

    Towers are flat over the chunk with `tower_offsets` (n_events + 1) marking each
    event's slice; muons likewise with `muon_offsets`.
    """

    path: Path
    entry_start: int
    n_events: int
    tower_offsets: np.ndarray  # (n_events + 1,) int64
    tower_eta: np.ndarray  # (n_towers,) float32
    tower_phi: np.ndarray  # (n_towers,) float32, rad
    tower_et: np.ndarray  # (n_towers,) float32, GeV: Tower.ET
    tower_eem: np.ndarray  # (n_towers,) float32, GeV: Tower.Eem (ECal energy)
    tower_ehad: np.ndarray  # (n_towers,) float32, GeV: Tower.Ehad (HCal energy)
    tower_edges: np.ndarray  # (n_towers, 4) float32 cell edges (eta_min, eta_max, phi_min, phi_max)
    muon_offsets: np.ndarray  # (n_events + 1,) int64
    muon_pt: np.ndarray  # (n_muons,) float32, GeV
    muon_eta: np.ndarray  # (n_muons,) float32
    muon_phi: np.ndarray  # (n_muons,) float32, rad
    muon_charge: np.ndarray  # (n_muons,) float32
    event_weight: np.ndarray  # (n_events,) float64


def branches_needed(quantity: str, use_event_weight: bool, tower_shape: str = "point") -> tuple[str, ...]:
    """The Delphes branches read (nothing else is read).

    Every tower is stored with its ECal and HCal ET and its cell whatever the image quantity, so
    the tower branches do not depend on `quantity`; `Tower.Edges[4]` may be missing for tower_shape
    point (`optional_branches`). The arguments stay for the callers that pass them.
    """
    weight = (EVENT_WEIGHT,) if use_event_weight else ()
    return (*TOWER_POSITION, TOWER_EDGES, *TOWER_VALUES, *MUON_BRANCHES, *weight)


def optional_branches(tower_shape: str) -> tuple[str, ...]:
    """Branches a file may lack: without Tower.Edges (uproot-written test files) point towers get
    zero-size cells at their own position; cell and mixed images need the cells."""
    return (TOWER_EDGES,) if tower_shape == "point" else ()


def open_delphes_tree(path: str | Path) -> Any:
    """Open `path` and return its `Delphes` tree; clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ImagingError(f"{path}: no such file; run the simulation stage first (snakemake simulate)")
    if path.stat().st_size == 0:
        raise ImagingError(f"{path}: empty file (0 bytes); the job that wrote it probably died - delete it and rerun")
    try:
        handle = uproot.open(path, handler=uproot.source.file.MemmapSource)  # local files: no I/O thread
    except Exception as exc:  # uproot raises ValueError/OSError/... depending on what it finds
        raise ImagingError(
            f"{path}: not a readable ROOT file ({_one_line(exc)}); "
            "expected Delphes output with a 'Delphes' tree (a file cut short by a crash looks like this too: "
            "rerun the job that wrote it)"
        ) from exc
    names = [k.split(";")[0] for k in handle.keys(recursive=False)]
    if TREE_NAME not in names:
        raise ImagingError(
            f"{path}: no '{TREE_NAME}' tree (found {names or 'nothing'}); "
            "is this Delphes output? A file cut short by a crash can also look like this - rerun its job"
        )
    try:
        return handle[TREE_NAME]
    except Exception as exc:
        raise ImagingError(
            f"{path}: cannot read the '{TREE_NAME}' tree ({_one_line(exc)}); the file may be truncated - "
            "rerun the job that wrote it"
        ) from exc


def resolve_branches(tree: Any, path: Path, names: Sequence[str], optional: Sequence[str] = ()) -> dict[str, Any]:
    """Map each Delphes branch name to the tree's branch/field object, or name what is missing.

    Names in `optional` may be missing (they are then left out of the result).
    """
    found: dict[str, Any] = {}
    missing = []
    for name in names:
        try:
            found[name] = tree[name]
        except Exception:  # uproot.KeyInFileError for TTrees and RNTuples alike
            if name not in optional:
                missing.append(name)
    if missing:
        collections = sorted({m.split(".")[0] for m in missing})
        raise ImagingError(
            f"{path}: missing branch(es) {missing} in tree '{TREE_NAME}'; the Delphes card must write "
            f"the {collections} branch(es) (Tower needs the Calorimeter module and its branch in "
            "TreeWriter; see the simulation cards)"
        )
    return found


def _jagged_flat(array: ak.Array, name: str, path: Path, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, flat values) of a one-level jagged array, without copying where possible.

    uproot hands back a ListOffsetArray over a flat numpy buffer: its offsets and content
    are used as they are (zero-copy); any other layout goes through awkward's generic path.
    """
    if array.ndim != 2:
        raise ImagingError(f"{path}: branch '{name}' has type {array.type}, expected a list per event")
    layout = array.layout
    if isinstance(layout, ak.contents.ListOffsetArray) and isinstance(layout.content, ak.contents.NumpyArray):
        offsets = np.asarray(layout.offsets.data, dtype=np.int64)
        flat = np.asarray(layout.content.data)[offsets[0]:offsets[-1]]
        if offsets[0] != 0:
            offsets = offsets - offsets[0]
        return offsets, flat.astype(dtype, copy=False)
    counts = ak.to_numpy(ak.num(array, axis=1)).astype(np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = ak.to_numpy(ak.flatten(array, axis=1)).astype(dtype, copy=False)
    return offsets, flat


def _jagged_rows(array: ak.Array, name: str, path: Path, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, (n, width) values) of a per-event list of fixed-size arrays, e.g. Tower.Edges[4]."""
    if array.ndim != 3:
        raise ImagingError(f"{path}: branch '{name}' has type {array.type}, expected a list of {width} numbers "
                           "per tower")
    layout = array.layout
    if (isinstance(layout, ak.contents.ListOffsetArray) and isinstance(layout.content, ak.contents.RegularArray)
            and layout.content.size == width and isinstance(layout.content.content, ak.contents.NumpyArray)):
        offsets = np.asarray(layout.offsets.data, dtype=np.int64)  # zero-copy, as uproot returns it
        flat = np.asarray(layout.content.content.data)[offsets[0] * width:offsets[-1] * width]
        return offsets - offsets[0], flat.reshape(-1, width).astype(np.float32, copy=False)
    counts = ak.to_numpy(ak.num(array, axis=1)).astype(np.int64)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    rows = ak.to_numpy(ak.flatten(array, axis=1)).astype(np.float32, copy=False)
    if rows.shape[1:] != (width,):
        raise ImagingError(f"{path}: branch '{name}' holds {rows.shape[1:]} numbers per tower, expected {width}")
    return offsets, rows


def _event_weight(array: ak.Array, path: Path) -> np.ndarray:
    """Per-event weight from `Event.Weight`: flat, or Delphes' one-entry list per event."""
    if array.ndim == 1:
        return ak.to_numpy(array).astype(np.float64)
    if array.ndim == 2:
        return ak.to_numpy(ak.fill_none(ak.firsts(array, axis=1), 1.0)).astype(np.float64)
    raise ImagingError(f"{path}: branch '{EVENT_WEIGHT}' has type {array.type}, expected one number per event")


def read_chunk(
    branches: dict[str, Any], path: Path, start: int, stop: int, quantity: str, tower_shape: str = "point"
) -> EventChunk:
    """Read events [start, stop) of one file into an `EventChunk`.

    `branches` must be those of `branches_needed(quantity, ..., tower_shape)` (`Tower.Edges[4]` may
    be absent: zero-size cells at the towers' positions; `quantity` and `tower_shape` no longer change
    what is read and stay for the callers).
    """
    arrays = {}
    for name, branch in branches.items():
        try:
            arrays[name] = branch.array(entry_start=start, entry_stop=stop, library="ak")
        except Exception as exc:
            raise ImagingError(
                f"{path}: cannot read branch '{name}' entries {start}-{stop} ({_one_line(exc)}); "
                "the file may be truncated or corrupt - rerun the job that wrote it"
            ) from exc
    tower_offsets, tower_eta = _jagged_flat(arrays["Tower.Eta"], "Tower.Eta", path, np.float32)
    columns = {}
    for name in ("Tower.Phi", *TOWER_VALUES):
        offsets, columns[name] = _jagged_flat(arrays[name], name, path, np.float32)
        if not np.array_equal(offsets, tower_offsets):
            raise ImagingError(f"{path}: branch '{name}' has a different tower count than 'Tower.Eta'")
    muon = {}
    muon_offsets = None
    for name in MUON_BRANCHES:
        offsets, muon[name] = _jagged_flat(arrays[name], name, path, np.float32)
        if muon_offsets is None:
            muon_offsets = offsets
        elif not np.array_equal(offsets, muon_offsets):
            raise ImagingError(f"{path}: branch '{name}' has a different muon count than 'Muon.PT'")
    n_events = stop - start
    if EVENT_WEIGHT in arrays:
        weight = _event_weight(arrays[EVENT_WEIGHT], path)
    else:
        weight = np.ones(n_events, dtype=np.float64)
    if TOWER_EDGES in arrays:
        offsets, edges = _jagged_rows(arrays[TOWER_EDGES], TOWER_EDGES, path, 4)
        if not np.array_equal(offsets, tower_offsets):
            raise ImagingError(f"{path}: branch '{TOWER_EDGES}' has a different tower count than 'Tower.Eta'")
    else:  # no cells in the file (allowed for tower_shape point only): zero-size cells at the towers
        edges = np.column_stack([tower_eta, tower_eta, columns["Tower.Phi"], columns["Tower.Phi"]])
    return EventChunk(
        path=path, entry_start=start, n_events=n_events,
        tower_offsets=tower_offsets, tower_eta=tower_eta, tower_phi=columns["Tower.Phi"],
        tower_et=columns["Tower.ET"], tower_eem=columns["Tower.Eem"], tower_ehad=columns["Tower.Ehad"],
        tower_edges=edges,
        muon_offsets=muon_offsets, muon_pt=muon["Muon.PT"], muon_eta=muon["Muon.Eta"],
        muon_phi=muon["Muon.Phi"], muon_charge=muon["Muon.Charge"], event_weight=weight,
    )


@dataclass
class DelphesInput:
    """One opened, checked Delphes file: its tree's needed branches and its number of events."""

    path: Path
    branches: dict[str, Any]
    n_entries: int


def open_inputs(
    paths: Sequence[str | Path], quantity: str, use_event_weight: bool, tower_shape: str = "point"
) -> list[DelphesInput]:
    """Open and check every input up front (tree, branches), once: a bad file fails before any work.

    Opening costs ~30 ms per Delphes file (uproot deserialises the metadata of all ~70
    branches), as much as reading ~1,000 events, so each file is opened only here.
    """
    names = branches_needed(quantity, use_event_weight, tower_shape)
    optional = optional_branches(tower_shape)
    inputs = []
    for p in map(Path, paths):
        tree = open_delphes_tree(p)
        inputs.append(DelphesInput(p, resolve_branches(tree, p, names, optional), int(tree.num_entries)))
    return inputs


def count_entries(paths: Sequence[str | Path], quantity: str, use_event_weight: bool) -> dict[Path, int]:
    """Number of events of every input (opened and checked like `open_inputs`)."""
    return {i.path: i.n_entries for i in open_inputs(paths, quantity, use_event_weight)}


def iter_input_chunks(inputs: Sequence[DelphesInput], quantity: str, chunk_entries: int,
                      tower_shape: str = "point") -> Iterator[EventChunk]:
    """Yield `EventChunk`s of at most `chunk_entries` events from already opened inputs, file after file."""
    for item in inputs:
        if item.n_entries == 0:
            log.warning("%s: tree '%s' has no events", item.path, TREE_NAME)
        for start in range(0, item.n_entries, chunk_entries):
            yield read_chunk(item.branches, item.path, start, min(item.n_entries, start + chunk_entries), quantity,
                             tower_shape)


def iter_chunks(
    paths: Sequence[str | Path], quantity: str, use_event_weight: bool, chunk_entries: int
) -> Iterator[EventChunk]:
    """Yield `EventChunk`s of at most `chunk_entries` events, file after file (opens the files)."""
    for p in map(Path, paths):  # one file open at a time
        yield from iter_input_chunks(open_inputs([p], quantity, use_event_weight), quantity, chunk_entries)

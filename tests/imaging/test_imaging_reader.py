"""The columnar reader: jagged branches become (offsets, flat values) exactly, whatever the layout."""
from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from imaging import ImagingError
from imaging.reader import _jagged_flat, _jagged_rows, iter_chunks, iter_input_chunks, open_inputs
from imaging.synthetic import random_delphes_events

VALUES = [[1.0, 2.0], [], [3.0], [4.0, 5.0, 6.0]]


def _expected(rows):
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    flat = np.array([v for r in rows for v in r], dtype=np.float32)
    return offsets, flat


@pytest.mark.parametrize("layout", ["offsets", "sliced", "list_array", "masked"])
def test_jagged_flat_matches_the_rows(layout):
    array = ak.Array(VALUES)
    rows = VALUES
    if layout == "sliced":  # ListOffsetArray whose offsets do not start at 0 (a window of a bigger read)
        array, rows = array[1:], VALUES[1:]
    elif layout == "list_array":  # starts/stops instead of offsets: awkward's generic path
        array = array[[3, 0, 2]]
        rows = [VALUES[3], VALUES[0], VALUES[2]]
    elif layout == "masked":
        array = ak.Array([[1.0, 2.0], [3.0]])[ak.Array([True, True])]
        rows = [[1.0, 2.0], [3.0]]
    offsets, flat = _jagged_flat(array, "Tower.ET", Path("f.root"), np.float32)
    want_offsets, want_flat = _expected(rows)
    np.testing.assert_array_equal(offsets, want_offsets)
    np.testing.assert_array_equal(flat, want_flat)
    assert offsets.dtype == np.int64 and flat.dtype == np.float32


def test_jagged_flat_rejects_a_flat_branch():
    with pytest.raises(ImagingError, match="Tower.ET.*expected a list per event"):
        _jagged_flat(ak.Array([1.0, 2.0]), "Tower.ET", Path("f.root"), np.float32)


def test_opened_inputs_read_like_files(delphes_file):
    """Opening once and iterating the opened inputs gives the same chunks as iterating the paths."""
    path = delphes_file(*random_delphes_events(40, towers_per_event=50, seed=5))
    inputs = open_inputs([path, path], "et", True)
    assert [i.n_entries for i in inputs] == [inputs[0].n_entries] * 2 and inputs[0].n_entries > 0
    a = list(iter_input_chunks(inputs, "et", 7))
    b = list(iter_chunks([path, path], "et", True, 7))
    assert len(a) == len(b) > 2
    for x, y in zip(a, b, strict=True):
        assert (x.entry_start, x.n_events) == (y.entry_start, y.n_events)
        for name in ("tower_offsets", "tower_eta", "tower_phi", "tower_et", "tower_eem", "tower_ehad",
                     "tower_edges", "muon_offsets", "muon_pt",
                     "event_weight"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))


@pytest.mark.parametrize("window", [slice(None), slice(1, None)])
def test_fixed_size_rows_per_tower(window):
    """Tower.Edges[4]-like branches: (offsets, (n, 4) rows), zero-copy path and sliced windows alike."""
    rows = [[[0, 1, 2, 3], [4, 5, 6, 7]], [], [[8, 9, 10, 11]]]
    array = ak.to_regular(ak.values_astype(ak.Array(rows), np.float32), axis=2)[window]
    offsets, flat = _jagged_rows(array, "Tower.Edges[4]", Path("f.root"), 4)
    want = [r for event in rows[window] for r in event]
    np.testing.assert_array_equal(flat, np.array(want, np.float32).reshape(-1, 4))
    np.testing.assert_array_equal(offsets, np.concatenate([[0], np.cumsum([len(e) for e in rows[window]])]))
    with pytest.raises(ImagingError, match="expected a list of 4 numbers"):
        _jagged_rows(ak.Array([[1.0], []]), "Tower.Edges[4]", Path("f.root"), 4)

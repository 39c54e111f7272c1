"""Tests for reading a transaction file in chunks (``resnet_stability.data.stream``).

What must hold: the scan finds exactly the windows of ``time_windows`` and the
standardiser of ``fit_standardizer`` (and, with ``max_rows``, the rows ``subsample_rows``
keeps) without holding the file; the running standardiser equals ``fit_standardizer``;
the shuffle buffer cuts full batches in an order independent of the chunking, and one
epoch's batches are the documented order written out on row positions; prefetching
keeps the order, raises the reader's errors and stops when left.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import TX_ROWS, reference_batches
from resnet_stability.data import fit_standardizer, subsample_rows
from resnet_stability.data import stream
from resnet_stability.data.timesplit import time_windows

CHUNK = 97  # much smaller than the file, and not a divisor of anything in it


def scan_file(path, train_span=365.0, test_span=182.0, **kwargs):
    return stream.scan_bitcoin(path, chunk_rows=CHUNK, train_span=train_span, test_span=test_span, **kwargs)


def assert_same_split(scan_split, memory_split):
    assert scan_split.train_start == memory_split.train_start and scan_split.train_end == memory_split.train_end
    assert len(scan_split.train_idx) == memory_split.train_idx.size
    assert [(w.index, w.start, w.end, w.n) for w in scan_split.windows] == [
        (w.index, w.start, w.end, w.n) for w in memory_split.windows
    ]
    assert scan_split.describe(counts=True) == memory_split.describe(counts=True)


# ------------------------------------------------------------------------------ scan


@pytest.mark.parametrize("spans", [None, (200.5, 91.25)], ids=["default-spans", "fractional-spans"])
def test_scan_finds_the_windows_and_standardizer_of_the_in_memory_dataset(tx_file, spans):
    path, dataset = tx_file
    scan = scan_file(path, *(spans or (365.0, 182.0)))
    memory = time_windows(dataset.time, *(spans or (365.0, 182.0)), unit="days")
    assert len(memory.windows) >= 5
    assert_same_split(scan.time_split, memory)
    mean, scale = fit_standardizer(dataset.X[memory.train_idx], dataset.numeric_mask)
    np.testing.assert_allclose(scan.mean, mean, atol=1e-9, rtol=0)
    np.testing.assert_allclose(scan.scale, scale, atol=1e-9, rtol=0)
    assert scan.mean[3:].tolist() == [0.0] * 4 and scan.scale[3:].tolist() == [1.0] * 4  # cyclic: untouched
    assert scan.synthetic and scan.n_rows == TX_ROWS


def test_scan_with_max_rows_keeps_the_rows_subsample_rows_keeps(tx_file):
    path, dataset = tx_file
    scan = scan_file(path, max_rows=400, seed=5)
    small = subsample_rows(dataset, 400, 5)
    memory = time_windows(small.time, 365.0, 182.0, unit="days")
    assert scan.n_rows == 400
    assert_same_split(scan.time_split, memory)
    mean, scale = fit_standardizer(small.X[memory.train_idx], small.numeric_mask)
    np.testing.assert_allclose(scan.mean, mean, atol=1e-9, rtol=0)
    np.testing.assert_allclose(scan.scale, scale, atol=1e-9, rtol=0)


def test_scan_is_cached_until_cleared_and_refuses_a_missing_file(tx_file, tmp_path):
    path, _ = tx_file
    assert scan_file(path) is scan_file(path)
    first = scan_file(path)
    stream.clear_scan_cache()
    assert scan_file(path) is not first
    with pytest.raises(FileNotFoundError, match="not found"):
        scan_file(tmp_path / "missing.parquet")
    with pytest.raises(ValueError, match="needs a transaction file"):
        scan_file(None)


# ------------------------------------------------------------------ standardiser, batches


def test_running_standardizer_is_stable_and_equals_fit_standardizer():
    rng = np.random.default_rng(1)
    X = np.column_stack([
        1e6 + rng.normal(size=5000),  # a large offset: sums of squares would lose it all
        rng.exponential(size=5000),
        np.full(5000, 3.25),  # constant: scale 1
        rng.normal(size=5000),  # not numeric: mean 0, scale 1
    ])
    mask = np.array([True, True, True, False])
    running = stream.RunningStandardizer(mask)
    for part in np.array_split(X, [1, 7, 1000, 1001, 3999]):
        running.update(part)
    mean, scale = running.result()
    expected_mean, expected_scale = fit_standardizer(X, mask)
    np.testing.assert_allclose(mean, expected_mean, atol=1e-9, rtol=0)
    np.testing.assert_allclose(scale, expected_scale, atol=1e-9, rtol=0)
    assert scale[2] == 1.0 and (mean[3], scale[3]) == (0.0, 1.0)


def test_buffer_shuffler_cuts_full_batches_in_an_order_independent_of_chunking():
    rows = np.arange(1000)

    def batches(pieces, buffer, batch=32):
        shuffler = stream.BufferShuffler(buffer, batch, np.random.default_rng(7))
        out = []
        for piece in np.array_split(rows, pieces):
            out += [x for x, _ in shuffler.add(piece, piece)]
        return out + [x for x, _ in shuffler.finish()]

    reference = batches(1, 100)
    assert [len(b) for b in reference[:-1]] == [32] * (len(reference) - 1) and 0 < len(reference[-1]) <= 32
    np.testing.assert_array_equal(np.sort(np.concatenate(reference)), rows)  # every row once
    for pieces in (3, 97, 1000):
        assert all(np.array_equal(a, b) for a, b in zip(batches(pieces, 100), reference, strict=True))
    assert not np.array_equal(np.concatenate(reference), rows)  # shuffled
    assert not np.array_equal(np.concatenate(batches(1, 500)), np.concatenate(reference))
    with pytest.raises(ValueError, match="shuffle_buffer must be >= batch_size"):
        stream.BufferShuffler(16, 32, np.random.default_rng(0))


def test_prefetch_keeps_the_order_raises_errors_and_stops_when_left():
    assert list(stream.prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("bad chunk")

    with pytest.raises(ValueError, match="bad chunk"):
        list(stream.prefetch(failing()))
    produced = []

    def endless():
        for k in range(10**9):
            produced.append(k)
            yield k

    items = stream.prefetch(endless(), depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # joins the thread: it must stop, not run on
    assert len(produced) <= 3 + 2 + 1


def test_train_batches_are_the_documented_order_of_the_training_rows(tx_file):
    """One epoch's batches, rows identified by their features, equal the documented
    buffer order written out on the training rows' positions in file order."""
    path, dataset = tx_file
    scan = scan_file(path)
    train_rows = time_windows(dataset.time, 365.0, 182.0).train_idx
    batches = list(stream.train_batches(path, scan, chunk_rows=CHUNK, batch_size=32, buffer_rows=100,
                                        rng=np.random.default_rng(11)))
    expected = reference_batches(train_rows.size, 32, 100, 11)
    assert [len(x) for x, _ in batches] == [len(rows) for rows in expected]
    for (x, y), positions in zip(batches, expected):
        assert x.dtype == np.float32 and y.dtype == np.int32
        np.testing.assert_array_equal(x, dataset.X[train_rows[positions]].astype(np.float32))
        np.testing.assert_array_equal(y, dataset.y[train_rows[positions]])


@pytest.mark.parametrize("max_rows", [None, 400], ids=["all-rows", "max-rows"])
def test_scan_keeps_the_first_test_window_s_first_rows_and_its_majority_rate(tx_file, max_rows):
    """The streamed Prop. 1 sample: the first 64 rows (file order) of the first test window,
    raw features; and that window's majority-class rate, counted from the in-memory data."""
    path, dataset = tx_file
    scan = scan_file(path, max_rows=max_rows, seed=5)
    data = dataset if max_rows is None else subsample_rows(dataset, max_rows, 5)
    first = np.sort(time_windows(data.time, 365.0, 182.0, unit="days").windows[0].idx)
    np.testing.assert_array_equal(scan.test_sample, data.X[first[:64]].astype(np.float32))
    assert len(scan.test_sample) == min(64, len(first))
    labels = data.y[first]
    assert scan.test_majority_rate == np.bincount(labels).max() / labels.size
    if max_rows is None:
        assert len(first) > 64 and len(set(labels)) > 1  # the cut and the count both matter here

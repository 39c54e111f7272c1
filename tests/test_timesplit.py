"""Tests for the time split's building blocks (``resnet_stability.data.timesplit``):
window edges and bins, span defaults and checks. (``time_windows`` on datasets is
tested in ``test_bitcoin_data.py``.)"""

from __future__ import annotations

import numpy as np
import pytest

from resnet_stability.data.timesplit import (
    DEFAULT_WINDOWS,
    check_span,
    format_time,
    resolve_spans,
    time_bins,
    time_windows,
    window_edges,
)


def test_window_bins_equal_time_windows_membership():
    rng = np.random.default_rng(0)
    for trial in range(20):
        t = rng.uniform(-3.7, 40.0, size=300)
        train_span, test_span = rng.uniform(1, 15), rng.choice([0.25, 1.0, rng.uniform(0.3, 9)])
        if trial % 2:  # many rows exactly on the boundaries
            t, train_span, test_span = np.round(t * 4) / 4, np.round(train_span * 4) / 4, [0.25, 1.0, 2.5][trial % 3]
            assert np.isin(t, window_edges(t.min(), t.max(), train_span, test_span)).sum() > 10
        memory = time_windows(t, train_span, test_span)
        edges = window_edges(t.min(), t.max(), train_span, test_span)
        bins = time_bins(t, edges)
        np.testing.assert_array_equal(np.flatnonzero(bins == 0), memory.train_idx)
        for window in memory.windows:
            np.testing.assert_array_equal(np.flatnonzero(bins == window.index), window.idx)
            assert (edges[window.index], edges[window.index + 1]) == (window.start, window.end)
        listed = {w.index for w in memory.windows}
        assert all(np.sum(bins == k) == 0 for k in range(1, len(edges) - 1) if k not in listed)
        assert (bins >= -1).all() and (bins < len(edges) - 1).all()


def test_window_edges_and_bins_by_hand():
    # start floor(0.3) = 0; train [0, 3); windows of 2 while their start <= 10.2: 3, 5, 7, 9
    edges = window_edges(0.3, 10.2, 3, 2)
    assert edges.tolist() == [0.0, 3.0, 5.0, 7.0, 9.0, 11.0]
    assert window_edges(0.3, 10.2, 3, 2, start=-1.5).tolist() == [-1.5, 1.5, 3.5, 5.5, 7.5, 9.5, 11.5]
    t = np.array([-0.5, 0.0, 2.999, 3.0, 4.5, 5.0, 10.2, 11.0])
    assert time_bins(t, edges).tolist() == [-1, 0, 0, 1, 1, 2, 4, 5]
    with pytest.raises(ValueError, match="NaN or infinite"):
        window_edges(0.0, float("inf"), 3, 2)
    with pytest.raises(ValueError, match="test_span must be a positive finite number"):
        window_edges(0.0, 1.0, 3, -2)


def test_check_span_format_time_and_resolve_spans():
    assert check_span("x", 3) == 3.0 and isinstance(check_span("x", 3), float)
    for bad in (True, "1", None):
        with pytest.raises(ValueError, match="x must be a positive number"):
            check_span("x", bad)
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="x must be a positive finite number"):
            check_span("x", bad)
    assert [format_time(v) for v in (365.0, 91.25, 1e-7)] == ["365", "91.25", "1e-07"]
    assert resolve_spans("bitcoin") == DEFAULT_WINDOWS["bitcoin"] == (365.0, 182.0)
    assert resolve_spans("elliptic", 10) == (10, 5.0)
    assert resolve_spans("bitcoin", None, 7) == (365.0, 7)
    assert resolve_spans("wine", 1, 2) == (1, 2)  # both given: no default needed
    with pytest.raises(ValueError, match="no default windows for dataset 'wine'"):
        resolve_spans("wine", 1)

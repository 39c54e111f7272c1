"""Tests for stability against accuracy (``resnet_stability.correlation``): Spearman's ρ
and its bootstrap interval against ranks counted by hand, and the correlation tables
per block and overall, under noise and on later time windows, from hand-made tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import hand_transfer_tables, stability_hand_table

from resnet_stability.correlation import (
    CORRELATION_COLUMNS,
    average_ranks,
    bootstrap_spearman,
    noise_loss_correlations,
    spearman,
    stability_correlations,
    window_correlations,
)


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(average_ranks([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
    np.testing.assert_array_equal(average_ranks([np.inf, 1.0, 5.0]), [3, 1, 2])
    # NaN: rank NaN, left out of the others' ranks; ties among ±inf averaged
    np.testing.assert_array_equal(average_ranks([np.nan, 2.0, np.inf, -np.inf, np.inf]), [np.nan, 2, 3.5, 1, 3.5])


def _tied_values(shape, seed):
    """Integers in -3..3 (many ties) with +inf, -inf, NaN and -0.0 mixed in; one row all
    NaN and one all +inf where there are several rows."""
    rng = np.random.default_rng(seed)
    values = rng.integers(-3, 4, size=shape).astype(np.float64)
    u = rng.random(shape)
    values[u < 0.1] = np.inf
    values[(u >= 0.1) & (u < 0.2)] = -np.inf
    values[(u >= 0.2) & (u < 0.3)] = np.nan
    values[(u >= 0.3) & (u < 0.35)] = -0.0
    rows = values.reshape(-1, shape[-1])
    if len(rows) > 2:
        rows[0], rows[1] = np.nan, np.inf
    return values


TIED_SHAPES = [(1,), (2,), (40,), (25, 17), (6, 300), (3, 4, 9)]


@pytest.mark.parametrize("shape", TIED_SHAPES)
def test_average_ranks_match_pandas_on_ties_infinities_and_nan(shape):
    values = _tied_values(shape, seed=sum(shape))
    rows = values.reshape(-1, shape[-1])
    expected = np.stack([pd.Series(row).rank(method="average").to_numpy() for row in rows]).reshape(shape)
    ranks = average_ranks(values)
    assert ranks.dtype == np.float64 and ranks.shape == shape
    np.testing.assert_array_equal(ranks, expected)  # bit for bit, NaN where expected is NaN
    np.testing.assert_array_equal(average_ranks(values[..., ::-1]), expected[..., ::-1])  # a strided view


@pytest.mark.parametrize("shape", TIED_SHAPES)
def test_average_ranks_match_scipy_rankdata(shape):
    pytest.importorskip("scipy", minversion="1.10")  # rankdata keeps NaN as NaN with "omit"
    from scipy import stats

    values = _tied_values(shape, seed=sum(shape) + 1)
    np.testing.assert_array_equal(average_ranks(values), stats.rankdata(values, axis=-1, nan_policy="omit"))


def test_spearman_with_ties_against_a_hand_computation():
    x = [1.0, 2.0, 2.0, 3.0, 5.0]  # ranks 1, 2.5, 2.5, 4, 5
    y = [2.0, 1.0, 4.0, 4.0, 3.0]  # ranks 2, 1, 4.5, 4.5, 3
    # centred ranks: x (−2, −0.5, −0.5, 1, 2), y (−1, −2, 1.5, 1.5, 0)
    # Σ dx dy = 2 + 1 − 0.75 + 1.5 + 0 = 3.75; Σ dx² = 9.5; Σ dy² = 9.5
    assert spearman(x, y) == pytest.approx(3.75 / 9.5, abs=1e-12)
    assert spearman([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert spearman([1, 2, np.nan, 4, 5], [1, 2, 0, 3, 4]) == pytest.approx(1.0)  # NaN pair dropped
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))  # constant column
    assert math.isnan(spearman([1, 2], [1, 2]))  # too few pairs
    with pytest.raises(ValueError, match="1-D of one length"):
        spearman([1, 2, 3], [1, 2])


def test_bootstrap_interval_contains_the_estimate_and_is_deterministic():
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    y = -x + rng.normal(scale=0.8, size=40)
    first = bootstrap_spearman(x, y, n_boot=2000)
    assert first == bootstrap_spearman(x, y, n_boot=2000)
    rho, low, high = first
    assert rho == pytest.approx(spearman(x, y))
    assert low <= rho <= high and -1 <= low < high <= 1
    assert high < 0  # a clear negative association
    assert bootstrap_spearman(x, y, n_boot=2000, seed=1) != first


def test_correlation_table_per_block_and_overall():
    table = stability_correlations(stability_hand_table(), n_boot=500)
    assert list(table.columns) == CORRELATION_COLUMNS
    overall = table[(table["block"] == "all") & (table["members"] == "all")].iloc[0]
    assert overall["n"] == 19 and overall["n_inf"] == 1  # the lm row (NaN) is left out
    assert overall["spearman"] == pytest.approx(-1.0)  # accuracy falls as the statistic grows
    kept = table[(table["block"] == "residual") & (table["members"] == "not_diverged")].iloc[0]
    assert kept["n"] == 9 and kept["n_inf"] == 0
    assert set(table["block"]) == {"residual", "shrinkage", "lm", "all"}
    assert table.loc[table["block"] == "lm", "n"].eq(0).all() and table.loc[table["block"] == "lm", "spearman"].isna().all()
    with pytest.raises(ValueError, match="euler_max"):
        stability_correlations(stability_hand_table().drop(columns="euler_max"))


def test_noise_loss_and_window_correlations_from_hand_tables():
    results, noise, windows = hand_transfer_tables()
    lost = noise_loss_correlations(results, noise[noise["level"] != 0.5], n_boot=200)
    assert list(lost.columns) == ["noise", "level"] + CORRELATION_COLUMNS and set(lost["level"]) == {1.0}
    kept = lost[(lost["block"] == "all") & (lost["members"] == "not_diverged")].iloc[0]
    assert kept["n"] == 18 and kept["spearman"] == pytest.approx(1.0)
    by_window = window_correlations(results, windows, n_boot=200)
    first = by_window[(by_window["window"] == 1) & (by_window["block"] == "all") & (by_window["members"] == "all")]
    assert first["spearman"].iloc[0] == pytest.approx(-1.0)
    assert by_window.loc[by_window["window"] == 2, "spearman"].isna().all()  # constant accuracy

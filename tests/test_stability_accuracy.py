"""Stability against accuracy (issue 14, part 3): the per-member Prop. 1 statistic,
Spearman's ρ with its bootstrap interval, the figure and the sweep's new outputs.

Expected values come from elsewhere: the spectra module's ``euler_statistic`` on the
standalone member (``CellResult.member_model``) and ranks counted by hand (the
statistic's own hand-made cases are in ``test_members_spectra.py``).
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pandas as pd
import pytest

from resnet_stability import engine
from resnet_stability.analysis.members_spectra import is_euler_block, members_euler_factors
from resnet_stability.analysis.spectra import euler_statistic, jacobian_spectra
from resnet_stability.correlation import (
    CORRELATION_COLUMNS,
    average_ranks,
    bootstrap_spearman,
    spearman,
    stability_correlations,
)
from resnet_stability.data import load_dataset, subsample_rows
from resnet_stability.experiment import ExperimentSpec
from resnet_stability.layers import BLOCKS
from resnet_stability.models import build_model
from resnet_stability.plots import plot_stability_vs_accuracy

STAT_ATOL = 1e-5  # float32 Jacobians: batched and plain matmuls round differently


@pytest.fixture(scope="module")
def wine95():
    return subsample_rows(load_dataset("wine"), 95, seed=0)


def make_spec(**overrides) -> ExperimentSpec:
    values = dict(dataset="wine", blocks=("residual",), h_values=(0.1, 0.6, 1.0), trials=2, depth=3, width=5,
                  epochs=2, batch_size=8, lr=1e-2, optimizer="adam", test_size=0.2, seed=0)
    values.update(overrides)
    return ExperimentSpec(**values)


def member_inputs(dataset, plan) -> np.ndarray:
    rows = engine.stability_rows(plan)
    return ((dataset.X[rows] - plan.mean) / plan.scale).astype(keras.config.floatx())


# ------------------------------------------------ the statistic equals the spectra module's


@pytest.mark.parametrize(
    "block, learn_h", [("residual", False), ("batchnorm", False), ("shrinkage", False), ("residual", True)]
)
def test_member_statistic_equals_spectra_of_the_standalone_member(wine95, block, learn_h):
    spec = make_spec(blocks=(block,), learn_h=learn_h)
    result = engine.train_cell(wine95, spec, block, shards=2)
    assert result.euler_max.shape == result.euler_stable_share.shape == (spec.members_per_cell,)
    for m in (0, 2, 5):  # h = 0.1, 0.6, 1.0
        plan = result.plans[m]
        table = euler_statistic(jacobian_spectra(result.member_model(m), member_inputs(wine95, plan)))
        assert len(table) == spec.depth
        assert result.euler_max[m] == pytest.approx(table["max_euler_factor"].max(), abs=STAT_ATOL), m
        assert result.euler_stable_share[m] == pytest.approx(table["stable"].mean(), abs=1e-12), m
        if not learn_h:
            assert (table["h"] == plan.h).all()
    assert len(set(np.round(result.euler_max, 6))) > 1


def test_sample_is_sixty_four_own_test_rows_chosen_by_the_member_seed(wine95):
    spec = make_spec()
    plans = engine.plan_members(wine95, spec, "residual")
    rows = engine.stability_rows(plans[0])
    assert len(rows) == min(engine.STABILITY_SAMPLE, len(plans[0].test_idx)) == 19  # 95 rows: 19 test rows
    assert set(rows) <= set(plans[0].test_idx)
    np.testing.assert_array_equal(rows, engine.stability_rows(plans[0]))
    big = plans[0].__class__(**{**plans[0].__dict__, "test_idx": np.arange(1000, 1200)})
    sample = engine.stability_rows(big)
    assert len(sample) == 64 and len(set(sample)) == 64 and (np.diff(sample) > 0).all()
    other = plans[2].__class__(**{**plans[2].__dict__, "test_idx": np.arange(1000, 1200)})
    assert not np.array_equal(sample, engine.stability_rows(other))  # another member, another sample


def test_only_forward_euler_blocks_have_the_statistic(wine95):
    assert {name for name, cls in BLOCKS.items() if is_euler_block(cls)} == {"residual", "batchnorm", "shrinkage"}
    spec = make_spec(blocks=("lm",), h_values=(0.5,), trials=1, epochs=1)
    result = engine.train_cell(wine95, spec, "lm")
    assert np.isnan(result.euler_max).all() and np.isnan(result.euler_stable_share).all()
    model = build_model(input_dim=3, n_classes=2, block="rk4", depth=1, members=2, seed=[1, 2])
    with pytest.raises(ValueError, match="not a forward-Euler block"):
        members_euler_factors(model, np.ones((2, 2, 3)))


# ------------------------------------------------- existing numbers and diverged members


def test_the_statistic_changes_no_existing_number_and_copes_with_divergence(wine95):
    spec = make_spec(h_values=(0.1, 1000.0), trials=2, depth=3, width=8, epochs=3, optimizer="sgd", lr=0.1)
    on = engine.train_cell(wine95, spec, "residual")
    off = engine.train_cell(wine95, spec, "residual", stability=False)
    assert on.diverged.any(), "the configuration no longer diverges"
    table_on = engine.cell_records(on, spec, "residual", "cpu")
    table_off = engine.cell_records(off, spec, "residual", "cpu")
    assert "euler_max" not in table_off.columns
    assert list(table_on.columns) == list(table_off.columns) + ["euler_max", "euler_stable_share", "stability_seconds"]
    numbers = [c for c in table_off.columns if c not in ("seconds", "cell_seconds")]
    pd.testing.assert_frame_equal(table_on[numbers], table_off[numbers], check_exact=True)
    # a diverged member is measured as the diverged network: non-finite there, so +inf
    diverged = on.diverged
    assert np.isinf(on.euler_max[diverged]).all() and (on.euler_max[diverged] > 0).all()
    assert np.isfinite(on.euler_max[~diverged]).all()
    # ... and the models still hold the last finite weights afterwards
    for variable in on.model.variables:
        assert np.isfinite(variable.numpy()).all()


def test_cell_hash_is_not_touched():
    """The statistic is not part of the spec: cell hashes stay what they were (the
    hard-coded Wine hash is checked in tests/test_learned_h.py)."""
    spec = make_spec()
    assert "stability" not in " ".join(spec.cell_config("residual"))


# -------------------------------------------------------------------- Spearman, bootstrap


def test_average_ranks_share_ties():
    np.testing.assert_array_equal(average_ranks([10, 20, 20, 30]), [1, 2.5, 2.5, 4])
    np.testing.assert_array_equal(average_ranks([np.inf, 1.0, 5.0]), [3, 1, 2])


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


def hand_table() -> pd.DataFrame:
    rows = []
    for block, offset in (("residual", 0.0), ("shrinkage", 0.05)):
        for k, h in enumerate((0.1, 0.5, 1.0)):
            for trial in range(3):
                stat = 1.0 + h + 0.1 * trial + offset
                rows.append(dict(dataset="wine", block=block, h=h, trial=trial, diverged=False, euler_max=stat,
                                 test_accuracy=1.0 - 0.2 * stat))
    rows.append(dict(dataset="wine", block="residual", h=1.0, trial=3, diverged=True, euler_max=np.inf,
                     test_accuracy=0.0))
    rows.append(dict(dataset="wine", block="lm", h=1.0, trial=0, diverged=False, euler_max=np.nan,
                     test_accuracy=0.5))
    return pd.DataFrame(rows)


def test_correlation_table_per_block_and_overall():
    table = stability_correlations(hand_table(), n_boot=500)
    assert list(table.columns) == CORRELATION_COLUMNS
    overall = table[(table["block"] == "all") & (table["members"] == "all")].iloc[0]
    assert overall["n"] == 19 and overall["n_inf"] == 1  # the lm row (NaN) is left out
    assert overall["spearman"] == pytest.approx(-1.0)  # accuracy falls as the statistic grows
    kept = table[(table["block"] == "residual") & (table["members"] == "not_diverged")].iloc[0]
    assert kept["n"] == 9 and kept["n_inf"] == 0
    assert set(table["block"]) == {"residual", "shrinkage", "lm", "all"}
    assert table.loc[table["block"] == "lm", "n"].eq(0).all() and table.loc[table["block"] == "lm", "spearman"].isna().all()
    with pytest.raises(ValueError, match="euler_max"):
        stability_correlations(hand_table().drop(columns="euler_max"))


def test_figure_is_written_from_a_hand_made_table(tmp_path):
    table = hand_table()
    paths = plot_stability_vs_accuracy(table, stability_correlations(table, n_boot=200), tmp_path / "fig")
    assert [p.name for p in paths] == ["fig.png", "fig.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    with pytest.raises(ValueError, match="no stability statistic"):
        plot_stability_vs_accuracy(table.drop(columns="euler_max"), None, tmp_path / "bad")


# --------------------------------------------------------------------------- the sweep


def test_quick_sweep_writes_the_columns_the_figure_and_the_correlations(tmp_path):
    from resnet_stability import sweep

    out = tmp_path / "quick"
    args = ["--dataset", "wine", "--quick", "--blocks", "residual,shrinkage", "--noise", "0.5", "--out", str(out)]
    assert sweep.main(args) == 0
    table = pd.read_csv(out / "results.csv")
    assert {"euler_max", "euler_stable_share", "stability_seconds"} <= set(table.columns)
    assert table["euler_max"].notna().all() and (table["euler_max"] >= 0).all()
    assert table["euler_stable_share"].between(0, 1).all()
    for name in ("stability_vs_accuracy.png", "stability_vs_accuracy.pdf", "stability_correlation.csv",
                 "stability_vs_noise_loss.png"):
        assert (out / name).stat().st_size > 0, name
    correlations = pd.read_csv(out / "stability_correlation.csv")
    assert list(correlations.columns) == CORRELATION_COLUMNS
    assert set(correlations["block"]) == {"residual", "shrinkage", "all"}
    overall = correlations[(correlations["block"] == "all") & (correlations["members"] == "all")].iloc[0]
    assert overall["n"] == len(table)
    assert overall["spearman"] == pytest.approx(spearman(table["euler_max"], table["test_accuracy"]))
    lost = pd.read_csv(out / "stability_noise_correlation.csv")
    assert list(lost.columns) == ["noise", "level"] + CORRELATION_COLUMNS
    assert set(lost["level"]) == {0.5} and set(lost["noise"]) == {"gaussian", "uniform", "constant"}
    from resnet_stability.report import write_report

    html_path, md_path = write_report(out)
    markdown = md_path.read_text(encoding="utf-8")
    assert "## Stability and accuracy" in markdown and "stability_vs_accuracy.png" in markdown
    assert f"{overall['spearman']:.3f} [{overall['ci_low']:.3f}, {overall['ci_high']:.3f}]" in markdown
    assert 'id="stability"' in html_path.read_text(encoding="utf-8")


def hand_transfer_tables():
    """The hand table without lm, its noise scores (gaussian at 0, 0.5 and 1.0; the loss
    at 1.0 is 0.1·euler_max, 0 where infinite, and at 0.5 half that) and its accuracy on
    two later windows (window 1: the test accuracy; window 2: 0.5 for all)."""
    results = hand_table()
    results = results[results["block"] != "lm"]
    noise, windows = [], []
    for row in results.itertuples():
        lost = 0.0 if np.isinf(row.euler_max) else 0.1 * row.euler_max  # more amplification, more lost
        key = dict(dataset=row.dataset, block=row.block, h=row.h, trial=row.trial)
        noise += [dict(key, noise="gaussian", level=level, accuracy=0.9 - share * lost)
                  for level, share in ((0.0, 0.0), (0.5, 0.5), (1.0, 1.0))]
        for window in (1, 2):
            windows.append(dict(key, window=window, accuracy=row.test_accuracy if window == 1 else 0.5))
    return results, pd.DataFrame(noise), pd.DataFrame(windows)


def test_noise_loss_and_window_correlations_from_hand_tables():
    from resnet_stability.correlation import noise_loss_correlations, window_correlations

    results, noise, windows = hand_transfer_tables()
    lost = noise_loss_correlations(results, noise[noise["level"] != 0.5], n_boot=200)
    assert list(lost.columns) == ["noise", "level"] + CORRELATION_COLUMNS and set(lost["level"]) == {1.0}
    kept = lost[(lost["block"] == "all") & (lost["members"] == "not_diverged")].iloc[0]
    assert kept["n"] == 18 and kept["spearman"] == pytest.approx(1.0)
    by_window = window_correlations(results, windows, n_boot=200)
    first = by_window[(by_window["window"] == 1) & (by_window["block"] == "all") & (by_window["members"] == "all")]
    assert first["spearman"].iloc[0] == pytest.approx(-1.0)
    assert by_window.loc[by_window["window"] == 2, "spearman"].isna().all()  # constant accuracy


def test_transfer_scatters_plot_the_largest_noise_level_and_the_last_window(tmp_path, monkeypatch):
    """stability_vs_noise_loss: the members' loss at the kind's largest level (1.0, not
    0.5) against euler_max; stability_vs_time: the accuracy on the last window."""
    from resnet_stability import plots, sweep

    results, noise, windows = hand_transfer_tables()
    drawn = {}
    original = plots.plot_stability_vs_accuracy

    def record(table, correlations, path_stem, **kwargs):
        drawn[path_stem.name] = (table, correlations, kwargs)
        return original(table, correlations, path_stem, **kwargs)

    monkeypatch.setattr(plots, "plot_stability_vs_accuracy", record)
    written = sweep.write_stability_extras(results, tmp_path, noise=noise, over_time=windows)
    names = {p.name for p in written}
    assert {"stability_vs_noise_loss.png", "stability_vs_time.png", "stability_noise_correlation.csv",
            "stability_time_correlation.csv"} <= names
    table, correlations, kwargs = drawn["stability_vs_noise_loss"]
    assert kwargs["outcome"] == "accuracy_lost" and set(table["level"]) == {1.0}
    expected = np.where(np.isinf(table["euler_max"]), 0.0, 0.1 * table["euler_max"])
    np.testing.assert_allclose(table["accuracy_lost"], expected, atol=1e-12)
    assert set(table["dataset"]) == set(correlations["dataset"]) == {"wine · gaussian noise 1"}
    assert set(correlations["level"]) == {1.0}
    table, correlations, kwargs = drawn["stability_vs_time"]
    assert kwargs["outcome"] == "accuracy" and set(table["window"]) == {2} and (table["accuracy"] == 0.5).all()
    assert set(correlations["window"]) == {2} and len(table) == len(results)

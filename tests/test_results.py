"""Summaries of a results table (``resnet_stability.results``), and its figures with few
trials or few h (nothing trains): mean ± std over trials, the best h, the long-form
tables of learned h and of accuracy by level."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.figure  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from helpers import learned_h_hand_table  # noqa: E402

from resnet_stability import plots  # noqa: E402
from resnet_stability.results import aggregate, summary_lines  # noqa: E402


def table(accuracies: dict) -> pd.DataFrame:
    """Rows of (block, h) -> test accuracies, one per trial."""
    rows = [
        dict(dataset="wine", block=block, h=h, trial=trial, test_accuracy=value, train_accuracy=1.0, diverged=False)
        for (block, h), values in accuracies.items()
        for trial, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


ONE_TRIAL = table({("residual", 0.5): [0.8], ("residual", 1.0): [0.6]})


def test_one_trial_std_is_undefined_not_zero():
    agg = aggregate(ONE_TRIAL)
    assert agg["std"].isna().all() and list(agg["trials"]) == [1, 1]
    (line,) = [line for line in summary_lines(ONE_TRIAL) if "residual" in line]
    assert "best h = 0.5 (0.800 ± n/a (1 trial))" in line
    assert "h = 1: 0.600 ± n/a (1 trial)" in line
    assert "± 0.000" not in line
    assert "std" in aggregate(ONE_TRIAL).to_csv(index=False).splitlines()[0]


def test_two_trials_keep_the_sample_std():
    two = table({("residual", 0.5): [0.8, 0.6], ("residual", 1.0): [0.6, 0.6]})
    (line,) = [line for line in summary_lines(two) if "residual" in line]
    # std (ddof = 1) of 0.8, 0.6: sqrt(2 * 0.1^2 / 1) = 0.1414
    assert f"best h = 0.5 (0.700 ± {math.sqrt(0.02):.3f})" in line and "h = 1: 0.600 ± 0.000" in line


def test_one_h_is_printed_once():
    one_h = table({("residual", 1.0): [0.8, 0.6], ("shrinkage", 1.0): [0.9, 0.7]})
    lines = [line for line in summary_lines(one_h) if "residual" in line or "shrinkage" in line]
    assert len(lines) == 2
    for line in lines:
        assert line.count("h = 1") == 1, line
        assert "best h" not in line, line
    assert "h = 1: 0.700 ± 0.141" in lines[0]


def _titles(monkeypatch, call) -> list[str]:
    seen = []
    save = plots._save

    def record(fig, path_stem):
        seen.extend(ax.get_title() for ax in fig.axes if ax.get_title())  # accuracy panels (the divergence bars below have none)
        return save(fig, path_stem)

    monkeypatch.setattr(plots, "_save", record)
    call()
    return seen


def test_one_trial_figure_says_why_there_is_no_error_bar(tmp_path, monkeypatch):
    (title,) = _titles(monkeypatch, lambda: plots.plot_accuracy_vs_h(ONE_TRIAL, tmp_path / "fig"))
    assert "single trial" in title and "no error bar" in title and "± std" not in title, title


def test_panel_notes_go_to_their_panel_only(tmp_path, monkeypatch):
    two = pd.concat([ONE_TRIAL, ONE_TRIAL.assign(dataset="bitcoin")], ignore_index=True)
    call = lambda: plots.plot_accuracy_vs_h(two, tmp_path / "fig", " [quick]", {"bitcoin": " [synthetic data]"})  # noqa: E731
    wine, bitcoin = _titles(monkeypatch, call)
    assert wine.endswith("[quick]") and "synthetic" not in wine
    assert bitcoin.endswith("[quick] [synthetic data]")


def test_a_failed_figure_write_leaves_the_old_figure(tmp_path, monkeypatch):
    old = tmp_path / "fig.png"
    old.write_bytes(b"old figure")

    def fail_half_way(self, path, **kwargs):
        with open(path, "wb") as stream:
            stream.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", fail_half_way)
    with pytest.raises(OSError, match="disk full"):
        plots.plot_accuracy_vs_h(ONE_TRIAL, tmp_path / "fig")
    assert old.read_bytes() == b"old figure"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.png"]


def hand_table() -> pd.DataFrame:
    rows = []
    accuracies = {
        ("residual", 0.1): [0.5, 0.7, 0.9],  # mean 0.7, std 0.2
        ("residual", 1.0): [0.6, 0.6, 0.9],  # mean 0.7, std sqrt(0.03)
        ("residual", 0.5): [0.8, 0.9, 1.0],  # mean 0.9, std 0.1  <- best
        ("shrinkage", 0.1): [1.0, 0.9, 0.8],  # mean 0.9 <- best
        ("shrinkage", 1.0): [0.2, 0.4, 0.3],  # mean 0.3, std 0.1
    }
    for (block, h), values in accuracies.items():
        for trial, value in enumerate(values):
            rows.append(
                dict(dataset="wine", block=block, h=h, trial=trial, test_accuracy=value,
                     train_accuracy=1.0, diverged=(block == "shrinkage" and h == 1.0 and trial < 2))
            )
    return pd.DataFrame(rows)


def test_aggregate_mean_and_sample_std():
    agg = aggregate(hand_table())
    assert list(zip(agg["block"], agg["h"])) == [
        ("residual", 0.1), ("residual", 0.5), ("residual", 1.0), ("shrinkage", 0.1), ("shrinkage", 1.0),
    ]
    np.testing.assert_allclose(agg["mean"], [0.7, 0.9, 0.7, 0.9, 0.3], atol=1e-12)
    np.testing.assert_allclose(agg["std"], [0.2, 0.1, math.sqrt(0.03), 0.1, 0.1], atol=1e-12)
    assert list(agg["trials"]) == [3, 3, 3, 3, 3]
    assert list(agg["diverged"]) == [0, 0, 0, 0, 2]


def test_summary_names_best_h_per_block():
    lines = summary_lines(hand_table())
    residual = [line for line in lines if line.strip().startswith("residual")]
    shrinkage = [line for line in lines if line.strip().startswith("shrinkage")]
    assert len(residual) == 1 and len(shrinkage) == 1
    assert "best h = 0.5 (0.900 ± 0.100)" in residual[0]
    assert "best h = 0.1 (0.900 ± 0.100)" in shrinkage[0]
    assert "h = 0.1: 0.700 ± 0.200" in residual[0] and "h = 1: 0.700 ± 0.173" in residual[0]
    assert "2 diverged" in shrinkage[0] and "diverged" not in residual[0]
    assert any("wine" in line for line in lines)


def test_learned_h_table_is_long_form():
    from resnet_stability.results import learned_h_table

    long = learned_h_table(learned_h_hand_table())
    assert len(long) == 2 * 2 * 2 * 3
    row = long[(long["block"] == "shrinkage") & (long["h"] == 0.6) & (long["trial"] == 1) & (long["block_index"] == 2)]
    assert float(row["learned_h"].iloc[0]) == pytest.approx(0.6 + 0.1 + 0.02)
    assert learned_h_table(learned_h_hand_table().drop(columns="learned_h")).empty


def test_level_accuracy_table_and_figure(tmp_path):
    """Hand-made rows: one diverged at level 2 (null), one without levels (skipped)."""
    from resnet_stability.plots import plot_accuracy_by_level
    from resnet_stability.results import level_accuracy_table

    table = pd.DataFrame(
        [
            dict(dataset="wine", block="residual", h=0.1, trial=0, level_accuracy=json.dumps([0.5, 0.7, 0.8])),
            dict(dataset="wine", block="residual", h=0.5, trial=0, level_accuracy=json.dumps([0.4, None, None])),
            dict(dataset="wine", block="shrinkage", h=0.1, trial=0, level_accuracy=None),
        ]
    )
    long = level_accuracy_table(table)
    assert list(long["level"]) == [1, 2, 3, 1, 2, 3]
    assert list(long["accuracy"][:4]) == [0.5, 0.7, 0.8, 0.4] and long["accuracy"][4:].isna().all()
    written = plot_accuracy_by_level(table, tmp_path / "by_level")
    assert [p.suffix for p in written] == [".png", ".pdf"]
    with pytest.raises(ValueError, match="without --levels"):
        plot_accuracy_by_level(table.drop(columns="level_accuracy"), tmp_path / "none")


def test_mean_std_by_hand_with_a_missing_value_and_first_appearance_order():
    """The one mean ± std: ddof = 1, NaN values not counted, groups in the order they
    first appear (b before a)."""
    from resnet_stability.results import mean_std

    frame = pd.DataFrame({"key": ["b", "a", "b", "a", "b"], "accuracy": [0.5, 0.2, 0.7, float("nan"), 0.9]})
    out = mean_std(frame, ["key"])
    assert list(out["key"]) == ["b", "a"] and list(out["n"]) == [3, 1]
    assert out["mean"].tolist() == pytest.approx([0.7, 0.2])
    assert out["std"].iloc[0] == pytest.approx(0.2)  # sqrt(((-.2)^2 + 0 + .2^2) / 2)
    assert np.isnan(out["std"].iloc[1])  # one value: undefined

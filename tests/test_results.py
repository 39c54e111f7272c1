"""Summaries and figures of a results table with few trials or few h (nothing trains):
``resnet_stability.results`` and ``resnet_stability.plots``."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.figure  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

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

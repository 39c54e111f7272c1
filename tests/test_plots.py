"""The figures of sweep results (``resnet_stability.plots``): what each panel shows, and
that each figure is written (noise robustness, learned h, stability against accuracy)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from helpers import learned_h_hand_table, stability_hand_table  # noqa: E402

from resnet_stability import plots  # noqa: E402
from resnet_stability.correlation import stability_correlations  # noqa: E402


def results(diverged: dict) -> pd.DataFrame:
    """Wine, 2 blocks x h 0.5, 1.0 x 3 trials; ``diverged[(block, h)]`` trials marked diverged."""
    rows = []
    for block in ("residual", "shrinkage"):
        for h in (0.5, 1.0):
            for trial in range(3):
                rows.append(dict(dataset="wine", block=block, h=h, trial=trial, test_accuracy=0.8 + 0.05 * trial,
                                 train_accuracy=0.9, diverged=trial < diverged.get((block, h), 0),
                                 test_majority_rate=0.4))
    return pd.DataFrame(rows)


def test_accuracy_figure_shows_diverged_counts_and_the_majority_line(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, stem: figures.append(fig) or [])
    plots.plot_accuracy_vs_h(results({("residual", 1.0): 2, ("shrinkage", 0.5): 1}), tmp_path / "fig")
    (fig,) = figures
    accuracy_ax, bars_ax = fig.axes
    heights = sorted((round(p.get_x() + p.get_width() / 2, 6), p.get_height()) for p in bars_ax.patches)
    # bars per block side by side around each h: residual left, shrinkage right
    assert [h for _, h in heights] == [0, 1, 2, 0]
    majority = [line for line in accuracy_ax.get_lines() if line.get_linestyle() == "--"]
    assert len(majority) == 1 and np.allclose(majority[0].get_ydata(), 0.4)
    plt.close(fig)


def test_no_divergence_is_said_in_words(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, stem: figures.append(fig) or [])
    plots.plot_accuracy_vs_h(results({}), tmp_path / "fig")
    texts = [t.get_text() for t in figures[0].axes[1].texts]
    assert texts == ["no network diverged"]
    plt.close(figures[0])


def test_noise_figure_is_written(noisy_cell, tmp_path):
    _, _, table = noisy_cell
    paths = plots.plot_noise_robustness(table, tmp_path / "noise")
    assert all(path.stat().st_size > 0 for path in paths)


def test_learned_h_figure_draws_the_trial_mean_per_block_and_initial_h(tmp_path, monkeypatch):
    written = plots.plot_learned_h(learned_h_hand_table(), tmp_path / "learned_h")
    assert [p.name for p in written] == ["learned_h.png", "learned_h.pdf"]
    assert (tmp_path / "learned_h.png").stat().st_size > 1000

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, stem: figures.append(fig) or [])
    plots.plot_learned_h(learned_h_hand_table(), tmp_path / "again")
    axes = figures[0].axes
    assert [ax.get_title().split(" (")[0] for ax in axes] == ["wine × residual", "wine × shrinkage"]
    curves = [line for line in axes[0].get_lines() if line.get_linestyle() != ":"]
    assert len(curves) == 2  # one line per initial h
    np.testing.assert_allclose(curves[1].get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(curves[1].get_ydata(), [0.65, 0.66, 0.67])  # mean of the two trials
    with pytest.raises(ValueError, match="without --learn-h"):
        plots.plot_learned_h(learned_h_hand_table().iloc[-1:], tmp_path / "none")


def test_stability_figure_is_written_from_a_hand_made_table(tmp_path):
    table = stability_hand_table()
    paths = plots.plot_stability_vs_accuracy(table, stability_correlations(table, n_boot=200), tmp_path / "fig")
    assert [p.name for p in paths] == ["fig.png", "fig.pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    with pytest.raises(ValueError, match="no stability statistic"):
        plots.plot_stability_vs_accuracy(table.drop(columns="euler_max"), None, tmp_path / "bad")

"""The figures of sweep results (``resnet_stability.plots``): what each panel shows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from resnet_stability import plots  # noqa: E402


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

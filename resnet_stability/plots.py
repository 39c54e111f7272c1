"""Figures of sweep results (matplotlib, no display needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt

from resnet_stability.results import aggregate


def plot_accuracy_vs_h(table, path_stem, title_note: str = "") -> list[Path]:
    """Mean ± std of test accuracy over trials against h, one line per block, one
    panel per dataset (as the paper's Figs 9–13). Writes ``<stem>.png`` and ``.pdf``."""
    agg = aggregate(table)
    datasets = list(dict.fromkeys(agg["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.0 * len(datasets), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for block, rows in agg[agg["dataset"] == dataset].groupby("block", sort=False):
            rows = rows.sort_values("h")
            std = rows["std"].fillna(0.0)
            ax.errorbar(rows["h"], rows["mean"], yerr=std, marker="o", capsize=3, label=block)
        trials = int(agg.loc[agg["dataset"] == dataset, "trials"].max())
        _label(ax, f"{dataset} (mean ± std over {trials} trials){title_note}", "step size h", "test accuracy")
    fig.tight_layout()
    return _save(fig, path_stem)


def _label(ax, title, xlabel, ylabel, legend_columns=1):
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8 if legend_columns == 1 else 7, ncol=legend_columns)


def _save(fig, path_stem) -> list[Path]:
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        path = stem.with_suffix(suffix)
        fig.savefig(path, dpi=150)
        written.append(path)
    plt.close(fig)
    return written


def plot_noise_robustness(noise_table, path_stem, title_note: str = "") -> list[Path]:
    """Test accuracy against noise level, mean ± std over h and trials, one line per block,
    one panel per noise kind (per dataset, stacked). Writes ``<stem>.png`` and ``.pdf``."""
    datasets = list(dict.fromkeys(noise_table["dataset"]))
    kinds = list(dict.fromkeys(noise_table["noise"]))
    fig, axes = plt.subplots(len(datasets), len(kinds), figsize=(4.2 * len(kinds), 3.4 * len(datasets)),
                             squeeze=False)
    for row, dataset in enumerate(datasets):
        for col, kind in enumerate(kinds):
            ax = axes[row][col]
            rows = noise_table[(noise_table["dataset"] == dataset) & (noise_table["noise"] == kind)]
            for block, per_block in rows.groupby("block", sort=False):
                stats = per_block.groupby("level")["accuracy"].agg(["mean", "std"]).reset_index()
                ax.errorbar(stats["level"], stats["mean"], yerr=stats["std"].fillna(0.0), marker="o",
                            capsize=3, label=block)
            _label(ax, f"{dataset}: {kind} noise{title_note}", "noise level (standardised units)", "test accuracy")
    fig.tight_layout()
    return _save(fig, path_stem)


def plot_accuracy_over_time(time_table, path_stem, windows_note: str = "", title_note: str = "") -> list[Path]:
    """Accuracy on each later test window, mean ± std over trials, one panel per
    (dataset, block), one line per h (as the paper's Fig. 15). ``windows_note`` (the
    time windows) goes in the figure title."""
    panels = list(dict.fromkeys(zip(time_table["dataset"], time_table["block"])))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    cmap = plt.get_cmap("viridis")
    h_values = sorted(time_table["h"].unique())
    for ax, (dataset, block) in zip(axes[0], panels):
        rows = time_table[(time_table["dataset"] == dataset) & (time_table["block"] == block)]
        for h, per_h in rows.groupby("h"):
            stats = per_h.groupby("window")["accuracy"].agg(["mean", "std"]).reset_index()
            colour = cmap(h_values.index(h) / max(1, len(h_values) - 1))
            ax.errorbar(stats["window"], stats["mean"], yerr=stats["std"].fillna(0.0), marker=".", capsize=2,
                        color=colour, label=f"h={h:g}")
        _label(ax, f"{dataset} × {block}{title_note}", "test window (later →)", "accuracy", legend_columns=2)
    if windows_note:
        lines = textwrap.wrap(windows_note, width=int(45 * len(panels)))
        fig.suptitle("\n".join(lines), fontsize=7)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.045 * len(lines)))
    else:
        fig.tight_layout()
    return _save(fig, path_stem)

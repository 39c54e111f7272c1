"""Figures of sweep results (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from resnet_stability.results import aggregate  # noqa: E402


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
        ax.set_title(f"{dataset} (mean ± std over {trials} trials){title_note}", fontsize=10)
        ax.set_xlabel("step size h")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        path = stem.with_suffix(suffix)
        fig.savefig(path, dpi=150)
        written.append(path)
    plt.close(fig)
    return written

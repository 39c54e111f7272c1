"""Figures of sweep results (matplotlib, no display needed)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from resnet_stability.atomic import atomic_path
from resnet_stability.results import aggregate, learned_h_table, level_accuracy_table, mean_std


def plot_accuracy_vs_h(table, path_stem, title_note: str = "", panel_notes: dict | None = None) -> list[Path]:
    """Mean ± std of test accuracy over trials against h, one line per block, one
    panel per dataset (as the paper's Figs 9–13), with the majority-class rate of the
    test sets as a dashed reference line (where the table has ``test_majority_rate``)
    and, below each panel, the number of diverged networks per h and block. Writes
    ``<stem>.png`` and ``.pdf``. ``title_note`` goes in every panel's title,
    ``panel_notes[dataset]`` in that dataset's only (e.g. " [synthetic data]"). With a
    single trial the std is undefined: no error bar is drawn and the title says so."""
    panel_notes = panel_notes or {}
    agg = aggregate(table)
    datasets = list(dict.fromkeys(agg["dataset"]))
    fig, axes = plt.subplots(2, len(datasets), figsize=(5.0 * len(datasets), 4.8), squeeze=False,
                             gridspec_kw={"height_ratios": (3.2, 1.0)}, sharex="col")
    for column, dataset in enumerate(datasets):
        ax, bars = axes[0][column], axes[1][column]
        rows_of = agg[agg["dataset"] == dataset]
        blocks = list(dict.fromkeys(rows_of["block"]))
        hs = sorted(set(rows_of["h"]))
        width = 0.8 * (min(np.diff(hs)) if len(hs) > 1 else 0.1) / len(blocks)
        for k, (block, rows) in enumerate(rows_of.groupby("block", sort=False)):
            rows = rows.sort_values("h")
            line = ax.errorbar(rows["h"], rows["mean"], yerr=rows["std"].fillna(0.0), marker="o", capsize=3,
                               label=block)
            offset = (k - (len(blocks) - 1) / 2) * width
            bars.bar(rows["h"] + offset, rows["diverged"], width=width, color=line[0].get_color())
        majority = float(table.loc[table["dataset"] == dataset, "test_majority_rate"].mean()) \
            if "test_majority_rate" in table.columns else float("nan")
        if np.isfinite(majority):
            ax.axhline(majority, color="0.4", ls="--", lw=1, label=f"majority class ({majority:.2f})")
        trials = int(rows_of["trials"].max())
        over = "a single trial: no error bars, std undefined" if trials == 1 else f"mean ± std over {trials} trials"
        _label(ax, f"{dataset} ({over}){title_note}{panel_notes.get(dataset, '')}", "", "test accuracy")
        bars.set_ylim(0, max(1, trials))
        if not rows_of["diverged"].any():
            bars.text(0.5, 0.5, "no network diverged", transform=bars.transAxes, ha="center", va="center", fontsize=8)
        bars.set_ylabel("diverged", fontsize=8)
        bars.set_xlabel("step size h")
        bars.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path_stem)


def _label(ax, title, xlabel, ylabel, legend_columns=1):
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8 if legend_columns == 1 else 7, ncol=legend_columns)


def _save(fig, path_stem) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` atomically (a temporary file in the same
    folder, then renamed), so a reader never sees half a figure."""
    stem = Path(path_stem)
    written = []
    try:
        for suffix in (".png", ".pdf"):
            path = stem.with_suffix(suffix)
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=150, format=suffix[1:])
            written.append(path)
    finally:
        plt.close(fig)
    return written


def _panels_per_block(table):
    """A row of panels, one per (dataset, block) of ``table`` in order of appearance:
    ``(fig, [(ax, dataset, block, rows, colours), ...])`` with ``rows`` that panel's rows
    and ``colours[h]`` one viridis scale over every h of the table."""
    keys = list(dict.fromkeys(zip(table["dataset"], table["block"])))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.6 * len(keys), 3.8), squeeze=False)
    h_values = sorted(table["h"].unique())
    cmap = plt.get_cmap("viridis")
    colours = {h: cmap(i / max(1, len(h_values) - 1)) for i, h in enumerate(h_values)}
    panels = [
        (ax, dataset, block, table[(table["dataset"] == dataset) & (table["block"] == block)], colours)
        for ax, (dataset, block) in zip(axes[0], keys)
    ]
    return fig, panels


def _long_panels(long, missing: str):
    """:func:`_panels_per_block` of a long-form table; ValueError ``missing`` if it is empty."""
    if long.empty:
        raise ValueError(missing)
    return _panels_per_block(long)


def _mean_std_line(ax, rows, x: str, **style):
    """One line of ``rows``' mean ± std (error bar) of ``accuracy`` per value of ``x``
    (std undefined with one value: no bar)."""
    stats = mean_std(rows, [x]).sort_values(x, kind="stable")
    return ax.errorbar(stats[x], stats["mean"], yerr=stats["std"].fillna(0.0), **style)


def plot_noise_robustness(noise_table, path_stem, title_note: str = "", panel_notes: dict | None = None) -> list[Path]:
    """Test accuracy against noise level, mean ± std over h and trials, one line per block,
    one panel per noise kind (per dataset, stacked). Writes ``<stem>.png`` and ``.pdf``.
    ``panel_notes[dataset]`` is added to that dataset's panel titles."""
    panel_notes = panel_notes or {}
    datasets = list(dict.fromkeys(noise_table["dataset"]))
    kinds = list(dict.fromkeys(noise_table["noise"]))
    fig, axes = plt.subplots(len(datasets), len(kinds), figsize=(4.2 * len(kinds), 3.4 * len(datasets)),
                             squeeze=False)
    for row, dataset in enumerate(datasets):
        for col, kind in enumerate(kinds):
            ax = axes[row][col]
            rows = noise_table[(noise_table["dataset"] == dataset) & (noise_table["noise"] == kind)]
            for block, per_block in rows.groupby("block", sort=False):
                _mean_std_line(ax, per_block, "level", marker="o", capsize=3, label=block)
            _label(ax, f"{dataset}: {kind} noise{title_note}{panel_notes.get(dataset, '')}",
                   "noise level (standardised units)", "test accuracy")
    fig.tight_layout()
    return _save(fig, path_stem)


def plot_accuracy_over_time(
    time_table, path_stem, windows_note: str = "", title_note: str = "", panel_notes: dict | None = None
) -> list[Path]:
    """Accuracy on each later test window, mean ± std over trials, one panel per
    (dataset, block), one line per h (as the paper's Fig. 15). ``windows_note`` (the
    time windows) goes in the figure title; ``panel_notes[dataset]`` in its panels' titles."""
    panel_notes = panel_notes or {}
    fig, panels = _panels_per_block(time_table)
    for ax, dataset, block, rows, colours in panels:
        for h, per_h in rows.groupby("h"):
            _mean_std_line(ax, per_h, "window", marker=".", capsize=2, color=colours[h], label=f"h={h:g}")
        _label(ax, f"{dataset} × {block}{title_note}{panel_notes.get(dataset, '')}", "test window (later →)",
               "accuracy", legend_columns=2)
    if windows_note:
        lines = textwrap.wrap(windows_note, width=int(45 * len(panels)))
        fig.suptitle("\n".join(lines), fontsize=7)
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.045 * len(lines)))
    else:
        fig.tight_layout()
    return _save(fig, path_stem)


def plot_learned_h(table, path_stem, title_note: str = "", panel_notes: dict | None = None) -> list[Path]:
    """Learned step sizes (sweeps with ``--learn-h``): each block's trained h against its
    index (depth), mean over trials, one line per initial h (colour) in one panel per
    (dataset, block type); a dotted line at each initial h shows where training started.
    Reads the ``learned_h`` column of a results table (:func:`~resnet_stability.results.learned_h_table`).
    Writes ``<stem>.png`` and ``.pdf``."""
    panel_notes = panel_notes or {}
    missing = "no learned step sizes in the table: the sweep ran without --learn-h"
    fig, panels = _long_panels(learned_h_table(table), missing)
    for ax, dataset, block, rows, colours in panels:
        for h, per_h in rows.groupby("h"):
            mean = per_h.groupby("block_index")["learned_h"].mean()
            ax.plot(mean.index, mean.values, marker=".", color=colours[h], label=f"h₀={h:g}")
            ax.axhline(h, color=colours[h], ls=":", lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        trials = int(rows.groupby(["h", "block_index"])["trial"].nunique().max())
        _label(ax, f"{dataset} × {block} (mean over {trials} trial{'s' if trials > 1 else ''}){title_note}"
               f"{panel_notes.get(dataset, '')}", "block index (depth)", "learned h", legend_columns=2)
    fig.tight_layout()
    return _save(fig, path_stem)


def plot_accuracy_by_level(table, path_stem, title_note: str = "", panel_notes: dict | None = None) -> list[Path]:
    """Multi-level training (sweeps with ``--levels`` > 1): test accuracy after each
    level (level ℓ: depth D·2^(ℓ−1), step h/2^(ℓ−1)), mean ± std over trials (members
    still training), one line per level-1 h in one panel per (dataset, block). Reads the
    ``level_accuracy`` column (:func:`~resnet_stability.results.level_accuracy_table`).
    Writes ``<stem>.png`` and ``.pdf``."""
    panel_notes = panel_notes or {}
    missing = "no per-level accuracy in the table: the sweep ran without --levels > 1"
    fig, panels = _long_panels(level_accuracy_table(table), missing)
    for ax, dataset, block, rows, colours in panels:
        for h, per_h in rows.groupby("h"):
            _mean_std_line(ax, per_h, "level", marker="o", capsize=2, color=colours[h], label=f"h={h:g}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _label(ax, f"{dataset} × {block}{title_note}{panel_notes.get(dataset, '')}",
               "level (depth ×2, h/2 per level)", "test accuracy", legend_columns=2)
    fig.tight_layout()
    return _save(fig, path_stem)


STABILITY_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")


def plot_stability_vs_accuracy(table, correlations, path_stem, title_note: str = "",
                               panel_notes: dict | None = None, outcome: str = "test_accuracy",
                               ylabel: str = "test accuracy") -> list[Path]:
    """Test accuracy (or another per-member ``outcome``, labelled ``ylabel``: the
    accuracy lost under noise, on a later time window) against the Prop. 1 statistic ``euler_max`` (max |1 + hλ|; log
    scale where it spans more than a factor 15), one point per member, one panel per dataset: colour by block, marker by h,
    a dotted line at 1 (Euler stable to its left). Members whose statistic is +inf
    (diverged networks with non-finite Jacobians) are drawn at the right edge as open
    markers; NaN (blocks the statistic does not apply to) are left out and counted in the
    title. The title gives Spearman's ρ over all of the panel's members with its 95%
    bootstrap interval from ``correlations`` (:func:`~resnet_stability.correlation.stability_correlations`).
    Writes ``<stem>.png`` and ``.pdf``."""
    missing = [c for c in ("dataset", "block", "h", "euler_max", outcome) if c not in table.columns]
    if missing:
        raise ValueError(f"the table lacks the column(s) {', '.join(missing)}: it has no stability statistic")
    panel_notes = panel_notes or {}
    datasets = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.4 * len(datasets), 4.4), squeeze=False)
    colours = {block: f"C{k}" for k, block in enumerate(dict.fromkeys(table["block"]))}
    markers = {h: STABILITY_MARKERS[k % len(STABILITY_MARKERS)] for k, h in enumerate(sorted(table["h"].unique()))}
    for ax, dataset in zip(axes[0], datasets):
        rows = table[table["dataset"] == dataset]
        known = rows[rows["euler_max"].notna()]
        finite = known[np.isfinite(known["euler_max"])]
        edge = float(finite["euler_max"].max()) * 1.5 if len(finite) else 10.0
        for (block, h), group in known.groupby(["block", "h"], sort=False):
            stat = group["euler_max"].to_numpy(dtype=float)
            inf = np.isinf(stat)
            ax.scatter(stat[~inf], group[outcome][~inf], color=colours[block], marker=markers[h], s=22,
                       alpha=0.75, linewidths=0)
            if inf.any():
                ax.scatter(np.full(inf.sum(), edge), group[outcome][inf], facecolors="none",
                           edgecolors=colours[block], marker=markers[h], s=30)
        ax.axvline(1.0, color="0.4", ls=":", lw=1)
        if len(finite) and edge / max(float(finite["euler_max"].min()), 1e-12) > 15:  # wide range: log scale
            ax.set_xscale("log")
        _stability_legend(ax, colours, markers)
        ax.set_title(_stability_title(dataset, correlations, rows, known, edge) + title_note
                     + panel_notes.get(dataset, ""), fontsize=9)
        ax.set_xlabel("euler_max: max |1 + hλ| over blocks and sample test inputs (Prop. 1)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path_stem)


def _stability_legend(ax, colours, markers):
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", ls="", label=b) for b, c in colours.items()]
    handles += [Line2D([], [], color="0.3", marker=m, ls="", label=f"h={h:g}") for h, m in markers.items()]
    ax.legend(handles=handles, fontsize=7, ncol=2)


def _stability_title(dataset, correlations, rows, known, edge) -> str:
    line = correlations[(correlations["dataset"] == dataset) & (correlations["block"] == "all")
                        & (correlations["members"] == "all")] if correlations is not None and len(correlations) else []
    if len(line):
        c = line.iloc[0]
        rho = "ρ n/a" if pd.isna(c["spearman"]) else f"Spearman ρ = {c['spearman']:.2f} [{c['ci_low']:.2f}, {c['ci_high']:.2f}]"
    else:
        rho = "ρ n/a"
    notes = []
    inf = int(np.isinf(known["euler_max"]).sum())
    if inf:
        notes.append(f"{inf} infinite at x={edge:.3g} (open)")
    if len(rows) > len(known):
        notes.append(f"{len(rows) - len(known)} without the statistic")
    return f"{dataset}: {rho}, n = {len(known)}" + (f"\n({'; '.join(notes)})" if notes else "")

"""Summaries of a results table: mean ± std over trials, best h per block."""

from __future__ import annotations

import json

import pandas as pd

GROUP = ["dataset", "block", "h"]


def mean_std(frame: pd.DataFrame, keys: list[str], value: str = "accuracy") -> pd.DataFrame:
    """Mean, std (ddof=1) and count ``n`` of ``value`` per ``keys``, groups in the order
    they first appear (NaN values are not counted; NaN keys form their own group). The
    one mean ± std of the package: the results summary, the report's tables and the
    figures' error bars all use it."""
    grouped = frame.groupby(keys, sort=False, dropna=False)[value]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def aggregate(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof=1) and count (``trials``) of test accuracy per dataset × block × h
    (:func:`mean_std`), plus the number of diverged trials and mean train accuracy."""
    grouped = table.groupby(GROUP, sort=False, dropna=False)  # the groups of mean_std, in its order
    summary = mean_std(table, GROUP, "test_accuracy").rename(columns={"n": "trials"})
    summary["diverged"] = grouped["diverged"].sum().astype(int).to_numpy()
    summary["train_mean"] = grouped["train_accuracy"].mean().to_numpy()
    # datasets and blocks in the order they first appear, h ascending within each
    order = {key: rank for rank, key in enumerate(dict.fromkeys(zip(summary["dataset"], summary["block"])))}
    summary["_order"] = [order[key] for key in zip(summary["dataset"], summary["block"])]
    return summary.sort_values(["_order", "h"], kind="stable").drop(columns="_order").reset_index(drop=True)


def summary_lines(table: pd.DataFrame) -> list[str]:
    """Per dataset and block: the best h (highest mean test accuracy) and the mean ± std
    at the smallest and the largest h of the grid (h = 0.1 and 1.0 for the paper's); with
    a single h, that h once. A std over one trial is undefined: "± n/a (1 trial)"."""
    agg = aggregate(table)
    lines = []
    for dataset, per_dataset in agg.groupby("dataset", sort=False):
        lines.append(f"{dataset}: test accuracy, mean ± std over trials")
        for block, rows in per_dataset.groupby("block", sort=False):
            rows = rows.sort_values("h")
            best = rows.loc[rows["mean"].idxmax()]
            first, last = rows.iloc[0], rows.iloc[-1]
            diverged = int(rows["diverged"].sum())
            if len(rows) == 1:
                text = f"h = {first.h:g}: {_pm(first)}"
            else:
                text = f"best h = {best.h:g} ({_pm(best)}) | h = {first.h:g}: {_pm(first)} | h = {last.h:g}: {_pm(last)}"
            lines.append(f"  {block:<12} {text}" + (f" | {diverged} diverged" if diverged else ""))
    return lines


def format_mean_std(mean, std, count=None, unit: str = "trial") -> str:
    """``0.912 ± 0.031``; an undefined std (one value) as ``0.912 ± n/a (1 trial)``."""
    if pd.isna(mean):
        return "n/a"
    if pd.isna(std):
        return f"{mean:.3f} ± n/a" + (f" ({int(count)} {unit}{'' if int(count) == 1 else 's'})" if count else "")
    return f"{mean:.3f} ± {std:.3f}"


def _pm(row) -> str:
    return format_mean_std(row["mean"], row["std"], row["trials"])


def json_list_table(table: pd.DataFrame, column: str, index: str, value: str, first: int = 0) -> pd.DataFrame:
    """Rows whose ``column`` holds a JSON list, in long form: one row per member and list
    entry, columns dataset, block, h, trial, ``index`` (``first`` for the first entry)
    and ``value`` (a JSON null as NaN). Empty when no row has such a list."""
    columns = ["dataset", "block", "h", "trial", index, value]
    if column not in table.columns:
        return pd.DataFrame(columns=columns)
    rows = [
        {"dataset": row.dataset, "block": row.block, "h": row.h, "trial": row.trial, index: first + position,
         value: float("nan") if entry is None else entry}
        for row in table[table[column].notna()].itertuples(index=False)
        for position, entry in enumerate(json.loads(getattr(row, column)))
    ]
    return pd.DataFrame(rows, columns=columns)


def learned_h_table(table: pd.DataFrame) -> pd.DataFrame:
    """The learned step sizes of a results table (rows whose ``learned_h`` holds a JSON
    list, sweeps with ``--learn-h``) in long form: one row per member and block, columns
    dataset, block, h (the initial h), trial, block_index (0 = first block) and
    learned_h. Empty when no row learned its h."""
    return json_list_table(table, "learned_h", "block_index", "learned_h")


def level_accuracy_table(table: pd.DataFrame) -> pd.DataFrame:
    """The per-level test accuracy of a results table (rows whose ``level_accuracy``
    holds a JSON list, sweeps with ``--levels`` > 1) in long form: one row per member
    and level, columns dataset, block, h (the level-1 h), trial, level (1 = the first,
    depth D at h; level ℓ: depth D·2^(ℓ−1) at h/2^(ℓ−1)) and accuracy (NaN after the
    level a member diverged in). Empty when no row has levels."""
    return json_list_table(table, "level_accuracy", "level", "accuracy", first=1)

"""Beyond the paper: the summaries REPRODUCTION.md reports for its next steps.

Pure functions of the committed tables (``reproduction/beyond/...``), each with the rule
it applies, fixed before the runs:

- **stability against accuracy** (:func:`correlation_verdicts`): the paper's thesis
  (stable layer-to-layer propagation goes with accuracy) predicts Spearman's ρ < 0
  between the Prop. 1 statistic ``euler_max`` and test accuracy; under noise it predicts
  ρ > 0 between ``euler_max`` and the accuracy lost. A correlation *holds* when its 95%
  bootstrap interval lies on the predicted side of 0, is *contradicted* when it lies on
  the other side, and is *inconclusive* otherwise
  (:func:`resnet_stability.reproduction.claims.side_of`);
- **paired changes** (:func:`paired_change`): a variant (learned h, more levels) against
  the fixed-h networks with the same h and trial (same split, same initial weights), the
  mean difference of test accuracy over those pairs with its 95% percentile bootstrap
  interval (:func:`resnet_stability.bootstrap.bootstrap_mean`);
- **learned steps** (:func:`learned_h_summary`) and **accuracy by level**
  (:func:`level_summary`): means over trials.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from resnet_stability.bootstrap import bootstrap_mean
from resnet_stability.reproduction.claims import INCONCLUSIVE, side_of

ALL = "all"  # the correlation tables' "every block" / "every member" label
PAIR_KEYS = ["dataset", "block", "h", "trial"]


def correlation_verdicts(correlations: pd.DataFrame, predicted: str, members: str = ALL) -> pd.DataFrame:
    """``correlations`` (a ``stability_*correlation.csv``) restricted to ``members``
    ("all" or "not_diverged"), with a ``verdict`` column: ρ's 95% interval against 0 on
    the ``predicted`` side ("<" or ">"); NaN intervals (too few pairs, constant values)
    are inconclusive."""
    rows = correlations[correlations["members"] == members].copy()
    rows["verdict"] = [
        side_of(low, high, 0.0, predicted) if np.isfinite(low) and np.isfinite(high) else INCONCLUSIVE
        for low, high in zip(rows["ci_low"], rows["ci_high"])
    ]
    return rows.reset_index(drop=True)


def paired_change(variant: pd.DataFrame, base: pd.DataFrame, column: str = "test_accuracy") -> pd.DataFrame:
    """Per dataset and block: mean of variant − base ``column`` over the networks paired by
    (h, trial), its 95% bootstrap interval, and the number of pairs."""
    merged = variant[PAIR_KEYS + [column]].merge(base[PAIR_KEYS + [column]], on=PAIR_KEYS, suffixes=("", "_base"),
                                                 validate="one_to_one")
    rows = []
    for (dataset, block), group in merged.groupby(["dataset", "block"], sort=False):
        difference = (group[column] - group[f"{column}_base"]).to_numpy(float)
        estimate, low, high = bootstrap_mean(difference)
        rows.append(dict(dataset=dataset, block=block, n=len(difference), mean_difference=estimate, ci_low=low,
                         ci_high=high))
    return pd.DataFrame(rows, columns=["dataset", "block", "n", "mean_difference", "ci_low", "ci_high"])


def learned_h_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per block and initial h: the mean over trials and blocks of the learned h
    (``learned_h``, a JSON list per network), its smallest and largest block mean
    (over trials), and the mean test accuracy."""
    steps = np.array([json.loads(text) for text in table["learned_h"]], dtype=float)  # (networks, depth)
    rows = []
    for (block, h), index in table.groupby(["block", "h"], sort=False).groups.items():
        per_block = steps[table.index.get_indexer(index)].mean(axis=0)  # mean over trials, per block index
        rows.append(dict(block=block, h=h, learned_mean=float(per_block.mean()), learned_min=float(per_block.min()),
                         learned_max=float(per_block.max()),
                         test_accuracy=float(table.loc[index, "test_accuracy"].mean())))
    return pd.DataFrame(rows, columns=["block", "h", "learned_mean", "learned_min", "learned_max", "test_accuracy"])


def level_accuracies(table: pd.DataFrame) -> np.ndarray:
    """(networks, levels) test accuracy after each level (``level_accuracy``, NaN after
    the level a network diverged in)."""
    return np.array([[np.nan if a is None else a for a in json.loads(text)] for text in table["level_accuracy"]],
                    dtype=float)


def level_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per block: the mean test accuracy after each level over the networks that reached
    it (``level_1``, ``level_2``, ...) and the paired mean change from the first level
    to the last, with its 95% bootstrap interval, over the networks that reached the last."""
    accuracy = level_accuracies(table)
    levels = accuracy.shape[1]
    rows = []
    for block, index in table.groupby("block", sort=False).groups.items():
        own = accuracy[table.index.get_indexer(index)]
        row = {"block": block, **{f"level_{k + 1}": float(np.nanmean(own[:, k])) for k in range(levels)}}
        reached = np.isfinite(own[:, -1])
        estimate, low, high = bootstrap_mean(own[reached, -1] - own[reached, 0])
        rows.append(dict(row, n=int(reached.sum()), change=estimate, ci_low=low, ci_high=high))
    return pd.DataFrame(rows)

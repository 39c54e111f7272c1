"""The beyond-the-paper summaries (``resnet_stability.reproduction.beyond``) and their section of
REPRODUCTION.md, on small hand-made tables whose answers are computed here by hand."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from resnet_stability.reproduction import beyond
from resnet_stability.reproduction.claims import CONTRADICTED, HOLDS, INCONCLUSIVE
from resnet_stability.reproduction.document import _beyond


def correlations(rows):
    return pd.DataFrame(
        [dict(dataset="wine", block=block, members=members, n=30, n_inf=0, spearman=rho, ci_low=low, ci_high=high)
         for block, members, rho, low, high in rows]
    )


def test_correlation_verdicts_against_zero_on_the_predicted_side():
    table = correlations([
        ("residual", "all", -0.5, -0.7, -0.3),  # below 0
        ("shrinkage", "all", 0.4, 0.2, 0.6),  # above 0
        ("batchnorm", "all", 0.0, -0.2, 0.2),  # straddles
        ("lm", "all", np.nan, np.nan, np.nan),  # no statistic
        ("residual", "not_diverged", -0.5, -0.7, -0.3),
    ])
    below = beyond.correlation_verdicts(table, "<")
    assert list(below["block"]) == ["residual", "shrinkage", "batchnorm", "lm"]  # members "all" only
    assert list(below["verdict"]) == [HOLDS, CONTRADICTED, INCONCLUSIVE, INCONCLUSIVE]
    above = beyond.correlation_verdicts(table, ">")
    assert list(above["verdict"]) == [CONTRADICTED, HOLDS, INCONCLUSIVE, INCONCLUSIVE]
    assert len(beyond.correlation_verdicts(table, "<", members="not_diverged")) == 1


def networks(block="residual", hs=(0.1, 0.5), trials=4, accuracy=lambda h, t: 0.5, **columns):
    rows = [dict(dataset="wine", block=block, h=h, trial=t, test_accuracy=accuracy(h, t),
                 **{name: value(h, t) for name, value in columns.items()})
            for h in hs for t in range(trials)]
    return pd.DataFrame(rows)


def test_paired_change_pairs_networks_by_h_and_trial():
    base = networks(accuracy=lambda h, t: 0.5 + 0.1 * t)
    variant = networks(accuracy=lambda h, t: 0.5 + 0.1 * t + (0.02 if h == 0.1 else -0.04))
    change = beyond.paired_change(variant.sample(frac=1.0, random_state=3), base)  # row order must not matter
    (row,) = change.itertuples()
    assert row.n == 8 and row.mean_difference == pytest.approx((4 * 0.02 - 4 * 0.04) / 8)
    assert row.ci_low <= row.mean_difference <= row.ci_high
    assert -0.04 - 1e-12 <= row.ci_low and row.ci_high <= 0.02 + 1e-12  # means of resampled differences


def test_a_constant_shift_has_a_zero_width_interval():
    base = networks(accuracy=lambda h, t: 0.3 + 0.05 * t)
    variant = networks(accuracy=lambda h, t: 0.35 + 0.05 * t)
    (row,) = beyond.paired_change(variant, base).itertuples()
    assert (row.mean_difference, row.ci_low, row.ci_high) == pytest.approx((0.05, 0.05, 0.05))


def test_learned_h_summary_by_hand():
    # 3 blocks; trial t of initial h learns [h, h + t, h + 2t] / 10 + ..., written out
    steps = {(0.1, 0): [0.1, 0.2, 0.3], (0.1, 1): [0.3, 0.2, 0.1], (0.5, 0): [0.5, 0.5, 0.5], (0.5, 1): [0.7, 0.5, 0.3]}
    table = networks(trials=2, accuracy=lambda h, t: h + t, learned_h=lambda h, t: json.dumps(steps[(h, t)]))
    summary = beyond.learned_h_summary(table).set_index("h")
    # h = 0.1: per-block means over trials [0.2, 0.2, 0.2]
    assert summary.loc[0.1, ["learned_mean", "learned_min", "learned_max"]].tolist() == pytest.approx([0.2, 0.2, 0.2])
    # h = 0.5: per-block means [0.6, 0.5, 0.4]
    assert summary.loc[0.5, ["learned_mean", "learned_min", "learned_max"]].tolist() == pytest.approx([0.5, 0.4, 0.6])
    assert summary.loc[0.5, "test_accuracy"] == pytest.approx(1.0)  # (0.5 + 1.5) / 2


def test_level_summary_by_hand_with_a_network_that_diverged():
    levels = {0: [0.5, 0.6, 0.7], 1: [0.6, 0.6, 0.8], 2: [0.4, None, None], 3: [0.5, 0.7, 0.6]}
    table = networks(hs=(0.1,), level_accuracy=lambda h, t: json.dumps(levels[t]))
    (row,) = beyond.level_summary(table).to_dict("records")
    assert row["level_1"] == pytest.approx(0.5)  # (0.5 + 0.6 + 0.4 + 0.5) / 4
    assert row["level_2"] == pytest.approx(0.6333333333)  # the three that reached it
    assert row["level_3"] == pytest.approx(0.7)
    assert row["n"] == 3 and row["change"] == pytest.approx((0.2 + 0.2 + 0.1) / 3)


def test_the_section_reports_what_has_run_and_says_what_has_not(tmp_path):
    root = tmp_path / "reproduction"
    paper = root / "paper" / "wine"
    paper.mkdir(parents=True)
    base = networks(accuracy=lambda h, t: 0.5 + 0.1 * t)
    base.to_csv(paper / "results.csv", index=False)
    learned = root / "beyond" / "learned-h"
    learned.mkdir(parents=True)
    networks(accuracy=lambda h, t: 0.52 + 0.1 * t, learned_h=lambda h, t: json.dumps([h, h])).to_csv(
        learned / "results.csv", index=False)
    noise = root / "beyond" / "stability-noise"
    noise.mkdir(parents=True)
    base.to_csv(noise / "results.csv", index=False)
    correlations([("residual", "all", -0.5, -0.7, -0.3), ("all", "all", -0.5, -0.7, -0.3)]).to_csv(
        noise / "stability_correlation.csv", index=False)
    text = "\n".join(_beyond(root))
    assert "| wine | residual | 30 | -0.500 [-0.700, -0.300] | ✅ holds |" in text
    assert "(holds / contradicted / inconclusive): residual 1/0/0, all 1/0/0." in text
    assert "their test accuracies are identical, network by network." in text
    assert "| residual | 8 | +0.020 [+0.020, +0.020] |" in text  # learned minus fixed
    assert text.count("_Not run yet._") == 2  # the penalty run and the levels
    assert "--stability-penalty 1" in text  # the commands are listed before any result

"""The paper's claims as code (``resnet_stability.reproduction.claims``) on small hand-made tables
whose verdicts are known, and the sign-flip test on inputs with answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from resnet_stability.reproduction import claims
from resnet_stability.reproduction.claims import CONTRADICTED, HOLDS, INCONCLUSIVE

TRIALS = 10
WOBBLE = np.array([0.01, -0.01, 0.02, -0.02, 0.0, 0.015, -0.015, 0.005, -0.005, 0.0])  # mean 0, std ~0.012


def table(cells: dict) -> pd.DataFrame:
    """{(dataset, block, h): 10 accuracies by trial} -> a results table."""
    rows = [
        dict(dataset=d, block=b, h=h, trial=t, test_accuracy=float(a), depth=50)
        for (d, b, h), values in cells.items()
        for t, a in enumerate(values)
    ]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- statistics


def test_sign_flip_p_by_hand():
    # all five differences positive: only the two patterns with all signs equal reach
    # |mean| = 3, so p = 2 / 2^5
    assert claims.sign_flip_p(np.array([1.0, 2, 3, 4, 5])) == pytest.approx(2 / 32)
    # (1, -1): both patterns |mean| 0 reach the observed 0
    assert claims.sign_flip_p(np.array([1.0, -1.0])) == 1.0
    with pytest.raises(ValueError, match="at most 16"):
        claims.sign_flip_p(np.ones(17))


@pytest.mark.parametrize("low, high, threshold, side, expected", [
    (0.1, 0.2, 0.0, ">", HOLDS), (-0.2, -0.1, 0.0, ">", CONTRADICTED), (-0.1, 0.1, 0.0, ">", INCONCLUSIVE),
    (-0.2, -0.1, 0.0, "<", HOLDS), (0.1, 0.2, 0.0, "<", CONTRADICTED), (-0.1, 0.1, 0.0, "<", INCONCLUSIVE),
])
def test_side_of(low, high, threshold, side, expected):
    assert claims.side_of(low, high, threshold, side) == expected


def test_combine():
    assert claims.combine([HOLDS, HOLDS]) == HOLDS
    assert claims.combine([HOLDS, INCONCLUSIVE]) == INCONCLUSIVE
    assert claims.combine([HOLDS, CONTRADICTED, INCONCLUSIVE]) == CONTRADICTED
    assert claims.combine([]) == INCONCLUSIVE


# ----------------------------------------------------------------------------- claims


def residual_cells(dataset, small, large_08, large_10):
    return {(dataset, "residual", 0.1): small, (dataset, "residual", 0.8): large_08, (dataset, "residual", 1.0): large_10}


def test_c1_holds_when_large_h_is_worse_and_spreads_much_more():
    good = 0.95 + WOBBLE
    bad = 0.70 + 10 * WOBBLE  # 25 points worse, 10x the spread
    parts = claims.claim_c1(table(residual_cells("wine", good, bad, bad)))
    assert len(parts) == 4 and {p.verdict for p in parts} == {HOLDS}
    assert claims.combine(p.verdict for p in parts) == HOLDS


def test_c1_contradicted_when_large_h_is_better():
    good = 0.95 + WOBBLE
    parts = claims.claim_c1(table(residual_cells("wine", good - 0.2, good, good)))
    assert [p.verdict for p in parts if p.effect == "mean difference"] == [CONTRADICTED, CONTRADICTED]
    assert claims.combine(p.verdict for p in parts) == CONTRADICTED


def test_c1_inconclusive_when_ten_noisy_trials_cannot_tell():
    small = 0.90 + 5 * WOBBLE
    large = 0.895 + 5 * WOBBLE[::-1]  # half a point lower on average, same spread: CIs straddle
    parts = claims.claim_c1(table(residual_cells("wine", small, large, large)))
    accuracy_parts = [p for p in parts if p.effect == "mean difference"]
    assert {p.verdict for p in accuracy_parts} == {INCONCLUSIVE}
    spread_parts = [p for p in parts if p.effect == "std ratio"]
    assert all(p.estimate == pytest.approx(1.0) for p in spread_parts)
    assert {p.verdict for p in spread_parts} <= {INCONCLUSIVE, CONTRADICTED}


def test_c2_near_optimal_within_one_point_of_the_best_other_block():
    cells = {
        ("wine", "residual", 0.1): 0.955 + WOBBLE,
        ("wine", "batchnorm", 0.1): 0.90 + WOBBLE, ("wine", "batchnorm", 0.5): 0.96 + WOBBLE,  # best h 0.5
        ("wine", "shrinkage", 0.1): 0.95 + WOBBLE, ("wine", "shrinkage", 1.0): 0.80 + WOBBLE,  # best h 0.1
    }
    parts = claims.claim_c2(table(cells))
    assert [p.comparison for p in parts] == [
        "residual h=0.1 - batchnorm at its best h=0.5", "residual h=0.1 - shrinkage at its best h=0.1"]
    # 0.5 points below the best batch norm: within NEAR = 1 point -> holds; above shrinkage -> holds
    assert [p.verdict for p in parts] == [HOLDS, HOLDS]
    cells[("wine", "batchnorm", 0.5)] = 0.99 + WOBBLE  # now 3.5 points better than residual
    assert claims.claim_c2(table(cells))[0].verdict == CONTRADICTED


def test_c3_needs_twice_the_standard_deviation():
    small = 0.9 + WOBBLE
    for factor, expected in [(5.0, HOLDS), (1.0, CONTRADICTED)]:
        cells = {("wine", "residual", 0.1): small, ("wine", "residual", 1.0): 0.9 + factor * WOBBLE}
        (part,) = claims.claim_c3(table(cells))
        assert part.estimate == pytest.approx(factor)
        assert part.verdict == expected


def test_c4_and_c6_batch_norm_against_residual():
    cells = {
        ("wine", "residual", 1.0): 0.70 + 8 * WOBBLE, ("wine", "batchnorm", 1.0): 0.90 + WOBBLE,
        ("wine", "residual", 0.1): 0.95 + WOBBLE, ("wine", "batchnorm", 0.1): 0.94 + 3 * WOBBLE,
    }
    c4 = claims.claim_c4(table(cells))
    assert [p.verdict for p in c4] == [HOLDS, HOLDS]
    c6 = claims.claim_c6(table(cells))
    assert [p.verdict for p in c6] == [HOLDS, HOLDS]  # 1 point worse, 3x the spread
    cells[("wine", "batchnorm", 0.1)] = 0.99 + 0.5 * WOBBLE  # better by 4 points and steadier
    assert [p.verdict for p in claims.claim_c6(table(cells))] == [CONTRADICTED, CONTRADICTED]


def test_c5_sensitivity_is_the_per_trial_range_over_h():
    cells = {}
    for h, drop in [(0.1, 0.0), (0.5, 0.05), (1.0, 0.30)]:
        cells[("wine", "residual", h)] = 0.95 - drop + WOBBLE
        cells[("wine", "batchnorm", h)] = 0.95 - drop / 10 + WOBBLE
    t = table(cells)
    np.testing.assert_allclose(claims.sensitivity(t, "wine", "residual"), np.full(TRIALS, 0.30), atol=1e-12)
    np.testing.assert_allclose(claims.sensitivity(t, "wine", "batchnorm"), np.full(TRIALS, 0.03), atol=1e-12)
    (part,) = claims.claim_c5(t)
    assert part.estimate == pytest.approx(0.27) and part.verdict == HOLDS


def test_c7_deeper_abalone_and_synthetic_claims():
    base = table({("abalone", "residual", h): 0.60 + WOBBLE for h in (0.1, 0.2, 0.3)})
    # the UCI table holds every dataset; Wine's depth (20) comes first and must not be read
    base = pd.concat([table({("wine", "residual", 0.1): 0.9 + WOBBLE}).assign(depth=20), base], ignore_index=True)
    deeper = table({("abalone", "residual", h): 0.63 + WOBBLE for h in (0.1, 0.2, 0.3)}).assign(depth=100)
    parts = claims.claim_c7(base, deeper)
    assert [p.verdict for p in parts] == [HOLDS] * 3
    assert parts[0].comparison == "residual depth 100 - depth 50, h=0.1"
    synthetic = table({
        ("synthetic", "residual", 0.1): np.clip(0.995 + 0.1 * WOBBLE, 0, 1),
        ("synthetic", "residual", 1.0): 0.80 + 5 * WOBBLE,
        ("synthetic", "batchnorm", 0.1): 0.90 + WOBBLE,
        ("synthetic", "batchnorm", 1.0): 0.85 + WOBBLE,
    })
    s2 = {p.comparison: p.verdict for p in claims.claim_s2(synthetic)}
    assert s2 == {"residual h=0.1": HOLDS, "batchnorm h=0.1": CONTRADICTED}
    s1 = claims.claim_s1(synthetic)
    assert [(p.comparison, p.verdict) for p in s1 if p.effect == "mean difference"] == [
        ("batchnorm h=0.1 - h=1", HOLDS), ("residual h=0.1 - h=1", HOLDS)]


def test_missing_results_name_what_is_missing():
    with pytest.raises(KeyError, match="dataset='wine', block='residual', h=0.8"):
        claims.claim_c1(table({("wine", "residual", 0.1): 0.9 + WOBBLE, ("wine", "residual", 1.0): 0.9 + WOBBLE}))


def test_summary_combines_parts_per_dataset_and_overall():
    good, bad = 0.95 + WOBBLE, 0.70 + 10 * WOBBLE
    cells = {**residual_cells("wine", good, bad, bad), **residual_cells("adult", good, good, good)}
    parts = pd.DataFrame([vars(v) for v in claims.claim_c1(table(cells))])
    summary = claims.summarise(parts)
    verdicts = dict(zip(summary["dataset"], summary["verdict"]))
    assert verdicts == {"wine": HOLDS, "adult": CONTRADICTED, "(overall)": CONTRADICTED}


# ----------------------------------------------------------------------------- propagation


def test_reversals_ignore_small_steps():
    assert claims.reversals(np.array([0.5, 0.6, 0.5, 0.6, 0.5])) == 3
    assert claims.reversals(np.array([0.5, 0.505, 0.5, 0.6, 0.7])) == 0  # the wiggle is below 0.01
    assert claims.reversals(np.linspace(0.5, 1.0, 20)) == 0


def propagation(configs: dict) -> pd.DataFrame:
    """{config: [curve per trial]} -> a propagation table."""
    rows = [dict(config=c, trial=t, layer=layer, accuracy=float(a))
            for c, curves in configs.items() for t, curve in enumerate(curves) for layer, a in enumerate(curve)]
    return pd.DataFrame(rows)


def test_propagation_claims_on_known_curves():
    layers = np.arange(101)
    zigzag = 0.8 + 0.05 * np.sign(np.sin(layers / 3.0))  # ends near 0.8, reverses many times
    deep = np.arange(501)
    fast = np.minimum(1.0, 0.5 + deep / 150)  # reaches 0.99 at layer 74
    slow = np.minimum(1.0, 0.5 + deep / 600)  # reaches 0.99 only at layer 294
    t = propagation({
        "residual h=1, 100 blocks": [zigzag + 0.01 * k / 10 for k in range(10)],
        "residual h=0.1, 500 blocks": [fast] * 9 + [slow],
        "shrinkage h=1, 100 blocks": [0.5 + 0.1 * np.sin(layers)] * 10,  # max 0.6 < 0.7
        "shrinkage h=0.1, 100 blocks": [np.full(101, 0.85 + 0.01 * (k - 4.5) / 4.5) for k in range(10)],
        "shrinkage h=0.1, 500 blocks": [np.full(501, 0.6)] * 10,  # far from 0.85
        "batchnorm h=1, 100 blocks": [np.full(101, 0.7 + 0.01 * k) for k in range(10)],  # below zigzag's 0.8
        "batchnorm h=0.1, 500 blocks": [slow] * 10,
    })
    verdicts = {(p.claim, p.dataset, p.comparison): p.verdict for p in claims.claim_p(t)}
    by_claim = {}
    for (claim, _, _), verdict in verdicts.items():
        by_claim.setdefault(claim, []).append(verdict)
    assert by_claim["P1"] == [HOLDS, HOLDS]  # oscillates, about 0.8
    assert by_claim["P2"] == [HOLDS]  # 9 of 10 before layer 200
    assert by_claim["P3"] == [HOLDS]
    assert by_claim["P4"] == [HOLDS, CONTRADICTED]  # 100 blocks about 0.85; 500 blocks at 0.6
    assert by_claim["P5"] == [HOLDS]
    assert by_claim["P6"] == [CONTRADICTED]  # reaches 0.99 only at layer 294

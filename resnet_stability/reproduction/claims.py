"""The paper's claims as code: each a function of a results table, returning verdicts.

Zhang & Wynter state their findings in words ("reduced accuracy and a large variance",
"near-optimal", "much less volatile"). Each claim here turns one statement into
effect sizes with 95% confidence intervals and a verdict by a rule written down
before any reproduction run (the rules and thresholds below are the protocol; they
are not tuned to the results):

- **holds**: the interval lies on the claimed side of the threshold;
- **contradicted**: the interval lies on the other side;
- **inconclusive**: the interval straddles it (ten trials cannot tell).

A claim with several parts (say, lower accuracy *and* larger spread) holds when every
part holds, is contradicted when any part is contradicted, and is inconclusive
otherwise; a claim over several datasets ("in every dataset") likewise.

**Pairing.** Trial t uses the same train/test split for every block and every h
(:mod:`resnet_stability.sweep.experiment`), so two settings are compared trial by trial:

- mean differences: percentile bootstrap over trials of the mean paired difference
  (10 000 resamples of the trial indices, seed 0: :mod:`resnet_stability.bootstrap`),
  with an exact two-sided sign-flip permutation p-value of the paired differences (all
  2^n sign patterns for n <= 16);
- ratios of standard deviations: the same paired bootstrap of std(a)/std(b) (sample
  standard deviations, ddof = 1; a resample with std(b) = 0 counts as an infinite ratio
  when std(a) > 0 and as 1 when both are 0).

Thresholds (fixed before the runs):

- "near-optimal", "not better": within :data:`NEAR` = 0.01 (one percentage point) of
  test accuracy;
- "large", "much", "dramatically" (of a spread): a standard-deviation ratio of at least
  :data:`MUCH` = 2 (four times the variance), the interval excluding 1;
- "reaches 1.0 or nearly": a mean test accuracy of at least :data:`NEARLY_ONE` = 0.98.

Propagation claims (Figs 2-7) are about single networks watched layer by layer: the
accuracy of a trained network's own head applied to each layer's state, on the
synthetic test set, for 10 seeds per configuration
(:mod:`resnet_stability.reproduction`). Their thresholds:

- "reaches 1.0 before layer L": a layer < L with accuracy >= :data:`REACHED` = 0.99;
  holds if at least 8 of the 10 networks do, contradicted if at most 2 do;
- "stays below a": every layer after the input below a, with the same 8-of-10 rule;
- "about a": the 95% CI of the mean final-layer accuracy within a ± :data:`ABOUT` = 0.1
  (contradicted if it lies outside that band);
- "oscillates": at least :data:`REVERSALS` = 4 reversals of direction of the accuracy
  curve over the layers, ignoring steps below 0.01 (95% CI of the mean count).

Accuracies are the ``test_accuracy`` column: a diverged member is scored as the
diverged network it is (``experiment.DIVERGED_RULE``).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd

from resnet_stability.bootstrap import bootstrap_mean, bootstrap_std_ratio

NEAR = 0.01
MUCH = 2.0
NEARLY_ONE = 0.98
REACHED = 0.99
ABOUT = 0.1
REVERSALS = 4
MOST, FEW = 8, 2  # of 10 networks
HOLDS, CONTRADICTED, INCONCLUSIVE = "holds", "contradicted", "inconclusive"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """One checked part of a claim on one dataset (or on the whole study)."""

    claim: str  # e.g. "C1"
    dataset: str
    comparison: str  # what was compared, e.g. "residual h=1.0 - h=0.1"
    effect: str  # "mean difference", "std ratio", "mean"
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float  # sign-flip permutation p of paired differences; NaN where not applicable
    n: int  # trials
    rule: str
    verdict: str


# ----------------------------------------------------------------------------- statistics


def sign_flip_p(differences: np.ndarray) -> float:
    """Exact two-sided p-value of a paired sign-flip permutation test of mean difference 0.

    Under the null each difference is as likely negative as positive; p is the share of
    the 2^n sign patterns whose |mean| is at least the observed one (n <= 16).
    """
    d = np.asarray(differences, dtype=float)
    if len(d) > 16:
        raise ValueError(f"exact sign-flip test for at most 16 pairs, got {len(d)}")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    observed = abs(d.mean())
    return float(np.mean(np.abs(signs @ d / len(d)) >= observed - 1e-12))


# ----------------------------------------------------------------------------- verdict rules


def side_of(low: float, high: float, threshold: float, claimed: str) -> str:
    """Verdict for an interval against a threshold on the ``claimed`` side (">" or "<")."""
    if claimed == ">":
        return HOLDS if low > threshold else CONTRADICTED if high < threshold else INCONCLUSIVE
    if claimed == "<":
        return HOLDS if high < threshold else CONTRADICTED if low > threshold else INCONCLUSIVE
    raise ValueError(f"claimed must be '>' or '<', got {claimed!r}")


def combine(verdicts) -> str:
    """All parts hold -> holds; any contradicted -> contradicted; else inconclusive."""
    verdicts = list(verdicts)
    if not verdicts:
        return INCONCLUSIVE
    if any(v == CONTRADICTED for v in verdicts):
        return CONTRADICTED
    return HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def accuracies(table: pd.DataFrame, dataset: str, block: str, h: float) -> pd.Series:
    """Test accuracy by trial of one (dataset, block, h); KeyError naming what is missing."""
    rows = table[(table["dataset"] == dataset) & (table["block"] == block) & np.isclose(table["h"], h)]
    if rows.empty:
        raise KeyError(f"no results for dataset={dataset!r}, block={block!r}, h={h}")
    return rows.set_index("trial")["test_accuracy"].sort_index()


def _paired(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    trials = a.index.intersection(b.index)
    if len(trials) < 2:
        raise ValueError(f"need at least 2 paired trials, got {len(trials)}")
    return a.loc[trials].to_numpy(float), b.loc[trials].to_numpy(float)


def mean_difference(claim, dataset, comparison, a, b, threshold, claimed) -> Verdict:
    """Paired mean(a - b) against ``threshold`` on the ``claimed`` side."""
    a, b = _paired(a, b)
    estimate, low, high = bootstrap_mean(a - b)
    rule = f"95% CI of mean(a - b) {claimed} {threshold:g}"
    return Verdict(claim, dataset, comparison, "mean difference", estimate, low, high, sign_flip_p(a - b), len(a),
                   rule, side_of(low, high, threshold, claimed))


def spread_ratio(claim, dataset, comparison, a, b, threshold=1.0) -> Verdict:
    """"a spreads (``threshold`` times) more than b": holds if the 95% CI of
    std(a)/std(b) lies above 1 and the estimate is at least ``threshold``; contradicted
    if the CI lies below ``threshold``; inconclusive otherwise."""
    a, b = _paired(a, b)
    estimate, low, high = bootstrap_std_ratio(a, b)
    if low > 1.0 and estimate >= threshold:
        verdict = HOLDS
    elif high < threshold:
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
    rule = f"std ratio >= {threshold:g} with its 95% CI above 1 (contradicted if the CI is below {threshold:g})"
    return Verdict(claim, dataset, comparison, "std ratio", estimate, low, high, float("nan"), len(a), rule, verdict)


def mean_level(claim, dataset, comparison, a, threshold) -> Verdict:
    """mean(a) >= ``threshold``: the 95% CI against the threshold."""
    a = a.to_numpy(float)
    estimate, low, high = bootstrap_mean(a)
    verdict = HOLDS if low >= threshold else CONTRADICTED if high < threshold else INCONCLUSIVE
    rule = f"95% CI of the mean >= {threshold:g}"
    return Verdict(claim, dataset, comparison, "mean", estimate, low, high, float("nan"), len(a), rule, verdict)


# ----------------------------------------------------------------------------- the claims

SMALL_H = 0.1
LARGE_H = (0.8, 1.0)
UCI = ("wine", "abalone", "absenteeism", "autism", "adult")


def _datasets(table: pd.DataFrame, names=UCI) -> list[str]:
    present = set(table["dataset"])
    return [name for name in names if name in present]


def claim_c1(table: pd.DataFrame) -> list[Verdict]:
    """C1: in every dataset the residual block at h = 0.8 and 1.0 has reduced test
    accuracy and a large variance compared with h = 0.1."""
    out = []
    for d in _datasets(table):
        small = accuracies(table, d, "residual", SMALL_H)
        for h in LARGE_H:
            large = accuracies(table, d, "residual", h)
            comparison = f"residual h={h:g} vs h={SMALL_H:g}"
            out.append(mean_difference("C1", d, comparison, large, small, 0.0, "<"))
            out.append(spread_ratio("C1", d, comparison, large, small, MUCH))
    return out


def _best_h(table: pd.DataFrame, dataset: str, block: str) -> float:
    rows = table[(table["dataset"] == dataset) & (table["block"] == block)]
    means = rows.groupby("h")["test_accuracy"].mean()
    return float(means.idxmax())


def claim_c2(table: pd.DataFrame) -> list[Verdict]:
    """C2: the residual block with reduced h (h = 0.1) is optimal or near-optimal (within
    NEAR) compared with batch norm and shrinkage, each at its own best h."""
    out = []
    for d in _datasets(table):
        residual = accuracies(table, d, "residual", SMALL_H)
        for other in ("batchnorm", "shrinkage"):
            h = _best_h(table, d, other)
            comparison = f"residual h={SMALL_H:g} - {other} at its best h={h:g}"
            out.append(mean_difference("C2", d, comparison, residual, accuracies(table, d, other, h), -NEAR, ">"))
    return out


def claim_c3(table: pd.DataFrame) -> list[Verdict]:
    """C3: the residual block's test-accuracy variance is dramatically smaller at h = 0.1
    than at h = 1 (standard deviation at least MUCH times smaller)."""
    return [
        spread_ratio("C3", d, "residual h=1 vs h=0.1", accuracies(table, d, "residual", 1.0),
                     accuracies(table, d, "residual", SMALL_H), MUCH)
        for d in _datasets(table)
    ]


def claim_c4(table: pd.DataFrame) -> list[Verdict]:
    """C4: batch norm at h = 1 is better than the residual block at h = 1 and much less
    volatile (standard deviation at least MUCH times smaller)."""
    out = []
    for d in _datasets(table):
        bn, res = accuracies(table, d, "batchnorm", 1.0), accuracies(table, d, "residual", 1.0)
        out.append(mean_difference("C4", d, "batchnorm h=1 - residual h=1", bn, res, 0.0, ">"))
        out.append(spread_ratio("C4", d, "residual h=1 vs batchnorm h=1", res, bn, MUCH))
    return out


def sensitivity(table: pd.DataFrame, dataset: str, block: str) -> pd.Series:
    """Per trial, the range over h of the test accuracy (max - min across the h grid)."""
    rows = table[(table["dataset"] == dataset) & (table["block"] == block)]
    if rows.empty:
        raise KeyError(f"no results for dataset={dataset!r}, block={block!r}")
    by_trial = rows.groupby("trial")["test_accuracy"]
    return (by_trial.max() - by_trial.min()).sort_index()


def claim_c5(table: pd.DataFrame) -> list[Verdict]:
    """C5: batch norm is less sensitive to h than the residual block (per trial, the
    range of test accuracy over the h grid is smaller)."""
    return [
        mean_difference("C5", d, "range over h: residual - batchnorm", sensitivity(table, d, "residual"),
                        sensitivity(table, d, "batchnorm"), 0.0, ">")
        for d in _datasets(table)
    ]


def claim_c6(table: pd.DataFrame) -> list[Verdict]:
    """C6: at h = 0.1 batch norm is not better than the residual block (at most NEAR
    better) and its variance is higher."""
    out = []
    for d in _datasets(table):
        bn, res = accuracies(table, d, "batchnorm", SMALL_H), accuracies(table, d, "residual", SMALL_H)
        out.append(mean_difference("C6", d, "batchnorm h=0.1 - residual h=0.1", bn, res, NEAR, "<"))
        out.append(spread_ratio("C6", d, "batchnorm h=0.1 vs residual h=0.1", bn, res, 1.0))
    return out


def claim_c7(table: pd.DataFrame, deeper: pd.DataFrame) -> list[Verdict]:
    """C7 (Abalone): a deeper residual network (``deeper``: the same presets, more blocks)
    is more accurate at small h (h = 0.1, 0.2, 0.3)."""
    abalone = table[table["dataset"] == "abalone"]
    depth, deep_depth = int(abalone["depth"].iloc[0]), int(deeper["depth"].iloc[0])
    return [
        mean_difference("C7", "abalone", f"residual depth {deep_depth} - depth {depth}, h={h:g}",
                        accuracies(deeper, "abalone", "residual", h), accuracies(table, "abalone", "residual", h),
                        0.0, ">")
        for h in (0.1, 0.2, 0.3)
    ]


def claim_s1(table: pd.DataFrame) -> list[Verdict]:
    """S1 (synthetic, Fig 8): h = 0.1 gives a net advantage over h = 1 in accuracy and in
    the variance of accuracy, for each block."""
    out = []
    for block in sorted(set(table["block"])):
        small, large = accuracies(table, "synthetic", block, SMALL_H), accuracies(table, "synthetic", block, 1.0)
        out.append(mean_difference("S1", "synthetic", f"{block} h=0.1 - h=1", small, large, 0.0, ">"))
        out.append(spread_ratio("S1", "synthetic", f"{block} h=1 vs h=0.1", large, small, 1.0))
    return out


def claim_s2(table: pd.DataFrame) -> list[Verdict]:
    """S2 (synthetic, Fig 8): the residual and batch-norm blocks at h = 0.1 reach an
    accuracy of 1.0 or nearly (mean at least NEARLY_ONE)."""
    return [
        mean_level("S2", "synthetic", f"{block} h=0.1", accuracies(table, "synthetic", block, SMALL_H), NEARLY_ONE)
        for block in ("residual", "batchnorm")
        if block in set(table["block"])
    ]


# ----------------------------------------------------------------------------- propagation


def _curves(table: pd.DataFrame, config: str) -> dict[int, np.ndarray]:
    rows = table[table["config"] == config]
    if rows.empty:
        raise KeyError(f"no propagation results for {config!r}")
    return {t: g.sort_values("layer")["accuracy"].to_numpy(float) for t, g in rows.groupby("trial")}


def reversals(curve: np.ndarray, tolerance: float = 0.01) -> int:
    """Changes of direction of ``curve``, ignoring steps smaller than ``tolerance``."""
    steps = np.diff(curve)
    signs = np.sign(steps[np.abs(steps) >= tolerance])
    return int(np.sum(signs[1:] != signs[:-1]))


def _count_rule(claim, config, comparison, passed: list[bool]) -> Verdict:
    k, n = int(sum(passed)), len(passed)
    verdict = HOLDS if k >= MOST * n / 10 else CONTRADICTED if k <= FEW * n / 10 else INCONCLUSIVE
    rule = f"holds if >= {MOST}/10 networks do, contradicted if <= {FEW}/10"
    return Verdict(claim, config, comparison, "networks that do", float(k), float("nan"), float("nan"),
                   float("nan"), n, rule, verdict)


def reaches_before(claim, table, config, layer_limit) -> Verdict:
    """The head's accuracy reaches REACHED at some layer < ``layer_limit``."""
    passed = [bool(np.any(c[:layer_limit] >= REACHED)) for c in _curves(table, config).values()]
    return _count_rule(claim, config, f"accuracy >= {REACHED:g} before layer {layer_limit}", passed)


def stays_below(claim, table, config, level) -> Verdict:
    passed = [bool(np.all(c[1:] < level)) for c in _curves(table, config).values()]
    return _count_rule(claim, config, f"every layer after the input below {level:g}", passed)


def about(claim, table, config, level) -> Verdict:
    finals = np.array([c[-1] for c in _curves(table, config).values()])
    estimate, low, high = bootstrap_mean(finals)
    inside = level - ABOUT <= low and high <= level + ABOUT
    outside = high < level - ABOUT or low > level + ABOUT
    verdict = HOLDS if inside else CONTRADICTED if outside else INCONCLUSIVE
    rule = f"95% CI of the mean final-layer accuracy within {level:g} ± {ABOUT:g}"
    return Verdict(claim, config, f"final-layer accuracy about {level:g}", "mean", estimate, low, high,
                   float("nan"), len(finals), rule, verdict)


def oscillates(claim, table, config) -> Verdict:
    counts = np.array([reversals(c) for c in _curves(table, config).values()], dtype=float)
    estimate, low, high = bootstrap_mean(counts)
    verdict = HOLDS if low >= REVERSALS else CONTRADICTED if high < REVERSALS else INCONCLUSIVE
    rule = f"95% CI of the mean number of reversals >= {REVERSALS}"
    return Verdict(claim, config, "reversals of the layer-accuracy curve", "mean", estimate, low, high,
                   float("nan"), len(counts), rule, verdict)


def _final(table, config) -> pd.Series:
    return pd.Series({t: c[-1] for t, c in _curves(table, config).items()}).sort_index()


def claim_p(table: pd.DataFrame) -> list[Verdict]:
    """P1-P6, the propagation figures (Figs 2-7), on the propagation table."""
    res1, res01 = "residual h=1, 100 blocks", "residual h=0.1, 500 blocks"
    return [
        oscillates("P1", table, res1),
        about("P1", table, res1, 0.8),
        reaches_before("P2", table, res01, 200),
        stays_below("P3", table, "shrinkage h=1, 100 blocks", 0.7),
        about("P4", table, "shrinkage h=0.1, 100 blocks", 0.85),
        about("P4", table, "shrinkage h=0.1, 500 blocks", 0.85),
        mean_difference("P5", "batchnorm h=1, 100 blocks", "final-layer accuracy: batchnorm h=1 - residual h=1",
                        _final(table, "batchnorm h=1, 100 blocks"), _final(table, res1), 0.0, "<"),
        reaches_before("P6", table, "batchnorm h=0.1, 500 blocks", 250),
    ]


#: claim id -> the paper's statement (condensed), in the order of REPRODUCTION.md.
STATEMENTS = {
    "C1": "In every dataset, the residual block at h = 0.8 and h = 1.0 has reduced test accuracy and a large "
          "variance compared with small h.",
    "C2": "The residual block with reduced h achieves optimal or near-optimal accuracy compared with batch norm "
          "or the shrinkage block.",
    "C3": "The variance of the residual block's test accuracy is dramatically reduced at h = 0.1.",
    "C4": "Batch norm at h = 1 is better and much less volatile than the residual block at h = 1.",
    "C5": "Batch norm is less sensitive to h than the residual block.",
    "C6": "Batch norm is not better than the residual block at h = 0.1, and its variance is higher.",
    "C7": "Abalone: increasing the depth improves the residual block's accuracy further at small h.",
    "S1": "Synthetic data (100 blocks): h = 0.1 gives a net advantage in accuracy and in variance of accuracy.",
    "S2": "Synthetic data: the residual and batch-norm blocks at h = 0.1 reach 1.0 or nearly.",
    "P1": "Propagation: plain ResNet (h = 1, 100 blocks, no batch norm) oscillates and reaches about 0.8.",
    "P2": "Propagation: h = 0.1 with 500 blocks reaches 1.0 before layer 200.",
    "P3": "Propagation: shrinkage at h = 1 stays below 0.7.",
    "P4": "Propagation: shrinkage at h = 0.1 is about 0.85 with 100 and with 500 blocks.",
    "P5": "Propagation: batch norm at h = 1 stays below plain ResNet.",
    "P6": "Propagation: batch norm at h = 0.1 with 500 blocks reaches 1.0 by layer 250.",
}

UCI_CLAIMS = {"C1": claim_c1, "C2": claim_c2, "C3": claim_c3, "C4": claim_c4, "C5": claim_c5, "C6": claim_c6}
SYNTHETIC_CLAIMS = {"S1": claim_s1, "S2": claim_s2}


def check_claims(uci: pd.DataFrame | None = None, deeper_abalone: pd.DataFrame | None = None,
                 synthetic: pd.DataFrame | None = None, propagation: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every part of every claim that the given tables allow: one row per :class:`Verdict`."""
    verdicts: list[Verdict] = []
    if uci is not None:
        for function in UCI_CLAIMS.values():
            verdicts += function(uci)
        if deeper_abalone is not None:
            verdicts += claim_c7(uci, deeper_abalone)
    if synthetic is not None:
        for function in SYNTHETIC_CLAIMS.values():
            verdicts += function(synthetic)
    if propagation is not None:
        verdicts += claim_p(propagation)
    return pd.DataFrame([dataclasses.asdict(v) for v in verdicts])


def summarise(parts: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, dataset) with the combined verdict, then one per claim overall."""
    rows = []
    for claim in [c for c in STATEMENTS if c in set(parts["claim"])]:
        of_claim = parts[parts["claim"] == claim]
        per_dataset = []
        for dataset, group in of_claim.groupby("dataset", sort=False):
            verdict = combine(group["verdict"])
            per_dataset.append(verdict)
            rows.append(dict(claim=claim, dataset=dataset, parts=len(group), verdict=verdict,
                             detail="; ".join(f"{r.comparison}: {r.effect} {r.estimate:.3f} [{r.ci_low:.3f}, "
                                              f"{r.ci_high:.3f}] -> {r.verdict}" for r in group.itertuples())))
        rows.append(dict(claim=claim, dataset="(overall)", parts=len(of_claim), verdict=combine(per_dataset),
                         detail=STATEMENTS[claim]))
    return pd.DataFrame(rows)

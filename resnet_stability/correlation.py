"""Stability against accuracy: Spearman's rank correlation with a bootstrap interval.

The paper's thesis is that stable layer-to-layer propagation goes with accuracy. For
the members of a sweep, :func:`stability_correlations` correlates the Prop. 1
statistic ``euler_max`` (max |1 + hλ| over blocks and sample inputs,
:mod:`resnet_stability.analysis.members_spectra`) with ``test_accuracy``:

- Spearman's ρ is Pearson's correlation of the two columns' ranks, ties given their
  average rank (1-based). +inf (a diverged network whose Jacobian is not finite) ranks
  above every finite value; pairs with a NaN are dropped. ρ is NaN when fewer than 3
  pairs remain or either column is constant.
- The 95% interval is the percentile bootstrap over members: the pairs are resampled
  with replacement (``N_BOOT`` = 10 000 resamples, ``BOOT_SEED`` = 0: the resamples of
  the claims, :mod:`resnet_stability.bootstrap`), ρ recomputed on each, and the 2.5%
  and 97.5% percentiles taken over the resamples where ρ is defined.

The thesis predicts ρ < 0: larger amplification, lower accuracy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from resnet_stability.bootstrap import BOOT_SEED, N_BOOT, bootstrap_resamples

CORRELATION_COLUMNS = ["dataset", "block", "members", "n", "n_inf", "spearman", "ci_low", "ci_high"]
ALL = "all"
MIN_PAIRS = 3


def average_ranks(values) -> np.ndarray:
    """1-based ranks along the last axis, ties sharing their average rank (float64).

    ``[10, 20, 20, 30]`` -> ``[1, 2.5, 2.5, 4]``. Each row is sorted; the entries equal
    to their neighbours in the sorted row form a tie group at the 0-based positions
    first..last, and each of them gets the rank (first + last) / 2 + 1, the mean of the
    ranks first + 1, ..., last + 1 (a half-integer, exact in float64). -inf ranks first
    and +inf last, ties among them averaged alike. NaN entries get rank NaN and take no
    part in the ranking of the others (they sort after +inf, so the others keep their
    positions). This is pandas' ``rank(method="average")`` (``na_option="keep"``) bit for
    bit. A group's rank does not depend on the order of its members, so the sort need not
    be stable.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0:
        raise ValueError("average_ranks needs at least one axis, got a scalar")
    n = values.shape[-1]
    if values.size == 0:
        return np.empty(values.shape, dtype=np.float64)
    rows = np.ascontiguousarray(values.reshape(-1, n))
    offsets = np.arange(0, rows.size, n)[:, None]  # flat position of each row's start
    order = (np.argsort(rows, axis=-1) + offsets).ravel()  # flat indices, each row sorted
    ordered = rows.ravel()[order]
    size = ordered.size
    positions = np.arange(size)
    starts = np.empty(size, dtype=bool)  # a tie group starts here (NaN != NaN: each alone)
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    starts[::n] = True
    ends_reversed = np.empty(size, dtype=bool)  # a tie group ends here, read backwards
    ends_reversed[0] = True
    ends_reversed[1:] = starts[:0:-1]
    # flat position of the first member of each entry's group; and of the last member,
    # the same on the reversed array (equal to a reversed minimum.accumulate of the group
    # ends, without the np.where that one needs)
    first = np.maximum.accumulate(positions * starts)
    last_reversed = np.maximum.accumulate(positions * ends_reversed)  # size - 1 - last, backwards
    # 2 x rank = first + last + 2 in row positions, an integer: exact, as is halving it
    twice = (first - last_reversed[::-1]).reshape(rows.shape)
    twice += size + 1 - 2 * offsets
    sorted_ranks = (twice * 0.5).ravel()
    sorted_ranks[np.isnan(ordered)] = np.nan
    ranks = np.empty(size, dtype=np.float64)
    ranks[order] = sorted_ranks
    return ranks.reshape(values.shape)


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson's r along the last axis; NaN where either row is constant."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    denominator = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (a * b).sum(axis=-1) / denominator
    return np.where(denominator > 0, r, np.nan)


def _pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of one length, got shapes {x.shape} and {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def spearman(x, y) -> float:
    """Spearman's ρ of the pairs (x_k, y_k) without NaN (module docstring); NaN when
    fewer than 3 pairs remain or a column is constant."""
    x, y = _pairs(x, y)
    if len(x) < MIN_PAIRS:
        return float("nan")
    return float(_pearson_rows(average_ranks(x), average_ranks(y)))


def bootstrap_spearman(x, y, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> tuple[float, float, float]:
    """(ρ, 2.5%, 97.5%): Spearman's ρ and its percentile bootstrap interval over pairs
    (module docstring); the interval is NaN when ρ is undefined on every resample."""
    x, y = _pairs(x, y)
    rho = spearman(x, y)
    if len(x) < MIN_PAIRS:
        return rho, float("nan"), float("nan")
    idx = bootstrap_resamples(len(x), n_boot, seed)
    rhos = _pearson_rows(average_ranks(x[idx]), average_ranks(y[idx]))
    rhos = rhos[np.isfinite(rhos)]
    if not len(rhos):
        return rho, float("nan"), float("nan")
    low, high = np.percentile(rhos, [2.5, 97.5])
    return rho, float(low), float(high)


def stability_correlations(
    table: pd.DataFrame, stat: str = "euler_max", accuracy: str = "test_accuracy", n_boot: int = N_BOOT
) -> pd.DataFrame:
    """Spearman's ρ of ``stat`` against ``accuracy`` per dataset, for each block and for
    all blocks together (``block`` = "all"), over all members (``members`` = "all") and
    over the members that did not diverge ("not_diverged"): columns
    :data:`CORRELATION_COLUMNS` (``n``: pairs used, ``n_inf``: of them with an infinite
    statistic). Members whose statistic is NaN (blocks it does not apply to) are left out.
    """
    missing = [c for c in ("dataset", "block", stat, accuracy, "diverged") if c not in table.columns]
    if missing:
        raise ValueError(f"the results table lacks the column(s) {', '.join(missing)} (a sweep with the statistic)")
    rows = []
    for dataset, per_dataset in table.groupby("dataset", sort=False):
        groups = [(block, rows_) for block, rows_ in per_dataset.groupby("block", sort=False)] + [(ALL, per_dataset)]
        for block, group in groups:
            for members, subset in ((ALL, group), ("not_diverged", group[~group["diverged"].astype(bool)])):
                subset = subset[subset[stat].notna() & subset[accuracy].notna()]
                rho, low, high = bootstrap_spearman(subset[stat], subset[accuracy], n_boot=n_boot)
                rows.append(dict(dataset=dataset, block=block, members=members, n=len(subset),
                                 n_inf=int(np.isinf(subset[stat]).sum()), spearman=rho, ci_low=low, ci_high=high))
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


KEYS = ["dataset", "block", "h", "trial"]


def with_statistic(table: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """``outcomes`` (rows keyed by dataset, block, h, trial: a noise or over-time table)
    with each member's ``euler_max`` and ``diverged`` from the results ``table``."""
    columns = KEYS + ["euler_max", "diverged"]
    missing = [c for c in columns if c not in table.columns] + [c for c in KEYS if c not in outcomes.columns]
    if missing:
        raise ValueError(f"the tables lack the column(s) {', '.join(missing)}")
    return outcomes.merge(table[columns], on=KEYS, how="inner", validate="many_to_one")


def noise_losses(table: pd.DataFrame, noise: pd.DataFrame) -> pd.DataFrame:
    """The noise table's rows at levels > 0 with each member's ``euler_max``,
    ``diverged`` and ``accuracy_lost``: its clean accuracy (level 0, same kind) minus its
    accuracy at the level."""
    merged = with_statistic(table, noise)
    clean = merged[merged["level"] == 0].set_index(KEYS + ["noise"])["accuracy"]
    merged = merged[merged["level"] > 0].copy()
    merged["accuracy_lost"] = clean.reindex(pd.MultiIndex.from_frame(merged[KEYS + ["noise"]])).to_numpy() - merged["accuracy"]
    return merged


def noise_loss_correlations(table: pd.DataFrame, noise: pd.DataFrame, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Spearman's ρ of ``euler_max`` against the accuracy lost under noise
    (:func:`noise_losses`), per noise kind and level > 0 (columns ``noise``, ``level``
    then :data:`CORRELATION_COLUMNS`). The thesis predicts ρ > 0: more amplification,
    more accuracy lost."""
    return _by(noise_losses(table, noise), ["noise", "level"], "accuracy_lost", n_boot)


def window_correlations(table: pd.DataFrame, over_time: pd.DataFrame, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Spearman's ρ of ``euler_max`` against the accuracy on each later time window
    (columns ``window`` then :data:`CORRELATION_COLUMNS`)."""
    return _by(with_statistic(table, over_time), ["window"], "accuracy", n_boot)


def _by(merged: pd.DataFrame, by: list[str], outcome: str, n_boot: int) -> pd.DataFrame:
    parts = []
    for values, group in merged.groupby(by, sort=True):  # values: a tuple, one per column of ``by``
        part = stability_correlations(group, accuracy=outcome, n_boot=n_boot)
        parts.append(part.assign(**dict(zip(by, values))))
    columns = by + CORRELATION_COLUMNS
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)

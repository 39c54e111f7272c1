"""Percentile bootstrap of paired trials: the resamples, and intervals of a mean and of
a ratio of standard deviations.

Every interval of the package is drawn from the same resamples: :data:`N_BOOT` =
10 000 draws of the indices with replacement from ``numpy.random.default_rng``
(:data:`BOOT_SEED` = 0), so two comparisons of n trials resample the same trials
(:func:`bootstrap_resamples`). The paper's claims
(:mod:`resnet_stability.reproduction.claims`) and the correlation of stability with
accuracy (:mod:`resnet_stability.correlation`) use them.
"""

from __future__ import annotations

import numpy as np

N_BOOT = 10_000
BOOT_SEED = 0


def bootstrap_resamples(n: int, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> np.ndarray:
    """(n_boot, n) trial indices drawn with replacement (the same for every comparison of n trials)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_mean(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, 2.5%, 97.5% percentile bootstrap bounds) of ``values`` (e.g. paired differences)."""
    values = np.asarray(values, dtype=float)
    means = values[bootstrap_resamples(len(values))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(low), float(high)


def _std_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """std(a)/std(b) along the last axis (ddof = 1); 0/0 -> 1, x/0 -> inf."""
    sa, sb = a.std(axis=-1, ddof=1), b.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = sa / sb
    return np.where(sb > 0, ratio, np.where(sa > 0, np.inf, 1.0))


def bootstrap_std_ratio(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """(std(a)/std(b), 2.5%, 97.5% bounds), resampling the trials of a and b together (paired)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    idx = bootstrap_resamples(len(a))
    ratios = _std_ratio(a[idx], b[idx])
    low, high = np.percentile(ratios, [2.5, 97.5], method="nearest")
    return float(_std_ratio(a, b)), float(low), float(high)

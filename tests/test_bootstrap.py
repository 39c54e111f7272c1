"""Tests for the percentile bootstrap of paired trials (``resnet_stability.bootstrap``) on
inputs whose intervals are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from resnet_stability.bootstrap import bootstrap_mean, bootstrap_std_ratio

WOBBLE = np.array([0.01, -0.01, 0.02, -0.02, 0.0, 0.015, -0.015, 0.005, -0.005, 0.0])  # mean 0, std ~0.012


def test_bootstrap_of_constant_and_of_scaled_values():
    mean, low, high = bootstrap_mean(np.full(10, 0.25))
    assert (mean, low, high) == (0.25, 0.25, 0.25)
    b = np.arange(10.0)
    ratio, low, high = bootstrap_std_ratio(3 * b, b)  # every resample: exactly 3
    assert ratio == pytest.approx(3.0) and low == pytest.approx(3.0) and high == pytest.approx(3.0)
    # a constant b: infinite ratio against a spread a, 1 against a constant a
    assert bootstrap_std_ratio(b, np.zeros(10))[0] == np.inf
    assert bootstrap_std_ratio(np.ones(10), np.zeros(10))[0] == 1.0


def test_bootstrap_interval_covers_the_mean_of_noisy_differences():
    d = 0.05 + WOBBLE
    mean, low, high = bootstrap_mean(d)
    assert mean == pytest.approx(0.05)
    assert low < 0.05 < high and high - low < 0.03

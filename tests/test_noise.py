"""Tests for the input perturbations of noise robustness (``resnet_stability.sweep.noise``)."""

from __future__ import annotations

import numpy as np
import pytest

from resnet_stability.sweep.noise import NoiseSource


def test_noise_is_deterministic_in_its_seed_and_shaped_as_asked():
    shape = (4, 3, 2)
    a, b = NoiseSource("gaussian", 0.5, seed=1).draw(shape), NoiseSource("gaussian", 0.5, seed=1).draw(shape)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, NoiseSource("gaussian", 0.5, seed=2).draw(shape))
    np.testing.assert_array_equal(NoiseSource("constant", 0.25, seed=0).draw(shape), np.full(shape, 0.25))
    uniform = NoiseSource("uniform", 0.5, seed=0).draw((500, 2, 2))
    assert uniform.min() >= -0.5 and uniform.max() <= 0.5 and uniform.std() > 0.2
    with pytest.raises(ValueError, match="unknown noise kind 'pink'; allowed: gaussian, uniform, constant"):
        NoiseSource("pink", 0.1, seed=0)

"""Shared fixtures for the layer and model tests.

The generic battery in ``test_blocks.py`` and ``test_models.py`` runs once per
registered block: ``block_name`` iterates ``sorted(resnet_stability.layers.BLOCKS)`` at
collection time, so a block registered later is covered without editing any test.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from resnet_stability.devices import skip_graph_rewrites
from resnet_stability.layers import BLOCKS

# The tests run the sweep's CPU configuration (devices.select_device), so the
# member = standalone equivalence tests cover the path the sweep takes.
skip_graph_rewrites()

BLOCK_NAMES = sorted(BLOCKS)


@pytest.fixture(params=BLOCK_NAMES)
def block_name(request) -> str:
    """Every registered block name, one test per block."""
    return request.param


@pytest.fixture(params=[None, 3], ids=["plain", "members3"])
def members(request):
    """Without a members axis, and with M = 3 independent networks."""
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator, so every test sees the same data on every run."""
    return np.random.default_rng(20240611)


@pytest.fixture
def perturb_weights(rng):
    """Move every variable of a layer or model away from its seeded initial value.

    Weights that a seed would regenerate identically cannot tell "loaded" from
    "re-initialised", so save/load and config tests perturb them first. Positive
    variables (BN's gamma and moving variance) stay positive.
    """

    def perturb(layer):
        for variable in layer.weights:
            value = np.asarray(variable.numpy())
            scale = rng.uniform(0.5, 1.5, size=value.shape)
            shift = rng.uniform(0.0, 0.2, size=value.shape)
            variable.assign((value * scale + shift).astype(value.dtype))
        return layer

    return perturb


@pytest.fixture
def float64():
    """Build and train in float64 for the duration of a test. Members and standalone
    networks compute the same products with different kernels (batched or not); in
    float32 such a rounding difference can flip a ReLU near 0 and, amplified by Adam,
    grow to ~lr, while in float64 they agree to ~1e-12."""
    previous, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(previous)
    keras.config.set_dtype_policy(policy)

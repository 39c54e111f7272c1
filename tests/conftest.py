"""Shared fixtures for the layer and model tests.

The generic battery in ``test_blocks.py`` and ``test_models.py`` runs once per
registered block: ``block_name`` iterates ``sorted(resnet_stability.layers.BLOCKS)`` at
collection time, so a block registered later is covered without editing any test.
"""

from __future__ import annotations

import numpy as np
import pytest

from resnet_stability.layers import BLOCKS

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

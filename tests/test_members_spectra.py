"""Tests for ``resnet_stability.analysis.members_spectra``: the Prop. 1 statistic of every
member of a members model at once, for forward-Euler blocks only.

Expected values: eigenvalues worked out by hand for linear blocks whose weights are set
directly, and the standalone spectra module on a member's own model. Which blocks have
the statistic follows their integrator (forward Euler), whatever their field or name.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from resnet_stability.analysis.members_spectra import eigenvalues, euler_summary, is_euler_block, members_euler_factors
from resnet_stability.layers import BLOCKS, RK4, LinearMultistep, Shrinkage
from resnet_stability.models import build_model


def linear_members_model(jacobians, h):
    """Members model (2 members, width 3, no stem) of linear residual blocks whose field
    is f(y) = K2 (K1 y) with K1 = I and K2 = J: Jacobian J at every point. Keras stores
    K as Kᵀ (row vectors times the kernel)."""
    model = build_model(input_dim=3, n_classes=2, depth=len(jacobians), h=h, members=2, seed=[1, 2],
                        activation="linear")
    blocks = [layer for layer in model.layers if getattr(layer, "field", None) is not None]
    for block, jac in zip(blocks, jacobians):
        block.field.kernel1.assign(np.stack([np.eye(3)] * 2))
        block.field.kernel2.assign(np.stack([np.asarray(jac, dtype=float).T] * 2))
    return model, blocks


def test_hand_made_linear_blocks_give_the_factors_known_by_hand():
    rotation = [[0.0, -2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, -3.0]]  # λ = ±2i, −3
    contracting = -np.eye(3)  # λ = −1 three times
    model, _ = linear_members_model([rotation, contracting], h=[0.5, 2.0])
    x = np.random.default_rng(0).normal(size=(7, 2, 3))
    factors = members_euler_factors(model, x)
    # h = 0.5: |1 ± i| = √2, |1 − 1.5| = 0.5; |1 − 0.5| = 0.5
    # h = 2:   |1 ± 4i| = √17, |1 − 6| = 5;   |1 − 2| = 1 (on the circle: stable)
    np.testing.assert_allclose(factors, [[math.sqrt(2), 0.5], [5.0, 1.0]], atol=1e-6)
    euler_max, share = euler_summary(factors)
    np.testing.assert_allclose(euler_max, [math.sqrt(2), 5.0], atol=1e-6)
    np.testing.assert_array_equal(share, [0.5, 0.5])


def test_non_finite_weights_give_an_infinite_statistic_not_a_crash():
    model, blocks = linear_members_model([-np.eye(3), -np.eye(3)], h=[0.5, 0.5])
    kernel = blocks[1].field.kernel2.numpy()
    kernel[1] = np.nan  # member 1's second block overflowed
    blocks[1].field.kernel2.assign(kernel)
    factors = members_euler_factors(model, np.ones((4, 2, 3)))
    np.testing.assert_allclose(factors[0], [0.5, 0.5])
    assert factors[1, 0] == 0.5 and factors[1, 1] == np.inf
    euler_max, share = euler_summary(factors)
    assert euler_max[1] == np.inf and share[1] == 0.5


@pytest.mark.parametrize("threads", [1, 3])
def test_eigenvalues_split_over_threads_are_each_matrix_own(threads):
    # upper-triangular matrices: eigenvalues = the diagonal, a different one per matrix
    rng = np.random.default_rng(0)
    diagonals = rng.normal(size=(10, 40, 4))
    matrices = np.triu(rng.normal(size=(10, 40, 4, 4)), k=1) + diagonals[..., None] * np.eye(4)
    eigs = eigenvalues(matrices, threads=threads)
    assert eigs.shape == (10, 40, 4)
    np.testing.assert_allclose(np.sort(eigs.real, axis=-1), np.sort(diagonals, axis=-1), atol=1e-12)
    np.testing.assert_array_equal(eigs.imag, 0.0)
    # and bit for bit numpy's own loop over the whole stack (threads only split it)
    np.testing.assert_array_equal(eigs, np.linalg.eigvals(matrices))


# ------------------------------------------------------------------- which blocks


def test_the_statistic_belongs_to_the_forward_euler_integrator():
    """Block classes by their default integrator (the sweep's block names), blocks by the
    integrator they were given."""
    assert {name for name, cls in BLOCKS.items() if is_euler_block(cls)} == {"residual", "batchnorm", "shrinkage"}
    assert is_euler_block(RK4(h=0.1, integrator="euler"))
    assert not is_euler_block(Shrinkage(h=0.1, integrator="rk4"))
    assert is_euler_block(Shrinkage(h=0.1)) and not is_euler_block(LinearMultistep(h=0.1))


def test_a_model_is_measured_by_its_blocks_integrators():
    """Shrinkage stepped with RK4 is refused; the rk4 block stepped with Euler is the
    residual network (same seeds) and has its factors."""
    x = np.random.default_rng(1).normal(size=(5, 2, 3))
    settings = dict(input_dim=3, n_classes=2, depth=2, h=[0.5, 1.0], members=2, seed=[1, 2])
    with pytest.raises(ValueError, match=r"\(Shrinkage, integrator 'rk4'\) is not a forward-Euler block"):
        members_euler_factors(build_model(block="shrinkage", integrator="rk4", **settings), x)
    euler_rk4 = members_euler_factors(build_model(block="rk4", integrator="euler", **settings), x)
    residual = members_euler_factors(build_model(block="residual", **settings), x)
    np.testing.assert_array_equal(euler_rk4, residual)
    assert euler_rk4.shape == (2, 2) and np.all(euler_rk4 >= 1.0 - 1e-6)

"""Tests for ``resnet_stability.analysis.spectra``: layer states (the history wired as
``build_model`` wires it), field Jacobians, their spectra and the Prop. 1 statistic
(Props 1 and 2), and the spectra figure."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from resnet_stability.analysis.spectra import block_layers, euler_statistic, field_jacobian, jacobian_spectra
from resnet_stability.analysis.spectra import layer_states, plot_spectra
from resnet_stability.models import build_model


# --- spectra -------------------------------------------------------------------------


def test_shrinkage_eigenvalues_real_nonpositive_and_euler_stable(shrinkage_model, points):
    spectra = jacobian_spectra(shrinkage_model, points)
    assert len(spectra) == 4 * len(points) * 2  # blocks x points x width
    assert set(spectra["block"]) == {0, 1, 2, 3}
    # Prop. 2: J = -K1^T diag(relu') K1 is symmetric negative semi-definite
    assert np.all(np.abs(spectra["eig_imag"]) < 1e-6)
    assert np.all(spectra["eig_real"] <= 1e-6)
    assert (spectra["eig_real"] < -1e-3).any()  # not trivially all zero
    # Prop. 1 with small h: forward Euler stable at every block
    stats = euler_statistic(spectra)
    assert list(stats.columns) == ["block", "h", "max_euler_factor", "stable"]
    assert list(stats["block"]) == [0, 1, 2, 3]
    assert np.allclose(stats["h"], 0.3)
    assert (stats["max_euler_factor"] <= 1 + 1e-6).all()
    assert stats["stable"].all()


def test_prop1_statistic_flags_large_step(points):
    # same weights (seeds do not depend on h), a step far too large for Euler
    model = build_model(2, 2, "shrinkage", depth=4, width=2, h=40.0, seed=0)
    stats = euler_statistic(jacobian_spectra(model, points))
    assert not stats["stable"].all()
    assert stats["max_euler_factor"].max() > 1.0


def test_eigenvalues_match_finite_difference_jacobian(residual_model):
    x = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32)
    states = layer_states(residual_model, x)
    block_index = 1
    block = block_layers(residual_model)[block_index]
    field = block.field
    # choose the point farthest from a ReLU kink so central differences are exact up to rounding
    pre = states[block_index] @ field.kernel1.numpy() + field.bias1.numpy()
    point = int(np.argmax(np.min(np.abs(pre), axis=1)))
    y0 = states[block_index][point].astype(np.float64)
    eps = 1e-3
    fd = np.zeros((3, 3))
    for j in range(3):
        step = np.zeros(3)
        step[j] = eps
        plus = field(np.float32([y0 + step]), training=False).numpy()[0]
        minus = field(np.float32([y0 - step]), training=False).numpy()[0]
        fd[:, j] = (plus.astype(np.float64) - minus) / (2 * eps)
    np.testing.assert_allclose(field_jacobian(block, states[block_index][point : point + 1])[0], fd, atol=1e-3)
    # and the whole batch agrees with TensorFlow's batch_jacobian
    y = tf.constant(states[block_index])
    with tf.GradientTape() as tape:
        tape.watch(y)
        f = field(y, training=False)
    np.testing.assert_allclose(field_jacobian(block, states[block_index]), tape.batch_jacobian(f, y).numpy(), atol=1e-6)

    spectra = jacobian_spectra(residual_model, x)
    rows = spectra[(spectra["block"] == block_index) & (spectra["point"] == point)]
    ours = np.sort_complex(rows["eig_real"].to_numpy() + 1j * rows["eig_imag"].to_numpy())
    expected = np.sort_complex(np.linalg.eigvals(fd))
    np.testing.assert_allclose(ours, expected, atol=1e-3)


def test_euler_factor_is_abs_one_plus_h_lambda(residual_model):
    x = np.random.default_rng(2).normal(size=(9, 3))
    spectra = jacobian_spectra(residual_model, x, max_points=5)
    assert list(spectra.columns) == [
        "block", "point", "eig_real", "eig_imag", "h", "h_eig_real", "h_eig_imag", "euler_factor"
    ]
    assert set(spectra["point"]) == set(range(5))
    lam = spectra["eig_real"].to_numpy() + 1j * spectra["eig_imag"].to_numpy()
    h = spectra["h"].to_numpy()
    assert np.allclose(h, 0.5)
    np.testing.assert_allclose(spectra["euler_factor"], np.abs(1 + h * lam), rtol=1e-12)
    np.testing.assert_allclose(spectra["h_eig_real"], (h * lam).real, rtol=1e-12)
    np.testing.assert_allclose(spectra["h_eig_imag"], (h * lam).imag, rtol=1e-12)
    stats = euler_statistic(spectra)
    for block, rows in spectra.groupby("block"):
        assert stats.loc[stats["block"] == block, "max_euler_factor"].item() == rows["euler_factor"].max()


@pytest.mark.parametrize(
    "block, options",
    [("zeros", {}), ("rk4", {}), ("shrinkage", {"integrator": "rk4"}), ("lm", {"field": "shrinkage"})],
    ids=["zeros", "rk4", "shrinkage+rk4", "lm+shrinkage"],
)
def test_layer_states_follow_the_model(block, options):
    # multistep blocks get their history as build_model wires it; head(last state) = model(x)
    model = build_model(2, 2, block, depth=4, width=2, h=0.3, seed=2, **options)
    x = np.random.default_rng(6).normal(size=(8, 2)).astype(np.float32)
    states = layer_states(model, x)
    assert len(states) == 5
    np.testing.assert_allclose(model.get_layer("head")(states[-1]).numpy(), model(x).numpy(), atol=1e-6)
    assert len(jacobian_spectra(model, x)) == 4 * 8 * 2


def test_layer_states_are_the_chain_written_out():
    """A ZeroS network (two starters, then three-step blocks): y_1 = b_0(y_0),
    y_2 = b_1(y_1), y_3 = b_2([y_2, y_1, y_0]), y_4 = b_3([y_3, y_2, y_1]), called here
    block by block."""
    model = build_model(3, 2, "zeros", depth=4, width=3, h=0.4, seed=7)
    x = np.random.default_rng(8).normal(size=(5, 3)).astype(np.float32)
    b = [model.get_layer(f"block_{i}") for i in range(4)]
    y = [x]
    y.append(b[0](y[0], training=False))
    y.append(b[1](y[1], training=False))
    y.append(b[2]([y[2], y[1], y[0]], training=False))
    y.append(b[3]([y[3], y[2], y[1]], training=False))
    for ours, expected in zip(layer_states(model, x), y):
        np.testing.assert_array_equal(ours, np.asarray(expected))


def test_the_field_decides_the_spectrum_not_the_integrator(points):
    """Prop. 2 is a fact of the shrinkage field: with RK4 steps its Jacobian's eigenvalues
    are still real and <= 0 (the Prop. 1 column is reported, but is not RK4's region)."""
    model = build_model(2, 2, "shrinkage", depth=3, width=2, h=0.3, seed=0, integrator="rk4")
    spectra = jacobian_spectra(model, points)
    assert np.all(np.abs(spectra["eig_imag"]) < 1e-6) and np.all(spectra["eig_real"] <= 1e-6)
    assert (spectra["eig_real"] < -1e-3).any()


def test_members_model_is_rejected():
    model = build_model(2, 2, "residual", depth=2, width=2, h=0.1, members=2, seed=0)
    x = np.zeros((3, 2), dtype=np.float32)
    for call in (lambda: block_layers(model), lambda: layer_states(model, x), lambda: jacobian_spectra(model, x)):
        with pytest.raises(ValueError, match="members"):
            call()


# --- figures -------------------------------------------------------------------------


def test_the_spectra_figure_is_written(tmp_path, shrinkage_model, points):
    spectra = jacobian_spectra(shrinkage_model, points)
    for name in ("spectra.png", "spectra.pdf"):
        out = plot_spectra(spectra, tmp_path / name)
        assert out == tmp_path / name and out.stat().st_size > 1000


# --- Prop. 2 is not Euler stability -------------------------------------------------


def test_shrinkage_blocks_are_not_euler_stable_by_construction():
    """Prop. 2 makes the eigenvalues of the shrinkage field's Jacobian −K1ᵀ diag(σ′) K1 real
    and <= 0, which is not a contraction: a forward-Euler step contracts only where
    h·λ_max(K1ᵀ diag(σ′) K1) <= 2. The paper's Wine network (20 blocks of width 13) at
    h = 1 with freshly initialised (Glorot) weights, seed 0:

    - at the states that 50 standard-normal inputs reach, 17 of the 20 blocks are not
      Euler-stable (max |1 + hλ| up to 2.3, i.e. some hλ < −2); the other 3 (blocks 15,
      18, 19) are stable at those states, where every hλ lies in [−2, 0];
    - every block has states where it is not: at y = 1ᵀ K1⁻¹ (Keras-style K1, so every
      pre-activation is 1 and σ′ = 1) max |1 + hλ| = h·λ_max(K1 K1ᵀ) − 1 (numpy), which is
      > 1 for all 20 blocks (λ_max(K1 K1ᵀ) >= 2.5 at width 13).
    """
    model = build_model(13, 3, "shrinkage", depth=20, width=13, h=1.0, seed=0)
    x = np.random.default_rng(0).normal(size=(50, 13)).astype(np.float32)
    spectra = jacobian_spectra(model, x)
    assert spectra["eig_real"].max() <= 1e-5 and spectra["eig_imag"].abs().max() <= 1e-5  # Prop. 2 holds
    table = euler_statistic(spectra)
    assert list(table.loc[table["stable"], "block"]) == [15, 18, 19]
    assert table["max_euler_factor"].max() > 2.0
    h_lambda = spectra["h_eig_real"]
    assert (h_lambda[~spectra["block"].isin([15, 18, 19])] < -2.0).any()
    for block in (15, 18, 19):  # the criterion h·λ_max <= 2, checked on the raw eigenvalues
        assert h_lambda[spectra["block"] == block].min() >= -2.0 - 1e-6
    unstable = table.loc[~table["stable"], "block"]
    assert all(h_lambda[spectra["block"] == block].min() < -2.0 for block in unstable)

    for index, block in enumerate(block_layers(model)):
        kernel = block.field.kernel1.numpy().astype(np.float64)
        y = np.linalg.solve(kernel.T, np.ones(13))[None]  # y @ kernel = 1: all ReLUs on
        eigenvalues = np.linalg.eigvals(field_jacobian(block, y.astype(np.float32))[0].astype(np.float64))
        expected = 1.0 * np.linalg.eigvalsh(kernel @ kernel.T).max() - 1.0
        np.testing.assert_allclose(np.abs(1.0 + 1.0 * eigenvalues).max(), expected, rtol=1e-4)
        assert expected > 1.0, f"block {index} would be Euler-stable at every state"

"""Tests for resnet_stability.analysis: Jacobian spectra (Props 1 and 2) and propagation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from PIL import Image

from resnet_stability.analysis import (
    animate_propagation,
    block_layers,
    default_layers,
    euler_statistic,
    field_jacobian,
    jacobian_spectra,
    layer_accuracy,
    layer_states,
    plot_accuracy_vs_h_synthetic,
    plot_propagation,
    plot_spectra,
    record_propagation,
)
from resnet_stability.analysis.members_spectra import euler_summary, members_euler_factors
from resnet_stability.data.synthetic import make_synthetic
from resnet_stability.models import build_model


@pytest.fixture(scope="module")
def points():
    return np.random.default_rng(7).normal(size=(12, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def shrinkage_model():
    return build_model(2, 2, "shrinkage", depth=4, width=2, h=0.3, seed=0)


@pytest.fixture(scope="module")
def residual_model():
    return build_model(3, 2, "residual", depth=3, width=3, h=0.5, seed=3)


@pytest.fixture(scope="module")
def circles():
    data = make_synthetic("circles", n_train=20, n_test=20, noise=0.05, seed=0)
    return data.X[~data.test_mask].astype(np.float32), data.y[~data.test_mask]


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


# --- propagation ---------------------------------------------------------------------


def test_record_propagation_shape_and_layer_zero(shrinkage_model, points):
    states = record_propagation(shrinkage_model, points)
    assert states.shape == (4 + 1, len(points), 2)
    np.testing.assert_array_equal(states[0], points)  # no stem: layer 0 is the input
    assert not np.allclose(states[-1], states[0])
    # each layer is the previous one pushed through its block
    blocks = block_layers(shrinkage_model)
    np.testing.assert_allclose(blocks[2](states[2]).numpy(), states[3], atol=1e-6)


@pytest.mark.parametrize("block", ["zeros", "rk4"])
def test_layer_states_follow_the_model(block):
    # multistep blocks get their history as build_model wires it; head(last state) = model(x)
    model = build_model(2, 2, block, depth=4, width=2, h=0.3, seed=2)
    x = np.random.default_rng(6).normal(size=(8, 2)).astype(np.float32)
    states = layer_states(model, x)
    assert len(states) == 5
    np.testing.assert_allclose(model.get_layer("head")(states[-1]).numpy(), model(x).numpy(), atol=1e-6)
    assert len(jacobian_spectra(model, x)) == 4 * 8 * 2


def test_record_propagation_with_stem():
    model = build_model(3, 2, "residual", depth=2, width=4, h=0.2, seed=5)
    x = np.random.default_rng(3).normal(size=(6, 3)).astype(np.float32)
    states = record_propagation(model, x)
    assert states.shape == (3, 6, 4)
    np.testing.assert_allclose(states[0], model.get_layer("stem")(x).numpy(), atol=1e-6)


def test_layer_accuracy_head_matches_model(residual_model):
    x = np.random.default_rng(4).normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(int)
    states = record_propagation(residual_model, x)
    accuracy = layer_accuracy(residual_model, states, y)
    assert accuracy.shape == (states.shape[0],)
    predicted = np.argmax(residual_model.predict(x, verbose=0), axis=-1)
    assert accuracy[-1] == pytest.approx(np.mean(predicted == y))
    # one-hot labels give the same answer
    np.testing.assert_allclose(layer_accuracy(residual_model, states, np.eye(2)[y]), accuracy)


def test_layer_accuracy_probe(residual_model):
    x = np.random.default_rng(5).normal(size=(40, 3)).astype(np.float32)
    x[:, 0] += np.where(x[:, 0] > 0, 1.0, -1.0)  # a margin of 2 around x0 = 0
    y = (x[:, 0] > 0).astype(int)  # linearly separable at layer 0
    states = record_propagation(residual_model, x)
    probe = layer_accuracy(residual_model, states, y, method="probe")
    assert probe.shape == (states.shape[0],)
    assert probe[0] == 1.0
    assert np.all((probe >= 0) & (probe <= 1))
    held_out = layer_accuracy(residual_model, states[:, :30], y[:30], method="probe",
                              states_test=states[:, 30:], y_test=y[30:])
    assert held_out.shape == (states.shape[0],)
    with pytest.raises(ValueError, match="method"):
        layer_accuracy(residual_model, states, y, method="knn")
    with pytest.raises(ValueError, match="states_test"):
        layer_accuracy(residual_model, states, y, method="probe", states_test=states)


def test_default_layers():
    assert default_layers(100) == [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    deep = default_layers(500)
    assert deep[:4] == [0, 5, 50, 100] and deep[-1] == 500
    assert deep == [0, 5, 50, *range(100, 501, 50)]
    assert default_layers(7) == [0, 5, 7]
    assert default_layers(20) == [0, 5, 10, 20]
    assert default_layers(0) == [0]
    with pytest.raises(ValueError):
        default_layers(-1)


# --- figures -------------------------------------------------------------------------


def test_figures_are_written(tmp_path, shrinkage_model, points, circles):
    spectra = jacobian_spectra(shrinkage_model, points)
    for name in ("spectra.png", "spectra.pdf"):
        out = plot_spectra(spectra, tmp_path / name)
        assert out == tmp_path / name and out.stat().st_size > 1000

    x, y = circles
    out = plot_propagation(shrinkage_model, x, y, tmp_path / "prop.png", title="circles")
    assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="out of range"):
        plot_propagation(shrinkage_model, x, y, tmp_path / "bad.png", layers=[0, 9])

    gif = animate_propagation(shrinkage_model, x, y, tmp_path / "prop.gif", fps=4)
    assert gif.stat().st_size > 1000
    with Image.open(gif) as image:
        assert image.n_frames == 4 + 1

    table = pd.DataFrame(
        [
            {"block": block, "h": h, "trial": trial, "test_accuracy": 0.6 + 0.2 * h + 0.05 * trial}
            for block in ("residual", "shrinkage")
            for h in (0.1, 0.5, 1.0)
            for trial in range(3)
        ]
    )
    written = plot_accuracy_vs_h_synthetic(table, tmp_path / "fig8.png")
    assert sorted(p.name for p in written) == ["fig8.pdf", "fig8.png"]
    assert all(p.stat().st_size > 1000 for p in written)


# --- scope ---------------------------------------------------------------------------


def test_members_model_is_rejected(tmp_path):
    model = build_model(2, 2, "residual", depth=2, width=2, h=0.1, members=2, seed=0)
    x = np.zeros((3, 2), dtype=np.float32)
    for call in (
        lambda: block_layers(model),
        lambda: layer_states(model, x),
        lambda: jacobian_spectra(model, x),
        lambda: record_propagation(model, x),
        lambda: layer_accuracy(model, np.zeros((3, 3, 2)), np.zeros(3)),
        lambda: plot_propagation(model, x, np.zeros(3), tmp_path / "m.png"),
    ):
        with pytest.raises(ValueError, match="members"):
            call()


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


# -------------------------- members_spectra: the Prop. 1 statistic of members models


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

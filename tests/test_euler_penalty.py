"""Tests for the Euler-stability penalty of learned step sizes (``stability_penalty``).

P = μ·max(0, max_λ |1 + hλ| − 1) per block, λ the eigenvalues of the field's Jacobian at
the batch's first example, the gradient reaching h only. Expected values come from numpy
written here: the analytic Jacobians of the three fields (row-vector Keras layout:
f(y) = σ(y k1 + b1) k2 + b2, so ∂f_i/∂y_j = Σ_k k1[j,k] σ'(z_k) k2[k,i]),
``numpy.linalg.eigvals``, and the hand derivative of |1 + hλ| in h. The penalty belongs
to the forward-Euler integrator, whatever the field or the block's name. Members trained
by the sweep with the penalty are in ``test_trainer.py``; its spec and flag in
``test_experiment.py`` and ``test_cli.py``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_stability.layers import BLOCKS
from resnet_stability.layers.euler_penalty import euler_factor
from resnet_stability.models import build_model

#: Blocks whose integrator is forward Euler: the paper's, and the rk4 block stepped with Euler.
EULER = ["batchnorm", "residual", "shrinkage", "rk4+euler"]
WIDTH, BATCH, M = 4, 6, 3
H_MAX, MU = 2.0, 0.7
H_MEMBERS = [0.4, 1.2, 1.9]
SEEDS = [5, 6, 7]


def make(name, members=None, mu=MU, h=None, dtype="float64"):
    """A built block that learns h with penalty μ; ``name`` a block name, or
    ``"<block>+euler"`` for that block with ``integrator="euler"``."""
    if h is None:
        h = 1.3 if members is None else list(H_MEMBERS[:members])
    seed = 3 if members is None else list(SEEDS[:members])
    name, _, integrator = name.partition("+")
    block = BLOCKS[name](h=h, members=members, seed=seed, learn_h=True, h_max=H_MAX, stability_penalty=mu,
                         dtype=dtype, integrator=integrator or None)
    block(tf.zeros((BATCH, WIDTH) if members is None else (members, BATCH, WIDTH), dtype=dtype), training=False)
    return block


@pytest.fixture
def rng():
    return np.random.default_rng(21)


def randomise(block, rng):
    """Every weight of the block's field (batch norm's γ, β and moving statistics
    included) set to random values, so that no term of the Jacobian is trivial."""
    for v in block.field.weights:
        value = rng.normal(size=v.shape)
        if "variance" in v.name:
            value = rng.uniform(0.5, 2.0, size=v.shape)
        v.assign(value)


def member_value(v, m):
    value = v.numpy()
    return value if m is None else value[m]


def numpy_jacobian(block, y0, m=None):
    """∂f_i/∂y_j at the point y0 (w,) as J[i, j], from the field's weights (member m)."""
    field = block.field
    w = {v.name: member_value(v, m) for v in field.weights}
    if block.field_name == "two_layer":
        z = y0 @ w["kernel1"] + w["bias1"]
        return ((w["kernel1"] * (z > 0)) @ w["kernel2"]).T
    if block.field_name == "shrinkage":
        z = y0 @ w["kernel1"] + w["bias1"]
        return -((w["kernel1"] * (z > 0)) @ w["kernel1"].T).T
    eps = field.epsilon  # batch norm in inference mode: BN(z) = z s + (β − μ s)
    s1 = w["gamma1"] / np.sqrt(w["moving_variance1"] + eps)
    s2 = w["gamma2"] / np.sqrt(w["moving_variance2"] + eps)
    z = (y0 @ w["kernel1"]) * s1 + w["beta1"] - w["moving_mean1"] * s1
    return ((w["kernel1"] * s1 * (z > 0)) @ (w["kernel2"] * s2)).T


def numpy_penalty(jacobian, h, mu=MU):
    eig = np.linalg.eigvals(jacobian)
    return mu * max(0.0, np.abs(1.0 + h * eig).max() - 1.0), eig


def training_loss(block, y):
    """The losses the block adds in a training call (one per member, or a scalar)."""
    block(y, training=True)
    (loss,) = block.losses
    return loss


@pytest.mark.parametrize("members", [None, M], ids=["plain", "members3"])
@pytest.mark.parametrize("name", EULER)
def test_the_penalty_is_mu_times_the_excess_of_max_abs_1_plus_h_lambda(name, members, rng):
    block = make(name, members)
    randomise(block, rng)
    y = rng.normal(size=(BATCH, WIDTH) if members is None else (members, BATCH, WIDTH))
    expected = {}  # from the weights before the training call (batch norm then updates its moving statistics)
    for m in [None] if members is None else range(members):
        h = 1.3 if m is None else H_MEMBERS[m]
        point = y[0] if m is None else y[m, 0]  # row 0 of the (member's) batch
        expected[m], _ = numpy_penalty(numpy_jacobian(block, point, m), h)
    assert max(expected.values()) > 0.05, "pick weights where a block is Euler unstable"
    got = np.asarray(training_loss(block, tf.constant(y)))
    for m, value in expected.items():
        np.testing.assert_allclose(got if m is None else got[m], value, rtol=1e-6, err_msg=f"{name} member {m}")
    assert block.get_config()["stability_penalty"] == MU


def test_a_stable_block_adds_zero(rng):
    """Shrinkage with a tiny h: eigenvalues real and <= 0, |1 + hλ| <= 1 everywhere."""
    block = make("shrinkage", h=1e-4)
    y = tf.constant(rng.normal(size=(BATCH, WIDTH)))
    assert float(training_loss(block, y)) == 0.0


def test_no_penalty_outside_training_or_with_mu_zero(rng):
    y = tf.constant(rng.normal(size=(BATCH, WIDTH)))
    block = make("residual")
    block(y, training=False)
    assert block.losses == []
    quiet = make("residual", mu=0.0)
    quiet(y, training=True)
    assert quiet.losses == []


@pytest.mark.parametrize("name", EULER)
def test_the_gradient_reaches_h_only_as_the_hand_derivative(name, rng):
    """dP/dθ = μ·(Re λ* + h|λ*|²)/F · h_max σ(θ)(1 − σ(θ)), λ* the maximising eigenvalue;
    the field's weights get no gradient from the penalty."""
    block = make(name)
    randomise(block, rng)
    y = rng.normal(size=(BATCH, WIDTH))
    h = 1.3
    _, eig = numpy_penalty(numpy_jacobian(block, y[0]), h)  # before batch norm's moving statistics move
    with tf.GradientTape() as tape:
        loss = training_loss(block, tf.constant(y))
    grads = tape.gradient(loss, block.trainable_variables)
    by_name = {v.name: 0.0 if g is None else g.numpy() for v, g in zip(block.trainable_variables, grads)}
    for weight, g in by_name.items():
        if weight != "h_logit":
            assert not np.any(g), f"the penalty moved {weight}"
    star = eig[np.argmax(np.abs(1 + h * eig))]
    factor = abs(1 + h * star)
    sigma = h / H_MAX
    expected = MU * (star.real + h * abs(star) ** 2) / factor * H_MAX * sigma * (1 - sigma)
    np.testing.assert_allclose(by_name["h_logit"], expected, rtol=1e-6)


def test_a_non_finite_jacobian_gives_infinity_for_its_member_only():
    jacobians = np.stack([np.eye(3) * -0.5, np.full((3, 3), np.nan), np.diag([1.0, np.inf, 0.0])])
    factors = np.asarray(euler_factor(tf.constant(jacobians), tf.constant([1.0, 1.0, 1.0], tf.float64)))
    np.testing.assert_allclose(factors[0], 0.5)
    assert np.isinf(factors[1]) and np.isinf(factors[2])


# --------------------------------------------------------------------- refusals, config


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "x", True], ids=repr)
def test_bad_penalties_are_refused_in_one_line(bad):
    with pytest.raises(ValueError, match=r"^stability_penalty must be a finite number >= 0, got "):
        BLOCKS["residual"](h=0.5, learn_h=True, stability_penalty=bad)


def test_the_penalty_needs_learn_h_and_a_forward_euler_block():
    with pytest.raises(ValueError, match=r"^stability_penalty=1\.0 needs learn_h=True"):
        BLOCKS["residual"](h=0.5, stability_penalty=1.0)
    with pytest.raises(ValueError, match=r"^block 'rk4' is not a forward-Euler block; .*: batchnorm, residual, shrinkage$"):
        BLOCKS["rk4"](h=0.5, learn_h=True, stability_penalty=1.0)
    with pytest.raises(ValueError, match=r"^block 'shrinkage' with integrator 'rk4' is not a forward-Euler block; "):
        BLOCKS["shrinkage"](h=0.5, learn_h=True, stability_penalty=1.0, integrator="rk4")
    assert BLOCKS["rk4"](h=0.5, learn_h=True, stability_penalty=1.0, integrator="euler").stability_penalty == 1.0
    with pytest.raises(ValueError, match=r"needs learn_h=True"):
        build_model(4, 2, "lm", depth=3, stability_penalty=1.0)
    build_model(4, 2, "lm", depth=3, stability_penalty=0.0)  # zero: nothing to refuse


def test_keras_file_round_trip_keeps_the_penalty(tmp_path, rng):
    model = build_model(WIDTH, 2, "residual", depth=2, h=0.5, seed=1, learn_h=True, stability_penalty=MU)
    path = tmp_path / "penalised.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.get_layer("block_1").stability_penalty == MU
    x = rng.normal(size=(BATCH, WIDTH)).astype("float32")
    loaded(x, training=True)
    model(x, training=True)
    np.testing.assert_allclose([float(v) for v in loaded.losses], [float(v) for v in model.losses], rtol=1e-6)

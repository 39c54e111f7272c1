"""Tests for learned step sizes (``learn_h=True``): h = h_max·σ(clip(θ, −20, 20)).

Expected values come from numpy written here (σ, logit, the Euler update y + h f(y)
with f = K2 σ(K1 y + b1) + b2) or from a second, fixed-h block. Every one-step block
(``learns_h``) runs the generic checks; the multistep blocks must refuse ``learn_h``.
Members that learn h trained by the sweep are in ``test_trainer.py``, the spec and the
command line's ``--learn-h`` in ``test_experiment.py`` and ``test_cli.py``.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_stability.layers import BLOCKS
from resnet_stability.models import build_model

ONE_STEP = sorted(name for name, cls in BLOCKS.items() if cls.learns_h)
MULTISTEP = sorted(name for name, cls in BLOCKS.items() if not cls.learns_h)
WIDTH, BATCH, M = 4, 6, 3
H_MAX = 2.0
H_MEMBERS = [0.1, 0.5, 1.5]
SEEDS = [5, 6, 7]


def sigmoid(t):
    return 1.0 / (1.0 + np.exp(-np.asarray(t, dtype=np.float64)))


def logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1.0 - p))


def make(name, members=None, learn_h=True, h=None, h_max=H_MAX, dtype="float64", **kwargs):
    """A built block: h defaults to 0.7 (plain) or H_MEMBERS, seeds fixed."""
    if h is None:
        h = 0.7 if members is None else list(H_MEMBERS[:members])
    seed = 3 if members is None else list(SEEDS[:members])
    block = BLOCKS[name](h=h, members=members, seed=seed, learn_h=learn_h, h_max=h_max, dtype=dtype, **kwargs)
    block(tf.zeros(shape(members), dtype=dtype), training=False)
    return block


def shape(members, batch=BATCH):
    return (batch, WIDTH) if members is None else (members, batch, WIDTH)


def field_weights(block):
    """The block's weights other than θ (same order as a fixed-h block's)."""
    return [v.numpy() for v in block.weights if v.name != "h_logit"]


@pytest.fixture
def rng():
    return np.random.default_rng(14)


# ------------------------------------------------------------------ the parametrisation


def test_the_layer_stores_a_trainable_logit_per_member():
    block = make("residual", members=M)
    theta = block.h_logit
    assert theta.trainable and theta.constraint is None and tuple(theta.shape) == (M,)
    np.testing.assert_allclose(theta.numpy(), logit(np.array(H_MEMBERS) / H_MAX), atol=1e-12, rtol=0)
    np.testing.assert_allclose(block.step_size, H_MEMBERS, atol=1e-12, rtol=0)
    plain = make("residual")
    assert tuple(plain.h_logit.shape) == ()
    assert plain.step_size.shape == () and abs(float(plain.step_size) - 0.7) < 1e-12
    assert not any(v.name == "h_logit" for v in make("residual", learn_h=False).weights)


def test_h_equal_to_h_max_starts_just_below_it():
    """θ = +∞ cannot be stored: h = h_max starts at h_max·(1 − 1e-3), θ = logit(0.999)."""
    block = make("residual", h=1.0, h_max=1.0)
    assert abs(float(block.h_logit.numpy()) - math.log(0.999 / 0.001)) < 1e-12
    assert abs(float(block.step_size) - 0.999) < 1e-12


@pytest.mark.parametrize("members", [None, M], ids=["plain", "members3"])
@pytest.mark.parametrize("name", ONE_STEP)
def test_at_initialisation_the_block_equals_the_fixed_h_block(name, members, rng):
    """Same seed, same h: same weights and (float64, up to σ's rounding) same output."""
    learned, fixed = make(name, members), make(name, members, learn_h=False)
    for a, b in zip(field_weights(learned), fixed.get_weights()):
        np.testing.assert_array_equal(a, b)
    y = tf.constant(rng.normal(size=shape(members)))
    for training in (False, True):
        np.testing.assert_allclose(learned(y, training=training), fixed(y, training=training), atol=1e-12, rtol=0)


@pytest.mark.parametrize("members", [None, M], ids=["plain", "members3"])
def test_forward_pass_is_the_euler_step_with_h_from_a_hand_set_logit(members, rng):
    """y + h (K2 relu(K1 y + b1) + b2), h = h_max σ(θ), θ set by hand (−30 is past the
    clip: h = h_max σ(−20))."""
    block = make("residual", members)
    thetas = np.array([0.8]) if members is None else np.array([-1.3, 2.2, -30.0])
    block.h_logit.assign(thetas[0] if members is None else thetas)
    for variable in block.weights:
        if variable.name != "h_logit":
            variable.assign(0.6 * rng.normal(size=tuple(variable.shape)))
    w = {v.name: v.numpy() for v in block.weights}
    y = rng.normal(size=shape(members))
    out = np.asarray(block(tf.constant(y)))
    for m in range(1 if members is None else members):
        pick = (lambda a: a) if members is None else (lambda a: a[m])
        h = H_MAX * sigmoid(np.clip(thetas[m], -20, 20))
        f = np.maximum(pick(y) @ pick(w["kernel1"]) + pick(w["bias1"]), 0) @ pick(w["kernel2"]) + pick(w["bias2"])
        np.testing.assert_allclose(pick(out), pick(y) + h * f, atol=1e-12, rtol=0)
    if members is not None:
        assert float(block.step_size[2]) == pytest.approx(H_MAX * sigmoid(-20.0), rel=1e-12)


# ------------------------------------------------------------------------- training


def _sgd_steps(block, y, target, steps, learning_rate, zero_theta_gradient=False, variables=None):
    variables = block.trainable_variables if variables is None else variables
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum((block(y, training=True) - target) ** 2)
        grads = tape.gradient(loss, variables)
        if zero_theta_gradient:
            grads = [tf.zeros_like(g) if v.name == "h_logit" else g for g, v in zip(grads, variables)]
        optimizer.apply(grads, variables)


@pytest.mark.parametrize("name", ONE_STEP)
def test_with_a_zero_learning_rate_for_h_training_equals_the_fixed_h_block(name, rng):
    """θ's gradient zeroed: θ stays, and every other weight follows the fixed-h block."""
    learned, fixed = make(name, members=M), make(name, members=M, learn_h=False)
    theta0 = learned.h_logit.numpy().copy()
    y, target = tf.constant(rng.normal(size=shape(M))), tf.constant(rng.normal(size=shape(M)))
    _sgd_steps(learned, y, target, 3, 0.05, zero_theta_gradient=True)
    _sgd_steps(fixed, y, target, 3, 0.05)
    np.testing.assert_array_equal(learned.h_logit.numpy(), theta0)
    moved = 0.0
    for a, b, start in zip(field_weights(learned), fixed.get_weights(), field_weights(make(name, members=M))):
        np.testing.assert_allclose(a, b, atol=1e-10, rtol=0)
        moved = max(moved, float(np.max(np.abs(a - start))))
    assert moved > 1e-3, "the weights should have trained"
    # and with θ's gradient left in, h moves
    free = make(name, members=M)
    _sgd_steps(free, y, target, 3, 0.05)
    assert np.all(np.abs(free.step_size - np.array(H_MEMBERS)) > 1e-6)


@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["shrink-h", "grow-h"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_h_stays_in_its_interval_under_huge_steps(direction, dtype, rng):
    """SGD with learning rate 1e6 on ±‖block(y) − y‖² (pushes h down, or up): h stays
    in (0, h_max], ends at its bounds, and θ's value never makes the forward non-finite."""
    block = make("residual", members=M, dtype=dtype)
    y = tf.constant(rng.normal(size=shape(M)), dtype=dtype)

    optimizer = keras.optimizers.SGD(learning_rate=1e6)
    for _ in range(4):
        with tf.GradientTape() as tape:
            loss = direction * tf.reduce_sum((block(y) - y) ** 2)
        optimizer.apply(tape.gradient(loss, [block.h_logit]), [block.h_logit])
        h = block.step_size
        assert np.all(np.isfinite(h)) and np.all(h > 0) and np.all(h <= H_MAX), h
        assert np.all(np.isfinite(np.asarray(block(y))))
    if direction > 0:
        assert np.all(h < 1e-6 * H_MAX), h
    else:
        assert np.all(h > 0.999 * H_MAX), h


@pytest.mark.parametrize("members", [None, M], ids=["plain", "members3"])
@pytest.mark.parametrize("name", ONE_STEP)
def test_gradient_wrt_theta_matches_a_finite_difference(name, members, rng):
    """dL/dθ (tape) = (L(θ + ε) − L(θ − ε)) / 2ε, float64, L = Σ w·block(y); nonzero."""
    block = make(name, members)
    y, w = tf.constant(rng.normal(size=shape(members))), tf.constant(rng.normal(size=shape(members)))

    def loss():
        return float(tf.reduce_sum(w * block(y, training=False)))

    with tf.GradientTape() as tape:
        value = tf.reduce_sum(w * block(y, training=False))
    grad = np.atleast_1d(tape.gradient(value, block.h_logit).numpy())
    theta = np.atleast_1d(block.h_logit.numpy()).copy()
    eps = 1e-6
    for m in range(theta.size):
        shifted = []
        for sign in (1.0, -1.0):
            moved = theta.copy()
            moved[m] += sign * eps
            block.h_logit.assign(moved if members is not None else moved[0])
            shifted.append(loss())
        block.h_logit.assign(theta if members is not None else theta[0])
        assert abs(grad[m]) > 1e-3
        assert grad[m] == pytest.approx((shifted[0] - shifted[1]) / (2 * eps), rel=1e-6, abs=1e-9)


def test_euler_gradient_wrt_theta_is_the_hand_derivative(rng):
    """L = Σ w·(y + h f(y)): dL/dθ = Σ w·f(y) · h_max σ(θ)(1 − σ(θ))."""
    block = make("residual")
    y, w = rng.normal(size=shape(None)), rng.normal(size=shape(None))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(w * block(tf.constant(y)))
    weights = {v.name: v.numpy() for v in block.weights}
    f = np.maximum(y @ weights["kernel1"] + weights["bias1"], 0) @ weights["kernel2"] + weights["bias2"]
    s = sigmoid(block.h_logit.numpy())
    expected = np.sum(w * f) * H_MAX * s * (1 - s)
    assert float(tape.gradient(value, block.h_logit)) == pytest.approx(expected, rel=1e-12)


# ------------------------------------------------------------------- config, save, load


@pytest.mark.parametrize("name", ONE_STEP)
def test_config_round_trip_keeps_learn_h_and_h_max(name):
    block = make(name, members=M, dtype="float32")
    config = block.get_config()
    assert config["learn_h"] is True and config["h_max"] == H_MAX
    clone = BLOCKS[name].from_config(config)
    assert clone.get_config() == config
    assert make(name, learn_h=False).get_config()["learn_h"] is False


@pytest.mark.parametrize("members", [None, M], ids=["plain", "members3"])
def test_keras_file_round_trip_keeps_the_learned_h(members, tmp_path, rng):
    h = 0.4 if members is None else [0.2, 0.4, 0.9]
    model = build_model(3, 2, "residual", depth=2, width=WIDTH, h=h, members=members, seed=1, learn_h=True, h_max=1.5)
    for index, theta in enumerate((0.3, -1.1)):
        model.get_layer(f"block_{index}").h_logit.assign(np.full(() if members is None else (members,), theta))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for index, theta in enumerate((0.3, -1.1)):
        block = loaded.get_layer(f"block_{index}")
        assert block.learn_h is True and block.h_max == 1.5 and block.get_config()["h"] == h
        np.testing.assert_allclose(block.step_size, 1.5 * sigmoid(theta) * np.ones_like(block.step_size), rtol=1e-6)
    x = rng.normal(size=(5, 3) if members is None else (5, members, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x), model(x))


# ------------------------------------------------------------------------------ errors


def test_h_above_h_max_is_rejected_in_one_line():
    with pytest.raises(ValueError, match=r"^h=1\.5 exceeds h_max=1\.0; give h <= h_max$"):
        BLOCKS["residual"](h=1.5, learn_h=True)
    with pytest.raises(ValueError, match=r"^h=0\.9 exceeds h_max=0\.5"):
        BLOCKS["rk4"](h=[0.1, 0.9], members=2, learn_h=True, h_max=0.5)
    BLOCKS["residual"](h=1.5)  # a fixed h ignores h_max


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "x"], ids=repr)
def test_invalid_h_max_is_rejected(bad):
    with pytest.raises(ValueError, match=r"h_max must be a finite number > 0"):
        BLOCKS["residual"](h=0.1, learn_h=True, h_max=bad)


@pytest.mark.parametrize("name", MULTISTEP)
def test_multistep_blocks_refuse_learn_h(name):
    allowed = ", ".join(ONE_STEP)
    message = rf"^block '{name}' cannot learn h \(learn_h=True\); allowed: {allowed}$"
    with pytest.raises(ValueError, match=message):
        build_model(4, 2, name, depth=4, learn_h=True)
    with pytest.raises(ValueError, match=message):
        BLOCKS[name](h=0.1, learn_h=True)


def test_build_model_gives_every_block_a_learned_h():
    model = build_model(4, 2, "shrinkage", depth=3, h=[0.1, 0.2], members=2, seed=0, learn_h=True, h_max=0.5)
    blocks = [model.get_layer(f"block_{i}") for i in range(3)]
    assert all(b.learn_h and b.h_max == 0.5 for b in blocks)
    for b in blocks:
        np.testing.assert_allclose(b.step_size, [0.1, 0.2], rtol=1e-6)
    assert sum(v.name == "h_logit" for v in model.trainable_variables) == 3

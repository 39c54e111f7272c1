"""Multistep blocks: history plumbing, coefficients, and keeping trainable k / λ zero-stable."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_stability import stability
from resnet_stability.layers import LinearMultistep, ZeroS
from resnet_stability.models import build_model


def _push_weight(layer, name, history, direction, steps=3):
    """SGD steps with a huge learning rate that push weight ``name`` towards ``direction``."""
    variable = next(v for v in layer.trainable_variables if v.name == name)
    optimizer = keras.optimizers.SGD(learning_rate=1e4)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(variable.value)
            loss = direction * tf.reduce_sum(variable.value) + 0.0 * tf.reduce_sum(layer(history))
        optimizer.apply([tape.gradient(loss, variable.value)], [variable])
    return np.asarray(variable.numpy())


@pytest.mark.parametrize("members", [None, 3])
@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["down", "up"])
def test_constrained_lm_k_stays_in_its_zero_stable_interval(members, direction):
    layer = LinearMultistep(h=0.1, members=members, seed=0 if members is None else [0, 1, 2], constrain=True)
    shape = (4, 3) if members is None else (members, 4, 3)  # members first
    history = [tf.random.normal(shape, seed=1), tf.random.normal(shape, seed=2)]
    layer(history)
    k = _push_weight(layer, "k", history, direction)
    assert np.all(k >= -1 + 1e-3 - 1e-6) and np.all(k <= 1 + 1e-6)
    assert np.all(stability.lm_zero_stable_region(k))


def test_unconstrained_lm_k_leaves_the_interval_under_the_same_push():
    layer = LinearMultistep(h=0.1, seed=0)
    history = [tf.random.normal((4, 3), seed=1), tf.random.normal((4, 3), seed=2)]
    layer(history)
    assert _push_weight(layer, "k", history, 1.0) < -1.0  # so the constrained test above means something


@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["down", "up"])
def test_trainable_zeros_lambda_stays_zero_stable(direction):
    layer = ZeroS(h=0.1, lam=1.0, trainable_lam=True, seed=0)
    history = [tf.random.normal((4, 3), seed=s) for s in (1, 2, 3)]
    layer(history)
    lam = float(_push_weight(layer, "lam", history, direction, steps=1))
    assert stability.zeros_zero_stable_region(lam), lam
    assert stability.is_zero_stable(stability.zeros_coefficients(lam)[0])


def test_zeros_layer_uses_the_paper_coefficients():
    layer = ZeroS(h=0.3, lam=2.0, seed=0)
    history = [tf.random.normal((5, 4), seed=s) for s in (1, 2, 3)]
    out = np.asarray(layer(history))
    f = np.asarray(layer.field(history[0]))
    alphas, beta = stability.zeros_coefficients(2.0)
    expected = sum(a * np.asarray(y) for a, y in zip(alphas, history)) + 0.3 * beta * f
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_builder_passes_the_history_in_order():
    """Block i of an LM model receives [y_i, y_{i-1}]: recompute the chain by hand."""
    model = build_model(3, 2, "lm", depth=4, width=3, h=0.2, seed=5)
    x = np.random.default_rng(0).normal(size=(6, 3)).astype("float32")
    states = [x]
    for i in range(4):
        layer = model.get_layer(f"block_{i}")
        inputs = states[-1] if i == 0 else [states[-1], states[-2]]
        states.append(np.asarray(layer(inputs)))
    expected = np.asarray(model.get_layer("head")(states[-1]))
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-6)

"""Tests for ``resnet_stability.layers.fields``: the vector fields f(y), chosen by name.

Expected values come from ``conftest.numpy_field`` (the formulas written in numpy) and,
for ``batch_normalize``, from the naive formula with TensorFlow's own derivative. Every
registered field runs the same checks, with and without a members axis.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from conftest import numpy_euler, numpy_field, numpy_rk4, weights_by_name
from resnet_stability.layers import (
    FIELDS,
    BatchNormField,
    RK4,
    ShrinkageField,
    StepResidual,
    TwoLayerField,
    VectorField,
    get_field,
)

WIDTH, BATCH, M = 4, 6, 3
FIELD_NAMES = sorted(FIELDS)


def make_field(name, members=None, dtype="float64"):
    """A built field with random weights (positive γ and moving variances)."""
    seeds = [0] if members is None else [0, 1, 2][:members]
    field = FIELDS[name](members=members, seeds=seeds, dtype=dtype)
    field.build((BATCH, WIDTH) if members is None else (members, BATCH, WIDTH))
    rng = np.random.default_rng(3)
    for variable in field.weights:
        shape = tuple(variable.shape)
        positive = "variance" in variable.name or "gamma" in variable.name
        variable.assign(rng.uniform(0.5, 2.0, shape) if positive else 0.6 * rng.normal(size=shape))
    return field


def test_the_paper_fields_are_registered_by_name():
    assert FIELDS == {"two_layer": TwoLayerField, "shrinkage": ShrinkageField, "batchnorm": BatchNormField}
    for name, cls in FIELDS.items():
        assert cls.field_name == name and get_field(name) is cls and issubclass(cls, VectorField)
        assert keras.saving.get_registered_object(f"resnet_stability>{cls.__name__}") is cls


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("members", [None, M], ids=["plain", "members3"])
@pytest.mark.parametrize("name", FIELD_NAMES)
def test_field_is_its_numpy_formula(name, members, training):
    field = make_field(name, members)
    w = weights_by_name(field)
    y = np.random.default_rng(4).normal(size=(BATCH, WIDTH) if members is None else (members, BATCH, WIDTH))
    out = np.asarray(field(tf.constant(y), training=training))
    for m in [None] if members is None else range(members):
        w_m = w if m is None else {k: v[m] for k, v in w.items()}
        expected = numpy_field(name, w_m, training)(y if m is None else y[m])
        np.testing.assert_allclose(out if m is None else out[m], expected, atol=1e-12, rtol=0)


def test_batchnorm_weights_are_attributes_in_creation_order(members):
    """γ, β and the moving statistics of both normalisations are plain attributes, each
    the variable of that name, in the order the engine packs them (Keras lists the
    trainable weights first, each group in creation order)."""
    field = make_field("batchnorm", members)
    trainable = ["kernel1", "kernel2", "gamma1", "beta1", "gamma2", "beta2"]
    statistics = ["moving_mean1", "moving_variance1", "moving_mean2", "moving_variance2"]
    assert [v.name for v in field.weights] == trainable + statistics
    assert [v.name for v in field.trainable_weights] == trainable
    for name in trainable + statistics:
        assert getattr(field, name) is next(v for v in field.weights if v.name == name)


def test_a_new_field_works_in_every_block_by_name(monkeypatch):
    """Registering a field (here f(y) = tanh(K y), for the test only) is all it takes:
    Euler and RK4 blocks step along it by name, members included."""

    class TanhField(VectorField):
        def build(self, input_shape):
            width = int(input_shape[-1])
            self.kernel1 = self._weight("kernel1", (width, width), self.kernel_initializer)

        def call(self, y, training=None):
            return ops.tanh(self._matmul(y, self.kernel1))

    monkeypatch.setitem(FIELDS, "tanh_layer", TanhField)
    y = np.random.default_rng(5).normal(size=(M, BATCH, WIDTH))
    for block_class, step in ((StepResidual, numpy_euler), (RK4, numpy_rk4)):
        block = block_class(h=[0.2, 0.5, 0.9], members=M, seed=[1, 2, 3], field="tanh_layer", dtype="float64")
        out = np.asarray(block(tf.constant(y)))
        assert type(block.field) is TanhField and [v.name for v in block.weights] == ["kernel1"]
        kernel = weights_by_name(block)["kernel1"]
        for m, h in enumerate([0.2, 0.5, 0.9]):
            np.testing.assert_allclose(out[m], step(lambda s: np.tanh(s @ kernel[m]), y[m], h), atol=1e-12, rtol=0)


def _naive_batch_norm(z, gamma, beta, axis, epsilon=1e-3):
    """The forward formula with TensorFlow's own derivative (the reference)."""
    mean = tf.reduce_mean(z, axis=axis, keepdims=True)
    variance = tf.reduce_mean(tf.square(z - mean), axis=axis, keepdims=True)
    out = tf.expand_dims(gamma, axis) * (z - mean) / tf.sqrt(variance + epsilon) + tf.expand_dims(beta, axis)
    return out, tf.squeeze(mean, axis), tf.squeeze(variance, axis)


@pytest.mark.parametrize("members", [None, 3], ids=["plain", "members3"])
def test_batch_normalize_equals_the_members_first_formula(members, rng):
    """batch_normalize (computed batch first) gives the formula's values and derivatives
    in the members-first layout (float64), including derivatives that reach z through
    the returned mean and variance."""
    from resnet_stability.layers.fields import batch_normalize

    axis = 0 if members is None else 1  # the batch axis of a state
    shape = (7, 4) if members is None else (members, 7, 4)
    stat_shape = (4,) if members is None else (members, 4)
    z = tf.constant(rng.normal(size=shape) * 2 + 1)
    gamma, beta = tf.constant(rng.uniform(0.5, 2, stat_shape)), tf.constant(rng.normal(size=stat_shape))
    weights = [tf.constant(rng.normal(size=s)) for s in (shape, stat_shape, stat_shape)]

    def gradients(function):
        with tf.GradientTape() as tape:
            tape.watch([z, gamma, beta])
            outputs = function(z, gamma, beta, members if function is batch_normalize else axis, 1e-3)
            loss = sum(tf.reduce_sum(o * w) for o, w in zip(outputs, weights))
        return outputs, tape.gradient(loss, [z, gamma, beta])

    (mine, mine_grads), (naive, naive_grads) = gradients(batch_normalize), gradients(_naive_batch_norm)
    for a, b in zip(mine + tuple(mine_grads), naive + tuple(naive_grads)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10, rtol=0)
    assert np.max(np.abs(mine_grads[0].numpy())) > 1e-2  # not a vacuous comparison



"""Tests for ``resnet_stability.layers.dense``: ``MembersDense``, every model's stem and head.

Expected values: z = σ(x W + b) in numpy per member, and the standalone layer built with
member m's seed (the members contract of ``members.py``).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import weights_by_name
from resnet_stability.layers import MembersDense

M, BATCH, N_IN, UNITS = 3, 5, 4, 2


@pytest.mark.parametrize("activation", [None, "softmax"])
def test_output_is_the_numpy_formula_per_member(members, activation, rng, perturb_weights):
    """Batch first at the model's boundary: (batch, [M,] n_in) -> (batch, [M,] units)."""
    layer = MembersDense(UNITS, activation=activation, members=members, seed=1 if members is None else [1, 2, 3],
                         dtype="float64")
    x = rng.normal(size=(BATCH, N_IN) if members is None else (BATCH, members, N_IN))
    layer(x)
    perturb_weights(layer)
    out = np.asarray(layer(tf.constant(x)))
    for m in [None] if members is None else range(members):
        w = weights_by_name(layer, m)
        z = (x if m is None else x[:, m]) @ w["kernel"] + w["bias"]
        if activation == "softmax":
            z = np.exp(z - z.max(axis=-1, keepdims=True))
            z = z / z.sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(out if m is None else out[:, m], z, atol=1e-12, rtol=0)


def test_member_m_is_the_standalone_layer_with_its_seed():
    together = MembersDense(UNITS, members=M, seed=[7, 8, 9])
    together(np.zeros((1, M, N_IN), "float32"))
    for m, seed in enumerate([7, 8, 9]):
        alone = MembersDense(UNITS, seed=seed)
        alone(np.zeros((1, N_IN), "float32"))
        for a, b in zip(together.get_weights(), alone.get_weights()):
            np.testing.assert_array_equal(a[m], b)


def test_config_round_trip():
    layer = MembersDense(UNITS, activation="tanh", members=M, seed=[1, 2, 3], kernel_initializer="he_normal")
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is MembersDense and again.get_config() == layer.get_config()


@pytest.mark.parametrize("bad", [0, 2.5, True, "3"], ids=repr)
def test_invalid_units_are_refused(bad):
    with pytest.raises(ValueError, match=r"units must be an integer >= 1, got " + repr(bad).replace(".", r"\.")):
        MembersDense(bad)


def test_members_input_must_be_batch_first():
    with pytest.raises(ValueError, match=r"members=3 needs input shape \(batch, 3, width\), got \(3, 5, 4\)"):
        MembersDense(UNITS, members=M)(np.zeros((M, 5, N_IN), "float32"))

"""Per-member initial values (``resnet_stability.layers.initialization``).

Expected values are written out here from the documented contract: member m's slice is
drawn by ``numpy.random.default_rng(derive_seed(seed_m, tag))`` with the distribution
of the Keras initialiser, whose parameters (Glorot's limit, He's standard deviation)
are computed by hand below, not by the module's own helpers.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_stability.layers.initialization import initial_member_values, per_member_initializer
from resnet_stability.seeding import derive_seed

SEEDS = [3, 14, 15, 92]


def rng(seed, tag="kernel"):
    return np.random.default_rng(derive_seed(seed, tag))


def test_glorot_uniform_is_the_documented_numpy_draw_per_member():
    values = initial_member_values("glorot_uniform", (6, 4), SEEDS, "kernel")
    assert values.shape == (4, 6, 4) and values.dtype == np.float32
    limit = math.sqrt(6.0 / (6 + 4))  # Glorot: sqrt(6 / (fan_in + fan_out))
    for m, seed in enumerate(SEEDS):
        expected = rng(seed).uniform(-limit, limit, (6, 4)).astype(np.float32)
        np.testing.assert_array_equal(values[m], expected)


@pytest.mark.parametrize(
    "name, variance",
    [
        ("glorot_uniform", 2.0 / (40 + 30)),
        ("glorot_normal", 2.0 / (40 + 30)),
        ("he_uniform", 2.0 / 40),
        ("he_normal", 2.0 / 40),
        ("lecun_uniform", 1.0 / 40),
        ("lecun_normal", 1.0 / 40),
    ],
)
def test_variance_scaling_family_has_the_variance_of_its_member_shape(name, variance):
    """Fans come from the member shape (40, 30), not the stacked (M, 40, 30)."""
    values = initial_member_values(name, (40, 30), list(range(50)), "kernel")
    per_member = values.reshape(50, -1).var(axis=1)
    np.testing.assert_allclose(per_member.mean(), variance, rtol=0.05)
    if name.endswith("_normal"):  # truncated at 2 standard deviations of the untruncated normal
        stddev = math.sqrt(variance) / 0.87962566103423978
        assert np.max(np.abs(values)) <= 2 * stddev + 1e-6
        assert np.max(np.abs(values)) > 1.8 * stddev  # really truncated there, not narrower


def test_vector_and_scalar_fans():
    """A vector of n has fans (n, n) in Keras; a scalar (1, 1)."""
    vector = initial_member_values("glorot_uniform", (5,), SEEDS[:1], "bias")
    limit = math.sqrt(6.0 / (5 + 5))
    np.testing.assert_array_equal(vector[0], rng(SEEDS[0], "bias").uniform(-limit, limit, (5,)).astype("f4"))
    scalar = initial_member_values("glorot_uniform", (), SEEDS[:1], "k")
    assert scalar.shape == (1,) and abs(float(scalar[0])) <= math.sqrt(3.0)


def test_random_uniform_normal_and_truncated_normal():
    uniform = initial_member_values(keras.initializers.RandomUniform(-0.1, 0.0), (3,), SEEDS, "k")
    normal = initial_member_values(keras.initializers.RandomNormal(1.0, 0.5), (3,), SEEDS, "k")
    for m, seed in enumerate(SEEDS):
        np.testing.assert_array_equal(uniform[m], rng(seed, "k").uniform(-0.1, 0.0, (3,)).astype("f4"))
        np.testing.assert_array_equal(normal[m], rng(seed, "k").normal(1.0, 0.5, (3,)).astype("f4"))
    truncated = initial_member_values(keras.initializers.TruncatedNormal(2.0, 0.1), (200,), list(range(20)), "k")
    assert np.all(np.abs(truncated - 2.0) <= 0.2 + 1e-6)
    assert np.abs(truncated - 2.0).max() > 0.18


def test_constant_initializers_are_the_same_for_every_member():
    np.testing.assert_array_equal(initial_member_values("zeros", (2, 3), SEEDS, "b"), np.zeros((4, 2, 3)))
    np.testing.assert_array_equal(initial_member_values("ones", (2,), SEEDS, "b"), np.ones((4, 2)))
    np.testing.assert_array_equal(initial_member_values(keras.initializers.Constant(2.5), (3,), SEEDS, "b"),
                                  np.full((4, 3), 2.5))
    identity = initial_member_values(keras.initializers.Identity(), (3, 3), SEEDS, "k")  # Keras's own values
    np.testing.assert_array_equal(identity, np.broadcast_to(np.eye(3), (4, 3, 3)))


def test_other_seeded_initializers_go_through_keras_with_the_member_seed():
    values = initial_member_values(keras.initializers.Orthogonal(), (4, 4), SEEDS[:2], "kernel")
    for m, seed in enumerate(SEEDS[:2]):
        expected = keras.initializers.Orthogonal(seed=derive_seed(seed, "kernel"))((4, 4), dtype="float32")
        np.testing.assert_array_equal(values[m], np.asarray(expected))


def test_a_member_depends_only_on_its_own_seed():
    first = initial_member_values("he_normal", (4, 4), [1, 2, 3], "kernel")
    second = initial_member_values("he_normal", (4, 4), [7, 2, 9], "kernel")
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.allclose(first[0], second[0])
    other_tag = initial_member_values("he_normal", (4, 4), [1, 2, 3], "kernel2")
    assert not np.allclose(first, other_tag)


def test_keras_initializer_wrapper_with_and_without_members():
    stacked = per_member_initializer("glorot_uniform", SEEDS, "kernel", members=4)((4, 3, 2), "float32")
    single = per_member_initializer("glorot_uniform", SEEDS[2:3], "kernel", members=None)((3, 2), "float32")
    assert tuple(stacked.shape) == (4, 3, 2) and tuple(single.shape) == (3, 2)
    np.testing.assert_array_equal(np.asarray(stacked)[2], np.asarray(single))


def test_constant_initializers_work_while_tracing():
    """Building a layer inside tf.function (e.g. a lazily built model) must not need numpy conversion."""

    @tf.function
    def traced():
        return per_member_initializer("zeros", SEEDS, "bias", members=4)((4, 3), "float32")

    np.testing.assert_array_equal(traced().numpy(), np.zeros((4, 3)))

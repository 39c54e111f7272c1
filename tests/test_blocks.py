"""Tests for the residual blocks, one generic battery for every registered block.

In the style of Meganet's layer tests: every block in ``resnet_stability.layers.BLOCKS``
(iterated at collection time through the ``block_name`` fixture of ``conftest.py``) runs
the same battery -- shapes, config round trip, training step, h -> 0 identity, members
equivalence and independence, per-member initialisation, errors, determinism -- with and
without a members axis. Below the battery, each block adds only its own special facts
(a numpy reference formula, Prop. 2 for shrinkage, batch statistics for batch norm).

Shapes are tiny (width <= 6, batch <= 8) so the whole file runs in seconds on a CPU.
"""

from __future__ import annotations

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from resnet_stability.layers import BLOCKS, BatchNormResidual, Shrinkage, StepResidual
from resnet_stability.seeding import derive_seed

WIDTH = 5
BATCH = 6
M = 3
H_PLAIN = 0.5
H_MEMBERS = [0.1, 0.5, 1.0]
SEEDS = [11, 22, 33]


# ----------------------------------------------------------------------------- helpers


def default_h(members):
    return H_PLAIN if members is None else list(H_MEMBERS[:members])


def make_block(name, members=None, h=None, seed=None, **kwargs):
    """A block of type ``name``; h and seed default to one value per member."""
    if h is None:
        h = default_h(members)
    if seed is None:
        seed = 7 if members is None else list(SEEDS[:members])
    return BLOCKS[name](h=h, members=members, seed=seed, **kwargs)


def state_shape(members, batch=BATCH, width=WIDTH):
    """A block's state: (batch, width), or members first (M, batch, width)."""
    return (batch, width) if members is None else (members, batch, width)


def random_state(rng, members, batch=BATCH, width=WIDTH, dtype="float32"):
    return rng.normal(size=state_shape(members, batch, width)).astype(dtype)


def built(block, members, batch=BATCH, width=WIDTH, dtype="float32"):
    """Build ``block`` by calling it once in inference mode (no BN statistics change)."""
    block(tf.zeros(state_shape(members, batch, width), dtype=dtype), training=False)
    return block


def run(block, y, training=False):
    return np.asarray(block(tf.constant(y), training=training))


def history_input(block, rng, members):
    """A state, or for a multistep block (``block.history_length`` > 1) a history of
    distinct states, so that weights acting on the history (LM's k) get a gradient."""
    steps = block.history_length
    states = [tf.constant(random_state(rng, members)) for _ in range(steps)]
    return states[0] if steps == 1 else states


def weights_by_name(block):
    """{short variable name: value}, e.g. {"kernel1": (w, w) array, ...}."""
    return {variable.name: np.asarray(variable.numpy()) for variable in block.weights}


def member_slice(weights, m):
    return [np.asarray(w)[m] for w in weights]


# ----------------------------------------------------------------------------- 1. shapes


def test_block_is_registered_under_its_name(block_name):
    cls = BLOCKS[block_name]
    assert cls.block_name == block_name
    # registered serialisable: the Keras registry maps the class back to itself
    registered = keras.saving.get_registered_name(cls)
    assert registered == f"resnet_stability>{cls.__name__}"
    assert keras.saving.get_registered_object(registered) is cls


def test_output_shape_equals_input_shape(block_name, members, rng):
    block = make_block(block_name, members)
    y = random_state(rng, members)
    for training in (False, True):
        out = run(block, y, training=training)
        assert out.shape == y.shape
        assert np.all(np.isfinite(out))
    assert tuple(block.compute_output_shape(y.shape)) == y.shape
    # symbolic call: the batch axis stays unknown, the rest is preserved
    batch_shape = (None, WIDTH) if members is None else (members, None, WIDTH)
    symbolic = make_block(block_name, members)(keras.Input(batch_shape=batch_shape))
    assert tuple(symbolic.shape) == batch_shape


# ----------------------------------------------------------------------------- 2. config


def test_config_round_trip(block_name, members, rng, perturb_weights):
    cls = BLOCKS[block_name]
    block = built(make_block(block_name, members, activation="tanh"), members)
    perturb_weights(block)
    config = block.get_config()
    assert config["h"] == default_h(members)
    assert config["members"] == members
    assert config["activation"] == "tanh"

    clone = cls.from_config(config)
    assert type(clone) is cls
    assert clone.get_config() == config
    built(clone, members)
    clone.set_weights(block.get_weights())

    y = random_state(rng, members)
    np.testing.assert_allclose(run(clone, y), run(block, y), atol=1e-6, rtol=0)
    # training mode too (batch norm: batch statistics, and equal moving-statistic updates)
    np.testing.assert_allclose(run(clone, y, True), run(block, y, True), atol=1e-6, rtol=0)
    for a, b in zip(clone.get_weights(), block.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_keras_serialisation_round_trip(block_name, members):
    block = make_block(block_name, members)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(block))
    assert type(restored) is BLOCKS[block_name]
    assert restored.get_config() == block.get_config()


# ----------------------------------------------------------------------------- 4. training


def test_one_sgd_step_changes_every_trainable_weight(block_name, members, rng):
    block = built(make_block(block_name, members), members)
    y = history_input(block, rng, members)
    target = tf.constant(random_state(rng, members))
    before = [np.asarray(v.numpy()) for v in block.trainable_variables]
    assert len(before) > 0

    optimizer = keras.optimizers.SGD(learning_rate=0.1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum((block(y, training=True) - target) ** 2)
    grads = tape.gradient(loss, block.trainable_variables)
    optimizer.apply_gradients(zip(grads, block.trainable_variables))

    for variable, old in zip(block.trainable_variables, before):
        new = np.asarray(variable.numpy())
        slices = [(None, old, new)] if members is None else [(m, old[m], new[m]) for m in range(members)]
        for m, o, n in slices:
            assert np.any(np.abs(n - o) > 1e-7), f"{variable.path} (member {m}) did not change"


# ----------------------------------------------------------------------------- 5. h -> 0


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_vanishing_step_is_identity(block_name, members, rng, training, perturb_weights):
    tiny = 1e-7 if members is None else [1e-7] * members
    block = perturb_weights(built(make_block(block_name, members, h=tiny), members))
    y = random_state(rng, members)
    np.testing.assert_allclose(run(block, y, training), y, atol=1e-5, rtol=0)

    # the same weights with h = 1 move the state: the comparison above is not vacuous
    unit = 1.0 if members is None else [1.0] * members
    moving = built(make_block(block_name, members, h=unit), members)
    moving.set_weights(block.get_weights())
    assert np.max(np.abs(run(moving, y, training) - y)) > 1e-2


# ----------------------------------------------------------------------------- 6. members


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_member_equals_standalone_layer(block_name, rng, training, perturb_weights):
    members_block = built(make_block(block_name, M, h=H_MEMBERS, seed=SEEDS), M)
    standalone = [built(make_block(block_name, None, h=H_MEMBERS[m], seed=SEEDS[m]), None) for m in range(M)]

    # same seed -> same initial weights, member by member
    for m in range(M):
        for a, b in zip(member_slice(members_block.get_weights(), m), standalone[m].get_weights()):
            np.testing.assert_array_equal(a, b)

    # arbitrary weights W_m copied into a standalone layer -> same output, same updates
    perturb_weights(members_block)
    for m in range(M):
        standalone[m].set_weights(member_slice(members_block.get_weights(), m))
    x = random_state(rng, M)
    out = run(members_block, x, training)
    for m in range(M):
        np.testing.assert_allclose(out[m], run(standalone[m], x[m], training), atol=1e-6, rtol=0)
        # batch norm's moving statistics are per member too
        for a, b in zip(member_slice(members_block.get_weights(), m), standalone[m].get_weights()):
            np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_members_do_not_mix(block_name, rng, training, perturb_weights):
    """Perturbing member 0's inputs leaves members 1.. unchanged (batch norm included)."""
    block = perturb_weights(built(make_block(block_name, M), M))
    x = random_state(rng, M)
    shifted = x.copy()
    shifted[0] = 10.0 * shifted[0] + 5.0
    out, out_shifted = run(block, x, training), run(block, shifted, training)
    assert np.max(np.abs(out_shifted[0] - out[0])) > 1e-3
    np.testing.assert_allclose(out_shifted[1:], out[1:], atol=1e-7, rtol=0)


def test_int_seed_gives_member_m_the_derived_seed(block_name):
    members_block = built(make_block(block_name, M, seed=5), M)
    for m in range(M):
        single = built(make_block(block_name, None, h=H_MEMBERS[m], seed=derive_seed(5, "member", m)), None)
        for a, b in zip(member_slice(members_block.get_weights(), m), single.get_weights()):
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- 7. init


def test_members_are_initialised_as_separate_kernels(block_name):
    many, width = 64, 16
    seeds = [1000 + m for m in range(many)]
    block = built(
        make_block(block_name, many, h=[0.1] * many, seed=seeds, kernel_initializer="glorot_uniform"),
        many,
        batch=2,
        width=width,
    )
    kernels = [v for v in block.weights if tuple(v.shape) == (many, width, width)]
    assert kernels, "expected at least one (M, w, w) kernel"

    glorot_variance = 2.0 / (width + width)
    glorot_limit = math.sqrt(6.0 / (width + width))
    for kernel in kernels:
        value = np.asarray(kernel.numpy()).reshape(many, -1)
        per_member_variance = value.var(axis=1)
        # each member is a (16, 16) Glorot kernel; fans of the stacked shape would give 2/2048
        np.testing.assert_allclose(per_member_variance, glorot_variance, rtol=0.25)
        assert np.max(np.abs(value)) <= glorot_limit + 1e-6
        # members are different draws
        distances = np.abs(value[:, None, :] - value[None, :, :]).max(axis=2)
        np.fill_diagonal(distances, np.inf)
        assert distances.min() > 1e-3

    # member m is exactly the standalone layer built with seed s_m
    for m in (0, 17, many - 1):
        single = built(
            make_block(block_name, None, h=0.1, seed=seeds[m], kernel_initializer="glorot_uniform"),
            None,
            batch=2,
            width=width,
        )
        for a, b in zip(member_slice(block.get_weights(), m), single.get_weights()):
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- 8. errors


BAD_STEPS = [0.0, -0.5, float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("bad", BAD_STEPS, ids=repr)
def test_invalid_step_size_is_rejected(block_name, members, bad):
    h = bad if members is None else [0.1, bad, 0.2]
    with pytest.raises(ValueError, match=r"h must be a finite number > 0, got h=.*" + re.escape(repr(bad))):
        make_block(block_name, members, h=h)


@pytest.mark.parametrize("bad", [0.0, float("nan")], ids=repr)
def test_invalid_step_size_message_shows_plain_value(block_name, bad):
    with pytest.raises(ValueError, match=re.escape(f"got h={bad!r}") + "$"):
        make_block(block_name, None, h=bad)


@pytest.mark.parametrize("h", ["abc", None, [0.1, 0.2]], ids=["string", "none", "list"])
def test_non_numeric_or_listed_step_without_members_is_rejected(block_name, h):
    with pytest.raises(ValueError, match=r"\bh\b"):
        BLOCKS[block_name](h=h, members=None, seed=0)


@pytest.mark.parametrize("h", [[0.1, 0.2], [0.1, 0.2, 0.3, 0.4]], ids=["short", "long"])
def test_step_list_length_must_match_members(block_name, h):
    with pytest.raises(ValueError, match=rf"h has {len(h)} values but members=3"):
        BLOCKS[block_name](h=h, members=3, seed=0)


def test_seed_list_length_must_match_members(block_name):
    with pytest.raises(ValueError, match=r"seed has 2 values but members=3"):
        BLOCKS[block_name](h=0.1, members=3, seed=[1, 2])


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "3"], ids=repr)
def test_invalid_members_is_rejected(block_name, bad):
    with pytest.raises(ValueError, match=r"members must be None or an integer >= 1, got " + re.escape(repr(bad))):
        BLOCKS[block_name](h=0.1, members=bad, seed=0)


def test_input_with_wrong_members_count_is_rejected(block_name):
    block = make_block(block_name, 3)
    with pytest.raises(ValueError, match=r"members=3 .*\(3, batch, width\) \(members first\).*got \(2, 4, 5\)"):
        block(tf.zeros((2, 4, 5)))


def test_members_input_to_plain_block_is_rejected(block_name):
    block = make_block(block_name, None)
    with pytest.raises(ValueError, match=r"expected input shape \(batch, width\).*got \(4, 3, 5\)"):
        block(tf.zeros((4, 3, 5)))


def test_unknown_activation_is_rejected(block_name):
    with pytest.raises(ValueError, match=r"unknown activation 'no_such_activation'"):
        make_block(block_name, None, activation="no_such_activation")


def test_non_string_activation_is_rejected(block_name):
    with pytest.raises(ValueError, match=r"activation must be a name such as 'relu', got 3"):
        make_block(block_name, None, activation=3)


def test_numpy_integer_seed_is_accepted(block_name):
    block = built(make_block(block_name, None, seed=np.int64(7)), None)
    reference = built(make_block(block_name, None, seed=7), None)
    for a, b in zip(block.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_float64_block_computes_in_float64(block_name, members, rng):
    block = built(make_block(block_name, members, dtype="float64"), members, dtype="float64")
    out = block(tf.constant(random_state(rng, members, dtype="float64")))
    assert out.dtype == tf.float64
    assert all(v.dtype == "float64" for v in block.weights)


# ----------------------------------------------------------------------------- 9. determinism


def test_same_seed_same_weights_different_seed_different_weights(block_name, members):
    seeds_a = 3 if members is None else [3, 4, 5]
    seeds_b = 4 if members is None else [6, 7, 8]
    first = built(make_block(block_name, members, seed=seeds_a), members)
    again = built(make_block(block_name, members, seed=seeds_a), members)
    other = built(make_block(block_name, members, seed=seeds_b), members)
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    kernels = [i for i, v in enumerate(first.weights) if v.name.startswith("kernel")]
    assert kernels
    for i in kernels:
        assert np.max(np.abs(first.get_weights()[i] - other.get_weights()[i])) > 1e-3


# ============================================================================ block facts
#
# Numpy references: the update written out for one member with Keras-style weights
# (kernels stored (n_in, n_out), rows multiply from the left; see fields.py).


def _relu(z):
    return np.maximum(z, 0.0)


def _residual_reference(y, w, h, training):
    return y + h * (_relu(y @ w["kernel1"] + w["bias1"]) @ w["kernel2"] + w["bias2"])


def _shrinkage_reference(y, w, h, training):
    return y - h * (_relu(y @ w["kernel1"] + w["bias1"]) @ w["kernel1"].T + w["bias2"])


def _batchnorm_reference(y, w, h, training):
    def bn(z, i):
        if training:
            mean, var = z.mean(axis=0), z.var(axis=0)  # biased variance
        else:
            mean, var = w[f"moving_mean{i}"], w[f"moving_variance{i}"]
        return w[f"gamma{i}"] * (z - mean) / np.sqrt(var + 1e-3) + w[f"beta{i}"]

    return y + h * bn(_relu(bn(y @ w["kernel1"], 1)) @ w["kernel2"], 2)


REFERENCES = {
    "residual": (StepResidual, _residual_reference),
    "shrinkage": (Shrinkage, _shrinkage_reference),
    "batchnorm": (BatchNormResidual, _batchnorm_reference),
}


def _set_known_weights(block, rng):
    for variable in block.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.name or "gamma" in variable.name:
            value = rng.uniform(0.5, 2.0, size=shape)
        else:
            value = 0.5 * rng.normal(size=shape)
        variable.assign(value.astype("float32"))
    return weights_by_name(block)


def _reference(name, y, w, h, training, members):
    formula = REFERENCES[name][1]
    y64 = y.astype("float64")
    w64 = {k: v.astype("float64") for k, v in w.items()}
    if members is None:
        return formula(y64, w64, h, training)
    return np.stack([formula(y64[m], {k: v[m] for k, v in w64.items()}, h[m], training) for m in range(members)])


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reference_block_is_registered(name):
    assert BLOCKS[name] is REFERENCES[name][0]


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_block_matches_numpy_formula(name, members, training, rng):
    block = built(make_block(name, members), members)
    w = _set_known_weights(block, rng)
    y = random_state(rng, members)
    expected = _reference(name, y, w, default_h(members), training, members)
    # batch norm divides by sqrt(var + 1e-3), which amplifies float32 rounding
    atol = 1e-5 if name == "batchnorm" else 1e-6
    np.testing.assert_allclose(run(block, y, training), expected, atol=atol, rtol=0)


# ----------------------------------------------------------------------------- shrinkage


def _update_jacobians(block, y):
    """d block(y) / d y - I for each sample of y, shape (batch, n, n); y is batch first,
    (batch, w) or (batch, M, w), with n = w or M·w."""
    y = tf.constant(y)
    batch = y.shape[0]
    members_first = block.members is not None
    with tf.GradientTape() as tape:
        tape.watch(y)
        out = block(tf.transpose(y, (1, 0, 2))) if members_first else block(y)
        out = tf.transpose(out, (1, 0, 2)) if members_first else out
        # flatten members and features into one state vector per sample (on the tape)
        out = tf.reshape(out, (batch, -1))
    jac = tape.batch_jacobian(out, y).numpy().reshape(batch, out.shape[1], -1)
    return jac - np.eye(jac.shape[-1])[None]


def _randomise(block, rng):
    """Random normal kernels and biases (std 0.5 keeps float32 rounding near 1e-7)."""
    for variable in block.weights:
        variable.assign((0.5 * rng.normal(size=tuple(variable.shape))).astype("float32"))
    return block


def _random_shrinkage(members, rng, width=6):
    h = 0.7 if members is None else [0.2, 0.7, 1.0]
    return _randomise(built(Shrinkage(h=h, members=members, seed=3), members, width=width), rng)


def test_shrinkage_update_jacobian_is_symmetric_negative_semidefinite(members, rng):
    """Prop. 2: J - I = -h K1ᵀ diag(σ') K1 is symmetric with real eigenvalues <= 0."""
    width = 6
    block = _random_shrinkage(members, rng, width)
    w = weights_by_name(block)
    y = random_state(rng, members, batch=4, width=width)
    y = y if members is None else np.swapaxes(y, 0, 1)  # batch first: one Jacobian per sample
    count = 1 if members is None else members
    steps = [block.h] if members is None else block.h
    for sample, jac in enumerate(_update_jacobians(block, y)):
        np.testing.assert_allclose(jac, jac.T, atol=1e-5, rtol=0)
        if members is not None:  # members never couple: off-diagonal blocks are zero
            mask = np.kron(1 - np.eye(members), np.ones((width, width))).astype(bool)
            np.testing.assert_array_equal(jac[mask], 0.0)
        for m in range(count):
            part = jac[m * width:(m + 1) * width, m * width:(m + 1) * width]
            kernel = w["kernel1"] if members is None else w["kernel1"][m]
            bias = w["bias1"] if members is None else w["bias1"][m]
            y_m = y[sample] if members is None else y[sample, m]
            # not vacuous: it is -h K diag(relu') Kᵀ (Keras-style K), not zero or -I
            slope = (y_m @ kernel + bias > 0).astype("float64")
            np.testing.assert_allclose(part, -steps[m] * (kernel * slope) @ kernel.T, atol=1e-5, rtol=0)
            assert np.max(np.linalg.eigvalsh(part)) <= 1e-6
            np.testing.assert_allclose(np.linalg.eigvals(part).imag, 0.0, atol=1e-6)
            assert np.min(np.linalg.eigvalsh(part)) < -1e-3


def test_residual_update_jacobian_is_not_symmetric_in_general(rng):
    """The contrast to Prop. 2: with two independent matrices, J - I is not symmetric."""
    block = _randomise(built(StepResidual(h=0.7, seed=3), None, width=6), rng)
    jac = _update_jacobians(block, random_state(rng, None, batch=4, width=6))
    assert np.max(np.abs(jac - np.swapaxes(jac, 1, 2))) > 1e-2


def test_shrinkage_has_one_matrix(members):
    block = built(make_block("shrinkage", members), members)
    assert sorted(v.name for v in block.weights) == ["bias1", "bias2", "kernel1"]


# ----------------------------------------------------------------------------- batch norm


def test_batchnorm_starts_with_unit_gamma_zero_beta(members):
    w = weights_by_name(built(make_block("batchnorm", members), members))
    for i in (1, 2):
        np.testing.assert_array_equal(w[f"gamma{i}"], 1.0)
        np.testing.assert_array_equal(w[f"beta{i}"], 0.0)
        np.testing.assert_array_equal(w[f"moving_mean{i}"], 0.0)
        np.testing.assert_array_equal(w[f"moving_variance{i}"], 1.0)
    trainable = sorted(v.name for v in built(make_block("batchnorm", members), members).trainable_weights)
    assert trainable == ["beta1", "beta2", "gamma1", "gamma2", "kernel1", "kernel2"]


def test_batchnorm_training_uses_batch_statistics_at_init(members, rng):
    block = built(make_block("batchnorm", members), members)
    w = weights_by_name(block)
    y = random_state(rng, members)
    expected = _reference("batchnorm", y, w, default_h(members), True, members)
    np.testing.assert_allclose(run(block, y, training=True), expected, atol=1e-5, rtol=0)


def test_batchnorm_moving_statistics_update_and_are_used_in_inference(members, rng):
    block = built(make_block("batchnorm", members), members)
    w0 = weights_by_name(block)
    y = random_state(rng, members)
    run(block, y, training=True)
    w1 = weights_by_name(block)

    # first BN sees K1 y: moving <- 0.99 moving + 0.01 batch statistic (per member, feature)
    z1 = np.matmul(y.astype("float64"), w0["kernel1"].astype("float64"))  # ([M,] batch, w)
    np.testing.assert_allclose(w1["moving_mean1"], 0.01 * z1.mean(axis=-2), atol=1e-6, rtol=0)
    np.testing.assert_allclose(w1["moving_variance1"], 0.99 + 0.01 * z1.var(axis=-2), atol=1e-6, rtol=0)
    for stat in ("moving_mean2", "moving_variance2"):
        assert np.max(np.abs(w1[stat] - w0[stat])) > 1e-5

    # inference uses the moving statistics and leaves them alone
    expected = _reference("batchnorm", y, w1, default_h(members), False, members)
    out = run(block, y, training=False)
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)
    for key, value in weights_by_name(block).items():
        np.testing.assert_array_equal(value, w1[key])
    # and differs from the training-mode output (the two modes are really different)
    assert np.max(np.abs(out - run(block, y, training=True))) > 1e-3


def _naive_batch_norm(z, gamma, beta, axis, epsilon=1e-3):
    """The forward formula with TensorFlow's own derivative (the reference)."""
    mean = tf.reduce_mean(z, axis=axis, keepdims=True)
    variance = tf.reduce_mean(tf.square(z - mean), axis=axis, keepdims=True)
    out = tf.expand_dims(gamma, axis) * (z - mean) / tf.sqrt(variance + epsilon) + tf.expand_dims(beta, axis)
    return out, tf.squeeze(mean, axis), tf.squeeze(variance, axis)


@pytest.mark.parametrize("members", [None, 3], ids=["plain", "members3"])
def test_batch_normalize_equals_the_members_first_formula(members, rng):
    """batch_normalize (computed batch first) gives the formula's values and derivatives
    in the members-first layout (float64), including gradients that reach the returned
    mean and variance."""
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


# ----------------------------------------------------------------------------- RK4


def _two_layer_field(w):
    """f(y) = K2 σ(K1 y + b1) + b2 in numpy (Keras-style weights, ReLU)."""
    return lambda y: _relu(y @ w["kernel1"] + w["bias1"]) @ w["kernel2"] + w["bias2"]


def _numpy_rk4(f, y, h):
    """The classic Runge–Kutta 4 step, written out independently of the package."""
    k1 = f(y)
    k2 = f(y + h / 2 * k1)
    k3 = f(y + h / 2 * k2)
    k4 = f(y + h * k3)
    return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def _rk4_weights(block, rng):
    """Weights large enough that RK4 and forward Euler steps differ clearly (float64)."""
    for variable in block.weights:
        variable.assign(0.8 * rng.normal(size=tuple(variable.shape)))
    return weights_by_name(block)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_rk4_block_takes_a_classic_rk4_step_not_an_euler_step(members, training, rng):
    """The RK4 block equals a numpy RK4 step along K2 σ(K1 y + b1) + b2 (float64, 1e-10),
    for each member's own h; the Euler step of the same field is far away (> 0.1)."""
    h = 0.9 if members is None else [0.3, 0.9, 1.5]
    block = built(BLOCKS["rk4"](h=h, members=members, seed=4, dtype="float64"), members, dtype="float64")
    w = _rk4_weights(block, rng)
    y = random_state(rng, members, dtype="float64")
    out = run(block, y, training)
    count = 1 if members is None else members
    for m in range(count):
        w_m = w if members is None else {k: v[m] for k, v in w.items()}
        y_m, out_m = (y, out) if members is None else (y[m], out[m])
        h_m = h if members is None else h[m]
        f = _two_layer_field(w_m)
        np.testing.assert_allclose(out_m, _numpy_rk4(f, y_m, h_m), atol=1e-10, rtol=0)
        assert np.max(np.abs(out_m - (y_m + h_m * f(y_m)))) > 0.1, "Euler and RK4 should differ here"


def test_rk4_block_on_a_linear_field_is_the_fourth_order_taylor_polynomial(rng):
    """For f(y) = A y (linear activation, zero biases) one RK4 step is
    y (I + hA + (hA)²/2 + (hA)³/6 + (hA)⁴/24) (row vectors, A = K1 K2 Keras-style),
    the Taylor polynomial of exp(hA) to fourth order, derived by hand."""
    h = 0.7
    block = built(BLOCKS["rk4"](h=h, activation="linear", seed=2, dtype="float64"), None, dtype="float64")
    for variable in block.weights:
        value = 0.0 if "bias" in variable.name else 0.9 * rng.normal(size=tuple(variable.shape))
        variable.assign(np.broadcast_to(value, tuple(variable.shape)))
    w = weights_by_name(block)
    z = h * (w["kernel1"] @ w["kernel2"])
    polynomial = np.eye(WIDTH) + z + z @ z / 2 + z @ z @ z / 6 + z @ z @ z @ z / 24
    y = random_state(rng, None, dtype="float64")
    np.testing.assert_allclose(run(block, y), y @ polynomial, atol=1e-10, rtol=0)
    assert np.max(np.abs(y @ polynomial - y @ (np.eye(WIDTH) + z))) > 0.1

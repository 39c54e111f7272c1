"""Tests for ``resnet_stability.layers.blocks``: one generic battery for every block.

In the style of Meganet's layer tests: every block in ``resnet_stability.layers.BLOCKS``,
and the field/integrator combinations of ``conftest.BLOCK_CASES`` (iterated at
collection time through the ``block_case`` fixture), runs the same battery -- names,
shapes, config round trip, training step, h -> 0 identity, members equivalence and
independence, per-member initialisation, errors, determinism -- with and without a
members axis. Below the battery, each block adds only its own facts: the update against
a numpy integrator step along a numpy field (every one-step case), shrinkage + RK4 written
out, Prop. 2 for shrinkage, batch statistics for batch norm, RK4's Taylor polynomial,
fields and integrators chosen by name, learned step sizes, per-member scalars.

Shapes are tiny (width <= 6, batch <= 8) so the whole file runs in seconds on a CPU.
"""

from __future__ import annotations

import math
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import BLOCK_CASES, NUMPY_INTEGRATORS, BlockCase, numpy_field, relu, weights_by_name
from resnet_stability.layers import (
    BLOCKS,
    FIELDS,
    INTEGRATORS,
    RK4,
    BatchNormResidual,
    OneStepBlock,
    Shrinkage,
    StepResidual,
)
from resnet_stability.models import build_model
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


def make_block(case, members=None, h=None, seed=None, **kwargs):
    """A block of ``case`` (a :class:`~conftest.BlockCase`, or a registered name); h and
    seed default to one value per member."""
    case = BlockCase(case) if isinstance(case, str) else case
    if h is None:
        h = default_h(members)
    if seed is None:
        seed = 7 if members is None else list(SEEDS[:members])
    return case(h=h, members=members, seed=seed, **kwargs)


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


def member_slice(weights, m):
    return [np.asarray(w)[m] for w in weights]


# ----------------------------------------------------------------------------- 1. shapes


def test_block_is_registered_under_its_name(block_case):
    cls = block_case.cls
    assert cls.block_name == block_case.name
    # registered serialisable: the Keras registry maps the class back to itself
    registered = keras.saving.get_registered_name(cls)
    assert registered == f"resnet_stability>{cls.__name__}"
    assert keras.saving.get_registered_object(registered) is cls


def test_block_uses_the_field_and_integrator_it_names(block_case, members):
    """The block's field layer is the class ``FIELDS`` registers under its field name, it
    steps with ``INTEGRATORS``' function of its integrator name (one-step blocks), and both
    names are in its config; ``history_length`` is 1 for one-step blocks."""
    block = make_block(block_case, members)
    assert block.field_name == block_case.field_name and type(block.field) is FIELDS[block_case.field_name]
    assert block.integrator_name == block_case.integrator_name
    config = block.get_config()
    assert (config["field"], config["integrator"]) == (block_case.field_name, block_case.integrator_name)
    if block_case.one_step:
        assert block.integrator is INTEGRATORS[block_case.integrator_name]
        assert block.history_length == 1


def test_output_shape_equals_input_shape(block_case, members, rng):
    block = make_block(block_case, members)
    y = random_state(rng, members)
    for training in (False, True):
        out = run(block, y, training=training)
        assert out.shape == y.shape
        assert np.all(np.isfinite(out))
    assert tuple(block.compute_output_shape(y.shape)) == y.shape
    # symbolic call: the batch axis stays unknown, the rest is preserved
    batch_shape = (None, WIDTH) if members is None else (members, None, WIDTH)
    symbolic = make_block(block_case, members)(keras.Input(batch_shape=batch_shape))
    assert tuple(symbolic.shape) == batch_shape


# ----------------------------------------------------------------------------- 2. config


def test_config_round_trip(block_case, members, rng, perturb_weights):
    cls = block_case.cls
    block = built(make_block(block_case, members, activation="tanh"), members)
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


def test_keras_serialisation_round_trip(block_case, members):
    block = make_block(block_case, members)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(block))
    assert type(restored) is block_case.cls
    assert restored.get_config() == block.get_config()


# ----------------------------------------------------------------------------- 4. training


def test_one_sgd_step_changes_every_trainable_weight(block_case, members, rng):
    block = built(make_block(block_case, members), members)
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
def test_vanishing_step_is_identity(block_case, members, rng, training, perturb_weights):
    tiny = 1e-7 if members is None else [1e-7] * members
    block = perturb_weights(built(make_block(block_case, members, h=tiny), members))
    y = random_state(rng, members)
    np.testing.assert_allclose(run(block, y, training), y, atol=1e-5, rtol=0)

    # the same weights with h = 1 move the state: the comparison above is not vacuous
    unit = 1.0 if members is None else [1.0] * members
    moving = built(make_block(block_case, members, h=unit), members)
    moving.set_weights(block.get_weights())
    assert np.max(np.abs(run(moving, y, training) - y)) > 1e-2


# ----------------------------------------------------------------------------- 6. members


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_member_equals_standalone_layer(block_case, rng, training, perturb_weights):
    members_block = built(make_block(block_case, M, h=H_MEMBERS, seed=SEEDS), M)
    standalone = [built(make_block(block_case, None, h=H_MEMBERS[m], seed=SEEDS[m]), None) for m in range(M)]

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
def test_members_do_not_mix(block_case, rng, training, perturb_weights):
    """Perturbing member 0's inputs leaves members 1.. unchanged (batch norm included)."""
    block = perturb_weights(built(make_block(block_case, M), M))
    x = random_state(rng, M)
    shifted = x.copy()
    shifted[0] = 10.0 * shifted[0] + 5.0
    out, out_shifted = run(block, x, training), run(block, shifted, training)
    assert np.max(np.abs(out_shifted[0] - out[0])) > 1e-3
    np.testing.assert_allclose(out_shifted[1:], out[1:], atol=1e-7, rtol=0)


def test_int_seed_gives_member_m_the_derived_seed(block_case):
    members_block = built(make_block(block_case, M, seed=5), M)
    for m in range(M):
        single = built(make_block(block_case, None, h=H_MEMBERS[m], seed=derive_seed(5, "member", m)), None)
        for a, b in zip(member_slice(members_block.get_weights(), m), single.get_weights()):
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- 7. init


def test_members_are_initialised_as_separate_kernels(block_case):
    many, width = 64, 16
    seeds = [1000 + m for m in range(many)]
    block = built(
        make_block(block_case, many, h=[0.1] * many, seed=seeds, kernel_initializer="glorot_uniform"),
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
            make_block(block_case, None, h=0.1, seed=seeds[m], kernel_initializer="glorot_uniform"),
            None,
            batch=2,
            width=width,
        )
        for a, b in zip(member_slice(block.get_weights(), m), single.get_weights()):
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- 8. errors


BAD_STEPS = [0.0, -0.5, float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("bad", BAD_STEPS, ids=repr)
def test_invalid_step_size_is_rejected(block_case, members, bad):
    h = bad if members is None else [0.1, bad, 0.2]
    with pytest.raises(ValueError, match=r"h must be a finite number > 0, got h=.*" + re.escape(repr(bad))):
        make_block(block_case, members, h=h)


@pytest.mark.parametrize("bad", [0.0, float("nan")], ids=repr)
def test_invalid_step_size_message_shows_plain_value(block_case, bad):
    with pytest.raises(ValueError, match=re.escape(f"got h={bad!r}") + "$"):
        make_block(block_case, None, h=bad)


@pytest.mark.parametrize("h", ["abc", None, [0.1, 0.2]], ids=["string", "none", "list"])
def test_non_numeric_or_listed_step_without_members_is_rejected(block_case, h):
    with pytest.raises(ValueError, match=r"\bh\b"):
        block_case(h=h, members=None, seed=0)


@pytest.mark.parametrize("h", [[0.1, 0.2], [0.1, 0.2, 0.3, 0.4]], ids=["short", "long"])
def test_step_list_length_must_match_members(block_case, h):
    with pytest.raises(ValueError, match=rf"h has {len(h)} values but members=3"):
        block_case(h=h, members=3, seed=0)


def test_seed_list_length_must_match_members(block_case):
    with pytest.raises(ValueError, match=r"seed has 2 values but members=3"):
        block_case(h=0.1, members=3, seed=[1, 2])


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "3"], ids=repr)
def test_invalid_members_is_rejected(block_case, bad):
    with pytest.raises(ValueError, match=r"members must be None or an integer >= 1, got " + re.escape(repr(bad))):
        block_case(h=0.1, members=bad, seed=0)


def test_input_with_wrong_members_count_is_rejected(block_case):
    block = make_block(block_case, 3)
    with pytest.raises(ValueError, match=r"members=3 .*\(3, batch, width\) \(members first\).*got \(2, 4, 5\)"):
        block(tf.zeros((2, 4, 5)))


def test_members_input_to_plain_block_is_rejected(block_case):
    block = make_block(block_case, None)
    with pytest.raises(ValueError, match=r"expected input shape \(batch, width\).*got \(4, 3, 5\)"):
        block(tf.zeros((4, 3, 5)))


def test_unknown_activation_is_rejected(block_case):
    with pytest.raises(ValueError, match=r"unknown activation 'no_such_activation'"):
        make_block(block_case, None, activation="no_such_activation")


def test_non_string_activation_is_rejected(block_case):
    with pytest.raises(ValueError, match=r"activation must be a name such as 'relu', got 3"):
        make_block(block_case, None, activation=3)


def test_numpy_integer_seed_is_accepted(block_case):
    block = built(make_block(block_case, None, seed=np.int64(7)), None)
    reference = built(make_block(block_case, None, seed=7), None)
    for a, b in zip(block.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_float64_block_computes_in_float64(block_case, members, rng):
    block = built(make_block(block_case, members, dtype="float64"), members, dtype="float64")
    out = block(tf.constant(random_state(rng, members, dtype="float64")))
    assert out.dtype == tf.float64
    assert all(v.dtype == "float64" for v in block.weights)


# ----------------------------------------------------------------------------- 9. determinism


def test_same_seed_same_weights_different_seed_different_weights(block_case, members):
    seeds_a = 3 if members is None else [3, 4, 5]
    seeds_b = 4 if members is None else [6, 7, 8]
    first = built(make_block(block_case, members, seed=seeds_a), members)
    again = built(make_block(block_case, members, seed=seeds_a), members)
    other = built(make_block(block_case, members, seed=seeds_b), members)
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    kernels = [i for i, v in enumerate(first.weights) if v.name.startswith("kernel")]
    assert kernels
    for i in kernels:
        assert np.max(np.abs(first.get_weights()[i] - other.get_weights()[i])) > 1e-3


# ============================================================================ block facts
#
# Numpy references (``conftest``): one member's update, a numpy integrator step
# (``NUMPY_INTEGRATORS``) along a numpy field (``numpy_field``), Keras-style weights
# (kernels stored (n_in, n_out), rows multiply from the left; see fields.py).

ONE_STEP_CASES = [case for case in BLOCK_CASES if case.one_step]


def _set_known_weights(block, rng):
    for variable in block.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.name or "gamma" in variable.name:
            value = rng.uniform(0.5, 2.0, size=shape)
        else:
            value = 0.5 * rng.normal(size=shape)
        variable.assign(value.astype(variable.dtype))
    return weights_by_name(block)


def _reference(case, y, w, h, training, members):
    """The case's integrator step along its field, per member, in float64 numpy."""
    step = NUMPY_INTEGRATORS[case.integrator_name]
    y = np.asarray(y, dtype=np.float64)
    if members is None:
        return step(numpy_field(case.field_name, w, training), y, h)
    fields = [numpy_field(case.field_name, {k: v[m] for k, v in w.items()}, training) for m in range(members)]
    return np.stack([step(fields[m], y[m], h[m]) for m in range(members)])


def test_the_paper_blocks_are_the_registered_defaults():
    """The registered names keep their meaning: field and integrator of each paper block."""
    defaults = {name: (cls.default_field, cls.default_integrator) for name, cls in BLOCKS.items()}
    assert defaults == {
        "residual": ("two_layer", "euler"), "shrinkage": ("shrinkage", "euler"), "batchnorm": ("batchnorm", "euler"),
        "rk4": ("two_layer", "rk4"), "lm": ("two_layer", "multistep"), "zeros": ("two_layer", "multistep"),
        "multistep": ("two_layer", "multistep"),
    }
    assert (BLOCKS["residual"], BLOCKS["shrinkage"], BLOCKS["batchnorm"], BLOCKS["rk4"]) == (
        StepResidual, Shrinkage, BatchNormResidual, RK4)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("case", ONE_STEP_CASES, ids=[case.id for case in ONE_STEP_CASES])
def test_block_matches_numpy_formula(case, members, training, rng):
    """Every one-step block (and field/integrator pair) is the numpy integrator step
    along the numpy field, each member with its own h (float64)."""
    block = built(make_block(case, members, dtype="float64"), members, dtype="float64")
    w = _set_known_weights(block, rng)
    y = random_state(rng, members, dtype="float64")
    expected = _reference(case, y, w, default_h(members), training, members)
    np.testing.assert_allclose(run(block, y, training), expected, atol=1e-10, rtol=0)


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
    expected = _reference(BlockCase("batchnorm"), y, w, default_h(members), True, members)
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
    expected = _reference(BlockCase("batchnorm"), y, w1, default_h(members), False, members)
    out = run(block, y, training=False)
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)
    for key, value in weights_by_name(block).items():
        np.testing.assert_array_equal(value, w1[key])
    # and differs from the training-mode output (the two modes are really different)
    assert np.max(np.abs(out - run(block, y, training=True))) > 1e-3


# ----------------------------------------------------------------------------- RK4


#: f(y) written out here for the RK4 tests: the rk4 block's field and the shrinkage field.
RK4_FIELDS = {
    "two_layer": lambda w: lambda y: np.maximum(y @ w["kernel1"] + w["bias1"], 0.0) @ w["kernel2"] + w["bias2"],
    "shrinkage": lambda w: lambda y: -(np.maximum(y @ w["kernel1"] + w["bias1"], 0.0) @ w["kernel1"].T + w["bias2"]),
}


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize(
    "make, field",
    [(lambda **kw: RK4(**kw), "two_layer"), (lambda **kw: Shrinkage(integrator="rk4", **kw), "shrinkage")],
    ids=["rk4", "shrinkage+rk4"],
)
def test_rk4_takes_a_classic_rk4_step_not_an_euler_step(make, field, members, training, rng):
    """The rk4 block, and the shrinkage block with ``integrator="rk4"`` (no class of its
    own), equal a numpy RK4 step k1 = f(y), k2 = f(y + h k1/2), k3 = f(y + h k2/2),
    k4 = f(y + h k3), y + h/6 (k1 + 2 k2 + 2 k3 + k4) along K2 σ(K1 y + b1) + b2, resp.
    f(y) = −(K1ᵀ σ(K1 y + b1) + b2), written out here (float64, 1e-10), for each member's
    own h; the Euler step of the same field is far away (> 0.1)."""
    h = 0.9 if members is None else [0.3, 0.9, 1.5]
    block = built(make(h=h, members=members, seed=4, dtype="float64"), members, dtype="float64")
    for variable in block.weights:
        variable.assign(0.8 * rng.normal(size=tuple(variable.shape)))
    w = weights_by_name(block)
    y = random_state(rng, members, dtype="float64")
    out = run(block, y, training)
    for m in range(1 if members is None else members):
        w_m = w if members is None else {k: v[m] for k, v in w.items()}
        y_m, out_m = (y, out) if members is None else (y[m], out[m])
        h_m = h if members is None else h[m]
        f = RK4_FIELDS[field](w_m)
        k1 = f(y_m)
        k2 = f(y_m + h_m / 2 * k1)
        k3 = f(y_m + h_m / 2 * k2)
        k4 = f(y_m + h_m * k3)
        np.testing.assert_allclose(out_m, y_m + h_m / 6 * (k1 + 2 * k2 + 2 * k3 + k4), atol=1e-10, rtol=0)
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


# ------------------------------------------------------------- fields and integrators by name


@pytest.mark.parametrize(
    "made, registered",
    [
        (lambda **kw: StepResidual(integrator="rk4", **kw), RK4),
        (lambda **kw: RK4(integrator="euler", **kw), StepResidual),
        (lambda **kw: OneStepBlock(field="shrinkage", **kw), Shrinkage),
        (lambda **kw: StepResidual(field="batchnorm", **kw), BatchNormResidual),
    ],
    ids=["residual+rk4=rk4", "rk4+euler=residual", "one_step+shrinkage=shrinkage", "residual+batchnorm=batchnorm"],
)
def test_a_block_class_only_chooses_defaults(made, registered, members, rng):
    """A block with another field or integrator named is the registered block that has
    those by default: same weights from the same seed, same outputs (training too)."""
    settings = dict(h=default_h(members), members=members, seed=SEEDS[:members] if members else 5)
    block, reference = built(made(**settings), members), built(registered(**settings), members)
    for a, b in zip(block.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    y = random_state(rng, members)
    for training in (False, True):
        np.testing.assert_array_equal(run(block, y, training), run(reference, y, training))


def test_the_names_are_not_ignored(rng):
    """The same weights stepped with another integrator move the state elsewhere, and
    another field has other weights (so the comparisons above are not vacuous)."""
    euler = built(Shrinkage(h=1.0, seed=2), None)
    for variable in euler.weights:
        variable.assign(0.8 * rng.normal(size=tuple(variable.shape)))
    rk4 = built(Shrinkage(h=1.0, seed=2, integrator="rk4"), None)
    rk4.set_weights(euler.get_weights())
    y = random_state(rng, None)
    assert np.max(np.abs(run(rk4, y) - run(euler, y))) > 1e-2
    assert sorted(v.name for v in built(StepResidual(seed=2, field="shrinkage"), None).weights) == [
        "bias1", "bias2", "kernel1"]


def test_unknown_field_or_integrator_names_are_refused_with_the_allowed_names():
    with pytest.raises(ValueError, match=r"^unknown field 'nope'; allowed: batchnorm, shrinkage, two_layer$"):
        StepResidual(field="nope")
    with pytest.raises(ValueError, match=r"^unknown integrator 'nope'; allowed: euler, rk4$"):
        Shrinkage(integrator="nope")
    with pytest.raises(ValueError, match=r"^unknown integrator 'nope'"):
        build_model(4, 2, "shrinkage", depth=1, integrator="nope")


def test_an_unregistered_combination_round_trips_through_its_config(perturb_weights, rng):
    """``OneStepBlock`` itself (not a registered block name) saves the names it was given."""
    block = perturb_weights(built(OneStepBlock(h=0.4, seed=1, field="shrinkage", integrator="rk4"), None))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(block))
    assert type(restored) is OneStepBlock and restored.get_config() == block.get_config()
    built(restored, None).set_weights(block.get_weights())
    y = random_state(rng, None)
    np.testing.assert_array_equal(run(restored, y), run(block, y))


def test_a_new_integrator_works_with_every_field_without_touching_them(monkeypatch, rng):
    """Registering an integrator (here the explicit midpoint rule, for the test only) is
    all it takes: every field steps with it by name."""
    def midpoint(f, y, h):
        return y + h * f(y + 0.5 * h * f(y))

    monkeypatch.setitem(INTEGRATORS, "midpoint", midpoint)
    y = random_state(rng, None, dtype="float64")
    for name in ("residual", "shrinkage", "batchnorm"):
        block = built(make_block(name, None, integrator="midpoint", dtype="float64"), None, dtype="float64")
        w = _set_known_weights(block, rng)
        f = numpy_field(block.field_name, w, training=False)
        np.testing.assert_allclose(run(block, y), y + 0.5 * f(y + 0.25 * f(y)), atol=1e-10, rtol=0)


# ------------------------------------------------------------------------ learned step sizes
#
# h = h_max·σ(clip(θ, −20, 20)). Expected values come from numpy written here (σ, logit,
# the Euler update y + h f(y) with f = K2 σ(K1 y + b1) + b2) or from a second, fixed-h
# block. Every one-step block (``learns_h``) runs the generic checks; the multistep
# blocks must refuse ``learn_h``.

LEARNS_H = sorted(name for name, cls in BLOCKS.items() if cls.learns_h)
REFUSE_H = sorted(name for name, cls in BLOCKS.items() if not cls.learns_h)
LEARNED_WIDTH = 4
H_MAX = 2.0
LEARNED_H = [0.1, 0.5, 1.5]
LEARNED_SEEDS = [5, 6, 7]


def sigmoid(t):
    return 1.0 / (1.0 + np.exp(-np.asarray(t, dtype=np.float64)))


def logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1.0 - p))


def make_learned(name, members=None, learn_h=True, h=None, h_max=H_MAX, dtype="float64", **kwargs):
    """A built block that learns h: h defaults to 0.7 (plain) or LEARNED_H, seeds fixed."""
    if h is None:
        h = 0.7 if members is None else list(LEARNED_H[:members])
    seed = 3 if members is None else list(LEARNED_SEEDS[:members])
    block = BLOCKS[name](h=h, members=members, seed=seed, learn_h=learn_h, h_max=h_max, dtype=dtype, **kwargs)
    block(tf.zeros(learned_shape(members), dtype=dtype), training=False)
    return block


def learned_shape(members, batch=BATCH):
    return (batch, LEARNED_WIDTH) if members is None else (members, batch, LEARNED_WIDTH)


def field_weights(block):
    """The block's weights other than θ (same order as a fixed-h block's)."""
    return [v.numpy() for v in block.weights if v.name != "h_logit"]


@pytest.fixture
def learned_rng():
    return np.random.default_rng(14)


def test_the_layer_stores_a_trainable_logit_per_member():
    block = make_learned("residual", members=M)
    theta = block.h_logit
    assert theta.trainable and theta.constraint is None and tuple(theta.shape) == (M,)
    np.testing.assert_allclose(theta.numpy(), logit(np.array(LEARNED_H) / H_MAX), atol=1e-12, rtol=0)
    np.testing.assert_allclose(block.step_size, LEARNED_H, atol=1e-12, rtol=0)
    plain = make_learned("residual")
    assert tuple(plain.h_logit.shape) == ()
    assert plain.step_size.shape == () and abs(float(plain.step_size) - 0.7) < 1e-12
    assert not any(v.name == "h_logit" for v in make_learned("residual", learn_h=False).weights)


def test_one_h_for_every_member_starts_every_members_logit():
    """``h`` one float with ``members``: every member's θ starts at logit(h / h_max)."""
    block = make_learned("shrinkage", members=M, h=0.3)
    np.testing.assert_allclose(block.h_logit.numpy(), np.full(M, logit(0.3 / H_MAX)), atol=1e-12, rtol=0)
    np.testing.assert_allclose(block.step_size, np.full(M, 0.3), atol=1e-12, rtol=0)


def test_h_equal_to_h_max_starts_just_below_it():
    """θ = +∞ cannot be stored: h = h_max starts at h_max·(1 − 1e-3), θ = logit(0.999)."""
    block = make_learned("residual", h=1.0, h_max=1.0)
    assert abs(float(block.h_logit.numpy()) - math.log(0.999 / 0.001)) < 1e-12
    assert abs(float(block.step_size) - 0.999) < 1e-12


@pytest.mark.parametrize("members", [None, M], ids=["plain", "members3"])
@pytest.mark.parametrize("name", LEARNS_H)
def test_at_initialisation_the_block_equals_the_fixed_h_block(name, members, learned_rng):
    """Same seed, same h: same weights and (float64, up to σ's rounding) same output."""
    learned, fixed = make_learned(name, members), make_learned(name, members, learn_h=False)
    for a, b in zip(field_weights(learned), fixed.get_weights()):
        np.testing.assert_array_equal(a, b)
    y = tf.constant(learned_rng.normal(size=learned_shape(members)))
    for training in (False, True):
        np.testing.assert_allclose(learned(y, training=training), fixed(y, training=training), atol=1e-12, rtol=0)


@pytest.mark.parametrize("members", [None, M], ids=["plain", "members3"])
def test_forward_pass_is_the_euler_step_with_h_from_a_hand_set_logit(members, learned_rng):
    """y + h (K2 relu(K1 y + b1) + b2), h = h_max σ(θ), θ set by hand (−30 is past the
    clip: h = h_max σ(−20))."""
    rng = learned_rng
    block = make_learned("residual", members)
    thetas = np.array([0.8]) if members is None else np.array([-1.3, 2.2, -30.0])
    block.h_logit.assign(thetas[0] if members is None else thetas)
    for variable in block.weights:
        if variable.name != "h_logit":
            variable.assign(0.6 * rng.normal(size=tuple(variable.shape)))
    w = {v.name: v.numpy() for v in block.weights}
    y = rng.normal(size=learned_shape(members))
    out = np.asarray(block(tf.constant(y)))
    for m in range(1 if members is None else members):
        pick = (lambda a: a) if members is None else (lambda a: a[m])
        h = H_MAX * sigmoid(np.clip(thetas[m], -20, 20))
        f = relu(pick(y) @ pick(w["kernel1"]) + pick(w["bias1"])) @ pick(w["kernel2"]) + pick(w["bias2"])
        np.testing.assert_allclose(pick(out), pick(y) + h * f, atol=1e-12, rtol=0)
    if members is not None:
        assert float(block.step_size[2]) == pytest.approx(H_MAX * sigmoid(-20.0), rel=1e-12)


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


@pytest.mark.parametrize("name", LEARNS_H)
def test_with_a_zero_learning_rate_for_h_training_equals_the_fixed_h_block(name, learned_rng):
    """θ's gradient zeroed: θ stays, and every other weight follows the fixed-h block."""
    rng = learned_rng
    learned, fixed = make_learned(name, members=M), make_learned(name, members=M, learn_h=False)
    theta0 = learned.h_logit.numpy().copy()
    y, target = tf.constant(rng.normal(size=learned_shape(M))), tf.constant(rng.normal(size=learned_shape(M)))
    _sgd_steps(learned, y, target, 3, 0.05, zero_theta_gradient=True)
    _sgd_steps(fixed, y, target, 3, 0.05)
    np.testing.assert_array_equal(learned.h_logit.numpy(), theta0)
    moved = 0.0
    for a, b, start in zip(field_weights(learned), fixed.get_weights(), field_weights(make_learned(name, members=M))):
        np.testing.assert_allclose(a, b, atol=1e-10, rtol=0)
        moved = max(moved, float(np.max(np.abs(a - start))))
    assert moved > 1e-3, "the weights should have trained"
    # and with θ's gradient left in, h moves
    free = make_learned(name, members=M)
    _sgd_steps(free, y, target, 3, 0.05)
    assert np.all(np.abs(free.step_size - np.array(LEARNED_H)) > 1e-6)


@pytest.mark.parametrize("direction", [1.0, -1.0], ids=["shrink-h", "grow-h"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_h_stays_in_its_interval_under_huge_steps(direction, dtype, learned_rng):
    """SGD with learning rate 1e6 on ±‖block(y) − y‖² (pushes h down, or up): h stays
    in (0, h_max], ends at its bounds, and θ's value never makes the forward non-finite."""
    block = make_learned("residual", members=M, dtype=dtype)
    y = tf.constant(learned_rng.normal(size=learned_shape(M)), dtype=dtype)

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
@pytest.mark.parametrize("name", LEARNS_H)
def test_gradient_wrt_theta_matches_a_finite_difference(name, members, learned_rng):
    """dL/dθ (tape) = (L(θ + ε) − L(θ − ε)) / 2ε, float64, L = Σ w·block(y); nonzero."""
    rng = learned_rng
    block = make_learned(name, members)
    y, w = tf.constant(rng.normal(size=learned_shape(members))), tf.constant(rng.normal(size=learned_shape(members)))

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


def test_euler_gradient_wrt_theta_is_the_hand_derivative(learned_rng):
    """L = Σ w·(y + h f(y)): dL/dθ = Σ w·f(y) · h_max σ(θ)(1 − σ(θ))."""
    block = make_learned("residual")
    y, w = learned_rng.normal(size=learned_shape(None)), learned_rng.normal(size=learned_shape(None))
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(w * block(tf.constant(y)))
    weights = {v.name: v.numpy() for v in block.weights}
    f = relu(y @ weights["kernel1"] + weights["bias1"]) @ weights["kernel2"] + weights["bias2"]
    s = sigmoid(block.h_logit.numpy())
    expected = np.sum(w * f) * H_MAX * s * (1 - s)
    assert float(tape.gradient(value, block.h_logit)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("name", LEARNS_H)
def test_config_round_trip_keeps_learn_h_and_h_max(name):
    block = make_learned(name, members=M, dtype="float32")
    config = block.get_config()
    assert config["learn_h"] is True and config["h_max"] == H_MAX
    clone = BLOCKS[name].from_config(config)
    assert clone.get_config() == config
    assert make_learned(name, learn_h=False).get_config()["learn_h"] is False


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


@pytest.mark.parametrize("name", REFUSE_H)
def test_multistep_blocks_refuse_learn_h(name):
    allowed = ", ".join(LEARNS_H)
    message = rf"^block '{name}' cannot learn h \(learn_h=True\); allowed: {allowed}$"
    with pytest.raises(ValueError, match=message):
        build_model(4, 2, name, depth=4, learn_h=True)
    with pytest.raises(ValueError, match=message):
        BLOCKS[name](h=0.1, learn_h=True)


# ------------------------------------------------------------------------ per-member scalars


@pytest.mark.parametrize("members", [None, 3], ids=["plain", "members3"])
def test_a_member_scalar_starts_at_its_numbers_cast_once(members):
    """Numbers: a float (every member) or one per member, float64 cast once to the
    variable's dtype: float32(−9/5) exactly, not a float32 round trip of something else."""
    block = StepResidual(h=0.1, members=members, seed=0 if members is None else [0, 1, 2])  # (before build)
    shape = () if members is None else (members,)
    one = block.add_member_scalar("one", -9 / 5)
    assert tuple(one.shape) == shape and one.trainable and one.constraint is None
    np.testing.assert_array_equal(one.numpy(), np.full(shape, np.float32(-9 / 5)))
    if members is not None:
        each = block.add_member_scalar("each", [0.25, -1.5, 3.0])
        np.testing.assert_array_equal(each.numpy(), np.float32([0.25, -1.5, 3.0]))


def test_a_member_scalar_drawn_by_an_initializer_is_the_standalone_members():
    """A Keras initialiser: member m's value is the one a standalone block with member m's
    seed draws (tag: the variable's name), and members differ."""
    init = keras.initializers.RandomUniform(-1.0, 1.0)
    seeds = [4, 8, 15]
    block = StepResidual(h=0.1, members=3, seed=seeds)
    values = block.add_member_scalar("s", init).numpy()
    for m, seed in enumerate(seeds):
        assert StepResidual(h=0.1, seed=seed).add_member_scalar("s", init).numpy() == values[m]
    assert len(set(values.tolist())) == 3
    constraint = keras.constraints.NonNeg()
    assert block.add_member_scalar("c", init, constraint=constraint).constraint is constraint

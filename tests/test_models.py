"""Tests for ``resnet_stability.models``: the generic battery at model level, for every block.

Every registered block and field/integrator pair (``block_case`` fixture in
``conftest.py``, iterated from ``conftest.BLOCK_CASES`` at collection time) is built into
a tiny stem -> blocks -> softmax model, with and without a members axis, and checked for
shapes, `.keras` save/load, a training step, members equivalence (weights, predictions
and updates), determinism and argument errors. The last sections check the builder's own
facts: structure, seeds, step sizes, fields and integrators by name, learned h, and
`.keras` files saved before the layer seams (``tests/data/saved_models``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import BlockCase, numpy_field, numpy_rk4, weights_by_name
from resnet_stability.layers import BLOCKS, MembersDense, Shrinkage, StepResidual
from resnet_stability.models import build_model
from resnet_stability.seeding import derive_seed

INPUT_DIM = 4
WIDTH = 5
N_CLASSES = 3
DEPTH = 2
BATCH = 8
M = 3
H_MEMBERS = [0.1, 0.5, 1.0]
SEEDS = [101, 202, 303]


def make_model(block_case, members=None, h=None, seed=None, **kwargs):
    """A tiny model of ``block_case`` (a :class:`~conftest.BlockCase` or a block name)."""
    block_case = BlockCase(block_case) if isinstance(block_case, str) else block_case
    if h is None:
        h = 0.5 if members is None else list(H_MEMBERS)
    if seed is None:
        seed = 1 if members is None else list(SEEDS)
    settings = dict(input_dim=INPUT_DIM, n_classes=N_CLASSES, depth=DEPTH, width=WIDTH, **block_case.options)
    settings.update(kwargs)
    return build_model(block=block_case.name, h=h, members=members, seed=seed, **settings)


def features(rng, members, input_dim=INPUT_DIM, batch=BATCH):
    shape = (batch, input_dim) if members is None else (batch, members, input_dim)
    return rng.normal(size=shape).astype("float32")


def labels(rng, members, batch=BATCH):
    shape = (batch,) if members is None else (batch, members)
    return rng.integers(0, N_CLASSES, size=shape)


def predict(model, x, training=False):
    return np.asarray(model(tf.constant(x), training=training))


def summed_member_loss(y, probs):
    """Mean over the batch, summed over members (each member sees its own gradient)."""
    per_sample = keras.losses.sparse_categorical_crossentropy(y, probs)
    per_member = tf.reduce_mean(per_sample, axis=0)
    return tf.reduce_sum(per_member)


def sgd_step(model, x, y, learning_rate=0.1):
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    with tf.GradientTape() as tape:
        loss = summed_member_loss(tf.constant(y), model(tf.constant(x), training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return float(loss)


def member_weights(model, m):
    return [np.asarray(w)[m] for w in model.get_weights()]


# ----------------------------------------------------------------------------- 1. shapes


def test_model_output_is_a_probability_per_class(block_case, members, rng):
    model = make_model(block_case, members)
    expected = (None, N_CLASSES) if members is None else (None, M, N_CLASSES)
    assert tuple(model.output_shape) == expected
    x = features(rng, members)
    for training in (False, True):
        probs = predict(model, x, training)
        assert probs.shape == (BATCH,) + expected[1:]
        assert np.all(probs >= 0.0) and np.all(probs <= 1.0)
        np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- 2-3. serialisation


def test_model_config_round_trip(block_case, members, rng, perturb_weights):
    model = perturb_weights(make_model(block_case, members))
    clone = keras.Model.from_config(model.get_config())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    assert [type(layer) for layer in clone.layers] == [type(layer) for layer in model.layers]
    for a, b in zip(clone.layers, model.layers):
        assert a.get_config() == b.get_config()
    clone.set_weights(model.get_weights())
    x = features(rng, members)
    np.testing.assert_allclose(predict(clone, x), predict(model, x), atol=1e-6, rtol=0)


def test_saved_model_loads_and_predicts_identically(block_case, members, rng, tmp_path, perturb_weights):
    # perturbed weights: a loader that re-initialised from the seeds would be caught
    model = perturb_weights(make_model(block_case, members))
    path = tmp_path / f"{block_case.id}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)

    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.get_layer("block_0").get_config()["h"] == model.get_layer("block_0").get_config()["h"]
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(loaded.weights, model.weights):
        assert a.path == b.path
        np.testing.assert_array_equal(np.asarray(a.numpy()), np.asarray(b.numpy()))
    x = features(rng, members)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- 4. training


def test_one_sgd_step_changes_every_trainable_weight(block_case, members, rng):
    model = make_model(block_case, members)
    before = {v.path: np.asarray(v.numpy()) for v in model.weights}
    loss = sgd_step(model, features(rng, members), labels(rng, members))
    assert np.isfinite(loss)

    count = 1 if members is None else members
    for variable in model.trainable_variables:
        old, new = before[variable.path], np.asarray(variable.numpy())
        for m in range(count):
            o, n = (old, new) if members is None else (old[m], new[m])
            assert np.any(np.abs(n - o) > 1e-7), f"{variable.path} (member {m}) did not change"
    # non-trainable state (batch norm's moving statistics) follows the training-mode pass
    for variable in model.non_trainable_variables:
        assert np.any(np.asarray(variable.numpy()) != before[variable.path]), variable.path


def test_train_on_batch_changes_every_trainable_weight(block_case, rng):
    model = make_model(block_case, M)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
    before = [np.asarray(v.numpy()) for v in model.trainable_variables]
    loss = model.train_on_batch(features(rng, M), labels(rng, M))
    assert np.isfinite(loss)
    for variable, old in zip(model.trainable_variables, before):
        new = np.asarray(variable.numpy())
        for m in range(M):
            assert np.any(np.abs(new[m] - old[m]) > 1e-7), f"{variable.path} (member {m}) did not change"


# ----------------------------------------------------------------------------- 5. h -> 0


def test_vanishing_step_model_is_the_head_alone(block_case, members, rng, perturb_weights):
    """With input_dim == width there is no stem; with h -> 0 the blocks vanish too."""
    tiny = 1e-7 if members is None else [1e-7] * members
    model = perturb_weights(make_model(block_case, members, h=tiny, input_dim=WIDTH))
    x = features(rng, members, input_dim=WIDTH)
    head = model.get_layer("head")
    expected = np.asarray(head(tf.constant(x)))
    for training in (False, True):
        np.testing.assert_allclose(predict(model, x, training), expected, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- 6. members


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_members_model_equals_standalone_models(block_case, rng, training):
    ensemble = make_model(block_case, M, h=H_MEMBERS, seed=SEEDS)
    singles = [make_model(block_case, None, h=H_MEMBERS[m], seed=SEEDS[m]) for m in range(M)]
    # same initial weights, variable by variable
    for m in range(M):
        assert len(singles[m].weights) == len(ensemble.weights)
        for a, b in zip(member_weights(ensemble, m), singles[m].get_weights()):
            np.testing.assert_array_equal(a, b)
    # same predictions
    x = features(rng, M)
    out = predict(ensemble, x, training)
    for m in range(M):
        np.testing.assert_allclose(out[:, m], predict(singles[m], x[:, m], training), atol=1e-6, rtol=0)


def test_members_model_takes_the_same_sgd_step_as_standalone_models(block_case, rng):
    ensemble = make_model(block_case, M, h=H_MEMBERS, seed=SEEDS)
    singles = [make_model(block_case, None, h=H_MEMBERS[m], seed=SEEDS[m]) for m in range(M)]
    x, y = features(rng, M), labels(rng, M)
    sgd_step(ensemble, x, y)
    for m in range(M):
        sgd_step(singles[m], x[:, m], y[:, m])
        for a, b in zip(member_weights(ensemble, m), singles[m].get_weights()):
            np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_members_model_does_not_mix_members(block_case, rng, training):
    model = make_model(block_case, M)
    x = features(rng, M)
    shifted = x.copy()
    shifted[:, 0] = 10.0 * shifted[:, 0] + 5.0
    out, out_shifted = predict(model, x, training), predict(model, shifted, training)
    assert np.max(np.abs(out_shifted[:, 0] - out[:, 0])) > 1e-4
    np.testing.assert_allclose(out_shifted[:, 1:], out[:, 1:], atol=1e-7, rtol=0)


def test_int_seed_gives_member_m_the_derived_seed(block_case):
    ensemble = make_model(block_case, M, seed=9)
    for m in range(M):
        single = make_model(block_case, None, h=H_MEMBERS[m], seed=derive_seed(9, "member", m))
        for a, b in zip(member_weights(ensemble, m), single.get_weights()):
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- 8. errors


def test_unknown_block_case_lists_the_allowed_names():
    with pytest.raises(ValueError, match=r"unknown block 'no_such_block'") as info:
        build_model(INPUT_DIM, N_CLASSES, block="no_such_block", depth=1)
    message = str(info.value)
    for name in sorted(BLOCKS):
        assert name in message


def test_unknown_activation_is_rejected(block_case):
    with pytest.raises(ValueError, match=r"unknown activation 'no_such_activation'"):
        make_model(block_case, activation="no_such_activation")


BAD_SIZES = [
    ("depth", -1),
    ("depth", 2.5),
    ("depth", "3"),
    ("depth", True),
    ("depth", None),
    ("width", 0),
    ("width", -3),
    ("width", 4.0),
    ("n_classes", 1),
    ("n_classes", 0),
    ("n_classes", 2.5),
    ("input_dim", 0),
    ("input_dim", 4.5),
]


@pytest.mark.parametrize("argument, bad", [pytest.param(a, b, id=f"{a}={b!r}") for a, b in BAD_SIZES])
def test_invalid_size_arguments_are_rejected(argument, bad):
    settings = dict(input_dim=INPUT_DIM, n_classes=N_CLASSES, depth=DEPTH, width=WIDTH)
    settings[argument] = bad
    with pytest.raises(ValueError, match=rf"{argument} must be an integer >= \d+, got {re.escape(repr(bad))}"):
        build_model(block=sorted(BLOCKS)[0], **settings)


def test_members_h_and_seed_lists_must_match_members(block_case):
    with pytest.raises(ValueError, match=r"h has 2 values but members=3"):
        make_model(block_case, M, h=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"seed has 4 values but members=3"):
        make_model(block_case, M, seed=[1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"h must be a finite number > 0"):
        make_model(block_case, M, h=[0.1, -0.2, 0.3])


# ----------------------------------------------------------------------------- 9. determinism


def test_same_seed_same_model_different_seed_different_model(block_case, members):
    seed_a = 5 if members is None else [5, 6, 7]
    seed_b = 8 if members is None else [8, 9, 10]
    first = make_model(block_case, members, seed=seed_a)
    again = make_model(block_case, members, seed=seed_a)
    other = make_model(block_case, members, seed=seed_b)
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    kernels = [i for i, v in enumerate(first.weights) if v.name.startswith("kernel")]
    assert len(kernels) >= DEPTH + 2  # stem, every block, head
    for i in kernels:
        assert np.max(np.abs(first.get_weights()[i] - other.get_weights()[i])) > 1e-3, first.weights[i].path


# ----------------------------------------------------------------------------- build_model structure


def test_stem_is_identity_when_input_dim_equals_width(block_case, rng):
    model = make_model(block_case, input_dim=WIDTH, width=WIDTH)
    assert [layer.name for layer in model.layers] == ["features"] + [f"block_{i}" for i in range(DEPTH)] + ["head"]
    with pytest.raises(ValueError):
        model.get_layer("stem")
    # width=None means width = input_dim, and depth 0 leaves the head alone
    bare = make_model(block_case, input_dim=WIDTH, width=None, depth=0)
    assert [layer.name for layer in bare.layers] == ["features", "head"]
    x = features(rng, None, input_dim=WIDTH)
    kernel, bias = bare.get_layer("head").get_weights()
    logits = x @ kernel + bias
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(predict(bare, x), expected, atol=1e-6, rtol=0)


def test_stem_is_a_linear_layer_when_input_dim_differs(block_case, members):
    model = make_model(block_case, members, input_dim=INPUT_DIM, width=WIDTH)
    stem = model.get_layer("stem")
    assert isinstance(stem, MembersDense)
    assert stem.units == WIDTH and stem.activation is None
    lead = () if members is None else (M,)
    assert tuple(stem.kernel.shape) == lead + (INPUT_DIM, WIDTH)
    state = (None, WIDTH) if members is None else (M, None, WIDTH)  # members first inside
    assert tuple(model.get_layer("block_0").output.shape) == state


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_model_has_exactly_depth_blocks(block_case, members, depth):
    model = make_model(block_case, members, depth=depth)
    blocks = [layer for layer in model.layers if layer.name.startswith("block_")]
    assert [layer.name for layer in blocks] == [f"block_{i}" for i in range(depth)]
    # a multistep block needing d states is preceded by d - 1 forward-Euler starters
    starters = min(depth, block_case(h=0.1).history_length - 1)
    assert all(type(layer) is StepResidual for layer in blocks[:starters])
    assert all(type(layer) is block_case.cls for layer in blocks[starters:])
    assert all(layer.field_name == block_case.field_name for layer in blocks)  # starters too
    expected_h = 0.5 if members is None else H_MEMBERS
    assert all(layer.get_config()["h"] == expected_h for layer in blocks)
    assert all(layer.members == members for layer in blocks)
    assert model.name == f"{block_case.name}_depth{depth}"


def test_extra_keyword_arguments_reach_every_block(block_case, members):
    model = make_model(block_case, members, kernel_initializer="zeros", activation="tanh")
    for i in range(DEPTH):
        block = model.get_layer(f"block_{i}")
        assert block.get_config()["activation"] == "tanh"
        kernels = [v for v in block.weights if v.name.startswith("kernel")]
        assert kernels and all(np.all(np.asarray(v.numpy()) == 0.0) for v in kernels)
    # stem and head keep their own (non-zero) Glorot kernels
    assert np.any(model.get_layer("stem").get_weights()[0] != 0.0)
    assert np.any(model.get_layer("head").get_weights()[0] != 0.0)


def test_a_non_zero_stable_multistep_model_warns_once_per_multistep_block():
    from resnet_stability.stability import ZeroStabilityWarning

    with pytest.warns(ZeroStabilityWarning) as record:
        model = build_model(4, 2, "multistep", depth=4, width=4, h=0.1, alphas=(2.0, -1.0), beta=1.0, seed=0)
    multistep_blocks = [layer for layer in model.layers if type(layer).__name__ == "Multistep"]
    assert len(multistep_blocks) == 3  # one forward-Euler starter, then three two-step blocks
    assert len([w for w in record if issubclass(w.category, ZeroStabilityWarning)]) == 3


# ----------------------------------------------------------------------------- step_sizes


def _numpy_forward(model, x, steps, block):
    """Stem -> blocks -> softmax head of a standalone model, in numpy from its weights,
    block i stepping with ``steps[i]`` (residual: y + h f(y); shrinkage: y − h (...))."""
    def w(layer):
        return {v.name: np.asarray(v.numpy()) for v in layer.weights}

    stem = w(model.get_layer("stem"))
    y = x @ stem["kernel"] + stem["bias"]
    for i, h in enumerate(steps):
        b = w(model.get_layer(f"block_{i}"))
        hidden = np.maximum(y @ b["kernel1"] + b["bias1"], 0.0)
        if block == "residual":
            y = y + h * (hidden @ b["kernel2"] + b["bias2"])
        else:
            y = y - h * (hidden @ b["kernel1"].T + b["bias2"])
    head = w(model.get_layer("head"))
    logits = y @ head["kernel"] + head["bias"]
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("block", ["residual", "shrinkage"])
def test_step_sizes_give_each_block_its_own_h(block, float64, rng, perturb_weights):
    """``build_model(step_sizes=...)``: block i's h is h_i (not ``h``), and the model's
    output equals a numpy forward pass with those h_i, for a standalone model and for
    every member of a members model (per-member h_i); with ``h`` alone it would differ."""
    steps = [0.05, 0.6, 1.7]
    model = perturb_weights(build_model(INPUT_DIM, N_CLASSES, block, depth=3, width=WIDTH, h=0.3,
                                        step_sizes=steps, seed=4))
    assert [model.get_layer(f"block_{i}").h for i in range(3)] == steps
    x = features(rng, None)
    expected = _numpy_forward(model, x, steps, block)
    np.testing.assert_allclose(predict(model, x), expected, atol=1e-12, rtol=0)
    assert np.max(np.abs(expected - _numpy_forward(model, x, [0.3] * 3, block))) > 1e-3

    member_steps = [[0.05, 0.5, 1.2], [0.6, 0.1, 0.9], [1.7, 1.0, 0.3]]  # block i: one h per member
    ensemble = perturb_weights(build_model(INPUT_DIM, N_CLASSES, block, depth=3, width=WIDTH, h=0.3,
                                           step_sizes=member_steps, members=M, seed=SEEDS))
    assert [ensemble.get_layer(f"block_{i}").h for i in range(3)] == member_steps
    x = features(rng, M)
    out = predict(ensemble, x)
    for m in range(M):
        alone = build_model(INPUT_DIM, N_CLASSES, block, depth=3, width=WIDTH,
                            step_sizes=[row[m] for row in member_steps], seed=SEEDS[m])
        alone.set_weights(member_weights(ensemble, m))
        expected = _numpy_forward(alone, x[:, m], [row[m] for row in member_steps], block)
        np.testing.assert_allclose(out[:, m], expected, atol=1e-12, rtol=0)


# ----------------------------------------------------------------------------- fields and integrators by name


@pytest.mark.parametrize("members", [None, M], ids=["plain", "members3"])
def test_shrinkage_with_rk4_is_a_numpy_rk4_network(members, float64, rng, perturb_weights):
    """``build_model(..., block="shrinkage", integrator="rk4")``: stem, then per block one
    RK4 step along f(y) = −(K1ᵀ σ(K1 y + b1) + b2) (``conftest``'s numpy references),
    then the softmax head, for every member (float64, 1e-12); no new class needed."""
    h = 0.6 if members is None else H_MEMBERS
    model = perturb_weights(build_model(INPUT_DIM, N_CLASSES, "shrinkage", depth=3, width=WIDTH, h=h,
                                        members=members, seed=SEEDS if members else 2, integrator="rk4"))
    blocks = [model.get_layer(f"block_{i}") for i in range(3)]
    assert all(type(b) is Shrinkage and (b.field_name, b.integrator_name) == ("shrinkage", "rk4") for b in blocks)
    x = features(rng, members).astype("float64")
    out = predict(model, x)
    for m in [None] if members is None else range(M):
        def w(layer):
            return weights_by_name(layer, m)

        y = (x if m is None else x[:, m]) @ w(model.get_layer("stem"))["kernel"] + w(model.get_layer("stem"))["bias"]
        for block in blocks:
            y = numpy_rk4(numpy_field("shrinkage", w(block.field)), y, h if m is None else h[m])
        head = w(model.get_layer("head"))
        logits = y @ head["kernel"] + head["bias"]
        expected = np.exp(logits - logits.max(axis=-1, keepdims=True))
        np.testing.assert_allclose(out if m is None else out[:, m], expected / expected.sum(-1, keepdims=True),
                                   atol=1e-12, rtol=0)


def test_the_euler_penalty_follows_the_integrator_not_the_block_name():
    """μ > 0 needs forward Euler: refused for shrinkage with RK4, accepted for the rk4
    block stepped with ``integrator="euler"``."""
    with pytest.raises(ValueError, match=r"^block 'shrinkage' with integrator 'rk4' is not a forward-Euler block"):
        build_model(INPUT_DIM, N_CLASSES, "shrinkage", depth=2, learn_h=True, stability_penalty=1.0, integrator="rk4")
    model = build_model(INPUT_DIM, N_CLASSES, "rk4", depth=2, learn_h=True, stability_penalty=1.0, integrator="euler")
    assert all(model.get_layer(f"block_{i}").stability_penalty == 1.0 for i in range(2))


# ----------------------------------------------------------------------------- learned h


def test_build_model_gives_every_block_a_learned_h():
    model = build_model(4, 2, "shrinkage", depth=3, h=[0.1, 0.2], members=2, seed=0, learn_h=True, h_max=0.5)
    blocks = [model.get_layer(f"block_{i}") for i in range(3)]
    assert all(b.learn_h and b.h_max == 0.5 for b in blocks)
    for b in blocks:
        np.testing.assert_allclose(b.step_size, [0.1, 0.2], rtol=1e-6)
    assert sum(v.name == "h_logit" for v in model.trainable_variables) == 3


@pytest.mark.parametrize("members", [None, M], ids=["plain", "members3"])
def test_keras_file_round_trip_keeps_the_learned_h(members, tmp_path, rng):
    h = 0.4 if members is None else [0.2, 0.4, 0.9]
    model = build_model(3, 2, "residual", depth=2, width=4, h=h, members=members, seed=1, learn_h=True, h_max=1.5)
    for index, theta in enumerate((0.3, -1.1)):
        model.get_layer(f"block_{index}").h_logit.assign(np.full(() if members is None else (members,), theta))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for index, theta in enumerate((0.3, -1.1)):
        block = loaded.get_layer(f"block_{index}")
        assert block.learn_h is True and block.h_max == 1.5 and block.get_config()["h"] == h
        expected = 1.5 / (1.0 + np.exp(-theta))  # h_max σ(θ)
        np.testing.assert_allclose(block.step_size, expected * np.ones_like(block.step_size), rtol=1e-6)
    x = rng.normal(size=(5, 3) if members is None else (5, members, 3)).astype("float32")
    np.testing.assert_array_equal(loaded(x), model(x))


# ----------------------------------------------------------------------------- files saved before


SAVED = Path(__file__).parent / "data" / "saved_models"


@pytest.mark.parametrize("name", ["batchnorm", "lm", "residual", "zeros"])
def test_models_saved_before_the_layer_seams_load_and_predict_identically(name):
    """``.keras`` files saved by the code before fields and integrators were named
    (commit 320ac7d; re-zipped with deflate to a few KB): ``build_model(2, 2, depth=3,
    seed=...)`` with residual + learned h + Euler penalty, batchnorm + learned h with 2
    members, zeros with a trainable λ, lm with a constrained k and 2 members, every
    weight perturbed. They load, name their default field and integrator, and predict
    what they predicted then (inference, then training mode) to float32 rounding: the
    matmul kernels TensorFlow picks differ by CPU (AVX-512 or not), so the last bit may
    differ from the machine that saved them (~3e-8 seen); a lost weight, a wrong h or a
    wrong default field moves predictions by far more than the 1e-6 allowed."""
    expected = json.loads((SAVED / "expected.json").read_text())[name]
    model = keras.saving.load_model(SAVED / f"{name}.keras")
    block = model.get_layer("block_2")
    assert (block.field_name, block.integrator_name) == (block.default_field, block.default_integrator)
    x = np.asarray(expected["x"], dtype="float32")
    for training, key in ((False, "inference"), (True, "training")):
        np.testing.assert_allclose(np.asarray(model(x, training=training)), np.asarray(expected[key], "float32"),
                                   rtol=0, atol=1e-6)


def test_every_block_of_a_model_has_its_own_derived_seed():
    """Block i of ``build_model(seed=s)`` is initialised as a standalone block with seed
    ``derive_seed(s, "block", i)``, the stem and head as standalone dense layers with
    ``derive_seed(s, "stem")`` and ``derive_seed(s, "head")`` (derived here by hand):
    blocks differ from each other, and a members model's member 0 is the standalone model."""
    model = build_model(4, 3, "residual", depth=3, width=5, h=0.2, seed=9)
    for i in range(3):
        alone = StepResidual(h=0.2, seed=derive_seed(9, "block", i))
        alone(np.zeros((1, 5), "float32"))
        for a, b in zip(model.get_layer(f"block_{i}").get_weights(), alone.get_weights()):
            np.testing.assert_array_equal(a, b)
    for name, units, n_in in (("stem", 5, 4), ("head", 3, 5)):  # seeds derive_seed(9, "stem"), (9, "head")
        alone = MembersDense(units, seed=derive_seed(9, name))
        alone(np.zeros((1, n_in), "float32"))
        for a, b in zip(model.get_layer(name).get_weights(), alone.get_weights()):
            np.testing.assert_array_equal(a, b)
    kernels = [model.get_layer(f"block_{i}").field.kernel1.numpy() for i in range(3)]
    assert all(np.max(np.abs(kernels[i] - kernels[j])) > 1e-3 for i in range(3) for j in range(i))
    members = build_model(4, 3, "residual", depth=3, width=5, h=[0.2, 0.2], members=2, seed=[9, 10])
    for name in ("stem", "block_0", "block_2", "head"):
        for a, b in zip(members.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a[0], b)  # member 0 (seed 9) is the standalone model
            if b.ndim == 2:  # kernels (biases start at zero for every seed)
                assert np.max(np.abs(a[1] - b)) > 1e-3  # member 1 (seed 10) is not

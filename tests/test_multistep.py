"""Tests for ``resnet_stability.layers.multistep``: the history (``history_length``,
``run_blocks``), the coefficients, fields by name, and ``ZeroStableClip`` keeping a
trainable k / λ zero-stable. Numpy references: ``conftest.numpy_field`` and the
coefficients worked out by hand below.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import numpy_field, weights_by_name
from resnet_stability import stability
from resnet_stability.layers import BLOCKS, LinearMultistep, Multistep, StepResidual, ZeroS, ZeroStableClip, run_blocks
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


#: ZeroSNet Eq. 10, α = (3(1+λ)/(4λ), −1/λ, (1+λ)/(4λ)), β = (3λ−1)/(2λ), worked out by
#: hand for a few λ (not computed by the package).
ZEROS_BY_HAND = {
    1.0: ((3 / 2, -1.0, 1 / 2), 1.0),
    2.0: ((9 / 8, -1 / 2, 3 / 8), 5 / 4),
    -2.0: ((3 / 8, 1 / 2, 1 / 8), 7 / 4),
    -9 / 5: ((1 / 3, 5 / 9, 1 / 9), 16 / 9),
}


def _numpy_field(layer):
    """f(y) of the layer's field from its weights, in numpy (``conftest.numpy_field``)."""
    return numpy_field(layer.field_name, weights_by_name(layer.field))


@pytest.mark.parametrize("trainable_lam", [False, True], ids=["fixed", "trainable"])
@pytest.mark.parametrize("lam", sorted(ZEROS_BY_HAND))
def test_zeros_layer_uses_the_paper_coefficients(lam, trainable_lam):
    """The layer's update on numpy inputs is Σ α_i y_{n−i} + h β f(y_n) with the
    hand-written α, β above and a numpy f (float64)."""
    (a0, a1, a2), beta = ZEROS_BY_HAND[lam]
    assert abs(a0 + a1 + a2 - 1.0) < 1e-12  # consistent, as the hand values must be
    h = 0.3
    layer = ZeroS(h=h, lam=lam, trainable_lam=trainable_lam, seed=0, dtype="float64")
    rng = np.random.default_rng(1)
    history = [rng.normal(size=(5, 4)) for _ in range(3)]
    layer(history)
    for variable in layer.field.weights:  # non-zero biases, so b2 and b1 count too
        variable.assign(0.7 * rng.normal(size=tuple(variable.shape)))
    out = np.asarray(layer(history))
    y_n, y_n1, y_n2 = history
    expected = a0 * y_n + a1 * y_n1 + a2 * y_n2 + h * beta * _numpy_field(layer)(y_n)
    np.testing.assert_allclose(out, expected, atol=1e-12, rtol=0)


def test_trainable_lambda_starts_at_lam_exactly_in_float64():
    layer = ZeroS(h=0.1, lam=-9 / 5, trainable_lam=True, seed=0, dtype="float64")
    layer([np.zeros((2, 3))] * 3)
    assert float(layer.lam_variable.numpy()) == -9 / 5


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


# ------------------------------------------------------------------- LM-ResNet's initial k


def test_lm_k_starts_uniform_in_minus_a_tenth_to_zero():
    """LM-ResNet initialises k ~ U[−0.1, 0]: over 200 members of 4 blocks (800 draws) and
    100 standalone seeds, every k lies in [−0.1, 0], they fill the interval (min < −0.095,
    max > −0.005), the mean is −0.05 ± 0.005 and the std 0.1/√12 ≈ 0.0289 ± 0.003 (the
    moments of U[−0.1, 0]), and no two draws are equal."""
    model = build_model(3, 2, "lm", depth=5, width=3, h=0.1, members=200, seed=11)
    members_k = [v.numpy() for v in model.variables if v.name == "k"]
    assert len(members_k) == 4 and all(k.shape == (200,) for k in members_k)
    standalone_k = []
    for seed in range(100):
        layer = LinearMultistep(h=0.1, seed=seed)
        layer([tf.zeros((2, 3)), tf.zeros((2, 3))])
        standalone_k.append(float(layer.k.numpy()))
    for k in (np.concatenate(members_k), np.asarray(standalone_k)):
        assert np.all(k >= -0.1) and np.all(k <= 0.0), (k.min(), k.max())
        assert k.min() < -0.095 and k.max() > -0.005
        assert abs(k.mean() + 0.05) < 0.005
        assert abs(k.std() - 0.1 / np.sqrt(12)) < 0.003
        assert len(np.unique(k)) == len(k)


def test_lm_k_is_the_documented_draw_of_its_members_seed():
    """Member m's k is ``numpy.random.default_rng(derive_seed(seed_m, "k")).uniform(−0.1, 0)``
    (the per-member scalar's tag is its name), written out here, in float32."""
    from resnet_stability.seeding import derive_seed

    layer = LinearMultistep(h=0.1, members=3, seed=[4, 8, 15])
    layer([tf.zeros((3, 2, 3))] * 2)
    expected = [np.random.default_rng(derive_seed(s, "k")).uniform(-0.1, 0.0, ()) for s in (4, 8, 15)]
    np.testing.assert_array_equal(layer.k.numpy(), np.float32(expected))


# ------------------------------------------------- multistep blocks with non-uniform steps


def test_zeros_blocks_with_step_sizes_keep_their_fixed_coefficients_with_each_blocks_own_h(float64):
    """With ``step_sizes`` a ZeroS model is: two forward-Euler starters with h_0, h_1, then
    y_{i+1} = 3/2 y_i − y_{i−1} + 1/2 y_{i−2} + h_i f_i(y_i) (λ = 1, β = 1 by hand), each
    block with its own h_i and the equal-spacing α, β (numpy forward pass, float64)."""
    steps = [0.1, 0.4, 0.9, 0.2, 1.3]
    model = build_model(3, 2, "zeros", depth=5, width=3, step_sizes=steps, seed=3)
    blocks = [model.get_layer(f"block_{i}") for i in range(5)]
    assert [b.h for b in blocks] == steps
    rng = np.random.default_rng(2)
    for block in blocks:
        for variable in block.weights:
            variable.assign(0.6 * rng.normal(size=tuple(variable.shape)))
    x = rng.normal(size=(7, 3))
    ys = [x]
    for i, (block, h) in enumerate(zip(blocks, steps)):
        f = _numpy_field(block)
        if i < 2:
            ys.append(ys[-1] + h * f(ys[-1]))
        else:
            ys.append(1.5 * ys[-1] - 1.0 * ys[-2] + 0.5 * ys[-3] + h * 1.0 * f(ys[-1]))
    head = model.get_layer("head")
    logits = ys[-1] @ head.kernel.numpy() + head.bias.numpy()
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-12, rtol=0)
    # the multistep blocks are not Euler steps: the same model with Euler blocks differs
    euler = ys[:3]
    for block, h in zip(blocks[2:], steps[2:]):
        euler.append(euler[-1] + h * _numpy_field(block)(euler[-1]))
    assert np.max(np.abs(euler[-1] - ys[-1])) > 1e-2


def _zeros_global_error(step_weights, lam=1.0):
    """|y_N − e^{−1}| for y' = −y on [0, 1], steps ∝ ``step_weights``, exact starting
    values, and ZeroS's fixed coefficients (λ = 1 by hand) with each step's own h."""
    (a0, a1, a2), beta = ZEROS_BY_HAND[lam]
    t = np.concatenate([[0.0], np.cumsum(step_weights / np.sum(step_weights))])
    y = list(np.exp(-t[:3]))
    for n in range(2, len(step_weights)):
        y.append(a0 * y[n] + a1 * y[n - 1] + a2 * y[n - 2] + (t[n + 1] - t[n]) * beta * (-y[n]))
    return abs(y[-1] - np.exp(-1.0))


@pytest.mark.parametrize("grading, order", [("uniform", 2.0), ("growing", 1.0), ("alternating", 1.0)])
def test_zeros_scheme_drops_to_first_order_with_non_uniform_steps(grading, order):
    """The documented caveat of ``step_sizes``: with equal steps the ZeroS scheme's global
    error falls 4x per halving of h (order 2); with steps that grow along the network
    (h ∝ 1 + 2t) or alternate (h, 2h, h, ...) only 2x (order 1). Numpy only."""
    def weights(n):
        s = (np.arange(n) + 0.5) / n
        return {"uniform": np.ones(n), "growing": 1 + 2 * s, "alternating": 1.0 + (np.arange(n) % 2)}[grading]

    errors = [_zeros_global_error(weights(n)) for n in (200, 400, 800)]
    observed = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(observed, order, atol=0.1)


# ------------------------------------------------------------- LM and trainable-λ updates


@pytest.mark.parametrize("members", [None, 3])
def test_lm_update_is_one_minus_k_times_y_n_plus_k_times_y_n_minus_1(members):
    """u_{n+1} = (1 − k) u_n + k u_{n−1} + h f(u_n) with k set by hand (per member:
    k = −0.05, 0.2, 0.6 and h = 0.1, 0.5, 1.0), numpy f, float64."""
    h = 0.4 if members is None else [0.1, 0.5, 1.0]
    ks = [-0.3] if members is None else [-0.05, 0.2, 0.6]
    layer = LinearMultistep(h=h, members=members, seed=0 if members is None else [0, 1, 2], dtype="float64")
    rng = np.random.default_rng(5)
    shape = (6, 4) if members is None else (members, 6, 4)
    history = [rng.normal(size=shape) for _ in range(2)]
    layer(history)
    for variable in layer.field.weights:
        variable.assign(0.7 * rng.normal(size=tuple(variable.shape)))
    layer.k.assign(np.asarray(ks[0] if members is None else ks))
    out = np.asarray(layer(history))
    for m in range(1 if members is None else members):
        pick = (lambda a: a) if members is None else (lambda a: a[m])
        y_n, y_n1 = pick(history[0]), pick(history[1])
        f = numpy_field("two_layer", weights_by_name(layer.field, m if members else None))(y_n)
        h_m = h if members is None else h[m]
        expected = (1 - ks[m]) * y_n + ks[m] * y_n1 + h_m * f
        np.testing.assert_allclose(pick(out), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("members", [None, 2])
def test_zeros_trainable_lambda_uses_its_current_value(members):
    """A trainable λ built at 1.0 and then set to 2.0 (member 1 of two: to −2.0) steps with
    the hand-written coefficients of λ = 2.0 (and −2.0), not those of the initial λ."""
    lams = [2.0] if members is None else [2.0, -2.0]
    layer = ZeroS(h=0.3, lam=1.0, trainable_lam=True, members=members, seed=0 if members is None else [0, 1],
                  dtype="float64")
    rng = np.random.default_rng(6)
    shape = (5, 4) if members is None else (members, 5, 4)
    history = [rng.normal(size=shape) for _ in range(3)]
    layer(history)
    layer.lam_variable.assign(np.asarray(lams[0] if members is None else lams))
    out = np.asarray(layer(history))
    for m, lam in enumerate(lams):
        pick = (lambda a: a) if members is None else (lambda a: a[m])
        (a0, a1, a2), beta = ZEROS_BY_HAND[lam]
        y_n, y_n1, y_n2 = (pick(y) for y in history)
        f = numpy_field("two_layer", weights_by_name(layer.field, m if members else None))(y_n)
        np.testing.assert_allclose(pick(out), a0 * y_n + a1 * y_n1 + a2 * y_n2 + 0.3 * beta * f, atol=1e-12, rtol=0)


def test_general_multistep_block_uses_its_alphas_and_beta():
    """Multistep(alphas=(0.5, 0.3, 0.2), beta=2.5): y_{n+1} = 0.5 y_n + 0.3 y_{n−1} +
    0.2 y_{n−2} + 2.5 h f(y_n), numpy f, float64."""
    layer = Multistep(alphas=(0.5, 0.3, 0.2), beta=2.5, h=0.3, seed=0, dtype="float64")
    rng = np.random.default_rng(8)
    history = [rng.normal(size=(5, 4)) for _ in range(3)]
    layer(history)
    for variable in layer.field.weights:
        variable.assign(0.7 * rng.normal(size=tuple(variable.shape)))
    y_n, y_n1, y_n2 = history
    expected = 0.5 * y_n + 0.3 * y_n1 + 0.2 * y_n2 + 0.3 * 2.5 * _numpy_field(layer)(y_n)
    np.testing.assert_allclose(np.asarray(layer(history)), expected, atol=1e-12, rtol=0)


# ------------------------------------------------------------------------------ the history


def test_every_block_says_how_many_states_it_reads():
    """``history_length``: 1 for the one-step blocks, d for a d-step block."""
    lengths = {name: BLOCKS[name](h=0.1).history_length for name in sorted(BLOCKS)}
    assert lengths == {"batchnorm": 1, "lm": 2, "multistep": 1, "residual": 1, "rk4": 1, "shrinkage": 1, "zeros": 3}
    assert Multistep(alphas=(0.5, 0.3, 0.2)).history_length == 3
    layer = LinearMultistep(h=0.1, seed=0)
    with pytest.raises(ValueError, match=r"needs a history of 2 states, got 3"):
        layer([tf.zeros((2, 3))] * 3)


class Recorder:
    """A stand-in block: reads ``history_length`` states, records what it was given, and
    returns its newest state plus ``shift``."""

    def __init__(self, name, history_length, shift):
        self.name, self.history_length, self.shift, self.calls = name, history_length, shift, []

    def __call__(self, inputs, **kwargs):
        self.calls.append((inputs, kwargs))
        return (inputs if self.history_length == 1 else inputs[0]) + self.shift


def test_run_blocks_gives_each_block_its_newest_states_first():
    """States y_0 = 0, y_{i+1} = y_i + 10^i: block i gets y_i alone (d = 1) or
    [y_i, y_{i−1}, …] (d states, newest first), and every call the keyword arguments."""
    blocks = [Recorder("a", 1, 1.0), Recorder("b", 2, 10.0), Recorder("c", 3, 100.0), Recorder("d", 2, 1000.0)]
    states = run_blocks(blocks, 0.0, training=False)
    assert states == [0.0, 1.0, 11.0, 111.0, 1111.0]
    assert [block.calls for block in blocks] == [
        [(0.0, {"training": False})],
        [([1.0, 0.0], {"training": False})],
        [([11.0, 1.0, 0.0], {"training": False})],
        [([111.0, 11.0], {"training": False})],
    ]
    assert run_blocks([], 5.0) == [5.0]


def test_run_blocks_refuses_a_block_without_enough_history():
    with pytest.raises(ValueError, match=r"^block 'c' needs a history of 3 states but only 2 precede it; "):
        run_blocks([Recorder("a", 1, 1.0), Recorder("c", 3, 1.0)], 0.0)


# ------------------------------------------------------------------------ fields, integrators


@pytest.mark.parametrize("name", ["lm", "multistep", "zeros"])
def test_multistep_blocks_refuse_a_one_step_integrator(name):
    message = (rf"^block '{name}' steps with the multistep scheme \(integrator='multistep'\); "
               r"integrator='rk4' is for the one-step blocks \(euler, rk4\)$")
    with pytest.raises(ValueError, match=message):
        BLOCKS[name](h=0.1, integrator="rk4")
    with pytest.raises(ValueError, match=message):
        build_model(4, 2, name, depth=3, integrator="rk4")
    assert BLOCKS[name](h=0.1, integrator="multistep").get_config()["integrator"] == "multistep"


def test_lm_along_the_shrinkage_field_and_its_starters():
    """``field="shrinkage"``: u_{n+1} = (1 − k) u_n + k u_{n−1} + h f(u_n) with
    f(u) = −(K1ᵀ σ(K1 u + b1) + b2) (numpy, float64), and ``build_model``'s forward-Euler
    starter reads the same field."""
    layer = LinearMultistep(h=0.4, seed=0, field="shrinkage", dtype="float64")
    rng = np.random.default_rng(9)
    history = [rng.normal(size=(6, 4)) for _ in range(2)]
    layer(history)
    for variable in layer.weights:
        variable.assign(0.7 * rng.normal(size=tuple(variable.shape)))
    w, k = weights_by_name(layer.field), float(layer.k.numpy())
    f = -(np.maximum(history[0] @ w["kernel1"] + w["bias1"], 0.0) @ w["kernel1"].T + w["bias2"])
    expected = (1 - k) * history[0] + k * history[1] + 0.4 * f
    np.testing.assert_allclose(np.asarray(layer(history)), expected, atol=1e-12, rtol=0)
    model = build_model(4, 2, "lm", depth=3, h=0.4, seed=0, field="shrinkage")
    starter = model.get_layer("block_0")
    assert type(starter) is StepResidual and starter.field_name == "shrinkage"


# ------------------------------------------------------------------ the zero-stability clip


def test_the_zero_stable_clip_keeps_each_family_in_its_region():
    """Values worked out by hand (margin 1e-3): LM's k into [−0.999, 1]; ZeroS's λ out of
    the gap (−1.001, 1/3 + 0.001) to its nearer end, values outside the gap unchanged."""
    values = np.array([-5.0, -1.0, -0.5, 0.0, 0.2, 1 / 3, 0.9, 1.5])
    lm = np.asarray(ZeroStableClip("lm")(values))
    np.testing.assert_allclose(lm, [-0.999, -0.999, -0.5, 0.0, 0.2, 1 / 3, 0.9, 1.0], atol=1e-12, rtol=0)
    zeros = np.asarray(ZeroStableClip("zeros")(values))
    high = 1 / 3 + 1e-3
    np.testing.assert_allclose(zeros, [-5.0, -1.001, -1.001, high, high, high, 0.9, 1.5], atol=1e-12, rtol=0)
    wide = np.asarray(ZeroStableClip("lm", margin=0.5)(values))
    np.testing.assert_allclose(wide[:3], [-0.5, -0.5, -0.5], atol=1e-12, rtol=0)


def test_the_clip_is_one_serialisable_constraint_on_k_and_lambda():
    clip = ZeroStableClip("zeros", margin=0.01)
    assert clip.get_config() == {"family": "zeros", "margin": 0.01}
    again = keras.constraints.deserialize(keras.constraints.serialize(clip))
    assert type(again) is ZeroStableClip and again.get_config() == clip.get_config()
    with pytest.raises(ValueError, match=r"^unknown zero-stability family 'adams'; allowed: lm, zeros$"):
        ZeroStableClip("adams")
    lm = LinearMultistep(h=0.1, seed=0, constrain=True)
    lm([tf.zeros((2, 3))] * 2)
    zeros = ZeroS(h=0.1, seed=0, trainable_lam=True)
    zeros([tf.zeros((2, 3))] * 3)
    assert (lm.k.constraint.family, zeros.lam_variable.constraint.family) == ("lm", "zeros")
    free = LinearMultistep(h=0.1, seed=0)
    free([tf.zeros((2, 3))] * 2)
    assert free.k.constraint is None

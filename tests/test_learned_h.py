"""Tests for learned step sizes (``learn_h=True``): h = h_max·σ(clip(θ, −20, 20)).

Expected values come from numpy written here (σ, logit, the Euler update y + h f(y)
with f = K2 σ(K1 y + b1) + b2) or from a second, fixed-h block; the engine test
compares a members model against standalone models trained by ``test_engine``'s plain
loop. Every one-step block (``learns_h``) runs the generic checks; the multistep
blocks must refuse ``learn_h``.
"""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import test_engine as engine_tests
from resnet_stability import engine
from resnet_stability.data import load_dataset, subsample_rows
from resnet_stability.experiment import resolve_spec
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


# ------------------------------------------------------------- the engine: member = standalone


@pytest.fixture(scope="module")
def wine95():
    """As ``test_engine``'s: 76 training rows, batches of 8 ending with a short one."""
    return subsample_rows(load_dataset("wine"), 95, seed=0)


class LearnedStandalone(engine_tests.Standalone):
    """``test_engine``'s plain training loop, on a standalone network that learns h."""

    def build(self, seed):
        spec = self.spec
        return build_model(
            self.dataset.n_features, self.dataset.n_classes, self.block,
            depth=spec.depth, width=spec.width, h=self.h, seed=seed, learn_h=True, h_max=spec.h_max,
        )

    def steps(self):
        return np.array([float(self.model.get_layer(f"block_{i}").step_size) for i in range(self.spec.depth)])


@pytest.mark.parametrize("block", ONE_STEP)
def test_every_member_learns_its_own_h_as_a_standalone_model_would(wine95, block, float64):
    """Members (h 0.1 and 1.0 = h_max, 2 trials) trained by the engine equal standalone
    networks trained alone: every weight (θ included), the predictions, and the
    ``learned_h`` column of the results rows."""
    spec = engine_tests.make_spec(blocks=(block,), h_values=(0.1, 1.0), learn_h=True, h_max=1.0)
    result = engine.train_cell(wine95, spec, block)
    assert not result.diverged.any()
    learned = result.learned_steps()
    assert learned.shape == (4, spec.depth)
    rows = engine.cell_records(result, spec, block, "cpu")
    test_x = engine_tests.members_input(wine95, result.plans, "test_idx")
    members_test = np.asarray(result.model(test_x, training=False))
    trainers = {h: LearnedStandalone(wine95, spec, block, h) for h in spec.h_values}
    for m, plan in enumerate(result.plans):
        standalone = trainers[plan.h]
        standalone.train(plan)
        engine_tests.assert_same_weights(result.model, m, standalone.weights())
        own = standalone.steps()
        np.testing.assert_allclose(learned[m], own, atol=engine_tests.WEIGHT_ATOL, rtol=0)
        np.testing.assert_allclose(json.loads(rows["learned_h"][m]), own, atol=engine_tests.WEIGHT_ATOL, rtol=0)
        # h trained; h = h_max starts at 0.999 h_max, where σ' = 1e-3 slows it down 250-fold
        start, moved = (0.999, 1e-7) if plan.h == spec.h_max else (plan.h, 1e-4)
        assert np.all(np.abs(own - start) > moved), f"member {m}: h should have trained, got {own}"
        assert np.all((own > 0) & (own <= spec.h_max))
        own_test = standalone.predict(engine_tests.standardized(wine95, plan, plan.test_idx))
        np.testing.assert_allclose(members_test[:, m], own_test, atol=engine_tests.PREDICTION_ATOL, rtol=0)
    # each member trains its own h: the members' learned h differ
    assert len({tuple(np.round(row, 9)) for row in learned}) == len(learned)
    # a standalone copy of member m holds its learned h
    np.testing.assert_allclose(result.member_model(3).get_layer("block_1").step_size, learned[3, 1], atol=1e-12)


def test_without_learn_h_the_rows_have_no_learned_h_column(wine95):
    spec = engine_tests.make_spec(h_values=(0.5,), trials=1, epochs=1)
    result = engine.train_cell(wine95, spec, "residual")
    assert result.learned_steps() is None
    assert "learned_h" not in engine.cell_records(result, spec, "residual", "cpu").columns


# ----------------------------------------------------------------------- the spec, the sweep


def test_a_default_spec_keeps_its_hash():
    """Hashes computed before learn_h existed (they name the stored cells)."""
    assert resolve_spec("wine", {}).cell_hash("residual") == "54dc194b5da5"
    assert resolve_spec("wine", {}).cell_hash("batchnorm") == "69f7e77306a2"
    assert resolve_spec("synthetic", {}).cell_hash("residual") == "03ea8157e4e1"
    assert "learn_h" not in resolve_spec("wine", {}).cell_config("residual")
    # h_max without learn_h changes nothing; with learn_h it is part of the cell
    assert resolve_spec("wine", {"h_max": 3.0}).cell_hash("residual") == "54dc194b5da5"
    learned = resolve_spec("wine", {"learn_h": True})
    assert learned.cell_hash("residual") != "54dc194b5da5"
    assert learned.cell_config("residual")["learn_h"] is True
    assert resolve_spec("wine", {"learn_h": True, "h_max": 2}).cell_hash("residual") == resolve_spec(
        "wine", {"learn_h": True, "h_max": 2.0}
    ).cell_hash("residual")
    assert resolve_spec("wine", {"learn_h": True, "h_max": 2.0}).cell_hash("residual") != learned.cell_hash("residual")


def test_the_spec_refuses_bad_learn_h_settings():
    with pytest.raises(ValueError, match=r"^h=0\.6 exceeds h_max=0\.5; give h <= h_max$"):  # the first above
        resolve_spec("wine", {"learn_h": True, "h_max": 0.5})
    with pytest.raises(ValueError, match=r"^block 'lm' cannot learn h"):
        resolve_spec("wine", {"learn_h": True, "blocks": ("residual", "lm")})
    with pytest.raises(ValueError, match=r"learn_h must be True or False"):
        resolve_spec("wine", {"learn_h": "yes"})
    resolve_spec("wine", {"blocks": ("lm",), "h_max": 0.5})  # fixed h: neither applies


def test_sweep_flags(capsys):
    from resnet_stability import sweep

    assert sweep.main(["--dataset", "wine", "--h-max", "2"]) == 2
    assert "--h-max only applies with --learn-h" in capsys.readouterr().err
    assert sweep.main(["--dataset", "wine", "--learn-h", "--blocks", "lm"]) == 2
    assert "block 'lm' cannot learn h" in capsys.readouterr().err
    assert sweep.main(["--dataset", "wine", "--learn-h", "--h-max", "2", "--show-config"]) == 0
    (experiment,) = json.loads(capsys.readouterr().out)["experiments"]
    assert experiment["learn_h"] is True and experiment["h_max"] == 2.0
    assert sweep.main(["--dataset", "wine", "--show-config"]) == 0
    assert json.loads(capsys.readouterr().out)["experiments"][0]["learn_h"] is False


def test_a_quick_sweep_with_learn_h_writes_the_learned_h(tmp_path, capsys):
    from resnet_stability import sweep

    out = tmp_path / "learned"
    assert sweep.main(["--dataset", "wine", "--quick", "--blocks", "residual", "--learn-h", "--out", str(out)]) == 0
    capsys.readouterr()
    table = pd.read_csv(out / "results.csv")
    steps = np.array([json.loads(text) for text in table["learned_h"]])
    assert steps.shape == (len(table), 3)  # --quick: depth 3
    assert np.all((steps > 0) & (steps <= 1.0))
    long = pd.read_csv(out / "learned_h.csv")
    assert len(long) == steps.size and list(long["block_index"][:3]) == [0, 1, 2]
    assert (out / "learned_h.png").read_bytes().startswith(b"\x89PNG")


# -------------------------------------------------------------------------- the figure


def hand_table():
    """2 blocks × h 0.2, 0.6 × 2 trials, depth 3: learned h = h + 0.1 (trial) + 0.01 (index)."""
    rows = []
    for block in ("residual", "shrinkage"):
        for h in (0.2, 0.6):
            for trial in range(2):
                steps = [h + 0.1 * trial + 0.01 * index for index in range(3)]
                rows.append(dict(dataset="wine", block=block, h=h, trial=trial, learned_h=json.dumps(steps)))
    rows.append(dict(dataset="wine", block="lm", h=0.2, trial=0, learned_h=float("nan")))  # a fixed-h row
    return pd.DataFrame(rows)


def test_learned_h_table_is_long_form():
    from resnet_stability.results import learned_h_table

    long = learned_h_table(hand_table())
    assert len(long) == 2 * 2 * 2 * 3
    row = long[(long["block"] == "shrinkage") & (long["h"] == 0.6) & (long["trial"] == 1) & (long["block_index"] == 2)]
    assert float(row["learned_h"].iloc[0]) == pytest.approx(0.6 + 0.1 + 0.02)
    assert learned_h_table(hand_table().drop(columns="learned_h")).empty


def test_learned_h_figure_draws_the_trial_mean_per_block_and_initial_h(tmp_path, monkeypatch):
    from resnet_stability import plots

    written = plots.plot_learned_h(hand_table(), tmp_path / "learned_h")
    assert [p.name for p in written] == ["learned_h.png", "learned_h.pdf"]
    assert (tmp_path / "learned_h.png").stat().st_size > 1000

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, stem: figures.append(fig) or [])
    plots.plot_learned_h(hand_table(), tmp_path / "again")
    axes = figures[0].axes
    assert [ax.get_title().split(" (")[0] for ax in axes] == ["wine × residual", "wine × shrinkage"]
    curves = [line for line in axes[0].get_lines() if line.get_linestyle() != ":"]
    assert len(curves) == 2  # one line per initial h
    np.testing.assert_allclose(curves[1].get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(curves[1].get_ydata(), [0.65, 0.66, 0.67])  # mean of the two trials
    with pytest.raises(ValueError, match="without --learn-h"):
        plots.plot_learned_h(hand_table().iloc[-1:], tmp_path / "none")

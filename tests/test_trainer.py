"""Tests for the trainer (``resnet_stability.sweep.trainer``): a cell's members trained at once.

The key test is equivalence: member m of a members model trained by ``train_cell`` is
the same network as a standalone ``build_model`` trained by a plain loop written here
(same seed, split, standardiser, batch order, optimiser), for every registered block
(``sorted(BLOCKS)`` at collection time, so later blocks are covered without editing
this file), and so with learned step sizes and with the Euler-stability penalty (the
standalone loss then adds ``model.losses``). Then divergence, multi-level training and
the per-member Prop. 1 statistic (compared with the spectra module's ``euler_statistic``
on the standalone member, ``CellResult.member_model``).

The equivalence tests train in float64 (``keras.config.set_floatx``): batched and
plain matmuls round differently, and in float32 such a difference of ~1e-7 can put a
ReLU pre-activation on the other side of 0, wake a unit that had no gradient, and let
Adam (which normalises the step) move its weights by ~lr: a real but rounding-made
divergence that says nothing about the trainer. In float64 the members and the
standalone networks agree to 1e-9 (weights and predictions); accuracies are compared
exactly (both are counts / n); runs of the same cell configuration are compared with
atol 1e-6 or exactly.
"""

from __future__ import annotations

import json
import math

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from helpers import make_spec

from resnet_stability.analysis.members_spectra import is_euler_block, members_euler_factors
from resnet_stability.analysis.spectra import euler_statistic, jacobian_spectra
from resnet_stability.data import load_dataset, simulate_transactions
from resnet_stability.layers import BLOCKS
from resnet_stability.models import build_model
from resnet_stability.multilevel import model_blocks
from resnet_stability.plots import plot_accuracy_over_time
from resnet_stability.sweep.experiment import resolve_spec
from resnet_stability.sweep.plan import BatchOrder, plan_members
from resnet_stability.sweep.records import cell_records, time_records
from resnet_stability.seeding import derive_seed
from resnet_stability.sweep.trainer import (
    STABILITY_SAMPLE,
    MemoryBatches,
    make_optimizer,
    noise_sources,
    run_epochs,
    stability_rows,
    train_cell,
    train_cells_together,
    xla_mode,
)

ONE_STEP = sorted(name for name, cls in BLOCKS.items() if cls.learns_h)
WEIGHT_ATOL = 1e-9
WEIGHT_RTOL = 0.0
PREDICTION_ATOL = 1e-9
SAME_RUN_ATOL = 1e-6
STAT_ATOL = 1e-5  # float32 Jacobians: batched and plain matmuls round differently


# --------------------------------------------------------------------------- helpers


def standardized(dataset, plan, rows) -> np.ndarray:
    return ((dataset.X[rows] - plan.mean) / plan.scale).astype(keras.config.floatx())


def members_input(dataset, plans, which: str) -> np.ndarray:
    """(n, M, d): slice m holds member m's ``which`` rows ("train_idx"/"test_idx")."""
    return np.stack([standardized(dataset, p, getattr(p, which)) for p in plans], axis=1)


def accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Fraction right; a row with any non-finite probability counts as wrong."""
    probabilities = np.asarray(probabilities)
    finite = np.isfinite(probabilities).all(axis=-1)
    hit = (np.argmax(np.where(np.isfinite(probabilities), probabilities, -np.inf), axis=-1) == labels) & finite
    return float(np.mean(hit))


class Standalone:
    """Standalone (no members axis) networks of one block and h, trained by a plain loop.

    No trainer code is used but ``make_optimizer`` (and the plans: ``plan_members``,
    ``BatchOrder``).
    ``train(plan)`` builds ``build_model(..., h=plan.h, seed=plan.seed)`` and trains it
    on the plan's own split, standardiser and batch order. To trace the ``tf.function``
    step once per h rather than once per member (eager Keras steps cost ~80 ms each on
    this CPU), the networks of one h share one model object and one optimiser: before
    each member, every variable of that model is set from the member's freshly built
    ``build_model`` and the optimiser's variables are put back to their initial values,
    which is exactly a fresh model and a fresh optimiser.
    """

    #: add the losses the layers add in training (``model.losses``) to the cross-entropy
    with_layer_losses = False

    def __init__(self, dataset, spec, block, h):
        self.dataset, self.spec, self.block, self.h = dataset, spec, block, h
        self.model = self.build(seed=0)
        self.optimizer = make_optimizer(spec.optimizer, spec.lr)
        self.optimizer.build(self.model.trainable_variables)
        self.fresh_optimizer = [v.numpy().copy() for v in self.optimizer.variables]
        model, optimizer = self.model, self.optimizer

        @tf.function(
            input_signature=[
                tf.TensorSpec((None, dataset.n_features), keras.config.floatx()),
                tf.TensorSpec((None,), tf.int64),
            ]
        )
        def step(x, y):
            with tf.GradientTape() as tape:
                probabilities = model(x, training=True)
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probabilities))
                if self.with_layer_losses and model.losses:  # e.g. the Euler-stability penalty
                    loss = loss + tf.add_n(model.losses)
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply(grads, model.trainable_variables)
            return loss

        self.step = step

    def build(self, seed):
        spec = self.spec
        return build_model(
            self.dataset.n_features, self.dataset.n_classes, self.block,
            depth=spec.depth, width=spec.width, h=self.h, seed=seed,
        )

    def train(self, plan, stop_at_nonfinite=False):
        """Train ``plan``'s network; returns info (steps, diverged_epoch).

        With ``stop_at_nonfinite`` the loop stops at the first step whose loss or updated
        weights are not finite and puts back the weights from before that step;
        ``info["diverged_epoch"]`` is then that step's epoch counted from 1 (else None)
        and ``info["diverged_weights"]`` the values that step produced.
        """
        assert plan.h == self.h
        fresh = self.build(seed=plan.seed)
        assert [v.path for v in fresh.variables] == [v.path for v in self.model.variables]
        for v, value in zip(self.model.variables, fresh.variables):
            v.assign(value.numpy())
        for v, value in zip(self.optimizer.variables, self.fresh_optimizer):
            v.assign(value)
        self.initial = {v.path: v.numpy().copy() for v in fresh.variables}

        dataset, spec, model = self.dataset, self.spec, self.model
        order = BatchOrder([plan])
        info = dict(diverged_epoch=None, steps=0)
        for epoch in range(spec.epochs):
            rows = order.next_epoch()[:, 0]
            for start in range(0, len(rows), spec.batch_size):
                batch = rows[start : start + spec.batch_size]
                before = [v.numpy().copy() for v in model.variables] if stop_at_nonfinite else None
                loss = self.step(standardized(dataset, plan, batch), dataset.y[batch].astype(np.int64))
                info["steps"] += 1
                if stop_at_nonfinite:
                    finite = np.isfinite(loss.numpy()) and all(np.isfinite(v.numpy()).all() for v in model.variables)
                    if not finite:
                        info["diverged_weights"] = [v.numpy().copy() for v in model.variables]
                        for v, old in zip(model.variables, before):
                            v.assign(old)
                        info["diverged_epoch"] = epoch + 1
                        return info
        return info

    def weights(self):
        return {v.path: np.asarray(v.numpy()).copy() for v in self.model.variables}

    def predict(self, x):
        return np.asarray(self.model(x, training=False))


class LearnedStandalone(Standalone):
    """The plain training loop of :class:`Standalone`, on a standalone network that learns h."""

    def build(self, seed):
        spec = self.spec
        return build_model(
            self.dataset.n_features, self.dataset.n_classes, self.block,
            depth=spec.depth, width=spec.width, h=self.h, seed=seed, learn_h=True, h_max=spec.h_max,
        )

    def steps(self):
        return np.array([float(self.model.get_layer(f"block_{i}").step_size) for i in range(self.spec.depth)])


class PenalisedStandalone(Standalone):
    """The plain loop of :class:`Standalone`; the loss adds the model's own losses (the penalty)."""

    with_layer_losses = True

    def build(self, seed):
        spec = self.spec
        return build_model(
            self.dataset.n_features, self.dataset.n_classes, self.block, depth=spec.depth, width=spec.width,
            h=self.h, seed=seed, learn_h=True, h_max=spec.h_max, stability_penalty=spec.stability_penalty,
        )


def member_weights(members_model, m):
    return {v.path: np.asarray(v.numpy())[m] for v in members_model.variables}


def assert_same_weights(members_model, m, standalone_weights, atol=WEIGHT_ATOL, rtol=WEIGHT_RTOL):
    mine = member_weights(members_model, m)
    assert list(mine) == list(standalone_weights), "members and standalone models have different variables"
    for path, value in standalone_weights.items():
        np.testing.assert_allclose(mine[path], value, atol=atol, rtol=rtol, err_msg=f"member {m}: {path}")


# ----------------------------------------------------------------------- equivalence


EQUIVALENCE_CASES = [(block, "adam", 1e-2) for block in sorted(BLOCKS)] + [("residual", "sgd", 1e-1)]


@pytest.mark.parametrize(
    "block, optimizer, lr", EQUIVALENCE_CASES, ids=[f"{b}-{o}" for b, o, _ in EQUIVALENCE_CASES]
)
def test_every_member_equals_a_standalone_model(wine95, block, optimizer, lr, float64):
    spec = make_spec(blocks=(block,), optimizer=optimizer, lr=lr)
    result = train_cell(wine95, spec, block)
    plans = result.plans
    assert len(plans) == 4
    assert len(plans[0].train_idx) % spec.batch_size != 0, "the last batch should be short"
    assert not result.diverged.any()

    test_x = members_input(wine95, plans, "test_idx")
    members_test = np.asarray(result.model(test_x, training=False))
    trainers = {h: Standalone(wine95, spec, block, h) for h in spec.h_values}
    for m, plan in enumerate(plans):
        standalone = trainers[plan.h]
        info = standalone.train(plan)
        assert info["steps"] == spec.epochs * math.ceil(len(plan.train_idx) / spec.batch_size)
        weights = standalone.weights()
        assert_same_weights(result.model, m, weights)
        # the weights moved: the comparison is not between two untrained models
        moved = max(float(np.max(np.abs(weights[k] - standalone.initial[k]))) for k in weights)
        assert moved > 1e-3

        own_test = standalone.predict(standardized(wine95, plan, plan.test_idx))
        np.testing.assert_allclose(members_test[:, m], own_test, atol=PREDICTION_ATOL, rtol=0)
        assert result.test_accuracy[m] == accuracy(own_test, wine95.y[plan.test_idx])
        own_train = standalone.predict(standardized(wine95, plan, plan.train_idx))
        assert result.train_accuracy[m] == accuracy(own_train, wine95.y[plan.train_idx])


def test_a_cell_gives_the_same_members_with_any_number_of_shards(wine95, float64):
    """Shards are consecutive members (3 + 3, 2 + 2 + 2): same weights, losses and
    accuracies as one members model, and ``result.model`` joins them in member order."""
    spec = make_spec(blocks=("batchnorm",), h_values=(0.1, 0.5, 1.0), trials=2)
    results = {n: train_cell(wine95, spec, "batchnorm", shards=n) for n in (1, 2, 3)}
    assert [len(r.shards) for r in results.values()] == [1, 2, 3]
    assert [int(m.output_shape[1]) for m in results[3].shards] == [2, 2, 2]
    one = results[1]
    for n in (2, 3):
        other = results[n]
        np.testing.assert_array_equal(other.test_accuracy, one.test_accuracy)
        np.testing.assert_array_equal(other.train_accuracy, one.train_accuracy)
        np.testing.assert_allclose(other.final_loss, one.final_loss, atol=WEIGHT_ATOL, rtol=0)
        for m in range(len(one.plans)):
            assert_same_weights(other.model, m, member_weights(one.model, m))
            for a, b in zip(other.member_model(m).variables, one.member_model(m).variables):
                np.testing.assert_allclose(a.numpy(), b.numpy(), atol=WEIGHT_ATOL, rtol=0)


@pytest.mark.parametrize("block", ONE_STEP)
def test_every_member_learns_its_own_h_as_a_standalone_model_would(wine95, block, float64):
    """Members (h 0.1 and 1.0 = h_max, 2 trials) trained by the engine equal standalone
    networks trained alone: every weight (θ included), the predictions, and the
    ``learned_h`` column of the results rows."""
    spec = make_spec(blocks=(block,), h_values=(0.1, 1.0), learn_h=True, h_max=1.0)
    result = train_cell(wine95, spec, block)
    assert not result.diverged.any()
    learned = result.learned_steps()
    assert learned.shape == (4, spec.depth)
    rows = cell_records(result, spec, block, "cpu")
    test_x = members_input(wine95, result.plans, "test_idx")
    members_test = np.asarray(result.model(test_x, training=False))
    trainers = {h: LearnedStandalone(wine95, spec, block, h) for h in spec.h_values}
    for m, plan in enumerate(result.plans):
        standalone = trainers[plan.h]
        standalone.train(plan)
        assert_same_weights(result.model, m, standalone.weights())
        own = standalone.steps()
        np.testing.assert_allclose(learned[m], own, atol=WEIGHT_ATOL, rtol=0)
        np.testing.assert_allclose(json.loads(rows["learned_h"][m]), own, atol=WEIGHT_ATOL, rtol=0)
        # h trained; h = h_max starts at 0.999 h_max, where σ' = 1e-3 slows it down 250-fold
        start, moved = (0.999, 1e-7) if plan.h == spec.h_max else (plan.h, 1e-4)
        assert np.all(np.abs(own - start) > moved), f"member {m}: h should have trained, got {own}"
        assert np.all((own > 0) & (own <= spec.h_max))
        own_test = standalone.predict(standardized(wine95, plan, plan.test_idx))
        np.testing.assert_allclose(members_test[:, m], own_test, atol=PREDICTION_ATOL, rtol=0)
    # each member trains its own h: the members' learned h differ
    assert len({tuple(np.round(row, 9)) for row in learned}) == len(learned)
    # a standalone copy of member m holds its learned h
    np.testing.assert_allclose(result.member_model(3).get_layer("block_1").step_size, learned[3, 1], atol=1e-12)


def test_every_member_trains_with_its_own_penalty_as_a_standalone_model_would(wine95, float64):
    """Members (h 0.7 and 1.9, 2 trials; μ = 5) equal standalone networks trained with the
    penalty in their loss, and the penalty pulls the learned h below where it goes without."""
    spec = make_spec(h_values=(0.7, 1.9), learn_h=True, h_max=2.0, stability_penalty=5.0)
    result = train_cell(wine95, spec, "residual")
    assert not result.diverged.any()
    rows = cell_records(result, spec, "residual", "cpu")
    assert set(rows["stability_penalty"]) == {5.0}
    trainers = {h: PenalisedStandalone(wine95, spec, "residual", h) for h in spec.h_values}
    for m, plan in enumerate(result.plans):
        trainers[plan.h].train(plan)
        assert_same_weights(result.model, m, trainers[plan.h].weights())
    free = train_cell(wine95, make_spec(h_values=(0.7, 1.9), learn_h=True, h_max=2.0), "residual")
    assert np.all(result.learned_steps()[2:] < free.learned_steps()[2:] - 1e-3)  # the h = 1.9 members


def test_the_penalty_trains_where_the_step_is_compiled_whole(wine95):
    """``--jit on`` compiles the whole step with XLA, which has no eigen-decomposition:
    a cell with the penalty compiles only its update instead of failing."""
    spec = make_spec(h_values=(1.0,), trials=1, epochs=1, learn_h=True, stability_penalty=1.0)
    result = train_cell(wine95, spec, "residual", xla="step")
    assert np.isfinite(result.test_accuracy).all()


def test_cells_trained_together_give_each_cell_its_own_members(wine95, float64):
    """Three blocks' cells in one members step (train_cells_together) against each cell
    trained alone: the same weights, losses, accuracies, noise scores and statistic, and
    each result holds only its own block's members."""
    blocks = ("residual", "batchnorm", "shrinkage")
    spec = make_spec(blocks=blocks, noise_levels=(0.0, 0.5), noise_kinds=("gaussian",))
    together = train_cells_together(wine95, spec, blocks)
    assert list(together) == list(blocks)
    for block in blocks:
        alone, mine = train_cell(wine95, spec, block), together[block]
        assert [(p.h, p.seed) for p in mine.plans] == [(p.h, p.seed) for p in alone.plans]
        assert {type(layer).__name__ for layer in mine.model.layers} == {type(layer).__name__ for layer in alone.model.layers}
        for name in ("test_accuracy", "train_accuracy", "test_accuracy_last_finite", "diverged", "diverged_epoch"):
            np.testing.assert_array_equal(getattr(mine, name), getattr(alone, name), err_msg=name)
        assert mine.noise_accuracy.keys() == alone.noise_accuracy.keys()
        for key in alone.noise_accuracy:
            np.testing.assert_array_equal(mine.noise_accuracy[key], alone.noise_accuracy[key])
        for name in ("final_loss", "euler_max", "euler_stable_share"):
            np.testing.assert_allclose(getattr(mine, name), getattr(alone, name), atol=WEIGHT_ATOL, rtol=0, err_msg=name)
        for m in range(len(alone.plans)):
            assert_same_weights(mine.model, m, member_weights(alone.model, m))
        assert 0 < mine.seconds


def test_cells_trained_together_keep_divergence_per_member(wine95):
    blocks = ("batchnorm", "residual")  # at h = 10 the residual members diverge, the batch-norm ones not
    spec = make_spec(**{**DIVERGE_SPEC, "h_values": (0.1, 10.0)}, blocks=blocks)
    together = train_cells_together(wine95, spec, blocks)
    for block in blocks:
        alone = train_cell(wine95, spec, block)
        np.testing.assert_array_equal(together[block].diverged, alone.diverged)
        np.testing.assert_array_equal(together[block].diverged_epoch, alone.diverged_epoch)
        np.testing.assert_array_equal(together[block].test_accuracy, alone.test_accuracy)
    # (the configuration still tells the blocks apart)
    assert together["residual"].diverged.any() and not together["batchnorm"].diverged.any()


def test_cells_trained_together_need_data_in_memory_and_plain_training(wine95):
    with pytest.raises(ValueError, match="plain training \\(levels 1\\), not levels 2"):
        train_cells_together(wine95, make_spec(levels=2), ("residual",))


# ------------------------------------------------------------------------ divergence


#: Divergence configuration: plain SGD (lr 0.1) on a depth-3 residual network. With
#: h = 1000 the residual branch multiplies activations by ~1e3 per block, so the first
#: gradient is ~1e9 and the first SGD step takes the weights to ~1e8; the next forward
#: pass overflows float32 and the loss is NaN (step 2 of epoch 0). With h = 0.1 the same
#: settings train normally.
DIVERGE_SPEC = dict(h_values=(0.1, 1000.0), trials=2, depth=3, width=8, epochs=3, optimizer="sgd", lr=0.1)


@pytest.mark.parametrize("shards", [1, 2], ids=["one-shard", "two-shards"])
def test_divergence_is_data_and_other_members_train_on(wine95, shards):
    """With one shard, healthy and diverging members share every variable; with two,
    the diverging members (h = 1000) are the second shard."""
    spec = make_spec(**DIVERGE_SPEC)
    result = train_cell(wine95, spec, "residual", shards=shards)
    plans = result.plans
    big = np.array([p.h == 1000.0 for p in plans])
    np.testing.assert_array_equal(result.diverged, big)
    np.testing.assert_array_equal(result.diverged_epoch[~big], -1)
    assert (result.diverged_epoch[big] >= 1).all()  # epochs counted from 1
    for v in result.model.variables:
        assert np.isfinite(v.numpy()).all(), f"{v.path} not restored to finite values"

    test_x = members_input(wine95, plans, "test_idx")
    probabilities = np.asarray(result.model(test_x, training=False))
    standalone = Standalone(wine95, spec, "residual", 1000.0)
    for m in np.flatnonzero(big):
        plan = plans[m]
        # the standalone network does hit a non-finite loss or weights, in the same epoch
        info = standalone.train(plan, stop_at_nonfinite=True)
        assert info["diverged_epoch"] is not None, "the configuration no longer diverges"
        assert result.diverged_epoch[m] == info["diverged_epoch"]
        # restored to the last finite values: those before the step that blew up. These
        # weights are ~1e8 after one huge SGD step whose gradient sums cancel, so compare
        # each variable to within 1e-4 of its largest magnitude (atol = 1e-4 * max|w|).
        mine = member_weights(result.model, m)
        for path, value in standalone.weights().items():
            atol = 1e-4 * float(np.max(np.abs(value))) + 1e-6
            np.testing.assert_allclose(mine[path], value, atol=atol, rtol=0, err_msg=f"member {m}: {path}")
        assert max(float(np.max(np.abs(w))) for w in mine.values()) > 1e3, "expected the huge first step"
        # the last finite weights scored from what they predict, non-finite outputs counted
        # wrong (here the restored ~1e8 weights overflow again: NaN outputs, which tf.argmax
        # would otherwise read as class 0, a third of Wine)
        assert not np.isfinite(probabilities[:, m]).all(), "expected non-finite outputs"
        assert result.test_accuracy_last_finite[m] == accuracy(probabilities[:, m], wine95.y[plan.test_idx])
        # the member itself is scored as the network its diverging step produced
        for v, value in zip(standalone.model.variables, info["diverged_weights"]):
            v.assign(value)
        diverged_net = standalone.predict(standardized(wine95, plan, plan.test_idx))
        assert result.test_accuracy[m] == accuracy(diverged_net, wine95.y[plan.test_idx])
        assert 0.0 <= result.test_accuracy[m] <= 1.0

    # the strong check: healthy members are exactly what they are without the others
    healthy_plans = [p for p, b in zip(plans, big) if not b]
    alone = train_cell(wine95, spec, "residual", plans=healthy_plans, shards=1)
    assert not alone.diverged.any()
    healthy = np.flatnonzero(~big)
    for k, m in enumerate(healthy):
        mine = member_weights(result.model, m)
        for path, value in member_weights(alone.model, k).items():
            np.testing.assert_allclose(mine[path], value, atol=SAME_RUN_ATOL, rtol=0, err_msg=path)
    np.testing.assert_array_equal(result.test_accuracy[healthy], alone.test_accuracy)
    np.testing.assert_array_equal(result.test_accuracy_last_finite[healthy], alone.test_accuracy)
    np.testing.assert_array_equal(result.train_accuracy[healthy], alone.train_accuracy)
    np.testing.assert_allclose(result.final_loss[healthy], alone.final_loss, atol=SAME_RUN_ATOL, rtol=0)
    assert np.isfinite(result.final_loss[healthy]).all()


# --------------------------------------------------------------- epochs, determinism


class _ScriptedStep:
    """A stand-in for ``MembersTrainStep``: each batch is the members' losses; member 1
    dies in the first step of epoch 1 (its loss reads 0 from then on)."""

    members = 3

    def __init__(self):
        self.steps, self.alive_flags, self.written = 0, np.ones(3, bool), False

    def __call__(self, batch):
        self.steps += 1
        if self.steps == 3:
            self.alive_flags[1] = False
        return tf.constant(np.where(self.alive_flags, batch, 0.0)), tf.constant(self.alive_flags)

    def alive(self):
        return self.alive_flags.copy()

    def write_back(self):
        self.written = True


def test_run_epochs_reports_the_last_epochs_mean_loss_and_nan_for_dead_members():
    """Final loss = each member's mean step loss over the LAST epoch (by hand: epoch 1's
    losses are (2, 4, 6) and (6, 8, 10), so 4 and 8), NaN for the member that died."""
    seen = []
    step = _ScriptedStep()
    batches = lambda epoch: [np.array([1.0, 2.0, 3.0]) * (epoch + 1), np.array([3.0, 4.0, 5.0]) * (epoch + 1)]
    final_loss, diverged_epoch = run_epochs(step, 2, batches, lambda *args: seen.append(args))
    np.testing.assert_array_equal(final_loss, [4.0, np.nan, 8.0])
    assert diverged_epoch[0] == diverged_epoch[2] == -1 and diverged_epoch[1] >= 0
    assert step.written and [s[0] for s in seen] == [0, 1]
    np.testing.assert_array_equal(seen[0][1], [2.0, 3.0, 4.0])  # epoch 0: all alive
    np.testing.assert_array_equal(seen[1][2], [True, False, True])


RECORD_NUMBERS = ["test_accuracy", "final_loss", "train_accuracy", "diverged", "diverged_epoch", "seed"]


def test_same_spec_gives_identical_numbers(wine95, batchnorm_cell):
    spec, _, first = batchnorm_cell
    again = train_cell(wine95, spec, "batchnorm")
    second = cell_records(again, spec, "batchnorm", "CPU:0 test")
    pd.testing.assert_frame_equal(first[RECORD_NUMBERS], second[RECORD_NUMBERS], check_exact=True)


# ---------------------------------------------------------- scores and member models


def test_huge_noise_drives_accuracy_down(noisy_cell):
    _, result, table = noisy_cell
    huge = table[(table["noise"] == "gaussian") & (table["level"] == 50.0)]["accuracy"]
    assert result.test_accuracy.mean() > 0.6
    assert huge.mean() < result.test_accuracy.mean() - 0.2


def test_time_split_scores_every_later_window(tmp_path):
    path = simulate_transactions(tmp_path / "tx.csv", n_rows=1500, seed=3)
    dataset = load_dataset("bitcoin", path=str(path))
    spec = resolve_spec("bitcoin", dict(blocks=("shrinkage",), h_values=(0.2, 1.0), trials=1, depth=2, epochs=2,
                                         batch_size=64, data_path=str(path)))
    result = train_cell(dataset, spec, "shrinkage")
    split = result.plans[0].time_split
    table = time_records(result, spec, "shrinkage")
    assert sorted(table["window"].unique()) == [w.index for w in split.windows]
    assert len(table) == len(split.windows) * spec.members_per_cell
    first = table[table["window"] == split.windows[0].index]["accuracy"].to_numpy()
    np.testing.assert_array_equal(first, result.test_accuracy)  # test_accuracy is the next window
    train_end = dataset.time[result.plans[0].train_idx].max()
    assert train_end < dataset.time[split.windows[0].idx].min()  # trained strictly before testing
    paths = plot_accuracy_over_time(table, tmp_path / "time", split.describe())
    assert all(p.stat().st_size > 0 for p in paths)


def test_member_model_is_member_m_as_a_standalone_network(noisy_cell):
    _, result, _ = noisy_cell
    x = np.random.default_rng(0).normal(size=(7, len(result.plans), result.build_args["input_dim"]))
    together = np.asarray(result.model(x.astype("float32"), training=False))
    for m in (0, len(result.plans) - 1):
        alone = result.member_model(m)
        assert alone.layers[1].members is None
        np.testing.assert_allclose(np.asarray(alone(x[:, m].astype("float32"))), together[:, m], atol=1e-6)


def test_xla_choice():
    assert xla_mode("auto", "cpu") == "update" and xla_mode("auto", "gpu") == "step"
    assert xla_mode("on", "cpu") == "step" and xla_mode("off", "gpu") == "off"
    with pytest.raises(ValueError, match="unknown jit choice 'maybe'"):
        xla_mode("maybe", "cpu")


# -------------------------------------------------------------- multi-level training


def test_two_levels_train_then_prolong_then_train(wine95):
    """Level 1 is exactly the one-level cell; level 2 trains depth 2D at h/2, and the
    row's test accuracy is the last level's."""
    one = train_cell(wine95, make_spec(epochs=1), "residual", stability=False)
    spec = make_spec(epochs=1, levels=2)
    two = train_cell(wine95, spec, "residual", stability=False)
    assert two.level_accuracy.shape == (len(two.plans), 2)
    np.testing.assert_array_equal(two.level_accuracy[:, 0], one.test_accuracy)
    np.testing.assert_array_equal(two.level_accuracy[:, 1], two.test_accuracy)
    blocks = model_blocks(two.shards[0])
    assert len(blocks) == 2 * spec.depth
    first_steps = np.concatenate([model_blocks(shard)[0].step_size for shard in two.shards])
    np.testing.assert_allclose(first_steps, [p.h / 2 for p in two.plans])
    # a standalone member network holds the trained depth-2D, h/2 member
    x = members_input(wine95, two.plans, "test_idx")
    together = two.model(x, training=False).numpy()
    for m in (0, len(two.plans) - 1):
        alone = two.member_model(m)
        assert len(model_blocks(alone)) == 4
        np.testing.assert_allclose(alone(x[:, m], training=False).numpy(), together[:, m], atol=1e-5)
    rows = cell_records(two, spec, "residual", "cpu")
    assert (rows["levels"] == 2).all()
    first = json.loads(rows["level_accuracy"][0])
    assert first == pytest.approx(list(two.level_accuracy[0])) and rows["test_accuracy"][0] == first[-1]
    assert "level_accuracy" not in cell_records(one, make_spec(epochs=1), "residual", "cpu").columns


def test_a_member_that_diverges_stays_dead_at_later_levels(wine95):
    """h = 1000 diverges in level 1: its row is level 1's (as without levels), its
    later level is null; the healthy members train on."""
    settings = dict(DIVERGE_SPEC, epochs=1)
    one = train_cell(wine95, make_spec(**settings), "residual", stability=False)
    two = train_cell(wine95, make_spec(**settings, levels=2), "residual", stability=False)
    big = np.array([p.h == 1000.0 for p in two.plans])
    np.testing.assert_array_equal(two.diverged, big)
    np.testing.assert_array_equal(two.diverged_epoch, one.diverged_epoch)
    np.testing.assert_array_equal(two.test_accuracy[big], one.test_accuracy[big])
    np.testing.assert_array_equal(two.test_accuracy_last_finite[big], one.test_accuracy_last_finite[big])
    assert np.isnan(two.level_accuracy[big, 1]).all() and np.isfinite(two.level_accuracy[~big]).all()


def test_progress_counts_epochs_over_all_levels(wine95):
    seen = []
    train_cell(
        wine95, make_spec(epochs=2, levels=2), "residual", stability=False,
        on_epoch_end=lambda epoch, losses, alive: seen.append(epoch),
    )
    assert seen == [0, 1, 2, 3]


@pytest.mark.parametrize("block, learn_h", [("batchnorm", False), ("residual", True)], ids=["batchnorm", "learn_h"])
def test_levels_with_batchnorm_and_learned_h(wine95, block, learn_h):
    """Batch-norm statistics and learned steps go through the prolongation and the
    level-2 training (the learned h start at half the level-1 values)."""
    spec = make_spec(blocks=(block,), epochs=1, levels=2, learn_h=learn_h)
    result = train_cell(wine95, spec, block)
    assert np.isfinite(result.level_accuracy).all() and not result.diverged.any()
    rows = cell_records(result, spec, block, "cpu")
    if learn_h:
        assert result.learned_steps().shape == (len(result.plans), 2 * spec.depth)
        assert len(json.loads(rows["learned_h"][0])) == 2 * spec.depth


# --------------------------------------------- the Prop. 1 statistic of every member


def stability_spec(**overrides):
    """``make_spec`` with h 0.1, 0.6, 1.0 and depth 3."""
    return make_spec(**{"h_values": (0.1, 0.6, 1.0), "depth": 3, **overrides})


def member_inputs(dataset, plan) -> np.ndarray:
    rows = stability_rows(plan)
    return ((dataset.X[rows] - plan.mean) / plan.scale).astype(keras.config.floatx())


@pytest.mark.parametrize(
    "block, learn_h", [("residual", False), ("batchnorm", False), ("shrinkage", False), ("residual", True)]
)
def test_member_statistic_equals_spectra_of_the_standalone_member(wine95, block, learn_h):
    spec = stability_spec(blocks=(block,), learn_h=learn_h)
    result = train_cell(wine95, spec, block, shards=2)
    assert result.euler_max.shape == result.euler_stable_share.shape == (spec.members_per_cell,)
    for m in (0, 2, 5):  # h = 0.1, 0.6, 1.0
        plan = result.plans[m]
        table = euler_statistic(jacobian_spectra(result.member_model(m), member_inputs(wine95, plan)))
        assert len(table) == spec.depth
        assert result.euler_max[m] == pytest.approx(table["max_euler_factor"].max(), abs=STAT_ATOL), m
        assert result.euler_stable_share[m] == pytest.approx(table["stable"].mean(), abs=1e-12), m
        if not learn_h:
            assert (table["h"] == plan.h).all()
    assert len(set(np.round(result.euler_max, 6))) > 1


def test_sample_is_sixty_four_own_test_rows_chosen_by_the_member_seed(wine95):
    spec = stability_spec()
    plans = plan_members(wine95, spec, "residual")
    rows = stability_rows(plans[0])
    assert len(rows) == min(STABILITY_SAMPLE, len(plans[0].test_idx)) == 19  # 95 rows: 19 test rows
    assert set(rows) <= set(plans[0].test_idx)
    np.testing.assert_array_equal(rows, stability_rows(plans[0]))
    big = plans[0].__class__(**{**plans[0].__dict__, "test_idx": np.arange(1000, 1200)})
    sample = stability_rows(big)
    assert len(sample) == 64 and len(set(sample)) == 64 and (np.diff(sample) > 0).all()
    other = plans[2].__class__(**{**plans[2].__dict__, "test_idx": np.arange(1000, 1200)})
    assert not np.array_equal(sample, stability_rows(other))  # another member, another sample


def test_only_forward_euler_blocks_have_the_statistic(wine95):
    assert {name for name, cls in BLOCKS.items() if is_euler_block(cls)} == {"residual", "batchnorm", "shrinkage"}
    spec = stability_spec(blocks=("lm",), h_values=(0.5,), trials=1, epochs=1)
    result = train_cell(wine95, spec, "lm")
    assert np.isnan(result.euler_max).all() and np.isnan(result.euler_stable_share).all()
    model = build_model(input_dim=3, n_classes=2, block="rk4", depth=1, members=2, seed=[1, 2])
    with pytest.raises(ValueError, match="not a forward-Euler block"):
        members_euler_factors(model, np.ones((2, 2, 3)))


def test_the_statistic_changes_no_existing_number_and_copes_with_divergence(wine95):
    spec = stability_spec(h_values=(0.1, 1000.0), trials=2, depth=3, width=8, epochs=3, optimizer="sgd", lr=0.1)
    on = train_cell(wine95, spec, "residual")
    off = train_cell(wine95, spec, "residual", stability=False)
    assert on.diverged.any(), "the configuration no longer diverges"
    table_on = cell_records(on, spec, "residual", "cpu")
    table_off = cell_records(off, spec, "residual", "cpu")
    assert "euler_max" not in table_off.columns
    assert list(table_on.columns) == list(table_off.columns) + ["euler_max", "euler_stable_share", "stability_seconds"]
    numbers = [c for c in table_off.columns if c not in ("seconds", "cell_seconds")]
    pd.testing.assert_frame_equal(table_on[numbers], table_off[numbers], check_exact=True)
    # a diverged member is measured as the diverged network: non-finite there, so +inf
    diverged = on.diverged
    assert np.isinf(on.euler_max[diverged]).all() and (on.euler_max[diverged] > 0).all()
    assert np.isfinite(on.euler_max[~diverged]).all()
    # ... and the models still hold the last finite weights afterwards
    for variable in on.model.variables:
        assert np.isfinite(variable.numpy()).all()


# ------------------------------------------------------------------ the one trainer's seams


def test_noise_sources_are_every_kind_by_positive_level_seeded_per_cell():
    spec = make_spec(noise_levels=(0.0, 0.5, 1.0), noise_kinds=("gaussian", "uniform"))
    sources = noise_sources(spec, "residual")
    assert list(sources) == [("gaussian", 0.5), ("gaussian", 1.0), ("uniform", 0.5), ("uniform", 1.0)]
    for (kind, level), source in sources.items():
        expected = np.random.default_rng(derive_seed(spec.seed, spec.dataset, "residual", "noise", kind, level))
        draw = {"gaussian": lambda: level * expected.standard_normal((3, 2)),
                "uniform": lambda: expected.uniform(-level, level, (3, 2))}[kind]()
        np.testing.assert_array_equal(source.draw((3, 2)), draw)
    assert noise_sources(make_spec(), "residual") == {}
    again = noise_sources(spec, "residual")[("gaussian", 0.5)]  # fresh: the same draws again
    np.testing.assert_array_equal(again.draw((3, 2)), noise_sources(spec, "residual")[("gaussian", 0.5)].draw((3, 2)))


@pytest.mark.parametrize("batch_size, shapes", [(8, [(8, 4), (4, 4)]), (19, [(19, 4)]), (100, [(76, 4)])])
def test_a_memory_batch_source_knows_its_batch_shapes_ahead(wine95, batch_size, shapes):
    # 76 training rows, 4 members: 9 batches of 8 and one of 4; 4 of 19; one of all 76
    spec = make_spec(batch_size=batch_size)
    source = MemoryBatches(wine95, plan_members(wine95, spec, "residual"))
    source.open(spec)
    assert source.batch_shapes() == shapes
    assert sorted({batch.shape for batch in source.epoch_batches(0)}) == sorted(shapes)


def test_a_dataset_and_its_memory_batch_source_train_the_same_cell(wine95):
    spec = make_spec(h_values=(0.5,), trials=1, epochs=1)
    plans = plan_members(wine95, spec, "residual")
    from_dataset = train_cell(wine95, spec, "residual", plans=plans, stability=False)
    from_source = train_cell(MemoryBatches(wine95, plans), spec, "residual", stability=False)
    for a, b in zip(from_dataset.model.variables, from_source.model.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(from_dataset.test_accuracy, from_source.test_accuracy)
    labels = wine95.y[plans[0].test_idx]
    assert from_source.test_majority_rate.tolist() == [np.bincount(labels).max() / labels.size]
    with pytest.raises(ValueError, match="plans can only be given with a Dataset"):
        train_cell(MemoryBatches(wine95, plans), spec, "residual", plans=plans)

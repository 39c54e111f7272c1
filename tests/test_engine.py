"""Tests for the sweep engine, the results store and the results summaries.

The key test is equivalence: member m of a members model trained by
``engine.train_cell`` is the same network as a standalone ``build_model`` trained by a
plain loop written here (same seed, split, standardiser, batch order, optimiser), for
every registered block (``sorted(BLOCKS)`` at collection time, so later blocks are
covered without editing this file).

The equivalence tests train in float64 (``keras.config.set_floatx``): batched and
plain matmuls round differently, and in float32 such a difference of ~1e-7 can put a
ReLU pre-activation on the other side of 0, wake a unit that had no gradient, and let
Adam (which normalises the step) move its weights by ~lr: a real but rounding-made
divergence that says nothing about the engine. In float64 the members and the
standalone networks agree to 1e-9 (weights and predictions); accuracies are compared
exactly (both are counts / n); runs of the same cell configuration are compared with
atol 1e-6 or exactly.
"""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from resnet_stability import engine
from resnet_stability.data import load_dataset, subsample_rows
from resnet_stability.engine import BatchOrder, make_optimizer, plan_members
from resnet_stability.experiment import ExperimentSpec
from resnet_stability.layers import BLOCKS
from resnet_stability.models import build_model
from resnet_stability.results import aggregate, summary_lines
from resnet_stability.store import ResultsStore, atomic_write_text

WEIGHT_ATOL = 1e-9
WEIGHT_RTOL = 0.0
PREDICTION_ATOL = 1e-9
SAME_RUN_ATOL = 1e-6


@pytest.fixture(scope="module")
def wine95():
    """95 Wine rows: a stratified 80/20 split gives 76 training rows, so batches of 8
    end with a short batch of 4 (the ``Model.fit`` edge case)."""
    return subsample_rows(load_dataset("wine"), 95, seed=0)


def make_spec(**overrides) -> ExperimentSpec:
    values = dict(
        dataset="wine",
        blocks=("residual",),
        h_values=(0.1, 0.7),
        trials=2,
        depth=2,
        width=5,
        epochs=2,
        batch_size=8,
        lr=1e-2,
        optimizer="adam",
        test_size=0.2,
        seed=0,
    )
    values.update(overrides)
    return ExperimentSpec(**values)


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

    No engine code is used but ``plan_members`` / ``BatchOrder`` / ``make_optimizer``.
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
    result = engine.train_cell(wine95, spec, block)
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
    results = {n: engine.train_cell(wine95, spec, "batchnorm", shards=n) for n in (1, 2, 3)}
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


def test_plans_pair_trials_and_fit_the_standardizer_on_train_rows_only(wine95):
    spec = make_spec(h_values=(0.1, 0.5, 1.0), trials=3)
    plans = plan_members(wine95, spec, "residual")
    other_block = plan_members(wine95, spec, "shrinkage")
    assert [(p.h, p.trial) for p in plans] == spec.members()

    seeds = [p.seed for p in plans] + [p.seed for p in other_block]
    assert len(set(seeds)) == len(seeds), "every member of every block needs its own seed"
    assert len({p.shuffle_seed for p in plans}) == len(plans)

    n = len(wine95.y)
    for p in plans + other_block:
        # the paired design: trial t has one split for every h and every block
        reference = plans[p.trial]
        assert reference.trial == p.trial
        np.testing.assert_array_equal(p.train_idx, reference.train_idx)
        np.testing.assert_array_equal(p.test_idx, reference.test_idx)
        assert p.split_seed == reference.split_seed
        assert np.intersect1d(p.train_idx, p.test_idx).size == 0
        assert np.union1d(p.train_idx, p.test_idx).size == n
        # standardiser from the training rows only (ddof=0), atol 1e-12
        numeric = wine95.numeric_mask
        np.testing.assert_allclose(p.mean[numeric], wine95.X[p.train_idx][:, numeric].mean(axis=0), atol=1e-12)
        np.testing.assert_allclose(p.scale[numeric], wine95.X[p.train_idx][:, numeric].std(axis=0), atol=1e-12)
        assert not np.allclose(p.mean[numeric], wine95.X[:, numeric].mean(axis=0), atol=1e-6)

    splits = {t: tuple(plans[t].test_idx) for t in range(spec.trials)}
    assert len(set(splits.values())) == spec.trials, "different trials must get different splits"
    # the split depends on the trial, not on the block or h: same as the spec's seeds
    assert [plans[t].split_seed for t in range(3)] == [spec.split_seed(t) for t in range(3)]


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
    result = engine.train_cell(wine95, spec, "residual", shards=shards)
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
    alone = engine.train_cell(wine95, spec, "residual", plans=healthy_plans, shards=1)
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


# ------------------------------------------------------------- determinism, records

RECORD_NUMBERS = ["test_accuracy", "final_loss", "train_accuracy", "diverged", "diverged_epoch", "seed"]


@pytest.fixture(scope="module")
def batchnorm_cell(wine95):
    spec = make_spec(blocks=("batchnorm",), h_values=(0.2, 1.0), trials=2, depth=2, width=4, epochs=1)
    result = engine.train_cell(wine95, spec, "batchnorm")
    return spec, result, engine.cell_records(result, spec, "batchnorm", "CPU:0 test")


def test_same_spec_gives_identical_numbers(wine95, batchnorm_cell):
    spec, _, first = batchnorm_cell
    again = engine.train_cell(wine95, spec, "batchnorm")
    second = engine.cell_records(again, spec, "batchnorm", "CPU:0 test")
    pd.testing.assert_frame_equal(first[RECORD_NUMBERS], second[RECORD_NUMBERS], check_exact=True)


def test_cell_records_one_row_per_member_with_configuration(batchnorm_cell, wine95):
    spec, result, table = batchnorm_cell
    assert len(table) == spec.members_per_cell == len(result.plans)
    required = {
        "dataset", "block", "h", "trial", "test_accuracy", "train_accuracy", "final_loss", "diverged",
        "diverged_epoch", "epochs", "seconds", "seed", "depth", "width", "batch_size", "lr", "optimizer",
        "test_size", "activation", "device",
    }
    assert required <= set(table.columns), f"missing {sorted(required - set(table.columns))}"
    assert list(zip(table["h"], table["trial"])) == spec.members()
    assert not table.duplicated(["block", "h", "trial"]).any()
    np.testing.assert_array_equal(table["test_accuracy"], result.test_accuracy)
    np.testing.assert_array_equal(table["train_accuracy"], result.train_accuracy)
    np.testing.assert_array_equal(table["final_loss"], result.final_loss.astype(float))
    np.testing.assert_array_equal(table["diverged"], result.diverged)
    assert list(table["seed"]) == [p.seed for p in result.plans]
    assert table["test_accuracy"].between(0, 1).all() and table["train_accuracy"].between(0, 1).all()
    assert (table["seconds"] > 0).all()
    for column, value in dict(
        dataset="wine", block="batchnorm", epochs=spec.epochs, depth=spec.depth, width=spec.width,
        batch_size=spec.batch_size, lr=spec.lr, optimizer=spec.optimizer, test_size=spec.test_size,
        activation="relu", device="CPU:0 test", inputs="paper",
    ).items():
        assert (table[column] == value).all(), column
    # nothing diverged here, so the last finite weights are the trained network
    assert not table["diverged"].any()
    np.testing.assert_array_equal(table["test_accuracy_last_finite"], table["test_accuracy"])
    # the majority-class baseline of each member's test rows, counted by hand
    for row, plan in zip(table.itertuples(), result.plans):
        labels = wine95.y[plan.test_idx].tolist()
        assert row.test_majority_rate == max(labels.count(c) for c in set(labels)) / len(labels)


# ---------------------------------------------------------------- results summaries


def hand_table() -> pd.DataFrame:
    rows = []
    accuracies = {
        ("residual", 0.1): [0.5, 0.7, 0.9],  # mean 0.7, std 0.2
        ("residual", 1.0): [0.6, 0.6, 0.9],  # mean 0.7, std sqrt(0.03)
        ("residual", 0.5): [0.8, 0.9, 1.0],  # mean 0.9, std 0.1  <- best
        ("shrinkage", 0.1): [1.0, 0.9, 0.8],  # mean 0.9 <- best
        ("shrinkage", 1.0): [0.2, 0.4, 0.3],  # mean 0.3, std 0.1
    }
    for (block, h), values in accuracies.items():
        for trial, value in enumerate(values):
            rows.append(
                dict(dataset="wine", block=block, h=h, trial=trial, test_accuracy=value,
                     train_accuracy=1.0, diverged=(block == "shrinkage" and h == 1.0 and trial < 2))
            )
    return pd.DataFrame(rows)


def test_aggregate_mean_and_sample_std():
    agg = aggregate(hand_table())
    assert list(zip(agg["block"], agg["h"])) == [
        ("residual", 0.1), ("residual", 0.5), ("residual", 1.0), ("shrinkage", 0.1), ("shrinkage", 1.0),
    ]
    np.testing.assert_allclose(agg["mean"], [0.7, 0.9, 0.7, 0.9, 0.3], atol=1e-12)
    np.testing.assert_allclose(agg["std"], [0.2, 0.1, math.sqrt(0.03), 0.1, 0.1], atol=1e-12)
    assert list(agg["trials"]) == [3, 3, 3, 3, 3]
    assert list(agg["diverged"]) == [0, 0, 0, 0, 2]


def test_summary_names_best_h_per_block():
    lines = summary_lines(hand_table())
    residual = [line for line in lines if line.strip().startswith("residual")]
    shrinkage = [line for line in lines if line.strip().startswith("shrinkage")]
    assert len(residual) == 1 and len(shrinkage) == 1
    assert "best h = 0.5 (0.900 ± 0.100)" in residual[0]
    assert "best h = 0.1 (0.900 ± 0.100)" in shrinkage[0]
    assert "h = 0.1: 0.700 ± 0.200" in residual[0] and "h = 1: 0.700 ± 0.173" in residual[0]
    assert "2 diverged" in shrinkage[0] and "diverged" not in residual[0]
    assert any("wine" in line for line in lines)


# --------------------------------------------------------------------------- store


def visible_files(folder):
    return sorted(os.listdir(folder))


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "deep" / "table.csv"
    atomic_write_text(path, "a,b\n1,2\n")
    assert path.read_text() == "a,b\n1,2\n"
    assert visible_files(path.parent) == ["table.csv"]
    atomic_write_text(path, "a,b\n3,4\n")
    assert path.read_text() == "a,b\n3,4\n"
    assert visible_files(path.parent) == ["table.csv"]
    # a write that fails half-way leaves the old file and no temporary file behind
    with pytest.raises(TypeError):
        atomic_write_text(path, 12345)
    assert path.read_text() == "a,b\n3,4\n"
    assert visible_files(path.parent) == ["table.csv"]


def small_frame(block, value):
    """A whole cell of ``make_spec()``'s grid (h 0.1, 0.7 × trials 0, 1): the store only
    returns cells with one row per member."""
    return pd.DataFrame(dict(block=[block] * 4, h=[0.1, 0.1, 0.7, 0.7], trial=[0, 1, 0, 1], test_accuracy=[value] * 4))


def test_read_table_in_spec_and_block_order_and_new_config_new_path(tmp_path):
    store = ResultsStore(tmp_path)
    spec = make_spec(blocks=("shrinkage", "residual", "batchnorm"))
    # written out of order, one block missing
    store.write_cell(spec, "residual", small_frame("residual", 0.5))
    store.write_cell(spec, "shrinkage", small_frame("shrinkage", 0.25))
    table = store.read_table([spec])
    assert list(table["block"]) == ["shrinkage"] * 4 + ["residual"] * 4
    assert list(table.index) == list(range(8))
    assert store.has_cell(spec, "residual") and not store.has_cell(spec, "batchnorm")
    assert all(not name.endswith(".tmp") for name in visible_files(store.cells))

    changed = make_spec(blocks=("shrinkage", "residual", "batchnorm"), epochs=spec.epochs + 1)
    old_path = store.cell_path(spec, "residual")
    new_path = store.cell_path(changed, "residual")
    assert new_path != old_path and new_path.parent == old_path.parent
    before = old_path.read_bytes()
    store.write_cell(changed, "residual", small_frame("residual", 0.75))
    assert old_path.read_bytes() == before, "a changed configuration overwrote an old cell"
    assert len([name for name in visible_files(store.cells) if name.endswith("csv")]) == 3
    assert list(store.read_table([changed])["test_accuracy"]) == [0.75] * 4
    assert list(store.read_table([spec, changed])["test_accuracy"]) == [0.25] * 4 + [0.5] * 4 + [0.75] * 4
    # a different block or dataset is a different cell too
    assert store.cell_path(spec, "shrinkage") != old_path
    assert store.cell_path(make_spec(dataset="abalone"), "residual") != old_path

"""The sweep engine: train every (h, trial) of a (dataset, block) cell as ONE model.

M = len(h grid) × trials independent networks share one Keras model whose weights all
carry a leading members axis (see :mod:`resnet_stability.layers.members`); one
optimiser step advances all of them. What makes member m the same network as a
standalone ``build_model`` trained alone (tested in ``tests/test_engine.py``):

- its own weights, initialised from its own seed exactly as the standalone model;
- its own train/test split, standardisation (train statistics only), shuffle order
  and h; the batch fed to the model is (batch, M, features), slice m from member m's
  training rows;
- the loss is the SUM of the members' mean cross-entropies, so each member's
  gradient is exactly its own (never averaged over members); optimisers used here
  are element-wise (no global clipping), so Adam/SGD see each member's own gradient.

Divergence is data, not a crash: after every step a member whose loss or updated
weights are not finite is marked diverged, its weights (and batch-norm statistics)
are put back to their last finite values and never updated again; the others train
on. Its accuracy is still measured from its predictions (non-finite outputs count as
wrong).

This module runs on the TensorFlow backend (``tf.function``, ``tf.GradientTape``);
layers themselves use ``keras.ops`` only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from resnet_stability.data import Dataset, fit_standardizer, split_indices
from resnet_stability.data.timesplit import TimeSplit, dataset_time_windows
from resnet_stability.experiment import ExperimentSpec
from resnet_stability.models import build_model
from resnet_stability.noise import NoiseSource
from resnet_stability.seeding import derive_seed

EVAL_CHUNK = 2048  # rows per prediction call
#: ``jit="auto"`` compiles the training step with XLA on a GPU, and on a CPU when
#: depth × batch size reaches this (measured on 2 cores, 100 members: XLA was slower for
#: Wine, 20 × 10, and 1.4–1.8× faster for 100 × 10, 100 × 100 and 128 × 10 000).
JIT_MIN_DEPTH_X_BATCH = 500


def use_xla(choice: str, device_kind: str, spec: ExperimentSpec) -> bool:
    """Resolve ``--jit`` (on, off, auto) for a cell; see :data:`JIT_MIN_DEPTH_X_BATCH`."""
    if choice not in ("on", "off", "auto"):
        raise ValueError(f"unknown jit choice {choice!r}; allowed: auto, on, off")
    if choice != "auto":
        return choice == "on"
    return device_kind == "gpu" or spec.depth * spec.batch_size >= JIT_MIN_DEPTH_X_BATCH


@dataclasses.dataclass(frozen=True, eq=False)
class MemberPlan:
    """Everything that makes one member (one trained network) what it is."""

    h: float
    trial: int
    seed: int  # weight initialisation (build_model's seed)
    split_seed: int
    shuffle_seed: int
    train_idx: np.ndarray  # dataset rows
    test_idx: np.ndarray
    mean: np.ndarray  # standardiser fitted on train_idx only
    scale: np.ndarray
    time_split: TimeSplit | None = None  # time-stamped data: the windows after training


def time_split_for(dataset: Dataset, spec: ExperimentSpec) -> TimeSplit | None:
    """The time split of a time-stamped dataset (``dataset.time``), else None."""
    if dataset.time is None:
        return None
    return dataset_time_windows(dataset, spec.train_span, spec.test_span)


def plan_members(dataset: Dataset, spec: ExperimentSpec, block: str) -> list[MemberPlan]:
    """One :class:`MemberPlan` per (h, trial) of ``spec``, in member order.

    Random splits are stratified and paired by trial. A time-stamped dataset is split in
    time instead (:func:`time_split_for`): every member trains on the same early window
    and is tested on the next one (``test_idx``) and, later, on each further window;
    trials then differ in initialisation and shuffle order.
    """
    plans = []
    splits = {}
    time_split = time_split_for(dataset, spec)
    for h, trial in spec.members():
        split_seed = spec.split_seed(trial)
        if trial not in splits:
            if time_split is None:
                train_idx, test_idx = split_indices(dataset.y, spec.test_size, split_seed, dataset.test_mask)
            else:
                train_idx, test_idx = time_split.train_idx, time_split.windows[0].idx
            mean, scale = fit_standardizer(dataset.X[train_idx], dataset.numeric_mask)
            splits[trial] = (train_idx, test_idx, mean, scale)
        train_idx, test_idx, mean, scale = splits[trial]
        seed = spec.member_seed(block, h, trial)
        plans.append(
            MemberPlan(
                h, trial, seed, split_seed, derive_seed(seed, "shuffle"), train_idx, test_idx, mean, scale, time_split
            )
        )
    return plans


class BatchOrder:
    """Per-member shuffle orders: ``next_epoch()`` -> (n_train, M) dataset row indices.

    Member m's order for epoch e is ``train_idx[rng_m.permutation(n_train)]`` with
    ``rng_m = numpy.random.default_rng(shuffle_seed_m)`` drawn once per epoch, so a
    standalone run of one plan (``BatchOrder([plan])``) sees exactly member m's batches.
    Batch s of an epoch is rows ``s*batch_size : (s+1)*batch_size`` (the last may be
    short, as in ``Model.fit``).
    """

    def __init__(self, plans: list[MemberPlan]):
        sizes = {len(p.train_idx) for p in plans}
        if len(sizes) != 1:
            raise ValueError(f"members have different training-set sizes {sorted(sizes)}")
        self.plans = plans
        self.rngs = [np.random.default_rng(p.shuffle_seed) for p in plans]

    def next_epoch(self) -> np.ndarray:
        columns = [p.train_idx[rng.permutation(len(p.train_idx))] for p, rng in zip(self.plans, self.rngs)]
        return np.stack(columns, axis=1)


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A Keras optimiser by name with its default settings but the learning rate."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": learning_rate}})


def per_member_loss(labels, probabilities):
    """Mean sparse cross-entropy over the batch axis: (b, M), (b, M, C) -> (M,)."""
    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probabilities), axis=0)


def _member_mask(ok, variable):
    return tf.reshape(ok, (-1,) + (1,) * (len(variable.shape) - 1))


def _finite_per_member(variable, members):
    return tf.reduce_all(tf.math.is_finite(tf.reshape(variable, (members, -1))), axis=1)


def make_train_step(model, optimizer, inputs, jit_compile: bool = False):
    """One optimiser step for every member of a members ``model``, with divergence masking.

    Returns ``(train_step, alive)``: ``train_step(batch) -> (losses, ok)`` is a compiled
    function; ``inputs(batch) -> (x, y)``, traced inside it, turns what the step is
    called with into features (b, M, d) and labels (b, M) (e.g. row indices gathered
    from an in-memory table). ``alive`` (M,) bool is False for members that diverged:
    their loss or updated weights were not finite, so their weights (batch-norm
    statistics too) were put back and are never updated again. The loss is the sum of
    the members' mean cross-entropies.
    """
    members = model.output_shape[1]
    trainable = model.trainable_variables
    optimizer.build(trainable)
    variables = model.variables
    alive = tf.Variable(tf.ones(members, tf.bool), trainable=False)

    @tf.function(jit_compile=jit_compile)
    def train_step(batch):
        x, y = inputs(batch)
        before = [tf.identity(v.value) for v in variables]
        with tf.GradientTape() as tape:
            losses = per_member_loss(y, model(x, training=True))
            ok = tf.math.is_finite(losses) & alive
            total = tf.reduce_sum(tf.where(ok, losses, 0.0))
        optimizer.apply(tape.gradient(total, trainable), trainable)
        for v in variables:
            ok = ok & _finite_per_member(v.value, members)
        for v, old in zip(variables, before):
            v.assign(tf.where(_member_mask(ok, v), v.value, old))
        alive.assign(ok)
        return tf.where(ok, losses, 0.0), ok

    return train_step, alive


def build_members_model(plans: list[MemberPlan], spec: ExperimentSpec, block: str, input_dim: int, n_classes: int):
    """The members model of a cell (member m: h and seed of ``plans[m]``) and the
    ``build_model`` arguments its members share."""
    build_args = dict(
        input_dim=input_dim,
        n_classes=n_classes,
        block=block,
        depth=spec.depth,
        width=spec.width,
        activation=spec.activation,
    )
    model = build_model(**build_args, h=[p.h for p in plans], members=len(plans), seed=[p.seed for p in plans])
    return model, build_args


def run_epochs(train_step, alive, epochs: int, epoch_batches, on_epoch_end=None):
    """Train ``epochs`` epochs; ``epoch_batches(epoch)`` yields that epoch's batches.

    Returns ``(final_loss, diverged_epoch)``: each member's mean loss over the last epoch
    (NaN once diverged) and the epoch in which it diverged (−1 if never). Calls
    ``on_epoch_end(epoch, mean_loss_per_member, alive)`` after each epoch.
    """
    members = int(alive.shape[0])
    diverged_epoch = np.full(members, -1)
    final_loss = np.full(members, np.nan)
    for epoch in range(epochs):
        step_losses = [train_step(batch)[0] for batch in epoch_batches(epoch)]
        alive_now = alive.numpy()
        diverged_epoch[(diverged_epoch < 0) & ~alive_now] = epoch
        final_loss = np.where(alive_now, tf.reduce_mean(tf.stack(step_losses), axis=0).numpy(), np.nan)
        if on_epoch_end is not None:
            on_epoch_end(epoch, final_loss, alive_now)
    return final_loss, diverged_epoch


@dataclasses.dataclass
class CellResult:
    """Per-member outcome of one cell, plus the trained members model."""

    plans: list[MemberPlan]
    test_accuracy: np.ndarray
    train_accuracy: np.ndarray
    final_loss: np.ndarray
    diverged: np.ndarray
    diverged_epoch: np.ndarray  # -1 where the member never diverged
    seconds: float
    model: keras.Model
    window_accuracy: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)  # window -> (M,)
    noise_accuracy: dict[tuple[str, float], np.ndarray] = dataclasses.field(default_factory=dict)
    build_args: dict = dataclasses.field(default_factory=dict)  # build_model arguments shared by members

    def member_model(self, m: int) -> keras.Model:
        """Member ``m`` as a standalone ``build_model`` network holding its trained weights
        (slice m of every variable), e.g. for :mod:`resnet_stability.analysis`."""
        plan = self.plans[m]
        standalone = build_model(**self.build_args, h=plan.h, seed=plan.seed)
        for target, source in zip(standalone.variables, self.model.variables):
            target.assign(source.numpy()[m])
        return standalone


def train_cell(
    dataset: Dataset,
    spec: ExperimentSpec,
    block: str,
    *,
    device: str | None = None,
    jit_compile: bool = False,
    on_epoch_end: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    plans: list[MemberPlan] | None = None,
) -> CellResult:
    """Train all members of the (``spec.dataset``, ``block``) cell at once.

    ``on_epoch_end(epoch, mean_loss_per_member, alive)`` is called after each epoch
    (progress display). ``plans`` overrides :func:`plan_members` (tests).
    """
    plans = plan_members(dataset, spec, block) if plans is None else plans
    members = len(plans)
    with tf.device(device) if device else contextlib.nullcontext():
        started = time.perf_counter()
        model, build_args = build_members_model(plans, spec, block, dataset.n_features, dataset.n_classes)
        features = tf.constant(dataset.X, tf.float32)
        labels = tf.constant(dataset.y, tf.int32)
        mean = tf.constant(np.stack([p.mean for p in plans]), tf.float32)
        scale = tf.constant(np.stack([p.scale for p in plans]), tf.float32)

        def gather(idx):
            return (tf.gather(features, idx) - mean) / scale, tf.gather(labels, idx)

        train_step, alive = make_train_step(model, make_optimizer(spec.optimizer, spec.lr), gather, jit_compile)

        order = BatchOrder(plans)

        def epoch_batches(epoch):  # batch s: rows s*batch_size ... of this epoch's order
            rows = order.next_epoch().astype(np.int32)
            return (rows[start : start + spec.batch_size] for start in range(0, len(rows), spec.batch_size))

        final_loss, diverged_epoch = run_epochs(train_step, alive, spec.epochs, epoch_batches, on_epoch_end)

        predict = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        test_rows = np.stack([p.test_idx for p in plans], axis=1)
        test_accuracy = evaluate_accuracy(predict, gather, test_rows)
        train_accuracy = evaluate_accuracy(predict, gather, np.stack([p.train_idx for p in plans], axis=1))
        window_accuracy = {}
        if plans[0].time_split is not None:
            for window in plans[0].time_split.windows:
                rows = np.repeat(window.idx[:, None], members, axis=1)
                window_accuracy[window.index] = evaluate_accuracy(predict, gather, rows)
        noise_accuracy = {}
        for kind in spec.noise_kinds if spec.noise_levels else ():
            for level in (level for level in spec.noise_levels if level > 0):  # level 0 is the clean score
                noise = NoiseSource(kind, level, derive_seed(spec.seed, spec.dataset, block, "noise", kind, level))
                noise_accuracy[(kind, level)] = evaluate_accuracy(predict, gather, test_rows, perturb=noise)
        seconds = time.perf_counter() - started
    return CellResult(
        plans=plans,
        test_accuracy=test_accuracy,
        train_accuracy=train_accuracy,
        final_loss=final_loss,
        diverged=~alive.numpy(),
        diverged_epoch=diverged_epoch,
        seconds=seconds,
        model=model,
        window_accuracy=window_accuracy,
        noise_accuracy=noise_accuracy,
        build_args=build_args,
    )


def evaluate_accuracy(predict, gather, rows: np.ndarray, perturb=None) -> np.ndarray:
    """Per-member accuracy on ``rows`` (n, M) of ``predict`` (features -> probabilities);
    rows with a non-finite output count as wrong. ``perturb`` (a
    :class:`~resnet_stability.noise.NoiseSource`) is added to the standardised inputs
    before prediction (noise robustness)."""
    correct = np.zeros(rows.shape[1])
    for start in range(0, rows.shape[0], EVAL_CHUNK):
        x, y = gather(rows[start : start + EVAL_CHUNK].astype(np.int32))
        if perturb is not None:
            x = x + tf.constant(perturb.draw(x.shape), x.dtype)
        probabilities = predict(x)
        finite = tf.reduce_all(tf.math.is_finite(probabilities), axis=-1)
        hit = tf.equal(tf.argmax(probabilities, axis=-1, output_type=tf.int32), y) & finite
        correct += tf.reduce_sum(tf.cast(hit, tf.float64), axis=0).numpy()
    return correct / rows.shape[0]


def cell_records(result: CellResult, spec: ExperimentSpec, block: str, device: str) -> pd.DataFrame:
    """The tidy table rows of one cell: one row per member."""
    rows = []
    members = len(result.plans)
    for m, plan in enumerate(result.plans):
        rows.append(
            dict(
                dataset=spec.dataset,
                block=block,
                h=plan.h,
                trial=plan.trial,
                test_accuracy=float(result.test_accuracy[m]),
                train_accuracy=float(result.train_accuracy[m]),
                final_loss=float(result.final_loss[m]),
                diverged=bool(result.diverged[m]),
                diverged_epoch=int(result.diverged_epoch[m]),
                epochs=spec.epochs,
                seconds=result.seconds / members,
                cell_seconds=result.seconds,
                seed=plan.seed,
                split_seed=plan.split_seed,
                n_train=len(plan.train_idx),
                n_test=len(plan.test_idx),
                device=device,
                depth=spec.depth,
                width=spec.width,
                batch_size=spec.batch_size,
                lr=spec.lr,
                optimizer=spec.optimizer,
                test_size=spec.test_size,
                activation=spec.activation,
                max_rows=spec.max_rows,
                experiment_seed=spec.seed,
                config_hash=spec.cell_hash(block),
            )
        )
    return pd.DataFrame(rows)


def _member_keys(result: CellResult, spec: ExperimentSpec, block: str) -> list[dict]:
    return [
        dict(dataset=spec.dataset, block=block, h=plan.h, trial=plan.trial, seed=plan.seed)
        for plan in result.plans
    ]


def time_records(result: CellResult, spec: ExperimentSpec, block: str) -> pd.DataFrame:
    """Accuracy of every member on every test window: one row per member × window."""
    if not result.window_accuracy:
        return pd.DataFrame()
    split = result.plans[0].time_split
    rows = []
    for window in split.windows:
        for key, accuracy in zip(_member_keys(result, spec, block), result.window_accuracy[window.index]):
            rows.append(
                dict(
                    key,
                    window=window.index,
                    window_start=window.start,
                    window_end=window.end,
                    n=len(window.idx),
                    accuracy=float(accuracy),
                    train_start=split.train_start,
                    train_end=split.train_end,
                )
            )
    return pd.DataFrame(rows)


def noise_records(result: CellResult, spec: ExperimentSpec, block: str) -> pd.DataFrame:
    """Test accuracy of every member under every noise kind and level; level 0 (always
    included) is the clean test accuracy."""
    if not spec.noise_levels:
        return pd.DataFrame()
    rows = []
    keys = _member_keys(result, spec, block)
    levels = sorted({0.0, *spec.noise_levels})
    for kind in spec.noise_kinds:
        for level in levels:
            accuracies = result.test_accuracy if level == 0 else result.noise_accuracy[(kind, level)]
            rows.extend(dict(key, noise=kind, level=level, accuracy=float(a)) for key, a in zip(keys, accuracies))
    return pd.DataFrame(rows)

"""The members engine: train every (h, trial) of a (dataset, block) cell as ONE model.

M = len(h grid) × trials independent networks share one Keras model whose weights all
carry a leading members axis (see :mod:`resnet_stability.layers.members`); one
optimiser step advances all of them. What makes member m the same network as a
standalone ``build_model`` trained alone (tested in ``tests/test_trainer.py``):

- its own weights, initialised from its own seed exactly as the standalone model;
- its own train/test split, standardisation (train statistics only), shuffle order
  and h; the batch fed to the model is (batch, M, features), slice m from member m's
  training rows;
- the loss is the SUM of the members' mean cross-entropies, so each member's
  gradient is exactly its own (never averaged over members); optimisers used here
  are element-wise (no global clipping), so Adam/SGD see each member's own gradient.
  The step itself is :class:`resnet_stability.sweep.train_step.MembersTrainStep`.

Divergence is data, not a crash: after every step a member whose loss or updated
weights are not finite is marked diverged, its weights (and batch-norm statistics)
are put back to their last finite values and never updated again; the others train
on. It is scored as the network its training produced (``experiment.DIVERGED_RULE``):
every accuracy of a diverged member (test, train, later windows, under noise) is that
of the weights its diverging step produced, each input whose predicted probabilities
are not all finite counting as misclassified; its last finite weights are scored too
(``test_accuracy_last_finite``), which is what an early-stopped network would give.

This module is written with ``keras.ops``; compiling and differentiating the step, the
predictor and device placement come from the engine of Keras's backend
(:mod:`resnet_stability.sweep.engines`: TensorFlow by default, or JAX).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
import time
from collections.abc import Callable

import keras
import numpy as np

from resnet_stability.analysis.members_spectra import euler_summary, is_euler_block, members_euler_factors
from resnet_stability.data import Dataset
from resnet_stability.models import build_model
from resnet_stability.seeding import derive_seed
from resnet_stability.stability import STABILITY_SAMPLE
from resnet_stability.sweep.engines import current_engine
from resnet_stability.sweep.experiment import ExperimentSpec
from resnet_stability.sweep.noise import NoiseSource
from resnet_stability.sweep.plan import BatchOrder, MemberPlan, plan_members

EVAL_CHUNK = 2048  # rows per prediction call
JIT_CHOICES = ("auto", "on", "off")


def xla_mode(choice: str, device_kind: str) -> str:
    """Resolve ``--jit`` for a cell: ``"step"`` (the whole training step compiled with
    XLA), ``"update"`` (only the optimiser update and divergence masking) or ``"off"``.

    ``auto`` is ``"step"`` on a GPU and ``"update"`` on a CPU, where XLA's batched
    matmuls at the presets' shapes ran ~3x slower than TensorFlow's (oneDNN) kernels
    while its fused update was 2-3x faster than a dozen separate passes over the
    parameters (``benchmarks/bench_presets.py``); ``on`` is ``"step"``. Under the JAX
    engine it is always ``"step"``.
    """
    if choice not in JIT_CHOICES:
        raise ValueError(f"unknown jit choice {choice!r}; allowed: {', '.join(JIT_CHOICES)}")
    if not current_engine().xla_optional:  # JAX: the whole step is one XLA program, always
        return "step"
    if choice == "off":
        return "off"
    return "step" if choice == "on" or device_kind == "gpu" else "update"


def device_kind(device: str | None) -> str:
    """``"gpu"`` for a device name like ``/GPU:0`` (or, with None, when the Keras
    backend sees a GPU), else ``"cpu"``."""
    if device is None:
        return "gpu" if current_engine().has_gpu() else "cpu"
    return "gpu" if "GPU" in device.upper() else "cpu"


def shard_count(device_kind: str, members: int) -> int:
    """Shards of a cell (the engine's: under TensorFlow :data:`~resnet_stability.sweep.engines.CPU_SHARDS` on a CPU, at
    most one per member, and 1 on a GPU; under JAX 1)."""
    return current_engine().shards(device_kind, members)


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A Keras optimiser by name with its default settings but the learning rate."""
    return keras.optimizers.get({"class_name": name, "config": {"learning_rate": learning_rate}})


def build_members_shards(
    plans: list[MemberPlan], spec: ExperimentSpec, block: str, input_dim: int, n_classes: int, shards: int = 1
):
    """The members models of a cell, ``shards`` of them with consecutive members (member
    m: h and seed of ``plans[m]``), and the ``build_model`` arguments all members share."""
    build_args = dict(
        input_dim=input_dim,
        n_classes=n_classes,
        block=block,
        depth=spec.depth,
        width=spec.width,
        activation=spec.activation,
        learn_h=spec.learn_h,
        h_max=spec.h_max,
        stability_penalty=spec.stability_penalty,
    )
    models = [
        build_model(**build_args, h=[p.h for p in part], members=len(part), seed=[p.seed for p in part])
        for part in np.array_split(np.array(plans, dtype=object), min(shards, len(plans)))
    ]
    return models, build_args


def members_predictor(shards: list[keras.Model]):
    """A compiled ``predict(x)``: (b, M, d) -> (b, M, C) probabilities of every member
    with the weights the models hold now (the engine's ``predictor``)."""
    return current_engine().predictor(shards)


def run_epochs(train_step, epochs: int, epoch_batches, on_epoch_end=None):
    """Train ``epochs`` epochs; ``epoch_batches(epoch)`` yields that epoch's batches.

    Returns ``(final_loss, diverged_epoch)``: each member's mean loss over the last epoch
    (NaN once diverged) and the epoch in which it diverged, counted from 1 as the
    progress bar counts (−1 if never). Calls
    ``on_epoch_end(epoch, mean_loss_per_member, alive)`` after each epoch. The trained
    weights are in the models' variables when it returns.
    """
    members = train_step.members
    diverged_epoch = np.full(members, -1)
    final_loss = np.full(members, np.nan)
    for epoch in range(epochs):
        step_losses = [train_step(batch)[0] for batch in epoch_batches(epoch)]
        alive_now = train_step.alive()
        diverged_epoch[(diverged_epoch < 0) & ~alive_now] = epoch + 1
        mean_loss = keras.ops.convert_to_numpy(keras.ops.mean(keras.ops.stack(step_losses), axis=0))
        final_loss = np.where(alive_now, mean_loss, np.nan)
        if on_epoch_end is not None:
            on_epoch_end(epoch, final_loss, alive_now)
    train_step.write_back()
    return final_loss, diverged_epoch


@dataclasses.dataclass
class CellResult:
    """Per-member outcome of one cell, plus the trained members models (its shards)."""

    plans: list[MemberPlan]
    test_accuracy: np.ndarray
    train_accuracy: np.ndarray
    final_loss: np.ndarray
    diverged: np.ndarray
    diverged_epoch: np.ndarray  # epoch of divergence counted from 1; -1 where the member never diverged
    seconds: float
    shards: list[keras.Model]  # members models holding consecutive members, in order
    window_accuracy: dict[int, np.ndarray] = dataclasses.field(default_factory=dict)  # window -> (M,)
    noise_accuracy: dict[tuple[str, float], np.ndarray] = dataclasses.field(default_factory=dict)
    build_args: dict = dataclasses.field(default_factory=dict)  # build_model arguments shared by members
    # test accuracy of the last finite weights: equal to test_accuracy for members that did not diverge
    test_accuracy_last_finite: np.ndarray | None = None
    # share of each member's test rows in their most common class (the majority-class baseline)
    test_majority_rate: np.ndarray | None = None
    # Prop. 1 statistic (members_statistic): None when not computed (stability=False)
    euler_max: np.ndarray | None = None
    euler_stable_share: np.ndarray | None = None
    stability_seconds: float = float("nan")  # time of the statistic for the whole cell (not in ``seconds``)
    # multi-level training (spec.levels > 1): (M, levels) test accuracy after each level, NaN once diverged
    level_accuracy: np.ndarray | None = None
    step_scale: float = 1.0  # each block's h is the member's grid h times this (2^-(levels-1) after prolonging)

    def _locate(self, m: int) -> tuple[keras.Model, int]:
        """The shard holding member ``m`` and its index there."""
        for shard in self.shards:
            size = int(shard.output_shape[1])
            if m < size:
                return shard, m
            m -= size
        raise IndexError(f"member index out of range: the cell has {len(self.plans)} members")

    def member_model(self, m: int) -> keras.Model:
        """Member ``m`` as a standalone ``build_model`` network holding its trained weights
        (slice m of every variable), e.g. for :mod:`resnet_stability.analysis`."""
        plan = self.plans[m]
        shard, index = self._locate(m)
        standalone = build_model(**self.build_args, h=plan.h * self.step_scale, seed=plan.seed)
        for target, source in zip(standalone.variables, shard.variables):
            target.assign(source.numpy()[index])
        return standalone

    def learned_steps(self) -> np.ndarray | None:
        """(M, depth): each member's h in each block (block_0, block_1, ...) as the models
        hold them (after ``train_cell``: the trained values, a diverged member's last
        finite ones), or None where the blocks do not learn h."""
        per_shard = []
        for shard in self.shards:
            blocks = [layer for layer in shard.layers if getattr(layer, "learn_h", False)]
            if not blocks:
                return None
            per_shard.append(np.stack([block.step_size for block in blocks], axis=1))
        return np.concatenate(per_shard)

    @functools.cached_property
    def model(self) -> keras.Model:
        """All members as ONE members model (built on first use by joining the shards)."""
        if len(self.shards) == 1:
            return self.shards[0]
        plans = self.plans
        steps = [p.h * self.step_scale for p in plans]
        model = build_model(**self.build_args, h=steps, members=len(plans), seed=[p.seed for p in plans])
        for target, *sources in zip(model.variables, *(shard.variables for shard in self.shards)):
            target.assign(np.concatenate([source.numpy() for source in sources]))
        return model


class MemoryBatches:
    """The batch source of a dataset held in memory (:func:`train_cell`'s default).

    Batches are (batch, M) row indices gathered from one resident table: member m's rows
    in its own shuffle order (:class:`~resnet_stability.sweep.plan.BatchOrder`),
    standardised by its own training statistics. Every source has ``plans``,
    ``n_features``, ``n_classes`` and the methods below; the other one is
    ``resnet_stability.sweep.streaming.StreamBatches`` (batches read from a file).
    """

    def __init__(self, dataset: Dataset, plans: list[MemberPlan]):
        self.dataset, self.plans = dataset, plans
        self.n_features, self.n_classes = dataset.n_features, dataset.n_classes
        self.gather = None

    def open(self, spec: ExperimentSpec):
        """Called once, under the cell's device: returns ``inputs(batch) -> (x (b, M, d),
        y (b, M))``, the standardised inputs of a batch (``MembersTrainStep``'s ``inputs``)."""
        dtype = keras.config.floatx()  # float32 unless the user set Keras's float type
        ops = keras.ops
        features = ops.convert_to_tensor(self.dataset.X, dtype)
        labels = ops.convert_to_tensor(self.dataset.y, "int32")
        mean = ops.convert_to_tensor(np.stack([p.mean for p in self.plans]), dtype)
        scale = ops.convert_to_tensor(np.stack([p.scale for p in self.plans]), dtype)

        def gather(idx):
            return (ops.take(features, idx, axis=0) - mean) / scale, ops.take(labels, idx, axis=0)

        self.gather, self.batch_size, self.order = gather, spec.batch_size, BatchOrder(self.plans)
        return gather

    def batch_shapes(self) -> list[tuple[int, int]]:
        """The shapes (b, M) of an epoch's batches: full ones, then a shorter last one if
        the training rows are not a multiple of the batch size (the same every epoch)."""
        rows, members = len(self.plans[0].train_idx), len(self.plans)
        full = [(self.batch_size, members)] if rows >= self.batch_size else []
        return full + ([(rows % self.batch_size, members)] if rows % self.batch_size else [])

    def epoch_batches(self, epoch: int):
        """The batches of the next epoch: batch s is rows s*batch_size ... of its order."""
        rows = self.order.next_epoch().astype(np.int32)
        return (rows[start : start + self.batch_size] for start in range(0, len(rows), self.batch_size))

    def score(self, predict, spec: ExperimentSpec, block: str) -> dict:
        """Every member's accuracies (:func:`score_members`)."""
        return score_members(predict, self.gather, self.plans, spec, block)

    def stability(self, shards, block: str):
        """``(euler_max, euler_stable_share, seconds)`` of every member (:func:`member_stability`)."""
        return member_stability(shards, self.gather, self.plans, block)

    def majority_rate(self) -> np.ndarray:
        """(M,) share of each member's test rows in their most common class."""
        return np.array([majority_rate(self.dataset.y[p.test_idx]) for p in self.plans])


def train_cell(
    data,
    spec: ExperimentSpec,
    block: str,
    *,
    device: str | None = None,
    xla: str = "update",
    shards: int | None = None,
    on_epoch_end: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    plans: list[MemberPlan] | None = None,
    stability: bool = True,
) -> CellResult:
    """Train all members of the (``spec.dataset``, ``block``) cell at once.

    ``data`` is where the batches come from: a :class:`~resnet_stability.data.Dataset`
    held in memory (a :class:`MemoryBatches` over ``plans``, default
    :func:`plan_members`: each member its own split and shuffle order) or a batch source
    such as ``resnet_stability.sweep.streaming.StreamBatches`` (a file read in chunks;
    all members share one batch order). Training, divergence handling and scoring are
    the same for both.

    ``xla`` is ``"step"``, ``"update"`` or ``"off"`` (:func:`xla_mode`); ``shards``
    the number of members models the cell is split into (default
    :func:`shard_count` for ``device``). ``on_epoch_end(epoch, mean_loss_per_member,
    alive)`` is called after each epoch (progress display). ``stability`` computes each
    member's Prop. 1 statistic (:func:`member_stability`) on the network its accuracies
    score (a diverged member: the diverged network), at the sample of test rows its
    source gives (in memory each member's own, streamed the first test rows of the file);
    it reads the trained weights only, and its time is kept out of ``seconds``.
    """
    started = time.perf_counter()
    if isinstance(data, Dataset):
        source = MemoryBatches(data, plan_members(data, spec, block) if plans is None else plans)
    elif plans is not None:
        raise ValueError("plans can only be given with a Dataset; a batch source has its own")
    else:
        source = data
    plans = source.plans
    members = len(plans)
    shards = shard_count(device_kind(device), members) if shards is None else shards
    if spec.stability_penalty and xla == "step":  # its eigen-decomposition has no XLA kernel
        xla = "update"
    engine = current_engine()
    with engine.device_scope(device):
        models, build_args = build_members_shards(plans, spec, block, source.n_features, source.n_classes, shards)
        inputs = source.open(spec)

        def train_and_score(models, alive, level=0):  # epochs reported counted over all levels
            train_step = engine.train_step(models, lambda: make_optimizer(spec.optimizer, spec.lr), inputs, xla)
            train_step.precompile(source.batch_shapes())
            if alive is not None:
                train_step.set_alive(alive)
            report = offset_epochs(on_epoch_end, level * spec.epochs)
            final_loss, diverged_epoch = run_epochs(train_step, spec.epochs, source.epoch_batches, report)
            scores, last_finite = score_trained(models, train_step, lambda predict: source.score(predict, spec, block))
            return train_step, final_loss, diverged_epoch, scores, last_finite

        if spec.levels == 1:
            train_step, final_loss, diverged_epoch, scores, last_finite = train_and_score(models, None)
            level_accuracy = None
        else:
            models, train_step, final_loss, diverged_epoch, scores, last_finite, level_accuracy = train_levels(
                models, train_and_score, spec
            )
        return finish_cell(source, models, build_args, train_step, spec, block, final_loss, diverged_epoch,
                           scores, last_finite, started, stability, level_accuracy)


def finish_cell(source, models, build_args: dict, train_step, spec: ExperimentSpec, block: str, final_loss,
                diverged_epoch, scores: dict, last_finite, started: float, stability: bool = True,
                level_accuracy=None) -> CellResult:
    """A trained and scored cell's :class:`CellResult`: its divergence, ``seconds`` since
    ``started``, and its Prop. 1 statistic (``stability``) on the networks its accuracies
    score (a diverged member: the diverged network; the models hold the last finite
    weights again when it returns). ``train_step``: the step of its members (``alive``,
    ``load_diverged``, ``write_back``); under the cell's device scope."""
    diverged = ~train_step.alive()
    if diverged.any():  # the statistic is taken on the diverged networks, as they are scored
        train_step.load_diverged()
    seconds = time.perf_counter() - started
    euler = source.stability(models, block) if stability else (None, None, float("nan"))
    if diverged.any():
        train_step.write_back()
    build_args["depth"] = spec.depth * 2 ** (spec.levels - 1)  # the trained networks' depth
    return CellResult(
        plans=source.plans,
        test_accuracy=scores["test"],
        train_accuracy=scores["train"],
        final_loss=final_loss,
        diverged=diverged,
        diverged_epoch=diverged_epoch,
        seconds=seconds,
        shards=models,
        window_accuracy=scores["windows"],
        noise_accuracy=scores["noise"],
        build_args=build_args,
        test_accuracy_last_finite=last_finite,
        test_majority_rate=source.majority_rate(),
        euler_max=euler[0],
        euler_stable_share=euler[1],
        stability_seconds=euler[2],
        level_accuracy=level_accuracy,
        step_scale=0.5 ** (spec.levels - 1),
    )


def can_train_together(spec: ExperimentSpec) -> bool:
    """Whether the cells of ``spec`` can share one members step
    (:func:`train_cells_together`): data held in memory and plain training."""
    return not spec.stream and spec.levels == 1


class MembersOf:
    """Members ``[lo, hi)`` of a train step shared by several cells
    (:func:`train_cells_together`), as one cell's :func:`score_trained` and
    :func:`finish_cell` see them: their own ``alive`` flags; loading the diverged values
    and writing back act on every member of the step (each cell reads only its own)."""

    def __init__(self, train_step, lo: int, hi: int):
        self.train_step, self.lo, self.hi = train_step, lo, hi

    def alive(self) -> np.ndarray:
        return self.train_step.alive()[self.lo : self.hi]

    def load_diverged(self) -> None:
        self.train_step.load_diverged()

    def write_back(self) -> None:
        self.train_step.write_back()


def train_cells_together(
    data: Dataset,
    spec: ExperimentSpec,
    blocks,
    *,
    device: str | None = None,
    xla: str = "update",
    shards: int | None = None,
    on_epoch_end: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
    stability: bool = True,
) -> dict[str, CellResult]:
    """The cells of ``blocks`` (one dataset, one ``spec``) trained by ONE members step:
    more members per compiled step, for a device that one cell leaves idle (a GPU).

    Each block's members keep everything of their own cell (:func:`train_cell`): plans
    (h, seed, split, batch order), models, scores, noise draws and statistic; only the
    optimiser step is shared, each member's gradient still its own, so every member
    trains as in its own cell, up to the rounding of a larger compiled program (tested).
    ``seconds`` of each cell: the shared training split in proportion to members, plus
    its own scoring. Data held in memory and plain training (``spec.levels`` = 1) only.
    """
    if not isinstance(data, Dataset):
        raise ValueError("cells trained together need their dataset in memory (not streamed)")
    if not can_train_together(spec):
        reason = "a streamed dataset" if spec.stream else f"levels {spec.levels}"
        raise ValueError(f"cells trained together need data in memory and plain training (levels 1), not {reason}")
    started = time.perf_counter()
    sources = {block: MemoryBatches(data, plan_members(data, spec, block)) for block in blocks}
    together = MemoryBatches(data, [plan for block in blocks for plan in sources[block].plans])
    sizes = [len(sources[block].plans) for block in blocks]
    shards = shard_count(device_kind(device), sizes[0]) if shards is None else shards
    if spec.stability_penalty and xla == "step":  # its eigen-decomposition has no XLA kernel
        xla = "update"
    engine = current_engine()
    with engine.device_scope(device):
        built = {block: build_members_shards(source.plans, spec, block, data.n_features, data.n_classes, shards)
                 for block, source in sources.items()}
        inputs = together.open(spec)
        for source in sources.values():
            source.open(spec)
        models = [model for block in blocks for model in built[block][0]]
        train_step = engine.train_step(models, lambda: make_optimizer(spec.optimizer, spec.lr), inputs, xla)
        train_step.precompile(together.batch_shapes())
        final_loss, diverged_epoch = run_epochs(train_step, spec.epochs, together.epoch_batches, on_epoch_end)
        shared = time.perf_counter() - started
        results, bounds = {}, np.cumsum([0] + sizes)
        for block, lo, hi in zip(blocks, bounds, bounds[1:]):
            block_started = time.perf_counter() - shared * (hi - lo) / bounds[-1]
            source, (block_models, build_args), members = sources[block], built[block], MembersOf(train_step, lo, hi)
            scores, last_finite = score_trained(block_models, members, lambda predict: source.score(predict, spec, block))
            results[block] = finish_cell(source, block_models, build_args, members, spec, block, final_loss[lo:hi],
                                         diverged_epoch[lo:hi], scores, last_finite, block_started, stability)
    return results


def score_trained(models, train_step, score: Callable[..., dict]):
    """``(scores, last_finite)`` after training, for any batch source: ``score(predict)``
    (a source's scores of the members predictor, :func:`score_members`' dict) by the rule
    of ``experiment.DIVERGED_RULE`` (a diverged member scored as the network its
    diverging step produced) and the test accuracy of every member's last finite
    weights. The models hold the last finite weights again when it returns."""
    scores = score(members_predictor(models))
    last_finite = scores["test"]
    if not train_step.alive().all():
        train_step.load_diverged()
        scores = score(members_predictor(models))
        train_step.write_back()
    return scores, last_finite


def offset_epochs(on_epoch_end, offset: int):
    """``on_epoch_end(epoch, ...)`` called with ``epoch + offset`` (None stays None)."""
    if on_epoch_end is None or not offset:
        return on_epoch_end
    return lambda epoch, losses, alive: on_epoch_end(epoch + offset, losses, alive)


def merge_scores(old, new, take: np.ndarray):
    """Per member, ``new`` where ``take`` (M,) else ``old``, through nested score dicts."""
    if isinstance(new, dict):
        return {key: merge_scores(old[key], value, take) for key, value in new.items()}
    return np.where(take, new, old)


def train_levels(models, train_and_score, spec: ExperimentSpec):
    """Multi-level training (:mod:`resnet_stability.multilevel`): ``spec.levels`` rounds
    of ``spec.epochs`` epochs; after each but the last, every members model is prolonged
    (depth ×2, h/2, children start as their parent block). ``train_and_score(models,
    alive, level)`` trains level ``level`` + 1 and scores it (``alive``: members still
    training; None at level 1).

    A member that diverges at level ℓ stays dead afterwards (its last finite weights
    are prolonged but never trained again): its row's scores, last-finite accuracy and
    loss are level ℓ's, its ``diverged_epoch`` counts epochs over all levels
    ((ℓ − 1)·epochs + the epoch within level ℓ). Returns ``(models, train_step,
    final_loss, diverged_epoch, scores, last_finite, level_accuracy)``, the last an
    (M, levels) array of test accuracy after each level (NaN after a member's level of
    divergence)."""
    from resnet_stability.multilevel import prolong

    alive = None
    level_accuracy = []
    for level in range(spec.levels):
        if level:
            models = [prolong(model) for model in models]
        train_step, loss, epochs_now, scores_now, finite_now = train_and_score(models, alive, level)
        if alive is None:  # level 1
            final_loss, diverged_epoch, scores, last_finite = loss, epochs_now, scores_now, finite_now
        else:
            final_loss = np.where(alive, loss, final_loss)
            diverged_epoch = np.where(alive & (epochs_now > 0), epochs_now + level * spec.epochs, diverged_epoch)
            scores = merge_scores(scores, scores_now, alive)
            last_finite = np.where(alive, finite_now, last_finite)
        level_accuracy.append(np.where(alive if alive is not None else True, scores_now["test"], np.nan))
        alive = train_step.alive()
    return models, train_step, final_loss, diverged_epoch, scores, last_finite, np.stack(level_accuracy, axis=1)


def stability_rows(plan: MemberPlan, size: int = STABILITY_SAMPLE) -> np.ndarray:
    """The test rows at which member ``plan``'s Prop. 1 statistic is taken: ``size`` of
    its own test rows (all of them if it has fewer), drawn without replacement by
    ``numpy.random.default_rng(derive_seed(plan.seed, "stability"))`` and kept in
    dataset order, so the sample depends only on the member."""
    count = min(int(size), len(plan.test_idx))
    rng = np.random.default_rng(derive_seed(plan.seed, "stability"))
    return plan.test_idx[np.sort(rng.choice(len(plan.test_idx), size=count, replace=False))]


def member_stability(shards, gather, plans: list[MemberPlan], block: str, size: int = STABILITY_SAMPLE):
    """:func:`members_statistic` of every member at its own sample of test rows
    (:func:`stability_rows`, standardised by ``gather``; ``size`` rows each, fewer if some
    member has fewer test rows)."""
    size = min([size] + [len(p.test_idx) for p in plans])
    return members_statistic(
        shards, block, lambda: gather(np.stack([stability_rows(p, size) for p in plans], axis=1).astype(np.int32))[0]
    )


def members_statistic(shards, block: str, inputs: Callable):
    """``(euler_max, euler_stable_share, seconds)`` of every member (arrays (M,)), from the
    weights the ``shards`` hold now (:mod:`resnet_stability.analysis.members_spectra`):
    the largest |1 + hλ| over blocks, the inputs ``inputs()`` ((size, M, d), standardised;
    member m's are ``[:, m]``) and the eigenvalues λ of the block's field Jacobian there,
    and the share of blocks where it is <= 1 + 1e-6. Blocks that are not forward Euler
    (rk4, lm, zeros, multistep), whose stability region is not |1 + hλ| <= 1, give NaN
    (and ``inputs`` is not called)."""
    from resnet_stability.layers import BLOCKS

    started = time.perf_counter()
    bounds = np.cumsum([0] + [int(shard.output_shape[1]) for shard in shards])  # members of each shard
    if not is_euler_block(BLOCKS[block]):
        return np.full(bounds[-1], np.nan), np.full(bounds[-1], np.nan), 0.0
    x = inputs()
    # one thread per shard: the eigenvalues (numpy) and Jacobians (the backend) release the
    # GIL, so a 2-shard CPU cell takes its statistic on both cores; the cores left over
    # (a GPU cell is one shard on a many-core host) split each shard's eigenvalues
    threads = max(1, (os.cpu_count() or 1) // len(shards))
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(shards)) as pool:
        parts = pool.map(lambda part: members_euler_factors(part[0], x[:, part[1] : part[2]], threads),
                         zip(shards, bounds, bounds[1:]))
        factors = np.concatenate(list(parts))
    euler_max, share = euler_summary(factors)
    return euler_max, share, time.perf_counter() - started


def majority_rate(labels: np.ndarray) -> float:
    """The share of the most common label: the accuracy of always predicting it."""
    return float(np.bincount(np.asarray(labels)).max() / len(labels)) if len(labels) else float("nan")


def score_members(predict, gather, plans: list[MemberPlan], spec: ExperimentSpec, block: str) -> dict:
    """Every member's accuracy: ``{"test": (M,), "train": (M,), "windows": {window: (M,)},
    "noise": {(kind, level): (M,)}}`` (windows of time-split data; noise levels > 0 of
    ``spec``: :func:`noise_sources`)."""
    members = len(plans)
    test_rows = np.stack([p.test_idx for p in plans], axis=1)
    scores = {
        "test": evaluate_accuracy(predict, gather, test_rows),
        "train": evaluate_accuracy(predict, gather, np.stack([p.train_idx for p in plans], axis=1)),
        "windows": {},
        "noise": {},
    }
    if plans[0].time_split is not None:
        for window in plans[0].time_split.windows:
            rows = np.repeat(window.idx[:, None], members, axis=1)
            scores["windows"][window.index] = evaluate_accuracy(predict, gather, rows)
    for key, noise in noise_sources(spec, block).items():
        scores["noise"][key] = evaluate_accuracy(predict, gather, test_rows, perturb=noise)
    return scores


def noise_sources(spec: ExperimentSpec, block: str) -> dict[tuple[str, float], NoiseSource]:
    """Fresh noise sources of a cell's scoring, ``{(kind, level): NoiseSource}`` in
    scoring order: every kind of ``spec.noise_kinds`` × level > 0 of ``spec.noise_levels``
    (level 0 is the clean score; none without levels), seeded by :func:`noise_seed`."""
    return {
        (kind, level): NoiseSource(kind, level, noise_seed(spec, block, kind, level))
        for kind in (spec.noise_kinds if spec.noise_levels else ())
        for level in spec.noise_levels
        if level > 0
    }


def noise_seed(spec: ExperimentSpec, block: str, kind: str, level: float) -> int:
    """Seed of the noise drawn for one kind and level of a cell (the same for every member)."""
    return derive_seed(spec.seed, spec.dataset, block, "noise", kind, level)


def evaluate_accuracy(predict, gather, rows: np.ndarray, perturb=None) -> np.ndarray:
    """Per-member accuracy on ``rows`` (n, M) of ``predict`` (features -> probabilities);
    rows with a non-finite output count as wrong. ``perturb`` (a
    :class:`~resnet_stability.sweep.noise.NoiseSource`) is added to the standardised inputs
    before prediction (noise robustness)."""
    correct = np.zeros(rows.shape[1])
    for start in range(0, rows.shape[0], EVAL_CHUNK):
        x, y = gather(rows[start : start + EVAL_CHUNK].astype(np.int32))
        if perturb is not None:
            x = x + keras.ops.convert_to_tensor(perturb.draw(tuple(x.shape)), x.dtype)
        probabilities = keras.ops.convert_to_numpy(predict(x))
        finite = np.isfinite(probabilities).all(axis=-1)
        hit = (probabilities.argmax(axis=-1) == keras.ops.convert_to_numpy(y)) & finite
        correct += hit.sum(axis=0)
    return correct / rows.shape[0]

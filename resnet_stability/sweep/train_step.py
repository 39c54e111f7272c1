"""One optimiser step for every member of a cell, with divergence masking.

A cell's M members may be split into a few *shards*, each a members model of its own
(see ``trainer.build_members_shards``); one call of :class:`MembersTrainStep` steps all
of them in one compiled function. Shards share nothing, so TensorFlow runs them on
different cores at once (its inter-op threads): on a 2-core CPU the paper's Adult cell
stepped in 0.65x the time with 2 shards. A member's numbers do not depend on the shard
it is in (tested).

**Where the parameters live during training.** A members model has a few variables
per block (400+ at depth 100), each of shape (M, ...). Each shard packs its trainable
ones into ONE variable of shape (M, P) (row m: member m's P numbers, in the model's
variable order) and its non-trainable ones (batch-norm moving statistics) into one of
shape (M, Q). The forward pass reads the model's weights as reshaped slices of those
through Keras's ``Model.stateless_call``, and the optimiser updates the packed
variable. Keras's optimisers (Adam, SGD, RMSprop, AdamW, Nadam, Adagrad) are
element-wise, so one update of the (M, P) variable is exactly the per-variable updates
side by side; what changes is the number of operations per step (a dozen instead of a
dozen per variable), which on a CPU was most of a small step's time and of the time to
trace it. Optimisers that are not element-wise (``clipnorm``, ``global_clipnorm``)
are refused. Variables with a constraint (LM-ResNet's k with ``constrain=True``, ZeroS's
trainable λ) are not packed but copied one by one with their constraint, so that Keras
applies it after each update.
:meth:`MembersTrainStep.write_back` copies the packed values into the models' own
variables (``trainer.run_epochs`` does so after the last step).

On a CPU the update (optimiser, finiteness checks, masking) is compiled with XLA:
one fused pass over the packed parameters instead of a dozen (it is memory-bound: the
depth-100 presets hold 4-8 M parameters a cell), while the forward and backward passes
stay with TensorFlow's own kernels, whose batched matmuls at these shapes ran 3x
faster than XLA's on that CPU. On a GPU (``jit_compile=True``) the whole step is XLA.

**Divergence.** The loss is the sum of the members' mean cross-entropies (plus, per
member, the losses its layers add in training: the Euler-stability penalty of
``layers.euler_penalty``, one value per member), so each member's gradient is exactly
its own. After each step a member whose loss, or whose
updated weights or batch-norm statistics, are not finite is marked dead (``alive[m]``
False): its row of every packed variable (and of each separate one) is put back to its
value before the step, and stays there: a dead member's loss counts as 0 in every later
step, and its rows are put back after every later update. The values the diverging
step produced (the *diverged network*) are kept aside, so that the member can be scored
as what its training produced (:meth:`MembersTrainStep.load_diverged`) as well as from
its last finite weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from resnet_stability.sweep.engines import require_elementwise


def per_member_loss(labels, probabilities):
    """Mean sparse cross-entropy over the batch axis: (b, M), (b, M, C) -> (M,)."""
    return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, probabilities), axis=0)


def finite_rows(values):
    """(M, ...) -> (M,) bool: every entry of row m is finite."""
    return tf.reduce_all(tf.math.is_finite(tf.reshape(values, (tf.shape(values)[0], -1))), axis=1)


def keep_rows(ok, new, old):
    """Row m of ``new`` where ``ok[m]``, else row m of ``old``."""
    return tf.where(tf.reshape(ok, (-1,) + (1,) * (len(new.shape) - 1)), new, old)


def any_batch_size(batch):
    """The ``tf.TensorSpec`` structure of ``batch`` (arrays or tensors) with its leading
    (batch) axis left open."""

    def spec(value):
        value = tf.convert_to_tensor(value)
        return tf.TensorSpec((None,) + tuple(value.shape[1:]), value.dtype)

    return tf.nest.map_structure(spec, batch)


class AnyBatchFunction:
    """``fn(batch)`` as a ``tf.function`` traced once, at the first call, for every batch
    size (:func:`any_batch_size` of that first batch): an epoch's last, shorter batch, or
    the last chunk of an evaluation, does not trace and compile the whole network again
    (at depth 100 a second trace of the training step cost ~17 s of a cell's set-up).

    Without AutoGraph: the traced code branches on Python values only (tensor-dependent
    choices are explicit ``tf.cond``), so converting its source and wrapping each of its
    calls bought nothing and cost ~0.5 s of a Wine cell's first epoch."""

    def __init__(self, fn, jit_compile: bool = False):
        self.fn, self.jit_compile, self.traced = fn, jit_compile, None

    def __call__(self, batch):
        if self.traced is None:
            self.traced = tf.function(self.fn, jit_compile=self.jit_compile, input_signature=[any_batch_size(batch)],
                                      autograph=False)
        return self.traced(batch)

    def tracing_count(self) -> int:
        """How many times ``fn`` was traced (0 before the first call)."""
        return 0 if self.traced is None else self.traced.experimental_get_tracing_count()


class Packing:
    """Packs variables of shapes (M, *s_i) into one (M, Σ prod(s_i)) tensor and back."""

    def __init__(self, variables, members: int):
        self.members = members
        self.dtype = variables[0].dtype if variables else keras.config.floatx()
        self.shapes = [tuple(v.shape) for v in variables]
        self.sizes = [math.prod(shape[1:]) for shape in self.shapes]
        self.size = sum(self.sizes)

    def pack(self, values):
        if not self.sizes:
            return tf.zeros((self.members, 0), self.dtype)
        return tf.concat([tf.reshape(v, (self.members, -1)) for v in values], axis=1)

    def unpack(self, packed):
        if not self.sizes:
            return []
        return [tf.reshape(part, shape) for part, shape in zip(tf.split(packed, self.sizes, axis=1), self.shapes)]


class ShardStep:
    """The packed parameters, optimiser and ``alive`` flags of one shard (one members model)."""

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer, xla_update: bool):
        require_elementwise(optimizer)
        self.model, self.optimizer = model, optimizer
        self.members = members = int(model.output_shape[1])
        trainable = list(model.trainable_variables)
        self._separate_index = [i for i, v in enumerate(trainable) if v.constraint is not None]
        self._packed_vars = [v for v in trainable if v.constraint is None]
        self._separate_vars = [trainable[i] for i in self._separate_index]
        self._separate = [self._copy(v) for v in self._separate_vars]
        self._state_vars = list(model.non_trainable_variables)
        self._weights = Packing(self._packed_vars, members)
        self._states = Packing(self._state_vars, members)
        self.packed = keras.Variable(self._weights.pack([v.value for v in self._packed_vars]), name="packed_weights")
        # (the Keras variables created here hold copies: Keras's ``.value`` is the variable itself)
        self.packed_state = keras.Variable(
            self._states.pack([v.value for v in self._state_vars]), name="packed_state", trainable=False
        )
        self._optimized = [self.packed] + self._separate
        optimizer.build(self._optimized)
        # what the diverging step produced, per dead member (rows of live members unused)
        self._diverged = [keras.Variable(tf.identity(v.value), trainable=False) for v in self._optimized + [self.packed_state]]
        self.alive = tf.Variable(tf.ones(members, tf.bool), trainable=False)
        self._update = tf.function(self._apply, jit_compile=True, autograph=False) if xla_update else self._apply

    @staticmethod
    def _copy(variable):
        """A trainable copy of a constrained variable, carrying its constraint."""
        copy = keras.Variable(tf.identity(variable.value), name=f"{variable.name}_copy")
        copy.constraint = variable.constraint
        return copy

    def _trainable_values(self):
        values = self._weights.unpack(self.packed.value)
        for i, variable in zip(self._separate_index, self._separate):
            values.insert(i, variable.value)
        return values

    def step(self, x, y):
        """One optimiser step on features (b, M_shard, d), labels (b, M_shard); -> (losses, ok)."""
        state_before = tf.identity(self.packed_state.value)  # a value, not the variable (Keras's .value is one)
        with tf.GradientTape() as tape:
            probabilities, state, added = self.model.stateless_call(
                self._trainable_values(), self._states.unpack(state_before), x, training=True, return_losses=True
            )
            losses = per_member_loss(y, probabilities)
            if added:  # per-member losses of the layers, each (M,)
                losses = losses + tf.add_n([tf.cast(loss, losses.dtype) for loss in added])
            ok = tf.math.is_finite(losses) & self.alive
            total = tf.reduce_sum(tf.where(ok, losses, 0.0))
        ok = self._update(tape.gradient(total, self._optimized), ok, self._states.pack(state), state_before)
        return tf.where(ok, losses, 0.0), ok

    def _apply(self, grads, ok, state, state_before):
        """The optimiser update, then rows put back for members not ``ok`` (module docstring)."""
        before = [tf.identity(v.value) for v in self._optimized]
        self.optimizer.apply(grads, self._optimized)
        for variable in self._optimized:
            ok = ok & finite_rows(variable.value)
        if self._states.size:
            ok = ok & finite_rows(state)
        dying = self.alive & ~ok

        def keep_diverged():  # rare: only in the step where a member diverges
            for snapshot, value in zip(self._diverged, [v.value for v in self._optimized] + [state]):
                snapshot.assign(keep_rows(dying, value, snapshot.value))
            return tf.constant(True)

        tf.cond(tf.reduce_any(dying), keep_diverged, lambda: tf.constant(False))
        if self._states.size:
            self.packed_state.assign(keep_rows(ok, state, state_before))
        for variable, old in zip(self._optimized, before):
            variable.assign(keep_rows(ok, variable.value, old))
        self.alive.assign(ok)
        return ok

    def write_back(self, diverged: bool = False) -> None:
        """The packed values into the model's variables; with ``diverged``, dead members'
        rows come from the step where they diverged instead of their last finite values."""
        alive = self.alive.value()
        values = [v.value for v in self._optimized + [self.packed_state]]
        if diverged:
            values = [keep_rows(alive, value, snapshot.value) for value, snapshot in zip(values, self._diverged)]
        packed, *separate, packed_state = values
        for variable, value in zip(self._packed_vars, self._weights.unpack(packed)):
            variable.assign(value)
        for variable, value in zip(self._separate_vars, separate):
            variable.assign(value)
        for variable, value in zip(self._state_vars, self._states.unpack(packed_state)):
            variable.assign(value)


class MembersTrainStep:
    """``step(batch) -> (losses, ok)``: one optimiser step for every member (module docstring).

    Args:
        shards: the members models of the cell, members in order (shard 0 holds the
            first members), or one members model.
        make_optimizer: returns a fresh Keras optimiser (one per shard).
        inputs: ``inputs(batch) -> (x, y)``, traced inside the compiled step, turns what
            the step is called with into features (b, M, d) and labels (b, M) of all
            members (e.g. row indices gathered from an in-memory table).
        xla: ``"step"`` compiles the whole step with XLA (GPUs), ``"update"`` only
            each shard's update (CPUs), ``"off"`` nothing (see ``trainer.xla_mode``).

    ``losses`` (M,) is 0 for dead members; :meth:`alive` is False for members that
    diverged.
    """

    XLA_MODES = ("step", "update", "off")

    def __init__(self, shards, make_optimizer: Callable[[], keras.optimizers.Optimizer], inputs, xla: str = "update"):
        if xla not in self.XLA_MODES:
            raise ValueError(f"unknown xla mode {xla!r}; allowed: {', '.join(self.XLA_MODES)}")
        shards = list(shards) if isinstance(shards, (list, tuple)) else [shards]
        self.shards = [ShardStep(model, make_optimizer(), xla_update=xla == "update") for model in shards]
        self.inputs = inputs
        self.members = sum(shard.members for shard in self.shards)
        self.bounds = np.cumsum([0] + [shard.members for shard in self.shards])
        self._step = AnyBatchFunction(self._train_step, jit_compile=xla == "step")

    def precompile(self, batch_shapes) -> None:
        """Nothing to do: the step is traced once for any batch size
        (:class:`AnyBatchFunction`), at its first batch."""

    def __call__(self, batch):
        return self._step(batch)

    def _train_step(self, batch):
        x, y = self.inputs(batch)
        if len(self.shards) == 1:
            return self.shards[0].step(x, y)
        results = [
            shard.step(x[:, lo:hi], y[:, lo:hi]) for shard, lo, hi in zip(self.shards, self.bounds, self.bounds[1:])
        ]
        return tuple(tf.concat(parts, axis=0) for parts in zip(*results))

    def alive(self) -> np.ndarray:
        """(M,) bool: False for members that diverged."""
        return np.concatenate([shard.alive.numpy() for shard in self.shards])

    def set_alive(self, alive) -> None:
        """Set the (M,) ``alive`` flags, e.g. to start with members that diverged earlier
        already dead (multi-level training): a dead member is never updated."""
        alive = np.asarray(alive, dtype=bool)
        for shard, lo, hi in zip(self.shards, self.bounds, self.bounds[1:]):
            shard.alive.assign(alive[lo:hi])

    def write_back(self) -> None:
        """Copy the packed weights and statistics into the models' own variables (dead
        members: their last finite values)."""
        for shard in self.shards:
            shard.write_back()

    def load_diverged(self) -> None:
        """Like :meth:`write_back`, but dead members get the values their diverging step
        produced: the models then hold the diverged networks (scored as such)."""
        for shard in self.shards:
            shard.write_back(diverged=True)

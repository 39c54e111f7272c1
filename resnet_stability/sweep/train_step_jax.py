"""One optimiser step for every member of a cell, under Keras's JAX backend.

The step of :mod:`resnet_stability.sweep.train_step` (TensorFlow), written as one pure
function compiled whole by ``jax.jit`` (XLA, on a CPU or a GPU): per shard (members
model), with ``ok_m = alive_m ∧ finite(loss_m)``,

- loss_m = mean over the batch of member m's cross-entropy + the losses its layers add
  in training (one value per member); the differentiated total is Σ_m [ok_m] loss_m, so
  each member's gradient is exactly its own. The cross-entropy is taken from the softmax
  head's logits z, logsumexp(z) − z_y, as Keras does under TensorFlow (it finds the
  logits behind a softmax output), and not from the probabilities, which Keras's JAX
  backend would clip to [ε, 1 − ε]: a saturated network (a member whose large h blows
  its logits up) would get a zero gradient there and stall instead of diverging, as
  it does under TensorFlow (tested: same members, same divergence, ``tests/test_engines.py``);
- the Keras optimiser's ``stateless_apply`` updates the weights (and applies their
  constraints), then ``ok_m`` also needs every updated weight and batch-norm statistic
  of member m finite;
- a member not ok has its rows of every weight and statistic put back to their values
  before the step, and is dead from then on (``alive_m`` False); in the step where it
  dies, the values that step produced are kept aside (the *diverged network*,
  :meth:`JaxMembersTrainStep.load_diverged`).

Weights, statistics, optimiser variables, ``alive`` and the kept-aside values live as
JAX arrays in this object during training (the compiled step takes and returns them,
its input buffers donated, so nothing is copied between steps or back to the host);
:meth:`JaxMembersTrainStep.write_back` copies them into the models' variables. No
packing into one (M, P) array as under TensorFlow: XLA fuses the per-variable updates
itself. ``jax.jit`` compiles once per batch shape: an epoch whose last batch is
shorter needs the step compiled twice, and :meth:`JaxMembersTrainStep.precompile`
compiles both side by side before training (the same programs; on an H200 compiling
was most of a cell's 19-53 s set-up).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable

import jax
import jax.numpy as jnp
import keras
import numpy as np

from resnet_stability.sweep.engines import require_elementwise


def per_member_loss(labels, logits):
    """Mean softmax cross-entropy over the batch axis, from logits: (b, M), (b, M, C) -> (M,)."""
    return jnp.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True), axis=0)


def finite_rows(value):
    """(M, ...) -> (M,) bool: every entry of row m is finite."""
    return jnp.all(jnp.isfinite(jnp.reshape(value, (value.shape[0], -1))), axis=1)


def keep_rows(ok, new, old):
    """Row m of ``new`` where ``ok[m]``, else row m of ``old``."""
    return jnp.where(jnp.reshape(ok, (-1,) + (1,) * (new.ndim - 1)), new, old)


def _copies(variables) -> list:
    """Fresh device arrays holding the variables' values (the step donates its inputs,
    so it must not be handed the variables' own buffers)."""
    return [jnp.array(v.value, copy=True) for v in variables]


class _Shard:
    """The optimiser of one members model and the pure step of its members."""

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer):
        require_elementwise(optimizer)
        self.model, self.optimizer = model, optimizer
        self.members = int(model.output_shape[1])
        self.head = model.get_layer("head")
        if self.head.activation != "softmax":
            raise ValueError(f"the members step trains softmax heads (cross-entropy from logits), not {self.head.activation!r}")
        self.trunk = keras.Model(model.inputs, self.head.input)  # the model up to the head, sharing its layers
        optimizer.build(model.trainable_variables)

    def initial_state(self) -> dict:
        trainable = _copies(self.model.trainable_variables)
        statistics = _copies(self.model.non_trainable_variables)
        return dict(
            trainable=trainable,
            statistics=statistics,
            optimizer=_copies(self.optimizer.variables),
            alive=jnp.ones(self.members, bool),
            diverged=[jnp.array(v, copy=True) for v in trainable + statistics],
        )

    def forward(self, trainable, statistics, x):
        """Training-mode pass with these weights and statistics: (logits (b, M, C), the
        updated statistics, the layers' added losses); ``Model.stateless_call`` stopped
        before the head's softmax."""
        model = self.model
        mapping = list(zip(model.trainable_variables, trainable)) + list(zip(model.non_trainable_variables, statistics))
        with keras.StatelessScope(state_mapping=mapping, collect_losses=True) as scope:
            logits = self.head.pre_activation(self.trunk(x, training=True))
            added = list(self.trunk.losses)
        return logits, [scope.get_current_value(v) for v in model.non_trainable_variables], added

    def step(self, state: dict, x, y):
        """-> (new state, losses (M,) with 0 for members not ok, ok (M,))."""
        alive = state["alive"]

        def total_loss(trainable):
            logits, statistics, added = self.forward(trainable, state["statistics"], x)
            losses = per_member_loss(y, logits)
            for loss in added:  # per-member losses of the layers, each (M,)
                losses = losses + jnp.asarray(loss, losses.dtype)
            ok = jnp.isfinite(losses) & alive
            return jnp.sum(jnp.where(ok, losses, 0.0)), (losses, ok, statistics)

        grads, (losses, ok, statistics) = jax.grad(total_loss, has_aux=True)(state["trainable"])
        trainable, optimizer = self.optimizer.stateless_apply(state["optimizer"], grads, state["trainable"])
        for value in trainable + list(statistics):
            ok = ok & finite_rows(value)
        dying = alive & ~ok
        produced = list(trainable) + list(statistics)
        new = dict(
            trainable=[keep_rows(ok, value, old) for value, old in zip(trainable, state["trainable"])],
            statistics=[keep_rows(ok, value, old) for value, old in zip(statistics, state["statistics"])],
            optimizer=list(optimizer),
            alive=ok,
            diverged=[keep_rows(dying, value, kept) for value, kept in zip(produced, state["diverged"])],
        )
        return new, jnp.where(ok, losses, 0.0), ok

    def write_back(self, state: dict, diverged: bool = False) -> None:
        values = state["trainable"] + state["statistics"]
        if diverged:
            values = [keep_rows(state["alive"], value, kept) for value, kept in zip(values, state["diverged"])]
        variables = list(self.model.trainable_variables) + list(self.model.non_trainable_variables)
        for variable, value in zip(variables, values):
            variable.assign(value)


class JaxMembersTrainStep:
    """``step(batch) -> (losses, ok)``: one optimiser step for every member (module
    docstring); the interface of :class:`resnet_stability.sweep.train_step.MembersTrainStep`.

    Args:
        shards: the members models of the cell, members in order, or one members model.
        make_optimizer: returns a fresh Keras optimiser (one per shard).
        inputs: ``inputs(batch) -> (x, y)``, traced inside the compiled step: features
            (b, M, d) and labels (b, M) of all members.
        xla: accepted for the interface; under JAX the whole step is always one XLA
            program (``"step"``), whatever is asked.
    """

    def __init__(self, shards, make_optimizer: Callable[[], keras.optimizers.Optimizer], inputs, xla: str = "step"):
        shards = list(shards) if isinstance(shards, (list, tuple)) else [shards]
        self.shards = [_Shard(model, make_optimizer()) for model in shards]
        self.inputs = inputs
        self.members = sum(shard.members for shard in self.shards)
        self.bounds = np.cumsum([0] + [shard.members for shard in self.shards])
        self.state = [shard.initial_state() for shard in self.shards]
        self._step = jax.jit(self._train_step, donate_argnums=0)
        self._compiled: dict[tuple, concurrent.futures.Future] = {}  # batch shape -> the step compiled for it

    def precompile(self, batch_shapes) -> None:
        """Compile the step for each batch shape (b, M) (rows of a batch, int32) at once,
        in threads (XLA compiles without the GIL), instead of at each shape's first batch;
        :meth:`__call__` then runs those programs (and ``jax.jit``'s own for any other
        shape). Tracing (Python) happens here, in this thread."""
        abstract_state = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), self.state)
        shapes = [shape for shape in dict.fromkeys(map(tuple, batch_shapes)) if shape not in self._compiled]
        if not shapes:
            return
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(shapes), thread_name_prefix="compile")
        for shape in shapes:
            lowered = self._step.lower(abstract_state, jax.ShapeDtypeStruct(shape, np.int32))
            self._compiled[shape] = pool.submit(lowered.compile)
        pool.shutdown(wait=False)

    def __call__(self, batch):
        compiled = self._compiled.get(getattr(batch, "shape", None))  # (a streamed batch is a tuple)
        step = self._step if compiled is None else compiled.result()
        self.state, losses, ok = step(self.state, batch)
        return losses, ok

    def _train_step(self, state, batch):
        x, y = self.inputs(batch)
        results = [
            shard.step(part, x[:, lo:hi], y[:, lo:hi])
            for shard, part, lo, hi in zip(self.shards, state, self.bounds, self.bounds[1:])
        ]
        new_state = [result[0] for result in results]
        return new_state, jnp.concatenate([r[1] for r in results]), jnp.concatenate([r[2] for r in results])

    def alive(self) -> np.ndarray:
        """(M,) bool: False for members that diverged."""
        return np.concatenate([np.asarray(part["alive"]) for part in self.state])

    def set_alive(self, alive) -> None:
        """Set the (M,) ``alive`` flags (a dead member is never updated)."""
        alive = np.asarray(alive, dtype=bool)
        for part, lo, hi in zip(self.state, self.bounds, self.bounds[1:]):
            part["alive"] = jnp.asarray(alive[lo:hi])

    def write_back(self) -> None:
        """Copy the weights and statistics into the models' variables (dead members:
        their last finite values)."""
        for shard, part in zip(self.shards, self.state):
            shard.write_back(part)

    def load_diverged(self) -> None:
        """Like :meth:`write_back`, but dead members get the values their diverging step
        produced: the models then hold the diverged networks (scored as such)."""
        for shard, part in zip(self.shards, self.state):
            shard.write_back(part, diverged=True)

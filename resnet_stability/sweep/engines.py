"""The members engine's backend-specific pieces, one engine per Keras backend.

The engine (:mod:`resnet_stability.sweep.trainer`) is written with ``keras.ops``; what
it cannot write that way comes from the engine of the Keras backend in use
(``KERAS_BACKEND``, Keras's own setting), registered in :data:`ENGINES`:

- ``train_step(shards, make_optimizer, inputs, xla)``: the step of every member;
- ``predictor(shards)``: ``predict(x)``, (b, M, d) -> (b, M, C), compiled;
- ``device_scope(device)``: where the cell's tensors are placed;
- ``select_device(choice)``: the :class:`~resnet_stability.sweep.devices.DeviceInfo`
  of ``"auto"``, ``"cpu"`` or ``"gpu"`` (and the CPU settings of that backend);
  ``has_gpu()``: whether the backend sees a GPU;
- ``shards(device_kind, members)``: how many members models a cell is split into;
- ``xla_optional``: whether ``--jit`` chooses what XLA compiles (else all of it).

``tensorflow`` (the default): ``tf.function``, ``tf.GradientTape``, optimiser update
compiled with XLA on a CPU (:mod:`~resnet_stability.sweep.train_step`). ``jax``: the
whole step one ``jax.jit`` program (:mod:`~resnet_stability.sweep.train_step_jax`), the
route to GPUs whose software stack has JAX but not TensorFlow. Initial weights are
drawn with numpy (:mod:`resnet_stability.layers.initialization`), so a cell's members
start the same under both, and their trained numbers agree to float rounding (tested
in ``tests/test_engines.py``); a sweep records the backend with its device.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

#: Shards of a cell on a CPU under TensorFlow (see :mod:`resnet_stability.sweep.train_step`):
#: independent members models stepped at once, so that TensorFlow runs them on different cores.
CPU_SHARDS = 2
EVAL_BUCKET_MAX = 2048  # the largest padded row count of a JAX prediction (the trainer's EVAL_CHUNK)


def require_elementwise(optimizer) -> None:
    """ValueError if ``optimizer`` clips by a norm (``clipnorm``, ``global_clipnorm``): a
    norm over all members' gradients would mix them, and the members step needs each
    member's update to be its own (Keras's other optimisers are element-wise)."""
    for option in ("clipnorm", "global_clipnorm"):
        if getattr(optimizer, option, None):
            raise ValueError(
                f"optimizer {optimizer.name!r} sets {option}; the members step needs an element-wise "
                "optimiser (no norm clipping), so that each member's update is its own"
            )


def _bounds(shards) -> np.ndarray:
    return np.cumsum([0] + [int(model.output_shape[1]) for model in shards])


class TensorFlowEngine:
    name = "tensorflow"
    xla_optional = True  # --jit chooses what XLA compiles (trainer.xla_mode)

    @staticmethod
    def train_step(shards, make_optimizer, inputs, xla):
        from resnet_stability.sweep.train_step import MembersTrainStep

        return MembersTrainStep(shards, make_optimizer, inputs, xla)

    @staticmethod
    def predictor(shards):
        """Traced once for any number of rows (``train_step.AnyBatchFunction``)."""
        import tensorflow as tf

        from resnet_stability.sweep.train_step import AnyBatchFunction

        bounds = _bounds(shards)

        def predict(x):
            parts = [model(x[:, lo:hi], training=False) for model, lo, hi in zip(shards, bounds, bounds[1:])]
            return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)

        return AnyBatchFunction(predict)

    @staticmethod
    def device_scope(device: str | None):
        import tensorflow as tf

        return tf.device(device) if device else contextlib.nullcontext()

    @staticmethod
    def has_gpu() -> bool:
        import tensorflow as tf

        return bool(tf.config.list_logical_devices("GPU"))

    @staticmethod
    def select_device(choice: str):
        from resnet_stability.sweep.devices import select_tensorflow_device

        return select_tensorflow_device(choice)

    @staticmethod
    def shards(device_kind: str, members: int) -> int:
        """2 on a CPU (one per core: TensorFlow runs independent operations side by
        side), 1 on a GPU."""
        return 1 if device_kind == "gpu" else max(1, min(CPU_SHARDS, members))


def padded_rows(n: int) -> int:
    """Rows a JAX prediction of ``n`` rows is padded to: the next power of two (at most
    :data:`EVAL_BUCKET_MAX`, at least n), so that a cell compiles its predictor for a
    few shapes only (``jax.jit`` compiles once per shape)."""
    return max(n, min(EVAL_BUCKET_MAX, 1 << max(0, n - 1).bit_length()))


class JaxEngine:
    name = "jax"
    xla_optional = False  # jax.jit: the whole step is one XLA program

    @staticmethod
    def train_step(shards, make_optimizer, inputs, xla):
        from resnet_stability.sweep.train_step_jax import JaxMembersTrainStep

        return JaxMembersTrainStep(shards, make_optimizer, inputs, xla)

    @staticmethod
    def predictor(shards):
        """The models' current weights passed to one compiled ``stateless_call`` (not
        baked into the program as constants); rows padded with zeros to
        :func:`padded_rows` (in inference mode rows are independent)."""
        import jax
        import jax.numpy as jnp

        bounds = _bounds(shards)
        weights = [
            ([v.value for v in m.trainable_variables], [v.value for v in m.non_trainable_variables]) for m in shards
        ]

        @jax.jit
        def predict(weights, x):
            parts = [
                model.stateless_call(trainable, statistics, x[:, lo:hi], training=False)[0]
                for model, (trainable, statistics), lo, hi in zip(shards, weights, bounds, bounds[1:])
            ]
            return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)

        def call(x):
            n = int(x.shape[0])
            padding = padded_rows(n) - n
            if padding:
                x = jnp.concatenate([x, jnp.zeros((padding,) + tuple(x.shape[1:]), x.dtype)])
            return predict(weights, x)[:n]

        return call

    @staticmethod
    def device_scope(device: str | None):
        if not device:
            return contextlib.nullcontext()
        import jax

        kind, _, index = device.strip("/").lower().partition(":")
        return jax.default_device(jax.devices(kind)[int(index or 0)])

    @staticmethod
    def has_gpu() -> bool:
        import jax

        return jax.default_backend() == "gpu"

    @staticmethod
    def select_device(choice: str):
        from resnet_stability.sweep.devices import select_jax_device

        return select_jax_device(choice)

    @staticmethod
    def shards(device_kind: str, members: int) -> int:
        """1: the whole step is one XLA program (its own scheduling on any device)."""
        return 1


ENGINES = {engine.name: engine for engine in (TensorFlowEngine, JaxEngine)}


def current_engine():
    """The engine of Keras's backend; ValueError naming the backends that have one."""
    backend = keras.backend.backend()
    if backend not in ENGINES:
        raise ValueError(
            f"the sweep's engine does not run on the Keras backend {backend!r} (KERAS_BACKEND); "
            f"allowed: {', '.join(ENGINES)}"
        )
    return ENGINES[backend]

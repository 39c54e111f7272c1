"""Choosing where a sweep trains: CPU, GPU, or whichever the Keras backend finds
(TensorFlow, or JAX: :mod:`resnet_stability.sweep.engines`)."""

from __future__ import annotations

import dataclasses
import os
import platform
import warnings

from resnet_stability import quiet_native_stderr

DEVICE_CHOICES = ("auto", "cpu", "gpu")


@dataclasses.dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "cpu" or "gpu"
    name: str  # for the engine's device scope, e.g. "/GPU:0"
    description: str  # human readable, recorded in results
    backend: str  # the Keras backend that trains there ("tensorflow", "jax")

    def trained_on(self) -> dict:
        """What a cell trained here was trained on, as its completion marker records it
        (``ResultsStore.cell_trained_on``): ``{"backend": ..., "device": kind}``."""
        return {"backend": self.backend, "device": self.kind}


def configure_cpu_threads(cores: int | None = None) -> bool:
    """Run each TensorFlow operation on one thread and up to ``cores`` (default: all)
    operations at once. The engine steps a cell's shards as independent operations
    (:mod:`resnet_stability.sweep.train_step`); at the presets' small shapes, ops spread
    over threads were slower on 2 cores than ops side by side (Adult step 105 vs 68 ms
    with 2 shards). Takes effect only before TensorFlow runs its first operation:
    returns False (and changes nothing) after that.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(cores or os.cpu_count() or 1)
    except RuntimeError:  # the runtime is already initialised
        return False
    return True


def skip_graph_rewrites() -> None:
    """Turn off Grappler, TensorFlow's graph rewriting, for every function traced from now on.

    On a CPU its passes cost more than they give for the engine's step, a graph of a
    few thousand small operations: measured on 2 cores (Absenteeism, 100 blocks, one
    cell of 100 members), the batch-norm cell's set-up went from 70 to 47 s and its step
    from 76 to 69 ms, the residual cell's set-up from 23 to 18 s at the same step time.
    The rewrites preserve the mathematics but not the rounding: results computed with
    and without them differ in the last bits (then more, as training amplifies them).
    """
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def select_device(choice: str = "auto") -> DeviceInfo:
    """Pick the training device with the engine of Keras's backend (TensorFlow:
    :func:`select_tensorflow_device`, JAX: :func:`select_jax_device`)."""
    from resnet_stability.sweep.engines import current_engine

    return current_engine().select_device(choice)


def check_device_choice(choice: str) -> None:
    if choice not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {choice!r}; allowed: {', '.join(DEVICE_CHOICES)}")


def select_tensorflow_device(choice: str = "auto") -> DeviceInfo:
    """Pick the training device under TensorFlow. Call before TensorFlow touches a GPU.

    - ``cpu``: hide every GPU from TensorFlow and train on the CPU;
    - ``gpu``: the first GPU TensorFlow sees; RuntimeError if it sees none;
    - ``auto``: the first GPU if TensorFlow sees one, else the CPU.

    On the CPU it also runs each operation on one thread, several at once
    (:func:`configure_cpu_threads`), if TensorFlow has not started yet, and turns off
    graph rewriting (:func:`skip_graph_rewrites`). It quiets TensorFlow's retracing
    warnings (each cell traces its own step).
    """
    check_device_choice(choice)
    with quiet_native_stderr():
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    tf.get_logger().setLevel("ERROR")  # one new train step per cell is expected, not a retracing problem
    if choice == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    if choice == "gpu" and not gpus:
        raise RuntimeError(
            "--device gpu: TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') is empty); "
            "install a CUDA-enabled TensorFlow (pip install 'tensorflow[and-cuda]') or use --device cpu"
        )
    if gpus:
        # float32 products in float32: TensorFlow's default on Ampere and later GPUs is
        # TF32 (a 10-bit mantissa), which would change a sweep's numbers far beyond rounding
        tf.config.experimental.enable_tensor_float_32_execution(False)
        details = tf.config.experimental.get_device_details(gpus[0])
        return DeviceInfo("gpu", "/GPU:0", f"GPU:0 {details.get('device_name', 'unknown GPU')}", "tensorflow")
    cores = os.cpu_count() or 1
    configure_cpu_threads(cores)
    skip_graph_rewrites()
    return DeviceInfo("cpu", "/CPU:0", f"CPU:0 {platform.machine()} ({cores} cores)", "tensorflow")


#: XLA's GPU compiler with deterministic kernels only and no autotuning (which picks
#: kernels by timing them, so differently from one run to the next): without it two runs
#: of the engine's cases on an H200 gave 250 of 275 arrays bit for bit the same
#: (``benchmarks/gpu/check_jax_gpu.sh``). No effect on a CPU.
DETERMINISTIC_XLA_GPU_FLAG = "--xla_gpu_deterministic_ops=true"


def deterministic_xla_gpu() -> bool:
    """Put :data:`DETERMINISTIC_XLA_GPU_FLAG` into ``XLA_FLAGS`` unless the user's
    ``XLA_FLAGS`` already says ``xla_gpu_deterministic_ops`` either way (their choice
    stands). XLA reads ``XLA_FLAGS`` when JAX starts its backends: returns False (and
    changes nothing) if they have started already, else True."""
    from jax._src import xla_bridge

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" in flags:
        return True
    if xla_bridge.backends_are_initialized():
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {DETERMINISTIC_XLA_GPU_FLAG}".strip()
    return True


def select_jax_device(choice: str = "auto") -> DeviceInfo:
    """Pick the training device under JAX (``jax.devices``): ``gpu`` the first GPU
    (RuntimeError if JAX sees none), ``cpu`` the CPU, ``auto`` a GPU if there is one.
    XLA chooses its own CPU threads; the description names the backend. Matrix products
    run at full precision (``jax_default_matmul_precision = "highest"``): JAX's default
    on GPUs multiplies float32 in TF32 or bf16 passes, which would change a sweep's
    numbers far beyond rounding. On a GPU, XLA compiles deterministic kernels
    (:func:`deterministic_xla_gpu`), so that the same seed gives the same numbers; if JAX
    had started its GPU backend before this call, a warning says runs may differ."""
    check_device_choice(choice)
    import jax

    deterministic = deterministic_xla_gpu()
    jax.config.update("jax_default_matmul_precision", "highest")

    try:
        gpus = [] if choice == "cpu" else jax.devices("gpu")
    except RuntimeError:  # no GPU platform in this jaxlib
        gpus = []
    if choice == "gpu" and not gpus:
        raise RuntimeError("--device gpu: JAX sees no GPU (jax.devices('gpu') failed); install jax[cuda] or use --device cpu")
    if gpus:
        if not deterministic:
            warnings.warn(
                "JAX started its GPU backend before the sweep chose its device, so XLA_FLAGS could not "
                f"take {DETERMINISTIC_XLA_GPU_FLAG}: two runs with the same seed may differ in the last "
                "bits; set XLA_FLAGS to it before starting Python", stacklevel=2)
        return DeviceInfo("gpu", "/GPU:0", f"GPU:0 {gpus[0].device_kind} (jax)", "jax")
    return DeviceInfo("cpu", "/CPU:0", f"CPU:0 {platform.machine()} ({os.cpu_count() or 1} cores, jax)", "jax")

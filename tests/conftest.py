"""Shared fixtures and helpers (shared plain helpers of the sweep tests are in ``helpers.py``).

The generic battery in ``test_blocks.py`` and ``test_models.py`` runs once per entry of
:data:`BLOCK_CASES` (fixture ``block_case``): every registered block, iterated from
``sorted(resnet_stability.layers.BLOCKS)`` at collection time (so a block registered
later is covered without editing any test), and the combinations of a block with
another field or integrator that only the names make (``Shrinkage(integrator="rk4")``).

The numpy references here (:func:`numpy_field`, :data:`NUMPY_INTEGRATORS`) are written
from the math, independently of the package: f(y) for each field with Keras-style
kernels (stored (n_in, n_out), rows multiply from the left), and one step of each
integrator. Test modules import them with ``from conftest import ...``. The sweep's
tests share a few trained cells and one tiny sweep, each made once per session.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from resnet_stability import quiet_native_stderr

with quiet_native_stderr():  # TensorFlow's C++ start-up lines, which pytest-xdist workers print
    import keras
from helpers import TINY, TX_ROWS, make_spec

from resnet_stability.data import load_dataset, simulate_transactions, subsample_rows
from resnet_stability.layers import BLOCKS, OneStepBlock
from resnet_stability.sweep.devices import skip_graph_rewrites

# The tests run the sweep's CPU configuration (devices.select_device), so the
# member = standalone equivalence tests cover the path the sweep takes.
skip_graph_rewrites()

BLOCK_NAMES = sorted(BLOCKS)


@dataclass(frozen=True)
class BlockCase:
    """A registered block ``name``, with its field and/or integrator replaced by name
    (None: the block's own)."""

    name: str
    field: str | None = None
    integrator: str | None = None

    @property
    def cls(self) -> type:
        return BLOCKS[self.name]

    @property
    def options(self) -> dict:
        """The keyword arguments that make this case from the registered block."""
        return {key: value for key, value in (("field", self.field), ("integrator", self.integrator)) if value}

    @property
    def field_name(self) -> str:
        return self.field or self.cls.default_field

    @property
    def integrator_name(self) -> str:
        return self.integrator or self.cls.default_integrator

    @property
    def one_step(self) -> bool:
        return issubclass(self.cls, OneStepBlock)

    @property
    def id(self) -> str:
        return "+".join([self.name] + [f"{key}={value}" for key, value in self.options.items()])

    def __call__(self, **kwargs):
        """The block, built from the registered class with this case's options."""
        return self.cls(**self.options, **kwargs)


#: The generic battery's blocks: every registered one, then other field/integrator pairs.
BLOCK_CASES = [BlockCase(name) for name in BLOCK_NAMES] + [
    BlockCase("shrinkage", integrator="rk4"),
    BlockCase("batchnorm", integrator="rk4"),
    BlockCase("lm", field="shrinkage"),
]


@pytest.fixture(params=BLOCK_CASES, ids=[case.id for case in BLOCK_CASES])
def block_case(request) -> BlockCase:
    """Every registered block, and the other field/integrator pairs, one test each."""
    return request.param


@pytest.fixture(params=[None, 3], ids=["plain", "members3"])
def members(request):
    """Without a members axis, and with M = 3 independent networks."""
    return request.param


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator, so every test sees the same data on every run."""
    return np.random.default_rng(20240611)


@pytest.fixture
def perturb_weights(rng):
    """Move every variable of a layer or model away from its seeded initial value.

    Weights that a seed would regenerate identically cannot tell "loaded" from
    "re-initialised", so save/load and config tests perturb them first. Positive
    variables (BN's gamma and moving variance) stay positive.
    """

    def perturb(layer):
        for variable in layer.weights:
            value = np.asarray(variable.numpy())
            scale = rng.uniform(0.5, 1.5, size=value.shape)
            shift = rng.uniform(0.0, 0.2, size=value.shape)
            variable.assign((value * scale + shift).astype(value.dtype))
        return layer

    return perturb


@pytest.fixture
def float64():
    """Build and train in float64 for the duration of a test. Members and standalone
    networks compute the same products with different kernels (batched or not); in
    float32 such a rounding difference can flip a ReLU near 0 and, amplified by Adam,
    grow to ~lr, while in float64 they agree to ~1e-12."""
    previous, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(previous)
    keras.config.set_dtype_policy(policy)


# ------------------------------------------------------------------------- the sweep


@pytest.fixture(scope="session")
def wine95():
    """95 Wine rows: a stratified 80/20 split gives 76 training rows, so batches of 8
    end with a short batch of 4 (the ``Model.fit`` edge case)."""
    return subsample_rows(load_dataset("wine"), 95, seed=0)


@pytest.fixture(scope="session")
def batchnorm_cell(wine95):
    """A trained batch-norm cell (2 h × 2 trials) and its results rows: (spec, result, rows)."""
    from resnet_stability.sweep.records import cell_records
    from resnet_stability.sweep.trainer import train_cell

    spec = make_spec(blocks=("batchnorm",), h_values=(0.2, 1.0), trials=2, depth=2, width=4, epochs=1)
    result = train_cell(wine95, spec, "batchnorm")
    return spec, result, cell_records(result, spec, "batchnorm", "CPU:0 test")


@pytest.fixture(scope="session")
def noisy_cell():
    """A trained Wine cell scored under noise (levels 0, 0.3, 50): (spec, result, noise rows)."""
    from resnet_stability.data import load_dataset
    from resnet_stability.sweep.experiment import resolve_spec
    from resnet_stability.sweep.records import noise_records
    from resnet_stability.sweep.trainer import train_cell

    spec = resolve_spec(
        "wine",
        dict(blocks=("residual",), h_values=(0.1, 0.5), trials=2, depth=2, epochs=10, lr=0.01,
             noise_levels=(0.0, 0.3, 50.0)),
    )
    result = train_cell(load_dataset("wine"), spec, "residual")
    return spec, result, noise_records(result, spec, "residual")


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory):
    """One tiny in-process sweep under umask 027: (out folder, its stdout)."""
    import contextlib
    import io
    import os

    from resnet_stability import sweep

    out = tmp_path_factory.mktemp("tiny") / "out"
    stdout = io.StringIO()
    previous = os.umask(0o027)
    try:
        with contextlib.redirect_stdout(stdout):
            assert sweep.main([*TINY, "--out", str(out)]) == 0
    finally:
        os.umask(previous)
    return out, stdout.getvalue()


@pytest.fixture(scope="module")
def points():
    """Twelve standard-normal 2-D inputs (the analysis tests)."""
    return np.random.default_rng(7).normal(size=(12, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def shrinkage_model():
    """Four shrinkage blocks of width 2, h = 0.3, no stem (the analysis tests)."""
    from resnet_stability.models import build_model

    return build_model(2, 2, "shrinkage", depth=4, width=2, h=0.3, seed=0)


@pytest.fixture(scope="module")
def residual_model():
    """Three residual blocks of width 3, h = 0.5, no stem (the analysis tests)."""
    from resnet_stability.models import build_model

    return build_model(3, 2, "residual", depth=3, width=3, h=0.5, seed=3)


# ----------------------------------------------------------------------------- numpy references


def weights_by_name(layer, member=None) -> dict:
    """{short variable name: float64 value}, e.g. {"kernel1": (w, w) array, ...}; with
    ``member`` m, member m's slice of every weight."""
    values = {variable.name: np.asarray(variable.numpy(), dtype=np.float64) for variable in layer.weights}
    return values if member is None else {name: value[member] for name, value in values.items()}


def relu(z):
    return np.maximum(z, 0.0)


def numpy_field(name: str, w: dict, training: bool = False, epsilon: float = 1e-3):
    """f(y) of the field registered as ``name``, from one member's weights ``w``, with
    ReLU, for a batch y (batch, width):

    - ``two_layer``: K2 σ(K1 y + b1) + b2;
    - ``shrinkage``: −(K1ᵀ σ(K1 y + b1) + b2);
    - ``batchnorm``: BN2(K2 σ(BN1(K1 y))), BN(z) = γ (z − μ)/sqrt(σ² + ε) + β with the
      batch's mean and biased variance in training, the moving statistics otherwise.
    """
    if name == "two_layer":
        return lambda y: relu(y @ w["kernel1"] + w["bias1"]) @ w["kernel2"] + w["bias2"]
    if name == "shrinkage":
        return lambda y: -(relu(y @ w["kernel1"] + w["bias1"]) @ w["kernel1"].T + w["bias2"])
    if name == "batchnorm":
        def bn(z, i):
            if training:
                mean, var = z.mean(axis=0), z.var(axis=0)
            else:
                mean, var = w[f"moving_mean{i}"], w[f"moving_variance{i}"]
            return w[f"gamma{i}"] * (z - mean) / np.sqrt(var + epsilon) + w[f"beta{i}"]

        return lambda y: bn(relu(bn(y @ w["kernel1"], 1)) @ w["kernel2"], 2)
    raise KeyError(f"no numpy reference for field {name!r}")


def numpy_euler(f, y, h):
    """Forward Euler: y + h f(y)."""
    return y + h * f(y)


def numpy_rk4(f, y, h):
    """The classic Runge–Kutta 4 step, written out independently of the package."""
    k1 = f(y)
    k2 = f(y + h / 2 * k1)
    k3 = f(y + h / 2 * k2)
    k4 = f(y + h * k3)
    return y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


#: integrator name -> numpy step(f, y, h)
NUMPY_INTEGRATORS = {"euler": numpy_euler, "rk4": numpy_rk4}


@pytest.fixture(scope="module")
def tx_file(tmp_path_factory):
    """A simulated transaction file of ``TX_ROWS`` rows (Parquet) and its in-memory Dataset
    (the streamed-file tests: ``test_stream.py``, ``test_streaming.py``)."""
    path = simulate_transactions(tmp_path_factory.mktemp("stream") / "tx.parquet", n_rows=TX_ROWS, seed=3)
    return path, load_dataset("bitcoin", path=str(path))

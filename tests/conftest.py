"""Shared fixtures (shared plain helpers are in ``helpers.py``).

The generic battery in ``test_blocks.py`` and ``test_models.py`` runs once per
registered block: ``block_name`` iterates ``sorted(resnet_stability.layers.BLOCKS)`` at
collection time, so a block registered later is covered without editing any test. The
sweep's tests share a few trained cells and one tiny sweep, each made once per session.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import TINY, make_spec

from resnet_stability.data import load_dataset, subsample_rows
from resnet_stability.layers import BLOCKS
from resnet_stability.sweep.devices import skip_graph_rewrites

# The tests run the sweep's CPU configuration (devices.select_device), so the
# member = standalone equivalence tests cover the path the sweep takes.
skip_graph_rewrites()

BLOCK_NAMES = sorted(BLOCKS)


@pytest.fixture(params=BLOCK_NAMES)
def block_name(request) -> str:
    """Every registered block name, one test per block."""
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

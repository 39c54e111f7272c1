"""The layers are backend-neutral (``keras.ops`` only): every block computes the same
outputs, loss and SGD step under JAX and PyTorch as under TensorFlow.

Each backend runs ``backend_probe.py`` in its own process (Keras fixes its backend at
import). JAX is installed by the test command (``.[backends]``); PyTorch is checked
where it is installed (its PyPI wheel for Linux is a multi-GB CUDA build) and skipped
otherwise.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import backend_env

PROBE = Path(__file__).with_name("backend_probe.py")


def _probe(backend: str, out: Path) -> dict[str, np.ndarray]:
    done = subprocess.run([sys.executable, str(PROBE), str(out)], env=backend_env(backend), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"backend_probe.py under {backend} failed:\n{done.stderr[-3000:]}"
    with np.load(out) as numbers:
        return dict(numbers)


@pytest.fixture(scope="module")
def tensorflow_numbers(tmp_path_factory):
    return _probe("tensorflow", tmp_path_factory.mktemp("tensorflow") / "numbers.npz")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_block_computes_the_same_under_another_backend(backend, request, tmp_path):
    from resnet_stability.layers import BLOCKS

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install '.[backends]' installs JAX)")
    tensorflow_numbers = request.getfixturevalue("tensorflow_numbers")
    numbers = _probe(backend, tmp_path / "numbers.npz")
    assert sorted(numbers) == sorted(tensorflow_numbers)
    updates = {key: value for key, value in tensorflow_numbers.items() if key.endswith("/largest_update")}
    assert len(updates) == 2 * len(BLOCKS) and min(updates.values()) > 1e-3  # standalone and members: real steps
    for key, expected in tensorflow_numbers.items():
        np.testing.assert_allclose(numbers[key], expected, rtol=1e-4, atol=1e-5, err_msg=f"{key} under {backend}")

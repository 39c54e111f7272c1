"""The sweep's engine under Keras's JAX backend (``sweep/engines.py``, ``sweep/train_step_jax.py``).

The key test: a cell trained under JAX (its whole step one ``jax.jit`` program, one
members model) has the same members as the same cell trained under TensorFlow (two
shards, ``train_step.MembersTrainStep``): weights, losses, accuracies (exactly),
divergence (which members, which epoch, the diverged networks' scores), the Prop. 1
statistic, noise scores and multi-level training, for every registered block and a few
special cases (``engine_probe.py``). Both train in float64 from the same numpy-drawn
initial weights. ``test_trainer.py`` shows TensorFlow's members equal standalone
networks; with this, so do JAX's. JAX runs in its own process (Keras fixes its backend
at import); it is installed by the test command (``.[backends]``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from engine_probe import cases, cell_numbers, compare, split
from helpers import TINY, backend_env

from resnet_stability.sweep.engines import ENGINES, padded_rows

PROBE = Path(__file__).with_name("engine_probe.py")

needs_jax = pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="JAX is not installed (pip install '.[backends]')"
)


@pytest.fixture(scope="module")
def jax_numbers(tmp_path_factory):
    out = tmp_path_factory.mktemp("jax") / "numbers.npz"
    done = subprocess.run([sys.executable, str(PROBE), str(out)], env=backend_env("jax"), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, f"engine_probe.py under JAX failed:\n{done.stderr[-3000:]}"
    with np.load(out) as numbers:
        return dict(numbers)


@needs_jax
@pytest.mark.parametrize("case", list(cases()))
def test_a_cell_has_the_same_members_under_jax_as_under_tensorflow(case, jax_numbers, float64):
    expected = cell_numbers(case)  # TensorFlow, in this process
    mine = split(jax_numbers)[case]
    compare(case, mine, expected)
    if case in ("diverging", "overflow-float32"):  # the cases do exercise divergence
        assert expected["diverged"].any()
    if case == "diverging":
        assert not expected["diverged"].all()
    else:  # JAX: one members model; TensorFlow: two shards on a CPU
        assert int(mine["shards"]) == 1 and int(expected["shards"]) == 2


@needs_jax
def test_the_sweep_runs_under_jax_without_tensorflow(tmp_path):
    """The GPU machines this project may be lent have JAX but no TensorFlow: the sweep's
    whole path (devices, engine, statistic, outputs) must not import it under JAX. And its
    products run in float32 (no TF32 passes on a GPU)."""
    out = tmp_path / "sweep"
    code = (
        "import runpy, sys; sys.argv = ['resnet_stability.sweep'] + sys.argv[1:]\n"
        "try:\n    runpy.run_module('resnet_stability.sweep', run_name='__main__')\n"
        "except SystemExit as done:\n    assert not done.code, done.code\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
        "import jax; assert jax.config.jax_default_matmul_precision == 'highest', 'float32 products not in float32'\n"
        "import os; assert '--xla_gpu_deterministic_ops=true' in os.environ['XLA_FLAGS'], os.environ.get('XLA_FLAGS')\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *TINY, "--out", str(out)], env=backend_env("jax"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 6 and results["device"].str.endswith("jax)").all()
    assert results["test_accuracy"].between(0, 1).all()
    markers = [json.loads(m.read_text()) for m in (out / "cells").glob("*.done.json")]
    assert [(m["backend"], m["device"]) for m in markers] == [("jax", "cpu")] * 2  # what the cells trained on


@needs_jax
@pytest.mark.parametrize("before, started, after, took", [
    (None, False, "--xla_gpu_deterministic_ops=true", True),
    ("--xla_dump_to=/tmp/x", False, "--xla_dump_to=/tmp/x --xla_gpu_deterministic_ops=true", True),
    ("--xla_gpu_deterministic_ops=false", False, "--xla_gpu_deterministic_ops=false", True),  # the user's choice
    (None, True, None, False),  # too late: XLA has read XLA_FLAGS already
])
def test_xla_on_a_gpu_is_made_deterministic_before_jax_starts(monkeypatch, before, started, after, took):
    from jax._src import xla_bridge

    from resnet_stability.sweep.devices import deterministic_xla_gpu

    if before is None:
        monkeypatch.delenv("XLA_FLAGS", raising=False)
    else:
        monkeypatch.setenv("XLA_FLAGS", before)
    monkeypatch.setattr(xla_bridge, "backends_are_initialized", lambda: started)
    assert deterministic_xla_gpu() is took
    assert os.environ.get("XLA_FLAGS") == after


@needs_jax
def test_a_gpu_chosen_after_jax_started_warns_that_runs_may_differ(monkeypatch):
    import jax
    from jax._src import xla_bridge

    from resnet_stability.sweep.devices import select_jax_device

    class FakeGpu:
        device_kind = "NVIDIA H200"

    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(xla_bridge, "backends_are_initialized", lambda: True)
    monkeypatch.setattr(jax, "devices", lambda platform=None: [FakeGpu()])
    with pytest.warns(UserWarning, match="xla_gpu_deterministic_ops=true.*may differ"):
        info = select_jax_device("gpu")
    assert (info.kind, info.description) == ("gpu", "GPU:0 NVIDIA H200 (jax)")


PRECOMPILE_CHECK = """
import sys; sys.path.insert(0, sys.argv[1])
import numpy as np
from helpers import make_spec
from resnet_stability.data import load_dataset, subsample_rows
from resnet_stability.sweep.train_step_jax import JaxMembersTrainStep
from resnet_stability.sweep.trainer import train_cell

steps, init = [], JaxMembersTrainStep.__init__
def recording(self, *args, **kwargs):
    init(self, *args, **kwargs)
    steps.append(self)
JaxMembersTrainStep.__init__ = recording
data = subsample_rows(load_dataset("wine"), 95, seed=0)
ahead = train_cell(data, make_spec(), "residual")  # 76 training rows, batch 8, 4 members
assert sorted(steps[0]._compiled) == [(4, 4), (8, 4)], sorted(steps[0]._compiled)
assert steps[0]._step._cache_size() == 0, "a batch ran jax.jit's own program, not the precompiled one"
JaxMembersTrainStep.precompile = lambda self, shapes: None  # jax.jit compiles at each shape's first batch
lazily = train_cell(data, make_spec(), "residual")
assert steps[1]._step._cache_size() == 2
for a, b in zip(ahead.model.variables, lazily.model.variables):
    assert np.array_equal(np.asarray(a.value), np.asarray(b.value)), a.path
assert np.array_equal(ahead.test_accuracy, lazily.test_accuracy)
print("ok")
"""


@needs_jax
def test_the_jax_step_is_compiled_for_both_batch_shapes_before_training_with_the_same_numbers():
    done = subprocess.run([sys.executable, "-c", PRECOMPILE_CHECK, str(Path(__file__).parent)],
                          env=backend_env("jax"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_every_keras_backend_with_an_engine_is_registered():
    assert sorted(ENGINES) == ["jax", "tensorflow"]


def test_jax_predictions_are_padded_to_few_shapes():
    # next power of two, never fewer rows than asked, at most 2048 unless asked for more
    assert [padded_rows(n) for n in (1, 2, 3, 36, 64, 65, 1500, 2048, 3000)] == [1, 2, 4, 64, 64, 128, 2048, 2048, 3000]


def test_the_sweep_refuses_a_backend_without_an_engine(monkeypatch):
    import keras

    from resnet_stability.sweep.engines import current_engine

    monkeypatch.setattr(keras.backend, "backend", lambda: "torch")
    with pytest.raises(ValueError, match="'torch'.*allowed: tensorflow, jax"):
        current_engine()

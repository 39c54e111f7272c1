"""Helpers shared by several test files (fixtures shared the same way are in ``conftest.py``).

Plain functions and constants, imported as ``from helpers import ...`` (pytest puts
``tests/`` on ``sys.path``): a small Wine spec, the sweep's command line as a fresh
process, what a finished sweep folder holds, and hand-made results tables whose
answers the tests work out by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from resnet_stability.sweep.experiment import ExperimentSpec

REPO = Path(__file__).resolve().parents[1]
#: A tiny sweep: 2 cells (residual, shrinkage) of 3 h × 1 trial, depth 2, 1 epoch.
TINY = ("--dataset", "wine", "--quick", "--blocks", "residual,shrinkage", "--trials", "1", "--epochs", "1",
        "--depth", "2")


def make_spec(**overrides) -> ExperimentSpec:
    """A small Wine cell configuration: h 0.1 and 0.7 × 2 trials, depth 2, width 5, 2 epochs
    of batch 8 (with the 95 rows of ``wine95``, 76 training rows: the last batch is short)."""
    values = dict(
        dataset="wine",
        blocks=("residual",),
        h_values=(0.1, 0.7),
        trials=2,
        depth=2,
        width=5,
        epochs=2,
        batch_size=8,
        lr=1e-2,
        optimizer="adam",
        test_size=0.2,
        seed=0,
    )
    values.update(overrides)
    return ExperimentSpec(**values)


# ------------------------------------------------------------- the sweep's command line


def sweep_argv(*args: str) -> list[str]:
    """``python -m resnet_stability.sweep ARGS`` with this interpreter."""
    return [sys.executable, "-m", "resnet_stability.sweep", *args]


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def backend_env(backend: str) -> dict:
    """:func:`cli_env` for a process under Keras backend ``backend``, on the CPU only and
    without TensorFlow's C++ start-up lines."""
    return dict(cli_env(), KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")


def popen(*args: str, **kwargs) -> subprocess.Popen:
    """The sweep command line in a fresh process (from the repository root)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(sweep_argv(*args), cwd=REPO, env=cli_env(), text=True, **kwargs)


def finished_cells(out: Path) -> list[Path]:
    """Finished cell files: visible ``*.csv`` files in OUT/cells with their completion
    marker ``*.done.json`` beside them (the store writes it last)."""
    folder = out / "cells"
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.suffix == ".csv" and not p.name.startswith(".") and p.with_suffix(".done.json").is_file()
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def one_error_line(capfd, argv) -> str:
    """Run the sweep in-process on ``argv``: it must exit 2 with exactly one line on stderr."""
    from resnet_stability import sweep

    assert sweep.main(argv) == 2
    lines = error_lines(capfd.readouterr().err)
    assert len(lines) == 1, lines
    return lines[0]


def visible_files(folder):
    return sorted(os.listdir(folder))


# ------------------------------------------------------------------- hand-made tables


def stability_hand_table() -> pd.DataFrame:
    """Wine, residual and shrinkage × h 0.1, 0.5, 1.0 × 3 trials whose test accuracy falls
    as ``euler_max`` grows (1 − 0.2·euler_max), one diverged member (``euler_max`` inf,
    accuracy 0) and one lm row (no statistic: NaN)."""
    rows = []
    for block, offset in (("residual", 0.0), ("shrinkage", 0.05)):
        for k, h in enumerate((0.1, 0.5, 1.0)):
            for trial in range(3):
                stat = 1.0 + h + 0.1 * trial + offset
                rows.append(dict(dataset="wine", block=block, h=h, trial=trial, diverged=False, euler_max=stat,
                                 test_accuracy=1.0 - 0.2 * stat))
    rows.append(dict(dataset="wine", block="residual", h=1.0, trial=3, diverged=True, euler_max=np.inf,
                     test_accuracy=0.0))
    rows.append(dict(dataset="wine", block="lm", h=1.0, trial=0, diverged=False, euler_max=np.nan,
                     test_accuracy=0.5))
    return pd.DataFrame(rows)


def hand_transfer_tables():
    """:func:`stability_hand_table` without lm, its noise scores (gaussian at 0, 0.5 and
    1.0; the loss at 1.0 is 0.1·euler_max, 0 where infinite, and at 0.5 half that) and its
    accuracy on two later windows (window 1: the test accuracy; window 2: 0.5 for all)."""
    results = stability_hand_table()
    results = results[results["block"] != "lm"]
    noise, windows = [], []
    for row in results.itertuples():
        lost = 0.0 if np.isinf(row.euler_max) else 0.1 * row.euler_max  # more amplification, more lost
        key = dict(dataset=row.dataset, block=row.block, h=row.h, trial=row.trial)
        noise += [dict(key, noise="gaussian", level=level, accuracy=0.9 - share * lost)
                  for level, share in ((0.0, 0.0), (0.5, 0.5), (1.0, 1.0))]
        for window in (1, 2):
            windows.append(dict(key, window=window, accuracy=row.test_accuracy if window == 1 else 0.5))
    return results, pd.DataFrame(noise), pd.DataFrame(windows)


def learned_h_hand_table() -> pd.DataFrame:
    """2 blocks × h 0.2, 0.6 × 2 trials, depth 3: learned h = h + 0.1 (trial) + 0.01 (index)."""
    rows = []
    for block in ("residual", "shrinkage"):
        for h in (0.2, 0.6):
            for trial in range(2):
                steps = [h + 0.1 * trial + 0.01 * index for index in range(3)]
                rows.append(dict(dataset="wine", block=block, h=h, trial=trial, learned_h=json.dumps(steps)))
    rows.append(dict(dataset="wine", block="lm", h=0.2, trial=0, learned_h=float("nan")))  # a fixed-h row
    return pd.DataFrame(rows)


def reference_batches(n, batch, buffer, seed):
    """The documented batch order, written out on row positions 0..n-1 (file order)."""
    rng = np.random.default_rng(seed)
    pending, out, position = np.empty(0, np.int64), [], 0
    while position < n:
        take = min(buffer - len(pending), n - position)
        pending = np.concatenate([pending, np.arange(position, position + take)])
        position += take
        if len(pending) == buffer:
            pending = pending[rng.permutation(buffer)]
            used = buffer // batch * batch
            out += [pending[s : s + batch] for s in range(0, used, batch)]
            pending = pending[used:]
    pending = pending[rng.permutation(len(pending))]
    return out + [pending[s : s + batch] for s in range(0, len(pending), batch)]


TX_ROWS = 1500  # rows of conftest's simulated transaction file (fixture tx_file)

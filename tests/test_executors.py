"""Executors decide where cells run, never what they compute."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from resnet_stability.sweep.cli import main
from resnet_stability.sweep.executors import SHARED_GPU_ENVIRONMENT, default_workers, run_cells, share_the_gpu

TIMING = ["seconds", "cell_seconds", "stability_seconds"]


def _square(x, offset=0):
    return x * x + offset


def test_inprocess_executor_runs_every_cell_in_order():
    assert list(run_cells([(1,), (2,), (3,)], _square, offset=1)) == [((1,), 2), ((2,), 5), ((3,), 10)]


def test_unknown_executor_is_rejected():
    with pytest.raises(ValueError, match="unknown executor 'dask'; allowed: inprocess, processes, ray"):
        list(run_cells([(1,)], _square, "dask"))


def _fail_on_two(x):
    if x == 2:
        raise ValueError("cell 2 failed")
    return x


def _unset(monkeypatch, name):
    """Unset ``name`` now and after the test, whatever the test sets it to meanwhile."""
    monkeypatch.setenv(name, "")
    monkeypatch.delenv(name)


def test_processes_run_every_cell_in_its_own_process_and_keep_the_others_when_one_fails(monkeypatch):
    for name in SHARED_GPU_ENVIRONMENT:
        _unset(monkeypatch, name)
    results = dict(run_cells([(1,), (2,), (3,)], _square, "processes", workers=2, offset=1))
    assert results == {(1,): 2, (2,): 5, (3,): 10}
    assert all(os.environ[name] == value for name, value in SHARED_GPU_ENVIRONMENT.items())  # the GPU shared
    finished = []
    with pytest.raises(ValueError, match="cell 2 failed"):
        for cell, result in run_cells([(1,), (2,), (3,)], _fail_on_two, "processes", workers=1):
            finished.append(result)
    assert sorted(finished) == [1, 3]  # yielded (and so written) before the error is raised


def _sleep(seconds):
    time.sleep(seconds)
    return seconds


def test_a_stopped_sweep_stops_its_cells_processes(monkeypatch):
    for name in SHARED_GPU_ENVIRONMENT:
        _unset(monkeypatch, name)
    started = time.perf_counter()
    cells = run_cells([(0,), (60,)], _sleep, "processes", workers=2)
    assert next(cells) == ((0,), 0)
    cells.close()  # as Ctrl-C or a time limit would stop the sweep here: the 60 s cell is not waited for
    assert time.perf_counter() - started < 30


@pytest.mark.parametrize("kind, cores, workers", [("gpu", 16, 16), ("cpu", 16, 8), ("cpu", 2, 1), ("cpu", 1, 1)])
def test_by_default_cells_in_processes_use_each_core_once(monkeypatch, kind, cores, workers):
    # under TensorFlow a CPU cell is two shards, one core each; a GPU cell one process
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert default_workers(kind) == workers


def test_a_user_setting_of_the_gpu_sharing_stands(monkeypatch):
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "true")
    _unset(monkeypatch, "TF_FORCE_GPU_ALLOW_GROWTH")
    share_the_gpu()
    assert os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true" and os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"


def _quick_sweep(out, *extra):
    args = ["--dataset", "wine", "--quick", "--blocks", "residual,shrinkage", "--noise", "0.5", "--out", str(out)]
    assert main(args + list(extra)) == 0
    return pd.read_csv(out / "results.csv"), pd.read_csv(out / "noise_robustness.csv")


def test_cells_in_processes_give_the_same_results_as_in_process(tmp_path, monkeypatch):
    for name in SHARED_GPU_ENVIRONMENT:  # (the sweep sets them for its processes)
        monkeypatch.setenv(name, os.environ.get(name, SHARED_GPU_ENVIRONMENT[name]))
    apart_results, apart_noise = _quick_sweep(tmp_path / "processes", "--executor", "processes", "--workers", "2")
    local_results, local_noise = _quick_sweep(tmp_path / "local")
    pd.testing.assert_frame_equal(apart_results.drop(columns=TIMING), local_results.drop(columns=TIMING))
    pd.testing.assert_frame_equal(apart_noise, local_noise)


def test_blocks_trained_together_give_the_same_results_as_alone(tmp_path, capsys):
    together_results, together_noise = _quick_sweep(tmp_path / "together", "--blocks-together")
    assert "wine × residual+shrinkage" in capsys.readouterr().out  # one progress bar for both cells
    alone_results, alone_noise = _quick_sweep(tmp_path / "alone")
    pd.testing.assert_frame_equal(together_results.drop(columns=TIMING), alone_results.drop(columns=TIMING))
    pd.testing.assert_frame_equal(together_noise, alone_noise)


def test_ray_cells_give_the_same_results_as_in_process(tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install '.[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote_results, remote_noise = _quick_sweep(tmp_path / "ray", "--executor", "ray")
    finally:
        ray.shutdown()
    local_results, local_noise = _quick_sweep(tmp_path / "local")
    pd.testing.assert_frame_equal(remote_results.drop(columns=TIMING), local_results.drop(columns=TIMING))
    pd.testing.assert_frame_equal(remote_noise, local_noise)

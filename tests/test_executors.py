"""Executors decide where cells run, never what they compute."""

from __future__ import annotations

import pandas as pd
import pytest

from resnet_stability.sweep.cli import main
from resnet_stability.sweep.executors import run_cells

TIMING = ["seconds", "cell_seconds", "stability_seconds"]


def _square(x, offset=0):
    return x * x + offset


def test_inprocess_executor_runs_every_cell_in_order():
    assert list(run_cells([(1,), (2,), (3,)], _square, offset=1)) == [((1,), 2), ((2,), 5), ((3,), 10)]


def test_unknown_executor_is_rejected():
    with pytest.raises(ValueError, match="unknown executor 'dask'; allowed: inprocess, ray"):
        list(run_cells([(1,)], _square, "dask"))


def _quick_sweep(out, *extra):
    args = ["--dataset", "wine", "--quick", "--blocks", "residual,shrinkage", "--noise", "0.5", "--out", str(out)]
    assert main(args + list(extra)) == 0
    return pd.read_csv(out / "results.csv"), pd.read_csv(out / "noise_robustness.csv")


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

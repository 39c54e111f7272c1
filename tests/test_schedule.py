"""Tests for running a sweep's unfinished cells (``resnet_stability.sweep.schedule``):
resume after a kill, finished cells skipped, damaged cells recomputed with one warning,
a cell another sweep is computing waited for, and each cell's header just before its
training.

Where the process itself matters (a SIGKILL, a second sweep holding a lock) the CLI
runs as ``sys.executable -m resnet_stability.sweep``. Numbers of two runs of the same
command are compared exactly (accuracies, flags, seeds) or within atol 1e-6 (losses).
"""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from helpers import TINY, error_lines, finished_cells, popen

from resnet_stability import sweep
from resnet_stability.sweep.experiment import resolve_spec
from resnet_stability.sweep.store import ResultsStore

TIMING_COLUMNS = ["seconds", "cell_seconds", "stability_seconds"]
LOSS_ATOL = 1e-6
RESUME_ARGS = ("--dataset", "wine", "--quick", "--blocks", "residual,shrinkage,batchnorm", "--epochs", "20")


def test_resume_after_kill_gives_the_same_table(tmp_path, capsys):
    out = tmp_path / "killed"
    victim = popen(*RESUME_ARGS, "--out", str(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while not finished_cells(out):
            assert victim.poll() is None, f"the sweep ended (rc {victim.returncode}) before a cell was written"
            assert time.monotonic() < deadline, "no cell file appeared within 120 s"
            time.sleep(0.01)
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    assert victim.returncode == -signal.SIGKILL

    cells = finished_cells(out)
    assert 1 <= len(cells) < 3
    markers = [path.with_suffix(".done.json") for path in cells]
    for path in (out / "cells").iterdir():
        # whatever the kill left behind is a whole cell (table and marker), a hidden temporary file or a lock
        hidden = path.name.startswith(".") and path.name.endswith((".tmp", ".lock"))
        assert path in cells or path in markers or hidden, path.name
    for path in cells:
        assert len(pd.read_csv(path)) == 6  # 3 h × 2 trials, complete
    first = cells[0]
    first_bytes = first.read_bytes()
    assert not (out / "results.csv").exists()

    # resume in a fresh process; meanwhile, the uninterrupted run in this one
    resumed = popen(*RESUME_ARGS, "--out", str(out))
    try:
        reference_out = tmp_path / "reference"
        assert sweep.main([*RESUME_ARGS, "--out", str(reference_out)]) == 0
        capsys.readouterr()
        stdout, stderr = resumed.communicate(timeout=240)
    finally:
        if resumed.poll() is None:
            resumed.kill()
            resumed.wait()
    assert resumed.returncode == 0, stderr
    # a successful run keeps stderr clean (TensorFlow's start-up and retracing notices too)
    assert error_lines(stderr) == [], stderr
    assert first.read_bytes() == first_bytes, "a finished cell was recomputed"
    assert any("already done" in line and first.name in line for line in stdout.splitlines()), stdout
    assert len(finished_cells(out)) == 3

    table = pd.read_csv(out / "results.csv")
    assert len(table) == 3 * 6
    assert not table.duplicated(["block", "h", "trial"]).any()
    assert list(dict.fromkeys(table["block"])) == ["residual", "shrinkage", "batchnorm"]

    expected = pd.read_csv(reference_out / "results.csv")
    keys = ["block", "h", "trial"]
    table = table.sort_values(keys, ignore_index=True)
    expected = expected.sort_values(keys, ignore_index=True)
    assert list(table.columns) == list(expected.columns)
    exact = [c for c in table.columns if c not in TIMING_COLUMNS + ["final_loss"]]
    pd.testing.assert_frame_equal(table[exact], expected[exact], check_exact=True)
    np.testing.assert_allclose(table["final_loss"], expected["final_loss"], atol=LOSS_ATOL, rtol=0)


def test_each_cell_header_comes_just_before_its_training_and_bars_name_the_cell(tiny_sweep):
    _, stdout = tiny_sweep
    lines = stdout.splitlines()
    header = [i for i, line in enumerate(lines) if line.startswith("[1/2] wine × residual")]
    second = [i for i, line in enumerate(lines) if line.startswith("[2/2] wine × shrinkage")]
    bars = {name: [i for i, line in enumerate(lines) if "epoch 1/1" in line and f"wine × {name}" in line]
            for name in ("residual", "shrinkage")}
    assert len(header) == 1 and len(second) == 1, stdout
    assert len(bars["residual"]) == 1 and len(bars["shrinkage"]) == 1, stdout
    assert header[0] < bars["residual"][0] < second[0] < bars["shrinkage"][0], stdout


def _truncate_cell(path):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))  # 2 of 3 rows, a whole last line gone


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_rerun_recomputes_a_damaged_cell_with_one_warning(tiny_sweep, tmp_path, damage, capfd):
    import shutil

    source, _ = tiny_sweep
    out = tmp_path / "copy"
    shutil.copytree(source, out)
    reference = pd.read_csv(source / "results.csv")
    (cell,) = [p for p in finished_cells(out) if p.name.startswith("wine__residual__")]
    (other,) = [p for p in finished_cells(out) if p.name.startswith("wine__shrinkage__")]
    other_bytes = other.read_bytes()
    if damage == "truncated":
        _truncate_cell(cell)
    else:
        cell.write_text("")
    capfd.readouterr()
    assert sweep.main([*TINY, "--out", str(out)]) == 0
    captured = capfd.readouterr()
    warnings = error_lines(captured.err)
    assert len(warnings) == 1, captured.err
    assert cell.name in warnings[0] and "recomput" in warnings[0] and "SHA-256" in warnings[0], warnings[0]
    assert other.read_bytes() == other_bytes and "already done" in captured.out
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 2 * 3
    keys = ["block", "h", "trial"]
    pd.testing.assert_frame_equal(
        table.sort_values(keys, ignore_index=True)[keys + ["test_accuracy", "seed"]],
        reference.sort_values(keys, ignore_index=True)[keys + ["test_accuracy", "seed"]],
    )
    assert "h = 1:" in (out / "summary.txt").read_text()  # the largest h is 1 again, not 0.5


@pytest.mark.parametrize("key, other, named", [("backend", "jax", "'jax'"), ("device", "gpu", "on a GPU")])
def test_a_cell_trained_under_another_backend_or_device_is_kept_with_one_warning(tiny_sweep, tmp_path, capfd, key,
                                                                                   other, named):
    import json
    import shutil

    source, _ = tiny_sweep
    out = tmp_path / "copy"
    shutil.copytree(source, out)
    markers = sorted((out / "cells").glob("*.done.json"))
    assert [(json.loads(m.read_text())["backend"], json.loads(m.read_text())["device"]) for m in markers] == [
        ("tensorflow", "cpu")] * 2  # where this process trained them
    (changed,) = [m for m in markers if m.name.startswith("wine__residual__")]
    changed.write_text(json.dumps({**json.loads(changed.read_text()), key: other}))  # as trained elsewhere
    cells = {p: p.read_bytes() for p in finished_cells(out)}
    capfd.readouterr()
    assert sweep.main([*TINY, "--out", str(out)]) == 0
    captured = capfd.readouterr()
    (warning,) = error_lines(captured.err)
    assert changed.name.removesuffix(".done.json") in warning and named in warning and "kept" in warning, warning
    assert "'tensorflow' on a CPU" in warning, warning  # this sweep's
    assert captured.out.count("already done") == 2 and {p: p.read_bytes() for p in finished_cells(out)} == cells


def test_a_marker_that_does_not_name_the_device_gives_no_device_warning(tiny_sweep, tmp_path, capfd):
    import json
    import shutil

    source, _ = tiny_sweep
    out = tmp_path / "copy"
    shutil.copytree(source, out)
    for marker in (out / "cells").glob("*.done.json"):  # as written before the device was recorded
        fields = json.loads(marker.read_text())
        del fields["device"]
        marker.write_text(json.dumps(fields))
    capfd.readouterr()
    assert sweep.main([*TINY, "--out", str(out)]) == 0
    assert error_lines(capfd.readouterr().err) == []


def test_a_cell_another_sweep_is_computing_is_waited_for_then_skipped(tmp_path):
    out = tmp_path / "shared"
    args = ("--dataset", "wine", "--quick", "--blocks", "residual", "--trials", "1", "--epochs", "1", "--depth", "2")
    spec = resolve_spec("wine", dict(blocks=("residual",), trials=1, epochs=1, depth=2), quick=True)
    store = ResultsStore(out)
    frame = pd.DataFrame(dict(dataset="wine", block="residual", h=[0.1, 0.5, 1.0], trial=0, test_accuracy=0.123,
                              train_accuracy=0.5, diverged=False))
    with store.cell_lock(spec, "residual"):
        other = popen(*args, "--out", str(out))
        try:
            waiting = other.stdout.readline()
            while waiting and "another sweep" not in waiting:
                waiting = other.stdout.readline()
            assert "another sweep" in waiting and "wine × residual" in waiting, waiting
            store.write_cell(spec, "residual", frame)  # what the other sweep would have written
        except BaseException:
            other.kill()
            raise
    stdout, stderr = other.communicate(timeout=120)
    assert other.returncode == 0, stderr
    assert "skipped" in stdout
    table = pd.read_csv(out / "results.csv")
    assert list(table["test_accuracy"]) == [0.123] * 3  # not trained again


def test_blocks_together_group_a_specs_pending_cells_and_leave_the_others_alone():
    from resnet_stability.sweep.schedule import _units

    plain = resolve_spec("wine", {"blocks": ("residual", "shrinkage")})
    levelled = resolve_spec("abalone", {"blocks": ("residual", "shrinkage"), "levels": 2})  # cannot share a step
    pending = [(f"[{i}]", spec, block) for i, (spec, block) in enumerate(
        [(plain, "residual"), (plain, "shrinkage"), (levelled, "residual"), (levelled, "shrinkage")])]
    blocks = [[block for _, _, block in unit] for unit in _units(pending, together=True)]
    assert blocks == [["residual", "shrinkage"], ["residual"], ["shrinkage"]]
    assert [len(unit) for unit in _units(pending, together=False)] == [1, 1, 1, 1]

"""Tests for ``python -m resnet_stability.sweep``: end to end, resume after a kill, flags.

Where the process itself matters (a SIGKILL, what reaches file descriptor 2 from a
fresh interpreter, exit codes) the CLI runs as ``sys.executable -m
resnet_stability.sweep``; elsewhere ``sweep.main([...])`` runs in-process, which saves
the ~5 s TensorFlow import per call. Numbers of two runs of the same command are
compared exactly (accuracies, flags, seeds) or within atol 1e-6 (losses).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from resnet_stability import sweep
from resnet_stability.layers import BLOCKS

REPO = Path(__file__).resolve().parents[1]
QUICK_BLOCKS = ("residual", "batchnorm", "shrinkage")  # the paper's blocks, --quick's default
RESULT_COLUMNS = {
    "dataset", "block", "h", "trial", "test_accuracy", "train_accuracy", "final_loss", "diverged",
    "epochs", "seconds", "seed", "depth", "width", "batch_size", "lr", "optimizer", "test_size", "device",
}
TIMING_COLUMNS = ["seconds", "cell_seconds"]
LOSS_ATOL = 1e-6


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "resnet_stability.sweep", *args]


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def popen(*args: str, **kwargs) -> subprocess.Popen:
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.Popen(cli(*args), cwd=REPO, env=cli_env(), text=True, **kwargs)


def finished_cells(out: Path) -> list[Path]:
    """Cell files as the store sees them: visible ``*.csv`` files in OUT/cells."""
    folder = out / "cells"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix == ".csv" and not p.name.startswith("."))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# ------------------------------------------------------------------------ end to end


def test_quick_sweep_end_to_end(tmp_path, capsys):
    out = tmp_path / "wine-quick"
    assert sweep.main(["--dataset", "wine", "--quick", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert f"writing to {out.resolve()}" in stdout

    table = pd.read_csv(out / "results.csv")
    h_values, trials = (0.1, 0.5, 1.0), 2  # the --quick grid
    assert len(table) == len(QUICK_BLOCKS) * len(h_values) * trials
    assert RESULT_COLUMNS <= set(table.columns), f"missing {sorted(RESULT_COLUMNS - set(table.columns))}"
    assert not table.duplicated(["block", "h", "trial"]).any()
    assert set(table["block"]) == set(QUICK_BLOCKS)
    assert sorted(set(table["h"])) == list(h_values) and sorted(set(table["trial"])) == [0, 1]
    assert table["test_accuracy"].between(0, 1).all()
    assert (table["dataset"] == "wine").all() and (table["epochs"] == 2).all() and (table["depth"] == 3).all()

    png, pdf = out / "accuracy_vs_h.png", out / "accuracy_vs_h.pdf"
    assert png.stat().st_size > 1000 and png.read_bytes().startswith(b"\x89PNG")
    assert pdf.stat().st_size > 1000 and pdf.read_bytes().startswith(b"%PDF")

    summary = (out / "summary.txt").read_text()
    for block in QUICK_BLOCKS:
        assert block in summary
    assert "best h" in summary

    spec = json.loads((out / "spec.json").read_text())
    assert spec["device"] and "CPU" in spec["device"]
    assert set(table["device"]) == {spec["device"]}
    assert [e["dataset"] for e in spec["experiments"]] == ["wine"]
    assert len(finished_cells(out)) == len(QUICK_BLOCKS)


# -------------------------------------------------------------------- resume after kill

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
    for path in (out / "cells").iterdir():
        # whatever the kill left behind is a whole cell or a hidden temporary file
        assert path in cells or (path.name.startswith(".") and path.name.endswith(".tmp")), path.name
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


# --------------------------------------------------------------------------- flags

HELP_FLAGS = (
    "--dataset", "--blocks", "--h", "--trials", "--depth", "--width", "--epochs", "--batch-size", "--lr",
    "--optimizer", "--test-size", "--seed", "--out", "--quick", "--device",
)


def test_help_lists_every_flag_with_help_text(capsys):
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    actions = sweep.build_parser()._option_string_actions
    for flag in HELP_FLAGS:
        assert flag in text.split(), f"{flag} missing from --help"
        help_text = actions[flag].help
        assert help_text and len(help_text.split()) >= 2, f"{flag} has no help text"
        first_words = " ".join(help_text.split()[:2])
        assert first_words in " ".join(text.split()), f"help text of {flag} not shown"


def test_h_grid_range_and_list():
    assert sweep.parse_h_grid("0.1:1.0:0.1") == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert sweep.parse_h_grid("0.1,0.5,1") == (0.1, 0.5, 1.0)
    assert sweep.parse_h_grid("0.25:1:0.25") == (0.25, 0.5, 0.75, 1.0)


BAD_ARGS = [
    (["--dataset", "wine", "--h", "0:1"], "'0:1'"),
    (["--dataset", "wine", "--h", "-1"], "'-1'"),
    (["--dataset", "wine", "--trials", "0"], "'0'"),
    (["--dataset", "wine", "--blocks", "nope"], "nope"),
    (["--dataset", "nope"], "nope"),
    (["--dataset", "wine", "--optimizer", "nope"], "'nope'"),
    (["--dataset", "wine", "--test-size", "2"], "'2'"),
    (["--dataset", "wine", "--lr", "-1"], "'-1'"),
]


@pytest.mark.parametrize("argv, bad", BAD_ARGS, ids=[" ".join(a[-2:]) for a, _ in BAD_ARGS])
def test_bad_value_exits_2_with_one_line(argv, bad, capfd, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        sweep.main([*argv, "--out", str(tmp_path / "never")])
    assert exit_info.value.code == 2
    captured = capfd.readouterr()
    lines = error_lines(captured.err)
    assert len(lines) == 1, captured.err
    assert bad in lines[0] and argv[-2] in lines[0], lines[0]
    assert captured.out == ""
    assert not (tmp_path / "never").exists()


def test_one_error_line_from_a_fresh_process(tmp_path):
    """From a fresh interpreter (TensorFlow's import and device-discovery chatter on fd 2
    included): ``--device gpu`` on a machine without a GPU exits 2 with one line, and
    writes nothing. On a machine with a GPU, a bad ``--h`` is checked instead."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        args, needles = ("--dataset", "wine", "--h", "0:1"), ["--h", "'0:1'"]
    else:
        args, needles = ("--dataset", "wine", "--quick", "--device", "gpu", "--out", str(tmp_path / "gpu")), [
            "--device gpu",
            "GPU",
        ]
    process = popen(*args)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, (stdout, stderr)
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "gpu").exists(), "nothing should be written when the device is missing"


def show_config(capsys, *args, out=None):
    argv = ["--dataset", "wine", "--show-config", *args]
    if out is not None:
        argv += ["--out", str(out)]
    assert sweep.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_show_config_prints_resolved_json_and_flags_override_presets(capsys, tmp_path):
    out = tmp_path / "never"
    preset = show_config(capsys, out=out)
    (wine,) = preset["experiments"]
    assert (wine["epochs"], wine["depth"], wine["width"], wine["batch_size"]) == (50, 20, 13, 10)
    assert wine["h_values"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert wine["trials"] == 10 and wine["blocks"] == list(QUICK_BLOCKS)
    assert preset["out"] == str(out)

    (overridden,) = show_config(capsys, "--epochs", "7", "--optimizer", "sgd", out=out)["experiments"]
    assert overridden["epochs"] == 7 and overridden["optimizer"] == "sgd"
    assert overridden["depth"] == 20  # the rest still from the preset

    (quick,) = show_config(capsys, "--quick", "--epochs", "7", "--h", "0.2,0.4", out=out)["experiments"]
    assert quick["epochs"] == 7 and quick["depth"] == 3 and quick["h_values"] == [0.2, 0.4]
    assert not out.exists(), "--show-config must not train or write"


def test_every_registered_block_is_accepted(capsys):
    names = ",".join(sorted(BLOCKS))
    (spec,) = show_config(capsys, "--blocks", names)["experiments"]
    assert spec["blocks"] == sorted(BLOCKS)


def test_repeated_dataset_is_rejected_or_merged(capsys):
    try:
        config = show_config_argv(capsys, ["--dataset", "wine,wine", "--show-config"])
    except SystemExit as error:  # rejected, as a repeated block is
        assert error.code == 2
        return
    assert [e["dataset"] for e in config["experiments"]] == ["wine"]


def show_config_argv(capsys, argv):
    code = sweep.main(argv)
    if code != 0:
        raise SystemExit(code)
    return json.loads(capsys.readouterr().out)

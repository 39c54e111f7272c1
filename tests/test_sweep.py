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
TIMING_COLUMNS = ["seconds", "cell_seconds", "stability_seconds"]
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


# ------------------------------------------------- issue 11: a new user's first runs

TINY = ("--dataset", "wine", "--quick", "--blocks", "residual,shrinkage", "--trials", "1", "--epochs", "1",
        "--depth", "2")  # 2 cells of 3 h × 1 trial


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    """One tiny in-process sweep under umask 027: (out folder, its stdout)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("tiny") / "out"
    stdout = io.StringIO()
    previous = os.umask(0o027)
    try:
        with contextlib.redirect_stdout(stdout):
            assert sweep.main([*TINY, "--out", str(out)]) == 0
    finally:
        os.umask(previous)
    return out, stdout.getvalue()


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


def test_quick_is_recorded_and_files_respect_the_umask(tiny_sweep):
    out, _ = tiny_sweep
    assert json.loads((out / "spec.json").read_text())["quick"] is True
    written = [out / name for name in ("results.csv", "accuracy_by_h.csv", "summary.txt", "spec.json",
                                       "accuracy_vs_h.png", "accuracy_vs_h.pdf")]
    written += [p for p in (out / "cells").iterdir() if not p.name.startswith(".")]
    assert len(written) == 6 + 2 * 2  # 2 cells, each a table and a completion marker
    for path in written:
        assert oct(path.stat().st_mode & 0o777) == oct(0o640), path.name  # 0666 & ~027
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


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


def test_quick_default_out_is_its_own_folder(capsys):
    assert show_config(capsys)["out"] == str(Path("results") / "wine")
    assert show_config(capsys, "--quick")["out"] == str(Path("results") / "wine-quick")


def test_quick_refuses_an_out_folder_holding_a_full_run(tmp_path, capfd):
    out = tmp_path / "full"
    out.mkdir()
    (out / "spec.json").write_text(json.dumps({"quick": False, "experiments": []}))
    (out / "results.csv").write_text("dataset,block\nwine,residual\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sweep.main(["--dataset", "wine", "--quick", "--out", str(out)]) == 2
    lines = error_lines(capfd.readouterr().err)
    assert len(lines) == 1 and str(out) in lines[0] and "--quick" in lines[0] and "another --out" in lines[0], lines
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_h_range_stop_is_an_upper_bound():
    assert sweep.parse_h_grid("0.1:1.0:0.35") == (0.1, 0.45, 0.8)
    assert sweep.parse_h_grid("0.1:0.3:0.1") == (0.1, 0.2, 0.3)  # 0.1 + 2 * 0.1 = 0.30000000000000004
    assert sweep.parse_h_grid("0.5:0.9:1") == (0.5,)
    assert sweep.parse_h_grid("0.1:1.0:0.1")[-1] == 1.0


def test_data_for_a_dataset_without_files_is_refused(tmp_path, capfd):
    data = tmp_path / "x.csv"
    data.write_text("a\n1\n")
    assert sweep.main(["--dataset", "wine", "--data", str(data), "--show-config"]) == 2
    lines = error_lines(capfd.readouterr().err)
    assert len(lines) == 1, lines
    for needle in ("--data", "wine", "bitcoin", "elliptic", "bitcoinheist"):
        assert needle in lines[0], lines[0]


def test_test_size_for_a_fixed_split_dataset_warns_and_is_not_recorded(capfd):
    assert sweep.main(["--dataset", "adult", "--test-size", "0.3", "--show-config"]) == 0
    captured = capfd.readouterr()
    warnings = error_lines(captured.err)
    assert len(warnings) == 1 and "--test-size" in warnings[0] and "adult" in warnings[0], captured.err
    (adult,) = json.loads(captured.out)["experiments"]
    assert adult["test_size"] is None
    assert sweep.main(["--dataset", "wine", "--test-size", "0.3", "--show-config"]) == 0
    captured = capfd.readouterr()
    assert error_lines(captured.err) == [] and json.loads(captured.out)["experiments"][0]["test_size"] == 0.3


def _one_error_line(capfd, argv) -> str:
    assert sweep.main(argv) == 2
    lines = error_lines(capfd.readouterr().err)
    assert len(lines) == 1, lines
    return lines[0]


def test_empty_data_file_is_named(tmp_path, capfd):
    empty = tmp_path / "BitcoinHeistData.csv"
    empty.write_text("")
    line = _one_error_line(capfd, ["--dataset", "bitcoinheist", "--quick", "--data", str(empty),
                                   "--out", str(tmp_path / "o")])
    assert str(empty) in line and "empty" in line and "No columns" not in line, line


def test_out_that_is_a_file_is_named(tmp_path, capfd):
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    line = _one_error_line(capfd, ["--dataset", "wine", "--quick", "--out", str(target)])
    assert str(target) in line and "not a folder" in line and "Errno" not in line, line
    assert target.read_text() == "not a folder"


def test_unwritable_out_names_the_folder(tmp_path, capfd, monkeypatch):
    import tempfile

    out = tmp_path / "locked"
    out.mkdir()

    def refuse(dir=None, prefix="", suffix=""):  # noqa: A002 - what a read-only folder does to mkstemp
        raise PermissionError(13, "Permission denied", os.path.join(str(dir), f"{prefix}k2j3{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    line = _one_error_line(capfd, [*TINY, "--out", str(out)])
    assert str(out) in line and "not writable" in line and ".tmp" not in line, line


def test_source_uci_offline_names_the_dataset_and_the_shipped_copy(tmp_path, capfd, monkeypatch):
    from resnet_stability.data import online

    def offline(id):  # noqa: A002 - ucimlrepo's keyword
        raise ConnectionError("Error connecting to server")

    monkeypatch.setattr(online, "fetch_ucirepo", offline)
    monkeypatch.setenv("RESNET_STABILITY_CACHE", str(tmp_path / "cache"))
    line = _one_error_line(capfd, ["--dataset", "wine", "--quick", "--source", "uci", "--out", str(tmp_path / "o")])
    assert "wine" in line and "--source local" in line and "Error connecting to server" in line, line


def test_checksum_error_names_the_command_line_flag(tmp_path, capfd, monkeypatch):
    from resnet_stability import runner

    runner._load.cache_clear()  # datasets loaded by earlier tests are kept in memory
    target = tmp_path / "uci" / "wine" / "wine.data"
    target.parent.mkdir(parents=True)
    target.write_bytes((REPO / "data" / "uci" / "wine" / "wine.data").read_bytes()[:-10])
    monkeypatch.setenv("RESNET_STABILITY_DATA_DIR", str(tmp_path))
    line = _one_error_line(capfd, ["--dataset", "wine", "--quick", "--out", str(tmp_path / "o")])
    assert "wine/wine.data" in line and "--source uci" in line, line


def test_too_small_test_size_says_how_many_rows_and_what_works(tmp_path, capfd):
    # Wine: 178 rows, 3 classes. 0.01 * 178 = 1.78 -> 2 test rows < 3 classes; a test set needs
    # >= 3 rows (test_size >= 3/178 = 0.01685...) and a training set >= 3 rows (<= 175/178 = 0.98314...).
    line = _one_error_line(capfd, ["--dataset", "wine", "--quick", "--test-size", "0.01",
                                   "--out", str(tmp_path / "o")])
    for needle in ("--test-size 0.01", "2 rows", "3 classes", "0.017", "0.983"):
        assert needle in line, line


def test_all_titles_only_simulated_panels_synthetic(tmp_path, monkeypatch, capsys):
    from resnet_stability import plots

    titles = {}
    save = plots._save

    def record(fig, path_stem):
        titles[Path(path_stem).name] = [ax.get_title() for ax in fig.axes if ax.get_title()]
        return save(fig, path_stem)

    monkeypatch.setattr(plots, "_save", record)
    args = ["--dataset", "wine,bitcoin", "--quick", "--blocks", "residual", "--trials", "1", "--epochs", "1",
            "--depth", "2", "--out", str(tmp_path / "o")]
    assert sweep.main(args) == 0
    wine, bitcoin = titles["accuracy_vs_h"]
    assert wine.startswith("wine") and "synthetic" not in wine, wine
    assert bitcoin.startswith("bitcoin") and "[synthetic data]" in bitcoin, bitcoin
    assert all("[synthetic data]" in title for title in titles["accuracy_over_time"])


def test_block_names_without_tensorflow_match_the_registry():
    from resnet_stability.experiment import TIME_SPLIT_DATASETS

    assert sweep.BLOCK_NAMES == tuple(sorted(BLOCKS))
    assert set(sweep.DATA_FILES) == set(TIME_SPLIT_DATASETS)  # the datasets the runner reads --data for


def test_help_answers_quickly_without_tensorflow():
    code = ("import sys, time; t = time.perf_counter(); from resnet_stability import sweep; sweep.build_parser(); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=cli_env(), capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["False", "False"], result
    started = time.perf_counter()
    result = subprocess.run(cli("--help"), cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--dataset" in result.stdout
    assert time.perf_counter() - started < 2.0


def test_a_cell_another_sweep_is_computing_is_waited_for_then_skipped(tmp_path):
    from resnet_stability.experiment import resolve_spec
    from resnet_stability.store import ResultsStore

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


def test_a_closed_pipe_ends_the_command_quietly(monkeypatch, capsys):
    """``sweep --show-config | head -1``: BrokenPipeError (an OSError) exits 0, no error line."""
    from resnet_stability import sweep

    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sweep, "run", closed_pipe)
    monkeypatch.setattr(sweep.sys.stderr, "close", lambda: None)  # pytest's capture stays open
    assert sweep.main(["--dataset", "wine", "--show-config"]) == 0
    assert "Broken pipe" not in capsys.readouterr().err

"""Tests for ``python -m resnet_stability.sweep`` (``resnet_stability.sweep.cli``): end to
end, flags, the outputs it writes (tables, figures, the stability correlations).

Where the process itself matters (what reaches file descriptor 2 from a fresh
interpreter, exit codes) the CLI runs as ``sys.executable -m resnet_stability.sweep``;
elsewhere ``sweep.main([...])`` runs in-process, which saves the ~5 s TensorFlow import
per call. Resuming, cell locks and damaged cells are in ``test_schedule.py``, the
one-line checks of inputs in ``test_checks.py``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import (
    REPO,
    TINY,
    cli_env,
    error_lines,
    finished_cells,
    one_error_line,
    popen,
    sweep_argv,
)

from resnet_stability import sweep
from resnet_stability.correlation import CORRELATION_COLUMNS, spearman
from resnet_stability.layers import BLOCKS
from resnet_stability.sweep import cli

QUICK_BLOCKS = ("residual", "batchnorm", "shrinkage")  # the paper's blocks, --quick's default
RESULT_COLUMNS = {
    "dataset", "block", "h", "trial", "test_accuracy", "train_accuracy", "final_loss", "diverged",
    "epochs", "seconds", "seed", "depth", "width", "batch_size", "lr", "optimizer", "test_size", "device",
}


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


# ----------------------------------------------------------------------------- flags


HELP_FLAGS = (
    "--dataset", "--blocks", "--h", "--trials", "--depth", "--width", "--epochs", "--batch-size", "--lr",
    "--optimizer", "--test-size", "--seed", "--out", "--quick", "--device",
)


def test_help_lists_every_flag_with_help_text(capsys):
    with pytest.raises(SystemExit) as exit_info:
        sweep.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    actions = cli.build_parser()._option_string_actions
    for flag in HELP_FLAGS:
        assert flag in text.split(), f"{flag} missing from --help"
        help_text = actions[flag].help
        assert help_text and len(help_text.split()) >= 2, f"{flag} has no help text"
        first_words = " ".join(help_text.split()[:2])
        assert first_words in " ".join(text.split()), f"help text of {flag} not shown"


def test_h_grid_range_and_list():
    assert cli.parse_h_grid("0.1:1.0:0.1") == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    assert cli.parse_h_grid("0.1,0.5,1") == (0.1, 0.5, 1.0)
    assert cli.parse_h_grid("0.25:1:0.25") == (0.25, 0.5, 0.75, 1.0)


def test_h_range_stop_is_an_upper_bound():
    assert cli.parse_h_grid("0.1:1.0:0.35") == (0.1, 0.45, 0.8)
    assert cli.parse_h_grid("0.1:0.3:0.1") == (0.1, 0.2, 0.3)  # 0.1 + 2 * 0.1 = 0.30000000000000004
    assert cli.parse_h_grid("0.5:0.9:1") == (0.5,)
    assert cli.parse_h_grid("0.1:1.0:0.1")[-1] == 1.0


BAD_ARGS = [
    (["--dataset", "wine", "--h", "0:1"], "'0:1'"),
    (["--dataset", "wine", "--h", "-1"], "'-1'"),
    (["--dataset", "wine", "--h", "0.5,0.5"], "duplicates"),
    (["--dataset", "wine", "--h", ","], "empty"),
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


def test_quick_default_out_is_its_own_folder(capsys):
    assert show_config(capsys)["out"] == str(Path("results") / "wine")
    assert show_config(capsys, "--quick")["out"] == str(Path("results") / "wine-quick")


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


def test_unwritable_out_names_the_folder(tmp_path, capfd, monkeypatch):
    import tempfile

    out = tmp_path / "locked"
    out.mkdir()

    def refuse(dir=None, prefix="", suffix=""):  # noqa: A002 - what a read-only folder does to mkstemp
        raise PermissionError(13, "Permission denied", os.path.join(str(dir), f"{prefix}k2j3{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    line = one_error_line(capfd, [*TINY, "--out", str(out)])
    assert str(out) in line and "not writable" in line and ".tmp" not in line, line


def test_checksum_error_names_the_command_line_flag(tmp_path, capfd, monkeypatch):
    from resnet_stability.sweep import runner

    runner._load.cache_clear()  # datasets loaded by earlier tests are kept in memory
    target = tmp_path / "uci" / "wine" / "wine.data"
    target.parent.mkdir(parents=True)
    target.write_bytes((REPO / "data" / "uci" / "wine" / "wine.data").read_bytes()[:-10])
    monkeypatch.setenv("RESNET_STABILITY_DATA_DIR", str(tmp_path))
    line = one_error_line(capfd, ["--dataset", "wine", "--quick", "--out", str(tmp_path / "o")])
    assert "wine/wine.data" in line and "--source uci" in line, line


def test_block_names_without_tensorflow_match_the_registry():
    from resnet_stability.sweep.experiment import TIME_SPLIT_DATASETS

    assert cli.BLOCK_NAMES == tuple(sorted(BLOCKS))
    assert set(cli.DATA_FILES) == set(TIME_SPLIT_DATASETS)  # the datasets the runner reads --data for


def test_help_answers_quickly_without_tensorflow():
    code = ("import sys, time; t = time.perf_counter(); from resnet_stability.sweep import cli; cli.build_parser(); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=cli_env(), capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["False", "False"], result
    started = time.perf_counter()
    result = subprocess.run(sweep_argv("--help"), cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--dataset" in result.stdout
    assert time.perf_counter() - started < 2.0


def test_a_closed_pipe_ends_the_command_quietly(monkeypatch, capsys):
    """``sweep --show-config | head -1``: BrokenPipeError (an OSError) exits 0, no error line."""
    def closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "run", closed_pipe)
    monkeypatch.setattr(cli.sys.stderr, "close", lambda: None)  # pytest's capture stays open
    assert sweep.main(["--dataset", "wine", "--show-config"]) == 0
    assert "Broken pipe" not in capsys.readouterr().err


def test_learn_h_flags(capsys):
    assert sweep.main(["--dataset", "wine", "--h-max", "2"]) == 2
    assert "--h-max only applies with --learn-h" in capsys.readouterr().err
    assert sweep.main(["--dataset", "wine", "--learn-h", "--blocks", "lm"]) == 2
    assert "block 'lm' cannot learn h" in capsys.readouterr().err
    assert sweep.main(["--dataset", "wine", "--learn-h", "--h-max", "2", "--show-config"]) == 0
    (experiment,) = json.loads(capsys.readouterr().out)["experiments"]
    assert experiment["learn_h"] is True and experiment["h_max"] == 2.0
    assert sweep.main(["--dataset", "wine", "--show-config"]) == 0
    assert json.loads(capsys.readouterr().out)["experiments"][0]["learn_h"] is False


def test_blocks_together_flag(capsys):
    assert sweep.main(["--dataset", "wine", "--blocks-together", "--levels", "2"]) == 2
    assert "--blocks-together trains plain in-memory cells; not with --levels 2" in capsys.readouterr().err
    assert sweep.main(["--dataset", "wine", "--blocks-together", "--show-config"]) == 0


def test_workers_flag(capsys):
    assert sweep.main(["--dataset", "wine", "--workers", "2"]) == 2
    assert "--workers only applies with --executor processes (got --executor inprocess)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sweep.main(["--dataset", "wine", "--executor", "processes", "--workers", "0"])
    assert "invalid --workers '0': must be >= 1" in capsys.readouterr().err


def test_stability_penalty_flags(capsys):
    assert sweep.main(["--dataset", "wine", "--stability-penalty", "1"]) == 2
    assert "--stability-penalty only applies with --learn-h" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sweep.main(["--dataset", "wine", "--learn-h", "--stability-penalty", "-1"])
    assert "invalid --stability-penalty '-1': must be >= 0.0" in capsys.readouterr().err
    assert sweep.main(["--dataset", "wine", "--learn-h", "--stability-penalty", "inf"]) == 2
    assert "stability_penalty must be a finite number >= 0, got inf" in capsys.readouterr().err
    assert sweep.main(["--dataset", "wine", "--learn-h", "--stability-penalty", "0.5", "--show-config"]) == 0
    (experiment,) = json.loads(capsys.readouterr().out)["experiments"]
    assert experiment["stability_penalty"] == 0.5


def test_sweep_levels_flag(capsys):
    assert sweep.main(["--dataset", "wine", "--levels", "2", "--blocks", "lm"]) == 2
    assert "levels > 1 needs one-step blocks" in capsys.readouterr().err
    assert sweep.main(["--dataset", "wine", "--levels", "3", "--show-config"]) == 0
    assert json.loads(capsys.readouterr().out)["experiments"][0]["levels"] == 3


# --------------------------------------------------------------------------- outputs


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


def test_a_quick_sweep_with_learn_h_writes_the_learned_h(tmp_path, capsys):
    out = tmp_path / "learned"
    assert sweep.main(["--dataset", "wine", "--quick", "--blocks", "residual", "--learn-h", "--out", str(out)]) == 0
    capsys.readouterr()
    table = pd.read_csv(out / "results.csv")
    steps = np.array([json.loads(text) for text in table["learned_h"]])
    assert steps.shape == (len(table), 3)  # --quick: depth 3
    assert np.all((steps > 0) & (steps <= 1.0))
    long = pd.read_csv(out / "learned_h.csv")
    assert len(long) == steps.size and list(long["block_index"][:3]) == [0, 1, 2]
    assert (out / "learned_h.png").read_bytes().startswith(b"\x89PNG")


def test_a_quick_sweep_with_the_penalty_records_it(tmp_path, capsys):
    out = tmp_path / "penalised"
    argv = ["--dataset", "wine", "--quick", "--blocks", "shrinkage", "--learn-h", "--stability-penalty", "2",
            "--out", str(out)]
    assert sweep.main(argv) == 0
    capsys.readouterr()
    table = pd.read_csv(out / "results.csv")
    assert set(table["stability_penalty"]) == {2.0}
    steps = np.array([json.loads(text) for text in table["learned_h"]])
    assert np.all((steps > 0) & (steps <= 1.0)) and math.isfinite(table["test_accuracy"].sum())


def test_a_quick_sweep_with_levels_writes_accuracy_by_level(tmp_path, capsys):
    out = tmp_path / "levels"
    argv = ["--dataset", "wine", "--quick", "--blocks", "residual", "--trials", "1", "--levels", "2"]
    assert sweep.main([*argv, "--out", str(out)]) == 0
    capsys.readouterr()
    table = pd.read_csv(out / "results.csv")
    per_level = np.array([json.loads(text) for text in table["level_accuracy"]])
    assert per_level.shape == (len(table), 2)
    np.testing.assert_array_equal(per_level[:, -1], table["test_accuracy"])
    long = pd.read_csv(out / "accuracy_by_level.csv")
    assert len(long) == per_level.size and sorted(long["level"].unique()) == [1, 2]
    assert (out / "accuracy_by_level.png").read_bytes().startswith(b"\x89PNG")


def test_quick_sweep_writes_the_columns_the_figure_and_the_correlations(tmp_path):
    out = tmp_path / "quick"
    args = ["--dataset", "wine", "--quick", "--blocks", "residual,shrinkage", "--noise", "0.5", "--out", str(out)]
    assert sweep.main(args) == 0
    table = pd.read_csv(out / "results.csv")
    assert {"euler_max", "euler_stable_share", "stability_seconds"} <= set(table.columns)
    assert table["euler_max"].notna().all() and (table["euler_max"] >= 0).all()
    assert table["euler_stable_share"].between(0, 1).all()
    for name in ("stability_vs_accuracy.png", "stability_vs_accuracy.pdf", "stability_correlation.csv",
                 "stability_vs_noise_loss.png"):
        assert (out / name).stat().st_size > 0, name
    correlations = pd.read_csv(out / "stability_correlation.csv")
    assert list(correlations.columns) == CORRELATION_COLUMNS
    assert set(correlations["block"]) == {"residual", "shrinkage", "all"}
    overall = correlations[(correlations["block"] == "all") & (correlations["members"] == "all")].iloc[0]
    assert overall["n"] == len(table)
    assert overall["spearman"] == pytest.approx(spearman(table["euler_max"], table["test_accuracy"]))
    lost = pd.read_csv(out / "stability_noise_correlation.csv")
    assert list(lost.columns) == ["noise", "level"] + CORRELATION_COLUMNS
    assert set(lost["level"]) == {0.5} and set(lost["noise"]) == {"gaussian", "uniform", "constant"}
    from resnet_stability.report import write_report

    html_path, md_path = write_report(out)
    markdown = md_path.read_text(encoding="utf-8")
    assert "## Stability and accuracy" in markdown and "stability_vs_accuracy.png" in markdown
    assert f"{overall['spearman']:.3f} [{overall['ci_low']:.3f}, {overall['ci_high']:.3f}]" in markdown
    assert 'id="stability"' in html_path.read_text(encoding="utf-8")


def test_a_sweep_loads_each_dataset_once(tmp_path, monkeypatch, capsys):
    """The up-front check and every cell of a dataset share one load, and the cache keeps
    one entry per registered dataset, so a sweep over all of them reads each once too."""
    from resnet_stability import data
    from resnet_stability.data.registry import dataset_names
    from resnet_stability.sweep import runner

    runner._load.cache_clear()
    loads = []
    original = data.load_dataset

    def counting(name, *args, **kwargs):
        loads.append(name)
        return original(name, *args, **kwargs)

    monkeypatch.setattr(data, "load_dataset", counting)
    args = ["--dataset", "wine,synthetic", "--quick", "--blocks", "residual,shrinkage", "--trials", "1",
            "--epochs", "1", "--depth", "2", "--h", "0.5", "--out", str(tmp_path / "o")]
    assert sweep.main(args) == 0
    capsys.readouterr()
    assert sorted(loads) == ["synthetic", "wine"]
    assert runner._load.cache_info().maxsize >= len(dataset_names(needs_data=False))

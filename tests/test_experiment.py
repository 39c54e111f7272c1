"""Tests for what a sweep trains (``resnet_stability.sweep.experiment``): the paper's
presets, one per dataset, resolved by precedence, each runnable with --quick; the
configuration hash of a cell, which names its stored files, and the spec's checks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from helpers import make_spec

from resnet_stability.data import list_datasets
from resnet_stability.sweep.cli import ALL_DATASETS, NEEDS_USER_DATA, main
from resnet_stability.sweep.experiment import COMMON_DEFAULTS, PAPER_H, PRESETS, QUICK, resolve_spec

PAPER_TABLE = {  # DESIGN.md: epochs, blocks (depth), width, batch
    "wine": (50, 20, 13, 10),
    "abalone": (50, 50, 8, 50),
    "absenteeism": (20, 100, 19, 10),
    "autism": (30, 100, 20, 10),
    "adult": (50, 100, 14, 100),
}


def test_every_dataset_has_a_preset_and_nothing_else():
    assert set(PRESETS) == set(list_datasets())
    assert set(ALL_DATASETS) | set(NEEDS_USER_DATA) == set(PRESETS)


@pytest.mark.parametrize("name", sorted(PAPER_TABLE))
def test_presets_match_the_paper(name):
    spec = resolve_spec(name)
    assert (spec.epochs, spec.depth, spec.width, spec.batch_size) == PAPER_TABLE[name]
    assert spec.h_values == pytest.approx([0.1 * k for k in range(1, 11)], abs=1e-12)
    assert spec.trials == 10
    assert spec.blocks == ("residual", "batchnorm", "shrinkage")


def test_precedence_defaults_preset_quick_overrides():
    quick = resolve_spec("adult", quick=True)
    assert quick.depth == QUICK["depth"] and quick.width == PRESETS["adult"]["width"]
    assert quick.lr == COMMON_DEFAULTS["lr"]
    overridden = resolve_spec("adult", {"depth": 7, "lr": 0.05, "trials": None}, quick=True)
    assert overridden.depth == 7 and overridden.lr == 0.05
    assert overridden.trials == QUICK["trials"]  # None means "not given"
    assert resolve_spec("wine").h_values == PAPER_H


def test_show_config_prints_the_resolved_preset_without_training(tmp_path, capsys):
    assert main(["--dataset", "adult", "--show-config", "--out", str(tmp_path / "o"), "--lr", "0.01"]) == 0
    shown = json.loads(capsys.readouterr().out)
    (experiment,) = shown["experiments"]
    assert (experiment["epochs"], experiment["depth"], experiment["width"], experiment["batch_size"]) == (
        PAPER_TABLE["adult"]
    )
    assert experiment["lr"] == 0.01
    assert not (tmp_path / "o").exists()


def test_every_preset_runs_with_quick(tmp_path, capsys):
    out = tmp_path / "all"
    assert main(["--dataset", "all", "--quick", "--blocks", "residual", "--trials", "1", "--out", str(out)]) == 0
    table = pd.read_csv(out / "results.csv")
    assert list(dict.fromkeys(table["dataset"])) == list(ALL_DATASETS)
    per_dataset = table.groupby("dataset").size()
    assert (per_dataset == len(QUICK["h_values"])).all()
    assert table["test_accuracy"].between(0, 1).all()
    assert (table["n_train"] + table["n_test"] <= QUICK["max_rows"]).all()
    assert (out / "accuracy_vs_h.png").stat().st_size > 0
    printed = capsys.readouterr().out
    for name in ALL_DATASETS:
        assert f"{name} × residual" in printed
    assert "SIMULATED" in printed  # bitcoin without --data says what it trains on


def _elliptic_folder(folder, rng):
    """Kaggle layout: header-less features (txId, time step 1..49, 165 features), classes CSV."""
    folder.mkdir()
    tx = np.arange(1000, 1000 + 49 * 8)
    steps = np.repeat(np.arange(1, 50), 8)
    features = rng.normal(size=(len(tx), 165)).round(4)
    lines = [",".join([str(t), str(s)] + [str(v) for v in row]) for t, s, row in zip(tx, steps, features)]
    (folder / "elliptic_txs_features.csv").write_text("\n".join(lines) + "\n")
    classes = rng.choice(["1", "2", "unknown"], size=len(tx), p=[0.3, 0.5, 0.2])
    (folder / "elliptic_txs_classes.csv").write_text("txId,class\n" + "".join(f"{t},{c}\n" for t, c in zip(tx, classes)))
    return folder


def _heist_csv(path, rng):
    """BitcoinHeist layout over 2011-2013 (white and ransomware rows)."""
    n = 400
    frame = pd.DataFrame(
        dict(
            address=[f"1addr{i}" for i in range(n)],
            year=rng.choice([2011, 2012, 2013], size=n),
            day=rng.integers(1, 366, size=n),
            length=rng.integers(0, 144, size=n),
            weight=rng.random(n),
            count=rng.integers(1, 50, size=n),
            looped=rng.integers(0, 3, size=n),
            neighbors=rng.integers(1, 5, size=n),
            income=rng.integers(30_000_000, 10**9, size=n),
            label=rng.choice(["white", "princetonLocky", "montrealCryptoLocker"], size=n, p=[0.6, 0.2, 0.2]),
        )
    )
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", sorted(NEEDS_USER_DATA))
def test_presets_that_need_user_data_run_with_quick_on_files_in_their_layout(name, tmp_path):
    rng = np.random.default_rng(0)
    data = _elliptic_folder(tmp_path / "elliptic", rng) if name == "elliptic" else _heist_csv(tmp_path / "h.csv", rng)
    out = tmp_path / "out"
    assert main(["--dataset", name, "--quick", "--blocks", "residual", "--data", str(data), "--out", str(out)]) == 0
    over_time = pd.read_csv(out / "accuracy_over_time.csv")
    assert over_time["window"].nunique() >= 2
    assert (out / "accuracy_over_time.png").stat().st_size > 0


@pytest.mark.parametrize("name", sorted(NEEDS_USER_DATA))
def test_presets_that_need_user_data_say_so_without_it(name, capsys):
    assert main(["--dataset", name, "--quick"]) == 2
    error = capsys.readouterr().err
    assert f"--dataset {name} needs --data" in error and error.count("\n") == 1


def test_fixed_split_datasets_have_no_test_size_in_spec_or_hash():
    from resnet_stability.sweep.experiment import FIXED_SPLIT_DATASETS

    assert set(FIXED_SPLIT_DATASETS) == {"adult", "synthetic", "bitcoin", "elliptic", "bitcoinheist"}
    for name in FIXED_SPLIT_DATASETS:
        given, default = resolve_spec(name, {"test_size": 0.3}), resolve_spec(name)
        assert given.test_size is None and default.test_size is None
        assert "test_size" not in given.cell_config("residual")
        assert given.cell_hash("residual") == default.cell_hash("residual")
    wine = resolve_spec("wine", {"test_size": 0.3})
    assert wine.test_size == 0.3 and wine.cell_hash("residual") != resolve_spec("wine").cell_hash("residual")
    with pytest.raises(ValueError, match="test_size None is only for the fixed-split datasets"):
        dataclasses.replace(resolve_spec("wine"), test_size=None)


def test_uci_presets_default_to_the_paper_inputs_and_others_have_none():
    for name in ("wine", "abalone", "absenteeism", "autism", "adult"):
        paper, clean = resolve_spec(name), resolve_spec(name, {"inputs": "clean"})
        assert paper.inputs == "paper" and clean.inputs == "clean"
        assert paper.cell_hash("residual") != clean.cell_hash("residual")
    for name in ("synthetic", "bitcoin"):
        spec = resolve_spec(name, {"inputs": "clean"})  # e.g. --dataset all --inputs clean
        assert spec.inputs is None and "inputs" not in spec.cell_config("residual")
    with pytest.raises(ValueError, match="inputs must be one of paper, clean for wine, got 'raw'"):
        resolve_spec("wine", {"inputs": "raw"})


# --------------------------------------------------- configuration hashes and checks


def test_a_default_spec_keeps_its_hash():
    """Hashes computed before learn_h existed (they name the stored cells)."""
    assert resolve_spec("wine", {}).cell_hash("residual") == "54dc194b5da5"
    assert resolve_spec("wine", {}).cell_hash("batchnorm") == "69f7e77306a2"
    assert resolve_spec("synthetic", {}).cell_hash("residual") == "03ea8157e4e1"
    assert "learn_h" not in resolve_spec("wine", {}).cell_config("residual")
    # h_max without learn_h changes nothing; with learn_h it is part of the cell
    assert resolve_spec("wine", {"h_max": 3.0}).cell_hash("residual") == "54dc194b5da5"
    learned = resolve_spec("wine", {"learn_h": True})
    assert learned.cell_hash("residual") != "54dc194b5da5"
    assert learned.cell_config("residual")["learn_h"] is True
    assert resolve_spec("wine", {"learn_h": True, "h_max": 2}).cell_hash("residual") == resolve_spec(
        "wine", {"learn_h": True, "h_max": 2.0}
    ).cell_hash("residual")
    assert resolve_spec("wine", {"learn_h": True, "h_max": 2.0}).cell_hash("residual") != learned.cell_hash("residual")


def test_the_spec_refuses_bad_learn_h_settings():
    with pytest.raises(ValueError, match=r"^h=0\.6 exceeds h_max=0\.5; give h <= h_max$"):  # the first above
        resolve_spec("wine", {"learn_h": True, "h_max": 0.5})
    with pytest.raises(ValueError, match=r"^block 'lm' cannot learn h"):
        resolve_spec("wine", {"learn_h": True, "blocks": ("residual", "lm")})
    with pytest.raises(ValueError, match=r"learn_h must be True or False"):
        resolve_spec("wine", {"learn_h": "yes"})
    resolve_spec("wine", {"blocks": ("lm",), "h_max": 0.5})  # fixed h: neither applies


def test_zero_penalty_keeps_the_hash_and_the_columns():
    learned = resolve_spec("wine", {"learn_h": True})
    assert resolve_spec("wine", {"learn_h": True, "stability_penalty": 0.0}).cell_hash("residual") == learned.cell_hash(
        "residual"
    )
    assert "stability_penalty" not in learned.cell_config("residual")
    penalised = resolve_spec("wine", {"learn_h": True, "stability_penalty": 1})
    assert penalised.cell_config("residual")["stability_penalty"] == 1.0
    assert penalised.cell_hash("residual") == resolve_spec("wine", {"learn_h": True, "stability_penalty": 1.0}).cell_hash(
        "residual"
    )
    assert penalised.cell_hash("residual") != learned.cell_hash("residual")
    with pytest.raises(ValueError, match=r"needs learn_h=True"):
        resolve_spec("wine", {"stability_penalty": 1.0})
    with pytest.raises(ValueError, match=r"^block 'rk4' is not a forward-Euler block"):
        resolve_spec("wine", {"learn_h": True, "stability_penalty": 1.0, "blocks": ("residual", "rk4")})


def test_one_level_keeps_every_hash():
    """levels = 1 is plain training: dropped from the cell config, hashes unchanged."""
    assert resolve_spec("wine", {"levels": 1}).cell_hash("residual") == "54dc194b5da5"
    assert "levels" not in resolve_spec("wine", {}).cell_config("residual")
    two = resolve_spec("wine", {"levels": 2})
    assert two.cell_config("residual")["levels"] == 2 and two.cell_hash("residual") != "54dc194b5da5"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"levels": 0}, r"^levels must be an integer >= 1, got 0$"),
        ({"levels": 2, "blocks": ("residual", "lm")}, r"^levels > 1 needs one-step blocks"),
    ],
)
def test_the_spec_refuses_bad_levels(overrides, message):
    with pytest.raises(ValueError, match=message):
        resolve_spec("wine", overrides)


def test_cell_hash_is_not_touched():
    """The statistic is not part of the spec: cell hashes stay what they were (the
    hard-coded Wine hash is checked in test_a_default_spec_keeps_its_hash)."""
    spec = make_spec(h_values=(0.1, 0.6, 1.0), depth=3)
    assert "stability" not in " ".join(spec.cell_config("residual"))



@pytest.mark.parametrize("grid, message", [
    ((), r"^the h grid is empty$"),
    ((0.5, float("inf")), r"^h must be a finite number > 0, got inf$"),
    ((0.0,), r"^h must be a finite number > 0, got 0\.0$"),
    ((float("nan"),), r"^h must be a finite number > 0, got nan$"),
    ((0.1, 0.1), r"^the h grid has duplicates: \[0\.1, 0\.1\]$"),
])
def test_one_rule_for_the_h_grid_in_the_spec_and_the_command_line(grid, message):
    """``check_h_grid`` is the rule; the spec and ``--h`` both apply it."""
    import argparse

    from resnet_stability.sweep.cli import parse_h_grid
    from resnet_stability.sweep.experiment import check_h_grid

    with pytest.raises(ValueError, match=message):
        check_h_grid(grid)
    with pytest.raises(ValueError, match=message):
        resolve_spec("wine", {"h_values": grid})
    text = ",".join(str(h) for h in grid) or ","
    with pytest.raises(argparse.ArgumentTypeError, match=r"^invalid --h "):
        parse_h_grid(text)


def test_a_cell_hash_follows_the_data_content_not_its_location(tmp_path):
    """A results folder holding its own data file (the simulated Bitcoin demo) resumes
    when moved; different rows are a different cell."""
    rows = "timestamp,amount,label\n" + "".join(f"{t},{t * 0.5},{t % 2}\n" for t in range(50))
    here, there = tmp_path / "a" / "tx.csv", tmp_path / "b" / "copied.csv"
    for path in (here, there):
        path.parent.mkdir()
        path.write_text(rows)
    spec_here = resolve_spec("bitcoin", {"data_path": str(here)})
    spec_there = resolve_spec("bitcoin", {"data_path": str(there)})
    assert spec_here.data_path != spec_there.data_path
    assert spec_here.cell_hash("residual") == spec_there.cell_hash("residual")
    assert str(tmp_path) not in json.dumps(spec_here.cell_config("residual"))
    there.write_text(rows + "50,25.0,0\n")
    assert resolve_spec("bitcoin", {"data_path": str(there)}).cell_hash("residual") != spec_here.cell_hash("residual")


def test_a_spec_reads_its_data_file_once_however_many_hashes_it_gives(tmp_path, monkeypatch):
    """Every cell file name and result row carries the cell hash; the data file behind it
    is fingerprinted once per spec, not once per call."""
    from resnet_stability.data import files

    path = tmp_path / "tx.csv"
    path.write_text("timestamp,amount,label\n1,0.5,0\n")
    calls = []
    original = files.data_fingerprint
    monkeypatch.setattr(files, "data_fingerprint", lambda p, *a: calls.append(p) or original(p, *a))
    spec = resolve_spec("bitcoin", {"data_path": str(path)})
    hashes = {spec.cell_hash(block) for block in ("residual", "shrinkage") for _ in range(5)}
    assert len(hashes) == 2 and calls == [spec.data_path]

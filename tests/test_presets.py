"""The paper's presets: one per dataset, resolved by precedence, each runnable with --quick."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from resnet_stability.data import list_datasets
from resnet_stability.experiment import COMMON_DEFAULTS, PAPER_H, PRESETS, QUICK, resolve_spec
from resnet_stability.sweep import main

PAPER_TABLE = {  # DESIGN.md: epochs, blocks (depth), width, batch
    "wine": (50, 20, 13, 10),
    "abalone": (50, 50, 8, 50),
    "absenteeism": (20, 100, 19, 10),
    "autism": (30, 100, 20, 10),
    "adult": (50, 100, 14, 100),
}


def test_every_dataset_has_a_preset_and_nothing_else():
    assert set(PRESETS) == set(list_datasets())


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
    assert list(dict.fromkeys(table["dataset"])) == list(PRESETS)
    per_dataset = table.groupby("dataset").size()
    assert (per_dataset == len(QUICK["h_values"])).all()
    assert table["test_accuracy"].between(0, 1).all()
    assert (table["n_train"] + table["n_test"] <= QUICK["max_rows"]).all()
    assert (out / "accuracy_vs_h.png").stat().st_size > 0
    printed = capsys.readouterr().out
    for name in PRESETS:
        assert f"{name} × residual" in printed

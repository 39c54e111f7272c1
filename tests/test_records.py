"""Tests for the tidy tables of a trained cell (``resnet_stability.sweep.records``): one row
per member with its configuration, per member × noise kind × level, and columns that
appear only with the options that fill them."""

from __future__ import annotations

import numpy as np
from helpers import make_spec

from resnet_stability.sweep.records import cell_records
from resnet_stability.sweep.trainer import train_cell


def test_cell_records_one_row_per_member_with_configuration(batchnorm_cell, wine95):
    spec, result, table = batchnorm_cell
    assert len(table) == spec.members_per_cell == len(result.plans)
    required = {
        "dataset", "block", "h", "trial", "test_accuracy", "train_accuracy", "final_loss", "diverged",
        "diverged_epoch", "epochs", "seconds", "seed", "depth", "width", "batch_size", "lr", "optimizer",
        "test_size", "activation", "device",
    }
    assert required <= set(table.columns), f"missing {sorted(required - set(table.columns))}"
    assert list(zip(table["h"], table["trial"])) == spec.members()
    assert not table.duplicated(["block", "h", "trial"]).any()
    np.testing.assert_array_equal(table["test_accuracy"], result.test_accuracy)
    np.testing.assert_array_equal(table["train_accuracy"], result.train_accuracy)
    np.testing.assert_array_equal(table["final_loss"], result.final_loss.astype(float))
    np.testing.assert_array_equal(table["diverged"], result.diverged)
    assert list(table["seed"]) == [p.seed for p in result.plans]
    assert table["test_accuracy"].between(0, 1).all() and table["train_accuracy"].between(0, 1).all()
    assert (table["seconds"] > 0).all()
    for column, value in dict(
        dataset="wine", block="batchnorm", epochs=spec.epochs, depth=spec.depth, width=spec.width,
        batch_size=spec.batch_size, lr=spec.lr, optimizer=spec.optimizer, test_size=spec.test_size,
        activation="relu", device="CPU:0 test", inputs="paper",
    ).items():
        assert (table[column] == value).all(), column
    # nothing diverged here, so the last finite weights are the trained network
    assert not table["diverged"].any()
    np.testing.assert_array_equal(table["test_accuracy_last_finite"], table["test_accuracy"])
    # the majority-class baseline of each member's test rows, counted by hand
    for row, plan in zip(table.itertuples(), result.plans):
        labels = wine95.y[plan.test_idx].tolist()
        assert row.test_majority_rate == max(labels.count(c) for c in set(labels)) / len(labels)


def test_noise_table_has_one_row_per_member_kind_and_level(noisy_cell):
    spec, result, table = noisy_cell
    assert set(table["noise"]) == {"gaussian", "uniform", "constant"}
    per_level = table.groupby(["noise", "level"]).size()
    assert (per_level == spec.members_per_cell).all()
    assert sorted(table["level"].unique()) == [0.0, 0.3, 50.0]


def test_zero_noise_equals_clean_test_accuracy(noisy_cell):
    _, result, table = noisy_cell
    for kind in ("gaussian", "uniform", "constant"):
        zero = table[(table["noise"] == kind) & (table["level"] == 0.0)]["accuracy"].to_numpy()
        np.testing.assert_array_equal(zero[: len(result.test_accuracy)], result.test_accuracy)


def test_without_learn_h_the_rows_have_no_learned_h_column(wine95):
    spec = make_spec(h_values=(0.5,), trials=1, epochs=1)
    result = train_cell(wine95, spec, "residual")
    assert result.learned_steps() is None
    assert "learned_h" not in cell_records(result, spec, "residual", "cpu").columns

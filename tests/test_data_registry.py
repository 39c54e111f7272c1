"""Tests for ``resnet_stability.data.registry``: one :class:`DatasetRecord` per dataset.

A fake dataset is registered while the records are saved (fixture ``fake_dataset``,
which restores them), so the registry the rest of the suite iterates stays as it is.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from resnet_stability.data import DEFAULT_WINDOWS, DATASETS, Dataset, is_synthetic, list_datasets, load_dataset
from resnet_stability.data.registry import RECORDS, DatasetRecord, dataset_names, dataset_record, register
from resnet_stability.sweep import cli, experiment

PRESET_KEYS = {"epochs", "depth", "width", "batch_size"}


def test_every_registered_dataset_has_a_complete_record():
    assert list(RECORDS) == list_datasets() == list(DATASETS)
    for name, record in RECORDS.items():
        assert isinstance(record, DatasetRecord) and record.name == name
        assert callable(record.loader) and DATASETS[name] is record.loader
        assert PRESET_KEYS <= set(record.preset) <= PRESET_KEYS | {"trials"}
        assert all(isinstance(v, int) and v >= 1 for v in record.preset.values())
        if record.windows is not None:
            assert len(record.windows) == 2 and all(v > 0 for v in record.windows) and record.fixed_split
        assert record.data is not None or not (record.needs_data or record.stream or record.time_split)
        for flag in ("fixed_split", "needs_data", "online", "inputs", "stream"):
            assert isinstance(getattr(record, flag), bool)


def test_the_records_hold_the_facts_the_tables_held():
    assert dataset_names(inputs=True) == ("wine", "abalone", "absenteeism", "autism", "adult")
    assert dataset_names(time_split=True) == ("bitcoin", "elliptic", "bitcoinheist")
    assert dataset_names(stream=True) == ("bitcoin",)
    assert dataset_names(fixed_split=True) == ("adult", "synthetic", "bitcoin", "elliptic", "bitcoinheist")
    assert dataset_names(needs_data=True) == ("elliptic", "bitcoinheist")
    assert dataset_names(online=True) == ("wine", "abalone", "absenteeism", "autism", "adult", "bitcoinheist")
    assert dict(DEFAULT_WINDOWS) == {"bitcoin": (365.0, 182.0), "elliptic": (34.0, 5.0),
                                     "bitcoinheist": (365.0, 182.0)}
    assert experiment.UCI_DATASETS == dataset_names(inputs=True)
    assert experiment.FIXED_SPLIT_DATASETS == dataset_names(fixed_split=True)
    assert dict(experiment.PRESETS["wine"]) == dict(epochs=50, depth=20, width=13, batch_size=10)
    assert cli.ALL_DATASETS == ("wine", "abalone", "absenteeism", "autism", "adult", "synthetic", "bitcoin")
    assert set(cli.NEEDS_USER_DATA) == {"elliptic", "bitcoinheist"}
    assert "--source uci" in cli.NEEDS_USER_DATA["bitcoinheist"]


def test_a_record_is_frozen_and_its_preset_read_only():
    record = dataset_record("wine")
    with pytest.raises(AttributeError):
        record.preset = {}
    with pytest.raises(TypeError):
        record.preset["epochs"] = 1


def test_a_bad_record_is_refused():
    with pytest.raises(ValueError, match="needs_data"):
        DatasetRecord("x", lambda source="local": None, dict(epochs=1, depth=1, width=1, batch_size=1), needs_data=True)
    with pytest.raises(TypeError, match="DatasetRecord"):
        register({"name": "x"})
    with pytest.raises(ValueError, match="unknown dataset 'nope'; allowed datasets"):
        dataset_record("nope")


def test_the_synthetic_flag_replaces_the_description_prefix():
    plain = Dataset("d", np.zeros((2, 1)), [0, 1], ("a",), ("n", "p"), [True], description="SYNTHETIC words")
    assert not plain.synthetic and not is_synthetic(plain)
    marked = Dataset("d", np.zeros((2, 1)), [0, 1], ("a",), ("n", "p"), [True], synthetic=True)
    assert marked.synthetic and is_synthetic(marked)
    with pytest.raises(ValueError, match="synthetic must be True or False"):
        Dataset("d", np.zeros((2, 1)), [0, 1], ("a",), ("n", "p"), [True], synthetic="yes")


def _load_toy(source: str = "local", **kwargs) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    return Dataset("toy", x, (x[:, 0] > 0).astype(int), ("a", "b", "c"), ("neg", "pos"), [True] * 3)


@pytest.fixture
def fake_dataset():
    """A dataset "toy" (its loader plus one record) registered for the test, then removed."""
    saved = dict(RECORDS)
    record = register(DatasetRecord("toy", _load_toy, dict(epochs=3, depth=4, width=5, batch_size=8)))
    yield record
    RECORDS.clear()
    RECORDS.update(saved)


def test_a_registered_record_reaches_load_dataset_and_the_sweep(fake_dataset, capsys):
    assert "toy" in list_datasets() and DATASETS["toy"] is _load_toy
    assert load_dataset("toy").n_samples == 40
    assert "toy" in cli.ALL_DATASETS and "toy" in experiment.PRESETS
    parser = cli.build_parser()
    assert parser.parse_args(["--dataset", "toy"]).dataset == ("toy",)
    assert "toy" in parser.format_help()
    assert cli.main(["--dataset", "toy", "--show-config"]) == 0
    config = json.loads(capsys.readouterr().out)
    (spec,) = config["experiments"]
    assert (spec["dataset"], spec["epochs"], spec["depth"], spec["width"], spec["batch_size"]) == ("toy", 3, 4, 5, 8)
    assert spec["test_size"] == 0.2 and spec["inputs"] is None  # not a fixed split, no inputs choice


def test_a_registered_record_leaves_the_registry_as_it_was_after_the_test():
    assert "toy" not in RECORDS and "toy" not in list_datasets()

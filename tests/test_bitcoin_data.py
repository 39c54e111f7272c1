"""Tests for the time-stamped Bitcoin data: schema loader, Elliptic, BitcoinHeist,
the drifting simulator, and splits in time.

Every file is built in tmp_path in the real layout (Elliptic: header-less features CSV
+ classes CSV with "unknown"; BitcoinHeist: the UCI header); nothing touches the
network (ucimlrepo is replaced by a stand-in).
"""

from __future__ import annotations

import dataclasses
import io
import json
import types

import numpy as np
import pandas as pd
import pytest

import resnet_stability.data.online as online
from resnet_stability.data import (
    BITCOIN_SCHEMA,
    DEFAULT_WINDOWS,
    ENTITY_LABELS,
    BitcoinSchemaError,
    Dataset,
    dataset_time_windows,
    is_synthetic,
    list_datasets,
    load_bitcoin,
    load_bitcoinheist,
    load_dataset,
    load_elliptic,
    read_bitcoin_frame,
    simulate_transactions,
    time_windows,
)
from resnet_stability.data.bitcoin import FEATURE_NAMES, schema_table
from resnet_stability.data.bitcoinheist import bitcoinheist_time
from resnet_stability.data.simulate import simulate_frame


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch, tmp_path):
    """Never read or write the user's real cache."""
    monkeypatch.setenv("RESNET_STABILITY_CACHE", str(tmp_path / "default_cache"))


# --------------------------------------------------------------------------------------
# Dataset.time
# --------------------------------------------------------------------------------------


def test_dataset_time_field_defaults_and_validation():
    ds = Dataset("x", np.zeros((3, 1)), np.zeros(3), ("a",), ("c",), np.ones(1, bool))
    assert ds.time is None and ds.time_unit == ""
    ds = Dataset("x", np.zeros((3, 1)), np.zeros(3), ("a",), ("c",), np.ones(1, bool),
                 time=[1, 2, 3], time_unit="time step")
    assert ds.time.dtype == np.float64 and ds.time.tolist() == [1.0, 2.0, 3.0]
    assert ds.time_unit == "time step"
    with pytest.raises(ValueError, match=r"time must have shape \(3,\)"):
        Dataset("x", np.zeros((3, 1)), np.zeros(3), ("a",), ("c",), np.ones(1, bool),
                time=np.zeros(2))
    with pytest.raises(ValueError, match="time contains NaN"):
        Dataset("x", np.zeros((2, 1)), np.zeros(2), ("a",), ("c",), np.ones(1, bool),
                time=[0.0, np.nan])
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.time = None


# --------------------------------------------------------------------------------------
# Bitcoin schema loader
# --------------------------------------------------------------------------------------

# 2012-01-02 was a Monday; 2012-01-07 a Saturday.
ROWS = [
    # timestamp, n_inputs, n_outputs, volume_btc, entity
    ("2012-01-02T06:00:00Z", 1, 2, 0.5, "exchange"),
    ("2012-01-07T18:00:00Z", 3, 1, 0.0, "service"),
    ("2013-06-01T00:00:00Z", 1, 40, 12.25, "mining_pool"),
    ("2018-05-31T12:30:00Z", 2, 2, 0.001, "gambling"),
    ("2014-02-03T00:00:00+02:00", 7, 3, 1.0, "exchange"),  # = 2014-02-02 22:00 UTC
]


def _frame(rows=ROWS) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(BITCOIN_SCHEMA))


def _write_csv(tmp_path, frame, name="tx.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_schema_is_documented_data():
    assert list(BITCOIN_SCHEMA) == ["timestamp", "n_inputs", "n_outputs", "volume_btc",
                                    "entity"]
    assert ENTITY_LABELS == ("exchange", "service", "gambling", "mining_pool")
    for column in BITCOIN_SCHEMA.values():
        assert column.dtype and column.meaning and column.constraint
    assert "ISO" in BITCOIN_SCHEMA["timestamp"].dtype
    assert "unix seconds" in BITCOIN_SCHEMA["timestamp"].dtype
    table = schema_table()
    assert all(f"`{c}`" in table for c in BITCOIN_SCHEMA)


def test_load_bitcoin_csv_features_labels_time(tmp_path):
    ds = load_bitcoin(_write_csv(tmp_path, _frame()))
    assert ds.name == "bitcoin"
    assert ds.X.shape == (5, 7) and ds.feature_names == FEATURE_NAMES
    assert ds.feature_names == ("log1p_n_inputs", "log1p_n_outputs", "log1p_volume_btc",
                                "hour_sin", "hour_cos", "weekday_sin", "weekday_cos")
    assert ds.numeric_mask.tolist() == [True, True, True, False, False, False, False]
    assert ds.class_names == ENTITY_LABELS
    assert ds.y.tolist() == [0, 1, 3, 2, 0]
    assert ds.test_mask is None
    assert ds.time_unit == "days since 2012-01-01"
    expected_time = [1.25, 6.75, (pd.Timestamp("2013-06-01") - pd.Timestamp("2012-01-01")).days,
                     (pd.Timestamp("2018-05-31") - pd.Timestamp("2012-01-01")).days + 12.5 / 24,
                     (pd.Timestamp("2014-02-02") - pd.Timestamp("2012-01-01")).days + 22 / 24]
    np.testing.assert_allclose(ds.time, expected_time, atol=1e-9)
    np.testing.assert_allclose(ds.X[:, 0], np.log1p([1, 3, 1, 2, 7]))
    np.testing.assert_allclose(ds.X[:, 1], np.log1p([2, 1, 40, 2, 3]))
    np.testing.assert_allclose(ds.X[:, 2], np.log1p([0.5, 0.0, 12.25, 0.001, 1.0]))
    # row 0: 06:00 Monday -> hour angle pi/2, weekday angle 0
    np.testing.assert_allclose(ds.X[0, 3:], [1.0, 0.0, 0.0, 1.0], atol=1e-12)
    # row 1: 18:00 Saturday (d = 5)
    np.testing.assert_allclose(
        ds.X[1, 3:], [-1.0, 0.0, np.sin(2 * np.pi * 5 / 7), np.cos(2 * np.pi * 5 / 7)],
        atol=1e-12,
    )
    # row 4: 22:00 UTC on Sunday (d = 6) after converting the +02:00 offset
    np.testing.assert_allclose(
        ds.X[4, 3:],
        [np.sin(2 * np.pi * 22 / 24), np.cos(2 * np.pi * 22 / 24),
         np.sin(2 * np.pi * 6 / 7), np.cos(2 * np.pi * 6 / 7)],
        atol=1e-12,
    )
    assert np.all(np.abs(ds.X[:, 3:]) <= 1.0)
    assert "schema" in ds.description.lower() and "log1p" in ds.description
    assert not is_synthetic(ds)


def test_load_bitcoin_parquet_and_unix_seconds_agree_with_csv(tmp_path):
    frame = _frame()
    csv = load_bitcoin(_write_csv(tmp_path, frame))
    as_datetime = frame.assign(
        timestamp=pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    )
    pq_path = tmp_path / "tx.parquet"
    as_datetime.to_parquet(pq_path, index=False)
    pq = load_bitcoin(pq_path)
    seconds = (as_datetime["timestamp"] - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    unix = load_bitcoin(_write_csv(tmp_path, frame.assign(timestamp=seconds.astype(np.int64)),
                                   "unix.csv"))
    for other in (pq, unix):
        np.testing.assert_allclose(other.X, csv.X, atol=1e-12)
        np.testing.assert_array_equal(other.y, csv.y)
        np.testing.assert_allclose(other.time, csv.time, atol=1e-9)
    # read_bitcoin_frame: validated, normalised, schema columns only
    extra = frame.assign(txid=range(5), entity=["Exchange", "service ", "Mining pool",
                                                "gambling", "EXCHANGE"])
    got = read_bitcoin_frame(_write_csv(tmp_path, extra, "extra.csv"))
    assert list(got.columns) == list(BITCOIN_SCHEMA)
    assert got["entity"].tolist() == ["exchange", "service", "mining_pool", "gambling",
                                      "exchange"]
    assert str(got["timestamp"].dt.tz) == "UTC"
    assert got["n_inputs"].dtype == np.int64 and got["volume_btc"].dtype == np.float64


def _schema_error(tmp_path, frame, name="bad.csv") -> str:
    with pytest.raises(BitcoinSchemaError) as info:
        load_bitcoin(_write_csv(tmp_path, frame, name))
    assert isinstance(info.value, ValueError)
    return str(info.value)


def test_load_bitcoin_missing_column(tmp_path):
    msg = _schema_error(tmp_path, _frame().drop(columns=["volume_btc"]))
    assert "missing column(s) ['volume_btc']" in msg
    assert "bad.csv" in msg


def test_load_bitcoin_unparsable_timestamp(tmp_path):
    frame = _frame()
    frame.loc[2, "timestamp"] = "yesterday"
    frame.loc[4, "timestamp"] = "2014-13-45"
    msg = _schema_error(tmp_path, frame)
    assert "'timestamp'" in msg and "unparsable" in msg
    assert "row(s) 2, 4" in msg and "'yesterday'" in msg
    assert "ISO-8601" in msg and "unix seconds" in msg


def test_load_bitcoin_timestamp_in_milliseconds_is_out_of_range(tmp_path):
    frame = _frame().assign(timestamp=[1_400_000_000_000] + [1_400_000_000] * 4)
    msg = _schema_error(tmp_path, frame)
    assert "'timestamp'" in msg and "outside" in msg and "milliseconds" in msg
    assert "row(s) 0" in msg


def test_load_bitcoin_negative_volume(tmp_path):
    frame = _frame()
    frame.loc[[1, 3], "volume_btc"] = [-0.5, -2.0]
    msg = _schema_error(tmp_path, frame)
    assert "'volume_btc'" in msg and "negative" in msg
    assert "2 row(s)" in msg and "row(s) 1, 3" in msg and "-0.5" in msg


def test_load_bitcoin_unknown_entity_label(tmp_path):
    frame = _frame()
    frame.loc[0, "entity"] = "casino"
    frame.loc[3, "entity"] = "darknet"
    msg = _schema_error(tmp_path, frame)
    assert "'entity'" in msg and "'casino'" in msg and "'darknet'" in msg
    assert "row(s) 0, 3" in msg
    assert "allowed labels: ['exchange', 'service', 'gambling', 'mining_pool']" in msg


def test_load_bitcoin_counts_and_several_problems_at_once(tmp_path):
    frame = _frame()
    frame["n_inputs"] = frame["n_inputs"].astype(float)
    frame.loc[0, "n_inputs"] = 0
    frame.loc[1, "n_inputs"] = 1.5
    frame.loc[2, "entity"] = "casino"
    msg = _schema_error(tmp_path, frame)
    assert "'n_inputs'" in msg and "below 1" in msg and "non-integer" in msg
    assert "'entity'" in msg
    with pytest.raises(BitcoinSchemaError) as info:
        load_bitcoin(_write_csv(tmp_path, frame, "again.csv"))
    assert len(info.value.problems) == 3


def test_load_bitcoin_bad_path_and_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_bitcoin(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=r"\.parquet"):
        load_bitcoin(tmp_path / "tx.xlsx")


# --------------------------------------------------------------------------------------
# Simulator
# --------------------------------------------------------------------------------------


def test_simulator_is_deterministic_valid_and_marked_synthetic(tmp_path):
    a = simulate_transactions(tmp_path / "a.csv", n_rows=3000, seed=7)
    b = simulate_transactions(tmp_path / "b.csv", n_rows=3000, seed=7)
    c = simulate_transactions(tmp_path / "c.csv", n_rows=3000, seed=8)
    assert a == tmp_path / "a.csv"
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    frame = read_bitcoin_frame(a)  # passes the schema validation
    assert len(frame) == 3000
    assert frame["timestamp"].is_monotonic_increasing
    assert frame["timestamp"].min() >= pd.Timestamp("2012-01-01", tz="UTC")
    assert frame["timestamp"].max() < pd.Timestamp("2018-06-01", tz="UTC")
    shares = frame["entity"].value_counts(normalize=True)
    assert set(shares.index) == set(ENTITY_LABELS)
    assert shares.max() < 0.45 and shares.min() > 0.08  # balanced-ish...
    assert shares.max() - shares.min() > 0.1  # ...but not equal

    meta = json.loads((tmp_path / "a.csv.meta.json").read_text())
    assert meta["synthetic"] is True
    assert meta["generator"] == "resnet_stability.data.simulate"
    assert (meta["seed"], meta["drift"], meta["n_rows"]) == (7, 1.0, 3000)

    ds = load_bitcoin(a)
    assert is_synthetic(ds) and ds.description.startswith("SYNTHETIC")
    assert "seed=7" in ds.description
    # without the sidecar the same rows are not flagged
    (tmp_path / "a.csv.meta.json").unlink()
    assert not is_synthetic(load_bitcoin(a))

    pq = simulate_transactions(tmp_path / "sub" / "a.parquet", n_rows=3000, seed=7)
    ds_pq = load_bitcoin(pq)
    assert is_synthetic(ds_pq)
    np.testing.assert_allclose(ds_pq.X, ds.X, atol=1e-12)
    np.testing.assert_array_equal(ds_pq.y, ds.y)
    np.testing.assert_allclose(ds_pq.time, ds.time, atol=1e-9)

    with pytest.raises(ValueError, match="suffix"):
        simulate_transactions(tmp_path / "a.json")
    with pytest.raises(ValueError, match="drift"):
        simulate_transactions(tmp_path / "d.csv", drift=-1)
    with pytest.raises(ValueError, match="n_rows"):
        simulate_transactions(tmp_path / "d.csv", n_rows=0)


def _first_last_year_shift(ds: Dataset, label: str, feature: str) -> float:
    k = ds.class_names.index(label)
    j = ds.feature_names.index(feature)
    first = (ds.y == k) & (ds.time < 365)
    last = (ds.y == k) & (ds.time >= ds.time.max() - 365)
    return float(ds.X[last, j].mean() - ds.X[first, j].mean())


def test_simulator_drifts_only_when_asked(tmp_path):
    """Class-conditional means of first vs last year (20000 rows, about 1000 rows per
    class-year): with drift=1 exchanges' log1p volume rises by > 0.8 and gambling's
    log1p n_outputs by > 0.5; with drift=0 both move by < 0.1 (about 4 standard errors
    of the difference)."""
    drifting = load_bitcoin(simulate_transactions(tmp_path / "d1.parquet", drift=1.0))
    stationary = load_bitcoin(simulate_transactions(tmp_path / "d0.parquet", drift=0.0))
    assert _first_last_year_shift(drifting, "exchange", "log1p_volume_btc") > 0.8
    assert _first_last_year_shift(drifting, "gambling", "log1p_n_outputs") > 0.5
    assert abs(_first_last_year_shift(stationary, "exchange", "log1p_volume_btc")) < 0.1
    assert abs(_first_last_year_shift(stationary, "gambling", "log1p_n_outputs")) < 0.1


def test_model_trained_early_degrades_under_drift(tmp_path):
    """Logistic regression trained on the first year: with drift=1 the last window's
    accuracy is > 0.1 below the first window's; with drift=0 within 0.05."""
    from sklearn.linear_model import LogisticRegression

    def accuracies(drift):
        ds = load_bitcoin(simulate_transactions(tmp_path / f"m{drift}.parquet", drift=drift))
        split = dataset_time_windows(ds)
        clf = LogisticRegression(max_iter=500).fit(ds.X[split.train_idx],
                                                   ds.y[split.train_idx])
        return [clf.score(ds.X[w.idx], ds.y[w.idx]) for w in split.windows]

    drifting, stationary = accuracies(1.0), accuracies(0.0)
    assert drifting[0] - drifting[-1] > 0.1
    assert abs(stationary[0] - stationary[-1]) < 0.05


# --------------------------------------------------------------------------------------
# Time windows
# --------------------------------------------------------------------------------------


def test_time_windows_train_before_test_contiguous_disjoint():
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 1000, size=2000)
    split = time_windows(t, 365, 182, start=0, unit="days")
    assert np.all(t[split.train_idx] < 365) and np.all(t[split.train_idx] >= 0)
    test_rows = np.concatenate([w.idx for w in split.windows])
    assert t[split.train_idx].max() < t[test_rows].min()
    assert [w.index for w in split.windows] == [1, 2, 3, 4]
    for a, b in zip(split.windows, split.windows[1:]):
        assert a.end == b.start
        assert t[a.idx].max() < t[b.idx].min()
    for w in split.windows:
        assert np.all((t[w.idx] >= w.start) & (t[w.idx] < w.end))
        assert np.all(np.diff(w.idx) > 0)
    everything = np.concatenate([split.train_idx, test_rows])
    assert len(np.unique(everything)) == len(everything) == len(t)  # disjoint, complete
    assert split.windows[0].start == 365 and split.windows[-1].end == 365 + 4 * 182
    assert split.describe() == (
        "train: days 0–365; test windows of 182 days: 1: 365–547, 2: 547–729, "
        "3: 729–911, 4: 911–1093"
    )
    assert f"(n={split.train_idx.size})" in split.describe(counts=True)
    assert split.window(2) is split.windows[1]


def test_time_windows_skip_empty_windows_keep_numbering_and_start():
    t = np.array([0.0, 1, 2, 10.5, 11, 30, 31])
    split = time_windows(t, 10, 5)  # start = floor(min) = 0
    assert split.train_idx.tolist() == [0, 1, 2]
    assert [(w.index, w.start, w.end, w.idx.tolist()) for w in split.windows] == [
        (1, 10.0, 15.0, [3, 4]),
        (5, 30.0, 35.0, [5, 6]),
    ]
    with pytest.raises(KeyError, match="2"):
        split.window(2)
    # rows before start belong to no split
    later = time_windows(t, 10, 5, start=1)
    assert later.train_idx.tolist() == [1, 2, 3]
    assert 0 not in np.concatenate([w.idx for w in later.windows])


def test_time_windows_elliptic_protocol():
    steps = np.repeat(np.arange(1, 50), 3).astype(float)
    split = time_windows(steps, *DEFAULT_WINDOWS["elliptic"], unit="time steps")
    assert set(steps[split.train_idx]) == set(range(1, 35))
    assert [sorted(set(steps[w.idx])) for w in split.windows] == [
        list(range(35, 40)), list(range(40, 45)), list(range(45, 50))]
    assert split.describe().startswith("train: time steps 1–35; test windows of 5 time steps")


def test_time_windows_errors_name_values_and_range():
    t = np.linspace(0, 100, 50)
    for bad in (0, -5, float("nan"), True, "10"):
        with pytest.raises(ValueError, match="train_span"):
            time_windows(t, bad, 10)
        with pytest.raises(ValueError, match="test_span"):
            time_windows(t, 10, bad)
    with pytest.raises(ValueError, match=r"no training rows.*start=200.*\[0, 100\]"):
        time_windows(t, 10, 10, start=200)
    with pytest.raises(ValueError, match=r"no test rows.*train_span=500.*\[0, 100\]"):
        time_windows(t, 500, 10)
    with pytest.raises(ValueError, match="empty"):
        time_windows(np.array([]), 1, 1)
    with pytest.raises(ValueError, match="NaN"):
        time_windows(np.array([0.0, np.nan]), 1, 1)


def test_default_windows_and_dataset_helper(tmp_path):
    assert set(DEFAULT_WINDOWS) == {"bitcoin", "elliptic", "bitcoinheist"}
    assert DEFAULT_WINDOWS["elliptic"] == (34.0, 5.0)
    ds = load_bitcoin(simulate_transactions(tmp_path / "w.csv", n_rows=2000))
    split = dataset_time_windows(ds)
    assert split.describe().startswith("train: days 0–365; test windows of 182 days: 1: 365–547")
    assert len(split.windows) == 11
    no_time = Dataset("x", np.zeros((2, 1)), np.zeros(2), ("a",), ("c",), np.ones(1, bool))
    with pytest.raises(ValueError, match="no time"):
        dataset_time_windows(no_time)


# --------------------------------------------------------------------------------------
# Elliptic (Kaggle layout)
# --------------------------------------------------------------------------------------


def _elliptic_folder(tmp_path, with_classes=True):
    """12 transactions over time steps 1..4 in the Kaggle layout: features CSV without a
    header (txId, time step, 165 features), classes CSV with header txId,class."""
    folder = tmp_path / "elliptic_bitcoin_dataset"
    folder.mkdir()
    rng = np.random.default_rng(1)
    tx = np.array([230425980, 5530458, 232022460, 232438397, 230460314, 230459870,
                   230333930, 230595899, 232013274, 232029206, 232344069, 27553029])
    steps = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4])
    feats = rng.normal(size=(12, 165)).round(6)
    lines = [",".join([str(a), str(s)] + [repr(float(v)) for v in row])
             for a, s, row in zip(tx, steps, feats)]
    (folder / "elliptic_txs_features.csv").write_text("\n".join(lines) + "\n")
    classes = ["unknown", "2", "unknown", "1", "2", "2", "unknown", "1", "2", "2",
               "unknown", "1"]
    # the classes file lists the txIds in another order than the features file
    order = np.arange(12)[::-1]
    text = "txId,class\n" + "".join(f"{tx[i]},{classes[i]}\n" for i in order)
    if with_classes:
        (folder / "elliptic_txs_classes.csv").write_text(text)
    return folder, tx, steps, feats, classes


def test_load_elliptic_kaggle_layout(tmp_path):
    folder, tx, steps, feats, classes = _elliptic_folder(tmp_path)
    ds = load_elliptic(folder)
    keep = np.array([c != "unknown" for c in classes])
    assert ds.name == "elliptic"
    assert ds.X.shape == (8, 165)
    np.testing.assert_allclose(ds.X, feats[keep])
    assert ds.y.tolist() == [0, 1, 0, 0, 1, 0, 0, 1]  # "2" licit -> 0, "1" illicit -> 1
    assert ds.class_names == ("licit", "illicit")
    assert ds.time.tolist() == steps[keep].tolist() and ds.time_unit == "time step"
    assert ds.numeric_mask.all()
    assert ds.feature_names[0] == "local_1" and ds.feature_names[-1] == "agg_72"
    assert "4 with class 'unknown' DROPPED" in ds.description
    via_registry = load_dataset("elliptic", path=folder)
    np.testing.assert_array_equal(via_registry.X, ds.X)


def test_load_elliptic_tolerates_a_header_line(tmp_path):
    folder, tx, steps, feats, classes = _elliptic_folder(tmp_path)
    path = folder / "elliptic_txs_features.csv"
    header = ",".join(["txId", "Time step"] + [f"f{i}" for i in range(165)])
    path.write_text(header + "\n" + path.read_text())
    ds = load_elliptic(folder)
    assert ds.X.shape == (8, 165) and ds.feature_names[:2] == ("f0", "f1")


def test_load_elliptic_errors(tmp_path):
    folder, *_ = _elliptic_folder(tmp_path, with_classes=False)
    with pytest.raises(FileNotFoundError, match="elliptic_txs_classes.csv") as info:
        load_elliptic(folder)
    assert "elliptic_txs_edgelist.csv is not needed" in str(info.value)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_elliptic(tmp_path / "missing")
    (folder / "elliptic_txs_classes.csv").write_text("txId,class\n230425980,3\n")
    with pytest.raises(ValueError, match=r"\['3'\].*'unknown'"):
        load_elliptic(folder)


# --------------------------------------------------------------------------------------
# BitcoinHeist (UCI 526)
# --------------------------------------------------------------------------------------

HEIST_HEADER = "address,year,day,length,weight,count,looped,neighbors,income,label"
HEIST_ROWS = [
    "111K8kZAEnJg245r2cM6y9zgJGHZtJPy6,2017,11,18,0.008333333333333333,1,0,2,100050000.0,"
    "princetonCerber",
    "1123pJv8jzeFQaCV4w644pzQJzVWay2zcA,2016,132,44,0.000244140625,1,0,1,100000000.0,"
    "princetonLocky",
    "112536im7hy6wtKbpH1qYDWtTyMRAcA2p7,2016,246,0,1.0,1,0,2,200000000.0,white",
    "1126eDRw2wqSkWosjTCre8cjjQW8sSeWH7,2011,1,0,0.5,1,0,1,71200000.0,white",
    "1129TSjKtx65E35GiUo4AYVeyo48twbrGX,2012,366,144,0.5,1,0,1,200000000.0,white",
    "112AmFATxzhuSpvtz1hfpa3Zrw3BG276pc,2018,330,2,0.0703125,2,0,1,314000000.0,"
    "paduaCryptoWall",
]
HEIST_FEATURES = ["length", "weight", "count", "looped", "neighbors", "income"]


def _heist_csv(tmp_path):
    path = tmp_path / "BitcoinHeistData.csv"
    path.write_text(HEIST_HEADER + "\n" + "\n".join(HEIST_ROWS) + "\n")
    return path


def _check_heist(ds):
    raw = pd.read_csv(io.StringIO(HEIST_HEADER + "\n" + "\n".join(HEIST_ROWS)))
    assert ds.name == "bitcoinheist"
    assert ds.X.shape == (6, 6)
    assert ds.feature_names == tuple(f"log1p_{c}" for c in HEIST_FEATURES)
    np.testing.assert_allclose(ds.X, np.log1p(raw[HEIST_FEATURES].to_numpy(float)))
    assert ds.y.tolist() == [1, 1, 0, 0, 0, 1]
    assert ds.class_names == ("white", "ransomware")
    expected = [
        (pd.Timestamp(f"{y}-01-01") - pd.Timestamp("2009-01-01")).days + d - 1
        for y, d in zip(raw["year"], raw["day"])
    ]
    assert ds.time.tolist() == expected
    assert ds.time[3] == 730  # 2011-01-01
    assert ds.time_unit == "days since 2009-01-01"
    assert ds.numeric_mask.all()


def test_load_bitcoinheist_local_csv(tmp_path):
    path = _heist_csv(tmp_path)
    _check_heist(load_bitcoinheist(path))
    _check_heist(load_dataset("bitcoinheist", path=path))
    with pytest.raises(ValueError, match="path=.*source='uci'"):
        load_bitcoinheist()
    with pytest.raises(ValueError, match="'web'"):
        load_bitcoinheist(path, source="web")


def test_bitcoinheist_day_of_year_validation():
    assert bitcoinheist_time([2012, 2013], [366, 365]).tolist() == [1460.0, 1825.0]
    with pytest.raises(ValueError, match="day of the year"):
        bitcoinheist_time([2013], [366])
    with pytest.raises(ValueError, match="day of the year"):
        bitcoinheist_time([2013], [0])


def test_load_bitcoinheist_via_ucimlrepo_stand_in(monkeypatch, tmp_path):
    calls = []

    def fetch(id):  # noqa: A002 - same keyword as ucimlrepo
        calls.append(id)
        raw = pd.read_csv(_heist_csv(tmp_path))
        # ucimlrepo: ID column left out of .features, target in .targets
        data = types.SimpleNamespace(features=raw[["year", "day"] + HEIST_FEATURES],
                                     targets=raw[["label"]])
        return types.SimpleNamespace(data=data, metadata={}, variables=None)

    monkeypatch.setattr(online, "fetch_ucirepo", fetch)
    cache = tmp_path / "cache"
    _check_heist(load_bitcoinheist(source="uci", cache_dir=cache))
    assert calls == [526] and (cache / "uci" / "526.csv").is_file()
    _check_heist(load_dataset("bitcoinheist", source="uci", cache_dir=cache))
    assert calls == [526]  # second load read the cache
    load_bitcoinheist(source="uci", cache_dir=cache, refresh=True)
    assert calls == [526, 526]


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------


def test_registry_entries(tmp_path):
    names = list_datasets()
    assert names[:5] == ["wine", "abalone", "absenteeism", "autism", "adult"]
    assert {"bitcoin", "elliptic", "bitcoinheist"} <= set(names)
    with pytest.raises(ValueError, match="pass path=") as info:
        load_dataset("bitcoin")
    assert "simulate_transactions" in str(info.value)
    with pytest.raises(ValueError, match="pass path="):
        load_dataset("elliptic")
    with pytest.raises(ValueError, match="'uci'"):
        load_dataset("bitcoin", source="uci", path=tmp_path / "x.csv")
    path = simulate_transactions(tmp_path / "r.csv", n_rows=500)
    ds = load_dataset("bitcoin", path=path)
    assert ds.n_samples == 500 and is_synthetic(ds)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streamed_loading_in_chunks_gives_the_same_dataset(tmp_path, suffix):
    path = simulate_transactions(tmp_path / f"tx{suffix}", n_rows=503, seed=4)
    whole = load_bitcoin(path, chunk_rows=10_000)
    chunked = load_bitcoin(path, chunk_rows=50)  # 11 chunks, the last one short
    np.testing.assert_array_equal(chunked.X, whole.X)
    np.testing.assert_array_equal(chunked.y, whole.y)
    np.testing.assert_array_equal(chunked.time, whole.time)
    assert chunked.description == whole.description


def test_schema_error_in_a_later_chunk_names_where_the_chunk_starts(tmp_path):
    frame = simulate_frame(n_rows=120, seed=2)
    frame.loc[105, "entity"] = "casino"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(BitcoinSchemaError, match=r"casino.*rows counted from file row 100"):
        load_bitcoin(path, chunk_rows=50)

"""Tests for resnet_stability.data: loaders, preprocessing, splits, checksums, ucimlrepo path.

Reference numbers (class counts etc.) come from data/PROVENANCE.md or are recomputed
here from the raw files with plain pandas, independently of the loaders.
"""

from __future__ import annotations

import dataclasses
import pathlib
import shutil
import types

import numpy as np
import pandas as pd
import pytest

import resnet_stability.data.online as online
from resnet_stability.data import (
    DATASETS,
    DataFileError,
    Dataset,
    EXPECTED_SHA256,
    autism_result_findings,
    data_root,
    fit_standardizer,
    list_datasets,
    load_dataset,
    make_synthetic,
    split_indices,
)
from resnet_stability.data.arff import read_arff
from resnet_stability.data.files import sha256_file
from resnet_stability.data.uci import raw_frame

UCI_NAMES = ["wine", "abalone", "absenteeism", "autism", "adult"]
REPO_DATA = pathlib.Path(__file__).resolve().parents[1] / "data" / "uci"

# name -> (rows, features after encoding, class counts)
EXPECTED = {
    "wine": (178, 13, [59, 71, 48]),
    "abalone": (4177, 10, None),  # counts recomputed from the raw rings below
    "absenteeism": (740, 39, [44, 652, 32, 12]),
    "autism": (704, 104, [515, 189]),
    "adult": (48842, 108, [24720 + 12435, 7841 + 3846]),
}


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch, tmp_path):
    """Tests see the repository's data/ and never the user's real cache."""
    monkeypatch.delenv("RESNET_STABILITY_DATA_DIR", raising=False)
    monkeypatch.setenv("RESNET_STABILITY_CACHE", str(tmp_path / "default_cache"))


_CACHE: dict[str, Dataset] = {}


def _load(name: str) -> Dataset:
    """Local datasets, loaded once per test session (they are not modified)."""
    if name not in _CACHE:
        _CACHE[name] = load_dataset(name)
    return _CACHE[name]


# --------------------------------------------------------------------------------------
# Shapes, dtypes, classes, no NaN
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", UCI_NAMES)
def test_shapes_dtypes_and_no_nan(name):
    ds = _load(name)
    rows, d, counts = EXPECTED[name]
    assert ds.name == name
    assert ds.X.shape == (rows, d) and ds.n_features == d
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.int64
    assert ds.y.shape == (rows,)
    assert ds.numeric_mask.dtype == bool and ds.numeric_mask.shape == (d,)
    assert len(ds.feature_names) == d and len(set(ds.feature_names)) == d
    assert ds.n_classes == len(ds.class_names)
    assert set(np.unique(ds.y)) == set(range(ds.n_classes))
    assert not np.isnan(ds.X).any() and np.isfinite(ds.X).all()
    if counts is not None:
        assert np.bincount(ds.y).tolist() == counts
    assert isinstance(ds.description, str) and "UCI id" in ds.description
    # Non-numeric columns are one-hot or 0/1 flags.
    other = ds.X[:, ~ds.numeric_mask]
    assert np.isin(other, (0.0, 1.0)).all()


@pytest.mark.parametrize("name", UCI_NAMES)
def test_one_hot_groups_sum_to_one(name):
    ds = _load(name)
    groups: dict[str, list[int]] = {}
    for j, f in enumerate(ds.feature_names):
        if "=" in f:
            groups.setdefault(f.split("=", 1)[0], []).append(j)
            assert not ds.numeric_mask[j]
    for attr, cols in groups.items():
        assert np.all(ds.X[:, cols].sum(axis=1) == 1.0), attr


def test_wine_labels_match_raw_file():
    raw = pd.read_csv(REPO_DATA / "wine" / "wine.data", header=None)
    ds = _load("wine")
    np.testing.assert_array_equal(ds.y, raw[0].to_numpy() - 1)
    np.testing.assert_array_equal(ds.X, raw.iloc[:, 1:].to_numpy(dtype=float))
    assert ds.numeric_mask.all() and ds.test_mask is None


def test_abalone_bins_from_raw_rings():
    raw = pd.read_csv(REPO_DATA / "abalone" / "abalone.data", header=None)
    rings = raw[8].to_numpy()
    expected = np.where(rings <= 8, 0, np.where(rings <= 10, 1, 2))
    assert ((rings >= 1) & (rings <= 29)).all()
    ds = _load("abalone")
    np.testing.assert_array_equal(ds.y, expected)
    assert np.bincount(ds.y).tolist() == [
        int(((rings >= 1) & (rings <= 8)).sum()),
        int(((rings >= 9) & (rings <= 10)).sum()),
        int(((rings >= 11) & (rings <= 29)).sum()),
    ]
    assert ds.feature_names[:3] == ("Sex=F", "Sex=I", "Sex=M")
    assert ds.X[:, :3].sum(axis=0).tolist() == [1307, 1342, 1528]  # PROVENANCE.md
    assert "Rings" not in ds.feature_names
    assert ds.numeric_mask.sum() == 7


def test_absenteeism_bins_and_leaky_columns():
    raw = pd.read_csv(REPO_DATA / "absenteeism" / "Absenteeism_at_work.csv", sep=";")
    hours = raw["Absenteeism time in hours"].to_numpy()
    expected = np.select([hours == 0, hours <= 16, hours <= 56], [0, 1, 2], 3)
    ds = _load("absenteeism")
    np.testing.assert_array_equal(ds.y, expected)
    # The findings the docstring states: reason 0 and disciplinary failure give class 0 away.
    reason0 = raw["Reason for absence"] == 0
    assert reason0.sum() == 43 and (hours[reason0] == 0).all()
    assert (hours == 0).sum() == 44 and (reason0 & (hours == 0)).sum() == 43
    disc = raw["Disciplinary failure"] == 1
    assert disc.sum() == 40 and (hours[disc] == 0).all()
    names = ds.feature_names
    assert not any(n.startswith(("ID", "Reason for absence", "Disciplinary")) for n in names)
    assert not any(n.startswith("Absenteeism") for n in names)
    assert "Month of absence=0" in names and "Education=4" in names
    kept = load_dataset("absenteeism", drop_leaky=False)
    assert kept.n_features == 68
    assert "Disciplinary failure" in kept.feature_names
    assert sum(n.startswith("Reason for absence=") for n in kept.feature_names) == 28
    np.testing.assert_array_equal(kept.y, ds.y)


def test_autism_result_findings_and_columns():
    raw = raw_frame("autism")
    findings = autism_result_findings(raw)
    assert findings == {"result_is_score_sum": True, "label_is_result_ge_7": True}
    # The check can fail: break one row.
    broken = raw.copy()
    broken.loc[0, "result"] = str(int(broken.loc[0, "result"]) + 1)
    assert autism_result_findings(broken)["result_is_score_sum"] is False
    ds = _load("autism")
    names = ds.feature_names
    assert "result" not in names and not any(n.startswith("age_desc") for n in names)
    assert "ethnicity=others" not in names and "ethnicity=Others" in names
    assert "ethnicity=Middle Eastern" in names  # trailing space stripped
    assert "ethnicity=missing" in names and "relation=missing" in names
    assert ds.X[:, names.index("ethnicity=missing")].sum() == 95
    assert ds.X[:, names.index("age_missing")].sum() == 2
    assert ds.numeric_mask.tolist().count(True) == 1 and ds.numeric_mask[names.index("age")]
    # Label is sum(A1..A10) >= 7 on the encoded data too.
    scores = ds.X[:, [names.index(f"A{i}_Score") for i in range(1, 11)]].sum(axis=1)
    np.testing.assert_array_equal(ds.y, (scores >= 7).astype(np.int64))


def test_adult_official_split():
    ds = _load("adult")
    tm = ds.test_mask
    assert tm is not None and tm.dtype == bool
    assert tm.sum() == 16281 and (~tm).sum() == 32561
    assert not tm[:32561].any() and tm[32561:].all()
    assert np.bincount(ds.y[~tm]).tolist() == [24720, 7841]
    assert np.bincount(ds.y[tm]).tolist() == [12435, 3846]
    names = ds.feature_names
    assert "fnlwgt" in names and ds.numeric_mask.sum() == 6
    for attr, n_missing in [("workclass", 1836 + 963), ("occupation", 1843 + 966),
                            ("native-country", 583 + 274)]:
        assert ds.X[:, names.index(f"{attr}=missing")].sum() == n_missing
    assert "sex=Male" in names and "sex=Female" in names
    train, test = split_indices(ds.y, 0.5, seed=1, test_mask=tm)
    assert len(test) == 16281


# --------------------------------------------------------------------------------------
# split_indices and fit_standardizer
# --------------------------------------------------------------------------------------


def test_split_indices_deterministic_stratified_disjoint():
    y = _load("absenteeism").y
    n = len(y)
    tr1, te1 = split_indices(y, 0.25, seed=7)
    tr2, te2 = split_indices(y, 0.25, seed=7)
    tr3, te3 = split_indices(y, 0.25, seed=8)
    np.testing.assert_array_equal(tr1, tr2)
    np.testing.assert_array_equal(te1, te2)
    assert not np.array_equal(te1, te3)
    for tr, te in [(tr1, te1), (tr3, te3)]:
        assert tr.dtype == np.int64 and te.dtype == np.int64
        assert np.all(np.diff(tr) > 0) and np.all(np.diff(te) > 0)
        assert np.intersect1d(tr, te).size == 0
        np.testing.assert_array_equal(np.union1d(tr, te), np.arange(n))
        assert len(te) == int(np.ceil(0.25 * n))
        # Stratified: each class's test count within one row of its share.
        for k, count in enumerate(np.bincount(y)):
            assert abs(np.sum(y[te] == k) - 0.25 * count) <= 1.0


def test_split_indices_respects_test_mask_and_validates():
    y = np.array([0, 1] * 10)
    mask = np.zeros(20, dtype=bool)
    mask[[1, 4, 5, 19]] = True
    for seed in (0, 1, 2):
        tr, te = split_indices(y, 0.5, seed=seed, test_mask=mask)
        assert te.tolist() == [1, 4, 5, 19]
        assert tr.tolist() == [i for i in range(20) if i not in (1, 4, 5, 19)]
    with pytest.raises(ValueError, match="test_mask"):
        split_indices(y, 0.5, seed=0, test_mask=mask[:-1])
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="test_size"):
            split_indices(y, bad, seed=0)


def test_fit_standardizer_uses_training_rows_only():
    ds = _load("abalone")
    tr, te = split_indices(ds.y, 0.2, seed=3)
    mean, scale = fit_standardizer(ds.X[tr], ds.numeric_mask)
    X_poisoned = ds.X.copy()
    X_poisoned[te] = 1e9
    mean2, scale2 = fit_standardizer(X_poisoned[tr], ds.numeric_mask)
    np.testing.assert_array_equal(mean, mean2)
    np.testing.assert_array_equal(scale, scale2)
    # Fitting on all rows (train + poisoned test) would give something else.
    mean_all, _ = fit_standardizer(X_poisoned, ds.numeric_mask)
    assert not np.allclose(mean_all, mean)

    Z = (ds.X[tr] - mean) / scale
    num = ds.numeric_mask
    # Stated tolerance: 1e-10 absolute on mean and standard deviation (ddof=0).
    np.testing.assert_allclose(Z[:, num].mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(Z[:, num].std(axis=0), 1.0, atol=1e-10)
    np.testing.assert_array_equal(mean[~num], 0.0)
    np.testing.assert_array_equal(scale[~num], 1.0)
    np.testing.assert_array_equal(Z[:, ~num], ds.X[tr][:, ~num])


def test_fit_standardizer_constant_column_and_validation():
    X = np.array([[0.1, 1.0, 5.0], [0.1, 3.0, 0.0], [0.1, 5.0, 1.0]])
    mask = np.array([True, True, False])
    mean, scale = fit_standardizer(X, mask)
    assert scale[0] == 1.0 and mean[0] == pytest.approx(0.1)
    assert mean[1] == pytest.approx(3.0) and scale[1] == pytest.approx(np.std([1, 3, 5]))
    assert (mean[2], scale[2]) == (0.0, 1.0)
    with pytest.raises(ValueError, match="numeric_mask"):
        fit_standardizer(X, mask[:2])


# --------------------------------------------------------------------------------------
# Files, checksums, data_root
# --------------------------------------------------------------------------------------


def test_data_root_default_and_env(monkeypatch, tmp_path):
    root = data_root()
    assert (root / "uci" / "wine" / "wine.data").is_file()
    monkeypatch.setenv("RESNET_STABILITY_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path


def test_shipped_files_match_recorded_hashes():
    for rel, digest in EXPECTED_SHA256.items():
        assert sha256_file(REPO_DATA / rel) == digest, rel
    # The code table and data/PROVENANCE.md agree.
    provenance = (REPO_DATA.parent / "PROVENANCE.md").read_text()
    for rel, digest in EXPECTED_SHA256.items():
        assert f"`{rel}`" in provenance and digest in provenance, rel


def test_checksum_mismatch_names_the_file(monkeypatch, tmp_path):
    target = tmp_path / "uci" / "wine" / "wine.data"
    target.parent.mkdir(parents=True)
    data = bytearray((REPO_DATA / "wine" / "wine.data").read_bytes())
    data[10] = ord("7") if data[10] != ord("7") else ord("8")
    target.write_bytes(bytes(data))
    monkeypatch.setenv("RESNET_STABILITY_DATA_DIR", str(tmp_path))
    with pytest.raises(DataFileError) as info:
        load_dataset("wine")
    message = str(info.value)
    assert "wine/wine.data" in message
    assert EXPECTED_SHA256["wine/wine.data"] in message
    assert sha256_file(target) in message
    assert isinstance(info.value, ValueError)


def test_missing_file_names_the_file(monkeypatch, tmp_path):
    # Only the training file is present: adult.test is missing.
    (tmp_path / "uci" / "adult").mkdir(parents=True)
    shutil.copy(REPO_DATA / "adult" / "adult.data", tmp_path / "uci" / "adult")
    monkeypatch.setenv("RESNET_STABILITY_DATA_DIR", str(tmp_path))
    with pytest.raises(DataFileError, match="adult/adult.test") as info:
        load_dataset("adult")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DataFileError, match="autism_adult/Autism-Adult-Data.arff"):
        load_dataset("autism")


# --------------------------------------------------------------------------------------
# The ucimlrepo path, with a local stand-in for the network
# --------------------------------------------------------------------------------------


def _fake_result(features: pd.DataFrame, targets: pd.DataFrame):
    data = types.SimpleNamespace(
        features=features, targets=targets, original=pd.concat([features, targets], axis=1)
    )
    return types.SimpleNamespace(data=data, metadata={}, variables=None)


def _stand_in(uci_id: int):
    """What fetch_ucirepo(id=...) returns, rebuilt from the shipped files with the
    column names ucimlrepo uses (features/targets split by role, ID excluded)."""
    if uci_id == 109:
        cols = ["class", "Alcohol", "Malicacid", "Ash", "Alcalinity_of_ash", "Magnesium",
                "Total_phenols", "Flavanoids", "Nonflavanoid_phenols", "Proanthocyanins",
                "Color_intensity", "Hue", "0D280_0D315_of_diluted_wines", "Proline"]
        df = pd.read_csv(REPO_DATA / "wine" / "wine.data", header=None, names=cols)
        return _fake_result(df[cols[1:]], df[["class"]])
    if uci_id == 1:
        cols = ["Sex", "Length", "Diameter", "Height", "Whole_weight", "Shucked_weight",
                "Viscera_weight", "Shell_weight", "Rings"]
        df = pd.read_csv(REPO_DATA / "abalone" / "abalone.data", header=None, names=cols)
        return _fake_result(df[cols[:-1]], df[["Rings"]])
    if uci_id == 445:
        df = pd.read_csv(REPO_DATA / "absenteeism" / "Absenteeism_at_work.csv", sep=";")
        target = "Absenteeism time in hours"
        return _fake_result(df.drop(columns=["ID", target]), df[[target]])
    if uci_id == 426:
        df, _ = read_arff(REPO_DATA / "autism_adult" / "Autism-Adult-Data.arff")
        df = df.rename(columns={"jundice": "jaundice", "austim": "family_pdd",
                                "contry_of_res": "country_of_res", "Class/ASD": "class"})
        for c in [f"A{i}_Score" for i in range(1, 11)] + ["result"]:
            df[c] = df[c].astype(int)
        df = df.replace("?", np.nan)
        return _fake_result(df.drop(columns=["class"]), df[["class"]])
    if uci_id == 2:
        cols = ["age", "workclass", "fnlwgt", "education", "education-num",
                "marital-status", "occupation", "relationship", "race", "sex",
                "capital-gain", "capital-loss", "hours-per-week", "native-country",
                "income"]
        opts = dict(header=None, names=cols, skipinitialspace=True)
        train = pd.read_csv(REPO_DATA / "adult" / "adult.data", **opts)
        test = pd.read_csv(REPO_DATA / "adult" / "adult.test", skiprows=1, **opts)
        test = test.replace("?", np.nan)  # ucimlrepo mixes '?' and NaN
        df = pd.concat([train, test], ignore_index=True)
        return _fake_result(df[cols[:-1]], df[["income"]])
    raise AssertionError(f"unexpected UCI id {uci_id}")


@pytest.fixture
def fake_fetch(monkeypatch):
    calls: list[int] = []

    def fetch(id):  # noqa: A002
        calls.append(id)
        return _stand_in(id)

    monkeypatch.setattr(online, "fetch_ucirepo", fetch)
    return calls


@pytest.mark.parametrize("name", UCI_NAMES)
def test_uci_source_matches_local_and_caches(name, fake_fetch, tmp_path):
    cache = tmp_path / "cache"
    first = load_dataset(name, source="uci", cache_dir=cache)
    assert len(fake_fetch) == 1
    uci_id = {"wine": 109, "abalone": 1, "absenteeism": 445, "autism": 426, "adult": 2}[name]
    assert fake_fetch == [uci_id]
    assert (cache / "uci" / f"{uci_id}.csv").is_file()
    second = load_dataset(name, source="uci", cache_dir=cache)
    assert len(fake_fetch) == 1  # read from the cache, no fetch
    local = _load(name)
    for ds in (first, second):
        assert ds.feature_names == local.feature_names
        np.testing.assert_array_equal(ds.X, local.X)
        np.testing.assert_array_equal(ds.y, local.y)
        np.testing.assert_array_equal(ds.numeric_mask, local.numeric_mask)
        if local.test_mask is None:
            assert ds.test_mask is None
        else:
            np.testing.assert_array_equal(ds.test_mask, local.test_mask)


def test_uci_cache_env_and_refresh(fake_fetch, monkeypatch, tmp_path):
    monkeypatch.setenv("RESNET_STABILITY_CACHE", str(tmp_path / "envcache"))
    load_dataset("wine", source="uci")
    assert (tmp_path / "envcache" / "uci" / "109.csv").is_file()
    load_dataset("wine", source="uci")
    assert fake_fetch == [109]
    from resnet_stability.data.uci import load_wine

    load_wine(source="uci", refresh=True)
    assert fake_fetch == [109, 109]


# --------------------------------------------------------------------------------------
# Registry and bad names
# --------------------------------------------------------------------------------------


def test_registry():
    names = ["wine", "abalone", "absenteeism", "autism", "adult", "synthetic", "bitcoin", "elliptic", "bitcoinheist"]
    assert list_datasets() == names and list(DATASETS) == names
    assert all(callable(f) for f in DATASETS.values())


def test_unknown_names_raise_value_error():
    with pytest.raises(ValueError, match="no_such_set") as info:
        load_dataset("no_such_set")
    assert "wine" in str(info.value) and "adult" in str(info.value)
    with pytest.raises(ValueError, match="'web'") as info:
        load_dataset("wine", source="web")
    assert "local" in str(info.value) and "uci" in str(info.value)
    with pytest.raises(ValueError, match="'web'"):
        load_dataset("synthetic", source="web")
    with pytest.raises(ValueError, match="'squares'") as info:
        load_dataset("synthetic", kind="squares")
    assert "spirals" in str(info.value)


def test_dataset_is_frozen_and_validated():
    ds = _load("wine")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"
    with pytest.raises(ValueError, match="feature names"):
        Dataset("x", np.zeros((3, 2)), np.zeros(3), ("a",), ("c",), np.ones(2, bool))
    with pytest.raises(ValueError, match="NaN"):
        Dataset("x", np.full((3, 1), np.nan), np.zeros(3), ("a",), ("c",), np.ones(1, bool))


def test_read_arff_quotes_and_crlf(tmp_path):
    path = tmp_path / "t.arff"
    path.write_bytes(
        b"% comment\n@relation r\n\n@attribute a numeric\n@attribute 'b c' {x,'y z'}\n"
        b"@data\r\n1,'y z'\r\n?, x\r\n"
    )
    frame, relation = read_arff(path)
    assert relation == "r" and list(frame.columns) == ["a", "b c"]
    assert frame.values.tolist() == [["1", "y z"], ["?", "x"]]


# --------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["circles", "moons", "spirals"])
def test_synthetic_sizes_classes_and_seeds(kind):
    ds = make_synthetic(kind, n_train=301, n_test=120, noise=0.1, seed=5)
    assert ds.X.shape == (421, 2) and ds.feature_names == ("x1", "x2")
    assert ds.n_classes == 2 and ds.numeric_mask.all()
    assert ds.test_mask.sum() == 120 and not ds.test_mask[:301].any()
    tr, te = split_indices(ds.y, 0.5, seed=0, test_mask=ds.test_mask)
    for part in (tr, te):
        counts = np.bincount(ds.y[part], minlength=2)
        assert abs(counts[0] - counts[1]) <= 1
    again = make_synthetic(kind, n_train=301, n_test=120, noise=0.1, seed=5)
    np.testing.assert_array_equal(ds.X, again.X)
    np.testing.assert_array_equal(ds.y, again.y)
    other = make_synthetic(kind, n_train=301, n_test=120, noise=0.1, seed=6)
    assert not np.allclose(ds.X, other.X)
    # Train and test are different draws.
    assert not np.allclose(ds.X[:120], ds.X[301:])
    via_registry = load_dataset("synthetic", kind=kind, n_train=301, n_test=120,
                                noise=0.1, seed=5)
    np.testing.assert_array_equal(via_registry.X, ds.X)


@pytest.mark.parametrize("kind", ["circles", "moons", "spirals"])
def test_synthetic_is_nonlinearly_separable(kind):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    ds = make_synthetic(kind, n_train=400, n_test=400, noise=0.03, seed=0)
    tr, te = split_indices(ds.y, 0.5, seed=0, test_mask=ds.test_mask)
    linear = LogisticRegression().fit(ds.X[tr], ds.y[tr]).score(ds.X[te], ds.y[te])
    knn = KNeighborsClassifier(5).fit(ds.X[tr], ds.y[tr]).score(ds.X[te], ds.y[te])
    assert linear < 0.92 and knn > 0.97


def test_synthetic_noise_free_circles_and_noise_effect():
    clean = make_synthetic("circles", n_train=50, n_test=50, noise=0.0, seed=1)
    radius = np.linalg.norm(clean.X, axis=1)
    np.testing.assert_allclose(radius[clean.y == 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(radius[clean.y == 1], 0.5, atol=1e-12)
    noisy = make_synthetic("circles", n_train=50, n_test=50, noise=0.2, seed=1)
    assert np.abs(np.linalg.norm(noisy.X, axis=1)[noisy.y == 0] - 1.0).max() > 0.1
    with pytest.raises(ValueError, match="noise"):
        make_synthetic("circles", noise=-1.0)
    with pytest.raises(ValueError, match="n_train"):
        make_synthetic("moons", n_train=1)


# --------------------------------------------------------------------------------------
# The paper's inputs: raw attributes, integer codes, width = attribute count
# --------------------------------------------------------------------------------------

PAPER_WIDTHS = {"wine": 13, "abalone": 8, "absenteeism": 19, "autism": 20, "adult": 14}  # the paper's widths


@pytest.mark.parametrize("name", UCI_NAMES)
def test_paper_inputs_have_one_standardised_column_per_raw_attribute(name):
    paper, clean = load_dataset(name, inputs="paper"), _load(name)
    assert paper.n_features == PAPER_WIDTHS[name]
    assert paper.numeric_mask.all()  # every column standardised per trial
    np.testing.assert_array_equal(paper.y, clean.y)  # the same targets
    assert (paper.test_mask is None) == (clean.test_mask is None)
    if paper.test_mask is not None:
        np.testing.assert_array_equal(paper.test_mask, clean.test_mask)
    assert np.isfinite(paper.X).all()
    assert "paper" in paper.description.lower() or name == "wine"


def test_paper_inputs_codes_written_out_by_hand():
    abalone = load_dataset("abalone", inputs="paper")
    raw = pd.read_csv(REPO_DATA / "abalone" / "abalone.data", header=None)
    np.testing.assert_array_equal(abalone.X[:, 0], raw[0].map({"F": 0.0, "I": 1.0, "M": 2.0}).to_numpy())
    np.testing.assert_array_equal(abalone.X[:, 1:], raw.iloc[:, 1:8].to_numpy(float))

    absent = load_dataset("absenteeism", inputs="paper")  # the numbers in the file, leaking columns included
    raw = pd.read_csv(REPO_DATA / "absenteeism" / "Absenteeism_at_work.csv", sep=";")
    np.testing.assert_array_equal(absent.X, raw.iloc[:, 1:20].to_numpy(float))
    assert absent.feature_names[0] == "Reason for absence"

    adult = load_dataset("adult", inputs="paper")
    names = adult.feature_names
    sex = adult.X[:, names.index("sex")]
    assert set(np.unique(sex)) == {0.0, 1.0}  # Female, Male sorted
    raw_sex = raw_frame("adult")["sex"].str.strip()
    np.testing.assert_array_equal(sex, (raw_sex == "Male").to_numpy(float))
    workclass = raw_frame("adult")["workclass"].str.strip()
    codes = adult.X[:, names.index("workclass")]
    assert codes[(workclass == "?").to_numpy()].min() == codes.max()  # '?' is the last code
    np.testing.assert_array_equal(adult.X[:, names.index("fnlwgt")], raw_frame("adult")["fnlwgt"].astype(float))


def test_paper_inputs_autism_keeps_result_and_fills_missing_age():
    autism = load_dataset("autism", inputs="paper")
    names = list(autism.feature_names)
    assert names[:10] == [f"A{i}_Score" for i in range(1, 11)] and "result" in names and "age_desc" in names
    raw = raw_frame("autism")
    ages = pd.to_numeric(raw["age"].replace("?", np.nan))
    age = autism.X[:, names.index("age")]
    assert ages.isna().sum() == 2
    np.testing.assert_array_equal(age[ages.isna().to_numpy()], [ages.median()] * 2)
    np.testing.assert_array_equal(age[ages.notna().to_numpy()], ages.dropna().to_numpy())
    np.testing.assert_array_equal(autism.X[:, names.index("result")], autism.X[:, :10].sum(axis=1))
    ethnicity = autism.X[:, names.index("ethnicity")]
    missing = raw["ethnicity"].str.strip().eq("?").to_numpy()
    assert missing.sum() == 95 and (ethnicity[missing] == ethnicity.max()).all()


def test_unknown_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown inputs 'raw'; allowed: paper, clean"):
        load_dataset("wine", inputs="raw")


def test_subsample_positions_are_the_rows_subsample_rows_keeps():
    from resnet_stability.data import subsample_rows
    from resnet_stability.data.preprocessing import subsample_positions

    expected = np.sort(np.random.default_rng(4).choice(50, size=7, replace=False))
    np.testing.assert_array_equal(subsample_positions(50, 7, 4), expected)
    assert subsample_positions(50, None, 4) is None and subsample_positions(50, 50, 4) is None
    ds = load_dataset("wine")
    small = subsample_rows(ds, 30, 2)
    np.testing.assert_array_equal(small.X, ds.X[subsample_positions(ds.X.shape[0], 30, 2)])


def test_data_fingerprint_is_content_not_place_and_sees_either_end(tmp_path):
    from resnet_stability.data.files import data_fingerprint

    rng = np.random.default_rng(0)
    body = rng.integers(0, 256, size=3 * (1 << 20), dtype=np.uint8).tobytes()  # > 2 MiB: head and tail read
    original = tmp_path / "one" / "data.csv"
    original.parent.mkdir()
    original.write_bytes(body)
    moved = tmp_path / "two" / "renamed.csv"
    moved.parent.mkdir()
    moved.write_bytes(body)
    assert data_fingerprint(original) == data_fingerprint(moved)
    for changed in (b"x" + body[1:], body[:-1] + b"x", body + b"\n", body[:-1]):
        moved.write_bytes(changed)
        assert data_fingerprint(moved) != data_fingerprint(original)
    # a folder: each file's place inside it counts, the folder's own place does not
    for folder in ("f1", "f2"):
        (tmp_path / folder / "sub").mkdir(parents=True)
        (tmp_path / folder / "sub" / "a.csv").write_bytes(b"1,2\n")
        (tmp_path / folder / "b.csv").write_bytes(b"3,4\n")
    assert data_fingerprint(tmp_path / "f1") == data_fingerprint(tmp_path / "f2")
    (tmp_path / "f2" / "sub" / "a.csv").rename(tmp_path / "f2" / "a.csv")
    assert data_fingerprint(tmp_path / "f1") != data_fingerprint(tmp_path / "f2")

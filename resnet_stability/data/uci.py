"""The five UCI datasets of Zhang & Wynter: raw readers and the paper's preprocessing.

Each dataset has two raw readers that return the SAME frame (same column names, same
order, values as written in the source):

- ``source="local"``: the shipped files under ``data_root() / "uci"``, each checked
  against its SHA-256 (:func:`~resnet_stability.data.files.verified_path`);
- ``source="uci"``: ``ucimlrepo.fetch_ucirepo(id=...)`` through the on-disk cache of
  :mod:`resnet_stability.data.online`; its column names are mapped onto ours by
  :func:`_canonicalise` (case, spaces and punctuation ignored, plus a few renames that
  UCI's current metadata made, e.g. Autism's ``austim`` -> ``family_pdd``).

and ONE preprocessing function (``preprocess_<name>(raw, inputs=...) -> Dataset``) that
both paths go through. Preprocessing uses no statistic of any train/test split: numerics
stay unscaled; standardise per trial with :func:`~resnet_stability.data.fit_standardizer`.

Two encodings of the inputs (``inputs``), both with the paper's targets:

- ``"paper"``: the raw attribute vector, as Zhang & Wynter evidently fed it: one column
  per attribute (every column but an ID and the target, nothing dropped),
  categorical attributes as integer codes (levels sorted, a missing level last),
  every column standardised per trial with training statistics. The width equals the
  attribute count, as the paper's block widths do (Wine 13, Abalone 8, Absenteeism
  19, Autism 20, Adult 14), so the networks need no stem. What the paper's text does
  not say (the code order, the handling of missing values) is our choice, stated in
  :data:`PAPER_ATTRIBUTES` and each preprocessing docstring.
- ``"clean"``: our cleaner protocol: categoricals one-hot, 0/1 flags unscaled, columns
  that leak the target dropped (Absenteeism), a deterministic duplicate dropped
  (Autism's ``result``); the networks map these features to the preset width with a
  linear stem.

Licence of all five datasets: CC BY 4.0 (UCI Machine Learning Repository); citations
are in ``data/PROVENANCE.md`` and in each dataset's ``description``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .arff import read_arff
from .dataset import Dataset
from .files import verified_path
from .online import fetch_raw_frame
from .preprocessing import (
    CATEGORICAL,
    CODE,
    FLAG,
    MISSING,
    NUMERIC,
    bin_labels,
    clean_strings,
    encode_columns,
    merge_case_variants,
    to_numeric,
)

#: Allowed values of ``source``.
SOURCES = ("local", "uci")
#: Allowed values of ``inputs`` (see the module docstring).
INPUTS = ("paper", "clean")

#: UCI Machine Learning Repository ids.
UCI_IDS: dict[str, int] = {
    "wine": 109,
    "abalone": 1,
    "absenteeism": 445,
    "autism": 426,
    "adult": 2,
}

_LICENCE = "Licence: CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)."

# --------------------------------------------------------------------------------------
# Canonical raw column names (ucimlrepo's names where known; the target last)
# --------------------------------------------------------------------------------------

WINE_FEATURES = (
    "Alcohol", "Malicacid", "Ash", "Alcalinity_of_ash", "Magnesium", "Total_phenols",
    "Flavanoids", "Nonflavanoid_phenols", "Proanthocyanins", "Color_intensity", "Hue",
    "0D280_0D315_of_diluted_wines", "Proline",
)
WINE_COLUMNS = WINE_FEATURES + ("class",)

ABALONE_COLUMNS = (
    "Sex", "Length", "Diameter", "Height", "Whole_weight", "Shucked_weight",
    "Viscera_weight", "Shell_weight", "Rings",
)

ABSENTEEISM_COLUMNS = (
    "Reason for absence", "Month of absence", "Day of the week", "Seasons",
    "Transportation expense", "Distance from Residence to Work", "Service time", "Age",
    "Work load Average/day", "Hit target", "Disciplinary failure", "Education", "Son",
    "Social drinker", "Social smoker", "Pet", "Weight", "Height", "Body mass index",
    "Absenteeism time in hours",
)
ABSENTEEISM_TARGET = "Absenteeism time in hours"
#: Columns that give the target away (see :func:`preprocess_absenteeism`).
ABSENTEEISM_LEAKY = ("Reason for absence", "Disciplinary failure")

AUTISM_SCORES = tuple(f"A{i}_Score" for i in range(1, 11))
AUTISM_COLUMNS = AUTISM_SCORES + (
    "age", "gender", "ethnicity", "jaundice", "family_pdd", "country_of_res",
    "used_app_before", "result", "age_desc", "relation", "class",
)
#: ARFF attribute names (original misspellings) -> canonical names.
AUTISM_ALIASES = {
    "jundice": "jaundice",
    "austim": "family_pdd",
    "contry_of_res": "country_of_res",
    "Class/ASD": "class",
}

ADULT_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
)
ADULT_N_TRAIN, ADULT_N_TEST = 32561, 16281
ADULT_NUMERIC = ("age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week")

#: The paper's inputs: every raw attribute but an ID and the target, in file order, as
#: ``(column, kind)``: ``numeric`` columns as written (Absenteeism's codes are numbers in
#: the file already), ``code`` columns (text categoricals) as integer codes. All are
#: standardised per trial.
PAPER_ATTRIBUTES: dict[str, tuple[tuple[str, str], ...]] = {
    "wine": tuple((c, NUMERIC) for c in WINE_FEATURES),
    "abalone": (("Sex", CODE),) + tuple((c, NUMERIC) for c in ABALONE_COLUMNS[1:-1]),
    "absenteeism": tuple((c, NUMERIC) for c in ABSENTEEISM_COLUMNS[:-1]),
    "autism": tuple((c, NUMERIC) for c in AUTISM_SCORES)
    + (("age", NUMERIC),)
    + tuple((c, CODE) for c in ("gender", "ethnicity", "jaundice", "family_pdd", "country_of_res", "used_app_before"))
    + (("result", NUMERIC), ("age_desc", CODE), ("relation", CODE)),
    "adult": tuple((c, NUMERIC if c in ADULT_NUMERIC else CODE) for c in ADULT_COLUMNS[:-1]),
}


def _key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _canonicalise(
    frame: pd.DataFrame,
    columns: Sequence[str],
    dataset: str,
    aliases: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Rename ``frame``'s columns onto ``columns`` (ignoring case, spaces, punctuation;
    ``aliases`` maps other spellings) and return them in that order; extra columns
    (e.g. an ID) are dropped."""
    lookup = {_key(c): c for c in columns}
    for alias, target in (aliases or {}).items():
        lookup[_key(alias)] = target
    renamed: dict[str, str] = {}
    for col in frame.columns:
        target = lookup.get(_key(col))
        if target is not None and target not in renamed.values():
            renamed[col] = target
    missing = [c for c in columns if c not in renamed.values()]
    if missing:
        raise ValueError(
            f"{dataset}: the raw data lacks column(s) {missing}; "
            f"columns found: {list(frame.columns)}"
        )
    out = frame.rename(columns=renamed)
    return out.loc[:, list(columns)].reset_index(drop=True)


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; allowed sources: {list(SOURCES)}")


def check_inputs(inputs: str) -> str:
    """``inputs`` if it is one of :data:`INPUTS`, else ValueError naming the choices."""
    if inputs not in INPUTS:
        raise ValueError(f"unknown inputs {inputs!r}; allowed: {', '.join(INPUTS)} (see resnet_stability.data.uci)")
    return inputs


def paper_inputs(raw: pd.DataFrame, name: str) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """The paper's inputs of dataset ``name`` (:data:`PAPER_ATTRIBUTES`): ``(X, names,
    numeric_mask)``, one column per raw attribute, all standardised per trial.

    Text values are stripped of surrounding spaces, levels differing only in case
    merged (Autism's ethnicity ``others`` -> ``Others``), ``'?'`` coded as its own
    level, the last. A missing number (Autism's age, 2 rows) is filled with the median
    of the observed values of the whole file (no split statistic, no label).
    """
    frame = pd.DataFrame(index=raw.index)
    for column, kind in PAPER_ATTRIBUTES[name]:
        if kind == CODE:
            frame[column] = merge_case_variants(clean_strings(raw[column]))
        else:
            values = to_numeric(raw[column], column, allow_missing=True)
            frame[column] = values.fillna(float(values.median()) if values.notna().any() else 0.0)
    X, names, _ = encode_columns(frame, PAPER_ATTRIBUTES[name])
    return X, names, np.ones(len(names), dtype=bool)


_PAPER_TEXT = (
    "Inputs (paper): the raw attributes, one column each, text categoricals as integer codes "
    "(levels sorted, '?' last), all standardised per trial with training statistics; "
)


# --------------------------------------------------------------------------------------
# Local raw readers (shipped files, checksummed)
# --------------------------------------------------------------------------------------


def _read_wine_local() -> pd.DataFrame:
    path = verified_path("wine/wine.data")
    frame = pd.read_csv(path, header=None, names=("class",) + WINE_FEATURES)
    return frame


def _read_abalone_local() -> pd.DataFrame:
    path = verified_path("abalone/abalone.data")
    return pd.read_csv(path, header=None, names=ABALONE_COLUMNS)


def _read_absenteeism_local() -> pd.DataFrame:
    path = verified_path("absenteeism/Absenteeism_at_work.csv")
    return pd.read_csv(path, sep=";")  # has a header; ID column dropped by _canonicalise


def _read_autism_local() -> pd.DataFrame:
    frame, _relation = read_arff(verified_path("autism_adult/Autism-Adult-Data.arff"))
    return frame


def _read_adult_local() -> pd.DataFrame:
    options = dict(
        header=None,
        names=ADULT_COLUMNS,
        sep=",",
        skipinitialspace=True,
        skip_blank_lines=True,
        dtype=str,
        keep_default_na=False,
        na_values=[],
    )
    train = pd.read_csv(verified_path("adult/adult.data"), **options)
    # adult.test: the first line ("|1x3 Cross validator") is not data.
    test = pd.read_csv(verified_path("adult/adult.test"), skiprows=1, **options)
    if len(train) != ADULT_N_TRAIN or len(test) != ADULT_N_TEST:
        raise ValueError(
            f"adult: expected {ADULT_N_TRAIN} + {ADULT_N_TEST} records, "
            f"read {len(train)} + {len(test)}"
        )
    return pd.concat([train, test], ignore_index=True)


_LOCAL_READERS: dict[str, Callable[[], pd.DataFrame]] = {
    "wine": _read_wine_local,
    "abalone": _read_abalone_local,
    "absenteeism": _read_absenteeism_local,
    "autism": _read_autism_local,
    "adult": _read_adult_local,
}

_CANONICAL: dict[str, tuple[Sequence[str], Mapping[str, str] | None]] = {
    "wine": (WINE_COLUMNS, None),
    "abalone": (ABALONE_COLUMNS, None),
    "absenteeism": (ABSENTEEISM_COLUMNS, None),
    "autism": (AUTISM_COLUMNS, AUTISM_ALIASES),
    "adult": (ADULT_COLUMNS, None),
}


def raw_frame(
    name: str,
    source: str = "local",
    *,
    cache_dir: os.PathLike | str | None = None,
    refresh: bool = False,
) -> pd.DataFrame:
    """The raw frame of dataset ``name`` (canonical column names, target last).

    ``source="local"`` reads the shipped files (SHA-256 checked); ``source="uci"``
    fetches with ucimlrepo, cached under ``cache_dir`` (default: see
    :func:`~resnet_stability.data.online.cache_root`); ``refresh=True`` re-fetches.
    """
    _check_source(source)
    if name not in _LOCAL_READERS:
        raise ValueError(f"unknown UCI dataset {name!r}; allowed: {sorted(_LOCAL_READERS)}")
    if source == "local":
        frame = _LOCAL_READERS[name]()
    else:
        frame = fetch_raw_frame(UCI_IDS[name], cache_dir=cache_dir, refresh=refresh)
    columns, aliases = _CANONICAL[name]
    return _canonicalise(frame, columns, name, aliases)


# --------------------------------------------------------------------------------------
# Preprocessing, one function per dataset (shared by both sources)
# --------------------------------------------------------------------------------------


def _numeric_frame(raw: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: to_numeric(raw[c], c) for c in columns})


def _integer_labels(values: pd.Series, column: str) -> np.ndarray:
    numbers = to_numeric(values, column).to_numpy()
    if not np.all(numbers == np.round(numbers)):
        raise ValueError(f"column {column!r}: non-integer values")
    return numbers.astype(np.int64)


def preprocess_wine(raw: pd.DataFrame, inputs: str = "clean") -> Dataset:
    """Wine (UCI 109): 178 wines, 13 chemical measurements, 3 cultivars.

    Target: the cultivar label 1/2/3 minus 1 -> 0/1/2 (59/71/48 rows).
    Features: all 13 attributes numeric (``numeric_mask`` True), unscaled. No missing
    values. Nothing dropped. Both ``inputs`` give these 13 columns.
    """
    check_inputs(inputs)
    labels = _integer_labels(raw["class"], "class")
    if not set(np.unique(labels)) <= {1, 2, 3}:
        raise ValueError(f"wine: class labels must be 1, 2 or 3, got {sorted(set(labels))}")
    frame = _numeric_frame(raw, WINE_FEATURES)
    X, names, mask = encode_columns(frame, [(c, NUMERIC) for c in WINE_FEATURES])
    return Dataset(
        name="wine",
        X=X,
        y=labels - 1,
        feature_names=names,
        class_names=("cultivar 1", "cultivar 2", "cultivar 3"),
        numeric_mask=mask,
        description=(
            "Wine (UCI id 109; Aeberhard & Forina 1992, doi:10.24432/C5PC7J): chemical "
            "analysis of 178 wines from three cultivars of the same Italian region. "
            "Target: cultivar (UCI label 1/2/3 -> 0/1/2). Features: the 13 measurements "
            "as numeric columns, unscaled (standardise per trial on the training rows). "
            "No missing values; nothing dropped; random stratified split. " + _LICENCE
        ),
    )


def preprocess_abalone(raw: pd.DataFrame, inputs: str = "clean") -> Dataset:
    """Abalone (UCI 1): 4177 abalones, sex + 7 physical measurements.

    Target (paper): 3 classes by Rings: 1-8 -> 0, 9-10 -> 1, 11-29 -> 2 (upper edges
    8, 10, inf, so a rings value above 29 would still be class 2).
    Features, ``inputs="clean"``: Sex one-hot (``Sex=F``, ``Sex=I``, ``Sex=M``;
    ``numeric_mask`` False) and the 7 measurements numeric, unscaled;
    ``inputs="paper"``: the 8 attributes, Sex coded F/I/M -> 0/1/2. Rings is the target
    only (not a feature). No missing values.
    """
    check_inputs(inputs)
    rings = _integer_labels(raw["Rings"], "Rings")
    y = bin_labels(rings, [8, 10, np.inf])
    if inputs == "paper":
        X, names, mask = paper_inputs(raw, "abalone")
        return Dataset(
            name="abalone", X=X, y=y, feature_names=names,
            class_names=("rings 1-8", "rings 9-10", "rings 11-29"), numeric_mask=mask,
            description=(
                "Abalone (UCI id 1; Nash et al. 1994, doi:10.24432/C55C7W): 4177 abalones. "
                "Target (as in Zhang & Wynter): rings binned 1-8 / 9-10 / 11-29 -> 0 / 1 / 2. "
                + _PAPER_TEXT + "Sex F/I/M -> 0/1/2 and the 7 measurements (8 columns). "
                "Random stratified split. " + _LICENCE
            ),
        )
    frame = _numeric_frame(raw, ABALONE_COLUMNS[1:-1])
    frame.insert(0, "Sex", clean_strings(raw["Sex"]))
    if (frame["Sex"] == MISSING).any():
        raise ValueError("abalone: Sex has missing values")
    spec = [("Sex", CATEGORICAL)] + [(c, NUMERIC) for c in ABALONE_COLUMNS[1:-1]]
    X, names, mask = encode_columns(frame, spec)
    return Dataset(
        name="abalone",
        X=X,
        y=y,
        feature_names=names,
        class_names=("rings 1-8", "rings 9-10", "rings 11-29"),
        numeric_mask=mask,
        description=(
            "Abalone (UCI id 1; Nash et al. 1994, doi:10.24432/C55C7W): 4177 abalones. "
            "Target (as in Zhang & Wynter): the number of rings binned into 3 classes, "
            "1-8 / 9-10 / 11-29 -> 0 / 1 / 2. Features: Sex (M/F/I) one-hot, plus the "
            "7 length and weight measurements as numeric columns, unscaled. No missing "
            "values; random stratified split. " + _LICENCE
        ),
    )


def preprocess_absenteeism(raw: pd.DataFrame, inputs: str = "clean", *, drop_leaky: bool = True) -> Dataset:
    """Absenteeism at work (UCI 445): 740 absence records of 36 employees.

    ``inputs="paper"``: the 19 attributes after ID and target, as written in the file
    (every one is a number there: reason, month, weekday, season and education codes,
    0/1 flags, measurements), the two leaking ones included, all standardised per
    trial; ``drop_leaky`` does not apply. The rest of this docstring describes
    ``inputs="clean"``.

    Target (paper): 4 classes by "Absenteeism time in hours": 0 -> 0, 1-16 -> 1,
    17-56 -> 2, > 56 -> 3 (44 / 652 / 32 / 12 rows).

    Dropped: ``ID`` (an employee identifier) and, with ``drop_leaky=True`` (default),
    the two columns that give class 0 away. What the data shows:

    - "Reason for absence" = 0 in 43 rows, and all 43 have 0 hours; 43 of the 44
      zero-hour rows have reason 0 (the 44th has reason 27). Reason 0 is not an ICD
      category: it marks a record without an absence, i.e. it encodes the target.
    - "Disciplinary failure" = 1 in 40 rows, and all 40 have 0 hours (and reason 0).

    ``drop_leaky=False`` keeps both (the paper's width 19 = the 19 raw attributes
    after ID and target, so the paper most likely kept them): Reason one-hot (28
    levels), Disciplinary failure as a 0/1 flag.

    Encoding: categorical (one-hot, ``numeric_mask`` False): Month of absence (13
    levels: 1-12 and 0, an invalid month found only in the file's last 3 rows, all with
    0 hours and reason 0, kept as its own level), Day of the week (2-6), Seasons (1-4),
    Education (1-4, treated as nominal). 0/1 flags kept as one column, not
    standardised: Social drinker, Social smoker (and Disciplinary failure if kept).
    Numeric, unscaled: Transportation expense, Distance from Residence to Work,
    Service time, Age, Work load Average/day, Hit target, Son, Pet, Weight, Height,
    Body mass index. No missing values. Note that the 36 employees recur across rows,
    so a random split puts the same person in train and test.
    """
    check_inputs(inputs)
    hours = to_numeric(raw[ABSENTEEISM_TARGET], ABSENTEEISM_TARGET).to_numpy()
    if (hours < 0).any():
        raise ValueError("absenteeism: negative absence hours")
    y = bin_labels(hours, [0, 16, 56, np.inf])
    if inputs == "paper":
        X, names, mask = paper_inputs(raw, "absenteeism")
        return Dataset(
            name="absenteeism", X=X, y=y, feature_names=names,
            class_names=("0 h", "1-16 h", "17-56 h", ">56 h"), numeric_mask=mask,
            description=(
                "Absenteeism at work (UCI id 445; Martiniano & Ferreira 2012, doi:10.24432/C5X882): "
                "740 absence records of 36 employees. Target (as in Zhang & Wynter): hours binned "
                "0 / 1-16 / 17-56 / >56. " + _PAPER_TEXT + "the 19 attributes after ID and target, "
                "as the numbers written in the file, 'Reason for absence' and 'Disciplinary "
                "failure' included although they give class 0 away (reason 0 <=> 0 hours in 43 of "
                "44 rows). Random stratified split. " + _LICENCE
            ),
        )
    categorical = ["Reason for absence", "Month of absence", "Day of the week", "Seasons",
                   "Education"]
    flags = ["Disciplinary failure", "Social drinker", "Social smoker"]
    spec = []
    for column in ABSENTEEISM_COLUMNS[:-1]:
        if drop_leaky and column in ABSENTEEISM_LEAKY:
            continue
        if column in categorical:
            spec.append((column, CATEGORICAL))
        elif column in flags:
            spec.append((column, FLAG))
        else:
            spec.append((column, NUMERIC))
    frame = pd.DataFrame(index=raw.index)
    for column, kind in spec:
        values = to_numeric(raw[column], column)
        if kind == CATEGORICAL:
            if not np.all(values == np.round(values)):
                raise ValueError(f"absenteeism: {column!r} codes must be integers")
            frame[column] = values.astype(np.int64).astype(str)
        else:
            frame[column] = values
    X, names, mask = encode_columns(frame, spec)
    leak_text = (
        "Dropped as target leaks: 'Reason for absence' (reason 0 occurs in 43 rows, all "
        "with 0 hours, and covers 43 of the 44 zero-hour rows) and 'Disciplinary "
        "failure' (all 40 rows with value 1 have 0 hours); pass drop_leaky=False to keep "
        "them as the paper's 19 raw attributes did."
        if drop_leaky
        else "Kept 'Reason for absence' (one-hot) and 'Disciplinary failure' (0/1) although "
        "they give class 0 away (reason 0 <=> 0 hours in 43 of 44 rows; disciplinary "
        "failure 1 => 0 hours), as the paper's 19 raw attributes did."
    )
    return Dataset(
        name="absenteeism",
        X=X,
        y=y,
        feature_names=names,
        class_names=("0 h", "1-16 h", "17-56 h", ">56 h"),
        numeric_mask=mask,
        description=(
            "Absenteeism at work (UCI id 445; Martiniano & Ferreira 2012, "
            "doi:10.24432/C5X882): 740 absence records of 36 employees of a Brazilian "
            "courier company, 2007-2010. Target (as in Zhang & Wynter): absenteeism "
            "time in hours binned into 4 classes, 0 / 1-16 / 17-56 / >56. ID dropped. "
            + leak_text
            + " One-hot: month (1-12 plus an invalid 0 in 3 rows), day of the week, "
            "season, education. 0/1 flags: social drinker, social smoker. Numeric, "
            "unscaled: transport expense, distance, service time, age, workload, hit "
            "target, children, pets, weight, height, BMI. No missing values; random "
            "stratified split (the same employees recur across rows). " + _LICENCE
        ),
    )


def autism_result_findings(raw: pd.DataFrame) -> dict[str, bool]:
    """Facts about ``result`` in the raw Autism frame, checked on the data.

    Returns ``{"result_is_score_sum": result == A1 + ... + A10 in every row,
    "label_is_result_ge_7": class is YES exactly when result >= 7}``. On the UCI file
    both are True.
    """
    scores = pd.DataFrame({c: to_numeric(raw[c], c) for c in AUTISM_SCORES})
    total = scores.sum(axis=1).to_numpy()
    result = to_numeric(raw["result"], "result").to_numpy()
    label = clean_strings(raw["class"]).str.upper().to_numpy() == "YES"
    return {
        "result_is_score_sum": bool(np.array_equal(result, total)),
        "label_is_result_ge_7": bool(np.array_equal(label, result >= 7)),
    }


def preprocess_autism(raw: pd.DataFrame, inputs: str = "clean") -> Dataset:
    """Autism Screening Adult (UCI 426): 704 adults, AQ-10 answers + demographics.

    Target: Class/ASD, YES -> 1, NO -> 0 (189 / 515 rows).

    ``inputs="paper"``: the 20 attributes (A1-A10, age, gender, ethnicity, jaundice,
    family_pdd, country_of_res, used_app_before, result, age_desc, relation), text ones
    as integer codes ('?' its own code), the 2 missing ages filled with the file's
    median, ``result`` and the constant ``age_desc`` kept; all standardised per trial.
    The rest of this docstring describes ``inputs="clean"``.

    Checked on the data (:func:`autism_result_findings`): ``result`` equals
    A1_Score + ... + A10_Score in every row, and Class/ASD is YES exactly when
    result >= 7. So ``result`` is a deterministic function of A1-A10 and is dropped
    (the loader warns if that ever stops holding, and drops it anyway since the label
    is defined by it); and the label itself is a deterministic function of A1-A10
    (sum >= 7): a model that learns that threshold is 100% accurate.

    Dropped: ``result`` (above) and ``age_desc`` (a single value, "18 and more", in
    all rows; kept as a categorical if a future version has more than one value).

    Missing values (``'?'``): age (2 rows), ethnicity and relation (95 rows, the same
    rows). Categoricals get a ``missing`` level (``ethnicity=missing``,
    ``relation=missing``). Age: an indicator column ``age_missing`` (0/1) plus the
    missing ages filled with the median of the observed ages in the whole file (27.0;
    no train split exists at load time, the median uses no labels, and only 2 rows are
    affected). The outlier age 383 (one row) is kept as written.

    Encoding: A1-A10 as 0/1 flags (``numeric_mask`` False); age numeric, unscaled;
    one-hot: gender, ethnicity, jaundice, family_pdd (ARFF: ``austim``),
    country_of_res (ARFF: ``contry_of_res``), used_app_before, relation. Values are
    stripped of surrounding spaces (``'Middle Eastern '`` -> ``Middle Eastern``) and
    levels differing only in case are merged (ethnicity ``others`` (1 row) ->
    ``Others``).
    """
    check_inputs(inputs)
    findings = autism_result_findings(raw)
    if not findings["result_is_score_sum"]:
        warnings.warn(
            "autism: 'result' is no longer A1+...+A10 in every row; dropping it anyway "
            "because the label is defined by it",
            stacklevel=2,
        )
    labels = clean_strings(raw["class"]).str.upper()
    bad = sorted(set(labels) - {"YES", "NO"})
    if bad:
        raise ValueError(f"autism: class values must be YES/NO, got also {bad}")
    y = (labels == "YES").to_numpy().astype(np.int64)
    if inputs == "paper":
        X, names, mask = paper_inputs(raw, "autism")
        return Dataset(
            name="autism", X=X, y=y, feature_names=names, class_names=("NO", "YES"), numeric_mask=mask,
            description=(
                "Autism Screening Adult (UCI id 426; Thabtah 2017, doi:10.24432/C5F019): 704 adults "
                "screened with the AQ-10 app. Target: Class/ASD (YES -> 1), which in the data is "
                "exactly result >= 7 with result = A1+...+A10. " + _PAPER_TEXT + "the 20 attributes, "
                "'result' and the constant 'age_desc' included, 2 missing ages filled with the "
                "file's median. Random stratified split. " + _LICENCE
            ),
        )

    frame = pd.DataFrame(index=raw.index)
    spec: list[tuple[str, str]] = []
    for column in AUTISM_SCORES:
        frame[column] = to_numeric(raw[column], column)
        spec.append((column, FLAG))
    age = to_numeric(raw["age"], "age", allow_missing=True)
    age_missing = age.isna()
    fill = float(age.median()) if age.notna().any() else 0.0
    frame["age"] = age.fillna(fill)
    frame["age_missing"] = age_missing.astype(np.float64)
    spec += [("age", NUMERIC), ("age_missing", FLAG)]
    categorical = ["gender", "ethnicity", "jaundice", "family_pdd", "country_of_res",
                   "used_app_before"]
    age_desc = clean_strings(raw["age_desc"])
    if age_desc.nunique() > 1:
        categorical.append("age_desc")
    categorical.append("relation")
    for column in categorical:
        frame[column] = merge_case_variants(clean_strings(raw[column]))
        spec.append((column, CATEGORICAL))
    X, names, mask = encode_columns(frame, spec)
    return Dataset(
        name="autism",
        X=X,
        y=y,
        feature_names=names,
        class_names=("NO", "YES"),
        numeric_mask=mask,
        description=(
            "Autism Screening Adult (UCI id 426; Thabtah 2017, doi:10.24432/C5F019): "
            "704 adults screened with the AQ-10 app. Target: Class/ASD (YES -> 1). In "
            "the data 'result' equals A1+...+A10 in every row and Class/ASD is YES "
            "exactly when result >= 7, so the label is a deterministic function of the "
            "ten answers; 'result' is dropped, and so is 'age_desc' (constant). "
            "A1-A10: 0/1 flags. Age: numeric, unscaled, 2 missing ages filled with the "
            f"file's median ({fill:g}) plus an 'age_missing' indicator; the outlier "
            "age 383 is kept. One-hot (with a 'missing' level for '?'): gender, "
            "ethnicity ('others' merged into 'Others', trailing spaces stripped), "
            "jaundice, family_pdd, country_of_res, used_app_before, relation. Random "
            "stratified split. " + _LICENCE
        ),
    )


def preprocess_adult(raw: pd.DataFrame, inputs: str = "clean") -> Dataset:
    """Adult / Census income (UCI 2): 32561 training + 16281 test records.

    ``inputs="paper"``: the 14 attributes, the 8 text ones as integer codes ('?' its
    own code, the last), all standardised per trial. The feature description below is
    for ``inputs="clean"``.

    Target: income > 50K -> 1, <= 50K -> 0 (train 24720 / 7841, test 12435 / 3846).
    Split: the official one. Test rows are those whose label ends in ``'.'``
    (``adult.test`` writes ``<=50K.`` / ``>50K.``); they are marked by ``test_mask``.
    If a source has no dotted labels but exactly 48842 rows, the last 16281 rows are
    taken as the test rows (UCI's order: adult.data, then adult.test); otherwise
    ``test_mask`` is None with a warning.

    Features: all 14 attributes are kept (the paper's width 14 = the 14 raw
    attributes), ``fnlwgt`` included. Numeric, unscaled: age, fnlwgt, education-num,
    capital-gain, capital-loss, hours-per-week. One-hot: workclass, education,
    marital-status, occupation, relationship, race, sex, native-country, with ``'?'``
    (and empty / NaN, as ucimlrepo may give) as the level ``missing``. The one-hot
    levels are those seen in train and test together (a fixed vocabulary, no label or
    split statistic; ``native-country=Holand-Netherlands`` occurs only in one
    training row). Values are stripped of the leading space of the ``", "`` separator.
    """
    check_inputs(inputs)
    labels = clean_strings(raw["income"])
    dotted = labels.str.endswith(".").to_numpy()
    labels = labels.str.rstrip(".")
    bad = sorted(set(labels) - {"<=50K", ">50K"})
    if bad:
        raise ValueError(f"adult: income values must be <=50K / >50K, got also {bad}")
    y = (labels == ">50K").to_numpy().astype(np.int64)
    n = len(raw)
    if dotted.any():
        test_mask = dotted
    elif n == ADULT_N_TRAIN + ADULT_N_TEST:
        test_mask = np.arange(n) >= ADULT_N_TRAIN
    else:
        warnings.warn(
            f"adult: cannot tell the official test rows apart ({n} rows, no dotted "
            "labels); test_mask is None (use a random split)",
            stacklevel=2,
        )
        test_mask = None

    if inputs == "paper":
        X, names, mask = paper_inputs(raw, "adult")
        return Dataset(
            name="adult", X=X, y=y, feature_names=names, class_names=("<=50K", ">50K"),
            numeric_mask=mask, test_mask=test_mask,
            description=(
                "Adult / Census income (UCI id 2; Becker & Kohavi 1996, doi:10.24432/C5XW20): 1994 "
                "US census records. Target: income >50K -> 1. Official split: adult.data (32561 "
                "rows) for training, adult.test (16281 rows) marked by test_mask. " + _PAPER_TEXT
                + "the 14 attributes (fnlwgt included), the 8 text ones coded over the levels of "
                "both files. " + _LICENCE
            ),
        )
    frame = pd.DataFrame(index=raw.index)
    spec = []
    for column in ADULT_COLUMNS[:-1]:
        if column in ADULT_NUMERIC:
            frame[column] = to_numeric(raw[column], column)
            spec.append((column, NUMERIC))
        else:
            frame[column] = clean_strings(raw[column])
            spec.append((column, CATEGORICAL))
    X, names, mask = encode_columns(frame, spec)
    return Dataset(
        name="adult",
        X=X,
        y=y,
        feature_names=names,
        class_names=("<=50K", ">50K"),
        numeric_mask=mask,
        test_mask=test_mask,
        description=(
            "Adult / Census income (UCI id 2; Becker & Kohavi 1996, "
            "doi:10.24432/C5XW20): 1994 US census records. Target: income >50K -> 1. "
            "Official split: adult.data (32561 rows) for training, adult.test (16281 "
            "rows, labels ending in '.') marked by test_mask. All 14 attributes kept "
            "(fnlwgt included; the paper's width is 14). Numeric, unscaled: age, "
            "fnlwgt, education-num, capital-gain, capital-loss, hours-per-week. One-hot "
            "over the levels seen in both files, '?' as a 'missing' level: workclass, "
            "education, marital-status, occupation, relationship, race, sex, "
            "native-country. " + _LICENCE
        ),
    )


_PREPROCESS: dict[str, Callable[..., Dataset]] = {
    "wine": preprocess_wine,
    "abalone": preprocess_abalone,
    "absenteeism": preprocess_absenteeism,
    "autism": preprocess_autism,
    "adult": preprocess_adult,
}


# --------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------


def load_wine(
    source: str = "local", *, inputs: str = "clean", cache_dir: os.PathLike | str | None = None,
    refresh: bool = False,
) -> Dataset:
    """Wine (UCI 109): 178 x 13, 3 cultivars (59/71/48). See :func:`preprocess_wine`.

    ``source="local"`` reads ``data_root()/uci/wine/wine.data`` (SHA-256 checked);
    ``source="uci"`` fetches UCI id 109 with ucimlrepo, cached (``cache_dir``,
    ``refresh``).
    """
    return preprocess_wine(raw_frame("wine", source, cache_dir=cache_dir, refresh=refresh), inputs)


def load_abalone(
    source: str = "local", *, inputs: str = "clean", cache_dir: os.PathLike | str | None = None,
    refresh: bool = False,
) -> Dataset:
    """Abalone (UCI 1): 4177 x 10 (Sex one-hot + 7 numerics), 3 classes by rings
    (1-8 / 9-10 / 11-29). See :func:`preprocess_abalone` for every choice."""
    return preprocess_abalone(raw_frame("abalone", source, cache_dir=cache_dir, refresh=refresh), inputs)


def load_absenteeism(
    source: str = "local", *, inputs: str = "clean", drop_leaky: bool = True,
    cache_dir: os.PathLike | str | None = None, refresh: bool = False,
) -> Dataset:
    """Absenteeism at work (UCI 445): 740 rows, 4 classes by hours (0 / 1-16 / 17-56 /
    >56). ``drop_leaky`` (default True) drops "Reason for absence" and "Disciplinary
    failure", which give class 0 away. See :func:`preprocess_absenteeism`."""
    return preprocess_absenteeism(
        raw_frame("absenteeism", source, cache_dir=cache_dir, refresh=refresh), inputs, drop_leaky=drop_leaky
    )


def load_autism(
    source: str = "local", *, inputs: str = "clean", cache_dir: os.PathLike | str | None = None,
    refresh: bool = False,
) -> Dataset:
    """Autism Screening Adult (UCI 426): 704 rows, binary Class/ASD. ``result`` and
    ``age_desc`` dropped; the label is sum(A1..A10) >= 7. See :func:`preprocess_autism`.
    """
    return preprocess_autism(raw_frame("autism", source, cache_dir=cache_dir, refresh=refresh), inputs)


def load_adult(
    source: str = "local", *, inputs: str = "clean", cache_dir: os.PathLike | str | None = None,
    refresh: bool = False,
) -> Dataset:
    """Adult (UCI 2): 48842 rows (official train 32561 / test 16281 via ``test_mask``),
    binary >50K, all 14 attributes (categoricals one-hot). See :func:`preprocess_adult`.
    """
    return preprocess_adult(raw_frame("adult", source, cache_dir=cache_dir, refresh=refresh), inputs)

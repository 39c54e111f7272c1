"""Synthetic Bitcoin transactions whose entity behaviour drifts over time.

The paper's transaction data is not public. :func:`simulate_transactions` writes a
stand-in file in the schema of :mod:`resnet_stability.data.bitcoin` (load it with
:func:`~resnet_stability.data.bitcoin.load_bitcoin`) together with a sidecar
``<path>.meta.json`` that marks it synthetic, so nothing downstream can mistake it for
real data (the loaded Dataset's ``synthetic`` flag is True).

It is a toy generator, not a model of the Bitcoin economy. Each row:

1. a UTC day uniform over ``start .. end`` (both inclusive);
   ``s = (day + 0.5) / n_days`` in (0, 1) is the position in the period and
   ``g = drift * s`` the amount of drift;
2. an entity drawn with fixed probabilities :data:`CLASS_PROPORTIONS`
   (exchange 0.34, service 0.30, gambling 0.21, mining_pool 0.15);
3. ``n_inputs = 1 + Poisson(lam_in)``, ``n_outputs = 1 + Poisson(lam_out)``,
   ``volume_btc = exp(Normal(mu, sigma))`` rounded to 8 decimals (1 Satoshi),
   hour of day ``(peak + 24 / (2 pi) * VonMises(0, kappa)) mod 24`` (kappa = 0 is
   uniform), seconds within the hour uniform; with these per-entity parameters:

   ============  =======  ==============  ==============  =====  ==========  ==============
   entity        lam_in   lam_out         mu (log BTC)    sigma  peak (UTC)  kappa
   ============  =======  ==============  ==============  =====  ==========  ==============
   exchange      2.0      1.0 + 3.0 g     0.0 + 2.0 g     1.0    14          1.0
   service       1.0      0.8             -2.0 + 0.5 g    1.0    17 - 8 g    1.5
   gambling      0.3      0.5 + 3.5 g     -3.5 - 1.0 g    1.2    21          max(2 - 1.5 g, 0)
   mining_pool   0.2      max(12 - 8 g,   2.0 - 1.5 g     0.8    0           0 (uniform)
                          0.1)
   ============  =======  ==============  ==============  =====  ==========  ==============

   i.e. exchanges' volumes and output counts grow, gambling payouts batch more outputs
   and drift around the clock, services move toward Asian hours, mining pools pay out
   less to fewer outputs. With ``drift = 1`` late exchanges look like early mining
   pools and late mining pools like early exchanges, so a model trained on the first
   year loses accuracy on later windows; ``drift = 0`` is stationary (every parameter
   at its g = 0 value). Weekday is uniform for every entity.

Rows are sorted by timestamp. The same arguments give the same file.
"""

from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pandas as pd

from .bitcoin import (
    CSV_SUFFIXES,
    ENTITY_LABELS,
    PARQUET_SUFFIXES,
    SCHEMA_COLUMNS,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
    sidecar_path,
)

GENERATOR = "resnet_stability.data.simulate"

#: Probability of each entity (same order as ENTITY_LABELS); constant over time.
CLASS_PROPORTIONS: dict[str, float] = {
    "exchange": 0.34,
    "service": 0.30,
    "gambling": 0.21,
    "mining_pool": 0.15,
}


def _parameters(entity: np.ndarray, g: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row generator parameters (see the module docstring's table)."""
    n = entity.shape[0]
    p = {k: np.zeros(n) for k in ("lam_in", "lam_out", "mu", "sigma", "peak", "kappa")}
    table = {
        # entity: (lam_in, lam_out, mu, sigma, peak, kappa) as functions of g
        "exchange": (
            lambda g: 2.0 + 0 * g,
            lambda g: 1.0 + 3.0 * g,
            lambda g: 0.0 + 2.0 * g,
            lambda g: 1.0 + 0 * g,
            lambda g: 14.0 + 0 * g,
            lambda g: 1.0 + 0 * g,
        ),
        "service": (
            lambda g: 1.0 + 0 * g,
            lambda g: 0.8 + 0 * g,
            lambda g: -2.0 + 0.5 * g,
            lambda g: 1.0 + 0 * g,
            lambda g: 17.0 - 8.0 * g,
            lambda g: 1.5 + 0 * g,
        ),
        "gambling": (
            lambda g: 0.3 + 0 * g,
            lambda g: 0.5 + 3.5 * g,
            lambda g: -3.5 - 1.0 * g,
            lambda g: 1.2 + 0 * g,
            lambda g: 21.0 + 0 * g,
            lambda g: np.maximum(2.0 - 1.5 * g, 0.0),
        ),
        "mining_pool": (
            lambda g: 0.2 + 0 * g,
            lambda g: np.maximum(12.0 - 8.0 * g, 0.1),
            lambda g: 2.0 - 1.5 * g,
            lambda g: 0.8 + 0 * g,
            lambda g: 0.0 + 0 * g,
            lambda g: 0.0 * g,
        ),
    }
    keys = ("lam_in", "lam_out", "mu", "sigma", "peak", "kappa")
    for code, label in enumerate(ENTITY_LABELS):
        rows = entity == code
        for key, fn in zip(keys, table[label]):
            p[key][rows] = fn(g[rows])
    return p


def _utc_day(value, name: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a date such as '2012-01-01', got {value!r}") from exc
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.floor("D")


def simulate_frame(
    n_rows: int = 20000,
    start="2012-01-01",
    end="2018-05-31",
    drift: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """The synthetic transactions as a frame in the Bitcoin schema (``timestamp`` as
    datetime64 UTC), without writing anything. See the module docstring."""
    if isinstance(n_rows, bool) or not isinstance(n_rows, (int, np.integer)) or n_rows < 1:
        raise ValueError(f"n_rows must be a positive integer, got {n_rows!r}")
    if isinstance(drift, bool) or not isinstance(drift, (int, float, np.number)) or not (
        np.isfinite(drift) and drift >= 0
    ):
        raise ValueError(f"drift must be a finite number >= 0 (0 = stationary), got {drift!r}")
    t0, t1 = _utc_day(start, "start"), _utc_day(end, "end")
    if t1 < t0:
        raise ValueError(f"end ({t1.date()}) is before start ({t0.date()})")
    if t0 < TIMESTAMP_MIN or t1 + pd.Timedelta(days=1) > TIMESTAMP_MAX:
        raise ValueError(
            f"start..end must lie in [{TIMESTAMP_MIN.date()}, {TIMESTAMP_MAX.date()}), "
            f"got {t0.date()}..{t1.date()}"
        )
    n_rows = int(n_rows)
    n_days = (t1 - t0).days + 1
    rng = np.random.default_rng(seed)
    probs = np.array([CLASS_PROPORTIONS[k] for k in ENTITY_LABELS])
    day = rng.integers(0, n_days, size=n_rows)
    entity = rng.choice(len(ENTITY_LABELS), size=n_rows, p=probs / probs.sum())
    g = float(drift) * (day + 0.5) / n_days
    p = _parameters(entity, g)
    n_inputs = 1 + rng.poisson(p["lam_in"])
    n_outputs = 1 + rng.poisson(p["lam_out"])
    volume = np.round(np.exp(rng.normal(p["mu"], p["sigma"])), 8)
    angle = rng.vonmises(0.0, p["kappa"])
    hour = np.mod(p["peak"] + angle * 24.0 / (2 * np.pi), 24.0)
    second_of_day = np.minimum(np.floor(hour * 3600.0), 86399).astype(np.int64)
    seconds = day.astype(np.int64) * 86400 + second_of_day
    timestamp = t0 + pd.to_timedelta(seconds, unit="s")
    frame = pd.DataFrame(
        {
            "timestamp": timestamp,
            "n_inputs": n_inputs.astype(np.int64),
            "n_outputs": n_outputs.astype(np.int64),
            "volume_btc": volume.astype(np.float64),
            "entity": np.asarray(ENTITY_LABELS, dtype=object)[entity],
        }
    )
    frame = frame.sort_values("timestamp", kind="stable").reset_index(drop=True)
    return frame.loc[:, list(SCHEMA_COLUMNS)]


def simulate_transactions(
    path: os.PathLike | str,
    n_rows: int = 20000,
    start="2012-01-01",
    end="2018-05-31",
    drift: float = 1.0,
    seed: int = 0,
) -> pathlib.Path:
    """Write synthetic drifting transactions to ``path`` and return ``path``.

    Args:
        path: ``.csv`` (or ``.csv.gz`` etc.; timestamps written as ISO 8601
            ``"YYYY-MM-DDTHH:MM:SSZ"``) or ``.parquet`` / ``.pq`` (timestamps as UTC
            datetime). Parent folders are created.
        n_rows: number of transactions.
        start, end: first and last UTC day (both inclusive).
        drift: 0 = stationary; 1 = the drift in the module docstring's table; larger
            values extrapolate it.
        seed: seed of ``numpy.random.default_rng``; same arguments, same file.

    Also writes ``<path>.meta.json``: ``{"synthetic": true, "generator":
    "resnet_stability.data.simulate", "seed", "drift", "n_rows", "start", "end",
    "class_proportions", "schema"}``.

    Raises:
        ValueError: an unsupported suffix or a bad argument (named).
    """
    path = pathlib.Path(path).expanduser()
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        kind = "parquet"
    elif name.endswith(CSV_SUFFIXES):
        kind = "csv"
    else:
        raise ValueError(
            f"{path}: unsupported suffix; allowed: {list(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
        )
    frame = simulate_frame(n_rows=n_rows, start=start, end=end, drift=drift, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        frame.to_parquet(path, index=False)
    else:
        out = frame.copy()
        out["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.to_csv(path, index=False)
    meta = {
        "synthetic": True,
        "generator": GENERATOR,
        "seed": int(seed) if isinstance(seed, (int, np.integer)) else (
            None if seed is None else str(seed)
        ),
        "drift": float(drift),
        "n_rows": int(n_rows),
        "start": str(_utc_day(start, "start").date()),
        "end": str(_utc_day(end, "end").date()),
        "class_proportions": CLASS_PROPORTIONS,
        "schema": "resnet_stability.data.bitcoin.BITCOIN_SCHEMA",
    }
    sidecar_path(path).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return path

"""Resumable, atomic, validated results store for sweeps.

Layout of an output folder::

    OUT/cells/<dataset>__<block>__<hash>.csv        one file per finished cell (h × trials rows)
    OUT/cells/<dataset>__<block>__<hash>.<part>.csv  its extra tables (over_time, noise)
    OUT/cells/<dataset>__<block>__<hash>.done.json   its completion marker (written last)
    OUT/cells/.<dataset>__<block>__<hash>.lock       lock file: one sweep computes the cell
    OUT/results.csv                                 the table of this sweep's finished cells
    OUT/spec.json                                   the resolved configuration of the last run
    OUT/<name>.csv, OUT/<figure>.png|.pdf           the tables and figures made from them

Every file name at the top of the folder is in :data:`OUTPUTS` (:class:`OutputNames`),
the one place the sweep, the report and the reproduction take them from; the tables and
figures are written by :mod:`~resnet_stability.sweep.outputs`.

Every file is written to a temporary file in the same folder and renamed into place
(mode ``0666 & ~umask``, as a plain ``open`` would give). A cell's extra tables are
written first, then its main table, then its completion marker: the row count and the
SHA-256 of the main table and of each extra table. A cell counts as finished only when
its marker matches its files, its table parses, has one row per member and holds
every (h, trial) of the spec (:meth:`ResultsStore.cell_problem`), so a killed sweep or
a damaged file never passes for a finished cell. ``<hash>`` is the hash of the
cell's configuration (:meth:`ExperimentSpec.cell_hash`): rerunning the same command
skips finished cells; a changed configuration writes new cells beside the old ones and
never overwrites them. The Keras backend and the kind of device (CPU, GPU) a cell
trained on are not part of its configuration (they change numbers by rounding only:
``tests/test_engines.py``) but are in its marker: a sweep resumed under another backend
or on another kind of device keeps the finished cells and says so.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from resnet_stability.atomic import atomic_write_csv, atomic_write_text
from resnet_stability.sweep.experiment import ExperimentSpec

try:  # POSIX; elsewhere cells are not locked (two sweeps may then compute one cell twice)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

MARKER_SUFFIX = ".done.json"
#: what a marker that does not say was trained on: every cell before the JAX engine was
#: TensorFlow's; the device was not recorded (None: unknown)
LEGACY_TRAINED_ON = {"backend": "tensorflow", "device": None}


@dataclasses.dataclass(frozen=True)
class OutputNames:
    """The file names at the top of a sweep's output folder. Tables end in ``.csv``;
    figures are stems, each written as ``<stem>.png`` and ``<stem>.pdf``."""

    results: str = "results.csv"  # one row per network: the finished cells' tables, concatenated
    spec: str = "spec.json"  # the resolved configuration of the last run
    summary: str = "summary.txt"  # best h and h = 0.1 / 1 per dataset × block, as printed
    accuracy_by_h: str = "accuracy_by_h.csv"  # mean ± std per dataset × block × h
    accuracy_vs_h: str = "accuracy_vs_h"  # figure
    over_time: str = "accuracy_over_time.csv"  # per member × later time window
    over_time_figure: str = "accuracy_over_time"
    noise: str = "noise_robustness.csv"  # per member × noise kind × level
    noise_figure: str = "noise_robustness"
    stability: str = "stability_correlation.csv"  # Spearman's ρ of euler_max against accuracy
    stability_figure: str = "stability_vs_accuracy"
    stability_noise: str = "stability_noise_correlation.csv"  # ρ against the accuracy lost under noise
    stability_noise_figure: str = "stability_vs_noise_loss"
    stability_time: str = "stability_time_correlation.csv"  # ρ against the accuracy on each time window
    stability_time_figure: str = "stability_vs_time"
    learned_h: str = "learned_h.csv"  # learned steps per block (--learn-h)
    learned_h_figure: str = "learned_h"
    by_level: str = "accuracy_by_level.csv"  # accuracy after each level (--levels)
    by_level_figure: str = "accuracy_by_level"

    @staticmethod
    def png(figure: str) -> str:
        """The PNG file of ``figure`` (a stem)."""
        return f"{figure}.png"


#: The one table of output file names (see :class:`OutputNames`).
OUTPUTS = OutputNames()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ResultsStore:
    """Per-cell result files under ``out``; see the module docstring."""

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)
        self.cells = self.out / "cells"

    def cell_path(self, spec: ExperimentSpec, block: str) -> Path:
        return self.cells / f"{spec.dataset}__{block}__{spec.cell_hash(block)}.csv"

    def part_path(self, spec: ExperimentSpec, block: str, part: str) -> Path:
        return self.cell_path(spec, block).with_suffix(f".{part}.csv")

    def marker_path(self, spec: ExperimentSpec, block: str) -> Path:
        return self.cell_path(spec, block).with_suffix(MARKER_SUFFIX)

    def lock_path(self, spec: ExperimentSpec, block: str) -> Path:
        return self.cells / f".{self.cell_path(spec, block).stem}.lock"

    def cell_problem(self, spec: ExperimentSpec, block: str) -> str | None:
        """Why the stored (``spec``, ``block``) cell cannot be used, or None if it is a
        finished cell. A cell that was never started gives ``"missing"``; anything else
        (no or mismatched marker, unparsable or short table, wrong (h, trial) keys) is a
        damaged cell, described in a few words."""
        path, marker_path = self.cell_path(spec, block), self.marker_path(spec, block)
        if not path.exists():
            return "missing" if not marker_path.exists() else "its marker exists but the cell file is missing"
        try:
            marker = json.loads(marker_path.read_text(encoding="utf-8"))
            digests, rows = marker["sha256"], marker["rows"]
            parts = dict(digests.get("parts", {}))
            expected_main = digests["csv"]
        except FileNotFoundError:
            return f"no completion marker ({marker_path.name}): the cell was not finished by this version"
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
            return f"its completion marker {marker_path.name} is unreadable"
        if _sha256(path) != expected_main:
            return "its bytes differ from the SHA-256 in its completion marker (truncated or modified)"
        for part, digest in parts.items():
            part_path = self.part_path(spec, block, part)
            if not part_path.exists() or _sha256(part_path) != digest:
                return f"its part file {part_path.name} is missing or differs from its completion marker"
        try:
            frame = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
            return f"its table cannot be read ({' '.join(str(error).split()) or type(error).__name__})"
        return _table_problem(frame, spec, rows)

    def cell_trained_on(self, spec: ExperimentSpec, block: str) -> dict:
        """``{"backend": ..., "device": ...}``: the Keras backend and the kind of device
        (``"cpu"``, ``"gpu"``) a finished cell was trained on, from its completion marker;
        what a marker does not say is :data:`LEGACY_TRAINED_ON`'s (written before it was
        recorded). Call on a finished cell (:meth:`has_cell`)."""
        marker = json.loads(self.marker_path(spec, block).read_text(encoding="utf-8"))
        return {key: marker.get(key, default) for key, default in LEGACY_TRAINED_ON.items()}

    def has_cell(self, spec: ExperimentSpec, block: str) -> bool:
        """True when the cell is finished and intact (:meth:`cell_problem` is None)."""
        return self.cell_problem(spec, block) is None

    def write_cell(self, spec: ExperimentSpec, block: str, frame: pd.DataFrame, parts: dict | None = None,
                   trained_on: dict | None = None) -> Path:
        """Write a finished cell: its non-empty extra tables ``parts``, its main table,
        then (last) its completion marker with their SHA-256, the row count and what the cell
        was ``trained_on`` (``{"backend": ..., "device": ...}``, :meth:`cell_trained_on`)."""
        digests = {}
        for part, table in (parts or {}).items():
            if len(table):
                text = table.to_csv(index=False)
                atomic_write_text(self.part_path(spec, block, part), text)
                digests[part] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        path = self.cell_path(spec, block)
        text = frame.to_csv(index=False)
        atomic_write_text(path, text)
        marker = {
            "cell": path.name,
            "rows": len(frame),
            "sha256": {"csv": hashlib.sha256(text.encode("utf-8")).hexdigest(), "parts": digests},
        }
        marker.update(trained_on or {})
        atomic_write_text(self.marker_path(spec, block), json.dumps(marker, indent=2, sort_keys=True) + "\n")
        return path

    @contextlib.contextmanager
    def cell_lock(self, spec: ExperimentSpec, block: str, on_wait=None):
        """Hold an exclusive lock on the cell for the duration (``fcntl.flock`` on its
        lock file), so that two sweeps into one folder never compute the same cell. If
        another process holds it, ``on_wait()`` is called once and the lock is waited
        for; then check :meth:`has_cell` again: the other sweep may have finished it."""
        path = self.lock_path(spec, block)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            if fcntl is None:  # pragma: no cover - Windows
                yield
                return
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def read_table(self, specs: list[ExperimentSpec], part: str | None = None) -> pd.DataFrame:
        """The finished, intact cells of ``specs`` (in spec and block order) as one table;
        with ``part``, their extra tables of that name (empty if none)."""
        paths = [
            self.cell_path(spec, block) if part is None else self.part_path(spec, block, part)
            for spec in specs
            for block in spec.blocks
            if self.has_cell(spec, block)
        ]
        frames = [pd.read_csv(path) for path in paths if path.exists()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def path(self, name: str) -> Path:
        """``out / name``: a file name from :data:`OUTPUTS`, or a figure stem."""
        return self.out / name

    def write_table(self, table: pd.DataFrame) -> Path:
        return atomic_write_csv(self.path(OUTPUTS.results), table)

    def write_spec(self, specs: list[ExperimentSpec], extra: dict) -> Path:
        """``spec.json``: every resolved spec and ``extra``. A data file inside the output
        folder (the simulated Bitcoin file) is recorded relative to it, so a committed or
        moved folder names no path of the machine that wrote it."""
        path = self.path(OUTPUTS.spec)
        experiments = [spec.to_dict() for spec in specs]
        for experiment in experiments:
            data = experiment.get("data_path")
            if data is not None and Path(data).resolve().is_relative_to(self.out.resolve()):
                experiment["data_path"] = Path(data).resolve().relative_to(self.out.resolve()).as_posix()
        payload = {"experiments": experiments, **extra}
        atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return path


def _table_problem(frame: pd.DataFrame, spec: ExperimentSpec, marker_rows) -> str | None:
    """Why a parsed cell table does not hold exactly the members of ``spec``, or None."""
    expected = spec.members_per_cell
    if marker_rows != expected:
        return f"its completion marker records {marker_rows} rows, the spec has {expected} members"
    if len(frame) != expected:
        return f"it has {len(frame)} rows, expected {expected} (one per h × trial)"
    missing_columns = [c for c in ("h", "trial") if c not in frame.columns]
    if missing_columns:
        return f"it lacks the column(s) {', '.join(missing_columns)}"
    try:
        keys = {(round(float(h), 10), int(t)) for h, t in zip(frame["h"], frame["trial"])}
    except (TypeError, ValueError):
        return "its h or trial column holds non-numbers"
    wanted = set(spec.members())
    if keys != wanted:
        absent = sorted(wanted - keys)[:3]
        return f"its (h, trial) keys differ from the spec's (e.g. missing {absent})"
    return None

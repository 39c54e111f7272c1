"""Resumable, atomic results store for sweeps.

Layout of an output folder::

    OUT/cells/<dataset>__<block>__<hash>.csv        one file per finished cell (h × trials rows)
    OUT/cells/<dataset>__<block>__<hash>.<part>.csv  its extra tables (over_time, noise)
    OUT/results.csv                                 the table of this sweep's finished cells
    OUT/spec.json                                   the resolved configuration of the last run

Every file is written to a temporary file in the same folder and renamed into place;
a cell's extra tables are written before its main file, whose presence marks the cell
finished, so a killed sweep leaves either the whole cell or nothing. ``<hash>`` is the hash of the
cell's configuration (:meth:`ExperimentSpec.cell_hash`): rerunning the same command
skips finished cells; a changed configuration writes new cells beside the old ones and
never overwrites them.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from resnet_stability.experiment import ExperimentSpec


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ResultsStore:
    """Per-cell result files under ``out``; see the module docstring."""

    def __init__(self, out: str | os.PathLike):
        self.out = Path(out)
        self.cells = self.out / "cells"

    def cell_path(self, spec: ExperimentSpec, block: str) -> Path:
        return self.cells / f"{spec.dataset}__{block}__{spec.cell_hash(block)}.csv"

    def has_cell(self, spec: ExperimentSpec, block: str) -> bool:
        return self.cell_path(spec, block).exists()

    def part_path(self, spec: ExperimentSpec, block: str, part: str) -> Path:
        return self.cell_path(spec, block).with_suffix(f".{part}.csv")

    def write_cell(self, spec: ExperimentSpec, block: str, frame: pd.DataFrame, parts: dict | None = None) -> Path:
        """Write a finished cell: its non-empty extra tables ``parts``, then its main table."""
        for part, table in (parts or {}).items():
            if len(table):
                atomic_write_text(self.part_path(spec, block, part), table.to_csv(index=False))
        path = self.cell_path(spec, block)
        atomic_write_text(path, frame.to_csv(index=False))
        return path

    def read_table(self, specs: list[ExperimentSpec], part: str | None = None) -> pd.DataFrame:
        """The finished cells of ``specs`` (in spec and block order) as one table; with
        ``part``, their extra tables of that name (empty if none)."""
        paths = [
            self.cell_path(spec, block) if part is None else self.part_path(spec, block, part)
            for spec in specs
            for block in spec.blocks
            if self.has_cell(spec, block)
        ]
        frames = [pd.read_csv(path) for path in paths if path.exists()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def write_table(self, table: pd.DataFrame) -> Path:
        path = self.out / "results.csv"
        atomic_write_text(path, table.to_csv(index=False))
        return path

    def write_spec(self, specs: list[ExperimentSpec], extra: dict) -> Path:
        path = self.out / "spec.json"
        payload = {"experiments": [spec.to_dict() for spec in specs], **extra}
        atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return path

"""A small reader for Weka ARFF files (enough for UCI's Autism Screening Adult file).

No scipy dependency. Handles: ``%`` comments, ``@relation`` / ``@attribute`` / ``@data``
in any case, attribute names in single or double quotes, single-quoted values that
contain spaces, and mixed LF / CRLF line endings. Values are returned as strings,
exactly as written (``'?'`` stays ``'?'``; surrounding quotes are removed, inner trailing
spaces such as ``'Middle Eastern '`` are kept). Sparse ARFF (``{...}`` rows) is not
supported.
"""

from __future__ import annotations

import csv
import os
import shlex

import pandas as pd


def read_arff(path: os.PathLike | str) -> tuple[pd.DataFrame, str]:
    """Return ``(frame, relation)``: a frame of strings with one column per attribute."""
    with open(path, encoding="ascii", newline="") as handle:
        lines = handle.read().splitlines()
    relation = ""
    names: list[str] = []
    data_start = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        lower = line.lower()
        if lower.startswith("@relation"):
            relation = line[len("@relation"):].strip()
        elif lower.startswith("@attribute"):
            rest = line[len("@attribute"):].strip()
            names.append(_attribute_name(rest))
        elif lower.startswith("@data"):
            data_start = i + 1
            break
    if data_start is None or not names:
        raise ValueError(f"{path}: not an ARFF file (no @attribute or @data section)")
    data_lines = [
        ln for ln in lines[data_start:] if ln.strip() and not ln.lstrip().startswith("%")
    ]
    if any(ln.lstrip().startswith("{") for ln in data_lines):
        raise ValueError(f"{path}: sparse ARFF rows are not supported")
    rows = list(csv.reader(data_lines, quotechar="'", skipinitialspace=True))
    for k, row in enumerate(rows):
        if len(row) != len(names):
            raise ValueError(
                f"{path}: data row {k + 1} has {len(row)} values, expected {len(names)}"
            )
    return pd.DataFrame(rows, columns=names, dtype=object), relation


def _attribute_name(rest: str) -> str:
    """The name part of an ``@attribute <name> <type>`` line (quoted or not)."""
    if rest[:1] in ("'", '"'):
        return shlex.split(rest, posix=True)[0]
    return rest.split(None, 1)[0]

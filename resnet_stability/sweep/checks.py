"""Checks of a sweep's inputs that fail early with ONE clear line (the CLI exits 2).

Each function raises ValueError (or PermissionError / ConnectionError) whose message
names the bad value and says what to do; none of them imports TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

#: What to use instead when ``--source uci`` cannot reach the UCI repository: for a
#: dataset that is not shipped, its file (``--data``, from its record); else this.
DEFAULT_OFFLINE_INSTEAD = "--source local (the shipped copy, no network)"


def check_out_folder(out: Path, quick: bool) -> None:
    """``out`` can hold this sweep's outputs: it is a folder (or can be created as one)
    in a writable place, and a ``--quick`` run never goes into a full run's folder
    (its ``spec.json`` says ``"quick": false``, or predates the field)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder: give a folder path (it is created if missing)")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out {out}: {existing} is a file, not a folder, so {out} cannot be created; "
                         "choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out}: the folder {existing} is not writable; choose another --out "
                              "or fix its permissions")
    from resnet_stability.sweep.store import OUTPUTS

    spec_path = out / OUTPUTS.spec
    if quick and spec_path.is_file():
        try:
            recorded = json.loads(spec_path.read_text(encoding="utf-8")).get("quick")
        except (ValueError, UnicodeDecodeError, AttributeError):
            recorded = None
        if recorded is not True:
            raise ValueError(
                f"--out {out} holds a full (not --quick) sweep: a --quick run would overwrite its {OUTPUTS.results}, "
                "summary and figures; choose another --out (the default for --quick is results/<dataset>-quick)"
            )


def check_data_path(path: Path, what: str) -> None:
    """``--data`` exists and is not empty (an empty file, or an empty CSV in the folder);
    ``what`` says what the dataset expects there."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--data {path}: no such file or folder; give {what}")
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file() and p.suffix == ".csv")
    for file in files:
        with open(file, "rb") as stream:
            empty = not stream.read(4096).strip()
        if empty:
            raise ValueError(f"--data {path}: {file.name} is empty (no header, no rows); give {what}")


def check_test_size(name: str, y, test_size: float) -> None:
    """The stratified split of ``y`` at ``test_size`` gives test and training sets with
    at least one row per class (scikit-learn's rule: ceil(test_size·n) test rows)."""
    import numpy as np

    n, classes = len(y), len(np.unique(y))
    n_test = math.ceil(test_size * n)
    if n_test >= classes and n - n_test >= classes:
        return
    low, high = math.ceil(1000 * classes / n) / 1000, math.floor(1000 * (n - classes) / n) / 1000
    side, rows = ("test", n_test) if n_test < classes else ("training", n - n_test)
    raise ValueError(
        f"--test-size {test_size:g}: the {side} set of {name} would have {rows} rows (of {n}), fewer than its "
        f"{classes} classes; use --test-size between {low:g} and {high:g}"
    )


def fetch_errors() -> tuple[type[BaseException], ...]:
    """The exceptions of a failed fetch from the UCI repository (no network, ...)."""
    errors: list[type[BaseException]] = [OSError, ImportError]
    try:
        from ucimlrepo.fetch import DatasetNotFoundError

        errors.append(DatasetNotFoundError)
    except ImportError:  # pragma: no cover - the optional package is absent
        pass
    return tuple(errors)


def offline_error(name: str, error: BaseException) -> ConnectionError:
    """The one-line error for ``--source uci`` failing to fetch ``name``."""
    detail = " ".join(str(error).split()) or type(error).__name__
    from resnet_stability.data.registry import RECORDS

    record = RECORDS.get(name)
    instead = f"--data PATH to a downloaded {record.data}" if record is not None and record.needs_data else DEFAULT_OFFLINE_INSTEAD
    return ConnectionError(
        f"--source uci: could not fetch {name} from the UCI repository ({detail}); check the network "
        f"connection, or use {instead}"
    )

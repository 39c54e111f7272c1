"""Tests for atomic file writes (``resnet_stability.atomic``): no temporary file is left
behind, a failed write leaves the old file, and an unwritable folder is named in the
error (file modes under the umask: ``test_store.py``)."""

from __future__ import annotations

import os

import pytest
from helpers import visible_files

from resnet_stability.atomic import atomic_write_text


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "deep" / "table.csv"
    atomic_write_text(path, "a,b\n1,2\n")
    assert path.read_text() == "a,b\n1,2\n"
    assert visible_files(path.parent) == ["table.csv"]
    atomic_write_text(path, "a,b\n3,4\n")
    assert path.read_text() == "a,b\n3,4\n"
    assert visible_files(path.parent) == ["table.csv"]
    # a write that fails half-way leaves the old file and no temporary file behind
    with pytest.raises(TypeError):
        atomic_write_text(path, 12345)
    assert path.read_text() == "a,b\n3,4\n"
    assert visible_files(path.parent) == ["table.csv"]


def test_unwritable_folder_error_names_the_folder_not_a_temporary_file(tmp_path, monkeypatch):
    import tempfile

    def refuse(dir=None, prefix="", suffix=""):  # noqa: A002 - tempfile.mkstemp's keywords
        raise PermissionError(13, "Permission denied", os.path.join(dir, f"{prefix}x1y2{suffix}"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError) as info:
        atomic_write_text(tmp_path / "spec.json", "{}")
    message = str(info.value)
    assert str(tmp_path) in message and "not writable" in message and ".tmp" not in message


def test_atomic_write_csv_writes_the_table_without_its_index(tmp_path):
    import pandas as pd

    from resnet_stability.atomic import atomic_write_csv

    frame = pd.DataFrame({"h": [0.1, 0.2], "block": ["residual", "shrinkage"]}, index=[7, 9])
    path = atomic_write_csv(tmp_path / "t.csv", frame)
    assert path == tmp_path / "t.csv"
    assert path.read_text(encoding="utf-8") == "h,block\n0.1,residual\n0.2,shrinkage\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]

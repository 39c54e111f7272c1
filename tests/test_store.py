"""Tests for the results store (``resnet_stability.sweep.store``): completion markers,
validation of stored cells on resume, where each cell is written, and the per-cell lock.
Nothing trains here: cells are small hand-made tables of the spec's (h, trial) members.
(Atomic writes themselves: ``test_atomic.py``.)"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
import time

import helpers
import pandas as pd
import pytest

from resnet_stability.atomic import atomic_write_text
from resnet_stability.sweep.experiment import resolve_spec
from resnet_stability.sweep.store import ResultsStore

H_VALUES = (0.1, 0.5, 1.0)
TRIALS = 2


def make_spec(**overrides):
    values = dict(blocks=("residual", "shrinkage"), h_values=H_VALUES, trials=TRIALS, depth=2, epochs=1)
    values.update(overrides)
    return resolve_spec("wine", values)


def cell_frame(block: str, accuracy: float = 0.5) -> pd.DataFrame:
    """One row per (h, trial) of :func:`make_spec`'s grid, written out by hand."""
    rows = [
        dict(dataset="wine", block=block, h=h, trial=t, test_accuracy=accuracy)
        for h in H_VALUES
        for t in range(TRIALS)
    ]
    assert len(rows) == 6
    return pd.DataFrame(rows)


def noise_frame(block: str) -> pd.DataFrame:
    return pd.DataFrame(dict(dataset=["wine"], block=[block], h=[0.1], trial=[0], noise=["gaussian"], level=[0.5],
                             accuracy=[0.4]))


@pytest.fixture
def stored(tmp_path):
    """A store with the residual cell (and a noise part) written; the shrinkage cell absent."""
    store, spec = ResultsStore(tmp_path / "out"), make_spec()
    store.write_cell(spec, "residual", cell_frame("residual"), {"noise": noise_frame("residual")})
    return store, spec


def test_marker_is_written_with_the_hashes_and_row_count(stored):
    store, spec = stored
    path = store.cell_path(spec, "residual")
    marker = json.loads(store.marker_path(spec, "residual").read_text())
    assert marker["rows"] == 6
    assert marker["sha256"]["csv"] == hashlib.sha256(path.read_bytes()).hexdigest()
    noise_path = store.part_path(spec, "residual", "noise")
    assert marker["sha256"]["parts"] == {"noise": hashlib.sha256(noise_path.read_bytes()).hexdigest()}
    assert store.has_cell(spec, "residual") and store.cell_problem(spec, "residual") is None
    assert store.cell_problem(spec, "shrinkage") == "missing" and not store.has_cell(spec, "shrinkage")
    assert len(store.read_table([spec])) == 6
    assert len(store.read_table([spec], "noise")) == 1


def _truncate(path):
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-2]))


def _garbage(path):
    path.write_bytes(b"\x00\xff garbage \x01\n,,,\n\"")


def _empty(path):
    path.write_text("")


def _remove_marker(path):
    path.with_suffix(".done.json").unlink()


def _broken_marker(path):
    path.with_suffix(".done.json").write_text("{not json")


def _modified_part(path):
    part = path.with_suffix(".noise.csv")
    part.write_text(part.read_text().replace("0.4", "0.9"))


def _short_with_matching_marker(store, spec):
    """A cell written whole (marker matches) but with one member missing."""
    store.write_cell(spec, "residual", cell_frame("residual").iloc[:5])


def _wrong_keys_with_matching_marker(store, spec):
    """Six rows, marker matches, but trial 2 in place of (1.0, 1)."""
    frame = cell_frame("residual")
    frame.loc[5, "trial"] = 2
    store.write_cell(spec, "residual", frame)


FILE_DAMAGE = {
    "truncated": (_truncate, "SHA-256"),
    "garbage": (_garbage, "SHA-256"),
    "empty": (_empty, "SHA-256"),
    "no marker": (_remove_marker, "no completion marker"),
    "unreadable marker": (_broken_marker, "unreadable"),
    "modified part": (_modified_part, "noise.csv"),
}
STORE_DAMAGE = {
    "short": (_short_with_matching_marker, "5 rows"),
    "wrong keys": (_wrong_keys_with_matching_marker, "keys"),
}


@pytest.mark.parametrize("damage", list(FILE_DAMAGE) + list(STORE_DAMAGE))
def test_a_damaged_cell_is_never_returned(stored, damage):
    store, spec = stored
    if damage in FILE_DAMAGE:
        harm, reason = FILE_DAMAGE[damage]
        harm(store.cell_path(spec, "residual"))
    else:
        harm, reason = STORE_DAMAGE[damage]
        harm(store, spec)
    problem = store.cell_problem(spec, "residual")
    assert problem not in (None, "missing") and reason in problem, problem
    assert not store.has_cell(spec, "residual")
    assert store.read_table([spec]).empty
    assert store.read_table([spec], "noise").empty


def test_the_marker_says_what_the_cell_trained_on_and_older_markers_count_as_tensorflow(stored):
    store, spec = stored
    assert not {"backend", "device"} & set(json.loads(store.marker_path(spec, "residual").read_text()))
    assert store.cell_trained_on(spec, "residual") == {"backend": "tensorflow", "device": None}  # before it was kept
    store.write_cell(spec, "shrinkage", cell_frame("shrinkage"), trained_on={"backend": "jax", "device": "gpu"})
    marker = json.loads(store.marker_path(spec, "shrinkage").read_text())
    assert (marker["backend"], marker["device"]) == ("jax", "gpu")
    assert store.cell_trained_on(spec, "shrinkage") == {"backend": "jax", "device": "gpu"}
    assert store.has_cell(spec, "shrinkage")


def test_a_marker_for_a_smaller_grid_is_not_accepted(stored, tmp_path):
    """The marker must match the spec's member count, not only the file's bytes."""
    store, spec = stored
    fewer = make_spec(h_values=(0.1,), trials=1)
    target = store.cell_path(fewer, "residual")
    one_row = cell_frame("residual").iloc[:1]
    text = one_row.to_csv(index=False)
    target.write_text(text)
    marker = {"rows": 6, "sha256": {"csv": hashlib.sha256(text.encode()).hexdigest(), "parts": {}}}
    store.marker_path(fewer, "residual").write_text(json.dumps(marker))
    assert "6 rows" in store.cell_problem(fewer, "residual")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        path = tmp_path / "table.csv"
        atomic_write_text(path, "a\n1\n")
        store = ResultsStore(tmp_path / "out")
        spec = make_spec()
        cell = store.write_cell(spec, "residual", cell_frame("residual"))
    finally:
        os.umask(previous)
    for written in (path, cell, store.marker_path(spec, "residual")):
        assert stat.S_IMODE(written.stat().st_mode) == mode, (written.name, oct(written.stat().st_mode))


def test_cell_lock_waits_for_the_holder_and_reports_it_once(tmp_path):
    store, spec = ResultsStore(tmp_path / "out"), make_spec()
    events = []
    held, release = threading.Event(), threading.Event()

    def holder():
        with store.cell_lock(spec, "residual"):
            held.set()
            release.wait(10)
            store.write_cell(spec, "residual", cell_frame("residual"))
            events.append("holder wrote")

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with store.cell_lock(spec, "residual", on_wait=lambda: events.append("waiting")):
        events.append("got lock")
        done_meanwhile = store.has_cell(spec, "residual")
    thread.join(10)
    assert events == ["waiting", "holder wrote", "got lock"]
    assert time.monotonic() - started >= 0.25
    assert done_meanwhile
    # a free lock is taken at once, without the wait callback
    with store.cell_lock(spec, "residual", on_wait=lambda: events.append("waited again")):
        pass
    assert events[-1] == "got lock"
    lock = store.lock_path(spec, "residual")
    assert lock.parent == store.cells and lock.name.startswith(".")


def small_frame(block, value):
    """A whole cell of ``helpers.make_spec()``'s grid (h 0.1, 0.7 × trials 0, 1): the store only
    returns cells with one row per member."""
    return pd.DataFrame(dict(block=[block] * 4, h=[0.1, 0.1, 0.7, 0.7], trial=[0, 1, 0, 1], test_accuracy=[value] * 4))


def test_read_table_in_spec_and_block_order_and_new_config_new_path(tmp_path):
    store = ResultsStore(tmp_path)
    spec = helpers.make_spec(blocks=("shrinkage", "residual", "batchnorm"))
    # written out of order, one block missing
    store.write_cell(spec, "residual", small_frame("residual", 0.5))
    store.write_cell(spec, "shrinkage", small_frame("shrinkage", 0.25))
    table = store.read_table([spec])
    assert list(table["block"]) == ["shrinkage"] * 4 + ["residual"] * 4
    assert list(table.index) == list(range(8))
    assert store.has_cell(spec, "residual") and not store.has_cell(spec, "batchnorm")
    assert all(not name.endswith(".tmp") for name in helpers.visible_files(store.cells))

    changed = helpers.make_spec(blocks=("shrinkage", "residual", "batchnorm"), epochs=spec.epochs + 1)
    old_path = store.cell_path(spec, "residual")
    new_path = store.cell_path(changed, "residual")
    assert new_path != old_path and new_path.parent == old_path.parent
    before = old_path.read_bytes()
    store.write_cell(changed, "residual", small_frame("residual", 0.75))
    assert old_path.read_bytes() == before, "a changed configuration overwrote an old cell"
    assert len([name for name in helpers.visible_files(store.cells) if name.endswith("csv")]) == 3
    assert list(store.read_table([changed])["test_accuracy"]) == [0.75] * 4
    assert list(store.read_table([spec, changed])["test_accuracy"]) == [0.25] * 4 + [0.5] * 4 + [0.75] * 4
    # a different block or dataset is a different cell too
    assert store.cell_path(spec, "shrinkage") != old_path
    assert store.cell_path(helpers.make_spec(dataset="abalone"), "residual") != old_path


def test_spec_json_records_a_data_file_inside_the_folder_relative_to_it(tmp_path):
    out = tmp_path / "out"
    inside, outside = out / "tx.csv", tmp_path / "elsewhere" / "tx.csv"
    for path in (inside, outside):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("timestamp,label\n1,0\n")
    store = ResultsStore(out)
    specs = [resolve_spec("bitcoin", {"data_path": str(inside)}), resolve_spec("elliptic", {"data_path": str(outside)}),
             resolve_spec("wine")]
    written = json.loads(store.write_spec(specs, {"quick": False}).read_text(encoding="utf-8"))
    paths = [experiment["data_path"] for experiment in written["experiments"]]
    assert paths == ["tx.csv", str(outside.resolve()), None]
    assert str(tmp_path) not in json.dumps(written["experiments"][0])

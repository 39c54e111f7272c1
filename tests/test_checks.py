"""Tests for the one-line checks of a sweep's inputs (``resnet_stability.sweep.checks``),
through the command line: each bad input ends with ONE line on stderr that names it and
says what to do, exit code 2, and nothing written."""

from __future__ import annotations

import json

from helpers import error_lines, one_error_line

from resnet_stability import sweep


def test_quick_refuses_an_out_folder_holding_a_full_run(tmp_path, capfd):
    out = tmp_path / "full"
    out.mkdir()
    (out / "spec.json").write_text(json.dumps({"quick": False, "experiments": []}))
    (out / "results.csv").write_text("dataset,block\nwine,residual\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sweep.main(["--dataset", "wine", "--quick", "--out", str(out)]) == 2
    lines = error_lines(capfd.readouterr().err)
    assert len(lines) == 1 and str(out) in lines[0] and "--quick" in lines[0] and "another --out" in lines[0], lines
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_out_that_is_a_file_is_named(tmp_path, capfd):
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    line = one_error_line(capfd, ["--dataset", "wine", "--quick", "--out", str(target)])
    assert str(target) in line and "not a folder" in line and "Errno" not in line, line
    assert target.read_text() == "not a folder"


def test_empty_data_file_is_named(tmp_path, capfd):
    empty = tmp_path / "BitcoinHeistData.csv"
    empty.write_text("")
    line = one_error_line(capfd, ["--dataset", "bitcoinheist", "--quick", "--data", str(empty),
                                   "--out", str(tmp_path / "o")])
    assert str(empty) in line and "empty" in line and "No columns" not in line, line


def test_source_uci_offline_names_the_dataset_and_the_shipped_copy(tmp_path, capfd, monkeypatch):
    from resnet_stability.data import online

    def offline(id):  # noqa: A002 - ucimlrepo's keyword
        raise ConnectionError("Error connecting to server")

    monkeypatch.setattr(online, "fetch_ucirepo", offline)
    monkeypatch.setenv("RESNET_STABILITY_CACHE", str(tmp_path / "cache"))
    line = one_error_line(capfd, ["--dataset", "wine", "--quick", "--source", "uci", "--out", str(tmp_path / "o")])
    assert "wine" in line and "--source local" in line and "Error connecting to server" in line, line


def test_too_small_test_size_says_how_many_rows_and_what_works(tmp_path, capfd):
    # Wine: 178 rows, 3 classes. 0.01 * 178 = 1.78 -> 2 test rows < 3 classes; a test set needs
    # >= 3 rows (test_size >= 3/178 = 0.01685...) and a training set >= 3 rows (<= 175/178 = 0.98314...).
    line = one_error_line(capfd, ["--dataset", "wine", "--quick", "--test-size", "0.01",
                                   "--out", str(tmp_path / "o")])
    for needle in ("--test-size 0.01", "2 rows", "3 classes", "0.017", "0.983"):
        assert needle in line, line

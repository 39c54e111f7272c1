"""The README's Python snippets run as written, and its commands name real flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs_as_written(index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # snippets may write figures
    exec(compile(SNIPPETS[index], f"README.md snippet {index}", "exec"), {"__name__": "__readme__"})
    assert capsys.readouterr().out.strip()  # every snippet prints what it shows


def _printed(snippet, capsys):
    exec(compile(snippet, "README.md snippet", "exec"), {"__name__": "__readme__"})
    return capsys.readouterr().out.splitlines()


def _snippet(marker):
    (snippet,) = [s for s in SNIPPETS if marker in s]
    return snippet


def _literal_comments(snippet):
    """The comments on ``print(...)`` lines that state a value, e.g. ``# (2, 3)`` or
    ``# True True``, in order."""
    claims = []
    for line in snippet.splitlines():
        match = re.match(r"\s*print\(.*\)\s*#\s*(.+?)\s*$", line)
        if match and re.fullmatch(r"\([\d, ]+\)|(?:True|False)(?: (?:True|False))*", match.group(1)):
            claims.append(match.group(1))
    return claims


def test_readme_block_snippet_prints_the_shapes_its_comments_claim(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    snippet = _snippet("BatchNormResidual(h=0.5)")
    assert _literal_comments(snippet) == ["(2, 3)", "(2, 4, 3)"]
    assert _printed(snippet, capsys) == ["(2, 3)", "(2, 4, 3)"]


def test_readme_stability_snippet_prints_what_its_comments_claim(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    snippet = _snippet("zeros_coefficients(lam=1.0)")
    assert _literal_comments(snippet) == ["True True"]
    out = _printed(snippet, capsys)
    assert out[0] == "True True"
    # "double root at 1": |roots| of (2, -1) are 1 and 1
    assert [float(v) for v in out[1].strip("[]").split()] == [1.0, 1.0]
    assert "double root at 1" in snippet
    # "per block: max |1 + h λ| (Prop. 1), stable?": the head of euler_statistic, 5 blocks
    assert out[2].split() == ["block", "h", "max_euler_factor", "stable"]
    rows = [line.split() for line in out[3:]]
    assert [row[1] for row in rows] == [str(b) for b in range(5)]
    assert all(float(row[2]) == 0.5 and float(row[3]) >= 0 and row[4] in ("True", "False") for row in rows)
    for figure in ("spectra.png", "propagation.png"):
        assert (tmp_path / figure).stat().st_size > 0


def test_readme_dataset_snippet_prints_the_counts_of_the_readme_table(capsys):
    """``print(ds)  # rows, features, class counts`` for Abalone shows the numbers of
    the README's dataset table row for Abalone."""
    snippet = _snippet("load_dataset(\"abalone\")")
    assert "# rows, features, class counts" in snippet
    (row,) = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| Abalone |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    rows, features = int(cells[1]), int(cells[2].split()[0])
    counts = [int(c) for c in cells[3].split(":")[1].split("/")]
    (out,) = _printed(snippet, capsys)
    assert f"n={rows}," in out and f"d={features}," in out
    assert [int(c) for c in re.findall(r"': (\d+)", out)] == counts


def test_readme_sweep_commands_use_existing_flags():
    from resnet_stability.sweep.cli import build_parser

    known = {option for action in build_parser()._actions for option in action.option_strings}
    used = set(re.findall(r"python -m resnet_stability\.sweep[^\n`]*", README.read_text(encoding="utf-8")))
    flags = {flag for command in used for flag in re.findall(r"(--[a-z-]+)", command)}
    assert flags and flags <= known, sorted(flags - known)


def test_readme_layout_names_every_module():
    """The README's Layout section is current: it names every module and subpackage of
    ``resnet_stability``."""
    text = README.read_text(encoding="utf-8")
    layout = text[text.index("## Layout") : text.index("## Licence")]
    package = README.parent / "resnet_stability"
    names = {path.name for path in package.rglob("*.py") if path.name not in ("__init__.py", "__main__.py")}
    names |= {f"{path.name}/" for path in package.iterdir() if (path / "__init__.py").is_file()}
    missing = sorted(name for name in names if not re.search(r"(?<![\w.])" + re.escape(name), layout))
    assert not missing, f"add to the README's Layout section: {', '.join(missing)}"


def test_readme_first_screen_tally_matches_the_committed_claims():
    """The README's one-line answer to "does it reproduce?" is the committed claims table's."""
    import pandas as pd

    text = " ".join(README.read_text(encoding="utf-8").split())
    match = re.search(r"of the paper's (\d+) claims, (\d+) hold, (\d+) are contradicted and (\d+) are inconclusive", text)
    assert match, "the README's first screen should state the claims tally"
    claims = pd.read_csv(README.parent / "reproduction" / "claims.csv")
    overall = claims[claims["dataset"] == "(overall)"]["verdict"].value_counts()
    assert [int(g) for g in match.groups()] == [len(claims["claim"].unique()), overall.get("holds", 0),
                                                overall.get("contradicted", 0), overall.get("inconclusive", 0)]

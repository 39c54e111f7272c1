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


def test_readme_sweep_commands_use_existing_flags():
    from resnet_stability.sweep import build_parser

    known = {option for action in build_parser()._actions for option in action.option_strings}
    used = set(re.findall(r"python -m resnet_stability\.sweep[^\n`]*", README.read_text(encoding="utf-8")))
    flags = {flag for command in used for flag in re.findall(r"(--[a-z-]+)", command)}
    assert flags and flags <= known, sorted(flags - known)

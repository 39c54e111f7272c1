"""REPRODUCTION.md and its writer (``resnet_stability.reproduction.document``):

- the claims table in REPRODUCTION.md is recomputed from the committed CSVs and must be
  identical, so the page cannot drift from the data;
- the writer on a small hand-made reproduction folder, and the offline HTML page of a
  reproduction root.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from helpers import REPO

from resnet_stability.reproduction import run as reproduction
from resnet_stability.reproduction.document import (
    TABLE_END,
    TABLE_START,
    claims_markdown,
    claims_tables,
    write_reproduction,
)

ROOT = REPO / "reproduction"


def test_reproduction_md_claims_table_is_recomputed_from_the_committed_tables():
    text = (REPO / "REPRODUCTION.md").read_text(encoding="utf-8")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    summary, _ = claims_tables(ROOT, "paper")
    assert text[start:end].strip() == claims_markdown(summary).strip()


def fake_results(dataset: str, blocks=("residual", "batchnorm", "shrinkage"), trials: int = 10) -> pd.DataFrame:
    """A results table with a clear pattern: the residual block loses accuracy and
    steadiness as h grows; batch norm and shrinkage do not."""
    rng = np.random.default_rng(0)
    rows = []
    for block in blocks:
        for h in np.round(np.arange(1, 11) * 0.1, 10):
            for trial in range(trials):
                drop, spread = (0.4 * h, 0.2 * h) if block == "residual" else (0.0, 0.01)
                rows.append(dict(dataset=dataset, block=block, h=h, trial=trial, depth=50, diverged=False,
                                 test_accuracy=float(np.clip(0.95 - drop + spread * rng.standard_normal(), 0, 1)),
                                 train_accuracy=1.0))
    return pd.DataFrame(rows)


def test_writer_on_a_hand_made_reproduction(tmp_path):
    root = tmp_path / "reproduction"
    for dataset in ("wine", "adult"):
        (root / "paper" / dataset).mkdir(parents=True)
        fake_results(dataset).to_csv(root / "paper" / dataset / "results.csv", index=False)
    document = write_reproduction(root, tmp_path / "REPRODUCTION.md")
    text = document.read_text(encoding="utf-8")
    summary = pd.read_csv(root / "claims.csv")
    parts = pd.read_csv(root / "claims_parts.csv")
    assert set(summary["claim"]) == {"C1", "C2", "C3", "C4", "C5", "C6"}
    c1 = summary[(summary["claim"] == "C1") & (summary["dataset"] == "(overall)")]
    assert c1["verdict"].item() == "holds"  # residual loses 32-40 points with 16-20x the spread
    assert set(parts["dataset"]) == {"wine", "adult"}
    assert TABLE_START in text and TABLE_END in text and "| C1 |" in text
    assert "_Not run yet._" in text  # abalone, absenteeism, autism
    assert "Bitcoin" in text and "not reproducible" in text


def test_the_sensitivity_run_is_reported_beside_the_main_verdict_never_instead(tmp_path):
    """A learning-rate sensitivity table where the residual block is flat in h (as good and
    as steady as batch norm): C4 holds in the main runs and is contradicted in the
    sensitivity run, shown side by side; the claims table is the main runs' alone."""
    root = tmp_path / "reproduction"
    (root / "paper" / "wine").mkdir(parents=True)
    fake_results("wine").to_csv(root / "paper" / "wine" / "results.csv", index=False)
    flat = fake_results("wine")
    residual = flat["block"] == "residual"
    flat.loc[residual, "test_accuracy"] = 0.95 + 0.01 * np.random.default_rng(1).standard_normal(residual.sum())
    sensitivity = root / reproduction.SENSITIVITY_LR / "wine"
    sensitivity.mkdir(parents=True)
    flat.to_csv(sensitivity / "results.csv", index=False)
    text = write_reproduction(root, tmp_path / "REPRODUCTION.md").read_text(encoding="utf-8")
    assert "| C4 | wine | ✅ holds | ❌ contradicted |" in text
    assert ", 1 reversed (holds ↔ contradicted)," in text
    summary = pd.read_csv(root / "claims.csv")
    assert summary[(summary["claim"] == "C4") & (summary["dataset"] == "wine")]["verdict"].item() == "holds"
    assert (root / reproduction.SENSITIVITY_LR / "claims_parts.csv").exists()


def test_report_of_the_reproduction_root_is_one_offline_page_with_the_claims(tmp_path, monkeypatch):
    import base64

    from resnet_stability import report

    root = tmp_path / "reproduction"
    (root / "paper" / "wine").mkdir(parents=True)
    fake_results("wine").to_csv(root / "paper" / "wine" / "results.csv", index=False)
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
    (root / "paper" / "wine" / "accuracy_vs_h.png").write_bytes(png)
    monkeypatch.chdir(tmp_path)
    assert report.main(["reproduction"]) == 0
    page = (root / "report.html").read_text(encoding="utf-8")
    assert "<table>" in page and "<td>C1</td>" in page and "holds" in page
    assert f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}" in page  # the figure, embedded
    assert "<script" not in page and 'src="http' not in page and "<link" not in page  # nothing fetched
    assert "| C1 |" not in page  # the Markdown table was rendered, not copied


def test_markdown_subset_renders_headings_lists_code_and_emphasis():
    from resnet_stability.reproduction.document import markdown_to_html

    page = markdown_to_html("# Title\n\n- one `x`\n- **two**\n  continued\n\n```\na < b\n```\n\n_note_ text", Path("."))
    assert page == ("<h1>Title</h1>\n<ul><li>one <code>x</code></li><li><strong>two</strong> continued</li></ul>\n"
                    "<pre>a &lt; b</pre>\n<p><em>note</em> text</p>")


def test_verdict_changes_counts_each_kind_of_move():
    from resnet_stability.reproduction.document import verdict_changes

    h, c, i = "holds", "contradicted", "inconclusive"
    text = verdict_changes([(h, h), (i, i), (h, c), (c, h), (h, i), (c, i), (c, i), (i, h)])
    assert text == ("Of 8 verdicts checked at both learning rates: 2 unchanged, 2 reversed (holds ↔ contradicted), "
                    "3 decided at 1e-3 but inconclusive at 1e-2, 1 inconclusive at 1e-3 but decided at 1e-2.")

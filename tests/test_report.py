"""Tests for ``resnet_stability.report``: the self-contained HTML report and its Markdown twin.

Nothing trains here: each test writes a sweep's output folder by hand (results.csv,
spec.json, a small matplotlib PNG, optionally noise_robustness.csv and
accuracy_over_time.csv) in ``tmp_path`` and checks what the report makes of it.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import resnet_stability  # noqa: E402
from resnet_stability import report  # noqa: E402
from resnet_stability.report import write_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# test accuracy per (block, h) for trials 0 and 1; residual at h = 1 diverges in trial 1
ACCURACY = {
    ("residual", 0.5): (0.80, 0.90),
    ("residual", 1.0): (0.70, 0.60),
    ("shrinkage", 0.5): (0.90, 0.94),
    ("shrinkage", 1.0): (0.96, 0.92),
}
DIVERGED = {("residual", 1.0, 1)}
SPEC = {
    "device": "CPU:0 test-machine (2 cores)",
    "jit_compile": False,
    "experiments": [{"dataset": "wine", "blocks": ["residual", "shrinkage"], "h_values": [0.5, 1.0], "trials": 2}],
}


def by_hand(values) -> str:
    """mean ± std (ddof = 1) as the report prints it, computed without pandas."""
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.3f} ± {std:.3f}"


def write_png(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(1.5, 1.0))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path, dpi=40)
    plt.close(fig)
    return path.read_bytes()


def make_results(folder: Path, dataset: str = "wine", noise: bool = True, over_time: bool = True) -> Path:
    """A sweep output folder: two blocks × two h × two trials, figures, spec.json and,
    optionally, the noise-robustness and accuracy-over-time tables."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for (block, h), accuracies in ACCURACY.items():
        for trial, accuracy in enumerate(accuracies):
            diverged = (block, h, trial) in DIVERGED
            rows.append(
                dict(
                    dataset=dataset, block=block, h=h, trial=trial, test_accuracy=accuracy,
                    train_accuracy=accuracy + 0.05, final_loss=float("nan") if diverged else 0.3,
                    diverged=diverged, seconds=0.5, seed=100 + trial, device="CPU:0 test-machine (2 cores)",
                    depth=20, width=13, epochs=50, batch_size=10,
                )  # fmt: skip
            )
    pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)
    (folder / "spec.json").write_text(json.dumps(SPEC, indent=2, sort_keys=True) + "\n")
    write_png(folder / "accuracy_vs_h.png")
    write_png(folder / "figures" / "propagation.png")
    (folder / "cells").mkdir(exist_ok=True)
    if noise:
        noise_rows = [
            dict(dataset=dataset, block=block, h=h, trial=trial, noise="gaussian", level=level,
                 accuracy=round(acc - 2 * level * (1 + trial) * h, 4))
            for (block, h), accs in ACCURACY.items()
            for trial, acc in enumerate(accs)
            for level in (0.0, 0.1)
        ]  # fmt: skip
        pd.DataFrame(noise_rows).to_csv(folder / "noise_robustness.csv", index=False)
    if over_time:
        time_rows = [
            dict(dataset=dataset, block=block, h=h, trial=trial, window=window,
                 window_start=f"2020-0{window + 1}-01", window_end=f"2020-0{window + 2}-01",
                 accuracy=round(acc - 0.1 * window - 0.01 * trial, 4))
            for (block, h), accs in ACCURACY.items()
            for trial, acc in enumerate(accs)
            for window in (0, 1)
        ]  # fmt: skip
        pd.DataFrame(time_rows).to_csv(folder / "accuracy_over_time.csv", index=False)
    return folder


@pytest.fixture
def results_dir(tmp_path) -> Path:
    return make_results(tmp_path / "wine")


def attribute_values(text: str, name: str) -> list[str]:
    return re.findall(rf"""\b{name}\s*=\s*["']([^"']*)["']""", text, flags=re.IGNORECASE)


def table_rows(text: str, css_class: str) -> list[str]:
    return re.findall(rf'<tr class="[^"]*\b{css_class}\b[^"]*">(.*?)</tr>', text)


def test_report_html_and_markdown(results_dir):
    html_path, md_path = write_report(results_dir)
    assert html_path == results_dir / "report.html" and md_path == results_dir / "report.md"
    text = html_path.read_text(encoding="utf-8")
    md = md_path.read_text(encoding="utf-8")

    # every figure, top level and one level down, embedded with its name as caption
    for name in ("accuracy_vs_h.png", "figures/propagation.png"):
        encoded = base64.b64encode((results_dir / name).read_bytes()).decode("ascii")
        assert f'src="data:image/png;base64,{encoded}"' in text
        assert f"<figcaption>{name}</figcaption>" in text
        assert f"]({name})" in md
    assert text.index("accuracy_vs_h.png") < text.index("figures/propagation.png")

    # mean ± std per dataset × block × h, computed by hand
    residual_05 = by_hand([0.80, 0.90])
    assert residual_05 == "0.850 ± 0.071"
    for (block, h), accuracies in ACCURACY.items():
        assert by_hand(accuracies) in text
    assert f"| wine | residual | 0.5 | {residual_05} | 2 | 0 |" in md.replace("**", "")
    # the best h per dataset × block is highlighted (HTML row class, Markdown bold)
    best = table_rows(text, "best")
    assert len(best) == 2
    assert residual_05 in best[0] and "residual" in best[0]
    assert by_hand(ACCURACY[("shrinkage", 1.0)]) in best[1] and "shrinkage" in best[1]
    assert f"| **wine** | **residual** | **0.5** | **{residual_05}** |" in md
    # the diverged count: residual at h = 1 lost one trial of two
    diverged = table_rows(text, "diverged")
    assert len(diverged) == 1 and by_hand([0.70, 0.60]) in diverged[0]
    assert '<td class="diverged">1</td>' in diverged[0]

    # the summary lines
    from resnet_stability.results import summary_lines

    for line in summary_lines(pd.read_csv(results_dir / "results.csv")):
        assert html.escape(line) in text
        assert line in md

    # optional sections, with the sentence that says what they are
    noise = pd.read_csv(results_dir / "noise_robustness.csv")
    picked = noise[(noise.block == "residual") & (noise.level == 0.1)]["accuracy"].tolist()
    assert len(picked) == 4  # averaged over h and trial
    assert "Noise robustness" in text and html.escape(report.NOISE_TEXT) in text
    assert by_hand(picked) in text and by_hand(picked) in md
    over_time = pd.read_csv(results_dir / "accuracy_over_time.csv")
    picked = over_time[(over_time.block == "shrinkage") & (over_time.h == 0.5) & (over_time.window == 1)]
    assert "Accuracy over time" in text and html.escape(report.TIME_TEXT) in text
    assert f"| wine | shrinkage | 0.5 | 1 | 2020-02-01 | 2020-03-01 | {by_hand(picked['accuracy'].tolist())} | 2 |" in md

    # configuration and device
    assert html.escape(json.dumps(SPEC, indent=2, sort_keys=True)) in text
    assert "CPU:0 test-machine (2 cores)" in text and "CPU:0 test-machine (2 cores)" in md

    # versions and generation time
    for label in ("Python", "TensorFlow", "Keras", "numpy", "pandas", "resnet_stability"):
        assert f"<td class=\"text\">{label}</td>" in text
        assert f"| {label} |" in md
    assert platform.python_version() in text
    assert np.__version__ in text and pd.__version__ in text and resnet_stability.__version__ in text
    assert "Report generated " in text and "Report generated " in md

    # the Markdown twin has the table and the same sections
    for heading in ("## Figures", "## Test accuracy by h", "## Summary", "## Noise robustness",
                    "## Accuracy over time", "## Configuration", "## Software versions"):  # fmt: skip
        assert heading in md


def test_html_opens_offline(results_dir):
    html_path, _ = write_report(results_dir)
    text = html_path.read_text(encoding="utf-8")
    for value in attribute_values(text, "src") + attribute_values(text, "href"):
        assert not re.match(r"\s*(https?:)?//", value, flags=re.IGNORECASE), value
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?://""", text, flags=re.IGNORECASE)
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, flags=re.IGNORECASE)
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert "@import" not in text and "url(" not in text
    images = re.findall(r"<img\b[^>]*>", text, flags=re.IGNORECASE)
    assert len(images) == 2
    for tag in images:
        (src,) = attribute_values(tag, "src")
        assert src.startswith("data:image/png;base64,")


def test_optional_sections_absent_without_their_csvs(tmp_path):
    folder = make_results(tmp_path / "plain", noise=False, over_time=False)
    html_path, md_path = write_report(folder)
    text, md = html_path.read_text(encoding="utf-8"), md_path.read_text(encoding="utf-8")
    for needle in ("Noise robustness", "Accuracy over time", report.NOISE_TEXT[:40], report.TIME_TEXT[:40]):
        assert needle not in text and needle not in md
    assert "Test accuracy by h" in text and "0.850 ± 0.071" in md


def test_without_spec_or_figures(tmp_path):
    folder = make_results(tmp_path / "bare", noise=False, over_time=False)
    for path in (folder / "spec.json", folder / "accuracy_vs_h.png", folder / "figures" / "propagation.png"):
        path.unlink()
    html_path, md_path = write_report(folder)
    text = html_path.read_text(encoding="utf-8")
    assert "No spec.json in this folder." in text and "No figures" in text and "<img" not in text
    assert "CPU:0 test-machine (2 cores)" in text  # the device, from results.csv


def test_data_strings_are_escaped(tmp_path):
    folder = make_results(tmp_path / "odd", dataset="<b>wine&co</b>")
    text = write_report(folder)[0].read_text(encoding="utf-8")
    assert "<b>wine" not in text
    assert "&lt;b&gt;wine&amp;co&lt;/b&gt;" in text


def test_out_elsewhere_links_figures_relatively(results_dir, tmp_path):
    out = tmp_path / "reports" / "wine.html"
    html_path, md_path = write_report(results_dir, out)
    assert (html_path, md_path) == (out, out.with_suffix(".md"))
    md = md_path.read_text(encoding="utf-8")
    assert "](../wine/accuracy_vs_h.png)" in md and "](../wine/figures/propagation.png)" in md
    assert not (results_dir / "report.html").exists()
    folder = tmp_path / "reports"  # an existing folder gets report.html / report.md inside
    assert write_report(results_dir, folder) == (folder / "report.html", folder / "report.md")
    with pytest.raises(ValueError, match="HTML file"):
        write_report(results_dir, tmp_path / "report.md")


def test_versions_without_a_package(monkeypatch):
    real = report.metadata.version

    def version(name):
        if name == "tensorflow":
            raise report.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(report.metadata, "version", version)
    versions = dict(report.software_versions())
    assert versions["TensorFlow"] == "not installed"
    assert versions["Python"] == platform.python_version()
    assert versions["resnet_stability"] == resnet_stability.__version__


def test_function_errors_name_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        write_report(missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"no results\.csv in .*empty"):
        write_report(empty)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        write_report(a_file)
    (empty / "results.csv").write_text("dataset,block\nwine,residual\n")
    with pytest.raises(ValueError, match="lacks the column"):
        write_report(empty)


def cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "resnet_stability.report", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("case", ["missing folder", "no results.csv"])
def test_cli_bad_folder_exit_2_one_line(tmp_path, case):
    folder = tmp_path / "no_such_results"
    if case == "no results.csv":
        folder.mkdir()
        write_png(folder / "accuracy_vs_h.png")
    result = cli(str(folder))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(folder) in lines[0], result.stderr
    assert lines[0].startswith("python -m resnet_stability.report: error:")
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (folder / "report.html").exists()


def test_cli_writes_report_without_importing_tensorflow(results_dir, tmp_path):
    out = tmp_path / "out" / "r.html"
    code = (
        "import sys; from resnet_stability import report; "
        f"code = report.main([{str(results_dir)!r}, '--out', {str(out)!r}]); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; sys.exit(code)"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert out.is_file() and out.with_suffix(".md").is_file()
    assert str(out) in result.stdout


def test_interrupted_sweep_folder_says_to_rerun_the_sweep(tmp_path):
    folder = tmp_path / "interrupted"
    (folder / "cells").mkdir(parents=True)
    (folder / "cells" / "wine__residual__0123456789ab.csv").write_text("dataset,block,h,trial\nwine,residual,0.1,0\n")
    (folder / "spec.json").write_text(json.dumps(SPEC))
    with pytest.raises(FileNotFoundError) as info:
        write_report(folder)
    message = str(info.value)
    assert str(folder) in message and "rerun the same" in message and "1 cell file" in message, message
    assert "is this the output folder" not in message


def test_single_trial_std_is_shown_as_undefined(tmp_path):
    folder = make_results(tmp_path / "one", noise=False, over_time=False)
    table = pd.read_csv(folder / "results.csv")
    table[table["trial"] == 0].to_csv(folder / "results.csv", index=False)
    _, md_path = write_report(folder)
    text = md_path.read_text()
    # residual at h = 0.5, trial 0 only: 0.80
    assert "0.800 ± n/a (1 trial)" in text
    assert "± 0.000" not in text

"""``python -m resnet_stability.report RESULTS_DIR``: one self-contained report of a sweep.

Given the reproduction's root instead (``python -m resnet_stability.report reproduction/``),
it writes one offline page of the whole reproduction, claims table included
(:func:`resnet_stability.reproduction.document.write_reproduction_html`).

Reads the output folder of ``python -m resnet_stability.sweep`` and writes

- ``report.html``: opens offline (inline ``<style>``, every figure embedded as a
  ``data:`` URI, no scripts, no external stylesheets, fonts or images);
- ``report.md``: the same content as Markdown, linking the figures by relative path.

Contents: every figure (``*.png`` at the top level of the folder and one level down);
the mean ± std test accuracy per dataset × block × h (:func:`resnet_stability.results.aggregate`)
with diverged counts, the best h per dataset × block highlighted; the summary lines
(:func:`resnet_stability.results.summary_lines`); if present, the noise-robustness table
(``noise_robustness.csv``), the accuracy-over-time table (``accuracy_over_time.csv``) and
the stability-against-accuracy correlations (``stability_correlation.csv``);
the configuration (``spec.json``) and device; the software versions and the generation time.

The report only reads the folder (it imports neither TensorFlow nor Keras), so it is quick
to rerun after a sweep adds cells or figures.
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import html
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from resnet_stability.atomic import atomic_write_text
from resnet_stability.correlation import CORRELATION_COLUMNS
from resnet_stability.results import aggregate, format_mean_std, summary_lines
from resnet_stability.results import mean_std as results_mean_std
from resnet_stability.sweep.store import OUTPUTS

EXIT_USAGE = 2
PROG = "python -m resnet_stability.report"

RESULTS_CSV = OUTPUTS.results
SPEC_JSON = OUTPUTS.spec
NOISE_CSV = OUTPUTS.noise
TIME_CSV = OUTPUTS.over_time
STABILITY_CSV = OUTPUTS.stability

RESULTS_COLUMNS = ("dataset", "block", "h", "test_accuracy", "train_accuracy", "diverged")
NOISE_COLUMNS = ("dataset", "block", "h", "trial", "noise", "level", "accuracy")
TIME_COLUMNS = ("dataset", "block", "h", "trial", "window", "window_start", "window_end", "accuracy")
STABILITY_COLUMNS = tuple(CORRELATION_COLUMNS)

#: The per-h noise table is shown only up to this many rows (else: see the CSV).
NOISE_PER_H_MAX_ROWS = 60

NOISE_TEXT = (
    "Test accuracy of the trained networks when their test inputs are perturbed by noise of "
    "the given kind and level (a robustness check of the forward propagation: a stable block "
    "should lose little accuracy as the level grows). Mean ± std over all h and trials, n = "
    "number of (h, trial) networks."
)
NOISE_PER_H_TEXT = "The same, per h: mean ± std over trials."
TIME_TEXT = (
    "Test accuracy on consecutive time windows of time-evolving data: window k covers "
    "window_start to window_end; a falling accuracy over the windows shows how a network "
    "trained on earlier data copes with later data. Mean ± std over trials per dataset × "
    "block × h × window."
)
STABILITY_TEXT = (
    "Spearman's rank correlation ρ, over the trained networks, of the Prop. 1 statistic euler_max "
    "(max |1 + hλ| over blocks and 64 test inputs, λ the eigenvalues of a block's field Jacobian) "
    "with test accuracy, with a 95% percentile bootstrap interval over networks (10 000 resamples, "
    "seed 0). The paper's thesis predicts ρ < 0. block 'all': every block of the dataset together; "
    "members 'not_diverged': without diverged networks; n_inf: networks whose statistic is infinite "
    f"(diverged, non-finite Jacobian). See {OUTPUTS.png(OUTPUTS.stability_figure)}."
)

VERSION_PACKAGES = (("TensorFlow", "tensorflow"), ("Keras", "keras"), ("numpy", "numpy"), ("pandas", "pandas"))

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f0f0f0; }
td.text, th.text { text-align: left; }
tr.best td { background: #e3f4e1; font-weight: 600; }
tr.diverged td.diverged { color: #b00020; font-weight: 600; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-family: monospace; font-size: .9em; color: #555; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: .8em; overflow-x: auto; font-size: .85em; }
p.note { color: #555; }
nav ul { columns: 2; }
""".strip()


# --------------------------------------------------------------------------- reading


def _check_folder(results_dir) -> Path:
    folder = Path(results_dir)
    if not folder.exists():
        raise FileNotFoundError(f"results folder not found: {folder}")
    if not folder.is_dir():
        raise ValueError(f"not a folder: {folder} (give the output folder of a sweep)")
    if not (folder / RESULTS_CSV).is_file():
        cells = [p for p in (folder / "cells").glob("*.csv")] if (folder / "cells").is_dir() else []
        if cells or (folder / SPEC_JSON).is_file():
            raise FileNotFoundError(
                f"no {RESULTS_CSV} in {folder} yet: the sweep writing it did not finish ({len(cells)} cell file(s) "
                "in cells/); rerun the same python -m resnet_stability.sweep command to finish it (finished cells "
                "are kept), then make the report"
            )
        raise FileNotFoundError(
            f"no {RESULTS_CSV} in {folder} (is this the output folder of python -m resnet_stability.sweep?)"
        )
    return folder


def _read_csv(path: Path, required, allow_empty: bool = False) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing and not (allow_empty and frame.empty):
        raise ValueError(f"{path} lacks the column(s) {', '.join(missing)}; expected {', '.join(required)}")
    if frame.empty and not allow_empty:
        raise ValueError(f"{path} has no rows")
    return frame


def _read_spec(folder: Path):
    path = folder / SPEC_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None


def find_figures(folder: Path) -> list[Path]:
    """Every ``*.png`` at the top level of ``folder`` and one level down, sorted by
    relative path; hidden files and folders (temporary files) are skipped."""
    found = list(folder.glob("*.png")) + list(folder.glob("*/*.png"))
    visible = [
        p for p in found if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(visible, key=lambda p: p.relative_to(folder).as_posix())


def software_versions() -> list[tuple[str, str]]:
    """(name, version) of Python, TensorFlow, Keras, numpy, pandas and resnet_stability;
    read from the installed distributions, so TensorFlow is not imported."""
    from resnet_stability import __version__

    versions = [("Python", platform.python_version())]
    for label, dist in VERSION_PACKAGES:
        try:
            versions.append((label, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            versions.append((label, "not installed"))
    versions.append(("resnet_stability", __version__))
    return versions


# --------------------------------------------------------------------------- tables


def _ordered(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Sort ``frame`` by ``keys``: text keys in order of first appearance, numeric ascending."""
    ranks = {}
    for key in keys:
        column = frame[key]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            ranks[f"_rank_{key}"] = column
        else:
            order = {value: rank for rank, value in enumerate(dict.fromkeys(column))}
            ranks[f"_rank_{key}"] = column.map(order)
    ranked = frame.assign(**ranks)
    return ranked.sort_values(list(ranks), kind="stable").drop(columns=list(ranks)).reset_index(drop=True)


def mean_std(frame: pd.DataFrame, keys: list[str], value: str = "accuracy") -> pd.DataFrame:
    """:func:`resnet_stability.results.mean_std` of ``value`` per ``keys``, ordered for display."""
    return _ordered(results_mean_std(frame, keys, value), keys)


def _pm(mean, std, count=None, unit: str = "trial") -> str:
    """Mean ± std; an undefined std (a single value) as "± n/a (1 trial)"."""
    return format_mean_std(mean, std, count, unit)


def _text(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class Table:
    """A table as plain strings: header, rows, per-row CSS classes, text columns."""

    def __init__(self, header, rows, text_columns=(), row_classes=None):
        self.header = list(header)
        self.rows = [list(row) for row in rows]
        self.text_columns = set(text_columns)
        self.row_classes = row_classes or [""] * len(self.rows)

    def html(self) -> str:
        def cell(tag, column, value, extra=""):
            classes = " ".join(c for c in ("text" if column in self.text_columns else "", extra) if c)
            attr = f' class="{classes}"' if classes else ""
            return f"<{tag}{attr}>{html.escape(str(value))}</{tag}>"

        head = "".join(cell("th", c, c) for c in self.header)
        body = []
        for row, classes in zip(self.rows, self.row_classes):
            attr = f' class="{classes}"' if classes else ""
            cells = "".join(
                cell("td", c, v, "diverged" if c == "diverged" else "") for c, v in zip(self.header, row)
            )
            body.append(f"<tr{attr}>{cells}</tr>")
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"

    def markdown(self, bold_rows=()) -> str:
        def md(value) -> str:
            return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

        aligns = [":---" if c in self.text_columns else "---:" for c in self.header]
        lines = ["| " + " | ".join(md(c) for c in self.header) + " |", "| " + " | ".join(aligns) + " |"]
        for number, row in enumerate(self.rows):
            cells = [md(v) for v in row]
            if number in bold_rows:
                cells = [f"**{c}**" if c else c for c in cells]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def accuracy_table(table: pd.DataFrame) -> tuple[Table, list[int]]:
    """Mean ± std per dataset × block × h from :func:`aggregate`, and the row numbers of
    the best h (highest mean test accuracy; the smaller h on a tie) per dataset × block."""
    agg = aggregate(table)
    best = set()
    for _, rows in agg.groupby(["dataset", "block"], sort=False):
        means = rows["mean"].dropna()
        if not means.empty:
            best.add(means.idxmax())
    rows, classes, best_rows = [], [], []
    for number, row in agg.iterrows():
        is_best = number in best
        rows.append(
            [
                row["dataset"],
                row["block"],
                _text(row["h"]),
                _pm(row["mean"], row["std"], row["trials"]),
                int(row["trials"]),
                int(row["diverged"]),
                "n/a" if pd.isna(row["train_mean"]) else f"{row['train_mean']:.3f}",
                "★ best" if is_best else "",
            ]
        )
        classes.append(" ".join(c for c in ("best" if is_best else "", "diverged" if row["diverged"] else "") if c))
        if is_best:
            best_rows.append(number)
    header = ["dataset", "block", "h", "test accuracy (mean ± std)", "trials", "diverged", "train accuracy (mean)", "best h"]
    return Table(header, rows, text_columns={"dataset", "block", "best h"}, row_classes=classes), best_rows


def noise_tables(noise: pd.DataFrame) -> tuple[Table, Table | None]:
    """Averaged over h and trial; and per h if that table has at most
    :data:`NOISE_PER_H_MAX_ROWS` rows (else None)."""
    overall = mean_std(noise, ["dataset", "block", "noise", "level"])
    header = ["dataset", "block", "noise", "level", "accuracy (mean ± std)", "n"]
    table = Table(
        header,
        ([r.dataset, r.block, r.noise, _text(r.level), _pm(r.mean, r.std, r.n, "network"), int(r.n)]
         for r in overall.itertuples()),
        text_columns={"dataset", "block", "noise"},
    )
    per_h = mean_std(noise, ["dataset", "block", "h", "noise", "level"])
    if len(per_h) > NOISE_PER_H_MAX_ROWS:
        return table, None
    header_h = ["dataset", "block", "h", "noise", "level", "accuracy (mean ± std)", "trials"]
    table_h = Table(
        header_h,
        (
            [r.dataset, r.block, _text(r.h), r.noise, _text(r.level), _pm(r.mean, r.std, r.n), int(r.n)]
            for r in per_h.itertuples()
        ),
        text_columns={"dataset", "block", "noise"},
    )
    return table, table_h


def stability_table(correlations: pd.DataFrame) -> Table:
    """ρ [2.5%, 97.5%] per dataset × block × members subset (``stability_correlation.csv``)."""
    def interval(r):
        return "n/a" if pd.isna(r.spearman) else f"{r.spearman:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}]"

    header = ["dataset", "block", "members", "n", "infinite", "Spearman ρ [95% CI]"]
    rows = ([r.dataset, r.block, r.members, int(r.n), int(r.n_inf), interval(r)] for r in correlations.itertuples())
    return Table(header, rows, text_columns={"dataset", "block", "members"})


def time_table(over_time: pd.DataFrame) -> Table:
    keys = ["dataset", "block", "h", "window"]
    stats = mean_std(over_time, keys)
    bounds = over_time.groupby(keys, sort=False, dropna=False)[["window_start", "window_end"]].first().reset_index()
    stats = stats.merge(bounds, on=keys, how="left", sort=False)
    header = ["dataset", "block", "h", "window", "window start", "window end", "accuracy (mean ± std)", "trials"]
    rows = (
        [r.dataset, r.block, _text(r.h), _text(r.window), _text(r.window_start), _text(r.window_end), _pm(r.mean, r.std, r.n), int(r.n)]
        for r in stats.itertuples()
    )
    return Table(header, rows, text_columns={"dataset", "block", "window start", "window end"})


# --------------------------------------------------------------------------- writing


def _default_paths(folder: Path, out) -> tuple[Path, Path]:
    if out is None:
        html_path = folder / "report.html"
    else:
        html_path = Path(out)
        if html_path.is_dir() or str(out).endswith(("/", os.sep)):
            html_path = html_path / "report.html"
    md_path = html_path.with_suffix(".md")
    if md_path == html_path:
        raise ValueError(f"--out {out}: give the HTML file (e.g. report.html); the Markdown twin goes beside it")
    return html_path, md_path


def write_report(results_dir, out=None) -> tuple[Path, Path]:
    """Write the HTML report of the sweep in ``results_dir`` and its Markdown twin.

    ``out``: the HTML file (default ``results_dir/report.html``; an existing folder gets
    ``report.html`` inside); the Markdown goes beside it with the suffix ``.md``.
    Returns ``(html_path, markdown_path)``.

    Raises FileNotFoundError for a missing folder or a folder without ``results.csv``,
    ValueError for a file where a folder is expected or for unreadable inputs (empty
    ``results.csv``, missing columns, invalid ``spec.json``), each naming the path.
    """
    folder = _check_folder(results_dir)
    html_path, md_path = _default_paths(folder, out)
    table = _read_csv(folder / RESULTS_CSV, RESULTS_COLUMNS)
    noise = _read_csv(folder / NOISE_CSV, NOISE_COLUMNS, allow_empty=True) if (folder / NOISE_CSV).is_file() else None
    over_time = _read_csv(folder / TIME_CSV, TIME_COLUMNS, allow_empty=True) if (folder / TIME_CSV).is_file() else None
    stability = (_read_csv(folder / STABILITY_CSV, STABILITY_COLUMNS, allow_empty=True)
                 if (folder / STABILITY_CSV).is_file() else None)
    spec = _read_spec(folder)

    accuracy, best_rows = accuracy_table(table)
    lines = summary_lines(table)
    noise_parts = noise_tables(noise) if noise is not None and not noise.empty else None
    time_part = time_table(over_time) if over_time is not None and not over_time.empty else None
    figures = find_figures(folder)
    versions = software_versions()
    generated = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    devices = list(dict.fromkeys(str(d) for d in table["device"].dropna())) if "device" in table else []
    spec_device = spec.get("device") if isinstance(spec, dict) else None
    spec_text = json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) if spec is not None else None

    overview = [
        ("results folder", str(folder.resolve())),
        ("datasets", ", ".join(dict.fromkeys(map(str, table["dataset"])))),
        ("blocks", ", ".join(dict.fromkeys(map(str, table["block"])))),
        ("h values", ", ".join(_text(h) for h in sorted(table["h"].dropna().unique()))),
        ("networks (rows of results.csv)", str(len(table))),
        ("diverged", str(int(table["diverged"].astype(bool).sum()))),
    ]
    if "seconds" in table:
        overview.append(("training time (sum over networks)", f"{table['seconds'].sum():.1f} s"))
    overview.append(("generated", generated))

    sections = {
        "figures": figures,
        "accuracy": accuracy,
        "summary": lines,
        "noise": noise_parts,
        "time": time_part,
        "stability": stability_table(stability) if stability is not None and not stability.empty else None,
        "spec_text": spec_text,
        "spec_device": spec_device,
        "devices": devices,
        "versions": versions,
        "overview": overview,
        "best_rows": best_rows,
    }
    title = f"resnet_stability report — {folder.resolve().name}"
    html_text = _render_html(title, folder, sections)
    md_text = _render_markdown(title, folder, md_path, sections)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(html_path, html_text)
    atomic_write_text(md_path, md_text)
    return html_path, md_path


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _render_html(title: str, folder: Path, s: dict) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title>",
        f"<style>\n{STYLE}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{e(title)}</h1>",
    ]
    toc = [("overview", "Overview"), ("figures", "Figures"), ("accuracy", "Test accuracy by h"), ("summary", "Summary")]
    if s["noise"] is not None:
        toc.append(("noise", "Noise robustness"))
    if s["time"] is not None:
        toc.append(("time", "Accuracy over time"))
    if s["stability"] is not None:
        toc.append(("stability", "Stability and accuracy"))
    toc += [("configuration", "Configuration"), ("versions", "Software versions")]
    parts.append("<nav><ul>" + "".join(f'<li><a href="#{a}">{e(t)}</a></li>' for a, t in toc) + "</ul></nav>")

    parts.append('<h2 id="overview">Overview</h2>')
    parts.append(Table(["item", "value"], s["overview"], text_columns={"item", "value"}).html())

    parts.append('<h2 id="figures">Figures</h2>')
    if not s["figures"]:
        parts.append('<p class="note">No figures (*.png) in this folder.</p>')
    for path in s["figures"]:
        name = path.relative_to(folder).as_posix()
        parts.append(
            f'<figure><img src="{_data_uri(path)}" alt="{e(name)}"><figcaption>{e(name)}</figcaption></figure>'
        )

    parts.append('<h2 id="accuracy">Test accuracy by h</h2>')
    parts.append(
        "<p>Mean ± std (ddof = 1) of test accuracy over trials per dataset × block × h, with the "
        "number of diverged trials (loss NaN/inf; their accuracy is still counted). "
        "The highlighted row is the best h (highest mean) per dataset × block.</p>"
    )
    parts.append(s["accuracy"].html())

    parts.append('<h2 id="summary">Summary</h2>')
    parts.append("<pre>" + e("\n".join(s["summary"])) + "</pre>")

    if s["noise"] is not None:
        overall, per_h = s["noise"]
        parts.append('<h2 id="noise">Noise robustness</h2>')
        parts.append(f"<p>{e(NOISE_TEXT)}</p>")
        parts.append(overall.html())
        if per_h is not None:
            parts.append(f"<p>{e(NOISE_PER_H_TEXT)}</p>")
            parts.append(per_h.html())
        else:
            parts.append(f'<p class="note">The per-h table is long; see {e(NOISE_CSV)}.</p>')

    if s["time"] is not None:
        parts.append('<h2 id="time">Accuracy over time</h2>')
        parts.append(f"<p>{e(TIME_TEXT)}</p>")
        parts.append(s["time"].html())

    if s["stability"] is not None:
        parts.append('<h2 id="stability">Stability and accuracy</h2>')
        parts.append(f"<p>{e(STABILITY_TEXT)}</p>")
        parts.append(s["stability"].html())

    parts.append('<h2 id="configuration">Configuration</h2>')
    parts.append(f"<p>Device (spec.json): <code>{e(str(s['spec_device'] or 'not recorded'))}</code></p>")
    if s["devices"]:
        parts.append(
            "<p>Devices recorded in results.csv: " + ", ".join(f"<code>{e(d)}</code>" for d in s["devices"]) + "</p>"
        )
    if s["spec_text"] is None:
        parts.append(f'<p class="note">No {e(SPEC_JSON)} in this folder.</p>')
    else:
        parts.append(f"<p>Resolved configuration ({e(SPEC_JSON)}):</p>")
        parts.append(f"<pre>{e(s['spec_text'])}</pre>")

    parts.append('<h2 id="versions">Software versions</h2>')
    parts.append(Table(["package", "version"], s["versions"], text_columns={"package", "version"}).html())
    parts.append(f"<p>Report generated {e(s['overview'][-1][1])} by {e(PROG)}.</p>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _render_markdown(title: str, folder: Path, md_path: Path, s: dict) -> str:
    parts = [f"# {title}", "", "## Overview", "", Table(["item", "value"], s["overview"], {"item", "value"}).markdown()]
    parts += ["", "## Figures", ""]
    if not s["figures"]:
        parts.append("No figures (*.png) in this folder.")
    for path in s["figures"]:
        name = path.relative_to(folder).as_posix()
        link = Path(os.path.relpath(path.resolve(), md_path.parent.resolve())).as_posix()
        parts += [f"![{name}]({quote(link)})", "", f"*{name}*", ""]
    parts += [
        "",
        "## Test accuracy by h",
        "",
        "Mean ± std (ddof = 1) of test accuracy over trials per dataset × block × h, with the number of "
        "diverged trials (loss NaN/inf; their accuracy is still counted). Bold: the best h (highest mean) "
        "per dataset × block.",
        "",
        s["accuracy"].markdown(bold_rows=set(s["best_rows"])),
        "",
        "## Summary",
        "",
        "```",
        *s["summary"],
        "```",
    ]
    if s["noise"] is not None:
        overall, per_h = s["noise"]
        parts += ["", "## Noise robustness", "", NOISE_TEXT, "", overall.markdown()]
        if per_h is not None:
            parts += ["", NOISE_PER_H_TEXT, "", per_h.markdown()]
        else:
            parts += ["", f"The per-h table is long; see {NOISE_CSV}."]
    if s["time"] is not None:
        parts += ["", "## Accuracy over time", "", TIME_TEXT, "", s["time"].markdown()]
    if s["stability"] is not None:
        parts += ["", "## Stability and accuracy", "", STABILITY_TEXT, "", s["stability"].markdown()]
    parts += ["", "## Configuration", "", f"Device (spec.json): `{s['spec_device'] or 'not recorded'}`"]
    if s["devices"]:
        parts += ["", "Devices recorded in results.csv: " + ", ".join(f"`{d}`" for d in s["devices"])]
    if s["spec_text"] is None:
        parts += ["", f"No {SPEC_JSON} in this folder."]
    else:
        parts += ["", f"Resolved configuration ({SPEC_JSON}):", "", "```json", s["spec_text"], "```"]
    parts += ["", "## Software versions", "", Table(["package", "version"], s["versions"], {"package", "version"}).markdown()]
    parts += ["", f"Report generated {s['overview'][-1][1]} by {PROG}.", ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- CLI


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument gives ONE error line (and exit code 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", type=Path, metavar="RESULTS_DIR", help="output folder of a sweep, or the reproduction/ folder")
    parser.add_argument("--out", help="HTML file to write (default RESULTS_DIR/report.html); report.md goes beside it")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        from resnet_stability.reproduction.document import is_reproduction_root, write_reproduction_html

        if is_reproduction_root(args.results_dir):  # the whole reproduction: one page, claims table included
            print(f"wrote {write_reproduction_html(args.results_dir, args.out)}")
            return 0
        html_path, md_path = write_report(args.results_dir, args.out)
    except (OSError, ValueError) as error:
        message = " ".join(str(error).split())  # one line
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {html_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

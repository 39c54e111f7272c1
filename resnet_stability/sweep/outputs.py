"""What a finished sweep writes from its cells: the tables, figures and summary.

:func:`write_outputs` reads the finished cells of the store and writes, under the
names in :data:`~resnet_stability.sweep.store.OUTPUTS`:

- always: ``results.csv`` (one row per network), ``accuracy_by_h.csv`` (mean ± std per
  dataset × block × h), the ``accuracy_vs_h`` figure and ``summary.txt``;
- with time windows: ``accuracy_over_time.csv`` and its figure;
- with noise scores: ``noise_robustness.csv`` and its figure;
- where members carry the Prop. 1 statistic ``euler_max``: ``stability_correlation.csv``
  (Spearman's ρ against test accuracy, :mod:`resnet_stability.correlation`) and the
  ``stability_vs_accuracy`` scatter, plus its transfer to noise and to later time
  windows (:func:`write_stability_extras`);
- with ``--learn-h``: ``learned_h.csv`` and its figure; with ``--levels``:
  ``accuracy_by_level.csv`` and its figure.

Every file is written atomically; nothing here trains or changes a cell.
"""

from __future__ import annotations

from pathlib import Path

from resnet_stability.atomic import atomic_write_csv, atomic_write_text
from resnet_stability.sweep.store import OUTPUTS, ResultsStore


def write_outputs(store: ResultsStore, specs, notes: dict, quick: bool = False) -> tuple[list[Path], list[str]]:
    """Write every table and figure of the finished cells of ``specs`` in ``store``;
    ``notes`` is per dataset (``synthetic``: title its panels "[synthetic data]";
    ``windows``: the time windows, for the over-time figure). Returns the paths written
    and the summary's lines."""
    from resnet_stability.plots import (
        plot_accuracy_by_level,
        plot_accuracy_over_time,
        plot_accuracy_vs_h,
        plot_learned_h,
        plot_noise_robustness,
    )
    from resnet_stability.results import aggregate, learned_h_table, level_accuracy_table, summary_lines

    table = store.read_table(specs)
    note = " [quick]" if quick else ""
    panel_notes = {name: " [synthetic data]" for name, n in notes.items() if n["synthetic"]}  # per dataset
    written = [store.write_table(table), atomic_write_csv(store.path(OUTPUTS.accuracy_by_h), aggregate(table))]
    written += plot_accuracy_vs_h(table, store.path(OUTPUTS.accuracy_vs_h), title_note=note, panel_notes=panel_notes)
    over_time = store.read_table(specs, "over_time")
    if len(over_time):
        windows = "; ".join(f"{name}: {n['windows']}" for name, n in notes.items() if "windows" in n)
        written.append(atomic_write_csv(store.path(OUTPUTS.over_time), over_time))
        written += plot_accuracy_over_time(over_time, store.path(OUTPUTS.over_time_figure), windows, title_note=note,
                                           panel_notes=panel_notes)
    noise = store.read_table(specs, "noise")
    if len(noise):
        written.append(atomic_write_csv(store.path(OUTPUTS.noise), noise))
        written += plot_noise_robustness(noise, store.path(OUTPUTS.noise_figure), title_note=note,
                                         panel_notes=panel_notes)
    written += write_stability_outputs(table, store.out, note, panel_notes, noise, over_time)
    learned = learned_h_table(table)
    if len(learned):
        written.append(atomic_write_csv(store.path(OUTPUTS.learned_h), learned))
        written += plot_learned_h(table, store.path(OUTPUTS.learned_h_figure), title_note=note,
                                  panel_notes=panel_notes)
    by_level = level_accuracy_table(table)
    if len(by_level):
        written.append(atomic_write_csv(store.path(OUTPUTS.by_level), by_level))
        written += plot_accuracy_by_level(table, store.path(OUTPUTS.by_level_figure), title_note=note,
                                          panel_notes=panel_notes)
    lines = summary_lines(table)
    atomic_write_text(store.path(OUTPUTS.summary), "\n".join(lines) + "\n")
    written.append(store.path(OUTPUTS.summary))
    return written, lines


def write_stability_outputs(table, out: Path, note: str = "", panel_notes: dict | None = None,
                            noise=None, over_time=None) -> list[Path]:
    """``stability_correlation.csv`` (Spearman's ρ of ``euler_max`` against test accuracy,
    per dataset and block, :func:`~resnet_stability.correlation.stability_correlations`)
    and the ``stability_vs_accuracy`` figure, where the table has the statistic for some
    member, and :func:`write_stability_extras` for ``noise`` and ``over_time``; else
    nothing."""
    if "euler_max" not in table.columns or not table["euler_max"].notna().any():
        return []
    from resnet_stability.correlation import stability_correlations
    from resnet_stability.plots import plot_stability_vs_accuracy

    out = Path(out)
    correlations = stability_correlations(table)
    written = [atomic_write_csv(out / OUTPUTS.stability, correlations)] + plot_stability_vs_accuracy(
        table, correlations, out / OUTPUTS.stability_figure, title_note=note, panel_notes=panel_notes)
    return written + write_stability_extras(table, out, noise, over_time)


def write_stability_extras(table, out: Path, noise=None, over_time=None) -> list[Path]:
    """With noise scores: ``stability_noise_correlation.csv`` (ρ of ``euler_max`` against
    the accuracy lost per noise kind and level) and the ``stability_vs_noise_loss``
    scatter (at each kind's largest level); with time windows:
    ``stability_time_correlation.csv`` (ρ against the accuracy on each window) and the
    ``stability_vs_time`` scatter (on the last window)."""
    import pandas as pd

    from resnet_stability.correlation import noise_loss_correlations, noise_losses, window_correlations, with_statistic
    from resnet_stability.plots import plot_stability_vs_accuracy

    out = Path(out)
    written = []
    if noise is not None and len(noise):
        correlations = noise_loss_correlations(table, noise)
        written.append(atomic_write_csv(out / OUTPUTS.stability_noise, correlations))
        losses = noise_losses(table, noise)
        frames, lines = [], []
        for kind in dict.fromkeys(losses["noise"]):  # one panel per dataset and kind, at the kind's largest level
            level = losses.loc[losses["noise"] == kind, "level"].max()
            label = f"{kind} noise {level:g}"
            frames.append(_panel(losses[(losses["noise"] == kind) & (losses["level"] == level)], label))
            lines.append(_panel(correlations[(correlations["noise"] == kind) & (correlations["level"] == level)], label))
        if frames:
            written += plot_stability_vs_accuracy(pd.concat(frames), pd.concat(lines),
                                                  out / OUTPUTS.stability_noise_figure,
                                                  outcome="accuracy_lost", ylabel="accuracy lost under noise")
    if over_time is not None and len(over_time):
        correlations = window_correlations(table, over_time)
        written.append(atomic_write_csv(out / OUTPUTS.stability_time, correlations))
        last = over_time["window"].max()  # the window furthest from the training span
        label = f"window {last}"
        written += plot_stability_vs_accuracy(
            _panel(with_statistic(table, over_time[over_time["window"] == last]), label),
            _panel(correlations[correlations["window"] == last], label), out / OUTPUTS.stability_time_figure,
            outcome="accuracy", ylabel=f"accuracy on the last time window ({last})",
        )
    return written


def _panel(frame, label: str):
    """``frame`` with its datasets renamed "<dataset> · label": one scatter panel each."""
    return frame.assign(dataset=frame["dataset"].astype(str) + " · " + label)

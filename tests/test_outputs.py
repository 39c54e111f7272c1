"""Tests for what a finished sweep writes (``resnet_stability.sweep.outputs``): every
file at the top of its folder is named in the store's ``OUTPUTS``, and the transfer
scatters plot the members the docstring says."""

from __future__ import annotations

import dataclasses

import numpy as np
from helpers import hand_transfer_tables

from resnet_stability import sweep
from resnet_stability.sweep import outputs
from resnet_stability.sweep.store import OUTPUTS


def test_every_file_a_sweep_writes_is_named_in_outputs(tmp_path, capsys):
    """One place for the names: a sweep with noise scores, learned h and two levels writes
    nothing at the top of its folder that ``OUTPUTS`` does not name, and every name of the
    outputs it has is there."""
    out = tmp_path / "o"
    args = ["--dataset", "wine", "--quick", "--blocks", "residual", "--trials", "1", "--epochs", "1", "--depth", "2",
            "--h", "0.2,0.4", "--noise", "0.5", "--noise-kinds", "gaussian", "--learn-h", "--levels", "2",
            "--out", str(out)]
    assert sweep.main(args) == 0
    capsys.readouterr()
    names = dataclasses.asdict(OUTPUTS)
    allowed = {name for key, name in names.items() if not key.endswith("figure") and key != "accuracy_vs_h"}
    allowed |= {f"{stem}{suffix}" for key, stem in names.items() if key.endswith("figure") or key == "accuracy_vs_h"
                for suffix in (".png", ".pdf")}
    written = {path.name for path in out.iterdir() if path.is_file()}
    assert written <= allowed, written - allowed
    expected = {OUTPUTS.results, OUTPUTS.spec, OUTPUTS.summary, OUTPUTS.accuracy_by_h, OUTPUTS.png(OUTPUTS.accuracy_vs_h),
                OUTPUTS.noise, OUTPUTS.png(OUTPUTS.noise_figure), OUTPUTS.stability, OUTPUTS.stability_noise,
                OUTPUTS.png(OUTPUTS.stability_noise_figure), OUTPUTS.learned_h, OUTPUTS.png(OUTPUTS.learned_h_figure),
                OUTPUTS.by_level, OUTPUTS.png(OUTPUTS.by_level_figure)}
    assert expected <= written, expected - written
    assert len(set(names.values())) == len(names)  # no two outputs share a name


def test_transfer_scatters_plot_the_largest_noise_level_and_the_last_window(tmp_path, monkeypatch):
    """stability_vs_noise_loss: the members' loss at the kind's largest level (1.0, not
    0.5) against euler_max; stability_vs_time: the accuracy on the last window."""
    from resnet_stability import plots

    results, noise, windows = hand_transfer_tables()
    drawn = {}
    original = plots.plot_stability_vs_accuracy

    def record(table, correlations, path_stem, **kwargs):
        drawn[path_stem.name] = (table, correlations, kwargs)
        return original(table, correlations, path_stem, **kwargs)

    monkeypatch.setattr(plots, "plot_stability_vs_accuracy", record)
    written = outputs.write_stability_extras(results, tmp_path, noise=noise, over_time=windows)
    names = {p.name for p in written}
    assert {"stability_vs_noise_loss.png", "stability_vs_time.png", "stability_noise_correlation.csv",
            "stability_time_correlation.csv"} <= names
    table, correlations, kwargs = drawn["stability_vs_noise_loss"]
    assert kwargs["outcome"] == "accuracy_lost" and set(table["level"]) == {1.0}
    expected = np.where(np.isinf(table["euler_max"]), 0.0, 0.1 * table["euler_max"])
    np.testing.assert_allclose(table["accuracy_lost"], expected, atol=1e-12)
    assert set(table["dataset"]) == set(correlations["dataset"]) == {"wine · gaussian noise 1"}
    assert set(correlations["level"]) == {1.0}
    table, correlations, kwargs = drawn["stability_vs_time"]
    assert kwargs["outcome"] == "accuracy" and set(table["window"]) == {2} and (table["accuracy"] == 0.5).all()
    assert set(correlations["window"]) == {2} and len(table) == len(results)

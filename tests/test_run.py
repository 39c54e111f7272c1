"""The committed reproduction (``reproduction/``) against today's code
(``resnet_stability.reproduction.run``): every committed results table carries the
configuration hash of today's presets and of the experiment's command (``SWEEPS``), so
the reproduction cannot silently go stale when a preset or the trainer's configuration
changes; and two committed Wine networks, retrained by today's trainer, end at the
committed numbers (so neither can the trainer's numbers drift unnoticed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import REPO

from resnet_stability.reproduction.run import SWEEPS, sweep_command

ROOT = REPO / "reproduction"
COMMITTED = sorted(name for name in SWEEPS if (ROOT / name / "results.csv").exists())


def resolved_specs(name: str):
    """The specs the sweep command of experiment ``name`` resolves to today (the simulated
    Bitcoin demo: with its committed simulated file, which the cell hash names by content)."""
    from resnet_stability.sweep.cli import build_parser, resolve_specs, with_simulated_bitcoin

    args = build_parser().parse_args(SWEEPS[name] + ["--out", str(ROOT / name)])
    return [with_simulated_bitcoin(spec, ROOT / name, quick=False) for spec in resolve_specs(args)]


def test_the_reproduction_has_been_run_and_committed():
    assert (REPO / "REPRODUCTION.md").exists()
    assert "paper/wine" in COMMITTED, "the committed reproduction should hold at least the Wine sweep"


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_results_carry_todays_configuration_hash(name):
    table = pd.read_csv(ROOT / name / "results.csv")
    specs = resolved_specs(name)
    assert set(table["dataset"]) == {spec.dataset for spec in specs}, f"{name}: not every dataset has finished"
    for spec in specs:
        part = table[table["dataset"] == spec.dataset]
        assert set(part["block"]) == set(spec.blocks), f"{name}: not every block of the experiment has finished"
        for block, rows in part.groupby("block"):
            assert set(rows["config_hash"]) == {spec.cell_hash(block)}, (
                f"{name} × {spec.dataset} × {block}: the committed cells were computed with another configuration; "
                f"rerun {' '.join(sweep_command(name))}"
            )
            assert len(rows) == spec.members_per_cell


def test_todays_trainer_still_trains_committed_wine_networks_to_the_committed_numbers():
    """Two members of the committed paper/wine residual cell (h = 0.1 trial 0, h = 0.5
    trial 5), retrained alone by today's trainer at the paper's preset, end where the
    committed rows say: the reproduction goes stale if the trainer's numbers drift, not
    only if its configuration does. (Bit-identical on the development machine; the
    tolerance allows another CPU's rounding, not a changed formula, split or order.)"""
    from resnet_stability.sweep.devices import select_device
    from resnet_stability.sweep.plan import plan_members
    from resnet_stability.sweep.runner import load_spec_dataset
    from resnet_stability.sweep.trainer import train_cell, xla_mode

    (spec,) = resolved_specs("paper/wine")
    committed = pd.read_csv(ROOT / "paper/wine/results.csv")
    committed = committed[committed["block"] == "residual"].reset_index(drop=True)
    dataset = load_spec_dataset(spec)
    plans = plan_members(dataset, spec, "residual")
    pick = [m for m, plan in enumerate(plans) if (plan.h, plan.trial) in {(0.1, 0), (0.5, 5)}]
    assert len(pick) == 2
    info = select_device("cpu")
    result = train_cell(dataset, spec, "residual", device=info.name, plans=[plans[m] for m in pick],
                               shards=1, xla=xla_mode("auto", info.kind), stability=False)
    rows = committed.loc[pick]
    assert list(rows["h"]) == [plans[m].h for m in pick] and list(rows["trial"]) == [plans[m].trial for m in pick]
    np.testing.assert_allclose(result.test_accuracy, rows["test_accuracy"], atol=1.5 / rows["n_test"].iloc[0])
    np.testing.assert_allclose(result.final_loss, rows["final_loss"], rtol=1e-3)

"""Tests for learned step sizes (``learn_h=True``) in the sweep: the engine, the spec,
the command line, the results table and the figure.

The layer's own facts (h = h_max·σ(clip(θ, −20, 20)), its gradient, config, refusals)
are in ``test_blocks.py``, the builder's in ``test_models.py``. The engine test compares
a members model against standalone models trained by ``test_engine``'s plain loop.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import test_engine as engine_tests
from resnet_stability import engine
from resnet_stability.data import load_dataset, subsample_rows
from resnet_stability.experiment import resolve_spec
from resnet_stability.layers import BLOCKS
from resnet_stability.models import build_model

ONE_STEP = sorted(name for name, cls in BLOCKS.items() if cls.learns_h)


# ------------------------------------------------------------- the engine: member = standalone


@pytest.fixture(scope="module")
def wine95():
    """As ``test_engine``'s: 76 training rows, batches of 8 ending with a short one."""
    return subsample_rows(load_dataset("wine"), 95, seed=0)


class LearnedStandalone(engine_tests.Standalone):
    """``test_engine``'s plain training loop, on a standalone network that learns h."""

    def build(self, seed):
        spec = self.spec
        return build_model(
            self.dataset.n_features, self.dataset.n_classes, self.block,
            depth=spec.depth, width=spec.width, h=self.h, seed=seed, learn_h=True, h_max=spec.h_max,
        )

    def steps(self):
        return np.array([float(self.model.get_layer(f"block_{i}").step_size) for i in range(self.spec.depth)])


@pytest.mark.parametrize("block", ONE_STEP)
def test_every_member_learns_its_own_h_as_a_standalone_model_would(wine95, block, float64):
    """Members (h 0.1 and 1.0 = h_max, 2 trials) trained by the engine equal standalone
    networks trained alone: every weight (θ included), the predictions, and the
    ``learned_h`` column of the results rows."""
    spec = engine_tests.make_spec(blocks=(block,), h_values=(0.1, 1.0), learn_h=True, h_max=1.0)
    result = engine.train_cell(wine95, spec, block)
    assert not result.diverged.any()
    learned = result.learned_steps()
    assert learned.shape == (4, spec.depth)
    rows = engine.cell_records(result, spec, block, "cpu")
    test_x = engine_tests.members_input(wine95, result.plans, "test_idx")
    members_test = np.asarray(result.model(test_x, training=False))
    trainers = {h: LearnedStandalone(wine95, spec, block, h) for h in spec.h_values}
    for m, plan in enumerate(result.plans):
        standalone = trainers[plan.h]
        standalone.train(plan)
        engine_tests.assert_same_weights(result.model, m, standalone.weights())
        own = standalone.steps()
        np.testing.assert_allclose(learned[m], own, atol=engine_tests.WEIGHT_ATOL, rtol=0)
        np.testing.assert_allclose(json.loads(rows["learned_h"][m]), own, atol=engine_tests.WEIGHT_ATOL, rtol=0)
        # h trained; h = h_max starts at 0.999 h_max, where σ' = 1e-3 slows it down 250-fold
        start, moved = (0.999, 1e-7) if plan.h == spec.h_max else (plan.h, 1e-4)
        assert np.all(np.abs(own - start) > moved), f"member {m}: h should have trained, got {own}"
        assert np.all((own > 0) & (own <= spec.h_max))
        own_test = standalone.predict(engine_tests.standardized(wine95, plan, plan.test_idx))
        np.testing.assert_allclose(members_test[:, m], own_test, atol=engine_tests.PREDICTION_ATOL, rtol=0)
    # each member trains its own h: the members' learned h differ
    assert len({tuple(np.round(row, 9)) for row in learned}) == len(learned)
    # a standalone copy of member m holds its learned h
    np.testing.assert_allclose(result.member_model(3).get_layer("block_1").step_size, learned[3, 1], atol=1e-12)


def test_without_learn_h_the_rows_have_no_learned_h_column(wine95):
    spec = engine_tests.make_spec(h_values=(0.5,), trials=1, epochs=1)
    result = engine.train_cell(wine95, spec, "residual")
    assert result.learned_steps() is None
    assert "learned_h" not in engine.cell_records(result, spec, "residual", "cpu").columns


# ----------------------------------------------------------------------- the spec, the sweep


def test_a_default_spec_keeps_its_hash():
    """Hashes computed before learn_h existed (they name the stored cells)."""
    assert resolve_spec("wine", {}).cell_hash("residual") == "54dc194b5da5"
    assert resolve_spec("wine", {}).cell_hash("batchnorm") == "69f7e77306a2"
    assert resolve_spec("synthetic", {}).cell_hash("residual") == "03ea8157e4e1"
    assert "learn_h" not in resolve_spec("wine", {}).cell_config("residual")
    # h_max without learn_h changes nothing; with learn_h it is part of the cell
    assert resolve_spec("wine", {"h_max": 3.0}).cell_hash("residual") == "54dc194b5da5"
    learned = resolve_spec("wine", {"learn_h": True})
    assert learned.cell_hash("residual") != "54dc194b5da5"
    assert learned.cell_config("residual")["learn_h"] is True
    assert resolve_spec("wine", {"learn_h": True, "h_max": 2}).cell_hash("residual") == resolve_spec(
        "wine", {"learn_h": True, "h_max": 2.0}
    ).cell_hash("residual")
    assert resolve_spec("wine", {"learn_h": True, "h_max": 2.0}).cell_hash("residual") != learned.cell_hash("residual")


def test_the_spec_refuses_bad_learn_h_settings():
    with pytest.raises(ValueError, match=r"^h=0\.6 exceeds h_max=0\.5; give h <= h_max$"):  # the first above
        resolve_spec("wine", {"learn_h": True, "h_max": 0.5})
    with pytest.raises(ValueError, match=r"^block 'lm' cannot learn h"):
        resolve_spec("wine", {"learn_h": True, "blocks": ("residual", "lm")})
    with pytest.raises(ValueError, match=r"learn_h must be True or False"):
        resolve_spec("wine", {"learn_h": "yes"})
    resolve_spec("wine", {"blocks": ("lm",), "h_max": 0.5})  # fixed h: neither applies


def test_sweep_flags(capsys):
    from resnet_stability import sweep

    assert sweep.main(["--dataset", "wine", "--h-max", "2"]) == 2
    assert "--h-max only applies with --learn-h" in capsys.readouterr().err
    assert sweep.main(["--dataset", "wine", "--learn-h", "--blocks", "lm"]) == 2
    assert "block 'lm' cannot learn h" in capsys.readouterr().err
    assert sweep.main(["--dataset", "wine", "--learn-h", "--h-max", "2", "--show-config"]) == 0
    (experiment,) = json.loads(capsys.readouterr().out)["experiments"]
    assert experiment["learn_h"] is True and experiment["h_max"] == 2.0
    assert sweep.main(["--dataset", "wine", "--show-config"]) == 0
    assert json.loads(capsys.readouterr().out)["experiments"][0]["learn_h"] is False


def test_a_quick_sweep_with_learn_h_writes_the_learned_h(tmp_path, capsys):
    from resnet_stability import sweep

    out = tmp_path / "learned"
    assert sweep.main(["--dataset", "wine", "--quick", "--blocks", "residual", "--learn-h", "--out", str(out)]) == 0
    capsys.readouterr()
    table = pd.read_csv(out / "results.csv")
    steps = np.array([json.loads(text) for text in table["learned_h"]])
    assert steps.shape == (len(table), 3)  # --quick: depth 3
    assert np.all((steps > 0) & (steps <= 1.0))
    long = pd.read_csv(out / "learned_h.csv")
    assert len(long) == steps.size and list(long["block_index"][:3]) == [0, 1, 2]
    assert (out / "learned_h.png").read_bytes().startswith(b"\x89PNG")


# -------------------------------------------------------------------------- the figure


def hand_table():
    """2 blocks × h 0.2, 0.6 × 2 trials, depth 3: learned h = h + 0.1 (trial) + 0.01 (index)."""
    rows = []
    for block in ("residual", "shrinkage"):
        for h in (0.2, 0.6):
            for trial in range(2):
                steps = [h + 0.1 * trial + 0.01 * index for index in range(3)]
                rows.append(dict(dataset="wine", block=block, h=h, trial=trial, learned_h=json.dumps(steps)))
    rows.append(dict(dataset="wine", block="lm", h=0.2, trial=0, learned_h=float("nan")))  # a fixed-h row
    return pd.DataFrame(rows)


def test_learned_h_table_is_long_form():
    from resnet_stability.results import learned_h_table

    long = learned_h_table(hand_table())
    assert len(long) == 2 * 2 * 2 * 3
    row = long[(long["block"] == "shrinkage") & (long["h"] == 0.6) & (long["trial"] == 1) & (long["block_index"] == 2)]
    assert float(row["learned_h"].iloc[0]) == pytest.approx(0.6 + 0.1 + 0.02)
    assert learned_h_table(hand_table().drop(columns="learned_h")).empty


def test_learned_h_figure_draws_the_trial_mean_per_block_and_initial_h(tmp_path, monkeypatch):
    from resnet_stability import plots

    written = plots.plot_learned_h(hand_table(), tmp_path / "learned_h")
    assert [p.name for p in written] == ["learned_h.png", "learned_h.pdf"]
    assert (tmp_path / "learned_h.png").stat().st_size > 1000

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, stem: figures.append(fig) or [])
    plots.plot_learned_h(hand_table(), tmp_path / "again")
    axes = figures[0].axes
    assert [ax.get_title().split(" (")[0] for ax in axes] == ["wine × residual", "wine × shrinkage"]
    curves = [line for line in axes[0].get_lines() if line.get_linestyle() != ":"]
    assert len(curves) == 2  # one line per initial h
    np.testing.assert_allclose(curves[1].get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(curves[1].get_ydata(), [0.65, 0.66, 0.67])  # mean of the two trials
    with pytest.raises(ValueError, match="without --learn-h"):
        plots.plot_learned_h(hand_table().iloc[-1:], tmp_path / "none")

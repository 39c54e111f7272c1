"""Per-member properties of a cell that the equivalence tests cannot see.

``tests/test_engine.py`` checks that member m equals a standalone network trained with
member m's plan, but both sides read the same plan and the same ``BatchOrder``: a plan or
an order that is wrong in the same way for both goes unnoticed. Here those properties
are written out independently: the documented shuffle order drawn by hand with numpy,
and the per-block seeds of ``build_model`` derived by hand with ``derive_seed``.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from resnet_stability.data import load_dataset, subsample_rows
from resnet_stability.engine import BatchOrder, plan_members, run_epochs
from resnet_stability.experiment import ExperimentSpec
from resnet_stability.layers import MembersDense, StepResidual
from resnet_stability.models import build_model
from resnet_stability.seeding import derive_seed


@pytest.fixture(scope="module")
def wine95():
    return subsample_rows(load_dataset("wine"), 95, seed=0)


def make_spec(**overrides) -> ExperimentSpec:
    values = dict(dataset="wine", blocks=("residual",), h_values=(0.1, 0.7), trials=2, depth=2, width=5,
                  epochs=2, batch_size=8, lr=1e-2, optimizer="adam", test_size=0.2, seed=0)
    values.update(overrides)
    return ExperimentSpec(**values)


def test_batch_order_draws_a_fresh_permutation_of_each_members_rows_every_epoch(wine95):
    """Epoch e's column m is ``train_idx[rng.permutation(n)]`` with ONE generator
    ``default_rng(shuffle_seed_m)`` drawn once per epoch in sequence (written out here):
    a permutation of the member's training rows, different in every epoch, and different
    between members that share a split (same trial, other h)."""
    plans = plan_members(wine95, make_spec(), "residual")
    n, epochs = len(plans[0].train_idx), 4
    order = BatchOrder(plans)
    drawn = [order.next_epoch() for _ in range(epochs)]

    generators = [np.random.default_rng(p.shuffle_seed) for p in plans]  # one per member, never reseeded
    for epoch in range(epochs):
        assert drawn[epoch].shape == (n, len(plans))
        for m, (plan, rng) in enumerate(zip(plans, generators)):
            np.testing.assert_array_equal(drawn[epoch][:, m], plan.train_idx[rng.permutation(n)])
            np.testing.assert_array_equal(np.sort(drawn[epoch][:, m]), np.sort(plan.train_idx))
    for m in range(len(plans)):
        columns = {tuple(drawn[epoch][:, m]) for epoch in range(epochs)}
        assert len(columns) == epochs, f"member {m} repeats an epoch's order"
        assert not np.array_equal(drawn[0][:, m], plans[m].train_idx), "not shuffled"
    same_split = [m for m, p in enumerate(plans) if p.trial == 0]
    assert len(same_split) == 2
    np.testing.assert_array_equal(plans[same_split[0]].train_idx, plans[same_split[1]].train_idx)
    assert not np.array_equal(drawn[0][:, same_split[0]], drawn[0][:, same_split[1]])


def test_a_standalone_batch_order_of_one_plan_is_that_members_column(wine95):
    """``BatchOrder([plan])`` (what a standalone run uses) gives member m's column of the
    cell's order in every epoch: members' generators do not interfere."""
    plans = plan_members(wine95, make_spec(), "residual")
    together = BatchOrder(plans)
    alone = [BatchOrder([plan]) for plan in plans]
    for _ in range(3):
        rows = together.next_epoch()
        for m, order in enumerate(alone):
            np.testing.assert_array_equal(order.next_epoch()[:, 0], rows[:, m])


def test_every_block_of_a_model_has_its_own_derived_seed():
    """Block i of ``build_model(seed=s)`` is initialised as a standalone block with seed
    ``derive_seed(s, "block", i)``, the stem and head as standalone dense layers with
    ``derive_seed(s, "stem")`` and ``derive_seed(s, "head")`` (derived here by hand):
    blocks differ from each other, and a members model's member 0 is the standalone model."""
    model = build_model(4, 3, "residual", depth=3, width=5, h=0.2, seed=9)
    for i in range(3):
        alone = StepResidual(h=0.2, seed=derive_seed(9, "block", i))
        alone(np.zeros((1, 5), "float32"))
        for a, b in zip(model.get_layer(f"block_{i}").get_weights(), alone.get_weights()):
            np.testing.assert_array_equal(a, b)
    for name, units, n_in in (("stem", 5, 4), ("head", 3, 5)):  # seeds derive_seed(9, "stem"), (9, "head")
        alone = MembersDense(units, seed=derive_seed(9, name))
        alone(np.zeros((1, n_in), "float32"))
        for a, b in zip(model.get_layer(name).get_weights(), alone.get_weights()):
            np.testing.assert_array_equal(a, b)
    kernels = [model.get_layer(f"block_{i}").field.kernel1.numpy() for i in range(3)]
    assert all(np.max(np.abs(kernels[i] - kernels[j])) > 1e-3 for i in range(3) for j in range(i))
    members = build_model(4, 3, "residual", depth=3, width=5, h=[0.2, 0.2], members=2, seed=[9, 10])
    for name in ("stem", "block_0", "block_2", "head"):
        for a, b in zip(members.get_layer(name).get_weights(), model.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a[0], b)  # member 0 (seed 9) is the standalone model
            if b.ndim == 2:  # kernels (biases start at zero for every seed)
                assert np.max(np.abs(a[1] - b)) > 1e-3  # member 1 (seed 10) is not


class _ScriptedStep:
    """A stand-in for ``MembersTrainStep``: each batch is the members' losses; member 1
    dies in the first step of epoch 1 (its loss reads 0 from then on)."""

    members = 3

    def __init__(self):
        self.steps, self.alive_flags, self.written = 0, np.ones(3, bool), False

    def __call__(self, batch):
        self.steps += 1
        if self.steps == 3:
            self.alive_flags[1] = False
        return tf.constant(np.where(self.alive_flags, batch, 0.0)), tf.constant(self.alive_flags)

    def alive(self):
        return self.alive_flags.copy()

    def write_back(self):
        self.written = True


def test_run_epochs_reports_the_last_epochs_mean_loss_and_nan_for_dead_members():
    """Final loss = each member's mean step loss over the LAST epoch (by hand: epoch 1's
    losses are (2, 4, 6) and (6, 8, 10), so 4 and 8), NaN for the member that died."""
    seen = []
    step = _ScriptedStep()
    batches = lambda epoch: [np.array([1.0, 2.0, 3.0]) * (epoch + 1), np.array([3.0, 4.0, 5.0]) * (epoch + 1)]
    final_loss, diverged_epoch = run_epochs(step, 2, batches, lambda *args: seen.append(args))
    np.testing.assert_array_equal(final_loss, [4.0, np.nan, 8.0])
    assert diverged_epoch[0] == diverged_epoch[2] == -1 and diverged_epoch[1] >= 0
    assert step.written and [s[0] for s in seen] == [0, 1]
    np.testing.assert_array_equal(seen[0][1], [2.0, 3.0, 4.0])  # epoch 0: all alive
    np.testing.assert_array_equal(seen[1][2], [True, False, True])

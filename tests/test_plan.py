"""Tests for the members' plans (``resnet_stability.sweep.plan``): paired splits, train-only
standardisers, and batch orders.

The trainer's equivalence tests (``test_trainer.py``) train member m and a standalone
network from the same plan and the same ``BatchOrder``: a plan or an order that is
wrong in the same way for both would go unnoticed there. Here those properties are
written out independently: the splits and standardisers checked against the data, the
documented shuffle order drawn by hand with numpy.
"""

from __future__ import annotations

import numpy as np
from helpers import make_spec

from resnet_stability.sweep.experiment import resolve_spec
from resnet_stability.sweep.plan import BatchOrder, plan_members


def test_plans_pair_trials_and_fit_the_standardizer_on_train_rows_only(wine95):
    spec = make_spec(h_values=(0.1, 0.5, 1.0), trials=3)
    plans = plan_members(wine95, spec, "residual")
    other_block = plan_members(wine95, spec, "shrinkage")
    assert [(p.h, p.trial) for p in plans] == spec.members()

    seeds = [p.seed for p in plans] + [p.seed for p in other_block]
    assert len(set(seeds)) == len(seeds), "every member of every block needs its own seed"
    assert len({p.shuffle_seed for p in plans}) == len(plans)

    n = len(wine95.y)
    for p in plans + other_block:
        # the paired design: trial t has one split for every h and every block
        reference = plans[p.trial]
        assert reference.trial == p.trial
        np.testing.assert_array_equal(p.train_idx, reference.train_idx)
        np.testing.assert_array_equal(p.test_idx, reference.test_idx)
        assert p.split_seed == reference.split_seed
        assert np.intersect1d(p.train_idx, p.test_idx).size == 0
        assert np.union1d(p.train_idx, p.test_idx).size == n
        # standardiser from the training rows only (ddof=0), atol 1e-12
        numeric = wine95.numeric_mask
        np.testing.assert_allclose(p.mean[numeric], wine95.X[p.train_idx][:, numeric].mean(axis=0), atol=1e-12)
        np.testing.assert_allclose(p.scale[numeric], wine95.X[p.train_idx][:, numeric].std(axis=0), atol=1e-12)
        assert not np.allclose(p.mean[numeric], wine95.X[:, numeric].mean(axis=0), atol=1e-6)

    splits = {t: tuple(plans[t].test_idx) for t in range(spec.trials)}
    assert len(set(splits.values())) == spec.trials, "different trials must get different splits"
    # the split depends on the trial, not on the block or h: same as the spec's seeds
    assert [plans[t].split_seed for t in range(3)] == [spec.split_seed(t) for t in range(3)]


def test_a_fixed_split_plan_needs_no_test_size():
    from resnet_stability.sweep.runner import load_spec_dataset

    spec = resolve_spec("synthetic", {"blocks": ("residual",), "trials": 2}, quick=True)
    dataset = load_spec_dataset(spec)
    plans = plan_members(dataset, spec, "residual")
    assert len(plans) == spec.members_per_cell
    for plan in plans:  # the fixed split the dataset marks, for every trial
        np.testing.assert_array_equal(plan.test_idx, np.flatnonzero(dataset.test_mask))
        np.testing.assert_array_equal(plan.train_idx, np.flatnonzero(~dataset.test_mask))


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

"""What makes each member of a cell the network it is: its plan, split and batch order.

A cell trains every (h, trial) of its spec as one members model
(:mod:`resnet_stability.sweep.trainer`); :func:`plan_members` gives each member its h, its
seeds (:mod:`resnet_stability.sweep.experiment`), its train/test split and the standardiser
fitted on its training rows only, and :class:`BatchOrder` its own shuffle order, so that
member m can be trained alone, as a standalone network, and end the same.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from resnet_stability.data import Dataset, fit_standardizer, split_indices
from resnet_stability.data.timesplit import TimeSplit, dataset_time_windows
from resnet_stability.seeding import derive_seed
from resnet_stability.sweep.experiment import ExperimentSpec


@dataclasses.dataclass(frozen=True, eq=False)
class MemberPlan:
    """Everything that makes one member (one trained network) what it is."""

    h: float
    trial: int
    seed: int  # weight initialisation (build_model's seed)
    split_seed: int
    shuffle_seed: int
    train_idx: np.ndarray  # dataset rows
    test_idx: np.ndarray
    mean: np.ndarray  # standardiser fitted on train_idx only
    scale: np.ndarray
    time_split: TimeSplit | None = None  # time-stamped data: the windows after training


def time_split_for(dataset: Dataset, spec: ExperimentSpec) -> TimeSplit | None:
    """The time split of a time-stamped dataset (``dataset.time``), else None."""
    if dataset.time is None:
        return None
    return dataset_time_windows(dataset, spec.train_span, spec.test_span)


def plan_members(dataset: Dataset, spec: ExperimentSpec, block: str) -> list[MemberPlan]:
    """One :class:`MemberPlan` per (h, trial) of ``spec``, in member order.

    Random splits are stratified and paired by trial. A time-stamped dataset is split in
    time instead (:func:`time_split_for`): every member trains on the same early window
    and is tested on the next one (``test_idx``) and, later, on each further window;
    trials then differ in initialisation and shuffle order.
    """
    plans = []
    splits = {}
    time_split = time_split_for(dataset, spec)
    for h, trial in spec.members():
        split_seed = spec.split_seed(trial)
        if trial not in splits:
            if time_split is None:
                train_idx, test_idx = split_indices(dataset.y, spec.test_size, split_seed, dataset.test_mask)
            else:
                train_idx, test_idx = time_split.train_idx, time_split.windows[0].idx
            mean, scale = fit_standardizer(dataset.X[train_idx], dataset.numeric_mask)
            splits[trial] = (train_idx, test_idx, mean, scale)
        train_idx, test_idx, mean, scale = splits[trial]
        seed = spec.member_seed(block, h, trial)
        plans.append(
            MemberPlan(
                h, trial, seed, split_seed, derive_seed(seed, "shuffle"), train_idx, test_idx, mean, scale, time_split
            )
        )
    return plans


class BatchOrder:
    """Per-member shuffle orders: ``next_epoch()`` -> (n_train, M) dataset row indices.

    Member m's order for epoch e is ``train_idx[rng_m.permutation(n_train)]`` with
    ``rng_m = numpy.random.default_rng(shuffle_seed_m)`` drawn once per epoch, so a
    standalone run of one plan (``BatchOrder([plan])``) sees exactly member m's batches.
    Batch s of an epoch is rows ``s*batch_size : (s+1)*batch_size`` (the last may be
    short, as in ``Model.fit``).
    """

    def __init__(self, plans: list[MemberPlan]):
        sizes = {len(p.train_idx) for p in plans}
        if len(sizes) != 1:
            raise ValueError(f"members have different training-set sizes {sorted(sizes)}")
        self.plans = plans
        self.rngs = [np.random.default_rng(p.shuffle_seed) for p in plans]

    def next_epoch(self) -> np.ndarray:
        columns = [p.train_idx[rng.permutation(len(p.train_idx))] for p, rng in zip(self.plans, self.rngs)]
        return np.stack(columns, axis=1)

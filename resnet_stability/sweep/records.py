"""The tidy tables of a trained cell: one row per member, per member × test window,
per member × noise kind × level (what :mod:`resnet_stability.sweep.store` writes)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from resnet_stability.sweep.experiment import ExperimentSpec

if TYPE_CHECKING:  # annotations only: this module needs no TensorFlow
    from resnet_stability.sweep.trainer import CellResult


def cell_records(result: CellResult, spec: ExperimentSpec, block: str, device: str) -> pd.DataFrame:
    """The tidy table rows of one cell: one row per member. With learned step sizes
    (``spec.learn_h``) a ``learned_h`` column holds the JSON list of the member's trained
    h per block; without, there is no such column (tables of fixed-h sweeps unchanged),
    and with the Euler-stability penalty a ``stability_penalty`` column holds its μ.
    Where the cell computed the Prop. 1 statistic (:func:`member_stability`), columns
    ``euler_max``, ``euler_stable_share`` and ``stability_seconds`` (its time for the
    whole cell) follow; every other column is as without it. Multi-level training
    (``spec.levels`` > 1) adds ``levels`` and ``level_accuracy``, the JSON list of the
    member's test accuracy after each level (null after the level it diverged in); the
    row's ``test_accuracy`` is the final level's (the divergence level's for a member
    that diverged), ``depth`` stays the level-1 depth (the final networks have
    depth·2^(levels−1) blocks of step h/2^(levels−1))."""
    rows = []
    members = len(result.plans)
    learned = result.learned_steps()
    last_finite = result.test_accuracy if result.test_accuracy_last_finite is None else result.test_accuracy_last_finite
    majority = result.test_majority_rate if result.test_majority_rate is not None else [float("nan")] * members
    config_hash = spec.cell_hash(block)
    for m, plan in enumerate(result.plans):
        rows.append(
            dict(
                dataset=spec.dataset,
                block=block,
                h=plan.h,
                trial=plan.trial,
                test_accuracy=float(result.test_accuracy[m]),
                test_accuracy_last_finite=float(last_finite[m]),
                train_accuracy=float(result.train_accuracy[m]),
                final_loss=float(result.final_loss[m]),
                diverged=bool(result.diverged[m]),
                diverged_epoch=int(result.diverged_epoch[m]),
                epochs=spec.epochs,
                seconds=result.seconds / members,
                cell_seconds=result.seconds,
                seed=plan.seed,
                split_seed=plan.split_seed,
                n_train=len(plan.train_idx),
                n_test=len(plan.test_idx),
                test_majority_rate=majority[m],
                device=device,
                depth=spec.depth,
                width=spec.width,
                batch_size=spec.batch_size,
                lr=spec.lr,
                optimizer=spec.optimizer,
                test_size=spec.test_size,
                inputs=spec.inputs,
                activation=spec.activation,
                max_rows=spec.max_rows,
                experiment_seed=spec.seed,
                config_hash=config_hash,
            )
        )
        if learned is not None:
            rows[-1]["learned_h"] = json.dumps(learned[m].tolist())
        if spec.stability_penalty:
            rows[-1]["stability_penalty"] = spec.stability_penalty
        if result.level_accuracy is not None:
            rows[-1]["levels"] = spec.levels
            per_level = [None if np.isnan(a) else float(a) for a in result.level_accuracy[m]]
            rows[-1]["level_accuracy"] = json.dumps(per_level)
        if result.euler_max is not None:
            rows[-1].update(
                euler_max=float(result.euler_max[m]),
                euler_stable_share=float(result.euler_stable_share[m]),
                stability_seconds=result.stability_seconds,
            )
    return pd.DataFrame(rows)


def _member_keys(result: CellResult, spec: ExperimentSpec, block: str) -> list[dict]:
    return [
        dict(dataset=spec.dataset, block=block, h=plan.h, trial=plan.trial, seed=plan.seed)
        for plan in result.plans
    ]


def time_records(result: CellResult, spec: ExperimentSpec, block: str) -> pd.DataFrame:
    """Accuracy of every member on every test window: one row per member × window."""
    if not result.window_accuracy:
        return pd.DataFrame()
    split = result.plans[0].time_split
    rows = []
    for window in split.windows:
        for key, accuracy in zip(_member_keys(result, spec, block), result.window_accuracy[window.index]):
            rows.append(
                dict(
                    key,
                    window=window.index,
                    window_start=window.start,
                    window_end=window.end,
                    n=len(window.idx),
                    accuracy=float(accuracy),
                    train_start=split.train_start,
                    train_end=split.train_end,
                )
            )
    return pd.DataFrame(rows)


def noise_records(result: CellResult, spec: ExperimentSpec, block: str) -> pd.DataFrame:
    """Test accuracy of every member under every noise kind and level; level 0 (always
    included) is the clean test accuracy."""
    if not spec.noise_levels:
        return pd.DataFrame()
    rows = []
    keys = _member_keys(result, spec, block)
    levels = sorted({0.0, *spec.noise_levels})
    for kind in spec.noise_kinds:
        for level in levels:
            accuracies = result.test_accuracy if level == 0 else result.noise_accuracy[(kind, level)]
            rows.extend(dict(key, noise=kind, level=level, accuracy=float(a)) for key, a in zip(keys, accuracies))
    return pd.DataFrame(rows)

"""What one sweep trains: :class:`ExperimentSpec`, the paper's presets, per-trial seeds.

A sweep is a grid of cells, one per (dataset, block); a cell trains every (h, trial)
pair of the grid as one members model (see :mod:`resnet_stability.sweep.trainer`).

Seeds (all from :func:`resnet_stability.seeding.derive_seed`):

- ``split_seed = derive_seed(seed, dataset, "split", trial)``: the train/test split.
  Trials are *paired*: trial t uses the same split for every block and every h, so the
  accuracy-vs-h curves and the block comparison are not confounded by split luck.
- ``member_seed = derive_seed(seed, dataset, block, h, trial)``: the weight
  initialisation; ``derive_seed(member_seed, "shuffle")`` the per-epoch shuffle order.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping

from resnet_stability.seeding import derive_seed
from resnet_stability.sweep.noise import NOISES

PAPER_H = tuple(round(0.1 * k, 10) for k in range(1, 11))
INPUTS = ("paper", "clean")
PAPER_BLOCKS = ("residual", "batchnorm", "shrinkage")
OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw", "nadam", "adagrad")


class _PresetView(Mapping):
    """``PRESETS``: dataset name -> the sweep's preset, a live read-only view of the
    dataset records (:attr:`resnet_stability.data.registry.DatasetRecord.preset`, where
    the paper's presets and our choices are explained)."""

    def __getitem__(self, name):
        from resnet_stability.data.registry import RECORDS

        return RECORDS[name].preset

    def __iter__(self):
        from resnet_stability.data.registry import RECORDS

        return iter(list(RECORDS))

    def __len__(self):
        from resnet_stability.data.registry import RECORDS

        return len(RECORDS)


#: The paper's presets (Zhang & Wynter, experiments section), one per dataset record.
PRESETS: Mapping[str, Mapping] = _PresetView()

#: Names derived from the dataset records, read live (``from ... import UCI_DATASETS``
#: gives the tuple of the records registered at that moment):
#: ``UCI_DATASETS`` (an ``inputs`` choice, :mod:`resnet_stability.data.uci`),
#: ``TIME_SPLIT_DATASETS`` (rows with a time stamp: trained on an early window, tested on
#: the next window and on each later one), ``STREAM_DATASETS`` (can be trained by
#: streaming their file, :mod:`resnet_stability.sweep.streaming`) and
#: ``FIXED_SPLIT_DATASETS`` (a fixed train/test split, so a test fraction means nothing:
#: their spec's ``test_size`` is always None, in neither the rows nor the cell hash).
_DERIVED_NAMES = {
    "UCI_DATASETS": dict(inputs=True),
    "TIME_SPLIT_DATASETS": dict(time_split=True),
    "STREAM_DATASETS": dict(stream=True),
    "FIXED_SPLIT_DATASETS": dict(fixed_split=True),
}


def __getattr__(name):
    if name in _DERIVED_NAMES:
        from resnet_stability.data.registry import dataset_names

        return dataset_names(**_DERIVED_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _record(dataset: str):
    from resnet_stability.data.registry import dataset_record

    return dataset_record(dataset)


COMMON_DEFAULTS = dict(
    blocks=PAPER_BLOCKS,
    h_values=PAPER_H,
    trials=10,
    lr=1e-3,
    optimizer="adam",
    test_size=0.2,
    seed=0,
    activation="relu",
    max_rows=None,
    train_span=None,
    test_span=None,
    noise_levels=(),
    noise_kinds=tuple(NOISES),
    data_path=None,
)
NOISE_KINDS = tuple(NOISES)
#: How a diverged member is scored (README, REPRODUCTION.md).
DIVERGED_RULE = (
    "A member diverges at the first step whose loss, or whose updated weights or batch-norm statistics, are not "
    "finite; it is frozen there while the others train on. It is scored as the network its training produced: "
    "the weights (and statistics) that diverging step produced, every input whose predicted class probabilities "
    "are not all finite counting as misclassified, so a network whose weights overflowed scores 0. Its last finite "
    "weights, those before that step, are scored separately as test_accuracy_last_finite (an early-stopped "
    "network); diverged_epoch is the epoch of that step, counted from 1."
)
#: ``--quick``: a tiny configuration that finishes in seconds (smoke tests).
QUICK = dict(h_values=(0.1, 0.5, 1.0), trials=2, depth=3, epochs=2, max_rows=300)


def check_h_grid(values) -> tuple[float, ...]:
    """The one rule for an h grid: not empty, every h a finite number > 0, no duplicates;
    ValueError naming the bad value. (The command line's ``--h`` and the spec both apply
    it; a block checks its own h, ``layers.members.validate_step_size``.)"""
    values = tuple(values)
    if not values:
        raise ValueError("the h grid is empty")
    for h in values:
        if not (h > 0 and h < float("inf")):
            raise ValueError(f"h must be a finite number > 0, got {h!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"the h grid has duplicates: {list(values)}")
    return values


@dataclasses.dataclass(frozen=True)
class ExperimentSpec:
    """Everything that determines the numbers of a sweep (and nothing else)."""

    dataset: str
    blocks: tuple[str, ...]
    h_values: tuple[float, ...]
    trials: int
    depth: int
    width: int | None
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    test_size: float | None  # None for fixed-split datasets (always: a given value is dropped)
    seed: int
    activation: str = "relu"
    max_rows: int | None = None
    train_span: float | None = None  # time-split datasets: None = the dataset's default
    test_span: float | None = None
    noise_levels: tuple[float, ...] = ()  # noise robustness of the trained members; () = off
    noise_kinds: tuple[str, ...] = NOISE_KINDS
    data_path: str | None = None  # the user's file or folder (bitcoin, elliptic, bitcoinheist)
    inputs: str | None = None  # UCI datasets: "paper" (default) or "clean" (data.uci); None for the others
    stream: bool = False  # bitcoin: train by streaming the file (resnet_stability.sweep.streaming)
    chunk_rows: int = 1_000_000  # rows per chunk when streaming
    learn_h: bool = False  # train each block's h too, starting from the grid's h (layers.blocks)
    h_max: float = 1.0  # with learn_h: the learned h stays in (0, h_max]; every grid h <= h_max
    levels: int = 1  # multi-level training: train, prolong to twice the depth at h/2, train again (multilevel)
    stability_penalty: float = 0.0  # with learn_h: μ of the Euler-stability penalty (layers.euler_penalty); 0 = off

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "h_values", tuple(round(float(h), 10) for h in self.h_values))
        object.__setattr__(self, "noise_levels", tuple(float(v) for v in self.noise_levels))
        object.__setattr__(self, "noise_kinds", tuple(self.noise_kinds))
        if self.data_path is not None:
            object.__setattr__(self, "data_path", str(self.data_path))
        record = _record(self.dataset)
        if self.inputs is None and record.inputs:
            object.__setattr__(self, "inputs", "paper")
        if record.fixed_split:
            object.__setattr__(self, "test_size", None)
        if isinstance(self.h_max, int) and not isinstance(self.h_max, bool):  # 2 and 2.0: one hash
            object.__setattr__(self, "h_max", float(self.h_max))
        if isinstance(self.stability_penalty, int) and not isinstance(self.stability_penalty, bool):
            object.__setattr__(self, "stability_penalty", float(self.stability_penalty))
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad value and what is allowed."""
        from resnet_stability.data.registry import dataset_names
        from resnet_stability.layers import BLOCKS

        record = _record(self.dataset)
        for name in ("trials", "depth", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.width is not None and (not isinstance(self.width, int) or self.width < 1):
            raise ValueError(f"width must be an integer >= 1, got {self.width!r}")
        if self.max_rows is not None and (not isinstance(self.max_rows, int) or self.max_rows < 10):
            raise ValueError(f"max_rows must be an integer >= 10, got {self.max_rows!r}")
        if not self.blocks:
            raise ValueError("blocks is empty; allowed: " + ", ".join(sorted(BLOCKS)))
        for block in self.blocks:
            if block not in BLOCKS:
                raise ValueError(f"unknown block {block!r}; allowed: {', '.join(sorted(BLOCKS))}")
        if len(set(self.blocks)) != len(self.blocks):
            raise ValueError(f"blocks has duplicates: {list(self.blocks)}")
        check_h_grid(self.h_values)
        if not (self.lr > 0 and self.lr < float("inf")):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
        if self.test_size is None and not record.fixed_split:
            raise ValueError(
                f"test_size None is only for the fixed-split datasets ({', '.join(dataset_names(fixed_split=True))}); "
                f"{self.dataset} needs a test fraction in (0, 1)"
            )
        if self.test_size is not None and not 0.0 < self.test_size < 1.0:
            raise ValueError(f"test_size must be in (0, 1), got {self.test_size!r}")
        for name in ("train_span", "test_span"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and value < float("inf")):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        for level in self.noise_levels:
            if not (level >= 0 and level < float("inf")):
                raise ValueError(f"noise levels must be finite numbers >= 0, got {level!r}")
        for kind in self.noise_kinds:
            if kind not in NOISE_KINDS:
                raise ValueError(f"unknown noise kind {kind!r}; allowed: {', '.join(NOISE_KINDS)}")
        if not isinstance(self.stream, bool):
            raise ValueError(f"stream must be True or False, got {self.stream!r}")
        if self.stream and not record.stream:
            raise ValueError(
                f"streaming (--stream) is only available for dataset(s) {', '.join(dataset_names(stream=True))} "
                f"(transaction files), not {self.dataset!r}"
            )
        if isinstance(self.chunk_rows, bool) or not isinstance(self.chunk_rows, int) or self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be an integer >= 1, got {self.chunk_rows!r}")
        self.validate_learn_h()
        self.validate_levels()
        if record.inputs and self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {', '.join(INPUTS)} for {self.dataset}, got {self.inputs!r}")
        if not record.inputs and self.inputs is not None:
            raise ValueError(
                f"inputs (--inputs) applies to the UCI datasets ({', '.join(dataset_names(inputs=True))}) only, "
                f"not {self.dataset!r}"
            )

    def validate_learn_h(self) -> None:
        """learn_h a bool, h_max a finite number > 0; with learn_h, every grid h <= h_max
        and every block one that can learn its h (the one-step blocks); stability_penalty
        a finite number >= 0, > 0 only with learn_h and forward-Euler blocks."""
        from resnet_stability.layers import BLOCKS
        from resnet_stability.layers.members import validate_h_max

        if not isinstance(self.learn_h, bool):
            raise ValueError(f"learn_h must be True or False, got {self.learn_h!r}")
        validate_h_max(self.h_max, self.h_values if self.learn_h else ())
        for block in self.blocks:
            if self.learn_h:
                BLOCKS[block].check_learn_h(True)
            BLOCKS[block].check_stability_penalty(self.stability_penalty, self.learn_h)

    def validate_levels(self) -> None:
        """levels an integer >= 1; levels > 1 needs one-step blocks and in-memory data."""
        from resnet_stability.layers import BLOCKS
        from resnet_stability.layers.multistep import MultistepBlock

        if isinstance(self.levels, bool) or not isinstance(self.levels, int) or self.levels < 1:
            raise ValueError(f"levels must be an integer >= 1, got {self.levels!r}")
        if self.levels == 1:
            return
        multistep = [block for block in self.blocks if issubclass(BLOCKS[block], MultistepBlock)]
        if multistep:
            raise ValueError(
                f"levels > 1 needs one-step blocks (residual, shrinkage, batchnorm, rk4); {', '.join(multistep)} "
                "is multistep and cannot be prolonged"
            )
        if self.stream:
            raise ValueError("levels > 1 is not available with streaming (--stream); train in memory")

    @property
    def members_per_cell(self) -> int:
        return len(self.h_values) * self.trials

    def cell_config(self, block: str) -> dict:
        """The configuration of one (dataset, block) cell: the spec with one block.

        A user's data file or folder (``data_path``) enters by content
        (:func:`~resnet_stability.data.files.data_fingerprint`), not by location, so a
        results folder moved to another machine or path still finds its finished cells.
        """
        config = dataclasses.asdict(self)
        config.pop("blocks")
        config["block"] = block
        config["h_values"] = list(self.h_values)
        config["noise_levels"] = list(self.noise_levels)
        config["noise_kinds"] = list(self.noise_kinds)
        if not self.stream:  # in memory, chunking changes nothing: keep earlier cells' hashes
            config.pop("stream")
            config.pop("chunk_rows")
        if self.inputs is None:  # datasets without an inputs choice keep their hashes
            config.pop("inputs")
        if self.test_size is None:  # fixed-split datasets: no test fraction to record
            config.pop("test_size")
        if not self.learn_h:  # fixed steps: h_max means nothing, and earlier cells keep their hashes
            config.pop("learn_h")
            config.pop("h_max")
        if self.levels == 1:  # one level is plain training: earlier cells keep their hashes
            config.pop("levels")
        if not self.stability_penalty:  # no penalty: earlier cells keep their hashes
            config.pop("stability_penalty")
        if self.data_path is not None:  # the data's content, not where it lies: moved folders resume
            config["data_path"] = self.data_identity
        return config

    @functools.cached_property
    def data_identity(self) -> str | None:
        """``"content:<fingerprint>"`` of ``data_path``
        (:func:`~resnet_stability.data.files.data_fingerprint`), None without one. Read
        once per spec: every file name and row of a cell carries it, and the data a
        sweep resolved is the data its cells are named by."""
        if self.data_path is None:
            return None
        from resnet_stability.data.files import data_fingerprint

        return f"content:{data_fingerprint(self.data_path)}"

    def cell_hash(self, block: str) -> str:
        """A short stable hash of :meth:`cell_config` (names result files)."""
        text = json.dumps(self.cell_config(block), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def members(self) -> list[tuple[float, int]]:
        """The (h, trial) pairs of one cell, in member order (h-major)."""
        return [(h, trial) for h in self.h_values for trial in range(self.trials)]

    def split_seed(self, trial: int) -> int:
        return derive_seed(self.seed, self.dataset, "split", trial)

    def member_seed(self, block: str, h: float, trial: int) -> int:
        return derive_seed(self.seed, self.dataset, block, h, trial)

    def to_dict(self) -> dict:
        config = dataclasses.asdict(self)
        config["blocks"] = list(self.blocks)
        config["h_values"] = list(self.h_values)
        config["noise_levels"] = list(self.noise_levels)
        config["noise_kinds"] = list(self.noise_kinds)
        return config


def resolve_spec(dataset: str, overrides: dict | None = None, quick: bool = False) -> ExperimentSpec:
    """The spec for ``dataset``: common defaults < preset < ``QUICK`` (if quick) < overrides.

    ``overrides`` holds only the values a user set explicitly (None values are ignored).
    ``inputs`` defaults to ``"paper"`` for the UCI datasets and is None (not applicable)
    for the others, whatever the overrides say. ``test_size`` is None for the
    fixed-split datasets, whatever the overrides say. The preset and these facts are the
    dataset's record (:class:`~resnet_stability.data.registry.DatasetRecord`).
    """
    from resnet_stability.data.registry import RECORDS

    if dataset not in RECORDS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(RECORDS)}")
    record = RECORDS[dataset]
    values = {**COMMON_DEFAULTS, **record.preset, "inputs": "paper" if record.inputs else None}
    if quick:
        values.update(QUICK)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if not record.inputs:  # their features are what they are (e.g. --dataset all --inputs clean)
        values["inputs"] = None
    return ExperimentSpec(dataset=dataset, **values)

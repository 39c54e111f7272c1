"""The :class:`Dataset` container every loader returns."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset after loading and encoding, before any per-trial scaling.

    Attributes:
        name: registry name ("wine", "abalone", "absenteeism", "autism", "adult",
            "synthetic").
        X: float64 ``(n, d)``. Categorical attributes are one-hot encoded; numeric
            attributes are left unscaled (standardise per trial with
            :func:`~resnet_stability.data.fit_standardizer` on the training split only).
        y: int64 ``(n,)``, labels ``0 .. n_classes - 1``.
        feature_names: length ``d``; one-hot columns are named ``"attribute=value"``.
        class_names: length ``n_classes``; ``class_names[k]`` describes label ``k``.
        numeric_mask: bool ``(d,)``; True for the columns to standardise, False for
            one-hot and 0/1 indicator columns.
        test_mask: bool ``(n,)`` marking an official fixed test split (Adult's
            ``adult.test`` rows, the synthetic test set), or None when the split is
            random (see :func:`~resnet_stability.data.split_indices`).
        description: one paragraph: source, target definition, preprocessing choices.
        time: float64 ``(n,)``, the time coordinate of each row for splits in time
            (:func:`~resnet_stability.data.timesplit.time_windows`), or None for
            datasets without one (the UCI sets). Not a column of ``X``.
        time_unit: what ``time`` counts, e.g. ``"days since 2012-01-01"`` or
            ``"time step"``; empty when ``time`` is None.
        synthetic: True when the rows are simulated stand-ins for real data (a
            transaction file its sidecar marks synthetic,
            :func:`~resnet_stability.data.simulate_transactions`): every figure and
            table made from it says so. False for real data and for the generated 2-D
            toy sets, which stand in for nothing.

    Equality is identity (``eq=False``): comparing arrays field by field is ambiguous.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    numeric_mask: np.ndarray
    test_mask: np.ndarray | None = None
    description: str = ""
    time: np.ndarray | None = None
    time_unit: str = ""
    synthetic: bool = False

    def __post_init__(self) -> None:
        X = np.asarray(self.X, dtype=np.float64)
        y = np.asarray(self.y)
        if X.ndim != 2:
            raise ValueError(f"Dataset {self.name!r}: X must be 2-D, got shape {X.shape}")
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"Dataset {self.name!r}: y must have shape ({X.shape[0]},), got {y.shape}"
            )
        if y.size and not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.equal(np.mod(y, 1), 0)):
                raise ValueError(f"Dataset {self.name!r}: y must hold integer labels")
        y = y.astype(np.int64)
        feature_names = tuple(str(f) for f in self.feature_names)
        class_names = tuple(str(c) for c in self.class_names)
        if len(feature_names) != X.shape[1]:
            raise ValueError(
                f"Dataset {self.name!r}: {len(feature_names)} feature names for "
                f"{X.shape[1]} columns"
            )
        if y.size and (y.min() < 0 or y.max() >= len(class_names)):
            raise ValueError(
                f"Dataset {self.name!r}: labels must lie in 0..{len(class_names) - 1}, "
                f"got {y.min()}..{y.max()}"
            )
        numeric_mask = np.asarray(self.numeric_mask, dtype=bool)
        if numeric_mask.shape != (X.shape[1],):
            raise ValueError(
                f"Dataset {self.name!r}: numeric_mask must have shape ({X.shape[1]},), "
                f"got {numeric_mask.shape}"
            )
        test_mask = self.test_mask
        if test_mask is not None:
            test_mask = np.asarray(test_mask, dtype=bool)
            if test_mask.shape != (X.shape[0],):
                raise ValueError(
                    f"Dataset {self.name!r}: test_mask must have shape ({X.shape[0]},), "
                    f"got {test_mask.shape}"
                )
        time = self.time
        if time is not None:
            time = np.asarray(time, dtype=np.float64)
            if time.shape != (X.shape[0],):
                raise ValueError(
                    f"Dataset {self.name!r}: time must have shape ({X.shape[0]},), "
                    f"got {time.shape}"
                )
            if not np.all(np.isfinite(time)):
                raise ValueError(f"Dataset {self.name!r}: time contains NaN or infinite values")
        if not np.all(np.isfinite(X)):
            raise ValueError(f"Dataset {self.name!r}: X contains NaN or infinite values")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "feature_names", feature_names)
        object.__setattr__(self, "class_names", class_names)
        object.__setattr__(self, "numeric_mask", numeric_mask)
        object.__setattr__(self, "test_mask", test_mask)
        object.__setattr__(self, "time", time)
        object.__setattr__(self, "time_unit", str(self.time_unit))
        if not isinstance(self.synthetic, bool):
            raise ValueError(f"Dataset {self.name!r}: synthetic must be True or False, got {self.synthetic!r}")

    @property
    def n_classes(self) -> int:
        """Number of classes (``len(class_names)``)."""
        return len(self.class_names)

    @property
    def n_features(self) -> int:
        """Number of columns of ``X`` after encoding."""
        return int(self.X.shape[1])

    @property
    def n_samples(self) -> int:
        """Number of rows of ``X``."""
        return int(self.X.shape[0])

    def class_counts(self) -> dict[str, int]:
        """``{class_name: number of rows}`` over all rows."""
        counts = np.bincount(self.y, minlength=self.n_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts)}

    def __repr__(self) -> str:
        if self.time is not None:
            split = f"split in time ({self.time_unit or 'time'})"
        elif self.test_mask is not None:
            split = "fixed test split"
        else:
            split = "random split"
        return (
            f"Dataset(name={self.name!r}, n={self.n_samples}, d={self.n_features}, "
            f"classes={self.class_counts()}, {split})"
        )

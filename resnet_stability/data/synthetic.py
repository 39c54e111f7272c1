"""Two-dimensional, two-class, nonlinearly separable toy data (the paper's Fig. 1 setting).

Kinds:

- ``"circles"``: two concentric circles, radii 1 (class 0) and 0.5 (class 1)
  (``sklearn.datasets.make_circles(factor=0.5)``);
- ``"moons"``: two interleaving half circles (``sklearn.datasets.make_moons``);
- ``"spirals"``: two interleaved Archimedean spirals, 1.5 turns each, radius growing
  from 0.1 to 1; class 1 is class 0 rotated by pi.

``noise`` is the standard deviation of isotropic Gaussian noise added to every point,
in the units above (the shapes span roughly [-1, 1] x [-1, 1]; moons [-1, 2] x [-0.5, 1]).
Train and test sets are drawn independently, each with classes as balanced as the size
allows (for odd sizes class 0 gets the extra point in circles and moons, a choice of
sklearn; spirals does the same), from seeds derived from ``seed``.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_circles, make_moons

from .dataset import Dataset

SYNTHETIC_KINDS = ("circles", "moons", "spirals")


def _spirals(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n0 = (n + 1) // 2
    n1 = n - n0
    turns = 1.5
    parts_X, parts_y = [], []
    for label, count in ((0, n0), (1, n1)):
        t = rng.uniform(0.0, 1.0, size=count)
        radius = 0.1 + 0.9 * t
        angle = 2.0 * np.pi * turns * t + np.pi * label
        pts = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
        parts_X.append(pts)
        parts_y.append(np.full(count, label, dtype=np.int64))
    X = np.concatenate(parts_X)
    y = np.concatenate(parts_y)
    if noise:
        X = X + rng.normal(scale=noise, size=X.shape)
    order = rng.permutation(n)
    return X[order], y[order]


def _draw(kind: str, n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "circles":
        X, y = make_circles(n_samples=n, noise=noise or None, factor=0.5, random_state=seed)
    elif kind == "moons":
        X, y = make_moons(n_samples=n, noise=noise or None, random_state=seed)
    else:
        X, y = _spirals(n, noise, np.random.default_rng(seed))
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


def make_synthetic(
    kind: str = "circles",
    n_train: int = 500,
    n_test: int = 500,
    noise: float = 0.1,
    seed: int = 0,
) -> Dataset:
    """A 2-D binary dataset: ``n_train`` training rows then ``n_test`` test rows.

    Returns a :class:`Dataset` with features ``("x1", "x2")`` (both numeric), labels
    0/1, and ``test_mask`` marking the last ``n_test`` rows. Deterministic in ``seed``;
    different seeds give different points. The train and test sets come from two
    seeds derived from ``seed`` (``numpy.random.SeedSequence(seed).spawn(2)``).

    Raises:
        ValueError: unknown ``kind``, ``n_train`` or ``n_test`` < 2, negative ``noise``,
            or a negative / non-integer ``seed``.
    """
    if kind not in SYNTHETIC_KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; allowed kinds: {list(SYNTHETIC_KINDS)}")
    for label, value in (("n_train", n_train), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise ValueError(f"{label} must be an integer >= 2 (both classes), got {value!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    train_ss, test_ss = np.random.SeedSequence(int(seed)).spawn(2)
    train_seed = int(train_ss.generate_state(1)[0])
    test_seed = int(test_ss.generate_state(1)[0])
    X_train, y_train = _draw(kind, int(n_train), float(noise), train_seed)
    X_test, y_test = _draw(kind, int(n_test), float(noise), test_seed)
    X = np.concatenate([X_train, X_test])
    y = np.concatenate([y_train, y_test])
    test_mask = np.zeros(len(y), dtype=bool)
    test_mask[int(n_train):] = True
    return Dataset(
        name="synthetic",
        X=X,
        y=y,
        feature_names=("x1", "x2"),
        class_names=("class 0", "class 1"),
        numeric_mask=np.ones(2, dtype=bool),
        test_mask=test_mask,
        description=(
            f"Synthetic 2-D '{kind}' data (as in Zhang & Wynter, Fig. 1): two classes "
            f"that no line separates, {n_train} training and {n_test} test points "
            f"drawn independently, Gaussian noise with standard deviation {noise:g}, "
            f"seed {seed}. Features x1, x2 numeric; fixed split via test_mask."
        ),
    )

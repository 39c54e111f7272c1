"""Input perturbations for noise-robustness tests of trained networks (tabular data).

Each kind maps (generator, level, shape) to an additive perturbation of standardised
inputs x:

- ``gaussian``: level · N(0, 1) per entry;
- ``uniform``: U[−level, level] per entry;
- ``constant``: level (every feature shifted by the same amount).
"""

from __future__ import annotations

import numpy as np

NOISES = {
    "gaussian": lambda rng, level, shape: level * rng.standard_normal(shape),
    "uniform": lambda rng, level, shape: rng.uniform(-level, level, shape),
    "constant": lambda rng, level, shape: np.full(shape, level),
}


class NoiseSource:
    """Draws perturbations of one kind and level from ``numpy.random.default_rng(seed)``,
    chunk after chunk, so the same seed and chunking give the same noise."""

    def __init__(self, kind: str, level: float, seed: int):
        if kind not in NOISES:
            raise ValueError(f"unknown noise kind {kind!r}; allowed: {', '.join(NOISES)}")
        self.kind, self.level = kind, float(level)
        self.rng = np.random.default_rng(seed)

    def draw(self, shape) -> np.ndarray:
        return NOISES[self.kind](self.rng, self.level, tuple(shape))

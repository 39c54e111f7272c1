"""Deterministic seeds.

Every random choice in the package (weight initialisation, train/test split, shuffle
order) draws its seed from :func:`derive_seed`, a hash of a parent seed and a few tags.
A trial is therefore reproducible from (experiment seed, dataset, block, h, trial), and
member ``m`` of a members model gets exactly the seeds a standalone model built with
member ``m``'s seed would get.
"""

from __future__ import annotations

import hashlib

SEED_BITS = 31  # keep seeds in the positive int32 range accepted by every backend


def derive_seed(seed: int, *tags: object) -> int:
    """Return a seed in ``[0, 2**31)`` that depends only on ``seed`` and ``tags``.

    ``derive_seed(s, "layer", 3)`` is stable across processes and Python versions (it
    uses BLAKE2b of the tags' ``repr``, not Python's salted ``hash``).
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r} ({type(seed).__name__})")
    text = repr((int(seed),) + tuple(_canonical(t) for t in tags)).encode()
    digest = hashlib.blake2b(text, digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**SEED_BITS)


def _canonical(tag: object) -> object:
    # 0.1 and numpy.float64(0.1) must give the same seed
    if isinstance(tag, float) or type(tag).__name__.startswith("float"):
        return round(float(tag), 12)
    if type(tag).__name__.startswith("int"):
        return int(tag)
    return tag

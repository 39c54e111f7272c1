"""Atomic file writes: a temporary file in the target's folder, renamed into place.

A reader (or a sweep killed half-way) never sees a half-written file: every table,
figure and page the package writes (the sweep's store and outputs, the report, the
reproduction) goes through :func:`atomic_path` or :func:`atomic_write_text`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path in ``path``'s folder; on success rename it to ``path``.

    The temporary file has mode ``0666 & ~umask`` (what ``open`` would give), so the
    final file has the same permissions as one written directly. On an exception the
    temporary file is removed and ``path`` is left as it was. A folder that is not
    writable raises PermissionError naming the folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except PermissionError:
        raise PermissionError(
            f"cannot write {path.name} in {path.parent}: the folder is not writable "
            "(fix its permissions or choose another folder)"
        ) from None
    try:
        os.fchmod(handle, 0o666 & ~_umask())
        os.close(handle)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename (fsynced)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())


def atomic_write_csv(path: Path, frame) -> Path:
    """A pandas table as CSV (no index column) at ``path``, written as
    :func:`atomic_write_text` writes; returns ``path``."""
    atomic_write_text(path, frame.to_csv(index=False))
    return Path(path)

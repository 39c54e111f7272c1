"""Locating the shipped UCI files and checking them against their SHA-256.

The raw files live in ``data_root() / "uci"`` (see :func:`data_root`). Every file a
loader reads goes through :func:`verified_path`, which raises a
:class:`DataFileError` naming the file when it is missing or its bytes differ from the
hash recorded in ``data/PROVENANCE.md`` (kept here in :data:`EXPECTED_SHA256`).
"""

from __future__ import annotations

import hashlib
import os
import pathlib

DATA_DIR_ENV = "RESNET_STABILITY_DATA_DIR"

#: SHA-256 of every shipped file, keyed by its path relative to ``data_root() / "uci"``.
#: Same table as ``data/PROVENANCE.md``; change both together or neither.
EXPECTED_SHA256: dict[str, str] = {
    "wine/wine.data": "6be6b1203f3d51df0b553a70e57b8a723cd405683958204f96d23d7cd6aea659",
    "wine/wine.names": "f1b84f2ef845e0bdebf13e14fa7a213e56de4f1baa40c5974dbd1ee51c5ae710",
    "abalone/abalone.data": "de37cdcdcaaa50c309d514f248f7c2302a5f1f88c168905eba23fe2fbc78449f",
    "abalone/abalone.names": "542eee5a2a0ee72db563de010dc3b5055b03c5dc624049ae1f2208fc66a14aac",
    "adult/adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "adult/adult.test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
    "adult/adult.names": "c248284c0b5de30c9e1958d6cdd168a34a654758b620e68f46aefa83fc0a576a",
    "absenteeism/Absenteeism_at_work.csv": (
        "41930631aa5b14f91fde29ae595cefad2beac464ddf837bf8150487e40038320"
    ),
    "autism_adult/Autism-Adult-Data.arff": (
        "30838a0d16a148dd2572f162be78b97288e0e88824fa1f5cbe19e60b71c2d6a6"
    ),
}


class DataFileError(Exception):
    """A shipped data file is missing or does not match its recorded SHA-256."""


class MissingDataFileError(DataFileError, FileNotFoundError):
    """A shipped data file is not where it should be."""


class ChecksumMismatchError(DataFileError, ValueError):
    """A shipped data file exists but its bytes differ from the recorded SHA-256."""


def data_root() -> pathlib.Path:
    """Return the folder that holds ``uci/``.

    Order of precedence:

    1. the environment variable ``RESNET_STABILITY_DATA_DIR`` if it is set (non-empty);
    2. ``<package>/shipped_data`` if it exists (an installed package: ``setup.py`` copies
       the repository's top-level ``data/`` there);
    3. the repository's top-level ``data/`` (a source checkout).
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return pathlib.Path(env).expanduser()
    package_dir = pathlib.Path(__file__).resolve().parents[1]  # resnet_stability/
    shipped = package_dir / "shipped_data"
    if shipped.is_dir():
        return shipped
    return pathlib.Path(__file__).resolve().parents[2] / "data"


def sha256_file(path: os.PathLike | str, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


FINGERPRINT_EDGE_BYTES = 1 << 20


def data_fingerprint(path: os.PathLike | str, edge_bytes: int = FINGERPRINT_EDGE_BYTES) -> str:
    """A short hex identity of a user's data file or folder by content, not location.

    SHA-256 over, for every file (a folder: each file under it, sorted by its path
    relative to the folder; a file: that file alone, its name left out), the relative
    path, the byte size, and the first and last ``edge_bytes`` bytes. Moving, copying or
    renaming the data keeps the fingerprint (so a results folder that holds its own data
    file resumes wherever it lies); appending rows, truncating or editing either end
    changes it. Reads at most ``2 * edge_bytes`` per file, however large the file is.
    """
    root = pathlib.Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    digest = hashlib.sha256()
    for file in files:
        relative = file.relative_to(root).as_posix() if root.is_dir() else ""
        size = file.stat().st_size
        digest.update(f"{relative}\0{size}\0".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read(edge_bytes))
            handle.seek(max(size - edge_bytes, 0))
            digest.update(handle.read(edge_bytes))
    return digest.hexdigest()[:16]


def verified_path(relpath: str) -> pathlib.Path:
    """Return ``data_root() / "uci" / relpath`` after checking it exists and its SHA-256.

    Raises:
        KeyError: ``relpath`` is not one of the shipped files (a programming error).
        MissingDataFileError: the file does not exist.
        ChecksumMismatchError: its SHA-256 differs from :data:`EXPECTED_SHA256`.
    """
    if relpath not in EXPECTED_SHA256:
        raise KeyError(
            f"{relpath!r} is not a shipped data file; known files: {sorted(EXPECTED_SHA256)}"
        )
    root = data_root()
    path = root / "uci" / relpath
    where = (
        f"data_root() is {root} (from ${DATA_DIR_ENV})"
        if os.environ.get(DATA_DIR_ENV)
        else f"data_root() is {root}"
    )
    if not path.is_file():
        raise MissingDataFileError(
            f"Data file {relpath!r} not found at {path}; {where}. Restore it from the "
            f"repository's data/uci/ folder, point ${DATA_DIR_ENV} at a folder holding "
            f"uci/{relpath}, or fetch the dataset online: source='uci' (command line: --source uci)."
        )
    expected = EXPECTED_SHA256[relpath]
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatchError(
            f"Data file {relpath!r} at {path} is corrupted or modified: expected "
            f"sha256 {expected}, got {actual}; {where}. Restore the original bytes from "
            f"the repository's data/uci/{relpath} (see data/PROVENANCE.md), or "
            f"fetch the dataset online: source='uci' (command line: --source uci)."
        )
    return path

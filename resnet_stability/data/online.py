"""The online path: fetch a UCI dataset with ``ucimlrepo`` and cache it on disk.

:func:`fetch_raw_frame` returns ``pandas.concat([features, targets], axis=1)`` of what
``ucimlrepo.fetch_ucirepo(id=...)`` returns (``.data.features`` and ``.data.targets``;
ID columns such as Absenteeism's ``ID`` are therefore not included). The frame is written
to ``cache_root() / "uci" / f"{uci_id}.csv"`` and every call, the first included, returns
what it reads back from that file, so a fresh fetch and a cached read give the same
frame. A second call reads the cache and does not touch the network (``refresh=True``
fetches again).

``ucimlrepo`` is imported lazily inside :func:`fetch_ucirepo`, the one function here that
talks to the network; tests replace it with a local stand-in.
"""

from __future__ import annotations

import os
import pathlib
import tempfile

import pandas as pd

CACHE_ENV = "RESNET_STABILITY_CACHE"


def cache_root() -> pathlib.Path:
    """``$RESNET_STABILITY_CACHE`` if set, else ``$XDG_CACHE_HOME/resnet_stability``,
    else ``~/.cache/resnet_stability``. Fetched files go in its ``uci/`` subfolder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return pathlib.Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg).expanduser() if xdg else pathlib.Path.home() / ".cache"
    return base / "resnet_stability"


def cache_path(uci_id: int, cache_dir: os.PathLike | str | None = None) -> pathlib.Path:
    """Where the frame of UCI dataset ``uci_id`` is cached."""
    root = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    return root / "uci" / f"{int(uci_id)}.csv"


def fetch_ucirepo(id: int):  # noqa: A002 - same keyword as ucimlrepo.fetch_ucirepo
    """Call ``ucimlrepo.fetch_ucirepo(id=id)`` (network access)."""
    try:
        from ucimlrepo import fetch_ucirepo as _fetch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "source='uci' needs the 'ucimlrepo' package (pip install ucimlrepo); "
            "or use source='local' for the shipped copies"
        ) from exc
    return _fetch(id=id)


def fetch_raw_frame(
    uci_id: int,
    *,
    cache_dir: os.PathLike | str | None = None,
    refresh: bool = False,
) -> pd.DataFrame:
    """Features and targets of UCI dataset ``uci_id`` as one frame, cached on disk.

    Values are read back from the cache CSV with only empty fields treated as missing
    (``keep_default_na=False``), so strings such as ``'?'`` or ``'NA'`` survive as text.
    """
    path = cache_path(uci_id, cache_dir)
    if refresh or not path.is_file():
        result = fetch_ucirepo(id=int(uci_id))
        data = getattr(result, "data", None)
        features = getattr(data, "features", None) if data is not None else None
        targets = getattr(data, "targets", None) if data is not None else None
        if features is None or targets is None:
            raise ValueError(
                f"ucimlrepo returned no features/targets for UCI dataset id {uci_id}"
            )
        frame = pd.concat(
            [features.reset_index(drop=True), targets.reset_index(drop=True)], axis=1
        )
        _write_atomic(frame, path)
    return pd.read_csv(path, keep_default_na=False, na_values=[""], low_memory=False)


def _write_atomic(frame: pd.DataFrame, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            frame.to_csv(handle, index=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

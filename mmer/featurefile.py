"""HDF5 feature caches that describe themselves.

A cache holds one dataset per array (first axis = clip), a ``clip_id`` dataset that joins
to ``data/index.csv``, and the params that made it as attributes. It is written to a
temporary file and renamed when complete, so an interrupted run never leaves a file that
looks finished.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mmer.errors import MmerError
from mmer.files import atomic_path


@dataclass
class FeatureCache:
    """The content of one cache file."""

    arrays: dict[str, np.ndarray]
    clip_ids: list[str]
    attrs: dict[str, Any]

    def select(self, clip_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The arrays' rows of ``clip_ids``, in that order (KeyError names a missing id)."""
        position = {c: i for i, c in enumerate(self.clip_ids)}
        missing = [c for c in clip_ids if c not in position]
        if missing:
            raise KeyError(f"{len(missing)} clip ids not in the cache, e.g. {missing[:3]}")
        rows = np.array([position[c] for c in clip_ids], dtype=int)
        return {name: array[rows] for name, array in self.arrays.items()}


def _attr_value(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, np.integer, np.floating, np.bool_)):
        return value
    return json.dumps(value)


def write_cache(
    path: str | Path,
    arrays: Mapping[str, np.ndarray],
    clip_ids: Sequence[str],
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write arrays (first axis = clip) and their clip ids to ``path``, atomically.

    Parameters
    ----------
    path : str or Path
        The .h5 file to write.
    arrays : mapping of str to ndarray
        Each array's first axis has ``len(clip_ids)`` rows.
    clip_ids : sequence of str
        The RAVDESS ids of the rows.
    attrs : mapping, optional
        Params that made the features; lists and dicts are stored as JSON text.
    """
    n = len(clip_ids)
    for name, array in arrays.items():
        if len(array) != n:
            raise MmerError(f"{path}: array {name!r} has {len(array)} rows for {n} clip ids")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            for name, array in arrays.items():
                # gzip, not lzf: h5py's LZF output depends on uninitialised memory, so the same
                # arrays gave different files and DVC reran every stage after an unchanged cache
                compression = {"compression": "gzip", "compression_opts": 1} if np.asarray(array).size > 4096 else {}
                h5.create_dataset(name, data=np.asarray(array), **compression)
            h5.create_dataset("clip_id", data=np.array(list(clip_ids), dtype=h5py.string_dtype()))
            for key, value in (attrs or {}).items():
                h5.attrs[key] = _attr_value(value)


def read_cache(path: str | Path, names: Sequence[str] | None = None) -> FeatureCache:
    """Read a cache written by :func:`write_cache` (all arrays, or only ``names``)."""
    path = Path(path)
    if not path.is_file():
        raise MmerError(f"{path}: feature cache not found (run dvc repro)")
    try:
        with h5py.File(path, "r") as h5:
            keys = [k for k in h5.keys() if k != "clip_id"] if names is None else list(names)
            arrays = {k: h5[k][()] for k in keys}
            clip_ids = [c.decode() if isinstance(c, bytes) else str(c) for c in h5["clip_id"][()]]
            attrs = {}
            for key, value in h5.attrs.items():
                if isinstance(value, str) and value[:1] in "[{":
                    value = json.loads(value)
                attrs[key] = value.item() if isinstance(value, np.generic) else value
    except (OSError, KeyError) as err:
        raise MmerError(f"{path}: not a readable mmer feature cache: {err}") from err
    return FeatureCache(arrays=arrays, clip_ids=clip_ids, attrs=attrs)

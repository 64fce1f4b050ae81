"""A per-clip result cache, keyed by the clip's content and the stage params.

DVC reruns a whole stage when one input changes; for a growing corpus that would redo
every clip. Stages look each clip up here first, so adding 10 clips to a processed corpus
costs 10 clips of work. The cache lives outside the stage outputs (``.cache/mmer/`` by
default, ignored by git) so DVC's removal of outputs before a rerun does not empty it.
An entry is written to a temporary file and renamed, so a killed run leaves no half entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mmer.errors import MediaError
from mmer.files import atomic_path, dangling_link

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path(".cache/mmer")
CACHE_VERSION = 1  # bump when a stage's per-clip result changes meaning
_CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    """md5 of a file's bytes (hex)."""
    digest = hashlib.md5()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def params_digest(stage: str, params: dict[str, Any], modules: tuple[ModuleType, ...] = ()) -> str:
    """A short digest of a stage, the params that change its per-clip result and the code.

    The source files of ``modules`` (the code that computes the result) are part of the
    digest, so editing them starts a fresh cache instead of serving stale results.
    """
    code = [file_digest(m.__file__) for m in modules if getattr(m, "__file__", None)]
    text = json.dumps({"stage": stage, "version": CACHE_VERSION, "code": code, **params}, sort_keys=True, default=str)
    return hashlib.md5(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ClipCache:
    """Results of one stage under one set of params, one pickle per clip content."""

    root: Path

    @classmethod
    def for_stage(
        cls, stage: str, params: dict[str, Any], *, modules: tuple[ModuleType, ...] = (), base: str | Path = DEFAULT_DIR
    ) -> ClipCache:
        """The cache of ``stage`` under ``params`` and the current code of ``modules``."""
        return cls(Path(base) / stage / params_digest(stage, params, modules))

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pkl"

    def get(self, key: str) -> Any | None:
        """The cached result for ``key``, or None (also for an unreadable entry)."""
        entry = self._entry(key)
        if not entry.is_file():
            return None
        try:
            with entry.open("rb") as fh:
                return pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError) as err:
            logger.warning("ignoring unreadable cache entry %s: %s", entry, err)
            return None

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` for ``key`` (atomically)."""
        with atomic_path(self._entry(key)) as tmp:
            with tmp.open("wb") as fh:
                pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)

    def get_or_compute(self, key: str, compute: Callable[[], Any]) -> Any:
        """The cached value for ``key``; else ``compute()``, stored then returned.

        Failures (exceptions) are not cached: a bad clip is tried again next time.
        """
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value


def clip_key(path: str | Path, *extra: object) -> str:
    """Cache key of a clip: the digest of its bytes plus any per-clip inputs (e.g. its span)."""
    try:
        digest = file_digest(path)
    except OSError as err:
        reason = dangling_link(path) or f"cannot read file: {err.strerror or err}"
        raise MediaError(f"{path}: {reason}") from err
    if not extra:
        return digest
    return hashlib.md5(json.dumps([digest, *extra], default=str).encode()).hexdigest()

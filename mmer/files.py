"""Small file helpers shared by every stage: atomic writes and the failures table."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

FAILURE_COLUMNS = ["clip_id", "path", "stage", "kind", "reason"]


def walk_files(root: str | Path) -> Iterator[Path]:
    """Every file below ``root``, folders in sorted order, following symlinked folders.

    Corpora on a shared drive often link their ``Actor_XX`` folders, which ``Path.rglob``
    does not enter. A folder whose real path was already searched (a link back to an
    ancestor, or a second link to the same folder) is not entered again, with a warning:
    link loops end and no file is found twice. Broken links are left out.
    """
    root = Path(root)
    seen = {os.path.realpath(root)}
    for folder, subfolders, names in os.walk(root, followlinks=True):
        kept = []
        for name in sorted(subfolders):
            real = os.path.realpath(os.path.join(folder, name))
            if real in seen:
                logger.warning(
                    "%s links to %s, which is already searched: not followed", os.path.join(folder, name), real
                )
                continue
            seen.add(real)
            kept.append(name)
        subfolders[:] = kept
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file():
                yield path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    An interrupted or failed write never leaves a file at ``path`` that looks finished.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); give it the permissions open() would have
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_failures(failures: Sequence[dict], path: str | Path) -> pd.DataFrame:
    """Write the failures of one stage (clip_id, path, stage, kind, reason) as CSV, atomically."""
    table = pd.DataFrame(list(failures), columns=FAILURE_COLUMNS)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return table


def read_failures(path: str | Path) -> pd.DataFrame:
    """Read a failures table; a missing file means no failures."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_json(obj: object, path: str | Path) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    import json

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")

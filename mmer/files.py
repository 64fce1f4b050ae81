"""Small file helpers shared by every stage: atomic writes and the failures table."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where a table is made: media (and a cold mmer predict) need none
    import pandas as pd

logger = logging.getLogger(__name__)

FAILURE_COLUMNS = ["clip_id", "path", "stage", "kind", "reason"]


def walk_files(root: str | Path, *, broken_links: bool = False) -> Iterator[Path]:
    """Every file below ``root``, folders in sorted order, following symlinked folders.

    Corpora on a shared drive often link their ``Actor_XX`` folders, which ``Path.rglob``
    does not enter. A folder whose real path was already searched (a link back to an
    ancestor, or a second link to the same folder) is not entered again, with a warning:
    link loops end and no file is found twice. Broken links (to nothing) are left out,
    or yielded too with ``broken_links`` (so that a caller can name them: the index lists
    them and the ``trim`` stage records each as a failed clip, "dangling symbolic link").
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
            if path.is_file() or (broken_links and path.is_symlink() and not path.exists()):
                yield path


LISTING_COLUMNS = ["path", "size", "mtime_ns", "problem"]


def dangling_link(path: str | Path) -> str | None:
    """``dangling symbolic link to TARGET`` when ``path`` is a link to nothing, else None."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return f"dangling symbolic link to {os.readlink(path)}"
    return None


def file_listing(root: str | Path) -> pd.DataFrame:
    """Every file below ``root`` (:func:`walk_files`) with its size and modification time.

    What the pipeline's stages that read the corpus depend on (``data/interim/raw_files.csv``)
    instead of the folder itself: DVC would hash every byte of it and stop at the first file
    it cannot read. A file that cannot be read is listed with its ``problem`` (a broken link
    and its target, or no read permission), size and time -1, and named in a warning.

    Returns
    -------
    DataFrame
        Columns ``LISTING_COLUMNS``, sorted by path.
    """
    import pandas as pd

    rows, problems = [], []
    for path in walk_files(root, broken_links=True):
        problem = dangling_link(path) or ""
        if not problem and not os.access(path, os.R_OK):
            problem = "not readable (permission denied)"
        if problem:
            rows.append({"path": str(path), "size": -1, "mtime_ns": -1, "problem": problem})
            problems.append(f"{path}: {problem}")
            continue
        stat = path.stat()
        rows.append({"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "problem": ""})
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        logger.warning(
            "%s: %d file%s cannot be read (a clip among them fails at trim): %s",
            root,
            len(problems),
            "" if len(problems) == 1 else "s",
            shown,
        )
    return pd.DataFrame(rows, columns=LISTING_COLUMNS).sort_values("path", ignore_index=True)


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


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a table as CSV without its row numbers, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def write_failures(failures: Sequence[dict], path: str | Path) -> pd.DataFrame:
    """Write the failures of one stage (clip_id, path, stage, kind, reason) as CSV, atomically."""
    import pandas as pd

    table = pd.DataFrame(list(failures), columns=FAILURE_COLUMNS)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return table


def read_failures(path: str | Path) -> pd.DataFrame:
    """Read a failures table; a missing file means no failures."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=FAILURE_COLUMNS)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_json(obj: object, path: str | Path) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    import json

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")

"""Per-clip work as a map over clips: a process pool (or a Dask cluster), a progress bar, failures recorded.

A batch never dies on one bad clip: the per-clip function raises :class:`MmerError`
(or any exception) and the clip is recorded with the reason; the stage decides at the end
from the totals whether the corpus itself is wrong (:func:`check_failed_share`).
``executor='dask'`` (params ``batch.*``) sends the same per-clip calls to a Dask cluster
(:mod:`mmer.executors`, imported only then); the outcomes come back in the same order.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from mmer.errors import ConfigError, DatasetError, MmerError

logger = logging.getLogger(__name__)

# Libraries that run threads of their own once used. A process forked after that inherits
# their locks but not their threads: a pool worker forked from a process that ran a MediaPipe
# face detector hangs closing the inherited one, or crashes creating its own. Such a process
# (a notebook, a test run, a Predictor's) starts its workers from a clean fork server instead;
# the stage scripts load neither before their pool starts and keep the fast fork.
THREADED_MODULES = ("mediapipe", "tensorflow")


def pool_context() -> multiprocessing.context.BaseContext | None:
    """The start method of a pool created now: None (the default), or ``forkserver`` when the
    default is fork and a library of :data:`THREADED_MODULES` is loaded in this process."""
    if multiprocessing.get_start_method() == "fork" and any(name in sys.modules for name in THREADED_MODULES):
        return multiprocessing.get_context("forkserver")
    return None


def pool_chunksize(n_items: int, jobs: int) -> int:
    """Clips a local pool sends a worker at a time: 1 up to 128 clips a worker, at most 8.

    Small chunks, as a chunk of slow clips (face crops take 0.1-0.2 s each) left to one worker
    at the end keeps the other cores idle, while sending a clip costs well under a millisecond.
    """
    return max(1, min(8, n_items // (max(1, jobs) * 128)))


@dataclass
class BatchResult:
    """What a batch produced: results by clip id (input order) and the failures."""

    results: dict[str, Any] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)

    def reason_counts(self) -> Counter:
        """Failures by kind (the exception class: NoSpeechError, NoFaceError, MediaError ...)."""
        return Counter(f["kind"] for f in self.failures)

    def summary(self, stage: str) -> str:
        """One log line: counts done, failed, and failures by reason."""
        reasons = ", ".join(f"{k}={v}" for k, v in self.reason_counts().most_common())
        return f"{stage}: {len(self.results)} done, {len(self.failures)} failed" + (f" ({reasons})" if reasons else "")


def guarded(func: Callable[[Any], Any], item: Any) -> tuple[bool, Any]:
    """``(True, func(item))``, or ``(False, (kind, reason))`` when it raised: one clip's outcome."""
    try:
        return True, func(item)
    except MmerError as err:
        return False, (type(err).__name__, str(err))
    except Exception as err:  # noqa: BLE001 - a batch records any per-clip failure and goes on
        return False, (type(err).__name__, f"unexpected {type(err).__name__}: {err}")


def map_clips(
    func: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    keys: Sequence[str],
    paths: Sequence[str],
    stage: str,
    jobs: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: Iterable[Any] = (),
    progress: bool = True,
    executor: str = "local",
    address: str = "",
    chunksize: int | None = None,
) -> BatchResult:
    """Apply ``func`` to every item, in a process pool when ``jobs > 1``, or on a Dask cluster.

    Parameters
    ----------
    func : callable
        A picklable top-level function of one item. It raises on a bad clip.
    items : sequence
        One item per clip (anything picklable).
    keys, paths : sequence of str
        The clip id and file path of each item, for the results and the failures table.
    stage : str
        Stage name written into each failure row.
    jobs : int
        Worker processes; 1 runs in this process (after calling ``initializer``).
    initializer, initargs
        Run once per worker, e.g. to create one face detector per worker.
    progress : bool
        Show a tqdm bar.
    executor : str
        ``local`` (this machine: the process pool above) or ``dask`` (:func:`mmer.executors.map_on_dask`:
        the same outcomes, in the same order).
    address : str
        With ``dask``: empty starts a cluster of ``jobs`` workers inside this process; a scheduler
        address (``tcp://host:8786``) or scheduler file joins a running one.
    chunksize : int, optional
        Clips sent to a local pool's worker at a time; None: :func:`pool_chunksize`.

    Returns
    -------
    BatchResult
    """
    if executor not in ("local", "dask"):
        raise ConfigError(f"batch.executor must be one of ['local', 'dask'], not {executor!r}")
    out = BatchResult()
    bar = tqdm(total=len(items), desc=stage, unit="clip", disable=not progress)
    outcomes: Iterable[tuple[bool, Any]]
    counted = False  # the bar already moved as clips finished (the dask executor)
    executor_pool = None
    if executor == "dask":
        from mmer.executors import map_on_dask  # distributed is imported only when asked for

        outcomes = map_on_dask(
            func,
            items,
            keys=keys,
            stage=stage,
            address=address,
            jobs=jobs,
            initializer=initializer,
            initargs=tuple(initargs),
            on_done=bar.update,
        )
        counted = True
    elif jobs <= 1:
        if initializer is not None:
            initializer(*initargs)
        outcomes = (guarded(func, item) for item in items)
    else:
        executor_pool = ProcessPoolExecutor(
            max_workers=jobs, mp_context=pool_context(), initializer=initializer, initargs=tuple(initargs)
        )
        chunksize = chunksize or pool_chunksize(len(items), jobs)
        outcomes = executor_pool.map(guarded, [func] * len(items), items, chunksize=chunksize)
    try:
        for key, path, (ok, value) in zip(keys, paths, outcomes):
            if ok:
                out.results[key] = value
            else:
                kind, reason = value
                out.failures.append({"clip_id": key, "path": path, "stage": stage, "kind": kind, "reason": reason})
                logger.debug("%s: %s failed: %s", stage, path, value)
            if not counted:
                bar.update()
    finally:
        bar.close()
        if executor_pool is not None:
            executor_pool.shutdown(cancel_futures=True)
    logger.info("%s", out.summary(stage))
    return out


def check_failed_share(n_failed: int, n_total: int, max_share: float, *, stage: str, failures_path: str) -> None:
    """Raise when more than ``max_share`` of the clips failed: the corpus itself is wrong."""
    if n_total and n_failed / n_total > max_share:
        raise DatasetError(
            f"{stage}: {n_failed} of {n_total} clips failed ({n_failed / n_total:.0%} > "
            f"{max_share:.0%} allowed by {stage}.max_failed_share); reasons in {failures_path}"
        )

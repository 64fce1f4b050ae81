"""The per-clip map on a Dask cluster (``batch.executor: dask``).

:func:`mmer.batch.map_clips` calls :func:`map_on_dask` instead of its process pool; the
outcomes are the same, in the same order, so the stage that called it writes the same
files. Only the stage's process writes the HDF5 and CSV outputs: the workers return each
clip's result (and write what the per-clip function itself writes: ``trim``'s span wavs and
the per-clip cache entries, atomically).

Every task runs in the stage's working directory, so the relative paths of the index, the
span wavs and the per-clip cache mean the same on a worker: a worker on another machine
needs the repository at the same absolute path (a shared filesystem) and the same mmer code.
Both are checked before any clip is sent. A worker keeps what ``initializer`` creates (the
MediaPipe face detector) between clips; start workers with one thread each
(``dask worker --nthreads 1``; more processes with ``--nworkers``), as the detector is not
shared between threads.

Dask (``distributed``) is imported here only, so the local executor never loads it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mmer.batch import guarded
from mmer.errors import ExecutorError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30  # to reach a scheduler
WORKER_TIMEOUT_S = 120  # for the first worker to join it

# what this worker process last initialised (the initializer and its arguments), so a
# detector made for one clip serves the next; a restarted worker process starts empty
_INITIALISED: tuple | None = None


def code_digest() -> str:
    """md5 of every source file of the mmer package here: workers must run the stage's code."""
    root = Path(__file__).resolve().parent
    digest = hashlib.md5()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_clip(
    item: Any,
    *,
    clip_func: Callable[[Any], Any],
    cwd: str,
    initializer: Callable[..., None] | None,
    initargs: tuple,
) -> tuple[bool, Any]:
    """One task: ``clip_func(item)``'s outcome (:func:`mmer.batch.guarded`), in the stage's folder."""
    global _INITIALISED
    if os.getcwd() != cwd:
        os.chdir(cwd)
    if initializer is not None:
        wanted = (initializer.__module__, initializer.__qualname__, initargs)
        if _INITIALISED != wanted:
            initializer(*initargs)
            _INITIALISED = wanted
    return guarded(clip_func, item)


def _connect(address: str, jobs: int) -> tuple[Any, Any]:
    """A client of the cluster at ``address``, or of a new local one of ``jobs`` worker processes."""
    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.WARNING)
    if not address:
        cluster = LocalCluster(
            n_workers=max(1, jobs),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: never fails on a busy 8787
            silence_logs=logging.WARNING,
        )
        return Client(cluster), cluster
    try:
        if Path(address).is_file():
            client = Client(scheduler_file=address, timeout=CONNECT_TIMEOUT_S)
        else:
            client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError) as err:
        raise ExecutorError(f"batch.address {address!r}: cannot reach a Dask scheduler there: {err}") from err
    return client, None


def _check_workers(client: Any, cwd: str, address: str, *, threads_needed_one: bool = False) -> None:
    """Fail before any clip is sent when a worker lacks the stage's folder or runs other mmer code,
    or (``threads_needed_one``: a per-worker object such as the face detector) runs several threads."""
    try:
        client.wait_for_workers(1, timeout=WORKER_TIMEOUT_S)
    except TimeoutError as err:
        raise ExecutorError(f"batch.address {address!r}: no Dask worker joined in {WORKER_TIMEOUT_S} s") from err
    try:
        folders = client.run(os.path.isdir, cwd)
        codes = client.run(code_digest)
    except ImportError as err:
        raise ExecutorError(
            f"a Dask worker cannot import mmer ({err}): install the stage's mmer on every worker"
        ) from err
    missing = sorted(worker for worker, ok in folders.items() if not ok)
    if missing:
        raise ExecutorError(
            f"Dask workers {missing} do not see the stage's folder {cwd}: workers need the repository "
            "at the same path (a shared filesystem)"
        )
    if threads_needed_one:
        crowded = sorted(worker for worker, n in client.nthreads().items() if n > 1)
        if crowded:
            raise ExecutorError(
                f"Dask workers {crowded} run several threads: this stage keeps one detector per worker "
                "process, which threads cannot share; start them with dask worker --nthreads 1 (--nworkers N)"
            )
    ours = code_digest()
    other = sorted(worker for worker, digest in codes.items() if digest != ours)
    if other:
        raise ExecutorError(
            f"Dask workers {other} run other mmer code than this stage ({Path(__file__).parent}): "
            "install the same version on every worker"
        )


def map_on_dask(
    func: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    keys: Sequence[str],
    stage: str,
    address: str = "",
    jobs: int = 1,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    on_done: Callable[[], Any] | None = None,
) -> list[tuple[bool, Any]]:
    """Each item's outcome (as :func:`mmer.batch.guarded` gives it), in the order of ``items``.

    One Dask task per clip. A worker that dies takes its running and finished-but-unfetched
    clips with it; the scheduler runs them again on the others (a clip whose tasks killed
    ``distributed.scheduler.allowed-failures`` workers is given up). Each clip's outcome is
    kept once, by its position, so none is lost or counted twice.

    Parameters
    ----------
    func, items, keys, stage, jobs, initializer, initargs
        As for :func:`mmer.batch.map_clips`; ``jobs`` sizes the local cluster only.
    address : str
        Empty: start a cluster of ``jobs`` worker processes (one thread each) in this process,
        for this map only. Else a scheduler address (``tcp://host:8786``) or a scheduler file.
    on_done : callable, optional
        Called once per finished clip (the progress bar).

    Raises
    ------
    ExecutorError
        The scheduler cannot be reached, no worker joins, a worker lacks the stage's folder or
        code (or runs several threads when ``initializer`` makes a per-worker object), or the
        cluster gave up a clip; nothing has been written by the stage then.
    """
    from distributed import as_completed

    if not items:
        return []
    cwd = os.getcwd()
    client, cluster = _connect(address, jobs)
    try:
        _check_workers(client, cwd, address, threads_needed_one=initializer is not None)
        futures = client.map(
            run_clip,
            list(items),
            pure=False,
            clip_func=func,
            cwd=cwd,
            initializer=initializer,
            initargs=tuple(initargs),
        )
        position = {future.key: i for i, future in enumerate(futures)}
        outcomes: list[tuple[bool, Any] | None] = [None] * len(items)
        for future in as_completed(futures):
            i = position[future.key]
            try:
                outcomes[i] = future.result()
            except Exception as err:  # noqa: BLE001 - per-clip errors come back as outcomes; this is the cluster's
                raise ExecutorError(
                    f"{stage}: the Dask cluster gave up clip {keys[i]} ({type(err).__name__}: {err}); no output "
                    "was written: rerun the stage (clips already done come from the per-clip cache)"
                ) from err
            future.release()
            if on_done is not None:
                on_done()
        logger.info("%s: %d clips on Dask (%d workers)", stage, len(items), len(client.scheduler_info()["workers"]))
        return outcomes  # type: ignore[return-value] - every position was filled
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

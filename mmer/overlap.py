"""A cold ``mmer predict CLIP``: the clip is prepared in a forked process while TensorFlow loads.

Importing TensorFlow and Keras and loading the networks take most of a new process's time
(docs/benchmark.md); a clip's features (:meth:`mmer.predictor.Predictor.features`: probe,
speech span, MFCCs, face crops) need neither. So ``mmer predict`` of one clip makes its
:class:`~mmer.predictor.Predictor` with ``defer_network=True`` (the features' config from
``model.json`` alone), forks a child that prepares the clip (:func:`prepare_in_child`), loads
the network meanwhile (:meth:`~mmer.predictor.Predictor.load_network`), then takes the
child's arrays (:meth:`PreparedClip.features`) and answers as it would have in-process:
the same arrays, the same probabilities.

The fork happens only while neither TensorFlow nor MediaPipe is loaded in this process (a
fork inherits their locks but not their threads, :data:`mmer.batch.THREADED_MODULES`);
otherwise the clip is prepared in-process as before. The child's log records are handed to
this process's loggers, its error is raised here as the same :class:`~mmer.errors.MmerError`
with the same message, and a child that dies without answering is reported, not waited for.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmer.batch import THREADED_MODULES
from mmer.errors import MmerError
from mmer.logs import native_stderr_filtered

if TYPE_CHECKING:
    from mmer.predictor import ClipFeatures, Predictor

logger = logging.getLogger(__name__)

TIMEOUT_S = 600.0  # the most this process waits for the child's answer once it asks for it


class _PipeHandler(logging.Handler):
    """In the child: every log record goes to the parent, message formatted, through the pipe."""

    def __init__(self, writer: Connection) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            record.msg, record.args = record.getMessage(), None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            self.writer.send(("log", record))
        except Exception:  # noqa: BLE001 - a record that cannot be sent must not end the child
            self.handleError(record)


def _prepare(predictor: Predictor, path: Path, writer: Connection) -> None:
    """The child: the clip's features, or its error, sent to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops this process
    logging.getLogger().handlers = [_PipeHandler(writer)]
    try:
        with native_stderr_filtered():  # MediaPipe's start-up lines, whichever of its threads writes them
            clip = predictor.features(path)
        message: tuple[Any, ...] = ("clip", clip, time.perf_counter() - clip.started)
    except Exception as err:  # noqa: BLE001 - every failure goes to the parent
        if not isinstance(err, MmerError):
            logger.debug("%s: unexpected error", path, exc_info=True)
        try:
            pickle.dumps(err)
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its text, in mmer's family
            err = MmerError(f"{path}: unexpected {type(err).__name__}: {err}")
        message = ("error", err)
    writer.send(message)
    writer.close()


class PreparedClip:
    """One clip's :meth:`~mmer.predictor.Predictor.features`, being prepared in a forked child.

    Made by :func:`prepare_in_child`. A thread of this process hands the child's log records
    to this process's loggers as they come (so the child never waits on a full pipe while
    TensorFlow loads here) and keeps its answer; :meth:`features` waits for that. The child
    is stopped when the answer has come, on :meth:`stop`, and on leaving a ``with`` block.
    """

    def __init__(self, path: Path, heads: list[str], process: Any, reader: Connection) -> None:
        self.path = path
        self.heads = heads  # those the child chose from: the predictor's before load_network
        self._process = process
        self._reader = reader
        self._answer: tuple[Any, ...] = ()
        self._answered = threading.Event()
        self._relay = threading.Thread(target=self._listen, name="mmer-prepare-relay", daemon=True)
        self._relay.start()

    def _listen(self) -> None:
        """The relay thread: log records until the child's answer, or the end of the pipe."""
        try:
            while True:
                kind, *payload = self._reader.recv()
                if kind != "log":
                    self._answer = (kind, *payload)
                    return
                record = payload[0]
                logging.getLogger(record.name).handle(record)
        except (EOFError, OSError):  # the child ended without answering
            self._answer = ("died",)
        finally:
            self._answered.set()

    def features(self, path: Path, predictor: Predictor, *, timeout_s: float = TIMEOUT_S) -> ClipFeatures:
        """The clip's features from the child, as ``predictor.features(path)`` gives them.

        Prepared here instead when ``path`` is not the child's clip, or the loaded network
        has heads the child could not know of (a late-fusion model's branch heads).

        Raises
        ------
        MmerError
            The child's error (the same class and message as in-process); the child died or
            gave no answer within ``timeout_s``.
        """
        if Path(path) != self.path or predictor.head_names != self.heads:
            logger.debug(
                "%s: prepared in this process (heads %s, the child's %s)", path, predictor.head_names, self.heads
            )
            self.stop()
            return predictor.features(path)
        try:
            if not self._answered.wait(timeout_s):
                raise MmerError(f"{self.path}: no answer from the process preparing the clip after {timeout_s:.0f} s")
            kind, *payload = self._answer
            if kind == "error":
                raise payload[0]
            if kind == "died":
                self._process.join(timeout=5.0)
                code = self._process.exitcode
                how = f"killed by signal {-code}" if code and code < 0 else f"exit code {code}"
                raise MmerError(f"{self.path}: the process preparing the clip ended without an answer ({how})")
            clip, seconds = payload
            clip.started = time.perf_counter() - seconds  # Prediction.seconds: the clip's own work, as in-process
            return clip
        finally:
            self.stop()

    def stop(self) -> None:
        """End the child if it still runs, and close the pipe once the relay thread is done."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join(timeout=5.0)
        self._relay.join(timeout=5.0)
        if not self._relay.is_alive():
            with contextlib.suppress(OSError):
                self._reader.close()

    def __enter__(self) -> PreparedClip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def can_fork() -> bool:
    """Whether a child may be forked now: fork exists and no threaded library is loaded here."""
    loaded = [name for name in THREADED_MODULES if name in sys.modules]
    if loaded:
        logger.debug("clip prepared in-process: %s already loaded (no fork after it)", ", ".join(loaded))
    daemon = multiprocessing.current_process().daemon  # a daemonic process may not start children
    return not loaded and not daemon and "fork" in multiprocessing.get_all_start_methods()


def prepare_in_child(predictor: Predictor, path: str | Path) -> PreparedClip | None:
    """Start preparing ``path`` with ``predictor``'s :meth:`~mmer.predictor.Predictor.features`
    in a forked child; None (prepare it in-process) when :func:`can_fork` says no.

    ``predictor`` should not have its network yet (``defer_network=True``): loading it
    imports TensorFlow, after which nothing is forked.
    """
    if not can_fork():
        return None
    context = multiprocessing.get_context("fork")
    reader, writer = context.Pipe(duplex=False)
    process = context.Process(target=_prepare, args=(predictor, Path(path), writer), name="mmer-prepare", daemon=True)
    process.start()
    writer.close()  # the child's end: the reader sees EOF when the child is gone
    logger.debug("%s: prepared in process %d while this one loads TensorFlow", path, process.pid)
    return PreparedClip(Path(path), predictor.head_names, process, reader)

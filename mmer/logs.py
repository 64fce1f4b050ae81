"""Logging set-up for the command line and the stage scripts (the library only logs)."""

from __future__ import annotations

import logging
import os
import sys
import warnings


def quiet_third_party() -> None:
    """Silence TensorFlow/MediaPipe start-up chatter that says nothing to the user."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", category=UserWarning, module="google.protobuf")
    logging.getLogger("absl").setLevel(logging.ERROR)


def _one_line_errors(exc_type, exc, tb) -> None:  # noqa: ANN001 - sys.excepthook signature
    """An uncaught :class:`MmerError` ends a script with its one-line reason, not a traceback."""
    from mmer.errors import MmerError

    if issubclass(exc_type, MmerError):
        logging.getLogger("mmer").error("%s", exc)
        logging.getLogger("mmer").debug("traceback", exc_info=(exc_type, exc, tb))
        sys.exit(1)
    sys.__excepthook__(exc_type, exc, tb)


def setup_logging(verbose: int = 0) -> None:
    """Log to stderr: INFO by default, DEBUG with ``verbose >= 1``, WARNING with ``verbose < 0``.

    Also makes an uncaught mmer error end the process with its one-line reason (exit 1).
    """
    level = logging.DEBUG if verbose >= 1 else logging.WARNING if verbose < 0 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    sys.excepthook = _one_line_errors
    quiet_third_party()

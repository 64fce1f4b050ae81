"""Logging set-up for the command line and the stage scripts (the library only logs)."""

from __future__ import annotations

import logging
import os
import warnings


def quiet_third_party() -> None:
    """Silence TensorFlow/MediaPipe start-up chatter that says nothing to the user."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", category=UserWarning, module="google.protobuf")
    logging.getLogger("absl").setLevel(logging.ERROR)


def setup_logging(verbose: int = 0) -> None:
    """Log to stderr: INFO by default, DEBUG with ``verbose >= 1``, WARNING with ``verbose < 0``."""
    level = logging.DEBUG if verbose >= 1 else logging.WARNING if verbose < 0 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    quiet_third_party()

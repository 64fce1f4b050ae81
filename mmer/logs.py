"""Logging set-up for the command line and the stage scripts (the library only logs)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

# what MediaPipe's C++ (absl, glog, TensorFlow Lite) writes to stderr when a graph starts:
# INFO and WARNING lines only; E/F lines and anything else still reach the terminal
NATIVE_NOISE = re.compile(
    r"INFO: Created TensorFlow Lite \S+ delegate for CPU"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+ +\d+ [\w./-]+:\d+\] "
)


def quiet_third_party() -> None:
    """Silence TensorFlow/MediaPipe start-up chatter that says nothing to the user."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GLOG_minloglevel", "2")
    warnings.filterwarnings("ignore", category=UserWarning, module="google.protobuf")
    logging.getLogger("absl").setLevel(logging.ERROR)


@contextlib.contextmanager
def native_stderr_filtered(noise: re.Pattern[str] = NATIVE_NOISE) -> Iterator[None]:
    """Keep native libraries' start-up chatter off the terminal, and nothing else.

    Inside the block the process's stderr (file descriptor 2, which C++ code writes to
    directly) goes to a temporary file; on exit every line that does not match ``noise``
    is written to the real stderr, in order, so errors still show. The held-back lines go
    to the debug log (``mmer -v`` shows them). Where stderr has no file descriptor, the
    block runs unfiltered.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            shown = [line for line in lines if not noise.match(line)]
            if shown:
                os.write(2, "".join(shown).encode())
            for line in lines:
                if noise.match(line):
                    logging.getLogger(__name__).debug("native start-up line: %s", line.rstrip())


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

"""A running ``mmer serve`` for the tests: a free loopback port, the app in a uvicorn thread, or the
real command in a process; and an untrained model to serve (feature_factory.untrained_model_bundle)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

START_TIMEOUT_S = 120.0  # importing TensorFlow and loading the model on a busy 2-core machine


def free_port() -> int:
    """A TCP port nothing listens on (the OS's choice, released at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, *, timeout_s: float = START_TIMEOUT_S, process: subprocess.Popen | None = None) -> dict:
    """Poll ``url``/health until it answers 200; returns its JSON."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"mmer serve ended with status {process.returncode} before answering")
        try:
            response = httpx.get(f"{url}/health", timeout=2.0)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout_s:.0f} s")


class ServerThread:
    """``app`` served by uvicorn on a loopback port in a thread of this process (a context manager)."""

    def __init__(self, app, port: int | None = None) -> None:  # noqa: ANN001 - a FastAPI app
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        wait_until_up(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def start_serve(args: Sequence[str], log: Path, *, cwd: Path | None = None) -> subprocess.Popen:
    """``python -m mmer serve ARGS`` as a process of its own, its output to ``log``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mmer", "serve", *args], stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env
        )


def stop(process: subprocess.Popen) -> None:
    """Stop a process started by :func:`start_serve` (SIGTERM, then SIGKILL)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

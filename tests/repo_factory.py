"""A temporary git + DVC repository holding this checkout's pipeline, for tests that run `dvc`.

The pipeline files (dvc.yaml, params.yaml, stages/, mmer/) are copied from the checkout, the
corpus is whatever the test writes under ``data/raw``; ``dvc`` and ``python`` are the venv's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from conftest import ROOT

BIN = Path(sys.executable).parent


def env() -> dict[str, str]:
    """The environment of a `dvc` run: the venv first on PATH, no analytics, quiet TensorFlow."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONHASHSEED": "0",
    }


def run(cmd: Sequence[str], cwd: Path, *, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a command in ``cwd``; with ``check``, a failure raises with the end of its output."""
    proc = subprocess.run(list(cmd), cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def set_params(repo: Path, **sections: dict) -> None:
    """Update sections of the repo's params.yaml."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def make_repo(repo: Path, **sections: dict) -> Path:
    """git init + dvc init in ``repo`` with the checkout's pipeline and ``sections`` of params.

    The corpus (``data/raw``) and the per-clip cache (``.cache``) are git-ignored.
    """
    repo.mkdir(parents=True, exist_ok=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("stages", "mmer"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / ".gitignore").write_text("/data/raw\n/.cache\n")
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "ci@example.org"], repo)
    run(["git", "config", "user.name", "ci"], repo)
    run(["dvc", "init", "-q"], repo)
    set_params(repo, **sections)
    return repo


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message, "--allow-empty"], repo)


# Stages that run on every `dvc repro` (always_changed in dvc.yaml: unpack lists the corpus folder).
ALWAYS_RUN = {"unpack"}


def ran(output: str) -> set[str]:
    """The stages a `dvc repro` output says it ran, but for those of :data:`ALWAYS_RUN`."""
    stages = {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage '")}
    return stages - ALWAYS_RUN


def start(cmd: Sequence[str], cwd: Path, log: Path) -> subprocess.Popen:
    """Start a command in its own process group (a signal to the group reaches every child).

    Ctrl-C (SIGINT) is reset to its default in the child, as in a terminal: a test run from
    a background job of a non-interactive shell (``make test &``) inherits it ignored, and
    Python would then never raise KeyboardInterrupt.
    """
    handle = log.open("w")
    return subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=env(),
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_until(
    condition: Callable[[], bool], proc: subprocess.Popen, *, timeout: float = 120, poll_s: float = 0.02
) -> bool:
    """Poll ``condition`` until true (True) or until ``proc`` has ended or the timeout (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return condition()
        time.sleep(poll_s)
    return False


def interrupt(proc: subprocess.Popen, sig: int, *, timeout: float = 60) -> int:
    """Send ``sig`` to the process group of ``proc`` and wait for it to end (return code).

    A group still running after ``timeout`` seconds is killed and the test fails: an
    interrupted run must stop by itself.
    """
    os.killpg(proc.pid, sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise AssertionError(f"process group {proc.pid} still running {timeout} s after signal {sig}") from None


def digest(path: Path) -> str:
    """md5 of a file's bytes."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def tree_digests(folder: Path) -> dict[str, str]:
    """md5 of every file below ``folder``, by relative path."""
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def part_files(repo: Path) -> list[Path]:
    """Temporary files of unfinished atomic writes (``.NAME.XXXX.part``) outside .git and .dvc."""
    return sorted(p for p in repo.rglob("*.part") if not {".git", ".dvc"} & set(p.relative_to(repo).parts))


def tiny_demo_corpus(repo: Path, *, actors: str, seed: int = 0) -> None:
    """The tiny generated corpus in ``repo/data/raw`` (actors 5 validate, 6 test), one job, 2 epochs."""
    run(
        [sys.executable, "-m", "mmer", "-q", "synth", "--out", "data/raw", "--preset", "tiny"]
        + ["--actors", actors, "--seed", str(seed)],
        repo,
    )
    set_params(
        repo, index={"val_actors": [5], "test_actors": [6]}, trim={"jobs": 1}, faces={"jobs": 1}, train={"epochs": 2}
    )

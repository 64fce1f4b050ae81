"""Interrupted runs: `dvc repro` killed in the middle of a stage, then run again.

A preprocessing stage is stopped (SIGINT in trim's process pool, as Ctrl-C does; SIGKILL in
face_crops) once some of its clips are done (their entries appear in the per-clip cache
``.cache/mmer/<stage>/``); training is killed after its first epoch. Afterwards no output
may look finished while it is partial: each output of the stage is absent or a complete
file. The next `dvc repro` must give what an uninterrupted run gives: to the bit for the
features (the stage functions run here in-process on the same corpus), to 1e-6 for training
(a forced uninterrupted `dvc repro` of train).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from mmer import preprocess
from mmer.config import AudioParams, FacesParams, TrimParams
from mmer.corpus import build_index, write_index
from mmer.featurefile import read_cache

import media_factory as mf
import repo_factory as rf

pytestmark = pytest.mark.slow

ACTORS = (1, 2, 3, 4)
CLIPS_PER_ACTOR = 3
N_CLIPS = len(ACTORS) * CLIPS_PER_ACTOR
# trim in a pool of two (Ctrl-C must reach and end the workers); one face detector process
TINY_MODEL = {
    "audio_units": 8,
    "audio_dense": 16,
    "audio_pool": 1,
    "video_filters": [4, 8],
    "video_dense": 16,
    "head_units": 16,
}
PARAMS = {"index": {"val_actors": [3], "test_actors": [4]}, "trim": {"jobs": 2}, "faces": {"jobs": 1}}


def cache_entries(repo: Path, stage: str) -> int:
    """Clips finished so far by ``stage`` (complete per-clip cache entries; ``.part`` files are not)."""
    return sum(1 for _ in (repo / ".cache" / "mmer" / stage).glob("*/*/*.pkl"))


def locked_stages(repo: Path) -> dict:
    lock = repo / "dvc.lock"
    return yaml.safe_load(lock.read_text())["stages"] if lock.is_file() else {}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return mf.tiny_corpus(
        tmp_path_factory.getbasetemp() / "tiny-corpus", actors=ACTORS, clips_per_actor=CLIPS_PER_ACTOR
    )


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> dict[str, Path]:
    """The outputs of an uninterrupted run: the stage functions in this process, no per-clip cache."""
    out = tmp_path_factory.mktemp("uninterrupted")
    write_index(build_index(corpus, modalities=("av",), val_actors=[3], test_actors=[4]), out / "index.csv")
    quiet = {"progress": False}
    trim = TrimParams(jobs=1)
    preprocess.trim_stage(
        out / "index.csv",
        wav_dir=out / "audio",
        spans_path=out / "spans.csv",
        failures_path=out / "f1.csv",
        metrics_path=out / "m1.json",
        params=trim,
        cache_dir=None,
        **quiet,
    )
    preprocess.audio_features_stage(
        out / "index.csv",
        out / "spans.csv",
        wav_dir=out / "audio",
        out_path=out / "audio.h5",
        failures_path=out / "f2.csv",
        metrics_path=out / "m2.json",
        params=AudioParams(),
        **quiet,
    )
    preprocess.face_crops_stage(
        out / "index.csv",
        out / "spans.csv",
        out_path=out / "video.h5",
        failures_path=out / "f3.csv",
        metrics_path=out / "m3.json",
        params=FacesParams(jobs=1),
        cache_dir=None,
        **quiet,
    )
    return {
        "spans": out / "spans.csv",
        "audio_dir": out / "audio",
        "audio": out / "audio.h5",
        "video": out / "video.h5",
    }


@pytest.fixture(scope="module")
def repo(corpus, tmp_path_factory) -> Path:
    repo = rf.make_repo(tmp_path_factory.mktemp("interrupts") / "repo", **PARAMS)
    shutil.copytree(corpus, repo / "data" / "raw")
    rf.commit(repo, "tiny corpus pipeline")
    return repo


def assert_same_arrays(path: Path, expected: Path) -> None:
    got, want = read_cache(path), read_cache(expected)
    assert got.clip_ids == want.clip_ids
    assert sorted(got.arrays) == sorted(want.arrays)
    for name, array in want.arrays.items():
        assert got.arrays[name].dtype == array.dtype
        np.testing.assert_array_equal(got.arrays[name], array, err_msg=f"{path}: {name}")


def group_left(proc, *, timeout: float = 30) -> list[str]:
    """The processes still in the group of ``proc`` (the stage's pool workers included) after
    waiting up to ``timeout`` seconds for them to end; an empty list when none is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return []
        time.sleep(0.1)
    ps = subprocess.run(["ps", "-o", "pid,stat,etime,args", "-s", str(proc.pid)], capture_output=True, text=True)
    return ps.stdout.splitlines()[1:]


def sigint_while_trim_is_busy(repo: Path, log: Path) -> tuple[subprocess.Popen, int]:
    """Start ``dvc repro audio_features`` and Ctrl-C its process group while trim is mid-way.

    The group is frozen (SIGSTOP) as soon as two clips are done, so the check that trim has
    not finished and the Ctrl-C see the same moment (trim of the tiny corpus takes about a
    second).
    """
    proc = rf.start(["dvc", "repro", "audio_features"], repo, log)
    started = rf.wait_until(lambda: cache_entries(repo, "trim") >= 2, proc, timeout=120)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGSTOP)
    busy = started and proc.poll() is None and cache_entries(repo, "trim") < N_CLIPS
    if not busy:
        if proc.poll() is None:
            rf.interrupt(proc, signal.SIGKILL)
        pytest.fail(f"trim had finished before the Ctrl-C could be sent: {log.read_text()[-3000:]}")
    os.killpg(proc.pid, signal.SIGINT)
    return proc, rf.interrupt(proc, signal.SIGCONT)


def test_sigint_in_trim_then_repro(repo, reference, tmp_path):
    """Ctrl-C while trim's process pool is busy, on the first run of the pipeline."""
    proc, code = sigint_while_trim_is_busy(repo, tmp_path / "interrupted.log")
    log = (tmp_path / "interrupted.log").read_text()
    assert code != 0 and cache_entries(repo, "trim") < N_CLIPS, log[-3000:]
    assert group_left(proc) == [], log[-3000:]
    # spans.csv is not written, the wavs written before Ctrl-C are whole, every temporary file is removed
    spans, wavs = repo / "data" / "interim" / "spans.csv", sorted((repo / "data" / "interim" / "audio").glob("*.wav"))
    assert not spans.exists() and len(wavs) < N_CLIPS
    for wav in wavs:
        assert rf.digest(wav) == rf.digest(reference["audio_dir"] / wav.name), wav
    assert rf.part_files(repo) == [], log[-3000:]
    assert "index" in locked_stages(repo) and "trim" not in locked_stages(repo)

    out = rf.run(["dvc", "repro", "audio_features"], repo)
    assert rf.ran(out.stdout + out.stderr) == {"trim", "audio_features"}
    assert rf.digest(spans) == rf.digest(reference["spans"])
    assert rf.tree_digests(repo / "data" / "interim" / "audio") == rf.tree_digests(reference["audio_dir"])
    assert_same_arrays(repo / "features" / "audio.h5", reference["audio"])


def test_sigkill_in_face_crops_then_repro(repo, reference, tmp_path):
    """SIGKILL (no clean-up at all) while face_crops runs, after trim has finished."""
    proc = rf.start(["dvc", "repro", "face_crops"], repo, tmp_path / "killed.log")
    started = rf.wait_until(lambda: cache_entries(repo, "face_crops") >= 2, proc, timeout=300)
    assert started and proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
    rf.interrupt(proc, signal.SIGKILL)
    assert cache_entries(repo, "face_crops") < N_CLIPS
    # no video.h5 (an HDF5 file is only ever renamed into place when complete); a killed writer
    # may leave its temporary file: hidden, named .part, never an output's name
    assert not (repo / "features" / "video.h5").exists()
    for part in rf.part_files(repo):
        assert part.name.startswith(".") and part.suffix == ".part", part
    assert "face_crops" not in locked_stages(repo) and "face_crops" in rf.run(["dvc", "status"], repo).stdout

    out = rf.run(["dvc", "repro", "face_crops"], repo)
    assert rf.ran(out.stdout + out.stderr) == {"face_crops"}
    assert_same_arrays(repo / "features" / "video.h5", reference["video"])
    assert "changed" not in rf.run(["dvc", "status", "audio_features", "face_crops"], repo).stdout


def test_sigkill_in_training_then_repro(repo, tmp_path):
    """SIGKILL after the first epoch of the first training; the rerun equals an uninterrupted training."""
    rf.set_params(repo, model=TINY_MODEL, train={"epochs": 2, "batch_size": 8})
    curve = repo / "metrics" / "train" / "plots" / "metrics" / "train" / "loss.tsv"
    proc = rf.start(["dvc", "repro", "train"], repo, tmp_path / "killed.log")
    started = rf.wait_until(lambda: curve.is_file() and len(curve.read_text().splitlines()) >= 2, proc, timeout=300)
    assert started and proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
    rf.interrupt(proc, signal.SIGKILL)
    # no model file, complete or not, and nothing in models/ that looks like one
    models = repo / "models"
    assert not (models / "model.keras").exists() and not (models / "model.json").exists()
    if models.is_dir():
        assert not [p for p in models.rglob("*") if p.is_file() and not p.name.startswith(".")], sorted(
            models.rglob("*")
        )
    assert "train" not in locked_stages(repo)

    out = rf.run(["dvc", "repro", "train"], repo)
    assert rf.ran(out.stdout + out.stderr) == {"train"}
    after_kill = {
        "metrics": json.loads((repo / "metrics" / "train" / "metrics.json").read_text()),
        "curve": curve.read_text(),
    }
    # the curve has one row per epoch: nothing kept from the killed run
    assert len(after_kill["curve"].splitlines()) == 1 + after_kill["metrics"]["epochs_run"]
    rf.run(["dvc", "repro", "--force", "--single-item", "train"], repo)
    uninterrupted = json.loads((repo / "metrics" / "train" / "metrics.json").read_text())
    assert after_kill["metrics"]["best"]["val_loss"] == pytest.approx(
        uninterrupted["best"]["val_loss"], abs=1e-6, rel=0
    )
    assert after_kill["metrics"]["epochs_run"] == uninterrupted["epochs_run"]
    got = [row.split("\t")[-1] for row in after_kill["curve"].splitlines()[1:]]
    want = [row.split("\t")[-1] for row in curve.read_text().splitlines()[1:]]
    assert [float(v) for v in got] == pytest.approx([float(v) for v in want], abs=1e-6, rel=0)

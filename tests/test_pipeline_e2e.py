"""End to end: the real `dvc repro` on a tiny generated corpus, in a temporary git repo.

Checks the outputs, that a change of `audio.n_mfcc` reruns only the audio side, and that
a second `dvc repro` with no change runs nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT
from mmer.cache import read_cache

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
TINY_ACTORS = "1-6"


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def set_params(repo: Path, **sections) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def lock_outs(repo: Path, stage: str) -> list:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return lock["stages"][stage]["outs"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("e2e")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("stages", "mmer"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / ".gitignore").write_text("/data/raw\n")
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "ci@example.org"], repo)
    run(["git", "config", "user.name", "ci"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "config", "core.autostage", "true"], repo)
    run(
        [sys.executable, "-m", "mmer", "-q", "synth", "--out", "data/raw", "--preset", "tiny", "--actors", TINY_ACTORS, "--seed", "0"],
        repo,
    )
    set_params(repo, index={"val_actors": [5], "test_actors": [6]}, trim={"jobs": 1}, faces={"jobs": 1})
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "tiny corpus pipeline"], repo)
    run(["dvc", "repro", "samples"], repo)
    return repo


def test_preprocessing_outputs(repo):
    index = pd.read_csv(repo / "data/index.csv", dtype={"clip_id": str})
    assert len(index) > 0 and set(index["split"]) == {"train", "val", "test"}
    spans = pd.read_csv(repo / "data/interim/spans.csv", dtype={"clip_id": str})
    assert set(spans["clip_id"]) == set(index["clip_id"])
    assert (spans["start_s"] > 0.1).all() and (spans["end_s"] < spans["duration_s"] - 0.1).all()
    assert len(list((repo / "data/interim/audio").glob("*.wav"))) == len(index)

    audio = read_cache(repo / "features/audio.h5")
    video = read_cache(repo / "features/video.h5")
    assert audio.arrays["mfcc"].shape[0] == len(index) and audio.arrays["mfcc"].shape[2] == 24
    assert audio.attrs["n_mfcc"] == 24 and audio.attrs["max_frames"] == audio.arrays["mfcc"].shape[1]
    assert video.arrays["faces"].shape == (len(index), 6, 64, 64, 3)
    assert video.arrays["face_found"].mean() > 0.9
    assert set(audio.clip_ids) == set(video.clip_ids) == set(index["clip_id"])

    counts = json.loads((repo / "metrics/preprocess/face_crops.json").read_text())
    assert counts["done"] == len(index) and counts["failed"] == 0
    assert (repo / "data/interim/failures_trim.csv").is_file()
    assert (repo / "metrics/samples.png").stat().st_size > 10_000


def test_second_repro_runs_nothing(repo):
    out = run(["dvc", "repro", "samples"], repo)
    assert "Running stage" not in out, out
    status = run(["dvc", "status"], repo)
    assert "up to date" in status


def test_n_mfcc_change_reruns_only_the_audio_side(repo):
    trim_before, faces_before = lock_outs(repo, "trim"), lock_outs(repo, "face_crops")
    video_mtime = (repo / "features/video.h5").stat().st_mtime_ns
    set_params(repo, audio={"n_mfcc": 13})
    status = run(["dvc", "status"], repo)
    assert "audio_features" in status and "face_crops" not in status and "trim:" not in status
    out = run(["dvc", "repro", "samples"], repo)
    assert "Running stage 'audio_features'" in out and "Running stage 'samples'" in out
    for stage in ("index", "trim", "face_crops"):
        assert f"Running stage '{stage}'" not in out
    assert lock_outs(repo, "trim") == trim_before and lock_outs(repo, "face_crops") == faces_before
    assert (repo / "features/video.h5").stat().st_mtime_ns == video_mtime
    assert read_cache(repo / "features/audio.h5").arrays["mfcc"].shape[2] == 13

"""End to end: the real `dvc repro` on a tiny generated corpus, in a temporary git repo.

Checks the outputs of every stage, that a second `dvc repro` with no change runs nothing,
that `dvc exp run -S train.epochs=1` reruns only training and evaluation and shows in
`dvc metrics diff`, and that a change of `audio.n_mfcc` reruns only the audio side.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mmer.featurefile import read_cache

import repo_factory
from repo_factory import commit, make_repo, ran, set_params, tiny_demo_corpus

pytestmark = pytest.mark.slow

TINY_ACTORS = "1-6"


def run(cmd: list[str], cwd: Path) -> str:
    """Run a command (failure raises with its output); return what it printed."""
    proc = repo_factory.run(cmd, cwd)
    return proc.stdout + proc.stderr


def lock_outs(repo: Path, stage: str) -> list:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return lock["stages"][stage]["outs"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = make_repo(tmp_path_factory.mktemp("e2e"))
    run(["dvc", "config", "core.autostage", "true"], repo)
    tiny_demo_corpus(repo, actors=TINY_ACTORS)
    commit(repo, "tiny corpus pipeline")
    run(["dvc", "repro"], repo)
    commit(repo, "baseline results")
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
    assert audio.arrays["audio_features"].shape[0] == len(index) and audio.arrays["audio_features"].shape[2] == 24
    assert audio.attrs["n_mfcc"] == 24 and audio.attrs["padded_frames"] == audio.arrays["audio_features"].shape[1]
    assert video.arrays["faces"].shape == (len(index), 6, 64, 64, 3)
    assert video.arrays["face_found"].mean() > 0.9
    assert set(audio.clip_ids) == set(video.clip_ids) == set(index["clip_id"])

    counts = json.loads((repo / "metrics/preprocess/face_crops.json").read_text())
    assert counts["done"] == len(index) and counts["failed"] == 0
    assert (repo / "data/interim/failures_trim.csv").is_file()
    assert (repo / "metrics/samples.png").stat().st_size > 10_000


def test_training_outputs(repo):
    meta = json.loads((repo / "models/model.json").read_text())
    assert meta["model_inputs"] == "av" and len(meta["label_names"]) == 7
    # the span params travel with the model, so `mmer predict` cuts a new clip the same way
    assert meta["features"]["span"]["threshold_db"] == -35.0 and "jobs" not in meta["features"]["span"]
    assert (repo / "models/model.keras").stat().st_size > 10_000
    metrics = json.loads((repo / "metrics/eval.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n"] > 0
    assert "majority" in json.dumps(metrics)
    predictions = pd.read_csv(repo / "metrics/predictions.csv", dtype={"clip_id": str})
    assert len(predictions) == metrics["n"] and {"actual", "predicted"} <= set(predictions.columns)
    # evaluate scored the test speakers' clips and nothing else
    index = pd.read_csv(repo / "data/index.csv", dtype={"clip_id": str, "actor": str})
    test = index[index["split"] == "test"]
    assert set(predictions["clip_id"]) <= set(test["clip_id"])
    assert set(predictions["actor"].astype(str)) == set(test["actor"])
    assert (repo / "metrics/train/metrics.json").is_file()
    assert (repo / "metrics/baselines.json").is_file()
    assert (repo / "metrics/confusion.png").stat().st_size > 5_000


def test_second_repro_runs_nothing(repo):
    out = run(["dvc", "repro"], repo)
    assert not ran(out), out
    status = run(["dvc", "status"], repo)
    # only unpack, which lists the corpus folder on every run (always_changed), is not up to date
    assert [line for line in status.splitlines() if line.endswith(":")] == ["unpack:"], status
    assert "always changed" in status


def test_exp_run_train_param_reruns_only_training(repo):
    out = run(["dvc", "exp", "run", "-S", "train.epochs=1"], repo)
    assert {"train", "evaluate"} <= ran(out) <= {"train", "evaluate", "cv", "cross_corpus"}, ran(out)
    diff = run(["dvc", "params", "diff"], repo)
    assert "train.epochs" in diff
    metrics_diff = run(["dvc", "metrics", "diff", "--all"], repo)
    assert "metrics/eval.json" in metrics_diff and "accuracy" in metrics_diff
    shown = run(["dvc", "exp", "show", "--no-pager", "--csv"], repo)
    assert "train.epochs" in shown


def test_n_mfcc_change_reruns_only_the_audio_side(repo):
    trim_before, faces_before = lock_outs(repo, "trim"), lock_outs(repo, "face_crops")
    video_mtime = (repo / "features/video.h5").stat().st_mtime_ns
    set_params(repo, audio={"n_mfcc": 13})
    status = run(["dvc", "status"], repo)
    assert "audio_features" in status and "face_crops" not in status and "trim:" not in status
    out = run(["dvc", "repro", "samples"], repo)
    assert ran(out) == {"audio_features", "samples"}, ran(out)
    assert lock_outs(repo, "trim") == trim_before and lock_outs(repo, "face_crops") == faces_before
    assert (repo / "features/video.h5").stat().st_mtime_ns == video_mtime
    assert read_cache(repo / "features/audio.h5").arrays["audio_features"].shape[2] == 13

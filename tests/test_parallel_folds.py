"""Cross-validation folds run side by side give the serial run's results (issue 15, item 3).

The serial run is one ``cv`` stage over every fold. The parallel one is a process per fold
(``cv.folds=[k]``), all started together, as ``dvc exp run --queue`` per fold with
``dvc queue start -j N`` or one machine per fold runs them; ``mmer report --merge``
(:func:`mmer.report.merge_fold_runs`) joins their ``folds.json`` files. Training is seeded
and deterministic, so the merged ``summary.json`` is the serial one to the byte, and every
fold's report is the same but for its wall-clock seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mmer.report import merge_fold_runs

import repo_factory as rf
from conftest import ROOT
from feature_factory import make_corpus, write_corpus

pytestmark = pytest.mark.slow  # four processes training small models

CV_SCRIPT = """
import sys
from mmer.config import AugmentParams, TrainParams
from mmer.training import cv_stage
from feature_factory import make_corpus, tiny_model_params

root, out_dir, folds = sys.argv[1:]
corpus = make_corpus(seed=3)
cv_stage(
    f"{root}/data/index.csv",
    audio_path=f"{root}/features/audio.h5",
    video_path=f"{root}/features/video.h5",
    out_dir=out_dir,
    enabled=True,
    folds=[int(k) for k in folds.split(",")],
    label_names=corpus.label_names,
    model_params=tiny_model_params(),
    train_params=TrainParams(epochs=2, batch_size=16, patience=5, deterministic=True),
    augment_params=AugmentParams(enabled=False),
)
"""
TIMINGS = ("seconds_per_epoch", "train_seconds")


def cv_process(root, out_dir, folds) -> subprocess.Popen:
    env = {**rf.env(), "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"}
    return subprocess.Popen(
        [sys.executable, "-c", CV_SCRIPT, str(root), str(out_dir), ",".join(map(str, folds))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def without_timings(reports: list[dict]) -> list[dict]:
    return [{**r, "training": {k: v for k, v in r["training"].items() if k not in TIMINGS}} for r in reports]


def test_folds_run_side_by_side_merge_to_the_serial_run(tmp_path):
    corpus = write_corpus(tmp_path, make_corpus(seed=3))
    folds = sorted(int(k) for k in corpus.index["fold"].unique() if k >= 0)[:2]  # two: three processes in all
    assert len(folds) == 2
    serial = cv_process(tmp_path, tmp_path / "serial", folds)
    assert serial.wait(timeout=600) == 0, serial.stdout.read()
    side_by_side = [cv_process(tmp_path, tmp_path / f"fold{k}", [k]) for k in reversed(folds)]  # any order
    for proc in side_by_side:
        assert proc.wait(timeout=600) == 0, proc.stdout.read()

    summary, per_fold = merge_fold_runs([str(tmp_path / f"fold{k}") for k in folds], tmp_path / "merged")
    want = json.loads((tmp_path / "serial" / "folds.json").read_text())
    assert [r["fold"] for r in per_fold] == folds
    assert without_timings(per_fold) == without_timings(want)
    assert (tmp_path / "merged" / "summary.json").read_bytes() == (tmp_path / "serial" / "summary.json").read_bytes()
    assert summary["folds"] == folds and summary["accuracy"]["std"] >= 0

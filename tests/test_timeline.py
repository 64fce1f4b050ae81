"""mmer.timeline: window boundaries, speech shares, the summary; a long clip predicted as a timeline.

The end-to-end tests use an untrained model (random weights) with the default feature params
and T=100 frames (a 1.02 s window): what is checked is which windows are predicted and how
the clip's answer is made from them, not what the model says.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from mmer import timeline as tl
from mmer.config import AudioParams, FacesParams, SpanParams
from mmer.errors import ConfigError

import media_factory as mf
from feature_factory import tiny_model_params

LABELS = ["neutral", "happy", "sad", "angry"]
T = 100  # MFCC frames: ((T - 1) * 160 + 512) / 16000 = 1.022 s
WINDOW_S = ((T - 1) * 160 + 512) / 16000


# --------------------------------------------------------------------------- pure functions


def test_model_window_gives_exactly_t_frames():
    from mmer.audio import clip_mfcc

    seconds = tl.model_window_s(padded_frames=T, hop_length=160, n_fft=512, sample_rate=16000)
    assert seconds == pytest.approx(1.022)
    signal = np.random.default_rng(0).standard_normal(int(round(seconds * 16000))).astype(np.float32)
    assert len(clip_mfcc(signal, 16000)) == T


def test_window_settings_defaults_and_limits():
    assert tl.window_settings(None, None, model_s=2.0) == (2.0, 1.0)
    assert tl.window_settings(1.5, 0.5, model_s=2.0) == (1.5, 0.5)
    for window, hop in ((2.5, None), (0, None), (-1, None), (1.0, 0), (1.0, 1.5)):
        with pytest.raises(ConfigError, match="--window|--hop"):
            tl.window_settings(window, hop, model_s=2.0)


def test_window_bounds_cover_the_span_and_end_at_its_end():
    bounds = tl.window_bounds(1.0, 6.0, window_s=2.0, hop_s=1.0)
    assert bounds.tolist() == [[1.0, 3.0], [2.0, 4.0], [3.0, 5.0], [4.0, 6.0]]
    uneven = tl.window_bounds(0.0, 5.5, window_s=2.0, hop_s=2.0)
    assert uneven.tolist() == [[0.0, 2.0], [2.0, 4.0], [3.5, 5.5]]  # the last moved back, full length
    assert np.allclose(uneven[:, 1] - uneven[:, 0], 2.0)
    assert tl.window_bounds(0.5, 1.7, window_s=2.0, hop_s=1.0).tolist() == [[0.5, 1.7]]
    with pytest.raises(ConfigError):
        tl.window_bounds(3.0, 1.0, window_s=2.0, hop_s=1.0)


def test_is_long_only_beyond_two_windows():
    def span(seconds, has_audio=True):
        return {"start_s": 0.5, "end_s": 0.5 + seconds, "has_audio": has_audio}

    assert not tl.is_long(span(3.9), 2.0, 1.0)
    assert tl.is_long(span(4.1), 2.0, 1.0)
    # without sound the span is the whole clip (as for silent training videos): windows of 4 s
    assert tl.clip_window(span(5.0, False), 2.0, 1.0) == (tl.SILENT_WINDOW_S, 2.0)
    assert not tl.is_long(span(7.9, False), 2.0, 1.0)
    assert tl.is_long(span(8.1, False), 2.0, 1.0)


def test_speech_shares_count_the_frames_inside_each_window():
    mask = np.zeros(100, dtype=bool)  # 10 s of 0.1 s frames
    mask[20:40] = True  # speech at 2-4 s of the clip
    bounds = np.array([[0.0, 2.0], [2.0, 4.0], [3.0, 5.0]])
    assert tl.speech_shares(bounds, mask, frame_s=0.1).tolist() == pytest.approx([0.0, 1.0, 0.5])
    # the mask of a span starting at 1 s
    assert tl.speech_shares(bounds, mask[10:], frame_s=0.1, offset_s=1.0).tolist() == pytest.approx([0.0, 1.0, 0.5])


def test_summary_is_the_mean_over_speech_windows():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [np.nan, np.nan]])
    mean, used, method = tl.summarise(probabilities, np.array([0.0, 1.0, 0.5, 1.0]))
    assert method == "mean over speech windows"
    assert used.tolist() == [False, True, True, False]  # silence and the unpredicted window left out
    assert mean == pytest.approx([0.3, 0.7])
    mean, used, method = tl.summarise(probabilities, None)  # no sound: every predicted window
    assert method == "mean over all windows" and used.tolist() == [True, True, True, False]
    _, _, method = tl.summarise(probabilities, np.zeros(4))  # no window reaches the share
    assert method == "mean over all windows"
    with pytest.raises(ConfigError, match="no window"):
        tl.summarise(np.full((2, 2), np.nan), None)


def test_window_at_picks_the_nearest_centre():
    bounds = np.array([[0.0, 2.0], [1.0, 3.0], [2.0, 4.0]])
    assert [tl.window_at(t, bounds) for t in (0.2, 1.4, 1.6, 2.6, 3.9, 4.5)] == [0, 0, 1, 2, 2, None]


def test_speech_frames_mark_the_tone(rng):
    from mmer.speech import speech_frames

    signal = mf.sequence(("silence", 1.0), ("tone", 1.0), ("silence", 1.0), rng=rng)
    mask = speech_frames(signal, mf.SR, frame_s=0.1)
    assert mask[11:19].all() and not mask[:9].any() and not mask[21:].any()
    assert not speech_frames(np.zeros(16000, np.float32), mf.SR).any()  # digital silence


# --------------------------------------------------------------------------- end to end
# (slow: a model is built and clips of several seconds are predicted and annotated)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    """An untrained av model (late fusion: it also answers audio-only and silent clips) with T=100."""
    from mmer.bundle import model_metadata, save_model_bundle
    from mmer.networks import build_model

    audio = {**dataclasses.asdict(AudioParams()), "padded_frames": T, "sample_rate": 16000}
    video = {k: v for k, v in dataclasses.asdict(FacesParams()).items() if k not in ("jobs", "max_failed_share")}
    params = tiny_model_params(fusion="average")
    model = build_model(
        n_classes=len(LABELS),
        audio_features_shape=(T, AudioParams.n_mfcc),
        faces_shape=(FacesParams.frames_per_clip, FacesParams.size, FacesParams.size, 3),
        **dataclasses.asdict(params),
    )
    span = dataclasses.asdict(SpanParams())
    path = tmp_path_factory.mktemp("timeline") / "model.keras"
    save_model_bundle(
        model,
        model_metadata(
            model,
            model_inputs="av",
            label_names=LABELS,
            feature_attrs={"audio": {**audio, "span": span}, "video": {**video, "span": span}},
            params={"model": dataclasses.asdict(params)},
        ),
        path,
    )
    return path


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """8.6 s: a tone, a long pause, a tone; the astronaut's face throughout."""
    rng = np.random.default_rng(3)
    signal = mf.sequence(("silence", 0.5), ("tone", 2.5), ("silence", 3.0), ("tone", 2.0), ("silence", 0.6), rng=rng)
    folder = tmp_path_factory.mktemp("long")
    return mf.still_video(folder / "interview.mp4", mf.face_image(), len(signal) / mf.SR, audio=signal)


@pytest.fixture(scope="module")
def predictor(model_path):
    from mmer.predictor import Predictor

    with Predictor(model_path) as created:
        yield created


@pytest.mark.slow
def test_long_clip_gives_a_timeline_whose_summary_is_the_speech_windows_mean(predictor, long_clip):
    result = predictor.predict(long_clip)
    windows = result.timeline
    assert result.summary["windows"] == len(windows) > 2
    assert result.summary["window_s"] == pytest.approx(WINDOW_S, abs=1e-4)
    assert result.summary["hop_s"] == pytest.approx(WINDOW_S / 2, abs=1e-4)
    assert windows[0]["start_s"] == pytest.approx(result.start_s, abs=1e-3)
    assert windows[-1]["end_s"] == pytest.approx(result.end_s, abs=1e-3)
    assert result.end_s - result.start_s > 7  # the span runs from the first tone to the last
    pause = [w for w in windows if 3.3 < w["start_s"] and w["end_s"] < 5.9]
    assert pause and all(w["speech"] < tl.MIN_SPEECH_SHARE for w in pause)
    used = [w for w in windows if w["speech"] >= tl.MIN_SPEECH_SHARE]
    assert result.summary == {**result.summary, "method": "mean over speech windows", "windows_used": len(used)}
    mean = np.mean([[w["probabilities"][n] for n in LABELS] for w in used], axis=0)
    assert [result.probabilities[n] for n in LABELS] == pytest.approx(mean.tolist(), abs=1e-5)
    assert result.emotion == LABELS[int(np.argmax(mean))]
    assert len(result.faces_found) == len(windows) * FacesParams.frames_per_clip
    document = json.loads(json.dumps(result.to_json()))
    assert document["timeline"] == windows and document["summary"]["method"] == "mean over speech windows"
    assert {"start_s", "end_s", "speech", "emotion", "probability", "probabilities"} <= set(document["timeline"][1])


@pytest.mark.slow
def test_features_of_a_long_clip_decode_nothing_for_the_whole_span(predictor, long_clip):
    """The span's own inputs (6 frames spread over the whole span: a decode of all of it) are not made."""
    clip = predictor.features(long_clip)
    assert clip.inputs == {} and clip.crops is None and clip.span["end_s"] - clip.span["start_s"] > 7


@pytest.mark.slow
def test_window_and_hop_are_settable(model_path, long_clip):
    from mmer.predictor import Predictor

    with Predictor(model_path, window_s=0.5, hop_s=0.5) as fine:
        result = fine.predict(long_clip)
    bounds = np.array([[w["start_s"], w["end_s"]] for w in result.timeline])
    assert np.allclose(bounds[:-1, 1] - bounds[:-1, 0], 0.5, atol=1e-3)
    assert np.allclose(np.diff(bounds[:-1, 0]), 0.5, atol=1e-3)
    assert len(bounds) == int(np.ceil((result.end_s - result.start_s - 0.5) / 0.5 - 1e-9)) + 1
    with pytest.raises(ConfigError, match="--window"):
        Predictor(model_path, window_s=5.0)


@pytest.mark.slow
def test_audio_only_and_silent_long_clips(predictor, long_clip, tmp_path):
    voice = tmp_path / "voice.m4a"
    mf.ffmpeg("-i", str(long_clip), "-vn", "-c:a", "copy", str(voice))
    audio_only = predictor.predict(voice)
    assert audio_only.head == "audio" and audio_only.faces_found is None
    assert audio_only.summary["method"] == "mean over speech windows" and len(audio_only.timeline) > 2
    silent = predictor.predict(mf.without_audio(long_clip, tmp_path / "silent.mp4"))
    assert silent.head == "video" and silent.summary["method"] == "mean over all windows"
    assert all(w["speech"] is None for w in silent.timeline)
    assert silent.timeline[-1]["end_s"] == pytest.approx(silent.duration_s, abs=0.05)


@pytest.mark.slow
def test_short_clip_is_predicted_as_before(predictor, tmp_path, rng):
    clip = mf.still_video(
        tmp_path / "short.mp4", mf.face_image(), 2.0, audio=mf.tone_between_silences(rng, lead_s=0.3, tone_s=1.2)
    )
    result = predictor.predict(clip)
    assert len(result.timeline) == 1 and result.summary["windows"] == 1
    assert result.timeline[0]["start_s"] == pytest.approx(result.start_s)
    assert result.timeline[0]["probabilities"] == {k: round(v, 6) for k, v in result.probabilities.items()}


@pytest.mark.slow
def test_cli_json_and_annotate_show_the_current_window(model_path, long_clip, tmp_path, capsys, monkeypatch):
    from mmer import annotate
    from mmer.cli import main

    shown = []
    real = annotate.annotate_frame

    def spy(frame, **kwargs):
        shown.append((kwargs["t"], kwargs["label"]))
        return real(frame, **kwargs)

    monkeypatch.setattr(annotate, "annotate_frame", spy)
    out = tmp_path / "a.mp4"
    code = main(
        ["predict", str(long_clip), "--model", str(model_path), "--json", "--annotate", str(out), "--hop", "1.0"]
    )
    assert code == 0 and out.is_file()
    document = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    windows = document["timeline"]
    assert document["summary"]["hop_s"] == pytest.approx(1.0)
    bounds = np.array([[w["start_s"], w["end_s"]] for w in windows])
    for t, label in shown[::10]:
        index = tl.window_at(t, bounds)
        if index is None:
            expected = f"{document['emotion']} {100 * document['probability']:.0f}%"
        else:
            expected = f"{windows[index]['emotion']} {100 * windows[index]['probability']:.0f}%"
        assert label == expected, t
    assert main(["predict", str(long_clip), "--model", str(model_path), "--window", "9"]) == 2


@pytest.mark.slow
def test_copy_of_the_clip_gives_the_same_timeline(predictor, long_clip, tmp_path):
    copy = shutil.copy(long_clip, tmp_path / "renamed.mp4")
    assert predictor.predict(copy).timeline == predictor.predict(long_clip).timeline

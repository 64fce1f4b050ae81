"""mmer.shipped: the shipped voice model and the FER2013 face, fused, when the project has no model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmer import pretrained, shipped
from mmer.cli import main
from mmer.predict_cli import EXIT_OK

import media_factory as mf

ALL8 = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
MERGED7 = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
# FER2013 order: angry, disgust, fear, happy, sad, surprise, neutral
EXPRESSIONS = [0.1, 0.05, 0.05, 0.1, 0.1, 0.0, 0.6]


# --- the mapping ---


def test_face_mapping_splits_neutral_between_neutral_and_calm():
    got = shipped.face_to_labels(EXPRESSIONS, ALL8)
    expected = {
        "neutral": 0.3,
        "calm": 0.3,
        "happy": 0.1,
        "sad": 0.1,
        "angry": 0.1,
        "fearful": 0.05,
        "disgust": 0.05,
        "surprised": 0.0,
    }
    np.testing.assert_allclose(got, [expected[n] for n in ALL8], atol=1e-12)
    assert got.sum() == pytest.approx(1.0)


def test_face_mapping_without_calm_is_one_to_one_and_a_subset_is_renormalised():
    got = shipped.face_to_labels(EXPRESSIONS, MERGED7)
    np.testing.assert_allclose(got, [0.6, 0.1, 0.1, 0.1, 0.05, 0.05, 0.0], atol=1e-12)
    np.testing.assert_allclose(shipped.face_to_labels(EXPRESSIONS, ["happy", "sad"]), [0.5, 0.5])
    # rows at once, in the label order given
    rows = shipped.face_to_labels(np.array([EXPRESSIONS, EXPRESSIONS]), ["calm", "neutral", "angry"])
    np.testing.assert_allclose(rows, [[0.3 / 0.7, 0.3 / 0.7, 0.1 / 0.7]] * 2)
    with pytest.raises(ValueError, match="share no class"):
        shipped.face_to_labels(EXPRESSIONS, ["boredom"])
    with pytest.raises(ValueError, match="must be"):
        shipped.face_to_labels([0.5, 0.5], ALL8)


def test_the_order_is_the_fer_networks():
    from mmer.face_expression import CORPUS_NAMES, FER_EMOTIONS

    assert shipped.FER_ORDER == FER_EMOTIONS
    assert shipped.FER_TO_LABEL == CORPUS_NAMES


# --- the fusion ---


def test_equal_weights_give_the_normalised_geometric_mean():
    voice, face = [0.5, 0.25, 0.25], [0.25, 0.5, 0.25]
    got = shipped.fuse({"voice": voice, "face": face}, {"voice": 0.5, "face": 0.5})
    raw = np.array([np.sqrt(0.125), np.sqrt(0.125), 0.25])
    np.testing.assert_allclose(got, raw / raw.sum(), rtol=1e-12)


def test_default_weights_favour_the_voice_two_to_one():
    assert shipped.WEIGHTS == {"voice": pytest.approx(2 / 3), "face": pytest.approx(1 / 3)}
    voice, face = np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.8, 0.1])
    got = shipped.fuse({"voice": voice, "face": face})
    raw = voice ** (2 / 3) * face ** (1 / 3)
    np.testing.assert_allclose(got, raw / raw.sum(), rtol=1e-12)
    assert got.argmax() == 0
    # only the weights' ratio matters
    np.testing.assert_allclose(shipped.fuse({"voice": voice, "face": face}, {"voice": 2, "face": 1}), got)


def test_one_modality_absent_gives_the_other_unchanged():
    voice = np.array([0.7, 0.3, 0.0])
    for absent in ({"voice": voice, "face": None}, {"voice": voice}):
        got = shipped.fuse(absent)
        np.testing.assert_array_equal(got, voice)
        assert got is not voice
    np.testing.assert_array_equal(shipped.fuse({"voice": None, "face": voice}), voice)
    with pytest.raises(ValueError, match="no modality"):
        shipped.fuse({"voice": None, "face": None})


def test_a_zero_does_not_veto_a_class():
    got = shipped.fuse({"voice": [0.0, 1.0], "face": [1.0, 0.0]}, {"voice": 0.5, "face": 0.5})
    np.testing.assert_allclose(got, [0.5, 0.5])
    got = shipped.fuse({"voice": [0.0, 1.0], "face": [0.5, 0.5]})
    assert 0 < got[0] < 1e-3 and got.sum() == pytest.approx(1.0)


def test_fusion_refuses_mismatched_or_unweighted_modalities():
    with pytest.raises(ValueError, match="shape"):
        shipped.fuse({"voice": [0.5, 0.5], "face": [1.0]})
    with pytest.raises(ValueError, match="positive weight"):
        shipped.fuse({"voice": [0.5, 0.5], "face": [0.5, 0.5]}, {"voice": 1.0})


def test_combine_records_each_modality_and_the_rule():
    voice = np.array([0.05, 0.05, 0.5, 0.1, 0.1, 0.1, 0.05, 0.05])
    expressions = dict(zip(shipped.FER_ORDER, EXPRESSIONS))
    fused, modalities, fusion = shipped.combine(voice, expressions, ALL8, voice_model="voice.keras")
    face = shipped.face_to_labels(EXPRESSIONS, ALL8)
    np.testing.assert_allclose(fused, shipped.fuse({"voice": voice, "face": face}))
    assert modalities["voice"] == {"model": "voice.keras", "probabilities": dict(zip(ALL8, voice.tolist()))}
    assert modalities["face"]["model"] == shipped.FACE_MODEL
    assert modalities["face"]["probabilities"]["calm"] == pytest.approx(0.3)
    assert fusion["rule"] == "weighted geometric mean, renormalised" and fusion["used"] == ["voice", "face"]
    assert fusion["fitted"] is False and "not fitted" in fusion["note"]
    fused, modalities, fusion = shipped.combine(
        voice, None, ALL8, voice_model="voice.keras", face_reason="no video stream (an audio-only file)"
    )
    np.testing.assert_array_equal(fused, voice)
    assert modalities["face"] == {
        "model": shipped.FACE_MODEL,
        "probabilities": None,
        "reason": "no video stream (an audio-only file)",
    }
    assert fusion["used"] == ["voice"]


# --- mmer predict with the shipped models ---

SHIPPED = pretrained.shipped_voice_model()
FACE = pretrained.shipped_face_model()
needs_shipped = pytest.mark.skipif(
    SHIPPED is None or FACE is None, reason="no shipped voice model or no fer weights in this installation"
)


def predict_json(*args: str, capsys) -> list[dict]:
    assert main(["predict", *args, "--json", "--no-progress"]) == EXIT_OK
    return [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]


def check_fused(answer: dict) -> None:
    """The top-level probabilities are the fusion of the per-modality records, by the documented rule."""
    records = answer["modalities"]
    probs = {
        m: None if r["probabilities"] is None else np.array([r["probabilities"][n] for n in ALL8])
        for m, r in records.items()
    }
    expected = shipped.fuse(probs)
    np.testing.assert_allclose([answer["probabilities"][n] for n in ALL8], expected, atol=2e-5)
    assert answer["emotion"] == ALL8[int(np.argmax([answer["probabilities"][n] for n in ALL8]))]
    if answer["face_expression"] is not None:
        face = shipped.face_to_labels([answer["face_expression"][n] for n in shipped.FER_ORDER], ALL8)
        np.testing.assert_allclose([records["face"]["probabilities"][n] for n in ALL8], face, atol=2e-6)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A generated audio-video clip with a real-looking face, the same without audio, its soundtrack, no face."""
    from mmer.synth.corpus import AUDIO_RATE, ClipSpec, render_clip, write_wav

    folder = tmp_path_factory.mktemp("shipped-clips")
    av = mf.synth_video(folder / "speaker.mp4", actor=2, emotion=5, intensity=2, size=(320, 240))
    audio = render_clip(ClipSpec(2, 5, 2, 1, 1), seed=0, width=320, height=240).audio
    wav = folder / "speaker.wav"
    write_wav(wav, audio, AUDIO_RATE)
    long_wav = folder / "long.wav"
    write_wav(long_wav, np.concatenate([audio, audio, audio]), AUDIO_RATE)
    return {
        "av": av,
        "silent": mf.without_audio(av, folder / "silent.mp4"),
        "audio": wav,
        "long": long_wav,
        "no_face": mf.image_with_audio_of(av, mf.no_face_image(), folder / "no_face.mp4"),
    }


@needs_shipped
def test_shipped_face_model_is_the_fer_weights():
    from mmer.face_expression import weights_path

    assert FACE == weights_path()


@pytest.mark.slow
@needs_shipped
def test_audio_video_clip_gets_voice_face_and_their_fusion(clips, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no models/model.keras here
    (answer,) = predict_json(str(clips["av"]), capsys=capsys)
    assert answer["model"]["source"] == "shipped" and answer["head"] == "av" and answer["input"] == "audio-video"
    assert answer["modalities"]["voice"]["model"] == str(SHIPPED)
    assert answer["modalities"]["face"]["model"] == "fer2013 (fer package, MIT)"
    assert all(answer["modalities"][m]["probabilities"] is not None for m in ("voice", "face"))
    assert answer["fusion"]["used"] == ["voice", "face"]
    assert answer["fusion"]["weights"] == {"voice": round(2 / 3, 6), "face": round(1 / 3, 6)}
    assert sum(answer["faces_found"]) > 0 and answer["face_expression"] is not None
    check_fused(answer)
    # the voice record is what the voice model alone says (--model: unchanged output, no fusion)
    (alone,) = predict_json(str(clips["av"]), "--model", str(SHIPPED), capsys=capsys)
    assert "modalities" not in alone and "fusion" not in alone and alone["head"] == "audio"
    assert alone["model"]["source"] == "given"
    for name in ALL8:
        assert answer["modalities"]["voice"]["probabilities"][name] == pytest.approx(
            alone["probabilities"][name], abs=1e-5
        )


@pytest.mark.slow
@needs_shipped
def test_silent_video_is_face_only_and_audio_is_voice_only(clips, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    silent, audio, no_face = predict_json(
        str(clips["silent"]), str(clips["audio"]), str(clips["no_face"]), capsys=capsys
    )
    assert silent["input"] == "silent video" and silent["head"] == "video"
    assert silent["fusion"]["used"] == ["face"]
    assert silent["modalities"]["voice"]["probabilities"] is None
    assert "silent" in silent["modalities"]["voice"]["reason"]
    assert silent["probabilities"] == silent["modalities"]["face"]["probabilities"]
    assert silent["probabilities"]["neutral"] == silent["probabilities"]["calm"]  # the face cannot tell them apart
    check_fused(silent)

    assert audio["input"] == "audio" and audio["head"] == "audio" and audio["fusion"]["used"] == ["voice"]
    assert audio["modalities"]["face"] == {
        "model": shipped.FACE_MODEL,
        "probabilities": None,
        "reason": "no video stream (an audio-only file)",
    }
    assert audio["probabilities"] == audio["modalities"]["voice"]["probabilities"]
    assert audio["face_expression"] is None

    assert no_face["input"] == "audio-video" and no_face["head"] == "audio"
    assert no_face["fusion"]["used"] == ["voice"] and not any(no_face["faces_found"] or [])
    assert "no face" in no_face["modalities"]["face"]["reason"]
    check_fused(no_face)


@pytest.mark.slow
@needs_shipped
def test_a_long_clip_is_a_voice_only_timeline(clips, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (answer,) = predict_json(str(clips["long"]), capsys=capsys)
    assert len(answer["timeline"]) > 1
    assert answer["fusion"]["used"] == ["voice"] and "timeline" in answer["fusion"]
    assert answer["probabilities"] == answer["modalities"]["voice"]["probabilities"]


@pytest.mark.slow
@needs_shipped
def test_without_fer_the_shipped_path_is_voice_only(clips, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pretrained, "shipped_face_model", lambda: None)
    (answer,) = predict_json(str(clips["av"]), capsys=capsys)
    assert answer["model"]["source"] == "shipped" and answer["head"] == "audio"
    assert "modalities" not in answer


@needs_shipped
def test_make_predictor_fuses_the_face_only_for_the_shipped_source(tmp_path, monkeypatch):
    """``mmer serve`` builds its predictor with make_predictor too, so it answers the same way."""
    from mmer.predict_cli import make_predictor

    monkeypatch.chdir(tmp_path)
    with make_predictor(None, params=None, threads=2) as predictor:
        assert predictor.model_id["source"] == "shipped" and predictor.face_fusion
        assert predictor.video_params["frames_per_clip"] == 6 and predictor.video_params["margin"] == 0.25
    with make_predictor(str(SHIPPED), params=None, threads=2) as predictor:
        assert predictor.model_id["source"] == "given" and not predictor.face_fusion

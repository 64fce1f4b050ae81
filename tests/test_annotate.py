"""mmer.annotate: drawing on known frames, the box hold, and whole annotated videos from ffmpeg clips."""

from __future__ import annotations

import numpy as np
import pytest

from mmer import annotate, faces, media
from mmer.errors import ConfigError, MediaError

import media_factory as mf

LABELS = ["neutral", "happy", "sad"]
PROBS = [0.1, 0.7, 0.2]


def near(pixel: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tol))


@pytest.fixture(scope="module")
def detector():
    with faces.FaceDetector() as created:
        yield created


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    rng = np.random.default_rng(3)
    out = tmp_path_factory.mktemp("annotate")
    voice = mf.tone_between_silences(rng, lead_s=0.5, tone_s=1.0, tail_s=0.5)
    return {
        "face": mf.still_video(out / "face.mp4", mf.face_image(), 2.0, audio=voice),
        "mute": mf.still_video(out / "mute.mp4", mf.face_image(), 1.0),
        "cup": mf.still_video(out / "cup.mp4", mf.no_face_image(), 1.0, audio=voice[: mf.SR]),
        "voice": mf.write_audio(out / "voice.wav", voice),
        "random": mf.random_bytes(out / "random.mp4", rng),
    }


# --------------------------------------------------------------------------- drawing


def test_probability_panel_highlights_the_top_class():
    panel = annotate.probability_panel(LABELS, PROBS, frame_height=720)
    h, w = panel.image.shape[:2]
    assert panel.alpha.shape == (h, w, 1) and 100 < w < 400 and 50 < h < 150
    colours = panel.image.reshape(-1, 3)
    assert np.any(np.all(colours == annotate.TOP_BAR_RGB, axis=1)) and np.any(
        np.all(colours == annotate.BAR_RGB, axis=1)
    )
    assert np.allclose(np.unique(panel.alpha), [annotate.PANEL_ALPHA, 1.0])
    small = annotate.probability_panel(LABELS, PROBS, frame_height=240)
    assert small.image.shape[0] < h  # scales with the frame, down to a floor


@pytest.mark.parametrize("names, probs", [([], []), (LABELS, [0.5, 0.5])], ids=["empty", "mismatch"])
def test_probability_panel_bad_inputs(names, probs):
    with pytest.raises(ConfigError, match="do not match"):
        annotate.probability_panel(names, probs, frame_height=480)


def test_draw_box_and_label_in_place():
    frame = np.zeros((240, 320, 3), np.uint8)
    out = annotate.draw_box(frame, (100, 80, 180, 170), label="happy 70%")
    assert out is frame
    assert near(frame[125, 100], annotate.BOX_RGB, 1) and near(frame[170, 140], annotate.BOX_RGB, 1)
    tab_edge = frame[64:78, 100]  # the label's filled tab above the box, left of its text
    assert np.all(tab_edge == annotate.BOX_RGB) and not frame[40:60].any()
    assert frame[125, 140].sum() == 0  # inside stays untouched
    edge = np.zeros((100, 100, 3), np.uint8)
    annotate.draw_box(edge, (-20, -30, 150, 60), label="x")  # clipped, label moved below the top edge
    assert edge.any()


def test_blend_panel_clips_at_the_edges():
    panel = annotate.probability_panel(LABELS, PROBS, frame_height=240)
    frame = np.full((60, 80, 3), 255, np.uint8)
    annotate.blend_panel(frame, panel, x=40, y=30)
    assert frame[:30].min() == 255 and frame[:, :40].min() == 255 and frame[30:, 40:].min() < 255
    before = frame.copy()
    annotate.blend_panel(frame, panel, x=100, y=100)  # wholly outside: nothing happens
    np.testing.assert_array_equal(frame, before)


def test_timeline_marks_the_span_and_the_playhead():
    frame = np.zeros((240, 400, 3), np.uint8)
    annotate.draw_timeline(frame, 2.0, 4.0, (1.0, 3.0))
    bottom = frame[-1]
    assert near(bottom[150], annotate.SPEECH_RGB, 1) and not near(bottom[50], annotate.SPEECH_RGB, 1)
    assert near(frame[-1, 200], annotate.TEXT_RGB, 1) and near(frame[-12, 200], annotate.TEXT_RGB, 1)
    untouched = np.zeros((240, 400, 3), np.uint8)
    annotate.draw_timeline(untouched, 1.0, 0.0, None)  # unknown duration: no timeline
    assert not untouched.any()


def test_annotate_frame_without_a_box_still_shows_the_label():
    panel = annotate.probability_panel(LABELS, PROBS, frame_height=240)
    with_box = annotate.annotate_frame(
        np.zeros((240, 320, 3), np.uint8), box=(100, 80, 180, 170), label="happy", panel=panel, t=0.5, duration_s=1.0
    )
    without = annotate.annotate_frame(
        np.zeros((240, 320, 3), np.uint8), box=None, label="happy", panel=panel, t=0.5, duration_s=1.0
    )
    below_panel = slice(panel.image.shape[0] + 10, panel.image.shape[0] + 40)
    assert without[below_panel, :100].any() and not with_box[below_panel, :100].any()
    assert with_box[80:171, 100:181].any() and not without[100:150, 120:160].any()


def test_box_hold_keeps_a_missed_box_briefly():
    hold = annotate.BoxHold(2)
    box = (1, 2, 3, 4)
    assert hold(None) is None  # nothing seen yet
    assert [hold(b) for b in (box, None, None, None, (5, 6, 7, 8), None)] == [
        box,
        box,
        box,
        None,
        (5, 6, 7, 8),
        (5, 6, 7, 8),
    ]
    with pytest.raises(ConfigError):
        annotate.BoxHold(-1)


# --------------------------------------------------------------------------- videos


def test_annotated_video_keeps_frames_size_and_audio(clips, detector, tmp_path):
    out = tmp_path / "out" / "face.annotated.mp4"
    result = annotate.annotate_video(
        clips["face"], out, label_names=LABELS, probabilities=PROBS, detector=detector, span=(0.5, 1.5)
    )
    source, written = media.probe(clips["face"]), media.probe(out)
    assert result.frames == 50 and result.frames_with_face == 50 and result.audio == "aac"
    assert written.frame_size == source.frame_size and written.fps == pytest.approx(source.fps, abs=0.01)
    assert written.has_audio and written.duration_s == pytest.approx(source.duration_s, abs=0.1)
    np.testing.assert_allclose(
        media.read_audio(out), media.read_audio(clips["face"]), atol=1e-6
    )  # copied, not re-encoded
    frame = media.read_frames(out, [1.0])[0]
    box = detector.detect(mf.face_image())
    # the box's left edge is drawn through the face's height; the panel sits top-left
    column = frame[int(box.y0) + 10 : int(box.y1) - 10, int(round(box.x0))]
    assert np.mean([near(p, annotate.BOX_RGB, 60) for p in column]) > 0.8
    assert not any(p.name.endswith(".part") for p in out.parent.iterdir())


def test_video_without_face_or_sound(clips, detector, tmp_path):
    cup = annotate.annotate_video(
        clips["cup"], tmp_path / "cup.mkv", label_names=LABELS, probabilities=PROBS, detector=detector
    )
    assert cup.frames == 25 and cup.frames_with_face == 0
    assert media.probe(tmp_path / "cup.mkv").has_audio
    mute = annotate.annotate_video(
        clips["mute"], tmp_path / "mute.mov", label_names=LABELS, probabilities=PROBS, detector=detector
    )
    assert mute.audio == "none" and not media.probe(tmp_path / "mute.mov").has_audio


@pytest.mark.parametrize(
    "clip, out, error, message",
    [
        ("voice", "v.mp4", MediaError, "voice.wav: no video stream to annotate"),
        ("random", "r.mp4", MediaError, "random.mp4: unreadable media file"),
        ("face", "f.avi", ConfigError, "f.avi: the annotated video must end in"),
    ],
)
def test_annotate_bad_inputs(clips, detector, tmp_path, clip, out, error, message):
    with pytest.raises(error, match=message):
        annotate.annotate_video(clips[clip], tmp_path / out, label_names=LABELS, probabilities=PROBS, detector=detector)
    assert not (tmp_path / out).exists()

"""mmer.synth: the sample corpus (voice, face, corpus, CLI).

Pure functions are tested with known answers; one tiny corpus (2 actors x 8 clips at
320x180) is written once for the module and probed with the bundled ffmpeg and MediaPipe.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mmer.errors import ConfigError
from mmer.ravdess import EMOTIONS, parse_name
from mmer.synth import cli as synth_cli
from mmer.synth import corpus, face, voice

SIZE = (320, 180)
ACTORS = (1, 2)
CLIPS = 8
SEED = 0


# ---------------------------------------------------------------------------- helpers


def ffmpeg_info(path: Path) -> str:
    """The stream description ffmpeg prints for ``-i`` (no ffprobe available)."""
    proc = subprocess.run([corpus.ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    return proc.stderr


def decode_audio(path: Path, rate: int = 48000) -> np.ndarray:
    raw = subprocess.run(
        [corpus.ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", str(rate), "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.int16).astype(np.float64) / 32768.0


def decode_frame(path: Path, seconds: float, size: tuple[int, int] = SIZE) -> np.ndarray:
    raw = subprocess.run(
        [
            corpus.ffmpeg_exe(),
            "-v",
            "error",
            "-ss",
            f"{seconds:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(size[1], size[0], 3)


def duration_s(info: str) -> float:
    hours, minutes, seconds = re.search(r"Duration: (\d+):(\d+):([\d.]+)", info).groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def frame_levels_db(audio: np.ndarray, rate: int = 48000, frame_s: float = 0.025) -> np.ndarray:
    n = int(rate * frame_s)
    frames = audio[: len(audio) // n * n].reshape(-1, n)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def parsed_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    synth_cli.configure_parser(parser)
    return parser.parse_args(list(argv))


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "raw"
    summary = corpus.synth_corpus(
        out, seed=SEED, actors=ACTORS, clips_per_actor=CLIPS, width=SIZE[0], height=SIZE[1], jobs=1, progress=False
    )
    assert summary.written == len(ACTORS) * CLIPS
    return out


@pytest.fixture(scope="module")
def face_detector():
    mp = pytest.importorskip("mediapipe")
    with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as detector:
        yield detector


# -------------------------------------------------------------------------------- voice


@pytest.mark.parametrize("f0_hz", [110.0, 220.0])
def test_pyin_recovers_the_synthesised_f0(f0_hz):
    librosa = pytest.importorskip("librosa")
    params = voice.VoiceParams(f0_hz=f0_hz, breath=0.0, jitter=0.0, shimmer=0.0)
    utterance = voice.synthesise(1, params, np.random.default_rng(0), female=f0_hz > 150)
    hop = 160
    f0, voiced, _ = librosa.pyin(
        utterance.audio, fmin=60, fmax=500, sr=voice.SAMPLE_RATE, frame_length=1024, hop_length=hop
    )
    centres = np.arange(len(f0)) * hop
    inside = centres < len(utterance.f0)
    truth = utterance.f0[centres[inside]]
    strongly_voiced = utterance.voiced[centres[inside]] > 0.6
    ok = voiced[inside] & strongly_voiced
    assert ok.sum() > 50
    error = np.abs(f0[inside][ok] / truth[ok] - 1.0)
    assert np.median(error) < 0.02
    assert np.mean(error < 0.05) > 0.9


def test_f0_contour_follows_the_parameters():
    segments = voice.phone_timeline(1)
    neutral = voice.f0_contour(segments, voice.VoiceParams(f0_hz=120.0))
    higher = voice.f0_contour(segments, voice.VoiceParams(f0_hz=120.0, f0_shift=12.0))
    np.testing.assert_allclose(higher / neutral, 2.0, rtol=1e-4)  # +12 semitones = one octave
    rising = voice.f0_contour(segments, voice.VoiceParams(f0_hz=120.0, final=6.0))
    assert rising[-1] / neutral[-1] == pytest.approx(2 ** (9 / 12), rel=1e-3)  # from a 3 st fall to a 6 st rise
    flat = voice.f0_contour(segments, voice.VoiceParams(f0_hz=120.0, f0_range=0.0))
    assert np.ptp(np.log2(flat[: len(flat) // 2])) < 1e-6  # no accents, no declination, before the final


def _brightness_db(utterance: voice.Utterance) -> float:
    """Energy at 2-5 kHz relative to below 800 Hz, in the vowels."""
    vowels = utterance.audio * (utterance.voiced > 0.8)
    spectrum = np.abs(np.fft.rfft(vowels)) ** 2
    freqs = np.fft.rfftfreq(len(vowels), 1 / voice.SAMPLE_RATE)
    return float(10 * np.log10(spectrum[(freqs > 2000) & (freqs < 5000)].sum() / spectrum[freqs < 800].sum()))


def test_angry_and_sad_voices_differ():
    base = voice.VoiceParams(f0_hz=120.0)
    angry = voice.synthesise(1, voice.emotion_voice("angry", base), np.random.default_rng(1))
    sad = voice.synthesise(1, voice.emotion_voice("sad", base), np.random.default_rng(1))
    level = lambda u: 20 * np.log10(np.sqrt(np.mean(u.audio**2)))  # noqa: E731
    assert level(angry) - level(sad) > 8.0
    assert 12 * np.log2(np.median(angry.f0) / np.median(sad.f0)) > 3.0
    assert angry.duration < 0.85 * sad.duration
    assert _brightness_db(angry) - _brightness_db(sad) > 6.0


def test_tilt_brightens_and_dulls():
    params = voice.VoiceParams(f0_hz=120.0, breath=0.0)
    bright, plain, dull = (
        _brightness_db(voice.synthesise(1, replace(params, tilt=tilt), np.random.default_rng(1)))
        for tilt in (-1.0, 0.0, 1.0)
    )
    assert bright > plain + 10.0 and dull < plain - 2.0


def test_voice_confuses_happy_with_surprised_more_than_angry_with_disgust():
    base = voice.VoiceParams(f0_hz=120.0)

    def profile(emotion: str) -> np.ndarray:
        utterance = voice.synthesise(2, voice.emotion_voice(emotion, base), np.random.default_rng(3))
        spectrum = np.abs(np.fft.rfft(utterance.audio, n=2**16))
        bands = np.log(np.add.reduceat(spectrum, np.linspace(0, len(spectrum) - 1, 25).astype(int)) + 1e-9)
        return np.concatenate([bands - bands.mean(), [utterance.duration * 10, np.log2(np.median(utterance.f0)) * 12]])

    happy, surprised, angry, disgust = (profile(e) for e in ("happy", "surprised", "angry", "disgust"))
    assert np.linalg.norm(happy - surprised) < 0.5 * np.linalg.norm(angry - disgust)


def test_synthesis_is_deterministic_and_seeded():
    params = voice.emotion_voice("fearful", voice.VoiceParams(f0_hz=200.0))
    first = voice.synthesise(2, params, np.random.default_rng(5), female=True)
    again = voice.synthesise(2, params, np.random.default_rng(5), female=True)
    other = voice.synthesise(2, params, np.random.default_rng(6), female=True)
    np.testing.assert_array_equal(first.audio, again.audio)
    assert not np.array_equal(first.audio[:1000], other.audio[:1000])
    assert np.abs(first.audio).max() < 1.0
    assert len(first.mouth) == pytest.approx(first.duration * voice.ENVELOPE_RATE, abs=1)


def test_faster_speech_is_shorter():
    slow = voice.phone_timeline(1, tempo=0.8)[-1].end
    fast = voice.phone_timeline(1, tempo=1.25)[-1].end
    assert fast < 0.8 * slow


def test_room_noise_level():
    noise = voice.room_noise(48000, np.random.default_rng(0), level_dbfs=-60.0)
    assert 20 * np.log10(np.sqrt(np.mean(noise.astype(np.float64) ** 2))) == pytest.approx(-60.0, abs=0.1)
    assert np.count_nonzero(noise) == len(noise)


@pytest.mark.parametrize(
    "bad",
    [
        {"f0_hz": 10.0},
        {"tempo": 0.0},
        {"open_quotient": 1.5},
        {"tilt": 2.0},
        {"breath": -0.1},
        {"formant_scale": 3.0},
    ],
)
def test_bad_voice_params_raise(bad):
    with pytest.raises(ConfigError):
        voice.VoiceParams(**bad)


def test_bad_voice_inputs_raise():
    with pytest.raises(ConfigError, match="statement"):
        voice.phone_timeline(3)
    with pytest.raises(ConfigError, match="emotion"):
        voice.emotion_voice("bored", voice.VoiceParams())


# --------------------------------------------------------------------------------- face


def test_control_moves_known_answers():
    landmarks = face.landmarks_normalised("astronaut")
    names = list(face.CONTROL_POINTS)
    _, moves, _ = face.control_moves(landmarks, face.FaceExpression({"lip_corner_pull": 1.0}))
    np.testing.assert_allclose(moves[names.index("corner_l")], [-0.09, -0.12])  # out (left) and up
    np.testing.assert_allclose(moves[names.index("corner_r")], [0.09, -0.12])
    assert np.abs(np.delete(moves, [names.index("corner_l"), names.index("corner_r")], axis=0)).max() == 0
    # huge activations are capped so the warp never folds over
    points, moves, widths = face.control_moves(
        landmarks, face.FaceExpression({"lid_tighten": 10.0, "lid_raise": 0.0, "lip_press": 10.0})
    )
    moved = points + moves
    assert np.all(np.hypot(*moves.T) <= face.MAX_MOVE_PER_WIDTH * widths + 1e-9)
    for upper, lower, gap in face.MIN_GAPS:
        assert moved[names.index(lower), 1] - moved[names.index(upper), 1] >= gap - 1e-9


def test_displacement_field_interpolates_the_moves():
    landmarks = face.landmarks_normalised("lfw-45")
    points, moves, widths = face.control_moves(landmarks, face.emotion_expression("surprised"))
    centres = points + moves
    field = face.displacement_field(points, moves, widths, centres[:, 0], centres[:, 1])
    np.testing.assert_allclose(field, moves, atol=5e-3)
    far = face.displacement_field(points, moves, widths, np.array([4.0, -4.0]), np.array([-4.0, 5.0]))
    assert np.abs(far).max() < 1e-6


def test_landmarks_put_the_eyes_at_unit_distance():
    for name in ("astronaut", "lfw-01", "lfw-93"):
        marks = face.landmarks_normalised(name)
        np.testing.assert_allclose(marks["eye_l"], [-0.5, 0.0], atol=1e-9)
        np.testing.assert_allclose(marks["eye_r"], [0.5, 0.0], atol=1e-9)
        assert 0.8 < marks["mouth_c"][1] < 1.5 and marks["chin"][1] > marks["mouth_c"][1]


def _face_crop(style: face.FaceStyle, emotion: str, iod_px: float = 24.0) -> np.ndarray:
    """A face as it is in a 64x64 crop (IOD about 24 px), composited on grey."""
    patch = face.render_face(style, face.emotion_expression(emotion), iod_px=iod_px)
    rgb = patch.rgba[..., :3] + (1.0 - patch.rgba[..., 3:]) * 0.9
    return rgb.mean(axis=2), patch.anchor


@pytest.mark.parametrize("source", ["astronaut", "lfw-01", "lfw-52"])
def test_happy_and_sad_differ_at_the_mouth_in_a_64px_crop(source):
    style = face.FaceStyle(source)
    happy, anchor = _face_crop(style, "happy")
    sad, _ = _face_crop(style, "sad")
    neutral, _ = _face_crop(style, "neutral")
    ax, ay = int(anchor[0]), int(anchor[1])
    mouth = (slice(ay + 17, ay + 32), slice(ax - 14, ax + 14))  # 0.7-1.3 IOD below the eyes
    hair = (slice(0, 6), slice(None))
    grey_levels = 255.0
    assert np.abs(happy[mouth] - sad[mouth]).mean() * grey_levels > 6.0
    assert np.abs(happy[mouth] - neutral[mouth]).mean() * grey_levels > 3.0
    assert np.abs(happy[hair] - sad[hair]).max() * grey_levels < 0.5  # the warp is local


@pytest.mark.parametrize("source", ["astronaut", "lfw-01", "lfw-93"])
def test_face_confuses_angry_with_disgust_and_fearful_with_surprised(source):
    style = face.FaceStyle(source)
    crops = {
        e: _face_crop(style, e)[0]
        for e in ("happy", "surprised", "angry", "disgust", "fearful", "neutral", "calm", "sad")
    }

    def distance(a: str, b: str) -> float:
        return float(np.abs(crops[a] - crops[b]).mean())

    assert distance("angry", "disgust") < 0.5 * distance("happy", "surprised")
    assert distance("fearful", "surprised") < 0.5 * distance("happy", "surprised")
    assert distance("neutral", "calm") < 0.3 * distance("sad", "neutral")


def test_mediapipe_mesh_sees_the_smile_and_the_frown(face_detector):
    mp = pytest.importorskip("mediapipe")
    style = face.FaceStyle("astronaut")
    corner_lift = {}
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1) as mesh:
        for emotion in ("happy", "sad"):
            patch = face.render_face(style, face.emotion_expression(emotion), iod_px=60)
            rgb = patch.rgba[..., :3] + (1.0 - patch.rgba[..., 3:]) * 0.93
            result = mesh.process(np.ascontiguousarray((rgb * 255).astype(np.uint8)))
            assert result.multi_face_landmarks, emotion
            marks = result.multi_face_landmarks[0].landmark
            corners_y = (marks[61].y + marks[291].y) / 2
            lips_y = (marks[13].y + marks[14].y) / 2
            corner_lift[emotion] = (lips_y - corners_y) * rgb.shape[0] / 60  # IOD units, up is positive
    assert corner_lift["happy"] - corner_lift["sad"] > 0.08


def test_bad_face_inputs_raise():
    with pytest.raises(ConfigError, match="face source"):
        face.render_face(face.FaceStyle("camera"), face.FaceExpression(), iod_px=30)
    with pytest.raises(ConfigError, match="action units"):
        face.control_moves(face.landmarks_normalised("astronaut"), face.FaceExpression({"wink": 1.0}))
    with pytest.raises(ConfigError, match="emotion"):
        face.emotion_expression("bored")
    with pytest.raises(ConfigError, match="iod_px"):
        face.patch_grid(iod_px=1.0)
    with pytest.raises(ConfigError, match="even"):
        face.frame_yuv420(np.zeros((9, 16, 3), dtype=np.float32))


def test_yuv_conversion_of_white_black_and_grey():
    yuv = face.rgb_to_yuv(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]))
    np.testing.assert_allclose(yuv, [[235, 128, 128], [16, 128, 128], [125.5, 128, 128]], atol=0.01)


def test_a_transparent_patch_leaves_the_frame_unchanged():
    rng = np.random.default_rng(0)
    background = face.frame_yuv420(rng.random((32, 48, 3), dtype=np.float32))
    patch = face.patch_yuv420(face.FacePatch(np.zeros((10, 12, 4), dtype=np.float32), (5.0, 5.0)))
    buffer = np.zeros(32 * 48 * 3 // 2, dtype=np.uint8)
    planes = (
        buffer[: 32 * 48].reshape(32, 48),
        buffer[32 * 48 : 32 * 60].reshape(16, 24),
        buffer[32 * 60 :].reshape(16, 24),
    )
    face.composite_yuv420(background, patch, left=7, top=9, out=planes)
    for plane, expected in zip(planes, (background.y, background.u, background.v)):
        np.testing.assert_array_equal(plane, expected.astype(np.uint8))


def test_composite_clips_a_patch_at_the_frame_edge():
    background = face.frame_yuv420(np.full((8, 8, 3), 1.0, dtype=np.float32))
    black = face.FacePatch(
        np.concatenate([np.zeros((4, 4, 3)), np.ones((4, 4, 1))], axis=2).astype(np.float32), (2.0, 2.0)
    )
    patch = face.patch_yuv420(black)
    buffer = np.zeros(8 * 8 * 3 // 2, dtype=np.uint8)
    planes = (buffer[:64].reshape(8, 8), buffer[64:80].reshape(4, 4), buffer[80:].reshape(4, 4))
    face.composite_yuv420(background, patch, left=6, top=-2, out=planes)
    luma = planes[0]
    assert (luma[:2, 6:] == 16).all() and (luma[2:, :] == 235).all() and (luma[:, :6] == 235).all()


# ------------------------------------------------------------------------------- corpus


def test_full_plan_is_every_ravdess_speech_clip():
    plan = corpus.clip_plan([3])
    assert len(plan) == 60 and len({spec.clip_id for spec in plan}) == 60
    names = [parse_name(spec.relative_path) for spec in plan]
    assert all(n.modality == "av" and n.vocal_channel == "speech" and n.actor == 3 for n in names)
    counts = {e: sum(n.emotion == e for n in names) for e in EMOTIONS.values()}
    assert counts["neutral"] == 4 and all(counts[e] == 8 for e in EMOTIONS.values() if e != "neutral")


@pytest.mark.parametrize("actor", [1, 2, 3, 4, 5])
def test_selection_is_balanced(actor):
    plan = corpus.actor_clips(actor, clips_per_actor=16)
    assert len(plan) == 16
    for emotion in EMOTIONS:
        clips = [s for s in plan if s.emotion == emotion]
        assert len(clips) == 2
        assert {s.statement for s in clips} == {1, 2}
        if emotion != 1:
            assert {s.intensity for s in clips} == {1, 2}
    eight = corpus.actor_clips(actor, clips_per_actor=8)
    assert sorted(s.emotion for s in eight) == list(EMOTIONS)


def test_selection_covers_repetitions_over_actors():
    plan = corpus.clip_plan(range(1, 9), clips_per_actor=16)
    assert {s.repetition for s in plan} == {1, 2}
    assert sum(s.repetition == 1 for s in plan) == sum(s.repetition == 2 for s in plan)


@pytest.mark.parametrize("kwargs", [{"clips_per_actor": 0}, {"clips_per_actor": 61}])
def test_bad_plans_raise(kwargs):
    with pytest.raises(ConfigError):
        corpus.clip_plan([1], **kwargs)
    with pytest.raises(ConfigError, match="actor"):
        corpus.actor_clips(0)
    with pytest.raises(ConfigError, match="no actors"):
        corpus.clip_plan([])


def test_actor_design_is_seeded_and_sexed():
    assert corpus.design_actor(3, seed=0) == corpus.design_actor(3, seed=0)
    assert corpus.design_actor(3, seed=0) != corpus.design_actor(3, seed=1)
    male, female = corpus.design_actor(5, seed=0), corpus.design_actor(6, seed=0)
    assert male.sex == "male" and face.FACE_SOURCES[male.face.source].sex == "male"
    assert female.sex == "female" and face.FACE_SOURCES[female.face.source].sex == "female"
    assert male.voice.f0_hz < 140 < 170 < female.voice.f0_hz
    for seed in range(5):
        assert "astronaut" in corpus.face_pool("female", seed=seed)[:12]
    faces = [corpus.design_actor(a, seed=0).face.source for a in range(1, 25)]
    assert len(set(faces)) == 24


def test_clips_are_independent_of_the_other_clips():
    spec = corpus.ClipSpec(4, 6, 2, 1, 2)
    alone = corpus.render_clip(spec, seed=2, width=160, height=96)
    corpus.render_clip(corpus.ClipSpec(4, 3, 1, 1, 1), seed=2, width=160, height=96)
    again = corpus.render_clip(spec, seed=2, width=160, height=96)
    np.testing.assert_array_equal(alone.audio, again.audio)
    assert bytes(next(alone.frames)) == bytes(next(again.frames))


def test_performance_is_drawn_per_clip():
    summary = corpus.performance_summary(corpus.ClipSpec(2, 4, 2, 1, 1), seed=0)
    assert summary["sex"] == "female" and summary["face"] in face.FACE_SOURCES
    assert summary["expression"]["units"]["lip_corner_depress"] > 0  # sad
    assert (
        summary["voice"]["f0_shift"]
        != corpus.performance_summary(corpus.ClipSpec(2, 4, 2, 1, 2), seed=0)["voice"]["f0_shift"]
    )


def test_encoder_failure_is_a_media_error_and_leaves_no_file(tmp_path):
    from mmer.errors import MediaError

    odd = corpus.ClipMedia(
        audio=np.zeros(4800, dtype=np.float32),
        n_frames=2,
        width=64,
        height=63,
        speech_span=(0.0, 0.1),
        frames=iter([bytes(64 * 63 * 3 // 2)] * 2),
    )
    with pytest.raises(MediaError, match="ffmpeg failed"):
        corpus.encode_clip(odd, tmp_path / "bad.mp4")
    assert list(tmp_path.iterdir()) == []


def test_corpus_names_parse(tiny_corpus):
    clips = sorted(tiny_corpus.rglob("*.mp4"))
    assert len(clips) == len(ACTORS) * CLIPS
    for path in clips:
        name = parse_name(path)
        assert path.parent.name == f"Actor_{name.actor:02d}"
        assert (name.modality, name.vocal_channel) == ("av", "speech")
    assert {parse_name(p).emotion for p in clips} == set(EMOTIONS.values())
    assert not list(tiny_corpus.rglob("*.part"))


def test_corpus_streams(tiny_corpus):
    for path in sorted(tiny_corpus.rglob("*.mp4"))[::3]:
        info = ffmpeg_info(path)
        assert re.search(r"Video: h264 .*yuv420p.*, 320x180", info), info
        assert "29.97 fps" in info
        assert re.search(r"Audio: aac .*, 48000 Hz", info), info
        assert 3.0 <= duration_s(info) <= 5.0


def test_corpus_has_quiet_room_noise_around_the_speech(tiny_corpus):
    for path in sorted(tiny_corpus.rglob("*.mp4"))[::2]:
        audio = decode_audio(path)
        levels = frame_levels_db(audio)
        loudest = levels.max()
        head = audio[int(0.05 * 48000) : int(0.3 * 48000)]  # after the AAC encoder's priming
        tail = audio[-int(0.3 * 48000) :]
        for part in (head, tail):
            level = 10 * np.log10(np.mean(part**2) + 1e-20)
            assert loudest - level > 20.0, path.name
            assert np.count_nonzero(part) > 0.9 * len(part), f"{path.name}: digital silence"
        assert loudest > -40.0


def test_mediapipe_finds_the_faces(tiny_corpus, face_detector):
    for path in sorted(tiny_corpus.rglob("*.mp4")):
        middle = duration_s(ffmpeg_info(path)) / 2  # always inside the speech
        frame = decode_frame(path, middle)
        result = face_detector.process(frame)
        assert result.detections, f"no face found in {path.name} at {middle:.2f} s"


def test_rerun_keeps_existing_clips(tiny_corpus):
    before = {p: p.stat().st_mtime_ns for p in tiny_corpus.rglob("*.mp4")}
    summary = corpus.synth_corpus(
        tiny_corpus, seed=SEED, actors=ACTORS, clips_per_actor=CLIPS, width=SIZE[0], height=SIZE[1], progress=False
    )
    assert (summary.written, summary.skipped) == (0, len(before))
    assert before == {p: p.stat().st_mtime_ns for p in tiny_corpus.rglob("*.mp4")}
    with pytest.raises(ConfigError, match="seed"):
        corpus.synth_corpus(
            tiny_corpus,
            seed=SEED + 1,
            actors=ACTORS,
            clips_per_actor=CLIPS,
            width=SIZE[0],
            height=SIZE[1],
            progress=False,
        )


def test_same_seed_same_bytes_other_seed_other_bytes(tiny_corpus, tmp_path):
    spec = corpus.actor_clips(ACTORS[1], clips_per_actor=CLIPS)[3]
    original = (tiny_corpus / spec.relative_path).read_bytes()
    again = corpus.synth_clip(corpus.SynthJob(spec, str(tmp_path / "same"), SEED, *SIZE))
    other = corpus.synth_clip(corpus.SynthJob(spec, str(tmp_path / "other"), SEED + 1, *SIZE))
    assert Path(again["path"]).read_bytes() == original
    assert Path(other["path"]).read_bytes() != original


# ---------------------------------------------------------------------------------- cli


def test_presets_and_overrides():
    options = synth_cli.resolve_options(parsed_args("--out", "x", "--preset", "tiny", "--jobs", "1"))
    assert (options.actors, options.clips_per_actor, (options.width, options.height)) == (
        (1, 2, 3, 4, 19, 24),
        8,
        (320, 180),
    )
    options = synth_cli.resolve_options(
        parsed_args("--out", "x", "--preset", "demo", "--actors", "1,2,5", "--size", "640x360", "--jobs", "1")
    )
    assert (options.actors, options.clips_per_actor, options.width, options.height) == ((1, 2, 5), 16, 640, 360)
    options = synth_cli.resolve_options(parsed_args("--out", "x", "--jobs", "1"))
    assert (len(options.actors), options.clips_per_actor, options.width) == (24, None, 1280)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1-24", tuple(range(1, 25))),
        ("1,2,5", (1, 2, 5)),
        ("3", (3,)),
        ("1-4, 19,24", (1, 2, 3, 4, 19, 24)),
        ("2,2,1", (1, 2)),
    ],
)
def test_parse_actors(text, expected):
    assert synth_cli.parse_actors(text) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["--size", "abc"],
        ["--size", "1281x720"],
        ["--size", "32x16"],
        ["--size", "720x1280"],
        ["--actors", "0"],
        ["--actors", "100"],
        ["--actors", "5-3"],
        ["--actors", "one"],
        ["--actors", ""],
        ["--clips-per-actor", "0"],
        ["--clips-per-actor", "61"],
        ["--seed", "-1"],
        ["--jobs", "-2"],
    ],
)
def test_bad_options_raise_config_error(argv):
    with pytest.raises(ConfigError):
        synth_cli.resolve_options(parsed_args("--out", "x", *argv))


def test_command_line_reports_bad_options(tmp_path, caplog):
    from mmer.cli import main

    assert main(["synth", "--out", str(tmp_path / "c"), "--size", "abc"]) == 1
    assert main(["synth", "--out", str(tmp_path / "c"), "--actors", "0"]) == 1
    assert not (tmp_path / "c").exists()

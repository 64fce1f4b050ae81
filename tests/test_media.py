"""mmer.media: probe, audio decode, speech span, trim, frame seek (media made at test time)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mmer import media, speech
from mmer.batch import map_clips
from mmer.config import SpanParams
from mmer.errors import ConfigError, MediaError, NoAudioError, NoSpeechError

import media_factory as mf

SR = mf.SR
FRAME_S = SpanParams.frame_s
# A span edge may be off by a frame or two of the level analysis (and AAC's few ms).
EDGE_TOL = 2 * FRAME_S


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Every test file, made once for the module."""
    rng = np.random.default_rng(20240601)
    out = tmp_path_factory.mktemp("media")
    speech = mf.tone_between_silences(rng)  # tone from 1.0 to 2.5 s of 3.5 s
    paths = {
        "tone_wav": mf.write_audio(out / "tone.wav", speech),
        "tone_flac": mf.write_audio(out / "tone.flac", speech),
        "silent_wav": mf.write_audio(out / "silent.wav", np.zeros(3 * SR, np.float32)),
        "noise_wav": mf.write_audio(out / "noise.wav", (0.05 * rng.standard_normal(3 * SR)).astype(np.float32)),
        "face_tone_mp4": mf.still_video(out / "face_tone.mp4", mf.face_image(), 3.5, audio=speech),
        "face_tone_faststart_mp4": mf.still_video(
            out / "face_tone_fs.mp4", mf.face_image(), 3.5, audio=speech, faststart=True
        ),
        "face_no_audio_mp4": mf.still_video(out / "face_no_audio.mp4", mf.face_image(), 2.0),
        "face_zero_audio_mp4": mf.still_video(
            out / "face_zero_audio.mp4", mf.face_image(), 2.0, audio=np.zeros(2 * SR, np.float32)
        ),
        "indexed_mp4": mf.indexed_video(out / "indexed.mp4"),
        "indexed_late_mp4": mf.indexed_video(out / "indexed_late.mp4", start_s=0.4),
        "zero_mp4": mf.zero_bytes(out / "zero.mp4"),
        "random_mp4": mf.random_bytes(out / "random.mp4", rng),
    }
    for fraction in (0.02, 0.3, 0.6, 0.97):
        paths[f"cut{fraction}_mp4"] = mf.truncated(paths["face_tone_mp4"], out / f"cut{fraction}.mp4", fraction)
    paths["cut_faststart_mp4"] = mf.truncated(paths["face_tone_faststart_mp4"], out / "cut_fs.mp4", 0.5)
    return paths


# --------------------------------------------------------------------------- probe


def test_probe_video_with_audio(clips):
    info = media.probe(clips["face_tone_mp4"])
    assert info.has_video and info.has_audio
    assert (info.width, info.height, info.frame_size) == (512, 512, (512, 512))
    assert info.fps == pytest.approx(25)
    assert info.duration_s == pytest.approx(3.5, abs=0.1)
    assert (info.video_codec, info.audio_codec, info.sample_rate, info.channels) == ("h264", "aac", 16000, "mono")


@pytest.mark.parametrize("name, video, audio", [("tone_flac", False, True), ("face_no_audio_mp4", True, False)])
def test_probe_streams(clips, name, video, audio):
    info = media.probe(clips[name])
    assert (info.has_video, info.has_audio) == (video, audio)


def test_parse_probe_rotation_cover_art_and_unknown_duration():
    text = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'phone.mp4':
  Duration: N/A, start: 0.500000, bitrate: N/A
  Stream #0:0[0x1](und): Video: mjpeg (Baseline), yuvj420p, 300x300, 90k tbr, 90k tbn (attached pic)
  Stream #0:1[0x2](und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv), 1920x1080, 30 fps, 30 tbr
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:2[0x3](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, 5.1(side), fltp, 128 kb/s
"""
    info = media.parse_probe(text, "phone.mp4")
    assert info.duration_s is None and info.start_s == 0.5
    assert (info.video_codec, info.width, info.height, info.fps, info.rotation) == ("hevc", 1920, 1080, 30.0, -90.0)
    assert info.frame_size == (1080, 1920)
    assert (info.sample_rate, info.channels) == (44100, "5.1(side)")


@pytest.mark.parametrize(
    "name, reason",
    [
        ("zero_mp4", "empty file"),
        ("random_mp4", "Invalid data"),
        ("cut0.02_mp4", "moov atom not found"),
        ("cut0.3_mp4", "moov atom not found"),
        ("cut0.6_mp4", "moov atom not found"),
        ("cut0.97_mp4", "moov atom not found"),
    ],
)
def test_probe_unreadable_files_name_the_file(clips, name, reason):
    with pytest.raises(MediaError, match=reason) as caught:
        media.probe(clips[name])
    assert str(clips[name]) in str(caught.value)


def test_probe_missing_file(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        media.probe(tmp_path / "absent.mp4")


# --------------------------------------------------------------------------- audio


@pytest.mark.parametrize("name", ["tone_wav", "tone_flac", "face_tone_mp4"])
def test_read_audio_is_mono_float32_at_the_asked_rate(clips, name):
    signal = media.read_audio(clips[name], sample_rate=8000)
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert len(signal) == pytest.approx(3.5 * 8000, abs=0.05 * 8000)
    assert np.abs(signal).max() == pytest.approx(0.3, abs=0.03)


def test_read_audio_without_audio_stream(clips):
    with pytest.raises(NoAudioError, match="no audio stream") as caught:
        media.read_audio(clips["face_no_audio_mp4"])
    assert "face_no_audio.mp4" in str(caught.value)


def test_read_audio_truncated_faststart_mp4(clips):
    # moov at the front survives the cut: ffmpeg reads what is there without an error
    with pytest.raises(MediaError, match=r"cut_fs.mp4: truncated audio: decoded .* of the 3\.5\d s"):
        media.read_audio(clips["cut_faststart_mp4"])


def test_write_wav_is_16_bit_and_atomic(tmp_path, rng):
    signal = (0.5 * rng.standard_normal(1600)).clip(-1.5, 1.5).astype(np.float32)
    path = tmp_path / "sub" / "out.wav"
    media.write_wav(path, signal, SR)
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (SR, 1, "PCM_16")
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.wav"]
    with pytest.raises(ConfigError, match="mono"):
        media.write_wav(tmp_path / "stereo.wav", np.zeros((10, 2)), SR)


# --------------------------------------------------------------------------- speech span


def test_span_of_a_tone_between_silences(rng):
    start, end = speech.speech_span(mf.tone_between_silences(rng), SR, pad_s=0.1)
    assert start == pytest.approx(1.0 - 0.1, abs=EDGE_TOL)
    assert end == pytest.approx(2.5 + 0.1, abs=EDGE_TOL)


def test_span_padding_is_clamped_to_the_clip(rng):
    signal = mf.sequence(("silence", 0.2), ("tone", 1.0), ("silence", 0.2), rng=rng)
    assert speech.speech_span(signal, SR, pad_s=0.5) == (0.0, pytest.approx(len(signal) / SR))


def test_short_pause_does_not_split_the_span_but_an_isolated_click_is_ignored(rng):
    # tone, 0.15 s pause, 40 ms burst (joined: a pause < min_silence_s); then 0.6 s of silence
    # and a 30 ms click (isolated and shorter than MIN_REGION_S = 0.1 s: ignored)
    signal = mf.sequence(
        ("silence", 1.0),
        ("tone", 1.0),
        ("silence", 0.15),
        ("tone", 0.04),
        ("silence", 0.6),
        ("tone", 0.03),
        ("silence", 0.8),
        rng=rng,
    )
    start, end = speech.speech_span(signal, SR, min_silence_s=0.25, pad_s=0.0)
    assert start == pytest.approx(1.0, abs=EDGE_TOL)
    assert end == pytest.approx(2.19, abs=EDGE_TOL)


def test_pause_longer_than_min_silence_keeps_both_words(rng):
    signal = mf.sequence(("silence", 0.8), ("tone", 0.6), ("silence", 0.6), ("tone", 0.3), ("silence", 0.8), rng=rng)
    start, end = speech.speech_span(signal, SR, min_silence_s=0.25, pad_s=0.0)
    assert (start, end) == (pytest.approx(0.8, abs=EDGE_TOL), pytest.approx(2.3, abs=EDGE_TOL))


def test_weak_sound_before_speech_is_not_speech_but_a_soft_word_after_a_pause_is(rng):
    # a breath-like sound 25 dB below the loudest frame, 0.5 s before the sentence: ignored;
    # a final word 10 dB softer after a 0.4 s pause: kept
    signal = np.concatenate(
        [
            mf.silence(0.3),
            10 ** (-25 / 20) * mf.tone(0.3, freq=300),
            mf.silence(0.5),
            mf.tone(1.0),
            mf.silence(0.4),
            10 ** (-10 / 20) * mf.tone(0.3, freq=200),
            mf.silence(0.6),
        ]
    )
    signal = signal + mf.silence(len(signal) / SR, rng=rng)
    start, end = speech.speech_span(signal, SR, pad_s=0.0)
    assert (start, end) == (pytest.approx(1.1, abs=EDGE_TOL), pytest.approx(2.8, abs=EDGE_TOL))


def test_noisy_clip_threshold_follows_the_noise_floor(rng):
    # noise only 30 dB below the tone: a -40 dB threshold alone would call the noise speech
    signal = mf.sequence(("silence", 1.0), ("tone", 1.0), ("silence", 1.0), rng=rng) + 0.3 * 10 ** (
        -30 / 20
    ) * rng.standard_normal(3 * SR)
    start, end = speech.speech_span(signal.astype(np.float32), SR, threshold_db=-40.0, pad_s=0.0)
    assert (start, end) == (pytest.approx(1.0, abs=EDGE_TOL), pytest.approx(2.0, abs=EDGE_TOL))


def test_click_before_speech_is_not_speech(rng):
    signal = mf.sequence(("silence", 0.2), ("tone", 0.02), ("silence", 0.8), ("tone", 1.0), ("silence", 0.5), rng=rng)
    start, _ = speech.speech_span(signal, SR, pad_s=0.0)
    assert start == pytest.approx(1.02, abs=EDGE_TOL)


@pytest.mark.parametrize(
    "signal, reason",
    [
        (np.zeros(SR, np.float32), "digital silence"),
        (1e-5 * np.random.default_rng(0).standard_normal(SR).astype(np.float32), "too quiet"),
        (np.zeros(0, np.float32), "empty"),
    ],
)
def test_silence_has_no_speech(signal, reason):
    with pytest.raises(NoSpeechError, match=reason):
        speech.speech_span(signal, SR)


@pytest.mark.parametrize("amplitude", [0.001, 0.05, 0.5])
def test_noise_only_has_no_speech(rng, amplitude):
    with pytest.raises(NoSpeechError, match="noise only"):
        speech.speech_span((amplitude * rng.standard_normal(3 * SR)).astype(np.float32), SR)


@pytest.mark.parametrize(
    "kwargs",
    [{"threshold_db": 3.0}, {"frame_s": 0.0}, {"min_silence_s": -1.0}, {"pad_s": -0.1}],
)
def test_speech_span_rejects_bad_parameters(rng, kwargs):
    with pytest.raises(ConfigError):
        speech.speech_span(mf.tone_between_silences(rng), SR, **kwargs)


# --------------------------------------------------------------------------- trim_clip


@pytest.mark.parametrize("name", ["tone_wav", "tone_flac", "face_tone_mp4"])
def test_trim_clip_writes_the_span_audio(clips, tmp_path, name):
    wav = tmp_path / "span.wav"
    span = speech.trim_clip(clips[name], wav, pad_s=0.1)
    assert span["has_audio"] is True
    assert span["start_s"] == pytest.approx(0.9, abs=EDGE_TOL)
    assert span["end_s"] == pytest.approx(2.6, abs=EDGE_TOL)
    assert span["duration_s"] == pytest.approx(3.5, abs=0.05)  # the whole clip
    audio, sr = sf.read(wav, dtype="float32")
    assert sr == SR and audio.ndim == 1
    assert len(audio) / SR == pytest.approx(span["end_s"] - span["start_s"], abs=1e-3)
    assert np.abs(audio[: int(0.05 * SR)]).max() < 0.01  # the pad is quiet, the tone follows
    assert np.abs(audio).max() == pytest.approx(0.3, abs=0.03)


@pytest.mark.parametrize("name", ["face_no_audio_mp4", "face_zero_audio_mp4"])
def test_trim_clip_of_a_video_without_sound_is_the_whole_clip(clips, tmp_path, name):
    wav = tmp_path / "span.wav"
    span = speech.trim_clip(clips[name], wav)
    assert span == {
        "start_s": 0.0,
        "end_s": pytest.approx(2.0, abs=0.05),
        "duration_s": pytest.approx(2.0, abs=0.05),
        "has_audio": False,
    }
    assert not wav.exists()


def test_trim_clip_too_short_span(tmp_path, rng):
    path = mf.write_audio(
        tmp_path / "blip.wav", mf.sequence(("silence", 1.0), ("tone", 0.12), ("silence", 1.0), rng=rng)
    )
    with pytest.raises(
        NoSpeechError, match=r"blip.wav: too short after trimming: span 0.1\d s shorter than span.min_span_s=0.3"
    ):
        speech.trim_clip(path, tmp_path / "out.wav", pad_s=0.0)
    assert not (tmp_path / "out.wav").exists()


@pytest.mark.parametrize(
    "name, error, reason",
    [
        ("silent_wav", NoSpeechError, "digital silence"),
        ("noise_wav", NoSpeechError, "noise only"),
        ("zero_mp4", MediaError, "empty file"),
        ("random_mp4", MediaError, "Invalid data"),
        ("cut0.3_mp4", MediaError, "moov atom not found"),
        ("cut0.97_mp4", MediaError, "moov atom not found"),
        ("cut_faststart_mp4", MediaError, "truncated audio"),
    ],
)
def test_trim_clip_bad_inputs(clips, tmp_path, name, error, reason):
    with pytest.raises(error, match=reason) as caught:
        speech.trim_clip(clips[name], tmp_path / "out.wav")
    assert str(clips[name]) in str(caught.value)
    assert not (tmp_path / "out.wav").exists()


def test_trim_batch_records_bad_clips_and_goes_on(clips, tmp_path):
    names = [
        "tone_wav",
        "zero_mp4",
        "face_tone_mp4",
        "silent_wav",
        "face_no_audio_mp4",
        "random_mp4",
        "cut_faststart_mp4",
    ]
    items = [(str(clips[n]), str(tmp_path / f"{n}.wav")) for n in names]
    result = map_clips(
        functools.partial(_trim_item, pad_s=0.1),
        items,
        keys=names,
        paths=[i[0] for i in items],
        stage="trim",
        jobs=2,
        progress=False,
    )
    assert sorted(result.results) == ["face_no_audio_mp4", "face_tone_mp4", "tone_wav"]
    assert result.results["face_no_audio_mp4"]["has_audio"] is False
    failures = {f["clip_id"]: f for f in result.failures}
    assert {k: f["kind"] for k, f in failures.items()} == {
        "zero_mp4": "MediaError",
        "silent_wav": "NoSpeechError",
        "random_mp4": "MediaError",
        "cut_faststart_mp4": "MediaError",
    }
    assert all(f["path"] in f["reason"] for f in result.failures)


def _trim_item(item: tuple[str, str], **kwargs) -> dict:
    return speech.trim_clip(*item, **kwargs)


# --------------------------------------------------------------------------- frames


def test_frame_times_are_segment_centres():
    np.testing.assert_allclose(media.frame_times(1.0, 2.2, 6), [1.1, 1.3, 1.5, 1.7, 1.9, 2.1])
    np.testing.assert_allclose(media.frame_times(0.0, 1.0, 1), [0.5])
    with pytest.raises(ConfigError):
        media.frame_times(2.0, 1.0, 6)
    with pytest.raises(ConfigError):
        media.frame_times(0.0, 1.0, 0)


def test_read_frames_returns_the_nearest_frame_to_each_time(clips):
    times = [0.51, 0.0, 1.23, 2.96, 1.23, 0.31, 0.021, 9.0]  # any order, repeats, past the end
    frames = media.read_frames(clips["indexed_mp4"], times)
    assert frames.shape == (len(times), 48, 64, 3) and frames.dtype == np.uint8
    got = [mf.colour_index(f) for f in frames]
    expected = [min(74, int(round(t * mf.FPS))) for t in times]
    assert got == expected


def test_read_frames_counts_from_the_start_of_the_clip(clips):
    assert media.probe(clips["indexed_late_mp4"]).start_s == pytest.approx(0.4)
    frames = media.read_frames(clips["indexed_late_mp4"], [0.0, 0.51, 2.96])
    assert [mf.colour_index(f) for f in frames] == [0, 13, 74]


def test_read_frames_of_a_span_and_scaled(clips):
    times = media.frame_times(0.9, 2.6, 6)
    frames = media.read_frames(clips["face_tone_mp4"], times, max_side=256)
    assert frames.shape == (6, 256, 256, 3)
    assert frames.mean() > 50  # the astronaut, not black


@pytest.mark.parametrize(
    "name, reason",
    [
        ("tone_wav", "no video stream"),
        ("zero_mp4", "empty file"),
        ("random_mp4", "Invalid data"),
        ("cut0.6_mp4", "moov atom not found"),
        ("cut_faststart_mp4", "no video frame near 3.40 s"),
    ],
)
def test_read_frames_bad_inputs(clips, name, reason):
    with pytest.raises(MediaError, match=reason) as caught:
        media.read_frames(clips[name], [0.5, 3.4])
    assert str(clips[name]) in str(caught.value)


def test_read_frames_rejects_bad_times(clips):
    with pytest.raises(ConfigError):
        media.read_frames(clips["indexed_mp4"], [])
    with pytest.raises(ConfigError):
        media.read_frames(clips["indexed_mp4"], [-1.0])


# --------------------------------------------------------------------------- real RAVDESS (skipped when absent)


@pytest.mark.realdata
def test_real_av_clips_trim_and_frames(real_av_dir, tmp_path):
    av = sorted(real_av_dir.glob("*/01-*.mp4"))
    video_only = sorted(real_av_dir.glob("*/02-*.mp4"))
    assert av and video_only
    for path in av:
        info = media.probe(path)
        assert (info.width, info.height, info.has_audio) == (1280, 720, True)
        span = speech.trim_clip(path, tmp_path / f"{path.stem}.wav")
        assert span["has_audio"] and 0.0 <= span["start_s"] < span["end_s"] <= info.duration_s
        assert span["end_s"] - span["start_s"] >= 1.0 and span["duration_s"] == pytest.approx(info.duration_s, abs=0.05)
        assert sf.info(tmp_path / f"{path.stem}.wav").samplerate == SR
        frames = media.read_frames(path, media.frame_times(span["start_s"], span["end_s"], 6))
        assert frames.shape == (6, 720, 1280, 3)
    for path in video_only:
        # genuine RAVDESS video-only files carry an audio stream of digital silence
        span = speech.trim_clip(path, tmp_path / f"{path.stem}.wav")
        assert span["has_audio"] is False and span["start_s"] == 0.0
        assert span["end_s"] == pytest.approx(media.probe(path).duration_s)


@pytest.mark.realdata
def test_real_speech_spans_keep_the_utterance_and_cut_the_room(real_speech_dir):
    """Outside the span nothing is nearly as loud as speech; the span is shorter than the clip.

    The spans were checked by eye on plots of 70 clips of all 18 actors; this guards the gist.
    """
    paths = [
        sorted((real_speech_dir / f"Actor_{actor:02d}").glob("*.flac"))[k]
        for actor, k in [(1, 5), (4, 17), (8, 30), (11, 44), (15, 52), (18, 59)]
    ]
    for path in paths:
        signal, sr = sf.read(path, dtype="float32")
        start, end = speech.speech_span(signal, sr)
        levels = speech.frame_levels_db(speech.highpass(signal, sr), sr)
        times = (np.arange(len(levels)) + 0.5) * FRAME_S
        outside = levels[(times < start) | (times > end)]
        assert outside.max() < levels.max() - speech.REGION_PEAK_DB, path.name
        assert end - start < len(signal) / sr - 0.5, path.name
        assert end - start > 1.0, path.name


def test_non_finite_samples_are_named(tmp_path):
    sr = 16000
    signal = (0.3 * np.sin(2 * np.pi * 220 * np.arange(2 * sr) / sr)).astype(np.float32)
    signal[sr] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, signal, sr, subtype="FLOAT")
    with pytest.raises(MediaError, match="nan.wav: non-finite samples"):
        media.read_audio(path)


def test_stereo_in_opposite_phase_uses_one_channel(tmp_path, caplog):
    sr = 16000
    voice = (0.3 * np.sin(2 * np.pi * 220 * np.arange(2 * sr) / sr)).astype(np.float32)
    path = tmp_path / "anti.wav"
    sf.write(path, np.stack([voice, -voice], axis=1), sr)
    with caplog.at_level("WARNING", logger="mmer.media"):
        signal = media.read_audio(path)
    assert np.sqrt(np.mean(signal**2)) > 0.15 and "cancel in the mono mix" in caplog.text
    same = tmp_path / "same.wav"
    sf.write(same, np.stack([voice, voice], axis=1), sr)
    np.testing.assert_allclose(media.read_audio(same), voice, atol=1e-3)


def _two_audio_streams(video: Path, first: Path, second: Path, out: Path) -> Path:
    """``video``'s picture with ``first`` as audio stream 0 and ``second`` as stream 1 (ffmpeg -map)."""
    mf.ffmpeg(
        "-i", str(video), "-i", str(first), "-i", str(second),
        "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(out),
    )  # fmt: skip
    return out


def test_first_audio_stream_silent_uses_the_one_with_speech(clips, tmp_path, rng, caplog):
    tone = mf.tone_between_silences(rng)  # the tone from 1.0 to 2.5 s
    silent = mf.write_audio(tmp_path / "silent.wav", np.zeros(len(tone), np.float32))
    voice = mf.write_audio(tmp_path / "voice.wav", tone)
    path = _two_audio_streams(clips["face_tone_mp4"], silent, voice, tmp_path / "two.mp4")
    info = media.probe(path)
    assert len(info.audio_streams) == 2 and info.audio_streams[0][0] == "aac"
    with caplog.at_level("WARNING", logger="mmer.media"):
        signal = media.read_audio(path, info=info)
    assert media.level_dbfs(signal) > -30
    assert "two.mp4: audio stream 0 is silent; stream 1 is used (0 (aac, mono): silent, 1 (aac, mono): " in caplog.text
    span = speech.trim_clip(path, tmp_path / "span.wav")
    assert span["has_audio"] and 0.5 < span["start_s"] < 1.0 and 2.5 < span["end_s"] < 3.0  # the tone, padded
    # with speech in stream 0, stream 0 is used and nothing is said
    caplog.clear()
    both = _two_audio_streams(clips["face_tone_mp4"], voice, silent, tmp_path / "first.mp4")
    with caplog.at_level("WARNING", logger="mmer.media"):
        assert media.level_dbfs(media.read_audio(both)) > -30
    assert "audio stream" not in caplog.text


def test_all_audio_streams_silent_are_named(clips, tmp_path, caplog):
    silent = mf.write_audio(tmp_path / "silent.wav", np.zeros(2 * SR, np.float32))
    path = _two_audio_streams(clips["face_no_audio_mp4"], silent, silent, tmp_path / "mute.mp4")
    with caplog.at_level("WARNING", logger="mmer.media"):
        signal = media.read_audio(path)
    assert media.level_dbfs(signal) < -100
    assert "mute.mp4: all 2 audio streams are silent (0 (aac, mono): silent, 1 (aac, mono): silent)" in caplog.text
    # a video whose every track is silent is a silent video, as with one track
    assert not speech.trim_clip(path, tmp_path / "x.wav")["has_audio"]


# --------------------------------------------------------------------------- issue 15: fewer ffmpeg runs


@pytest.mark.parametrize("name", ["face_tone_mp4", "tone_wav", "tone_flac", "face_no_audio_mp4", "indexed_late_mp4"])
def test_probe_and_read_audio_is_probe_then_read_audio(clips, name):
    # one ffmpeg run where it can, the same info and samples as the two runs
    info, signal = media.probe_and_read_audio(clips[name])
    assert info == media.probe(clips[name])
    if info.has_audio:
        np.testing.assert_array_equal(signal, media.read_audio(clips[name], info=info))
    else:
        assert signal is None


@pytest.mark.parametrize("name, reason", [("zero_mp4", "empty file"), ("random_mp4", "unreadable media file")])
def test_probe_and_read_audio_bad_inputs(clips, name, reason):
    with pytest.raises(MediaError, match=reason):
        media.probe_and_read_audio(clips[name])
    with pytest.raises(ConfigError, match="sample_rate"):
        media.probe_and_read_audio(clips["tone_wav"], sample_rate=0)


def test_video_facts_stand_for_the_probe_in_read_frames(clips):
    path = clips["indexed_late_mp4"]
    info = media.probe(path)
    as_text = {k: ("" if v is None else repr(v)) for k, v in media.video_facts(info).items()}  # as spans.csv has them
    from_facts = media.info_from_facts(path, as_text)
    assert from_facts.frame_size == info.frame_size and from_facts.start_s == info.start_s
    times = [0.0, 0.51, 1.23, 2.96]
    np.testing.assert_array_equal(media.read_frames(path, times, info=from_facts), media.read_frames(path, times))
    assert media.info_from_facts(path, {}) is None
    assert media.info_from_facts(clips["tone_wav"], media.video_facts(media.probe(clips["tone_wav"]))) is None


def test_read_frames_fast_path_picks_what_every_candidate_would(clips):
    # the nearest frame of the one-frame-per-time select is the nearest of all the candidates
    path = clips["indexed_mp4"]
    info = media.probe(path)
    wanted = np.round(np.arange(0.0, 2.9, 0.097), 3)  # 30 times, between and on frames
    window = (path, 0.0, 3.5, info.frame_size, False, 1)
    frames, pts = media._decode_selected(*window, media._candidates_expr(wanted, 1 / info.fps))
    np.testing.assert_array_equal(
        media.read_frames(path, wanted, info=info, threads=1), frames[media._nearest_indices(pts, wanted)]
    )
    # more times than the fast path's select can hold take the candidates' select
    many = media.frame_times(0.1, 2.9, 2 * media.MAX_NEAREST_TIMES)
    assert [mf.colour_index(f) for f in media.read_frames(path, many)] == [int(round(t * mf.FPS)) for t in many]

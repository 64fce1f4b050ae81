import librosa
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from mmer import audio
from mmer.audio import (
    clip_mfcc,
    mean_frames,
    mfcc,
    pad_or_truncate,
    speech_mask,
    stack_padded,
    standardise,
    wav_mfcc,
)
from mmer.config import AudioParams
from mmer.errors import ConfigError, MediaError

SR = 16000


def tone(seconds=1.0, freq=440.0):
    t = np.arange(int(seconds * SR)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_mfcc_shape_and_frames():
    signal = tone(1.0)
    features = mfcc(signal, SR, n_mfcc=24, n_fft=512, win_length=400, hop_length=160)
    # center=False: 1 + (n - n_fft) // hop frames
    assert features.shape == (1 + (SR - 512) // 160, 24)
    assert features.dtype == np.float32
    with_deltas = mfcc(signal, SR, n_mfcc=13, deltas=True)
    assert with_deltas.shape[1] == 39


def test_mfcc_distinguishes_tones():
    low, high = clip_mfcc(tone(0.5, 200), SR), clip_mfcc(tone(0.5, 2000), SR)
    raw_low, raw_high = mfcc(tone(0.5, 200), SR), mfcc(tone(0.5, 2000), SR)
    assert not np.allclose(raw_low.mean(0), raw_high.mean(0), atol=1.0)
    assert low.shape == high.shape


def test_standardise_per_clip(rng):
    features = rng.normal(5.0, 3.0, size=(120, 24)).astype(np.float32)
    z = standardise(features)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-4)
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-4
    constant = standardise(np.ones((10, 3)))
    assert np.all(np.isfinite(constant)) and np.all(constant == 0)


def test_cepstral_mean_removal_keeps_the_spread(rng):
    # a fixed channel gain is a constant offset of the log spectrum: cmn removes it, keeps each column's spread
    voice = tone(1.0, 220.0) + 0.05 * rng.standard_normal(SR).astype(np.float32)
    raw = clip_mfcc(voice, SR, normalise="none", deltas=True)
    cmn = clip_mfcc(voice, SR, normalise="cmn", deltas=True)
    louder = clip_mfcc(voice * np.float32(4.0), SR, normalise="cmn", deltas=True)
    np.testing.assert_allclose(cmn.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(cmn.std(axis=0), raw.std(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(louder, cmn, atol=1e-2)  # gain only moves c0 (and log-mel) by a constant
    np.testing.assert_array_equal(audio.remove_mean(np.ones((3, 2))), np.zeros((3, 2)))


def test_pre_padding_puts_zeros_first(rng):
    features = rng.normal(size=(7, 4)).astype(np.float32) + 10
    padded = pad_or_truncate(features, 10)
    assert padded.shape == (10, 4)
    assert np.all(padded[:3] == 0)
    np.testing.assert_array_equal(padded[3:], features)
    truncated = pad_or_truncate(features, 5)
    np.testing.assert_array_equal(truncated, features[:5])
    stacked = stack_padded([features, features[:2]], 6)
    assert stacked.shape == (2, 6, 4) and np.all(stacked[1, :4] == 0)


def test_mean_frames():
    assert mean_frames([100, 101, 102]) == 101
    with pytest.raises(ConfigError):
        mean_frames([])


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 100), np.float32), np.zeros(10, np.float32)],
    ids=["stereo", "shorter-than-window"],
)
def test_bad_signals_raise(bad):
    with pytest.raises(ConfigError):
        mfcc(bad, SR)


def test_bad_params_raise():
    with pytest.raises(ConfigError, match="n_mfcc"):
        AudioParams(n_mfcc=60, n_mels=40)
    with pytest.raises(ConfigError, match="win_length"):
        AudioParams(win_length=1024, n_fft=512)
    with pytest.raises(ConfigError):
        pad_or_truncate(np.zeros((3, 2)), 0)


def test_wav_mfcc_reads_and_names_bad_files(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, tone(0.8), SR, subtype="PCM_16")
    features = wav_mfcc(good, n_mfcc=24)
    assert features.shape[1] == 24 and abs(features.mean()) < 1e-4
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    with pytest.raises(MediaError, match="bad.wav"):
        wav_mfcc(bad)
    short = tmp_path / "short.wav"
    sf.write(short, tone(0.01), SR)
    with pytest.raises(MediaError, match="short.wav"):
        wav_mfcc(short)


def test_a_dc_offset_does_not_change_the_features(rng):
    """The same speech with a constant offset gives the same features (the offset is removed)."""
    sr = 16000
    t = np.arange(sr) / sr
    voice = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    voice += 0.01 * rng.standard_normal(sr).astype(np.float32)
    for normalise in ("clip", "none", "cmn"):
        plain = audio.clip_mfcc(voice, sr, normalise=normalise)
        offset = audio.clip_mfcc(voice + np.float32(0.25), sr, normalise=normalise)
        np.testing.assert_allclose(offset, plain, atol=1e-3 * max(1.0, float(np.abs(plain).max())))


def test_one_long_clip_does_not_set_t_for_everyone():
    """A 10-minute file among 2-3 s utterances: T stays the utterances' mean, and the file is named."""
    lengths = [200, 210, 190, 205, 60000]
    assert mean_frames(lengths) == 201
    assert list(audio.long_clips(lengths)) == [4]
    assert mean_frames([100, 101, 102]) == 101 and list(audio.long_clips([100, 101, 102])) == []


@pytest.mark.parametrize(
    "params",
    [
        {"n_mfcc": 24, "n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 40},  # the defaults
        {"n_mfcc": 13, "n_fft": 1024, "win_length": 800, "hop_length": 320, "n_mels": 20},
    ],
)
def test_mfcc_equals_librosa_under_the_same_params(params, rng):
    # every param reaches librosa: a dropped n_mels (librosa's 128) or hop would change the values
    signal = (tone(0.6, 300) + 0.05 * rng.normal(size=int(0.6 * SR))).astype(np.float32)
    expected = librosa.feature.mfcc(y=signal, sr=SR, center=False, **params).T
    got = mfcc(signal, SR, **params)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_defaults_are_the_params_dataclass_defaults(rng):
    signal = rng.normal(size=SR // 2).astype(np.float32)
    defaults = AudioParams()
    explicit = mfcc(
        signal,
        SR,
        n_mfcc=defaults.n_mfcc,
        n_fft=defaults.n_fft,
        win_length=defaults.win_length,
        hop_length=defaults.hop_length,
        n_mels=defaults.n_mels,
    )
    np.testing.assert_array_equal(mfcc(signal, SR), explicit)


@settings(max_examples=60, deadline=None)
@given(
    frames=st.integers(1, 30),
    coefficients=st.integers(1, 5),
    length=st.integers(1, 30),
    seed=st.integers(0, 2**16),
)
def test_pad_or_truncate_property(frames, coefficients, length, seed):
    # shorter clips: every frame kept, as the last ones, zeros in front; longer: the tail is cut
    features = np.random.default_rng(seed).normal(size=(frames, coefficients)).astype(np.float32) + 10
    out = pad_or_truncate(features, length)
    assert out.shape == (length, coefficients) and out.dtype == features.dtype
    kept = min(frames, length)
    np.testing.assert_array_equal(out[length - kept :], features[:kept])
    assert np.all(out[: length - kept] == 0)
    mask = speech_mask(np.array([frames]), length)[0]
    assert mask.sum() == kept and np.all(mask == np.any(out != 0, axis=1))


@settings(max_examples=60, deadline=None)
@given(
    frames=st.integers(2, 60),
    coefficients=st.integers(1, 6),
    scale=st.floats(0.1, 1000),
    offset=st.floats(-100, 100),  # float32 input: keep |offset| / scale within a few thousand
    seed=st.integers(0, 2**16),
)
def test_standardise_property(frames, coefficients, scale, offset, seed):
    features = np.random.default_rng(seed).normal(offset, scale, size=(frames, coefficients))
    z = standardise(features)
    assert z.shape == features.shape and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=2e-3)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=2e-3)


def test_log_mel_equals_librosa_on_an_absolute_db_scale_floored_at_minus_100():
    # a tone, then digital silence: silent frames sit at the floor, the tone at librosa's dB re 1.0 (no top_db)
    signal = np.concatenate([tone(0.3, 500), np.zeros(SR // 5, np.float32)])
    params = {"n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 40}
    power = librosa.feature.melspectrogram(y=signal, sr=SR, center=False, **params)
    expected = np.maximum(librosa.power_to_db(power, ref=1.0, top_db=None), audio.LOG_MEL_FLOOR_DB).T
    got = audio.log_mel(signal, SR, **params)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    assert np.all(got[-1] == audio.LOG_MEL_FLOOR_DB) and got.max() > audio.LOG_MEL_FLOOR_DB + 80


@pytest.mark.parametrize("frames", [2, 3, 4, 5, 8, 12])
def test_deltas_of_a_line_and_a_parabola(frames):
    # first delta of 3t is 3, second delta of t^2 is 2 (exact: a local polynomial fit of the delta's order);
    # a clip of fewer than 3 frames gets zero deltas
    t = np.arange(frames, dtype=np.float64)
    line, parabola = 3 * t, t**2
    out = audio._with_deltas(np.stack([line, parabola]), True)
    assert out.shape == (6, frames)
    np.testing.assert_array_equal(out[:2], [line, parabola])
    if frames < 3:
        np.testing.assert_array_equal(out[2:], 0)
        return
    np.testing.assert_allclose(out[2], 3, atol=1e-9)
    np.testing.assert_allclose(out[4], 0, atol=1e-9)
    np.testing.assert_allclose(out[5], 2, atol=1e-9)
    np.testing.assert_array_equal(audio._with_deltas(np.stack([line, parabola]), False), [line, parabola])


def test_one_window_is_enough_and_the_window_may_fill_the_fft():
    signal = tone(0.1, 440)
    assert mfcc(signal[:512], SR, n_fft=512, win_length=512, hop_length=160).shape == (1, 24)
    with pytest.raises(ConfigError, match="shorter than one window"):
        mfcc(signal[:511], SR, n_fft=512, win_length=512)
    with pytest.raises(ConfigError, match="win_length"):
        mfcc(signal, SR, n_fft=256, win_length=400)


def test_speed_factors_from_half_to_double():
    signal = tone(1.0)
    assert len(audio.perturb(signal, SR, speed=2.0)) == SR // 2
    assert len(audio.perturb(signal, SR, speed=0.5)) == 2 * SR
    for bad in (0.49, 2.01):
        with pytest.raises(ConfigError, match="speed factor"):
            audio.perturb(signal, SR, speed=bad)
    with pytest.raises(ConfigError, match="mono"):
        audio.perturb(np.zeros((2, 1000), np.float32), SR)


def test_lengths_t_and_stacking_edges():
    assert mean_frames([1]) == 1
    assert list(audio.long_clips([100, 100, 400])) == [] and list(audio.long_clips([100, 100, 401])) == [2]
    assert np.arange(3)[audio.long_clips([])].size == 0  # no clips: an empty index that still indexes
    stacked = stack_padded([np.ones((2, 3)), np.ones((5, 3))], 4)  # float64 in, float32 out
    assert stacked.dtype == np.float32 and stacked[0, :2].sum() == 0 and stacked[1].sum() == 12
    assert audio.n_features(features="mfcc", n_mfcc=13, n_mels=40) == 13
    assert audio.n_features(features="logmel", n_mfcc=13, n_mels=40, deltas=True) == 120


def test_a_stereo_wav_is_read_as_the_mean_of_its_channels(tmp_path):
    left, right = tone(0.5, 300), tone(0.5, 700)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="FLOAT")
    signal, rate = audio.read_wav(path)
    assert rate == SR and signal.shape == left.shape and signal.dtype == np.float32
    np.testing.assert_allclose(signal, (left + right) / 2, atol=1e-6)


def test_wav_feature_set_gives_the_original_and_each_copy(tmp_path):
    signal = tone(0.8)
    path = tmp_path / "span.wav"
    sf.write(path, signal, SR, subtype="FLOAT")
    copies = audio.wav_feature_set(path, perturbations=("speed0.9", "pitch2"), n_mfcc=13)
    assert len(copies) == 3 and all(c.shape[1] == 13 for c in copies)
    np.testing.assert_array_equal(copies[0], wav_mfcc(path, n_mfcc=13))
    np.testing.assert_array_equal(copies[1], clip_mfcc(audio.perturb(signal, SR, speed=0.9), SR, n_mfcc=13))
    np.testing.assert_array_equal(copies[2], clip_mfcc(audio.perturb(signal, SR, semitones=2), SR, n_mfcc=13))
    short = tmp_path / "short.wav"
    sf.write(short, tone(0.01), SR)
    with pytest.raises(MediaError, match="short.wav"):
        audio.wav_feature_set(short)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav")
    with pytest.raises(MediaError, match="bad.wav"):
        audio.wav_feature_set(bad)


@pytest.mark.parametrize("function", [mfcc, audio.log_mel])
def test_a_stereo_signal_is_refused_naming_the_function(function):
    message = rf"^{function.__name__} expects a mono signal of shape \(n_samples,\), got \(2, 1000\)$"
    with pytest.raises(ConfigError, match=message):
        function(np.zeros((2, 1000), np.float32), SR)


def test_clip_features_pass_every_param_on(rng):
    signal = (tone(0.6, 300) + 0.05 * rng.normal(size=int(0.6 * SR))).astype(np.float32)
    params = {"n_mfcc": 13, "n_fft": 1024, "win_length": 800, "hop_length": 320, "n_mels": 20, "normalise": "none"}
    expected = mfcc(
        signal - np.float32(signal.mean()), SR, n_mfcc=13, n_fft=1024, win_length=800, hop_length=320, n_mels=20
    )
    np.testing.assert_array_equal(clip_mfcc(signal, SR, **params), expected)
    copies = audio.clip_feature_set(signal, SR, perturbations=("speed0.9",), **params)
    np.testing.assert_array_equal(copies[0], expected)
    np.testing.assert_array_equal(copies[1], clip_mfcc(audio.perturb(signal, SR, speed=0.9), SR, **params))


def test_float32_comes_out_whatever_float_goes_in(rng):
    features = rng.normal(size=(20, 3))  # float64
    assert standardise(features).dtype == audio.remove_mean(features).dtype == np.float32
    assert [o.dtype for o in audio.speaker_standardise([features, features[:5]], ["a", "b"])] == [np.float32] * 2
    assert audio.perturb(tone(0.2).astype(np.float64), SR, speed=1.1).dtype == np.float32


def test_messages_name_the_bad_value(rng):
    with pytest.raises(ConfigError, match=r"^cannot choose T \(audio.padded_frames=0\) from no training clips$"):
        mean_frames([])
    with pytest.raises(ConfigError, match="^the fixed number of frames must be positive, not 0$"):
        pad_or_truncate(np.zeros((3, 2)), 0)
    with pytest.raises(ConfigError, match="^3 clips but 1 speakers$"):
        audio.speaker_standardise([np.zeros((2, 2))] * 3, ["a"])

"""Room and channel copies (mmer.channel) and their names in audio.perturbations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from mmer import audio, channel
from mmer.config import AudioParams, parse_perturbation
from mmer.errors import ConfigError

SR = 16000


def speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Noise shaped into 5 syllables with gaps: a signal whose decays a room can smear."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    envelope = (np.sin(np.pi * 5 * np.arange(n) / n) > 0.3).astype(np.float32)
    return (0.3 * rng.standard_normal(n) * envelope).astype(np.float32)


def band_power(signal: np.ndarray, low: float, high: float) -> float:
    freqs, power = welch(signal, fs=SR, nperseg=1024)
    return float(power[(freqs >= low) & (freqs < high)].sum())


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2)))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("speed0.9", {"speed": 0.9}),
        ("pitch-2", {"semitones": -2.0}),
        ("reverb0.5", {"reverb_s": 0.5}),
        ("band300-3400", {"band_low_hz": 300.0, "band_high_hz": 3400.0}),
        ("noise15", {"snr_db": 15.0}),
        ("noise-5", {"snr_db": -5.0}),
        ("gain-12", {"gain_db": -12.0}),
    ],
)
def test_perturbation_names(name, expected):
    assert parse_perturbation(name) == expected
    assert AudioParams(perturbations=(name,)).perturbations == (name,)


@pytest.mark.parametrize(
    "bad", ["reverb", "reverb5", "reverb0.01", "band3400-300", "band300", "noise", "gainx", "echo1"]
)
def test_bad_channel_names_raise(bad):
    with pytest.raises(ConfigError, match="audio.perturbations.*reverbT"):
        parse_perturbation(bad)


def test_reverberation_fills_the_gaps_and_keeps_length_and_level():
    dry = speechlike()
    wet = audio.perturb(dry, SR, reverb_s=0.6)
    assert wet.dtype == np.float32 and len(wet) == len(dry)
    assert rms(wet) == pytest.approx(rms(dry), rel=1e-3)
    gap = np.abs(dry) == 0  # silent between syllables: the room's tail is heard there
    assert rms(dry[gap]) == 0 and rms(wet[gap]) > 0.1 * rms(wet)
    # a longer room leaves more energy in the gaps
    assert rms(audio.perturb(dry, SR, reverb_s=1.5)[gap]) > rms(audio.perturb(dry, SR, reverb_s=0.2)[gap])


def test_room_impulse_response_decays_by_60_db_in_rt60():
    response = channel.room_impulse_response(0.5, SR, rng=np.random.default_rng(0))
    assert response[0] == 1.0
    tail = response[1:].astype(np.float64) ** 2
    tenth = len(tail) // 10
    first, last = tail[:tenth].mean(), tail[-tenth:].mean()
    assert 10 * np.log10(first / last) == pytest.approx(54, abs=4)  # 0.9 of the 60 dB decay between the tenths' middles
    assert 10 * np.log10(1.0 / tail.sum()) == pytest.approx(channel.DIRECT_TO_REVERBERANT_DB, abs=1e-3)
    with pytest.raises(ConfigError):
        channel.room_impulse_response(10.0, SR, rng=np.random.default_rng(0))


def test_copies_are_the_same_every_run_and_differ_between_clips():
    a, b = speechlike(seed=1), speechlike(seed=2)
    for kwargs in ({"reverb_s": 0.5}, {"snr_db": 10.0}):
        np.testing.assert_array_equal(audio.perturb(a, SR, **kwargs), audio.perturb(a, SR, **kwargs))
        added_a = audio.perturb(a, SR, **kwargs) - a
        added_b = audio.perturb(b, SR, **kwargs) - b
        assert abs(np.corrcoef(added_a, added_b)[0, 1]) < 0.2  # another clip, another room / noise


def test_band_limit_removes_energy_outside_the_band():
    signal = speechlike()
    phone = audio.perturb(signal, SR, band_low_hz=300.0, band_high_hz=3400.0)
    assert len(phone) == len(signal) and rms(phone) == pytest.approx(rms(signal), rel=1e-3)
    inside = band_power(phone, 500, 3000) / band_power(signal, 500, 3000)
    assert band_power(phone, 5000, 8000) / band_power(signal, 5000, 8000) < 0.01 * inside
    assert band_power(phone, 0, 100) / band_power(signal, 0, 100) < 0.05 * inside
    lowpass = channel.band_limit(signal, SR, 0.0, 4000.0)
    assert band_power(lowpass, 6000, 8000) < 0.01 * band_power(signal, 6000, 8000)
    np.testing.assert_array_equal(channel.band_limit(signal, SR, 0.0, SR / 2), signal)
    with pytest.raises(ConfigError):
        channel.band_limit(signal, SR, 3000.0, 300.0)


def test_noise_at_the_given_snr_and_gain_in_db():
    signal = speechlike(2.0)
    noisy = audio.perturb(signal, SR, snr_db=10.0)
    noise = noisy - signal
    assert 10 * np.log10(np.mean(signal.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2)) == (
        pytest.approx(10.0, abs=0.2)
    )
    np.testing.assert_array_equal(channel.add_noise(np.zeros(100, np.float32), 10.0), np.zeros(100, np.float32))
    quieter = audio.perturb(signal, SR, gain_db=-6.0)
    assert 20 * np.log10(rms(quieter) / rms(signal)) == pytest.approx(-6.0, abs=1e-3)
    assert np.abs(audio.perturb(signal, SR, gain_db=40.0)).max() <= 1.0  # clipped, as a recorder would


def test_channel_copies_in_the_feature_set():
    signal = speechlike()
    names = ("reverb0.5", "band300-3400", "noise15", "gain-12")
    copies = audio.clip_feature_set(signal, SR, perturbations=names, n_mfcc=13, normalise="none")
    assert len(copies) == 5 and all(c.shape == copies[0].shape for c in copies)
    for k, name in enumerate(names, start=1):
        expected = audio.clip_mfcc(
            audio.perturb(signal, SR, **parse_perturbation(name)), SR, n_mfcc=13, normalise="none"
        )
        np.testing.assert_array_equal(copies[k], expected)
        assert not np.allclose(copies[k], copies[0])
    with pytest.raises(ConfigError):
        audio.perturb(signal, SR, band_low_hz=300.0)

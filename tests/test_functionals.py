"""mmer.functionals: per-clip prosodic and spectral functionals of synthetic signals with known answers."""

import numpy as np
import pytest
import soundfile as sf

from mmer.errors import ConfigError
from mmer.functionals import (
    DEFAULT_GROUPS,
    GROUPS,
    SEMITONE_REFERENCE_HZ,
    clip_functionals,
    functional_names,
    wav_functionals,
)

SR = 16000


def voiced(f0, seconds=1.0, *, amplitude=0.3, tilt=1.0):
    """A harmonic tone (10 harmonics, the k-th at tilt**k) with F0 ``f0`` (a number or a per-sample contour)."""
    n = int(seconds * SR)
    f0 = np.broadcast_to(np.asarray(f0, dtype=np.float64), (n,))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wave = sum(tilt**k * np.sin(k * phase) for k in range(1, 11))
    return (amplitude * wave / np.abs(wave).max()).astype(np.float32)


def named(values, groups=GROUPS):
    return dict(zip(functional_names(groups), values))


def semitones(hz):
    return 12 * np.log2(hz / SEMITONE_REFERENCE_HZ)


def test_one_value_per_name_in_the_fixed_group_order():
    signal = voiced(180.0)
    every = clip_functionals(signal, SR, groups=GROUPS)
    assert every.shape == (len(functional_names(GROUPS)),) and every.dtype == np.float32
    assert len(set(functional_names(GROUPS))) == len(every) and np.isfinite(every).all()
    # the output follows GROUPS' order whatever order the groups are asked in
    reordered = clip_functionals(signal, SR, groups=("rhythm", "pitch"))
    assert functional_names(("rhythm", "pitch")) == functional_names(("pitch", "rhythm"))
    assert np.allclose(reordered, [named(every)[n] for n in functional_names(("pitch", "rhythm"))])
    assert len(clip_functionals(signal, SR, groups=("pitch",))) == 10 and len(every) == 68
    assert DEFAULT_GROUPS == GROUPS and np.allclose(clip_functionals(signal, SR), every)


def test_pitch_is_in_semitones_and_an_octave_is_twelve():
    low, high = named(clip_functionals(voiced(150.0), SR)), named(clip_functionals(voiced(300.0), SR))
    assert low["f0_p50"] == pytest.approx(semitones(150.0), abs=0.3)
    assert high["f0_mean"] - low["f0_mean"] == pytest.approx(12.0, abs=0.3)
    assert low["f0_std"] < 0.3 and low["f0_range2080"] < 0.5
    assert low["voiced_fraction"] > 0.8 and low["voicing_probability"] > 0.5


def test_a_rising_glide_rises_and_a_falling_one_falls():
    glide = np.geomspace(120.0, 240.0, SR)  # one octave in one second: 12 semitones per second
    up, down = named(clip_functionals(voiced(glide), SR)), named(clip_functionals(voiced(glide[::-1]), SR))
    assert up["f0_rise"] == pytest.approx(12.0, rel=0.15) and up["f0_rise"] > 3 * up["f0_fall"]
    assert down["f0_fall"] == pytest.approx(12.0, rel=0.15) and down["f0_fall"] > 3 * down["f0_rise"]
    assert up["f0_range2080"] == pytest.approx(0.6 * 12.0, abs=1.5)


def test_four_times_the_amplitude_is_twelve_db_louder_and_the_same_pitch():
    soft, loud = (
        named(clip_functionals(voiced(200.0, amplitude=0.05), SR)),
        named(clip_functionals(voiced(200.0, amplitude=0.2), SR)),
    )
    assert loud["level_mean"] - soft["level_mean"] == pytest.approx(20 * np.log10(4), abs=0.2)
    assert loud["level_voiced_mean"] - soft["level_voiced_mean"] == pytest.approx(20 * np.log10(4), abs=0.2)
    assert loud["f0_mean"] == pytest.approx(soft["f0_mean"], abs=0.1)


def test_rhythm_counts_the_voiced_stretches():
    gap = np.zeros(SR // 2, np.float32)
    signal = np.concatenate([gap, voiced(200.0, 0.5), gap, voiced(200.0, 0.5), gap])  # 2.5 s, two syllables
    values = named(clip_functionals(signal, SR))
    assert values["voiced_fraction"] == pytest.approx(0.4, abs=0.06)
    assert values["voiced_segments_per_s"] == pytest.approx(2 / 2.5, abs=0.1)
    assert values["voiced_segment_s"] == pytest.approx(0.5, abs=0.08)
    assert values["unvoiced_segment_s"] == pytest.approx(0.5, abs=0.08)


def test_a_bright_voice_has_a_lower_alpha_ratio_than_a_dull_one():
    dull, bright = (named(clip_functionals(voiced(150.0, tilt=t), SR)) for t in (0.5, 1.0))
    assert dull["alpha_ratio_mean"] > bright["alpha_ratio_mean"] + 3
    assert dull["centroid_mean"] < bright["centroid_mean"]
    assert dull["hammarberg_mean"] > bright["hammarberg_mean"]


def test_silence_and_noise_give_finite_values_with_zero_voiced_groups():
    silence = named(clip_functionals(np.zeros(SR, np.float32), SR, groups=GROUPS))
    assert all(np.isfinite(v) for v in silence.values())
    assert silence["voiced_fraction"] == 0 and silence["f0_mean"] == 0 and silence["mfcc1_mean"] == 0
    noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    assert np.isfinite(clip_functionals(noise, SR, groups=GROUPS)).all()


def test_bad_signals_and_groups_are_refused():
    with pytest.raises(ConfigError, match="mono signal"):
        clip_functionals(np.zeros((2, SR), np.float32), SR)
    with pytest.raises(ConfigError, match="mono signal"):
        clip_functionals(np.zeros(100, np.float32), SR)
    with pytest.raises(ConfigError, match="functional groups"):
        clip_functionals(voiced(200.0), SR, groups=("pitch", "timbre"))
    with pytest.raises(ConfigError, match="functional groups"):
        functional_names(())


def test_wav_functionals_reads_the_span_wav(tmp_path):
    signal = voiced(220.0)
    sf.write(tmp_path / "span.wav", signal, SR, subtype="FLOAT")
    assert np.allclose(wav_functionals(tmp_path / "span.wav"), clip_functionals(signal, SR), atol=1e-4)

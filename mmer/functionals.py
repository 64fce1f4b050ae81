"""Prosodic and spectral functionals of a clip: one fixed-length vector per clip (pure functions).

A classical view of the voice beside the networks' MFCC and log-mel sequences, after the
parameter groups of eGeMAPS (Eyben et al. 2016, "The Geneva Minimalistic Acoustic Parameter
Set"), computed here with librosa (our own, simpler definitions; not openSMILE's):

- **pitch**: F0 by probabilistic YIN (0.2-semitone bins), in semitones above 27.5 Hz, over voiced frames:
  mean, standard deviation, 20th/50th/80th percentiles, their range, the mean rising and
  falling slopes over 50 ms (semitones per second), frame-to-frame F0 perturbation (a frame-level
  stand-in for jitter), and the mean voicing probability (a stand-in for harmonicity);
- **loudness**: frame RMS in dB: the same statistics and slopes, the voiced frames' mean,
  and frame-to-frame level perturbation over voiced frames (a stand-in for shimmer);
- **rhythm**: the voiced fraction, voiced segments per second, mean voiced and unvoiced
  segment lengths;
- **spectral**: over voiced frames, mean and standard deviation of the alpha ratio
  (50-1000 Hz against 1-5 kHz), the Hammarberg index (the strongest bin below 2 kHz
  against 2-5 kHz), the spectral slopes 0-500 Hz and 500-1500 Hz, centroid, bandwidth,
  roll-off, flatness and flux; the zero-crossing rate over all frames;
- **cepstral**: MFCC 1-12 mean and standard deviation over voiced frames.

Every value is a function of the clip alone (no speaker statistics); a clip with no voiced
frame gets zeros for its voiced-frame groups rather than NaN. The names of the values are
:func:`functional_names`, in the order of :func:`clip_functionals`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import librosa
import numpy as np

from mmer.config import FUNCTIONAL_GROUPS as GROUPS
from mmer.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_GROUPS = GROUPS  # all of them: 68 values
F0_MIN_HZ, F0_MAX_HZ = 65.0, 600.0
SEMITONE_REFERENCE_HZ = 27.5
FRAME_S, HOP_S = 0.04, 0.01
# probabilistic YIN at a fifth of a semitone and 50 thresholds (librosa's defaults: 0.1 and 100): about
# a quarter of the time (0.1-0.2 s for a 4 s clip), the same F0 to the median frame on real speech
PITCH_RESOLUTION, PITCH_THRESHOLDS = 0.2, 50
SLOPE_FRAMES = 5  # rising and falling slopes over 50 ms
EPSILON = 1e-10
_STATS = ("mean", "std", "p20", "p50", "p80", "range2080", "rise", "fall")


def _contour_stats(values: np.ndarray, mask: np.ndarray, hop_s: float) -> np.ndarray:
    """Mean, std, percentiles 20/50/80, their range, mean rising and falling slope per second."""
    picked = values[mask]
    if picked.size == 0:
        return np.zeros(len(_STATS))
    p20, p50, p80 = np.percentile(picked, [20, 50, 80])
    # slopes over SLOPE_FRAMES frames whose every frame is in the mask (over one frame, the pitch
    # track's bins would quantise them)
    lag = SLOPE_FRAMES
    inside = np.convolve(mask.astype(np.int32), np.ones(lag + 1, np.int32), mode="valid") == lag + 1
    slopes = (values[lag:] - values[:-lag])[inside] / (lag * hop_s) if len(values) > lag else np.zeros(0)
    rise = slopes[slopes > 0].mean() if (slopes > 0).any() else 0.0
    fall = -slopes[slopes < 0].mean() if (slopes < 0).any() else 0.0
    return np.array([picked.mean(), picked.std(), p20, p50, p80, p80 - p20, rise, fall])


def _perturbation(values: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute change between consecutive frames of ``mask``."""
    both = mask[1:] & mask[:-1]
    return float(np.abs(np.diff(values))[both].mean()) if both.any() else 0.0


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths (frames) of the runs of True and of False in ``mask``."""
    edges = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    bounds = np.concatenate([[0], edges, [len(mask)]])
    lengths = np.diff(bounds)
    starts_true = bool(mask[0]) if len(mask) else False
    kinds = (np.arange(len(lengths)) % 2 == 0) == starts_true
    return lengths[kinds], lengths[~kinds]


def _mean_std(values: np.ndarray, mask: np.ndarray) -> list[float]:
    picked = values[mask] if mask.any() else np.zeros(1)
    return [float(picked.mean()), float(picked.std())]


def _band_db(power: np.ndarray, freqs: np.ndarray, low: float, high: float) -> np.ndarray:
    band = (freqs >= low) & (freqs < high)
    return 10 * np.log10(power[band].sum(axis=0) + EPSILON)


def _band_slope(log_power: np.ndarray, freqs: np.ndarray, low: float, high: float) -> np.ndarray:
    """Least-squares slope (dB per kHz) of each frame's log power spectrum between two frequencies."""
    band = (freqs >= low) & (freqs <= high)
    x = freqs[band] / 1000.0
    x = x - x.mean()
    return (x[:, None] * log_power[band]).sum(axis=0) / (x**2).sum()


def functional_names(groups: Sequence[str] = DEFAULT_GROUPS) -> list[str]:
    """The names of :func:`clip_functionals`'s values for ``groups``, in order."""
    _check_groups(groups)
    names: list[str] = []
    for group in GROUPS:
        if group not in groups:
            continue
        if group == "pitch":
            names += [f"f0_{s}" for s in _STATS] + ["f0_perturbation", "voicing_probability"]
        elif group == "loudness":
            names += [f"level_{s}" for s in _STATS] + ["level_voiced_mean", "level_perturbation"]
        elif group == "rhythm":
            names += ["voiced_fraction", "voiced_segments_per_s", "voiced_segment_s", "unvoiced_segment_s"]
        elif group == "spectral":
            for feature in (
                "alpha_ratio",
                "hammarberg",
                "slope_0_500",
                "slope_500_1500",
                "centroid",
                "bandwidth",
                "rolloff",
                "flatness",
                "flux",
            ):
                names += [f"{feature}_mean", f"{feature}_std"]
            names += ["zcr_mean", "zcr_std"]
        else:
            names += [f"mfcc{k}_{s}" for k in range(1, 13) for s in ("mean", "std")]
    return names


def _check_groups(groups: Sequence[str]) -> None:
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise ConfigError(f"functional groups {list(groups)}: each must be one of {list(GROUPS)}")


def clip_functionals(signal: np.ndarray, sample_rate: int, *, groups: Sequence[str] = DEFAULT_GROUPS) -> np.ndarray:
    """The functionals of one mono clip (see the module docstring).

    Parameters
    ----------
    signal : ndarray [n_samples]
        Mono speech, silence already trimmed.
    sample_rate : int
    groups : sequence of str
        Which groups of :data:`GROUPS`, in any order; the output follows :data:`GROUPS`' order.

    Returns
    -------
    ndarray [len(functional_names(groups))], float32
    """
    _check_groups(groups)
    signal = np.asarray(signal, dtype=np.float32)
    frame = int(round(FRAME_S * sample_rate))
    hop = int(round(HOP_S * sample_rate))
    if signal.ndim != 1 or len(signal) < frame:
        raise ConfigError(f"functionals need a mono signal of at least {frame} samples, got shape {signal.shape}")
    n_fft = int(2 ** np.ceil(np.log2(frame)))
    pitch_frame = int(2 ** np.ceil(np.log2(4 * sample_rate / F0_MIN_HZ)))  # four periods of the lowest F0
    f0, voiced, probability = librosa.pyin(
        signal,
        fmin=F0_MIN_HZ,
        fmax=F0_MAX_HZ,
        sr=sample_rate,
        frame_length=pitch_frame,
        hop_length=hop,
        center=True,
        resolution=PITCH_RESOLUTION,
        n_thresholds=PITCH_THRESHOLDS,
    )
    power = np.abs(librosa.stft(signal, n_fft=n_fft, hop_length=hop, win_length=frame, center=True)) ** 2
    n = min(power.shape[1], len(f0))
    power, f0, voiced, probability = power[:, :n], f0[:n], voiced[:n], probability[:n]
    semitones = 12 * np.log2(np.where(voiced, np.nan_to_num(f0, nan=F0_MIN_HZ), 1.0) / SEMITONE_REFERENCE_HZ)
    level = 10 * np.log10(power.mean(axis=0) + EPSILON)
    values: list[float] = []
    for group in GROUPS:
        if group not in groups:
            continue
        if group == "pitch":
            values += list(_contour_stats(semitones, voiced, HOP_S))
            values += [_perturbation(semitones, voiced), float(np.nanmean(probability)) if n else 0.0]
        elif group == "loudness":
            values += list(_contour_stats(level, np.ones(n, bool), HOP_S))
            values += [_mean_std(level, voiced)[0], _perturbation(level, voiced)]
        elif group == "rhythm":
            on, off = _runs(voiced)
            seconds = n * HOP_S
            values += [
                float(voiced.mean()) if n else 0.0,
                len(on) / max(seconds, HOP_S),
                float(on.mean() * HOP_S) if len(on) else 0.0,
                float(off.mean() * HOP_S) if len(off) else 0.0,
            ]
        elif group == "spectral":
            freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
            log_power = 10 * np.log10(power + EPSILON)
            low = (freqs < 2000) & (freqs > 0)
            mid = (freqs >= 2000) & (freqs < 5000)
            per_frame = [
                _band_db(power, freqs, 50, 1000) - _band_db(power, freqs, 1000, 5000),
                log_power[low].max(axis=0) - log_power[mid].max(axis=0),
                _band_slope(log_power, freqs, 0, 500),
                _band_slope(log_power, freqs, 500, 1500),
                librosa.feature.spectral_centroid(S=power, sr=sample_rate)[0] / 1000.0,
                librosa.feature.spectral_bandwidth(S=power, sr=sample_rate)[0] / 1000.0,
                librosa.feature.spectral_rolloff(S=power, sr=sample_rate)[0] / 1000.0,
                librosa.feature.spectral_flatness(S=power)[0],
                np.concatenate([[0.0], np.sqrt((np.diff(np.sqrt(power), axis=1) ** 2).sum(axis=0))]),
            ]
            for contour in per_frame:
                values += _mean_std(contour[:n], voiced)
            zcr = librosa.feature.zero_crossing_rate(signal, frame_length=frame, hop_length=hop)[0]
            values += [float(zcr.mean()), float(zcr.std())]
        else:
            mel = librosa.feature.melspectrogram(S=power, sr=sample_rate, n_mels=40)
            cepstra = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)[1:13, :n]
            for row in cepstra:
                values += _mean_std(row, voiced)
    return np.asarray(values, dtype=np.float32)


def wav_functionals(path: str | Path, *, groups: Sequence[str] = DEFAULT_GROUPS) -> np.ndarray:
    """:func:`clip_functionals` of a span wav (the I/O edge; the feature stage maps it over clips)."""
    from mmer.audio import read_wav

    signal, sample_rate = read_wav(path)
    return clip_functionals(signal, sample_rate, groups=groups)


def warm_up(sample_rate: int = 16000) -> None:
    """Compute the functionals of one second of a synthetic vowel, and forget them.

    librosa's pitch tracker is compiled by numba on its first call and cached on disk (in
    librosa's ``__pycache__``). Processes that compile it at the same time, with no cache yet,
    can crash (a fresh installation's test run lost processes that way: pool workers, and
    test processes beside another compiling it), while loading the cached code is safe. So it
    is compiled once, by one process: by ``make venv``, by a stage before its pool starts, by a
    :class:`mmer.predictor.Predictor` with a functionals view before it loads TensorFlow, and by
    the test session before pytest-xdist starts its workers.
    """
    t = np.arange(sample_rate) / sample_rate
    vowel = sum(np.sin(2 * np.pi * 150.0 * k * t) / k for k in range(1, 6)).astype(np.float32)
    clip_functionals(0.1 * vowel, sample_rate)

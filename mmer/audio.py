"""MFCC features of the speech span: pure functions (arrays in, arrays out) and the cache builder.

Per clip: 24 MFCCs (``n_mfcc``) over time, standardised per clip (every coefficient zero
mean and unit variance over the clip's frames, so the whole matrix is too), then pre-padded
with zeros (or truncated) to a fixed number of frames ``T``. The array is time-major,
``[T, n_coefficients]``, ready for a recurrent network. Zeros sit at the start so the
last steps a forward LSTM sees are speech.

Options for real speech (defaults keep the above): log-mel energies instead of MFCCs
(``features='logmel'``), no per-clip standardisation (``normalise='none'``: loudness and
the spread of each coefficient carry emotion; the model then standardises with statistics
of the training speakers), and perturbed copies of a signal (:func:`perturb`: speed, pitch,
and the room and channel copies of :mod:`mmer.channel`) that the feature stage stores beside
the originals for training only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from mmer.config import FEATURE_KINDS, NORMALISATIONS, AudioParams, parse_perturbation
from mmer.errors import ConfigError, MediaError

logger = logging.getLogger(__name__)

EPSILON = 1e-8
LOG_MEL_FLOOR_DB = -100.0  # log-mel energies below this (digital silence) are clipped to it


def _checked_signal(signal: np.ndarray, what: str, *, n_fft: int, win_length: int) -> np.ndarray:
    """A mono float32 signal long enough for one analysis frame (``center=False``), or ConfigError."""
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ConfigError(f"{what} expects a mono signal of shape (n_samples,), got {signal.shape}")
    if win_length > n_fft:
        raise ConfigError(f"audio.win_length ({win_length}) must not exceed audio.n_fft ({n_fft})")
    if len(signal) < max(win_length, n_fft):
        raise ConfigError(f"signal of {len(signal)} samples is shorter than one window ({max(win_length, n_fft)})")
    return signal


def mfcc(
    signal: np.ndarray,
    sample_rate: int,
    *,
    n_mfcc: int = AudioParams.n_mfcc,
    n_fft: int = AudioParams.n_fft,
    win_length: int = AudioParams.win_length,
    hop_length: int = AudioParams.hop_length,
    n_mels: int = AudioParams.n_mels,
    deltas: bool = AudioParams.deltas,
) -> np.ndarray:
    """MFCCs of a mono signal, time-major.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,)
        Mono audio, float.
    sample_rate : int
        Hz.
    n_mfcc, n_fft, win_length, hop_length, n_mels
        As in :func:`librosa.feature.mfcc` (window and hop in samples).
    deltas : bool
        Append first and second derivatives (3 * n_mfcc columns).

    Returns
    -------
    ndarray, shape (speech_frames, n_mfcc) or (speech_frames, 3 * n_mfcc), float32
    """
    signal = _checked_signal(signal, "mfcc", n_fft=n_fft, win_length=win_length)
    coefficients = librosa.feature.mfcc(
        y=signal,
        sr=sample_rate,
        n_mfcc=n_mfcc,
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        n_mels=n_mels,
        center=False,
    )
    return _with_deltas(coefficients, deltas).T.astype(np.float32)


def log_mel(
    signal: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = AudioParams.n_fft,
    win_length: int = AudioParams.win_length,
    hop_length: int = AudioParams.hop_length,
    n_mels: int = AudioParams.n_mels,
    deltas: bool = AudioParams.deltas,
) -> np.ndarray:
    """Log mel-band energies (dB, floored at ``LOG_MEL_FLOOR_DB``) of a mono signal, time-major.

    The same framing as :func:`mfcc` (``center=False``), so a clip has as many frames with
    either feature. An absolute dB scale (re 1.0, not re the clip's maximum) keeps loudness.

    Returns
    -------
    ndarray, shape (speech_frames, n_mels) or (speech_frames, 3 * n_mels), float32
    """
    signal = _checked_signal(signal, "log_mel", n_fft=n_fft, win_length=win_length)
    power = librosa.feature.melspectrogram(
        y=signal, sr=sample_rate, n_fft=n_fft, win_length=win_length, hop_length=hop_length, n_mels=n_mels, center=False
    )
    energies = np.maximum(librosa.power_to_db(power, ref=1.0, top_db=None), LOG_MEL_FLOOR_DB)
    return _with_deltas(energies, deltas).T.astype(np.float32)


def _with_deltas(coefficients: np.ndarray, deltas: bool) -> np.ndarray:
    """``[c, speech_frames]`` -> ``[3c, speech_frames]`` with first and second derivatives (when asked)."""
    if not deltas:
        return coefficients
    width = min(9, coefficients.shape[1] - (1 - coefficients.shape[1] % 2))
    if width >= 3:
        d1 = librosa.feature.delta(coefficients, width=width, order=1)
        d2 = librosa.feature.delta(coefficients, width=width, order=2)
    else:
        d1 = d2 = np.zeros_like(coefficients)
    return np.concatenate([coefficients, d1, d2], axis=0)


def perturb(
    signal: np.ndarray,
    sample_rate: int,
    *,
    speed: float = 1.0,
    semitones: float = 0.0,
    reverb_s: float = 0.0,
    band_low_hz: float | None = None,
    band_high_hz: float | None = None,
    snr_db: float | None = None,
    gain_db: float = 0.0,
) -> np.ndarray:
    """A perturbed copy of a mono signal (offline data augmentation).

    Each copy usually changes one thing (:func:`mmer.config.parse_perturbation` names one);
    given several, they apply in the order of the parameters.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,)
    sample_rate : int
    speed : float
        Tempo and pitch together, as in Kaldi's speed perturbation: 1.1 is 10% faster
        and higher (the signal is resampled and played at the original rate).
    semitones : float
        Pitch only, tempo kept (:func:`librosa.effects.pitch_shift`).
    reverb_s : float
        A simulated room with this reverberation time (:func:`mmer.channel.reverberate`); 0: none.
    band_low_hz, band_high_hz : float, optional
        A band-pass channel (:func:`mmer.channel.band_limit`), both given or neither.
    snr_db : float, optional
        White noise at this signal-to-noise ratio (:func:`mmer.channel.add_noise`).
    gain_db : float
        Level change (:func:`mmer.channel.gain`).

    Returns
    -------
    ndarray, float32
        As long as the signal, except with ``speed``.
    """
    from fractions import Fraction

    from scipy.signal import resample_poly

    from mmer import channel

    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ConfigError(f"perturb expects a mono signal of shape (n_samples,), got {signal.shape}")
    if not 0.5 <= speed <= 2.0:
        raise ConfigError(f"speed factor must be in [0.5, 2], not {speed}")
    if (band_low_hz is None) != (band_high_hz is None):
        raise ConfigError("a band needs both band_low_hz and band_high_hz")
    out = signal
    if speed != 1.0:
        ratio = Fraction(speed).limit_denominator(100)
        out = resample_poly(out, ratio.denominator, ratio.numerator).astype(np.float32)
    if semitones:
        out = librosa.effects.pitch_shift(out, sr=sample_rate, n_steps=float(semitones))
    if reverb_s:
        out = channel.reverberate(out, sample_rate, reverb_s)
    if band_low_hz is not None and band_high_hz is not None:
        out = channel.band_limit(out, sample_rate, band_low_hz, band_high_hz)
    if gain_db:
        out = channel.gain(out, gain_db)
    if snr_db is not None:
        out = channel.add_noise(out, snr_db)
    return out.astype(np.float32)


def standardise(features: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column over the clip's frames (a constant column becomes 0).

    Parameters
    ----------
    features : ndarray, shape (speech_frames, n_features)

    Returns
    -------
    ndarray, same shape, float32
    """
    features = np.asarray(features, dtype=np.float32)
    mean = features.mean(axis=0, keepdims=True)
    std = features.std(axis=0, keepdims=True)
    return ((features - mean) / np.maximum(std, EPSILON)).astype(np.float32)


def pad_or_truncate(features: np.ndarray, length: int) -> np.ndarray:
    """Pre-pad with zeros, or truncate the tail, to exactly ``length`` frames.

    Parameters
    ----------
    features : ndarray, shape (speech_frames, n_features)
    length : int
        T, the fixed number of frames.

    Returns
    -------
    ndarray, shape (length, n_features)
    """
    if length < 1:
        raise ConfigError(f"the fixed number of frames must be positive, not {length}")
    speech_frames = len(features)
    if speech_frames >= length:
        return features[:length]
    pad = np.zeros((length - speech_frames, features.shape[1]), dtype=features.dtype)
    return np.concatenate([pad, features], axis=0)


def clip_mfcc(
    signal: np.ndarray,
    sample_rate: int,
    *,
    n_mfcc: int = AudioParams.n_mfcc,
    n_fft: int = AudioParams.n_fft,
    win_length: int = AudioParams.win_length,
    hop_length: int = AudioParams.hop_length,
    n_mels: int = AudioParams.n_mels,
    deltas: bool = AudioParams.deltas,
    features: str = AudioParams.features,
    normalise: str = AudioParams.normalise,
    perturbations: Sequence[str] = AudioParams.perturbations,
) -> np.ndarray:
    """Features of one speech span, unpadded (``[speech_frames, n_features]``).

    ``features`` picks MFCCs (``n_mfcc`` of them) or log-mel energies (``n_mels``);
    ``normalise='clip'`` standardises them per clip; ``'cmn'`` removes each column's mean
    over the clip only (:func:`remove_mean`); ``'none'`` and ``'speaker'`` leave them raw
    (speaker statistics need all of a speaker's clips: :func:`speaker_standardise`).
    ``perturbations`` is not used here (see :func:`clip_feature_set`). The span's mean (a DC
    offset) is removed first.
    """
    if features not in FEATURE_KINDS:
        raise ConfigError(f"audio.features must be one of {list(FEATURE_KINDS)}, not {features!r}")
    if normalise not in NORMALISATIONS:
        raise ConfigError(f"audio.normalise must be one of {list(NORMALISATIONS)}, not {normalise!r}")
    framing = {"n_fft": n_fft, "win_length": win_length, "hop_length": hop_length, "n_mels": n_mels, "deltas": deltas}
    # a constant offset (a DC bias of the recording chain) is not voice: it would go straight into
    # the lowest mel bands and so into every coefficient
    signal = np.asarray(signal, dtype=np.float32)
    if signal.size:
        signal = signal - np.float32(signal.mean())
    if features == "mfcc":
        values = mfcc(signal, sample_rate, n_mfcc=n_mfcc, **framing)
    else:
        values = log_mel(signal, sample_rate, **framing)
    if normalise == "clip":
        return standardise(values)
    return remove_mean(values) if normalise == "cmn" else values


def remove_mean(features: np.ndarray) -> np.ndarray:
    """Each column minus its mean over the clip's frames (cepstral mean normalisation).

    A fixed recording channel (a linear filter) and the speaker's average spectrum are a
    constant offset of every frame's cepstrum or log-mel energies, and go; the spread of
    each column and its changes over time (loudness contour, pitch movement) stay. The
    mean of the deltas is close to 0 anyway.

    Parameters
    ----------
    features : ndarray, shape (speech_frames, n_features)

    Returns
    -------
    ndarray, same shape, float32
    """
    features = np.asarray(features, dtype=np.float32)
    return (features - features.mean(axis=0, keepdims=True)).astype(np.float32)


def speaker_standardise(features: Sequence[np.ndarray], speakers: Sequence[object]) -> list[np.ndarray]:
    """Standardise each clip with the statistics of all frames of its speaker's clips.

    Speaker normalisation is the classic remedy for speaker variability in emotion
    recognition: what is left is how a clip departs from the speaker's usual voice. It uses
    the speaker's unlabelled speech only (never a label), but it needs that speech: at test
    time, several clips of every test speaker. A single new clip cannot be normalised so.

    Parameters
    ----------
    features : sequence of ndarray [n_frames_i, c]
        Raw (unnormalised) features of each clip.
    speakers : sequence
        The speaker of each clip (any hashable); clips of one speaker share the statistics.

    Returns
    -------
    list of ndarray [n_frames_i, c], float32
    """
    if len(features) != len(speakers):
        raise ConfigError(f"{len(features)} clips but {len(speakers)} speakers")
    by_speaker: dict[object, list[int]] = {}
    for row, speaker in enumerate(speakers):
        by_speaker.setdefault(speaker, []).append(row)
    out: list[np.ndarray] = [np.empty(0)] * len(features)
    for rows in by_speaker.values():
        frames = np.concatenate([features[r] for r in rows]).astype(np.float64)
        mean, std = frames.mean(axis=0), np.maximum(frames.std(axis=0), EPSILON)
        for r in rows:
            out[r] = ((features[r] - mean) / std).astype(np.float32)
    return out


def clip_feature_set(
    signal: np.ndarray, sample_rate: int, *, perturbations: Sequence[str] = AudioParams.perturbations, **params
) -> list[np.ndarray]:
    """Features of a span and of each perturbed copy of it: ``[original, *perturbed]``.

    ``params`` are those of :func:`clip_mfcc`; ``perturbations`` names the copies
    (see :func:`parse_perturbation`).
    """
    copies = [clip_mfcc(signal, sample_rate, **params)]
    for name in perturbations:
        copies.append(clip_mfcc(perturb(signal, sample_rate, **parse_perturbation(name)), sample_rate, **params))
    return copies


def n_features(
    *,
    features: str = AudioParams.features,
    n_mfcc: int = AudioParams.n_mfcc,
    n_mels: int = AudioParams.n_mels,
    deltas: bool = AudioParams.deltas,
    **_: object,
) -> int:
    """Columns per frame for these feature params."""
    return (n_mfcc if features == "mfcc" else n_mels) * (3 if deltas else 1)


def speech_mask(speech_frames: np.ndarray, length: int) -> np.ndarray:
    """Which frames of zero pre-padded clips are speech: bool ``[n, length]``.

    The last ``min(speech_frames, length)`` frames of each clip are speech (see :func:`pad_or_truncate`).
    """
    lengths = np.clip(np.asarray(speech_frames), 1, length)
    return np.arange(length)[None, :] >= (length - lengths)[:, None]


# A clip more than this many times the median length is an outlier (a long recording in a
# corpus of utterances): it is left out of T's mean, so it cannot make every clip mostly padding.
OUTLIER_LENGTH_RATIO = 4.0


def long_clips(lengths: Sequence[int]) -> np.ndarray:
    """Positions of the clips longer than ``OUTLIER_LENGTH_RATIO`` times the median length."""
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.size == 0:
        return np.zeros(0, dtype=int)
    return np.flatnonzero(lengths > OUTLIER_LENGTH_RATIO * np.median(lengths))


def mean_frames(lengths: Sequence[int]) -> int:
    """T by default: the rounded mean number of frames (of the training split's clips).

    Clips longer than ``OUTLIER_LENGTH_RATIO`` times the median are left out of the mean (see
    :func:`long_clips`); on a corpus of utterances that leaves the mean unchanged.
    """
    if len(lengths) == 0:
        raise ConfigError("cannot choose T (audio.padded_frames=0) from no training clips")
    lengths = np.asarray(lengths, dtype=np.float64)
    kept = np.delete(lengths, long_clips(lengths))
    return max(1, int(round(float(np.mean(kept)))))


def stack_padded(features: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Pad or truncate every clip to ``length`` frames and stack: ``[n, length, n_features]``."""
    return np.stack([pad_or_truncate(f, length) for f in features]).astype(np.float32)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a wav written by the trim stage (mono float32 and its rate)."""
    try:
        signal, sample_rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (RuntimeError, sf.LibsndfileError) as err:
        raise MediaError(f"{path}: cannot read span audio: {err}") from err
    if signal.ndim > 1:
        signal = signal.mean(axis=1)
    return signal, int(sample_rate)


def wav_mfcc(path: str | Path, **params) -> np.ndarray:
    """The per-clip work of the ``audio_features`` stage: read a span wav, return its MFCCs.

    Raises
    ------
    MediaError
        The wav cannot be read, or is too short for one analysis window.
    """
    signal, sample_rate = read_wav(path)
    try:
        return clip_mfcc(signal, sample_rate, **params)
    except ConfigError as err:
        raise MediaError(f"{path}: {err}") from err


def wav_feature_set(path: str | Path, **params) -> list[np.ndarray]:
    """Like :func:`wav_mfcc`, with the perturbed copies: ``[original, *perturbed]``."""
    signal, sample_rate = read_wav(path)
    try:
        return clip_feature_set(signal, sample_rate, **params)
    except ConfigError as err:
        raise MediaError(f"{path}: {err}") from err

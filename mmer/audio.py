"""MFCC features of the speech span: pure functions (arrays in, arrays out) and the cache builder.

Per clip: 24 MFCCs (``n_mfcc``) over time, standardised per clip (every coefficient zero
mean and unit variance over the clip's frames, so the whole matrix is too), then pre-padded
with zeros (or truncated) to a fixed number of frames ``T``. The array is time-major,
``[T, n_coefficients]``, ready for a recurrent network. Zeros sit at the start so the
last steps a forward LSTM sees are speech.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

from mmer.errors import ConfigError, MediaError

logger = logging.getLogger(__name__)

EPSILON = 1e-8


def mfcc(
    signal: np.ndarray,
    sample_rate: int,
    *,
    n_mfcc: int = 24,
    n_fft: int = 512,
    win_length: int = 400,
    hop_length: int = 160,
    n_mels: int = 40,
    deltas: bool = False,
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
    ndarray, shape (n_frames, n_mfcc) or (n_frames, 3 * n_mfcc), float32
    """
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ConfigError(f"mfcc expects a mono signal of shape (n_samples,), got {signal.shape}")
    if win_length > n_fft:
        raise ConfigError(f"audio.win_length ({win_length}) must not exceed audio.n_fft ({n_fft})")
    if len(signal) < win_length:
        raise ConfigError(f"signal of {len(signal)} samples is shorter than one window ({win_length})")
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
    if deltas:
        width = min(9, coefficients.shape[1] - (1 - coefficients.shape[1] % 2))
        if width >= 3:
            d1 = librosa.feature.delta(coefficients, width=width, order=1)
            d2 = librosa.feature.delta(coefficients, width=width, order=2)
        else:
            d1 = d2 = np.zeros_like(coefficients)
        coefficients = np.concatenate([coefficients, d1, d2], axis=0)
    return coefficients.T.astype(np.float32)


def standardise(features: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column over the clip's frames (a constant column becomes 0).

    Parameters
    ----------
    features : ndarray, shape (n_frames, n_features)

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
    features : ndarray, shape (n_frames, n_features)
    length : int
        T, the fixed number of frames.

    Returns
    -------
    ndarray, shape (length, n_features)
    """
    if length < 1:
        raise ConfigError(f"the fixed number of frames must be positive, not {length}")
    n_frames = len(features)
    if n_frames >= length:
        return features[:length]
    pad = np.zeros((length - n_frames, features.shape[1]), dtype=features.dtype)
    return np.concatenate([pad, features], axis=0)


def clip_mfcc(
    signal: np.ndarray,
    sample_rate: int,
    *,
    n_mfcc: int = 24,
    n_fft: int = 512,
    win_length: int = 400,
    hop_length: int = 160,
    n_mels: int = 40,
    deltas: bool = False,
) -> np.ndarray:
    """Standardised MFCCs of one speech span, unpadded (``[n_frames, n_features]``)."""
    return standardise(
        mfcc(
            signal,
            sample_rate,
            n_mfcc=n_mfcc,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            n_mels=n_mels,
            deltas=deltas,
        )
    )


def mean_frames(lengths: Sequence[int]) -> int:
    """T by default: the rounded mean number of frames (of the training split's clips)."""
    if len(lengths) == 0:
        raise ConfigError("cannot choose T (audio.max_frames=0) from no training clips")
    return max(1, int(round(float(np.mean(lengths)))))


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

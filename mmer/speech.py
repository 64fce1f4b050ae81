"""The speech span: where speech starts and ends in a clip (pure), and the trim stage's per-clip function."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal

from mmer.config import SpanParams
from mmer.errors import ConfigError, MediaError, NoSpeechError
from mmer.media import MediaInfo, probe_and_read_audio, read_audio, write_wav

logger = logging.getLogger(__name__)


# The span params and their defaults (tuned on real RAVDESS speech, actors 01-18) are
# mmer.config.SpanParams; the constants below are fixed parts of the algorithm.
# Levels are measured above this frequency: room rumble and handling noise live below it,
# the energy of speech (even of a low male voice, in its harmonics) above it.
HIGHPASS_HZ = 100.0


# A region (after joining) counts as speech only when it lasts MIN_REGION_S and its loudest
# frame is within REGION_PEAK_DB of the clip's loudest: shorter ones are clicks, weaker ones
# before or after the utterance are breaths, lip noise and thumps (on RAVDESS every extra
# region weaker than -15 dB was one of those; parts of the sentence peak above -12 dB).
MIN_REGION_S = 0.1


REGION_PEAK_DB = 15.0


# The loudest frame must be this loud in absolute terms (dB re full scale) ...
MIN_PEAK_DBFS = -70.0


# ... and this far above the noise floor (the NOISE_PERCENTILE-th percentile of frame levels):
# a flat energy profile (hum, hiss, room tone) holds no speech. Tightly trimmed real speech
# still has 15 dB or more; white noise 1-2 dB.
MIN_DYNAMIC_RANGE_DB = 10.0


NOISE_PERCENTILE = 5.0


# Speech frames are also at least this far above the noise floor (matters in noisy clips only:
# on RAVDESS the floor is 48 dB or more below the peak).
NOISE_MARGIN_DB = 10.0


def highpass(signal: np.ndarray, sample_rate: int, *, cutoff_hz: float = HIGHPASS_HZ) -> np.ndarray:
    """Zero-phase 2nd-order Butterworth high-pass (removes rumble below ``cutoff_hz``).

    Returns
    -------
    ndarray, float64, shape (n_samples,)
    """
    signal = np.asarray(signal, dtype=np.float64)
    if cutoff_hz <= 0 or len(signal) < 16:
        return signal
    sos = scipy.signal.butter(2, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
    return scipy.signal.sosfiltfilt(sos, signal, padlen=min(len(signal) - 1, 3 * 2 * len(sos)))


def frame_levels_db(signal: np.ndarray, sample_rate: int, *, frame_s: float = SpanParams.frame_s) -> np.ndarray:
    """RMS level of consecutive non-overlapping frames in dB re full scale.

    The last partial frame is kept (zero-padded). Digital silence gives -200 dB.

    Returns
    -------
    ndarray, float64, shape (n_frames,)
    """
    frame = max(1, int(round(frame_s * sample_rate)))
    n_frames = max(1, math.ceil(len(signal) / frame))
    padded = np.zeros(n_frames * frame, dtype=np.float64)
    padded[: len(signal)] = signal
    rms = np.sqrt(np.mean(padded.reshape(n_frames, frame) ** 2, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-10))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) frame index pairs of the runs of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _loud_frames(levels: np.ndarray, threshold_db: float) -> np.ndarray:
    """The frames above ``threshold_db`` re the loudest and ``NOISE_MARGIN_DB`` above the noise floor."""
    peak_db = float(levels.max())
    floor_db = float(np.percentile(levels, NOISE_PERCENTILE))
    return levels > max(peak_db + threshold_db, floor_db + NOISE_MARGIN_DB)


def speech_frames(
    signal: np.ndarray,
    sample_rate: int,
    *,
    threshold_db: float = SpanParams.threshold_db,
    frame_s: float = SpanParams.frame_s,
) -> np.ndarray:
    """Which frames of ``frame_s`` are speech by the frame test of :func:`speech_span`.

    Only the level test (high-passed, ``threshold_db`` re the loudest frame, above the noise
    floor); no joining across pauses and no region filter: the speech mask of a long
    recording, whose windows :mod:`mmer.timeline` weighs by their share of speech frames.

    Returns
    -------
    ndarray, bool, shape (n_frames,)
        All False for an empty signal or digital silence.
    """
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ConfigError(f"speech_frames needs mono audio of shape (n,), not {signal.shape}")
    if len(signal) == 0:
        return np.zeros(0, dtype=bool)
    levels = frame_levels_db(highpass(signal, sample_rate), sample_rate, frame_s=frame_s)
    if levels.max() < MIN_PEAK_DBFS:
        return np.zeros(len(levels), dtype=bool)
    return _loud_frames(levels, threshold_db)


def speech_span(
    signal: np.ndarray,
    sample_rate: int,
    *,
    threshold_db: float = SpanParams.threshold_db,
    frame_s: float = SpanParams.frame_s,
    min_silence_s: float = SpanParams.min_silence_s,
    pad_s: float = SpanParams.pad_s,
) -> tuple[float, float]:
    """The span from the first to the last speech region of a clip, padded.

    The signal is high-passed at ``HIGHPASS_HZ`` (room rumble and thumps), cut into frames
    of ``frame_s`` (not overlapping), and the RMS level of each frame is taken in dB. Frames
    above ``threshold_db`` relative to the clip's loudest frame — and at least
    ``NOISE_MARGIN_DB`` above the noise floor, which only matters in noisy clips — are
    speech. Runs of speech frames separated by less than ``min_silence_s`` are joined (pauses
    inside an utterance do not split it). A joined region counts only when it lasts
    ``MIN_REGION_S`` (shorter: a click) and its loudest frame is within ``REGION_PEAK_DB``
    of the clip's loudest (weaker: a breath, a lip smack, a thump before or after the
    utterance). The span runs from the first to the last region, padded by ``pad_s`` on
    both sides and clamped to the clip.

    The defaults were tuned by eye on plots of real RAVDESS speech (actors 01-18): they cut
    the room noise at both ends and keep soft onsets and the decaying end of the sentence.

    Parameters
    ----------
    signal : ndarray, shape (n_samples,)
        Mono audio, float in [-1, 1].
    sample_rate : int
        Hz.
    threshold_db : float
        Speech threshold in dB relative to the loudest frame (negative).
    frame_s : float
        Frame length in seconds.
    min_silence_s : float
        Shortest silence that separates two speech regions.
    pad_s : float
        Seconds kept before the first and after the last speech frame.

    Returns
    -------
    (start_s, end_s) : tuple of float
        Seconds from the start of ``signal``.

    Raises
    ------
    ConfigError
        A parameter is out of range.
    NoSpeechError
        The clip is empty, digital silence or too quiet (loudest frame below
        ``MIN_PEAK_DBFS``), has a flat energy profile (loudest frame less than
        ``MIN_DYNAMIC_RANGE_DB`` above the noise floor: noise only), or holds only clicks.
    """
    if sample_rate <= 0:
        raise ConfigError(f"sample_rate must be positive, not {sample_rate}")
    if not threshold_db < 0:
        raise ConfigError(f"trim.threshold_db must be negative (dB below the loudest frame), not {threshold_db}")
    if not 0 < frame_s <= 1:
        raise ConfigError(f"trim.frame_s must be in (0, 1] seconds, not {frame_s}")
    if min_silence_s < 0 or pad_s < 0:
        raise ConfigError(f"trim.min_silence_s ({min_silence_s}) and trim.pad_s ({pad_s}) must not be negative")
    signal = np.asarray(signal)
    if signal.ndim != 1:
        raise ConfigError(f"speech_span needs mono audio of shape (n,), not {signal.shape}")
    if len(signal) == 0:
        raise NoSpeechError("no speech: the audio is empty")
    duration_s = len(signal) / sample_rate
    levels = frame_levels_db(highpass(signal, sample_rate), sample_rate, frame_s=frame_s)
    peak_db = float(levels.max())
    if peak_db < MIN_PEAK_DBFS:
        what = (
            "digital silence"
            if peak_db <= -199
            else f"too quiet (loudest frame {peak_db:.1f} dBFS < {MIN_PEAK_DBFS:g})"
        )
        raise NoSpeechError(f"no speech: the audio is {what}")
    floor_db = float(np.percentile(levels, NOISE_PERCENTILE))
    if peak_db - floor_db < MIN_DYNAMIC_RANGE_DB:
        raise NoSpeechError(
            f"no speech: flat energy (loudest frame only {peak_db - floor_db:.1f} dB above the noise floor, "
            f"< {MIN_DYNAMIC_RANGE_DB:g} dB): noise only"
        )
    hop_s = max(1, int(round(frame_s * sample_rate))) / sample_rate
    regions = _runs(_loud_frames(levels, threshold_db))
    max_gap = int(round(min_silence_s / hop_s))
    joined: list[list[int]] = []
    for start, stop in regions:
        if joined and start - joined[-1][1] < max_gap:
            joined[-1][1] = stop
        else:
            joined.append([start, stop])
    min_frames = max(1, int(round(MIN_REGION_S / hop_s)))
    speech = [
        (start, stop)
        for start, stop in joined
        if stop - start >= min_frames and levels[start:stop].max() >= peak_db - REGION_PEAK_DB
    ]
    if not speech:
        raise NoSpeechError(
            f"no speech: only clicks shorter than {MIN_REGION_S:g} s above {threshold_db:g} dB re the loudest frame"
        )
    start_s = max(0.0, speech[0][0] * hop_s - pad_s)
    end_s = min(duration_s, speech[-1][1] * hop_s + pad_s)
    return start_s, end_s


def _digital_silence(signal: np.ndarray) -> bool:
    return not np.any(np.abs(signal) > 1.0 / 65536)


def trim_clip(path: str | Path, wav_out: str | Path, **params: Any) -> dict:
    """Per-clip function of the ``trim`` stage: find the speech span, write its audio.

    :func:`trim_clip_and_info` without the file's :class:`~mmer.media.MediaInfo` (the
    parameters, the result and the errors are its).
    """
    return trim_clip_and_info(path, wav_out, **params)[0]


def trim_clip_and_info(
    path: str | Path,
    wav_out: str | Path,
    *,
    sample_rate: int = SpanParams.sample_rate,
    threshold_db: float = SpanParams.threshold_db,
    frame_s: float = SpanParams.frame_s,
    min_silence_s: float = SpanParams.min_silence_s,
    pad_s: float = SpanParams.pad_s,
    min_span_s: float = SpanParams.min_span_s,
    info: MediaInfo | None = None,
) -> tuple[dict, MediaInfo]:
    """Find the speech span of a clip, write its audio; also what ffmpeg says of the file.

    A clip with audio is decoded once; the span's audio is written to ``wav_out`` as
    ``sample_rate`` mono 16-bit wav. A video without sound — no audio stream, or (as in the
    genuine RAVDESS video-only files, modality 02) an audio stream of digital silence — has
    the whole clip as its span and no wav. Digital silence in a file without video is a
    failure (:class:`NoSpeechError`), as is a noise-only track.

    Parameters
    ----------
    path : str or Path
        .mp4, .wav, .flac or anything else ffmpeg reads.
    wav_out : str or Path
        Where the span's audio goes (written atomically; not written for silent video).
    sample_rate, threshold_db, frame_s, min_silence_s, pad_s
        See :func:`read_audio` and :func:`speech_span` (params ``trim.*``).
    min_span_s : float
        Shortest usable span in seconds.
    info : MediaInfo, optional
        The file's :func:`mmer.media.probe` result when the caller already has it; else the
        probe comes from the audio decode's own run (:func:`mmer.media.probe_and_read_audio`).

    Returns
    -------
    span : dict
        ``start_s``, ``end_s`` (the span, seconds from the start of the clip),
        ``duration_s`` (of the whole clip) and ``has_audio``.
    info : MediaInfo

    Raises
    ------
    MediaError
        Unreadable or truncated file (the message names it).
    NoSpeechError
        No speech span, or one shorter than ``min_span_s``.
    """
    if info is None:
        info, signal = probe_and_read_audio(path, sample_rate=sample_rate)
    else:
        signal = read_audio(path, sample_rate=sample_rate, info=info) if info.has_audio else None
    if signal is None or (info.has_video and _digital_silence(signal)):
        duration_s = info.duration_s
        if duration_s is None and signal is not None:
            duration_s = len(signal) / sample_rate
        if not duration_s:
            raise MediaError(f"{path}: video without sound and of unknown duration")
        logger.debug("%s: video without sound: the span is the whole clip", path)
        whole = {"start_s": 0.0, "end_s": round(duration_s, 4), "duration_s": round(duration_s, 4), "has_audio": False}
        return whole, info
    try:
        start_s, end_s = speech_span(
            signal, sample_rate, threshold_db=threshold_db, frame_s=frame_s, min_silence_s=min_silence_s, pad_s=pad_s
        )
    except NoSpeechError as err:
        raise NoSpeechError(f"{path}: {err}") from err
    if end_s - start_s < min_span_s:
        raise NoSpeechError(
            f"{path}: too short after trimming: span {end_s - start_s:.2f} s shorter than span.min_span_s={min_span_s:g}"
        )
    first, last = int(round(start_s * sample_rate)), int(round(end_s * sample_rate))
    write_wav(wav_out, signal[first:last], sample_rate)
    span = {
        "start_s": round(start_s, 4),
        "end_s": round(end_s, 4),
        "duration_s": round(len(signal) / sample_rate, 4),
        "has_audio": True,
    }
    return span, info

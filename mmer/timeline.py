"""Long recordings as a timeline: the model's window slid over the speech span.

A model reads a fixed length: T MFCC frames (``audio.padded_frames``, about 1.9 s on the
demo corpus) and ``faces.frames_per_clip`` frames of the same span. A clip whose speech span
is longer than :data:`LONG_RATIO` model windows is cut into windows of ``window_s`` seconds
every ``hop_s`` seconds (default: the model's own length, half of it); each window is
predicted as a clip of its own, with the very functions the stages run, and the clip's
answer is the mean probability over the windows that hold speech (:func:`summarise`).
Shorter clips are predicted as the stages prepare a clip: the first T frames of the span
(as in training and the ``evaluate`` stage), one window.

The functions at the top are pure (window boundaries, speech shares, the summary, the
window shown at a time); :func:`predict_long` is the edge that decodes and predicts, one
chunk of :data:`CHUNK_WINDOWS` windows at a time, so memory does not grow with the length
of the clip beyond its audio (16 kHz float32: 3.8 MB a minute).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmer.errors import ConfigError, MmerError

if TYPE_CHECKING:
    from mmer.predictor import ClipFeatures, Prediction, Predictor

logger = logging.getLogger(__name__)

# A span longer than this many model windows gets a timeline. Up to it, a clip is cut to T
# frames as in training: T is the mean length of the training spans, so half the training
# clips are longer than one window, and predicting those as a timeline would answer
# differently from the evaluate stage on the very same clip.
LONG_RATIO = 2.0
# A window whose share of speech frames (mmer.speech.speech_frames) is below this is listed
# in the timeline but left out of the clip's summary: silence between utterances.
MIN_SPEECH_SHARE = 0.25
# Windows prepared and predicted together: bounds the memory of a long clip.
CHUNK_WINDOWS = 16
# Decimals of times and probabilities in the JSON.
DIGITS = 4
# The window of a video-only model, which records no audio length: about the length of the
# speech spans such models are trained on (RAVDESS sentences).
VIDEO_WINDOW_S = 2.0
# The shortest window of a clip without sound (see clip_window).
SILENT_WINDOW_S = 4.0
SINGLE_METHOD = "one window: the speech span (its first T frames, as in training)"


def model_window_s(*, padded_frames: int, hop_length: int, n_fft: int, sample_rate: int) -> float:
    """Seconds of audio that give exactly ``padded_frames`` MFCC frames (uncentred frames of ``n_fft``)."""
    if padded_frames < 1 or hop_length < 1 or n_fft < 1 or sample_rate < 1:
        raise ConfigError(
            f"padded_frames ({padded_frames}), hop_length ({hop_length}), n_fft ({n_fft}) and "
            f"sample_rate ({sample_rate}) must be positive"
        )
    return ((padded_frames - 1) * hop_length + n_fft) / sample_rate


def window_settings(window_s: float | None, hop_s: float | None, *, model_s: float) -> tuple[float, float]:
    """The window and hop to use: ``window_s`` defaults to the model's length, ``hop_s`` to half the window.

    Raises
    ------
    ConfigError
        A window longer than the model reads (its end would be cut off unseen) or not
        positive; a hop not positive or longer than the window (gaps between windows).
    """
    window = model_s if window_s is None else float(window_s)
    if not 0 < window <= model_s + 1e-6:
        raise ConfigError(f"--window must be in (0, {model_s:.3f}] s (the length the model reads), not {window_s}")
    hop = window / 2 if hop_s is None else float(hop_s)
    if not 0 < hop <= window + 1e-9:
        raise ConfigError(f"--hop must be in (0, {window:.3f}] s (the window; longer would leave gaps), not {hop_s}")
    return window, hop


def clip_window(span: Mapping[str, Any], window_s: float, hop_s: float) -> tuple[float, float]:
    """The window and hop for one clip: a clip without sound gets windows of at least :data:`SILENT_WINDOW_S`.

    Its span is the whole clip, as for the silent videos a video model is trained on (RAVDESS
    modality 02: 3.5-5 s, six frames over all of it); the hop keeps its share of the window.
    """
    if span["has_audio"] or window_s >= SILENT_WINDOW_S:
        return window_s, hop_s
    return SILENT_WINDOW_S, hop_s * SILENT_WINDOW_S / window_s


def is_long(span: Mapping[str, Any], window_s: float, hop_s: float) -> bool:
    """Whether a clip's span (``start_s``, ``end_s``, ``has_audio``) is predicted as a timeline
    (longer than :data:`LONG_RATIO` windows of :func:`clip_window`)."""
    window, _ = clip_window(span, window_s, hop_s)
    return float(span["end_s"]) - float(span["start_s"]) > LONG_RATIO * window


def window_bounds(start_s: float, end_s: float, *, window_s: float, hop_s: float) -> np.ndarray:
    """Windows of ``window_s`` every ``hop_s`` covering ``[start_s, end_s]``.

    The first starts at ``start_s``; the last ends at ``end_s`` (moved back, so it keeps its
    full length, when the hops do not end there). A span no longer than one window is one
    window, the span itself.

    Returns
    -------
    ndarray, float64, shape (n_windows, 2)
        (start_s, end_s) of each window, in order.
    """
    if not (math.isfinite(start_s) and math.isfinite(end_s)) or end_s < start_s:
        raise ConfigError(f"span [{start_s}, {end_s}] s is not a valid span")
    if window_s <= 0 or hop_s <= 0:
        raise ConfigError(f"window ({window_s} s) and hop ({hop_s} s) must be positive")
    length = end_s - start_s
    if length <= window_s + 1e-9:
        return np.array([[start_s, end_s]], dtype=np.float64)
    n = math.ceil((length - window_s) / hop_s - 1e-9) + 1
    starts = start_s + hop_s * np.arange(n, dtype=np.float64)
    starts[-1] = end_s - window_s
    return np.stack([starts, starts + window_s], axis=1)


def speech_shares(bounds: np.ndarray, mask: np.ndarray, *, frame_s: float, offset_s: float = 0.0) -> np.ndarray:
    """The share of each window's level frames that are speech.

    Parameters
    ----------
    bounds : ndarray, shape (n_windows, 2)
        Windows in seconds of the clip.
    mask : ndarray, bool, shape (n_frames,)
        Speech frames of ``frame_s`` (:func:`mmer.speech.speech_frames`), the first starting
        at ``offset_s`` seconds of the clip.

    Returns
    -------
    ndarray, float64, shape (n_windows,)
        In [0, 1]; 0 for a window outside the mask.
    """
    mask = np.asarray(mask, dtype=bool)
    shares = np.zeros(len(bounds), dtype=np.float64)
    for i, (start, end) in enumerate(np.asarray(bounds, dtype=np.float64)):
        first = max(0, int(math.floor((start - offset_s) / frame_s + 1e-9)))
        last = min(len(mask), int(math.ceil((end - offset_s) / frame_s - 1e-9)))
        if last > first:
            shares[i] = float(mask[first:last].mean())
    return shares


def summarise(
    probabilities: np.ndarray, shares: np.ndarray | None, *, min_share: float = MIN_SPEECH_SHARE
) -> tuple[np.ndarray, np.ndarray, str]:
    """The clip's probabilities from its windows': the mean over the windows that hold speech.

    Parameters
    ----------
    probabilities : ndarray, shape (n_windows, n_classes)
        NaN rows for windows that could not be predicted (no face in any sampled frame).
    shares : ndarray, shape (n_windows,), or None
        Speech share of each window (None: the clip has no sound).
    min_share : float
        Windows with at least this share of speech frames count.

    Returns
    -------
    mean : ndarray, shape (n_classes,)
    used : ndarray, bool, shape (n_windows,)
        The windows averaged.
    method : str
        Which: ``mean over speech windows``, or ``mean over all windows`` when the clip has no
        sound or no predicted window reaches ``min_share``.

    Raises
    ------
    ConfigError
        No window was predicted.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = np.isfinite(probabilities).all(axis=1)
    if not predicted.any():
        raise ConfigError("no window of the clip could be predicted")
    used = predicted if shares is None else predicted & (np.asarray(shares) >= min_share)
    method = "mean over speech windows"
    if shares is None or not used.any():
        used, method = predicted, "mean over all windows"
    return probabilities[used].mean(axis=0), used, method


def window_at(t: float, bounds: np.ndarray) -> int | None:
    """The window shown at time ``t``: of those holding ``t``, the one whose centre is nearest; None outside all."""
    bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 2)
    inside = np.flatnonzero((bounds[:, 0] <= t) & (t <= bounds[:, 1]))
    if len(inside) == 0:
        return None
    centres = bounds[inside].mean(axis=1)
    return int(inside[np.argmin(np.abs(centres - t))])


def window_json(
    start_s: float,
    end_s: float,
    label_names: Sequence[str],
    probabilities: np.ndarray | None,
    *,
    speech: float | None,
    error: str | None = None,
) -> dict[str, Any]:
    """One entry of the ``timeline`` list of ``mmer predict --json``."""
    entry: dict[str, Any] = {"start_s": round(float(start_s), DIGITS), "end_s": round(float(end_s), DIGITS)}
    entry["speech"] = None if speech is None else round(float(speech), 3)
    if probabilities is None or not np.isfinite(probabilities).all():
        entry.update(emotion=None, probability=None, probabilities=None, error=error)
        return entry
    best = int(np.argmax(probabilities))
    entry.update(
        emotion=label_names[best],
        probability=round(float(probabilities[best]), 6),
        probabilities={n: round(float(p), 6) for n, p in zip(label_names, probabilities)},
    )
    return entry


def single_window(prediction: Prediction) -> list[dict[str, Any]]:
    """The timeline of a clip that is not long: one window, the span, with the clip's probabilities."""
    names = list(prediction.probabilities)
    probabilities = np.array([prediction.probabilities[n] for n in names])
    return [window_json(prediction.start_s, prediction.end_s, names, probabilities, speech=None)]


def single_summary(window_s: float, hop_s: float) -> dict[str, Any]:
    """The ``summary`` of a clip that is not long (see :data:`LONG_RATIO`)."""
    return {
        "method": SINGLE_METHOD,
        "windows_used": 1,
        "windows": 1,
        "window_s": round(window_s, DIGITS),
        "hop_s": round(hop_s, DIGITS),
    }


# --------------------------------------------------------------------------- the I/O edge


def predict_long(
    predictor: Predictor, path: str | Path, clip: ClipFeatures, *, window_s: float, hop_s: float, started: float
) -> Prediction:
    """Predict a long clip window by window (see the module docstring).

    ``clip`` is what :meth:`Predictor.features` found: its span, the head that answers, and
    the span's audio, written by :func:`mmer.speech.trim_clip` as the wav it reads (the wav
    is read here, not decoded again). Each window's audio is written as a wav and read back
    by :func:`mmer.audio.wav_mfcc` (the stages' path: the same 16-bit samples); its faces are
    :func:`mmer.faces.clip_face_crops` of the window (a seek per window: the video is never
    decoded whole). A window where no sampled frame has a face is listed with its reason and
    no probabilities; the clip fails only when no window could be predicted.
    """
    from mmer import audio, faces, media, speech, views
    from mmer.bundle import predict_proba
    from mmer.config import AUDIO_FEATURE_KEYS, FacesParams
    from mmer.errors import NoFaceError
    from mmer.predictor import INPUT_KIND, Prediction

    model, meta = predictor.head(clip.head)
    span = clip.span
    window_s, hop_s = clip_window(span, window_s, hop_s)
    start_s, end_s = float(span["start_s"]), float(span["end_s"])
    bounds = window_bounds(start_s, end_s, window_s=window_s, hop_s=hop_s)
    sample_rate = int(predictor.span_params["sample_rate"])
    signal = None
    shares = None
    if span["has_audio"]:
        signal, sample_rate = audio.read_wav(predictor.span_wav)
        frame_s = float(predictor.span_params["frame_s"])
        mask = speech.speech_frames(
            signal, sample_rate, threshold_db=float(predictor.span_params["threshold_db"]), frame_s=frame_s
        )
        shares = speech_shares(bounds, mask, frame_s=frame_s, offset_s=start_s)
    wants_audio = "audio_features" in meta["inputs"]
    wants_faces = "faces" in meta["inputs"]
    audio_params = {k: predictor.audio_params[k] for k in AUDIO_FEATURE_KEYS if k in predictor.audio_params}
    video = predictor.video_params
    probabilities = np.full((len(bounds), len(predictor.label_names)), np.nan)
    errors: list[str | None] = [None] * len(bounds)
    face_found: list[bool] = []
    face_times: list[float] = []
    face_boxes: list[list[float]] = []
    window_wav = Path(predictor.span_wav).with_name("window.wav")
    # the voice's views (mmer.views) answer an audio model's windows, as they answer a short clip
    with_views = predictor.views is not None and wants_audio and not wants_faces
    for first in range(0, len(bounds), CHUNK_WINDOWS):
        rows, inputs, window_views = [], {"audio_features": [], "faces": []}, []
        for row in range(first, min(first + CHUNK_WINDOWS, len(bounds))):
            w_start, w_end = bounds[row]
            try:
                if wants_faces:
                    crops = faces.clip_face_crops(
                        path,
                        w_start,
                        w_end,
                        frames_per_clip=int(video["frames_per_clip"]),
                        size=int(video["size"]),
                        margin=float(video.get("margin", FacesParams.margin)),
                    )
                    face_found.extend(bool(f) for f in crops.found)
                    face_times.extend(float(t) for t in crops.times_s)
                    face_boxes.extend([float(v) for v in box] for box in crops.boxes)
                    inputs["faces"].append(crops.crops)
            except NoFaceError as err:
                errors[row] = str(err).removeprefix(f"{path}: ")
                face_found.extend([False] * int(video["frames_per_clip"]))
                face_times.extend(media.frame_times(w_start, w_end, int(video["frames_per_clip"])).tolist())
                face_boxes.extend([[0.0, 0.0, 0.0, 0.0]] * int(video["frames_per_clip"]))
                continue
            if wants_audio:
                a, b = (int(round((t - start_s) * sample_rate)) for t in (w_start, w_end))
                media.write_wav(window_wav, signal[a:b], sample_rate)
                try:
                    if with_views:  # the first view reads the model's own features
                        window_views.append(views.view_inputs(predictor.views, *audio.read_wav(window_wav)))
                    else:
                        mfcc = audio.wav_mfcc(window_wav, **audio_params)
                        inputs["audio_features"].append(
                            audio.pad_or_truncate(mfcc, int(predictor.audio_params["padded_frames"]))
                        )
                except MmerError as err:
                    raise type(err)(f"{path}: window {w_start:.2f}-{w_end:.2f} s: {err}") from err
            rows.append(row)
        if rows and with_views:
            probabilities[rows] = views.views_probabilities(predictor.views, window_views)[0]
        elif rows:
            arrays = {k: np.stack(v) for k, v in inputs.items() if v}
            probabilities[rows] = predict_proba(model, meta, arrays)
    if not np.isfinite(probabilities).all(axis=1).any():
        raise NoFaceError(f"{path}: no face in any window of the clip ({errors[0]})")
    mean, used, method = summarise(probabilities, shares)
    names = predictor.label_names
    timeline = [
        window_json(
            w_start,
            w_end,
            names,
            probabilities[i],
            speech=None if shares is None else shares[i],
            error=errors[i],
        )
        for i, (w_start, w_end) in enumerate(bounds)
    ]
    best = int(np.argmax(mean))
    logger.info(
        "%s: a %.0f s speech span: %d windows of %.2f s every %.2f s; %s (%d windows)",
        path,
        end_s - start_s,
        len(bounds),
        window_s,
        hop_s,
        method,
        int(used.sum()),
    )
    return Prediction(
        path=str(path),
        emotion=names[best],
        probability=float(mean[best]),
        probabilities={name: float(p) for name, p in zip(names, mean)},
        head=clip.head,
        input_kind=INPUT_KIND[(bool(span["has_audio"]), clip.has_video)],
        start_s=start_s,
        end_s=end_s,
        duration_s=float(span["duration_s"]),
        faces_found=face_found if wants_faces else None,
        face_times_s=face_times if wants_faces else None,
        face_boxes=face_boxes if wants_faces else None,
        model=dict(predictor.model_id),
        seconds=time.perf_counter() - started,
        timeline=timeline,
        summary={
            "method": method,
            "windows_used": int(used.sum()),
            "windows": len(bounds),
            "window_s": round(window_s, DIGITS),
            "hop_s": round(hop_s, DIGITS),
        },
    )

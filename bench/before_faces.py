"""Trim and face crops as mmer made them before issue 15, for the benchmark only: the "before" of its ratio.

The crops are the same as :func:`mmer.faces.clip_face_crops`'s (``tests/test_faces.py``
checks it); what differs is the cost:

- each worker's detector start-up imported TensorFlow and matplotlib (through ``import
  mediapipe``), which the detector never uses: :func:`init_worker_before` imports them first,
  as that did;
- ffmpeg chose its decoder threads (one per core) in every worker of a pool that already
  ran one worker per core: :func:`before_face_crops` decodes with ``threads=0``;
- the pool sent clips in chunks of up to 8 (7 for 120 clips on 2 workers):
  :func:`before_chunksize`;
- it probed each clip itself, and passed on 2 frames per sampled time (the frames within a
  frame period before it and the first at or after it), each with showinfo's checksums:
  :func:`before_read_frames`;
- ``trim`` probed each clip in an ffmpeg run of its own before decoding its audio in
  another: :func:`trim_as_before` (the same spans and wavs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np

from mmer import batch, faces, media, preprocess, speech
from mmer.config import FacesParams
from mmer.errors import ConfigError, MediaError
from mmer.media import _PTS_RE, MAX_FRAME_GAP_S, _run, probe


def before_chunksize(n_items: int, jobs: int) -> int:
    """The clips a local pool sent a worker at a time before issue 15."""
    return max(1, min(8, n_items // (jobs * 8) or 1))


def before_cached_trim(path: str, wav_out: str | Path, modality: str, *, cache: Any, **params: Any) -> dict:
    """:func:`mmer.preprocess.cached_trim` (without a cache) as it was: a probe, then the audio decode."""
    if cache is not None:
        raise ValueError("the bench times trim without the per-clip cache")
    span, info = speech.trim_clip_and_info(path, wav_out, info=probe(path), **params)
    if modality in preprocess.AUDIO_MODALITIES and not span["has_audio"]:
        raise preprocess.NoAudioError(f"{path}: no sound in a clip whose name says modality {modality!r}")
    return {**span, **media.video_facts(info)}


@contextlib.contextmanager
def trim_as_before() -> Iterator[None]:
    """:func:`mmer.preprocess.trim_stage` runs as before issue 15 inside (the bench's ``before_trim``):
    two ffmpeg runs per clip (:func:`before_cached_trim`) and the chunks of :func:`before_chunksize`."""
    saved = preprocess.cached_trim, batch.pool_chunksize
    preprocess.cached_trim, batch.pool_chunksize = before_cached_trim, before_chunksize  # type: ignore[assignment]
    try:
        yield
    finally:
        preprocess.cached_trim, batch.pool_chunksize = saved


def init_worker_before(model: str = FacesParams.model, min_confidence: float = FacesParams.min_confidence) -> None:
    """:func:`mmer.faces.init_worker`, with the TensorFlow and matplotlib imports the detector's start-up had."""
    import matplotlib.pyplot  # noqa: F401 - the cost being measured: mediapipe imported it too
    import tensorflow  # noqa: F401 - the cost being measured

    faces.init_worker(model, min_confidence)


def before_face_crops(
    path: str | Path,
    start_s: float,
    end_s: float,
    *,
    frames_per_clip: int = FacesParams.frames_per_clip,
    size: int = FacesParams.size,
    margin: float = FacesParams.margin,
) -> faces.FaceCrops:
    """:func:`mmer.faces.clip_face_crops` as it was: its own probe, :func:`before_read_frames`, ffmpeg's threads."""
    times = media.frame_times(start_s, end_s, frames_per_clip)
    frames = before_read_frames(path, times, max_side=faces.MAX_FRAME_SIDE, threads=0)
    crops = faces.face_crops(frames, faces.worker_detector(), size=size, margin=margin, source=path)
    crops.times_s = times
    return crops


def before_read_frames(
    path: str | Path, times_s: np.ndarray, *, max_side: int | None = None, threads: int = 0
) -> np.ndarray:
    """:func:`mmer.media.read_frames` as it was before issue 15 (a copy: the same frames, the cost of then)."""
    times = np.asarray(times_s, dtype=np.float64).reshape(-1)
    if len(times) == 0 or not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ConfigError(f"{path}: frame times must be a non-empty list of seconds >= 0, not {times.tolist()}")
    if max_side is not None and max_side < 2:
        raise ConfigError(f"max_side must be at least 2 pixels, not {max_side}")
    if threads < 0:
        raise ConfigError(f"threads must be 0 (ffmpeg's choice) or more, not {threads}")
    info = probe(path)
    if not info.has_video or info.frame_size is None:
        raise MediaError(f"{path}: no video stream")
    period = 1.0 / (info.fps or 25.0)
    # times count from the start of the clip; -copyts below keeps the file's own timestamps
    last_s = (info.duration_s or float(times.max()) + period) - period
    wanted = info.start_s + np.clip(times, 0.0, max(0.0, last_s))
    width, height = info.frame_size
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    # -ss and -t count from the start of the file, select and showinfo in its timestamps
    seek_s = max(0.0, float(wanted.min()) - info.start_s - 2 * period)
    read_s = float(wanted.max()) - info.start_s - seek_s + 3 * period + MAX_FRAME_GAP_S
    # prev_t is the previous decoded frame's time (NAN for the first: not(gte(NAN, T)) is 1)
    near = "+".join(f"gte(t,{t - period:.6f})*not(gte(prev_t,{t:.6f}))" for t in np.unique(wanted))
    decoder = {"threads": threads} if threads else {}
    video = (
        ffmpeg.input(str(path), ss=f"{seek_s:.6f}", t=f"{read_s:.6f}", **decoder)
        .video.filter("select", near)
        .filter("showinfo")
    )
    if (width, height) != info.frame_size:
        video = video.filter("scale", width, height, flags="area")
    stream = video.output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough")
    out, err = _run(stream, path, "decode frames", loglevel="info", copyts=True)
    pts = np.array([float(m) for m in _PTS_RE.findall(err.decode("utf-8", "replace"))])
    frame_bytes = width * height * 3
    if len(out) % frame_bytes or len(out) // frame_bytes != len(pts):
        raise MediaError(
            f"{path}: cannot decode frames: {len(out) / frame_bytes:.1f} frames of {width}x{height} for {len(pts)} timestamps"
        )
    frames = np.frombuffer(out, dtype=np.uint8).reshape(len(pts), height, width, 3)
    picked = np.empty((len(wanted), height, width, 3), dtype=np.uint8)
    for i, t in enumerate(wanted):
        gaps = np.abs(pts - t) if len(pts) else np.array([np.inf])
        # no frame within a period, but one after: a sparse stretch of a variable frame rate
        sparse = bool(np.any((pts >= t - 1e-6) & (pts - t <= MAX_FRAME_GAP_S + period)))
        if gaps.min() > period and not sparse:
            reached = (
                f"decoded frames end at {pts.max() - info.start_s:.2f} s" if len(pts) else "no frame decoded there"
            )
            raise MediaError(f"{path}: no video frame near {times[i]:.2f} s ({reached}; truncated file?)")
        picked[i] = frames[int(np.argmin(gaps))]
    return picked

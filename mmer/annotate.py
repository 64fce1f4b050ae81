"""Annotated videos: a clip written back with its face box, emotion and probabilities drawn.

Frames are streamed, never held: one ffmpeg decodes the clip to raw RGB at its constant frame
rate, every frame gets the face detector run on it and the drawing (OpenCV), and a second
ffmpeg encodes the frames with libx264 and muxes the original audio track (copied when the
output container takes its codec, else re-encoded as AAC). The file is written to a
temporary name and renamed when complete.

The face box is *detected on every frame* (the box of that frame, not an interpolation of
the few frames the model saw). A frame where the detector finds nothing keeps the previous
box for up to :data:`HOLD_S` seconds (a blink of the detector), then shows none.

Drawing functions are pure (a frame in, the same frame drawn on); :func:`annotate_video` is
the I/O edge.
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import tempfile
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mmer import media
from mmer.errors import ConfigError, MediaError
from mmer.files import atomic_path

logger = logging.getLogger(__name__)

# output suffix -> ffmpeg muxer
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# audio codecs each muxer takes as they are (-c:a copy); anything else becomes AAC
COPY_AUDIO = {
    "mp4": {"aac", "mp3", "alac", "ac3", "opus"},
    "mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    "matroska": None,  # takes anything
}
AAC_BITRATE = "160k"
X264_PRESET = "veryfast"
X264_CRF = 20
ENCODER_THREADS = 2  # the machine is shared; x264 would take 1.5 x the cores
HOLD_S = 0.5  # a missed detection keeps the previous box this long
# colours (RGB: frames are decoded as rgb24)
BOX_RGB = (60, 220, 90)
BAR_RGB = (70, 150, 255)
TOP_BAR_RGB = (60, 220, 90)
TEXT_RGB = (255, 255, 255)
PANEL_RGB = (20, 20, 20)
PANEL_ALPHA = 0.6
SPEECH_RGB = (255, 190, 40)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _scale(height: int) -> float:
    """Drawing scale: 1.0 on a 720-line frame, never tiny."""
    return max(0.45, height / 720.0)


def draw_box(
    frame: np.ndarray, box: Sequence[float], *, label: str | None = None, colour: tuple[int, int, int] = BOX_RGB
) -> np.ndarray:
    """Draw a face box (x0, y0, x1, y1 in pixels) and an optional label above it, in place.

    Parameters
    ----------
    frame : ndarray, uint8, shape (H, W, 3)
        RGB frame, changed in place.
    box : (x0, y0, x1, y1)
    label : str, optional
        Text on a filled tab above the box (below its top edge when there is no room).

    Returns
    -------
    ndarray
        ``frame``.
    """
    height, width = frame.shape[:2]
    scale = _scale(height)
    thickness = max(2, int(round(2 * scale)))
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, x1 = max(0, min(x0, width - 1)), max(0, min(x1, width - 1))
    y0, y1 = max(0, min(y0, height - 1)), max(0, min(y1, height - 1))
    cv2.rectangle(frame, (x0, y0), (x1, y1), colour, thickness, cv2.LINE_AA)
    if label:
        font_scale = 0.8 * scale
        (text_w, text_h), base = cv2.getTextSize(label, FONT, font_scale, thickness)
        pad = int(round(4 * scale))
        top = y0 - text_h - base - 2 * pad
        if top < 0:
            top = y0
        right = min(width, x0 + text_w + 2 * pad)
        cv2.rectangle(frame, (x0, top), (right, top + text_h + base + 2 * pad), colour, -1)
        cv2.putText(frame, label, (x0 + pad, top + pad + text_h), FONT, font_scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return frame


@dataclasses.dataclass
class Panel:
    """A pre-drawn overlay (the probability bars) and its opacity, blended onto each frame."""

    image: np.ndarray  # uint8 (h, w, 3)
    alpha: np.ndarray  # float32 (h, w, 1) in [0, 1]


def probability_panel(label_names: Sequence[str], probabilities: Sequence[float], *, frame_height: int) -> Panel:
    """A small bar chart of the class probabilities, the top class highlighted.

    Parameters
    ----------
    label_names : sequence of str
    probabilities : sequence of float
        One per label, in [0, 1].
    frame_height : int
        The panel is sized for frames of this height.

    Returns
    -------
    Panel
    """
    probabilities = np.asarray(probabilities, dtype=float)
    if len(label_names) == 0 or probabilities.shape != (len(label_names),):
        raise ConfigError(
            f"{len(label_names)} label names and probabilities of shape {probabilities.shape} do not match"
        )
    scale = _scale(frame_height)
    font_scale = 0.5 * scale
    thickness = max(1, int(round(scale)))
    row = int(round(22 * scale))
    pad = int(round(8 * scale))
    name_w = max(cv2.getTextSize(n, FONT, font_scale, thickness)[0][0] for n in label_names)
    bar_w = int(round(120 * scale))
    value_w = cv2.getTextSize("100%", FONT, font_scale, thickness)[0][0]
    width = pad + name_w + pad + bar_w + pad + value_w + pad
    height = pad + row * len(label_names) + pad
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = PANEL_RGB
    top = int(np.argmax(probabilities))
    for i, (name, p) in enumerate(zip(label_names, probabilities)):
        y = pad + i * row
        text_y = y + int(row * 0.7)
        cv2.putText(image, name, (pad, text_y), FONT, font_scale, TEXT_RGB, thickness, cv2.LINE_AA)
        x = pad + name_w + pad
        bar_h = int(row * 0.6)
        bar_y = y + (row - bar_h) // 2
        cv2.rectangle(image, (x, bar_y), (x + bar_w, bar_y + bar_h), (70, 70, 70), -1)
        filled = int(round(bar_w * float(np.clip(p, 0.0, 1.0))))
        if filled:
            cv2.rectangle(image, (x, bar_y), (x + filled, bar_y + bar_h), TOP_BAR_RGB if i == top else BAR_RGB, -1)
        cv2.putText(
            image, f"{100 * p:.0f}%", (x + bar_w + pad, text_y), FONT, font_scale, TEXT_RGB, thickness, cv2.LINE_AA
        )
    alpha = np.full((height, width, 1), PANEL_ALPHA, np.float32)
    # text and bars fully opaque, the background see-through
    alpha[np.any(image != PANEL_RGB, axis=2)] = 1.0
    return Panel(image=image, alpha=alpha)


def blend_panel(frame: np.ndarray, panel: Panel, *, x: int, y: int) -> np.ndarray:
    """Blend ``panel`` onto ``frame`` with its top-left corner at (x, y), clipped; in place."""
    height, width = frame.shape[:2]
    h, w = min(panel.image.shape[0], height - y), min(panel.image.shape[1], width - x)
    if h <= 0 or w <= 0:
        return frame
    region = frame[y : y + h, x : x + w].astype(np.float32)
    alpha = panel.alpha[:h, :w]
    frame[y : y + h, x : x + w] = (region * (1.0 - alpha) + panel.image[:h, :w] * alpha).astype(np.uint8)
    return frame


def draw_timeline(frame: np.ndarray, t: float, duration_s: float, span: tuple[float, float] | None) -> np.ndarray:
    """A bar along the bottom: the speech span highlighted and a playhead at ``t``; in place."""
    height, width = frame.shape[:2]
    if duration_s <= 0:
        return frame
    bar_h = max(4, int(round(8 * _scale(height))))
    y0 = height - bar_h
    frame[y0:, :] = (frame[y0:, :].astype(np.uint16) // 3).astype(np.uint8)
    if span is not None:
        x0, x1 = (int(round(width * min(max(s / duration_s, 0.0), 1.0))) for s in span)
        frame[y0:, x0:x1] = SPEECH_RGB
    x = int(round(width * min(max(t / duration_s, 0.0), 1.0)))
    half = max(1, bar_h // 3)
    frame[max(0, y0 - 2 * bar_h) :, max(0, x - half) : x + half + 1] = TEXT_RGB
    return frame


def annotate_frame(
    frame: np.ndarray,
    *,
    box: Sequence[float] | None,
    label: str,
    panel: Panel,
    t: float,
    duration_s: float,
    span: tuple[float, float] | None = None,
) -> np.ndarray:
    """Everything drawn on one frame: face box with label, probability panel, timeline; in place."""
    margin = int(round(10 * _scale(frame.shape[0])))
    if box is not None:
        draw_box(frame, box, label=label)
    blend_panel(frame, panel, x=margin, y=margin)
    if box is None:  # the label stays visible without a face box
        cv2.putText(
            frame,
            label,
            (margin, margin + panel.image.shape[0] + int(30 * _scale(frame.shape[0]))),
            FONT,
            0.8 * _scale(frame.shape[0]),
            BOX_RGB,
            max(2, int(round(2 * _scale(frame.shape[0])))),
            cv2.LINE_AA,
        )
    draw_timeline(frame, t, duration_s, span)
    return frame


class BoxHold:
    """The box to draw on each frame from the detections, holding a missed one briefly.

    Parameters
    ----------
    hold_frames : int
        A frame without a detection shows the last box if one was found at most this many
        frames before; later frames show none.
    """

    def __init__(self, hold_frames: int) -> None:
        if hold_frames < 0:
            raise ConfigError(f"hold_frames must be 0 or more, not {hold_frames}")
        self.hold_frames = hold_frames
        self._box: tuple[float, float, float, float] | None = None
        self._missed = 0

    def __call__(self, box: Sequence[float] | None) -> tuple[float, float, float, float] | None:
        """Feed one frame's detection (x0, y0, x1, y1) or None; get the box to draw or None."""
        if box is not None:
            self._box, self._missed = tuple(float(v) for v in box), 0  # type: ignore[assignment]
            return self._box
        self._missed += 1
        return self._box if self._box is not None and self._missed <= self.hold_frames else None


class WindowLabels:
    """The label and bar panel to draw at a time: the current window's, else the clip's.

    Panels are drawn once per window, when first shown (a long clip has hundreds).
    """

    def __init__(
        self,
        timeline: Sequence[dict[str, Any]] | None,
        label_names: Sequence[str],
        *,
        frame_height: int,
        clip: tuple[str, Panel],
    ) -> None:
        windows = [w for w in timeline or () if w.get("probabilities")]
        self._windows = windows if len(timeline or ()) > 1 else []
        self._bounds = np.array([[w["start_s"], w["end_s"]] for w in self._windows], dtype=np.float64)
        self._names = list(label_names)
        self._height = frame_height
        self._clip = clip
        self._cache: dict[int, tuple[str, Panel]] = {}

    def __call__(self, t: float) -> tuple[str, Panel]:
        from mmer.timeline import window_at

        index = window_at(t, self._bounds) if self._windows else None
        if index is None:
            return self._clip
        if index not in self._cache:
            probabilities = np.array([self._windows[index]["probabilities"][n] for n in self._names])
            top = int(np.argmax(probabilities))
            self._cache = {  # one window at a time is shown: keep only its panel
                index: (
                    f"{self._names[top]} {100 * probabilities[top]:.0f}%",
                    probability_panel(self._names, probabilities, frame_height=self._height),
                )
            }
        return self._cache[index]


@dataclasses.dataclass
class AnnotationResult:
    """What :func:`annotate_video` wrote."""

    path: str
    frames: int
    frames_with_face: int
    fps: float
    seconds: float
    audio: str  # copied codec, "aac" (re-encoded) or "none"


def _read_exact(stream: Any, n: int) -> bytes | None:
    """Exactly ``n`` bytes from a pipe, or None at the end (a partial last frame is dropped)."""
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _reason(log: Path, path: str | Path) -> str:
    return media._stderr_reason(log.read_bytes() if log.is_file() else b"", path)


def annotate_video(
    src: str | Path,
    out: str | Path,
    *,
    label_names: Sequence[str],
    probabilities: Sequence[float],
    detector: Any,
    span: tuple[float, float] | None = None,
    timeline: Sequence[dict[str, Any]] | None = None,
) -> AnnotationResult:
    """Write ``src`` back to ``out`` with the face box, label and probabilities on every frame.

    Parameters
    ----------
    src : str or Path
        A clip with a video stream (any ffmpeg reads).
    out : str or Path
        ``.mp4`` (or .m4v, .mov, .mkv); H.264 video, the source's audio kept. Written
        atomically.
    label_names, probabilities
        The prediction: the top class is the label, all of them go into the bar panel.
    detector : mmer.faces.FaceDetector
        Run on every frame.
    span : (start_s, end_s), optional
        The speech span, marked on the timeline.
    timeline : list of dict, optional
        The windows of a long clip (``start_s``, ``end_s``, ``probabilities``; see
        :mod:`mmer.timeline`): each frame shows the label and bars of the window it is in
        (:func:`mmer.timeline.window_at`), a frame outside every window (or in one that could not
        be predicted) those of the whole clip.

    Returns
    -------
    AnnotationResult

    Raises
    ------
    MediaError
        ``src`` has no video stream or cannot be decoded; the output cannot be encoded.
    ConfigError
        An output suffix ffmpeg should not guess from.
    """
    started = time.perf_counter()
    out = Path(out)
    muxer = OUTPUT_FORMATS.get(out.suffix.lower())
    if muxer is None:
        raise ConfigError(f"{out}: the annotated video must end in one of {', '.join(OUTPUT_FORMATS)}")
    info = media.probe(src)
    if not info.has_video or info.frame_size is None:
        raise MediaError(f"{src}: no video stream to annotate (an audio-only file)")
    width, height = info.frame_size
    rate = Fraction(info.fps or 25.0).limit_denominator(1001)
    duration_s = float(info.duration_s or 0.0)
    probabilities = np.asarray(probabilities, dtype=float)
    top = int(np.argmax(probabilities))
    label = f"{label_names[top]} {100 * probabilities[top]:.0f}%"
    panel = probability_panel(label_names, probabilities, frame_height=height)
    shown = WindowLabels(timeline, label_names, frame_height=height, clip=(label, panel))
    if not info.has_audio:
        audio_args, audio_kind = [], "none"
    elif COPY_AUDIO[muxer] is None or info.audio_codec in COPY_AUDIO[muxer]:
        audio_args, audio_kind = ["-map", "1:a:0?", "-c:a", "copy"], str(info.audio_codec)
    else:
        audio_args, audio_kind = ["-map", "1:a:0?", "-c:a", "aac", "-b:a", AAC_BITRATE], "aac"
    ffmpeg = media.ffmpeg_exe()
    decode = [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-i",
        str(src),
        "-map",
        "0:v:0",
        "-fps_mode",
        "cfr",
        "-r",
        str(rate),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]
    frame_bytes = width * height * 3
    boxes = BoxHold(int(round(HOLD_S * float(rate))))
    n_frames = n_faces = 0
    with tempfile.TemporaryDirectory(prefix="mmer-annotate-") as tmp, atomic_path(out) as part:
        dec_log, enc_log = Path(tmp) / "decode.log", Path(tmp) / "encode.log"
        encode = [
            ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{width}x{height}",
            "-framerate",
            str(rate),
            "-i",
            "pipe:0",
            "-i",
            str(src),
            "-map",
            "0:v:0",
            *audio_args,
            "-vf",
            "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            "-c:v",
            "libx264",
            "-preset",
            X264_PRESET,
            "-crf",
            str(X264_CRF),
            "-pix_fmt",
            "yuv420p",
            "-threads",
            str(ENCODER_THREADS),
            "-movflags",
            "+faststart",
            "-f",
            muxer,
            str(part),
        ]
        with open(dec_log, "wb") as dec_err, open(enc_log, "wb") as enc_err:
            decoder = subprocess.Popen(decode, stdout=subprocess.PIPE, stderr=dec_err)
            encoder = subprocess.Popen(encode, stdin=subprocess.PIPE, stderr=enc_err)
            encoder_broke = False
            try:
                while (buffer := _read_exact(decoder.stdout, frame_bytes)) is not None:
                    frame = np.frombuffer(buffer, np.uint8).reshape(height, width, 3).copy()
                    found = detector.detect(frame)
                    n_faces += found is not None
                    box = boxes(None if found is None else (found.x0, found.y0, found.x1, found.y1))
                    frame_label, frame_panel = shown(n_frames / float(rate))
                    annotate_frame(
                        frame,
                        box=box,
                        label=frame_label,
                        panel=frame_panel,
                        t=n_frames / float(rate),
                        duration_s=duration_s,
                        span=span,
                    )
                    encoder.stdin.write(frame.tobytes())
                    n_frames += 1
            except BrokenPipeError:
                encoder_broke = True  # the encoder stopped: its log says why (below)
            finally:
                # closing the pipes ends both processes on every path (EOF / broken pipe)
                for pipe in (encoder.stdin, decoder.stdout):
                    try:
                        pipe.close()
                    except BrokenPipeError:
                        encoder_broke = True
                dec_code, enc_code = decoder.wait(), encoder.wait()
        if encoder_broke or (enc_code != 0 and dec_code == 0 and n_frames):
            raise MediaError(f"{out}: cannot encode the annotated video: {_reason(enc_log, part)}")
        if dec_code != 0 or n_frames == 0:
            raise MediaError(
                f"{src}: cannot decode frames to annotate: {_reason(dec_log, src) if dec_code else 'no frame decoded'}"
            )
    result = AnnotationResult(str(out), n_frames, n_faces, float(rate), time.perf_counter() - started, audio_kind)
    logger.debug(
        "%s: %d frames (%d with a face) annotated in %.1f s -> %s", src, n_frames, n_faces, result.seconds, out
    )
    return result

"""Face crops with MediaPipe face detection.

One :class:`FaceDetector` is created per worker process (:func:`init_worker`) and reused
for every clip. Box geometry (:func:`square_box`, :func:`fill_missing_boxes`) and
cropping (:func:`crop_face`) are pure functions; :func:`face_crops` runs the detector on
frames already in memory, and :func:`clip_face_crops` is the per-clip function of the
``face_crops`` stage (frames from :func:`mmer.media.read_frames`).

MediaPipe (and the TensorFlow it imports) is loaded only when a detector is created, so
importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, TracebackType

import cv2
import numpy as np

from mmer import media
from mmer.config import FACE_MODELS, FacesParams
from mmer.errors import ConfigError, NoFaceError
from mmer.logs import native_stderr_filtered

logger = logging.getLogger(__name__)
WARM_UP_SIZE = 16  # the blank frame a new detector processes once, inside the stderr filter


@dataclass(frozen=True)
class FaceDetectorOptions:
    """Which MediaPipe face detector to run.

    Attributes
    ----------
    model : str
        ``short`` (faces within about 2 m, the RAVDESS framing) or ``full`` (up to 5 m).
    min_confidence : float
        Detections scoring below this are dropped, in (0, 1).

    Both are validated where they are read, by :class:`mmer.config.FacesParams`.
    """

    model: str = FacesParams.model
    min_confidence: float = FacesParams.min_confidence


def _import_face_detection() -> ModuleType:
    """MediaPipe's face detection solution, imported without TensorFlow and without matplotlib.

    ``import mediapipe`` imports TensorFlow when it is installed, only to decorate its API
    documentation (``mediapipe.tasks.python.core.optional_dependencies``; it falls back to a
    no-op without it): 3-7 s of CPU and hundreds of MB per worker process, for nothing the
    detector uses. It also imports ``matplotlib.pyplot`` (0.4-0.5 s of CPU per worker), for
    ``drawing_utils.plot_landmarks`` alone, which mmer never calls. While mediapipe loads (in a
    process that has loaded neither it nor them), TensorFlow is hidden and matplotlib is an
    empty stand-in; both are importable as usual afterwards.
    """
    fresh = "mediapipe" not in sys.modules
    hidden: dict[str, ModuleType | None] = {}
    if fresh and "tensorflow" not in sys.modules:
        hidden["tensorflow"] = None  # `import tensorflow` raises ModuleNotFoundError
    if fresh and "matplotlib" not in sys.modules:
        pyplot = ModuleType("matplotlib.pyplot")
        hidden["matplotlib"] = ModuleType("matplotlib")
        hidden["matplotlib"].pyplot = pyplot  # type: ignore[attr-defined]
        hidden["matplotlib.pyplot"] = pyplot
    sys.modules.update(hidden)  # type: ignore[arg-type]
    try:
        from mediapipe.python.solutions import face_detection
    finally:
        for name, module in hidden.items():
            if sys.modules.get(name, 0) is module:
                del sys.modules[name]
    return face_detection


@dataclass(frozen=True)
class Box:
    """A detected face: corners in pixels (may reach outside the image) and the score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2


class FaceDetector:
    """MediaPipe face detection, created once and used for many frames.

    Use as a context manager (``with FaceDetector(options) as detector: ...``) or call
    :meth:`close` when done.

    Parameters
    ----------
    options : FaceDetectorOptions, optional
    """

    def __init__(self, options: FaceDetectorOptions | None = None) -> None:
        # MediaPipe's C++ prints start-up lines on stderr when the graph is built and first run
        with native_stderr_filtered():
            face_detection = _import_face_detection()
            self.options = options or FaceDetectorOptions()
            self._detection = face_detection.FaceDetection(
                model_selection=FACE_MODELS[self.options.model], min_detection_confidence=self.options.min_confidence
            )
            # the graph's calculators open on MediaPipe's own threads (TensorFlow Lite's start-up
            # line among them), possibly after this block; one blank frame waits for them inside it
            self._detection.process(np.zeros((WARM_UP_SIZE, WARM_UP_SIZE, 3), np.uint8))
        self._started = False

    def detect(self, frame: np.ndarray) -> Box | None:
        """The most confident face in an RGB frame, or None.

        Parameters
        ----------
        frame : ndarray, uint8, shape (H, W, 3)
            RGB image.
        """
        if self._detection is None:
            raise ConfigError("FaceDetector.detect called after close()")
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ConfigError(f"a frame must be uint8 RGB of shape (H, W, 3), not {frame.dtype} {frame.shape}")
        with contextlib.nullcontext() if self._started else native_stderr_filtered():
            result = self._detection.process(np.ascontiguousarray(frame))
        self._started = True
        if not result.detections:
            return None
        best = max(result.detections, key=lambda d: d.score[0])
        rel = best.location_data.relative_bounding_box
        height, width = frame.shape[:2]
        return Box(
            x0=rel.xmin * width,
            y0=rel.ymin * height,
            x1=(rel.xmin + rel.width) * width,
            y1=(rel.ymin + rel.height) * height,
            score=float(best.score[0]),
        )

    def close(self) -> None:
        """Release the MediaPipe graph."""
        if self._detection is not None:
            self._detection.close()
            self._detection = None

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def square_box(
    box: Box | tuple[float, float, float, float], *, margin: float = FacesParams.margin, image_shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """The square crop around a face box, with a margin, inside the image.

    The side is the box's longer side times ``1 + 2 * margin`` (``margin`` of the face
    size on each side). A square reaching past an edge is shifted back inside; it shrinks
    (staying centred as far as possible) only when the image is smaller than the square.

    Parameters
    ----------
    box : Box or (x0, y0, x1, y1)
        Face box in pixels.
    margin : float
        Fraction of the box's longer side added on each side (>= 0).
    image_shape : tuple
        (H, W, ...) of the image.

    Returns
    -------
    (x0, y0, x1, y1) : tuple of int
        Pixel bounds, ``x1 - x0 == y1 - y0 >= 1``, for ``image[y0:y1, x0:x1]``.
    """
    if margin < 0:
        raise ConfigError(f"faces.margin must not be negative, not {margin}")
    x0, y0, x1, y1 = (box.x0, box.y0, box.x1, box.y1) if isinstance(box, Box) else box
    height, width = int(image_shape[0]), int(image_shape[1])
    if x1 <= x0 or y1 <= y0 or height < 1 or width < 1:
        raise ConfigError(f"empty box {(x0, y0, x1, y1)} or image {image_shape}")
    side = int(round(max(x1 - x0, y1 - y0) * (1 + 2 * margin)))
    side = max(1, min(side, height, width))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(int(round(cx - side / 2)), 0), width - side)
    top = min(max(int(round(cy - side / 2)), 0), height - side)
    return left, top, left + side, top + side


def crop_face(frame: np.ndarray, box: tuple[int, int, int, int], *, size: int = FacesParams.size) -> np.ndarray:
    """Cut ``box`` out of ``frame`` and resize it to ``size`` x ``size`` (area interpolation).

    Parameters
    ----------
    frame : ndarray, uint8, shape (H, W, 3)
    box : (x0, y0, x1, y1)
        Integer pixel bounds inside the frame (see :func:`square_box`).
    size : int
        Output side in pixels.

    Returns
    -------
    ndarray, uint8, shape (size, size, 3)
    """
    if size < 1:
        raise ConfigError(f"faces.size must be positive, not {size}")
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= frame.shape[1] and 0 <= y0 < y1 <= frame.shape[0]):
        raise ConfigError(f"box {box} is not inside a frame of shape {frame.shape}")
    patch = np.ascontiguousarray(frame[y0:y1, x0:x1])
    interpolation = cv2.INTER_AREA if patch.shape[0] >= size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interpolation)


def fill_missing_boxes(boxes: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Give each frame without a face the box of the nearest frame with one.

    Parameters
    ----------
    boxes : ndarray, shape (k, 4)
        One box per frame; rows where ``found`` is False are ignored.
    found : ndarray, bool, shape (k,)
        At least one True.

    Returns
    -------
    ndarray, shape (k, 4)
        A copy; at equal distance the earlier frame's box wins.
    """
    boxes = np.asarray(boxes)
    found = np.asarray(found, dtype=bool)
    if boxes.ndim != 2 or len(boxes) != len(found):
        raise ConfigError(f"boxes {boxes.shape} and found {found.shape} do not match")
    have = np.flatnonzero(found)
    if len(have) == 0:
        raise ConfigError("fill_missing_boxes: no frame has a face")
    nearest = have[np.argmin(np.abs(np.arange(len(found))[:, None] - have[None, :]), axis=1)]
    return boxes[nearest].copy()


@dataclass
class FaceCrops:
    """The face crops of one clip.

    Attributes
    ----------
    crops : ndarray, uint8, shape (k, size, size, 3)
        RGB crops; a frame without a detection is cropped at the nearest frame's box.
    found : ndarray, bool, shape (k,)
        A face was detected in that frame.
    boxes : ndarray, float32, shape (k, 4)
        The square crop boxes (x0, y0, x1, y1) in pixels of frames of ``frame_size``.
    scores : ndarray, float32, shape (k,)
        Detection scores (0 where no face was found).
    frame_size : (int, int)
        (width, height) of the frames the boxes refer to.
    times_s : ndarray, float64, shape (k,), optional
        Times of the frames in the clip, when known.
    """

    crops: np.ndarray
    found: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    frame_size: tuple[int, int]
    times_s: np.ndarray | None = None


def face_crops(
    frames: np.ndarray,
    detector: FaceDetector,
    *,
    size: int = FacesParams.size,
    margin: float = FacesParams.margin,
    source: str | Path = "frames",
) -> FaceCrops:
    """Detect the face in each frame and cut square crops around it.

    Parameters
    ----------
    frames : ndarray, uint8, shape (k, H, W, 3)
        RGB frames of one clip.
    detector : FaceDetector
    size : int
        Side of the crops in pixels.
    margin : float
        See :func:`square_box`.
    source : str or Path
        The clip's name, for error messages.

    Returns
    -------
    FaceCrops

    Raises
    ------
    NoFaceError
        No frame has a face.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ConfigError(f"{source}: frames must have shape (k, H, W, 3) with k >= 1, not {frames.shape}")
    detections = [detector.detect(frame) for frame in frames]
    return crops_from_detections(frames, detections, size=size, margin=margin, source=source, options=detector.options)


def crops_from_detections(
    frames: np.ndarray,
    detections: list[Box | None],
    *,
    size: int = FacesParams.size,
    margin: float = FacesParams.margin,
    source: str | Path = "frames",
    options: FaceDetectorOptions | None = None,
) -> FaceCrops:
    """The crops of :func:`face_crops` from detections already made (one per frame, or None)."""
    found = np.array([d is not None for d in detections])
    if not found.any():
        how = f" (MediaPipe {options.model}-range model, min_confidence {options.min_confidence:g})" if options else ""
        raise NoFaceError(f"{source}: no face in any of {len(frames)} sampled frames{how}")
    boxes = np.zeros((len(frames), 4), dtype=np.float32)
    scores = np.zeros(len(frames), dtype=np.float32)
    for i, detection in enumerate(detections):
        if detection is not None:
            boxes[i] = square_box(detection, margin=margin, image_shape=frames.shape[1:])
            scores[i] = detection.score
    boxes = fill_missing_boxes(boxes, found)
    crops = np.stack([crop_face(frame, tuple(box), size=size) for frame, box in zip(frames, boxes)])
    return FaceCrops(
        crops=crops, found=found, boxes=boxes, scores=scores, frame_size=(frames.shape[2], frames.shape[1])
    )


# --------------------------------------------------------------------------- per worker

_DETECTOR: FaceDetector | None = None
_OPTIONS = FaceDetectorOptions()
# Frames are decoded scaled down to this longer side before Python holds them: a worker's
# memory then stays the same from 1080p up (a 7680x4320 frame is 100 MB of RGB; a few of
# them per clip took 3.6 GB per worker). The detector works on 128- or 192-pixel inputs and
# the crops are 64 pixels, so nothing is lost; 1920 leaves every 1080p or smaller clip as it is.
MAX_FRAME_SIDE = 1920


def init_worker(model: str = FacesParams.model, min_confidence: float = FacesParams.min_confidence) -> None:
    """Set this process's face-detector options (the initializer of the ``face_crops`` pool).

    The detector itself is created on first use (:func:`worker_detector`): a worker whose
    clips all come from the per-clip cache never pays MediaPipe's start-up. Also callable
    in-process; calling it again replaces the detector.
    """
    global _DETECTOR, _OPTIONS
    _OPTIONS = FaceDetectorOptions(model=model, min_confidence=min_confidence)
    if _DETECTOR is not None:
        _DETECTOR.close()
    _DETECTOR = None


def worker_detector() -> FaceDetector:
    """This process's one detector, created on first use with the options of :func:`init_worker`."""
    global _DETECTOR
    if _DETECTOR is None:
        _DETECTOR = FaceDetector(_OPTIONS)
    return _DETECTOR


def clip_face_crops(
    path: str | Path,
    start_s: float,
    end_s: float,
    *,
    frames_per_clip: int = FacesParams.frames_per_clip,
    size: int = FacesParams.size,
    margin: float = FacesParams.margin,
    max_side: int | None = MAX_FRAME_SIDE,
    threads: int = 0,
    info: media.MediaInfo | None = None,
) -> FaceCrops:
    """Per-clip function of the ``face_crops`` stage: crops of frames evenly spaced in a span.

    Decodes only the ``frames_per_clip`` frames nearest :func:`mmer.media.frame_times` of the span
    (one ffmpeg run) and runs this worker's detector on them.

    Parameters
    ----------
    path : str or Path
        A video file.
    start_s, end_s : float
        The span (from the ``trim`` stage), in seconds.
    frames_per_clip, size, margin
        Params ``faces.*``.
    max_side : int, optional
        Decode frames scaled down to this longer side (boxes then refer to that size; the
        crops' ``frame_size`` says which). Default :data:`MAX_FRAME_SIDE`; None: full size.
    threads : int
        Decoder threads (:func:`mmer.media.read_frames`): 1 when every core runs a worker of
        its own, 0 (ffmpeg's choice) for one clip alone. The crops do not depend on it.
    info : MediaInfo, optional
        The file's probe result when the caller has it (the ``face_crops`` stage: from the
        ``trim`` stage's spans table, :func:`mmer.media.info_from_facts`); else it is probed.

    Raises
    ------
    MediaError
        Unreadable file or no video stream.
    NoFaceError
        No sampled frame has a face.
    """
    times = media.frame_times(start_s, end_s, frames_per_clip)
    frames = media.read_frames(path, times, max_side=max_side, threads=threads, info=info)
    crops = face_crops(frames, worker_detector(), size=size, margin=margin, source=path)
    crops.times_s = times
    return crops

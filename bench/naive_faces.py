"""The peer approach to face crops, for the benchmark only: decode every frame, detect on each."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mmer import media
from mmer.config import FacesParams
from mmer.faces import (
    FaceCrops,
    crops_from_detections,
    worker_detector,
)

logger = logging.getLogger(__name__)


def naive_face_crops(
    path: str | Path,
    start_s: float,
    end_s: float,
    *,
    frames_per_clip: int = FacesParams.frames_per_clip,
    size: int = FacesParams.size,
    margin: float = FacesParams.margin,
) -> FaceCrops:
    """The usual approach, for benchmarks only: decode every frame, detect on all, subsample.

    Gives the same crops as :func:`clip_face_crops` at a multiple of the cost.
    """
    frames, pts = media.read_all_frames(path)
    detector = worker_detector()
    every = [detector.detect(frame) for frame in frames]
    times = media.frame_times(start_s, end_s, frames_per_clip)
    chosen = [int(np.argmin(np.abs(pts - t))) for t in times]
    crops = crops_from_detections(frames[chosen], [every[i] for i in chosen], size=size, margin=margin, source=path)
    crops.times_s = times
    return crops

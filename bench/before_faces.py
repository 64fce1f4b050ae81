"""Face crops as mmer made them before issue 15, for the benchmark only: the "before" of its ratio.

The crops are the same as :func:`mmer.faces.clip_face_crops`'s (``tests/test_faces.py``
checks it); what differs is the cost:

- each worker's detector start-up imported TensorFlow (through ``import mediapipe``), which
  the detector never uses: :func:`init_worker_before` imports it first, as that did;
- ffmpeg chose its decoder threads (one per core) in every worker of a pool that already
  ran one worker per core: :func:`before_face_crops` decodes with ``threads=0``.
"""

from __future__ import annotations

from pathlib import Path

from mmer import faces
from mmer.config import FacesParams


def init_worker_before(model: str = FacesParams.model, min_confidence: float = FacesParams.min_confidence) -> None:
    """:func:`mmer.faces.init_worker`, with the TensorFlow import the detector's start-up had."""
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
    """:func:`mmer.faces.clip_face_crops` with ffmpeg's own choice of decoder threads."""
    return faces.clip_face_crops(
        path, start_s, end_s, frames_per_clip=frames_per_clip, size=size, margin=margin, threads=0
    )

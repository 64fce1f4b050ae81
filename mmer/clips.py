"""Training data from the feature caches: clips aligned to the index, batches, augmentation.

Every model (audio, video or fused) uses the clips present in *both* caches, so unimodal and
fused results are measured on the same clips. Augmentations are pure numpy functions of a
batch and a seeded generator (:class:`mmer.training.ClipBatches` feeds them to Keras).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmer.audio import speech_mask
from mmer.corpus import read_index
from mmer.errors import ConfigError, DatasetError
from mmer.featurefile import FeatureCache, read_cache
from mmer.splits import fold_splits

logger = logging.getLogger(__name__)

CACHE_ARRAYS = {"audio": ("audio_features", "speech_frames"), "video": ("faces", "face_found")}
FUNCTIONALS_ARRAY = "functionals"  # per-clip functionals [n, d] (mmer.functionals), when audio.functionals is set
# speed/pitch-perturbed audio copies [n, P, T, c] and [n, P], when audio.perturbations is set
PERTURBED_ARRAYS = {"audio_features": "audio_features_perturbed", "speech_frames": "speech_frames_perturbed"}


@dataclasses.dataclass
class ClipData:
    """Aligned clips: one row per clip in every array.

    Attributes
    ----------
    clip_ids, actors, labels, splits : ndarray [n]
        From the index (``actors``: speaker names); ``splits`` holds train/val/test (or
        ``heldout``) under the chosen fold.
    arrays : dict of str to ndarray
        ``mfcc`` [n, T, c], ``speech_frames`` [n], ``faces`` [n, f, s, s, 3], ``face_found`` [n, f];
        ``functionals`` [n, d] when the audio cache holds them.
    attrs : dict
        The attributes of each cache, by cache name (``audio``, ``video``).
    """

    clip_ids: np.ndarray
    actors: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    arrays: dict[str, np.ndarray]
    attrs: dict[str, dict[str, Any]]

    def __len__(self) -> int:
        return len(self.clip_ids)

    def take(self, rows: np.ndarray) -> ClipData:
        """The clips at ``rows`` (indices or a boolean mask)."""
        return ClipData(
            clip_ids=self.clip_ids[rows],
            actors=self.actors[rows],
            labels=self.labels[rows],
            splits=self.splits[rows],
            arrays={k: v[rows] for k, v in self.arrays.items()},
            attrs=self.attrs,
        )

    def split(self, name: str) -> ClipData:
        """The clips of split ``name`` (train, val or test)."""
        return self.take(self.splits == name)

    def inputs(self, names: Sequence[str]) -> dict[str, np.ndarray]:
        """The model inputs ``names`` (e.g. ``('mfcc', 'faces')``) as a dict of arrays."""
        missing = [n for n in names if n not in self.arrays]
        if missing:
            raise DatasetError(f"the feature caches hold no {missing} (have {sorted(self.arrays)})")
        return {n: self.arrays[n] for n in names}


def align_clips(index: pd.DataFrame, caches: Mapping[str, FeatureCache], *, fold: int = -1) -> ClipData:
    """The index clips present in every cache, in index order, with their split under ``fold``.

    Parameters
    ----------
    index : DataFrame
        ``data/index.csv`` (clip_id, actor, label, split, fold, ...).
    caches : mapping of str to FeatureCache
        ``{'audio': ..., 'video': ...}``; each contributes the arrays of :data:`CACHE_ARRAYS`.
    fold : int
        -1: the fixed split; k: cross-validation fold k is the test set (see
        :func:`mmer.splits.fold_splits`).

    Raises
    ------
    DatasetError
        When no clip is in every cache.
    """
    unknown = sorted(set(caches) - set(CACHE_ARRAYS))
    if unknown:
        raise ConfigError(f"unknown caches {unknown}; known: {sorted(CACHE_ARRAYS)}")
    splits = fold_splits(index, fold)
    # an empty cache is a modality the corpus does not have (no video in an audio-only
    # corpus): it takes no part, and a model that needs its arrays says so in inputs()
    empty = sorted(name for name, cache in caches.items() if not cache.clip_ids)
    if empty and len(empty) < len(caches):
        logger.info(
            "the %s cache holds no clips: aligning on %s alone",
            "/".join(empty),
            "/".join(sorted(set(caches) - set(empty))),
        )
        caches = {name: cache for name, cache in caches.items() if name not in empty}
    present = np.ones(len(index), dtype=bool)
    for cache in caches.values():
        present &= index["clip_id"].isin(set(cache.clip_ids)).to_numpy()
    kept = index[present]
    dropped = len(index) - len(kept)
    if dropped:
        logger.info("%d of %d index clips are missing from a feature cache and are left out", dropped, len(index))
    if kept.empty:
        raise DatasetError(f"no clip of the index ({len(index)} clips) is in every feature cache {sorted(caches)}")
    ids = kept["clip_id"].tolist()
    arrays: dict[str, np.ndarray] = {}
    for name, cache in caches.items():
        selected = cache.select(ids)
        wanted = (*CACHE_ARRAYS[name], *((*PERTURBED_ARRAYS.values(), FUNCTIONALS_ARRAY) if name == "audio" else ()))
        arrays.update({key: selected[key] for key in wanted if key in selected})
    return ClipData(
        clip_ids=np.asarray(ids, dtype=object),
        actors=kept["actor"].astype(str).to_numpy(dtype=object),
        labels=kept["label"].to_numpy(dtype=np.int64),
        splits=splits[present].to_numpy(dtype=object),
        arrays=arrays,
        attrs={name: dict(cache.attrs) for name, cache in caches.items()},
    )


def load_clip_data(
    index_path: str | Path, *, audio_path: str | Path, video_path: str | Path, fold: int = -1
) -> ClipData:
    """Read the index and both caches and align them (see :func:`align_clips`)."""
    return align_clips(read_index(index_path), read_caches(audio_path, video_path), fold=fold)


def read_caches(audio_path: str | Path, video_path: str | Path) -> dict[str, FeatureCache]:
    """The audio cache (with any perturbed copies) and the video cache's crops and flags."""
    return {"audio": read_cache(audio_path), "video": read_cache(video_path, CACHE_ARRAYS["video"])}


def with_perturbed_copies(clips: ClipData) -> ClipData:
    """The clips followed by each clip's perturbed audio copies, as extra clips.

    A copy keeps its clip's label, actor, split and faces; its id is
    ``<clip_id>~<perturbation>`` (names from the audio cache's ``perturbations``
    attribute). Without perturbed arrays the clips come back unchanged. Use it on the
    training clips only: validation and test clips are never perturbed.
    """
    if PERTURBED_ARRAYS["audio_features"] not in clips.arrays:
        return clips
    copies_mfcc, copies_frames = (
        clips.arrays[PERTURBED_ARRAYS["audio_features"]],
        clips.arrays[PERTURBED_ARRAYS["speech_frames"]],
    )
    n_clips, n_copies = copies_mfcc.shape[:2]
    names = list(clips.attrs.get("audio", {}).get("perturbations") or [f"copy{k}" for k in range(n_copies)])
    if len(names) != n_copies:
        raise DatasetError(
            f"the audio cache has {n_copies} perturbed copies per clip but names {len(names)} perturbations {names}"
        )
    rows = np.tile(np.arange(n_clips), n_copies)  # copy k of every clip, then copy k+1
    base = {k: v for k, v in clips.arrays.items() if k not in PERTURBED_ARRAYS.values()}
    extra = {k: v[rows] for k, v in base.items()}
    extra["audio_features"] = copies_mfcc.transpose(1, 0, 2, 3).reshape(n_copies * n_clips, *copies_mfcc.shape[2:])
    extra["speech_frames"] = copies_frames.T.reshape(-1)
    suffixes = np.repeat(np.asarray([f"~{name}" for name in names], dtype=object), n_clips)
    return ClipData(
        clip_ids=np.concatenate([clips.clip_ids, clips.clip_ids[rows] + suffixes]),
        actors=np.concatenate([clips.actors, clips.actors[rows]]),
        labels=np.concatenate([clips.labels, clips.labels[rows]]),
        splits=np.concatenate([clips.splits, clips.splits[rows]]),
        arrays={k: np.concatenate([v, extra[k]]) for k, v in base.items()},
        attrs=clips.attrs,
    )


def frame_statistics(mfcc: np.ndarray, speech_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each coefficient over the unpadded frames of all clips.

    Parameters
    ----------
    mfcc : ndarray [n, T, c]
        Zero pre-padded: the last ``min(speech_frames, T)`` frames of each clip are speech.
    speech_frames : ndarray [n]

    Returns
    -------
    mean, std : ndarray [c], float32
        ``std`` is at least 1e-6, so dividing by it is safe.
    """
    if mfcc.ndim != 3 or len(speech_frames) != len(mfcc) or len(mfcc) == 0:
        raise ValueError(
            f"mfcc must be [n > 0, T, c] with one speech_frames per clip, got {mfcc.shape} and {len(speech_frames)}"
        )
    n_time = mfcc.shape[1]
    speech = speech_mask(speech_frames, n_time)
    frames = mfcc[speech].astype(np.float64)  # [speech frames, c]
    return frames.mean(axis=0).astype(np.float32), np.maximum(frames.std(axis=0), 1e-6).astype(np.float32)

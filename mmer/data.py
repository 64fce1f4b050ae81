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
from mmer.cache import FeatureCache, read_cache
from mmer.dataset import fold_splits, read_index
from mmer.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

CACHE_ARRAYS = {"audio": ("mfcc", "n_frames"), "video": ("faces", "face_found")}
# speed/pitch-perturbed audio copies [n, P, T, c] and [n, P], when audio.perturbations is set
PERTURBED_ARRAYS = {"mfcc": "mfcc_perturbed", "n_frames": "n_frames_perturbed"}


@dataclasses.dataclass
class ClipData:
    """Aligned clips: one row per clip in every array.

    Attributes
    ----------
    clip_ids, actors, labels, splits : ndarray [n]
        From the index; ``splits`` holds train/val/test under the chosen fold.
    arrays : dict of str to ndarray
        ``mfcc`` [n, T, c], ``n_frames`` [n], ``faces`` [n, f, s, s, 3], ``face_found`` [n, f].
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
        :func:`mmer.dataset.fold_splits`).

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
        logger.info("the %s cache holds no clips: aligning on %s alone", "/".join(empty), "/".join(sorted(set(caches) - set(empty))))
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
        wanted = (*CACHE_ARRAYS[name], *(PERTURBED_ARRAYS.values() if name == "audio" else ()))
        arrays.update({key: selected[key] for key in wanted if key in selected})
    return ClipData(
        clip_ids=np.asarray(ids, dtype=object),
        actors=kept["actor"].to_numpy(dtype=int),
        labels=kept["label"].to_numpy(dtype=np.int64),
        splits=splits[present].to_numpy(dtype=object),
        arrays=arrays,
        attrs={name: dict(cache.attrs) for name, cache in caches.items()},
    )


def load_clip_data(index_path: str | Path, *, audio_path: str | Path, video_path: str | Path, fold: int = -1) -> ClipData:
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
    if PERTURBED_ARRAYS["mfcc"] not in clips.arrays:
        return clips
    copies_mfcc, copies_frames = clips.arrays[PERTURBED_ARRAYS["mfcc"]], clips.arrays[PERTURBED_ARRAYS["n_frames"]]
    n_clips, n_copies = copies_mfcc.shape[:2]
    names = list(clips.attrs.get("audio", {}).get("perturbations") or [f"copy{k}" for k in range(n_copies)])
    if len(names) != n_copies:
        raise DatasetError(f"the audio cache has {n_copies} perturbed copies per clip but names {len(names)} perturbations {names}")
    rows = np.tile(np.arange(n_clips), n_copies)  # copy k of every clip, then copy k+1
    base = {k: v for k, v in clips.arrays.items() if k not in PERTURBED_ARRAYS.values()}
    extra = {k: v[rows] for k, v in base.items()}
    extra["mfcc"] = copies_mfcc.transpose(1, 0, 2, 3).reshape(n_copies * n_clips, *copies_mfcc.shape[2:])
    extra["n_frames"] = copies_frames.T.reshape(-1)
    suffixes = np.repeat(np.asarray([f"~{name}" for name in names], dtype=object), n_clips)
    return ClipData(
        clip_ids=np.concatenate([clips.clip_ids, clips.clip_ids[rows] + suffixes]),
        actors=np.concatenate([clips.actors, clips.actors[rows]]),
        labels=np.concatenate([clips.labels, clips.labels[rows]]),
        splits=np.concatenate([clips.splits, clips.splits[rows]]),
        arrays={k: np.concatenate([v, extra[k]]) for k, v in base.items()},
        attrs=clips.attrs,
    )


def frame_statistics(mfcc: np.ndarray, n_frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each coefficient over the unpadded frames of all clips.

    Parameters
    ----------
    mfcc : ndarray [n, T, c]
        Zero pre-padded: the last ``min(n_frames, T)`` frames of each clip are speech.
    n_frames : ndarray [n]

    Returns
    -------
    mean, std : ndarray [c], float32
        ``std`` is at least 1e-6, so dividing by it is safe.
    """
    if mfcc.ndim != 3 or len(n_frames) != len(mfcc) or len(mfcc) == 0:
        raise ValueError(f"mfcc must be [n > 0, T, c] with one n_frames per clip, got {mfcc.shape} and {len(n_frames)}")
    n_time = mfcc.shape[1]
    speech = speech_mask(n_frames, n_time)
    frames = mfcc[speech].astype(np.float64)  # [speech frames, c]
    return frames.mean(axis=0).astype(np.float32), np.maximum(frames.std(axis=0), 1e-6).astype(np.float32)


def augment_mfcc(
    mfcc: np.ndarray,
    n_frames: np.ndarray,
    *,
    rng: np.random.Generator,
    noise_std: float = 0.0,
    time_shift: int = 0,
    freq_masks: int = 0,
    freq_mask_width: int = 0,
    time_masks: int = 0,
    time_mask_width: int = 0,
) -> np.ndarray:
    """Augmented copy of a batch of zero pre-padded MFCCs; the padding stays zero.

    Parameters
    ----------
    mfcc : ndarray [n, T, c]
        Standardised, time-major, zero pre-padded.
    n_frames : ndarray [n]
        Frames before padding/truncation; the last ``min(n_frames, T)`` frames are speech.
    rng : numpy Generator
    noise_std : float
        Gaussian noise added to the speech frames.
    time_shift : int
        The speech frames are rolled by up to this many frames either way.
    freq_masks, freq_mask_width : int
        Number of bands of up to ``freq_mask_width`` coefficients set to 0 (SpecAugment).
    time_masks, time_mask_width : int
        Number of runs of up to ``time_mask_width`` speech frames set to 0.

    Returns
    -------
    ndarray [n, T, c], float32
    """
    if mfcc.ndim != 3 or len(n_frames) != len(mfcc):
        raise ValueError(f"mfcc must be [n, T, c] with one n_frames per clip, got {mfcc.shape} and {len(n_frames)}")
    out = np.array(mfcc, dtype=np.float32, copy=True)
    n_time, n_coef = out.shape[1:]
    for i, length in enumerate(np.minimum(np.asarray(n_frames), n_time)):
        start = n_time - int(length)
        speech = out[i, start:]
        if time_shift and length > 1:
            speech[:] = np.roll(speech, int(rng.integers(-time_shift, time_shift + 1)), axis=0)
        if noise_std:
            speech += rng.normal(0.0, noise_std, size=speech.shape).astype(np.float32)
        for _ in range(freq_masks if freq_mask_width else 0):
            width = int(rng.integers(0, min(freq_mask_width, n_coef) + 1))
            low = int(rng.integers(0, n_coef - width + 1))
            speech[:, low : low + width] = 0.0
        for _ in range(time_masks if time_mask_width else 0):
            width = int(rng.integers(0, min(time_mask_width, len(speech)) + 1))
            low = int(rng.integers(0, len(speech) - width + 1))
            speech[low : low + width] = 0.0
    return out


def augment_faces(
    faces: np.ndarray,
    *,
    rng: np.random.Generator,
    flip: bool = False,
    brightness: float = 0.0,
    contrast: float = 0.0,
    pixel_shift: int = 0,
) -> np.ndarray:
    """Augmented copy of a batch of face crops; every frame of a clip changes the same way.

    Parameters
    ----------
    faces : ndarray [n, frames, height, width, 3], uint8
    rng : numpy Generator
    flip : bool
        Mirror left-right with probability 1/2.
    brightness : float
        Add up to this share of 255, either way.
    contrast : float
        Scale the deviation from the clip's mean by a factor in [1 - contrast, 1 + contrast].
    pixel_shift : int
        Translate by up to this many pixels in each direction (edges repeated).

    Returns
    -------
    ndarray, uint8, same shape
    """
    if faces.ndim != 5:
        raise ValueError(f"faces must be [n, frames, height, width, channels], got shape {faces.shape}")
    out = np.empty_like(faces)
    height, width = faces.shape[2:4]
    for i, clip in enumerate(faces):
        x = clip.astype(np.float32)
        if flip and rng.random() < 0.5:
            x = x[:, :, ::-1]
        if contrast:
            mean = x.mean()
            x = (x - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
        if brightness:
            x = x + rng.uniform(-brightness, brightness) * 255.0
        if pixel_shift:
            dy, dx = (int(v) for v in rng.integers(-pixel_shift, pixel_shift + 1, size=2))
            padded = np.pad(x, ((0, 0), (pixel_shift, pixel_shift), (pixel_shift, pixel_shift), (0, 0)), mode="edge")
            x = padded[:, pixel_shift + dy : pixel_shift + dy + height, pixel_shift + dx : pixel_shift + dx + width]
        out[i] = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return out


AUDIO_AUGMENT_KEYS = ("noise_std", "time_shift", "freq_masks", "freq_mask_width", "time_masks", "time_mask_width")
VIDEO_AUGMENT_KEYS = ("flip", "brightness", "contrast", "pixel_shift")


def augment_batch(inputs: Mapping[str, np.ndarray], n_frames: np.ndarray | None, *, rng: np.random.Generator, **augment: Any) -> dict[str, np.ndarray]:
    """Apply :func:`augment_mfcc` / :func:`augment_faces` to the inputs present in ``inputs``.

    ``augment`` holds the keyword arguments of both (the ``augment`` params section without
    ``enabled``); ``n_frames`` is needed when ``mfcc`` is present.
    """
    unknown = sorted(set(augment) - set(AUDIO_AUGMENT_KEYS) - set(VIDEO_AUGMENT_KEYS))
    if unknown:
        raise ConfigError(f"unknown augmentation arguments {unknown}")
    out = dict(inputs)
    if "mfcc" in out:
        if n_frames is None:
            raise ValueError("augmenting mfcc needs n_frames")
        out["mfcc"] = augment_mfcc(out["mfcc"], n_frames, rng=rng, **{k: v for k, v in augment.items() if k in AUDIO_AUGMENT_KEYS})
    if "faces" in out:
        out["faces"] = augment_faces(out["faces"], rng=rng, **{k: v for k, v in augment.items() if k in VIDEO_AUGMENT_KEYS})
    return out


def mixup_batch(
    inputs: Mapping[str, np.ndarray], targets: np.ndarray, *, rng: np.random.Generator, alpha: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Mixup (Zhang et al., 2018): each clip mixed with another clip of the batch, labels alike.

    Clip i becomes ``lam_i * x_i + (1 - lam_i) * x_j`` with ``lam_i ~ Beta(alpha, alpha)``
    folded to ``max(lam, 1 - lam)`` (so clip i stays the larger part) and ``j`` a random
    permutation of the batch. ``uint8`` inputs (face crops) are rounded back to ``uint8``.

    Parameters
    ----------
    inputs : mapping of str to ndarray
        The batch's model inputs, one row per clip.
    targets : ndarray [n, n_classes]
        One-hot (or already soft) labels.
    rng : numpy Generator
    alpha : float
        The Beta parameter (> 0); small values (0.2-0.4) mix little.

    Returns
    -------
    inputs : dict of str to ndarray
    targets : ndarray [n, n_classes], float32
    """
    if alpha <= 0:
        raise ConfigError(f"mixup alpha must be positive, not {alpha!r}")
    n = len(targets)
    lam = rng.beta(alpha, alpha, size=n).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)
    partner = rng.permutation(n)
    mixed = {}
    for name, array in inputs.items():
        weight = lam.reshape(-1, *([1] * (array.ndim - 1)))
        blend = weight * array.astype(np.float32) + (1.0 - weight) * array[partner].astype(np.float32)
        mixed[name] = np.clip(np.rint(blend), 0, 255).astype(np.uint8) if array.dtype == np.uint8 else blend.astype(array.dtype)
    soft = lam[:, None] * targets + (1.0 - lam[:, None]) * targets[partner]
    return mixed, soft.astype(np.float32)


def member_splits(splits: np.ndarray, actors: np.ndarray, n_members: int) -> list[np.ndarray]:
    """The train/val splits of ``n_members`` ensemble members that take turns validating.

    The development speakers (those of the ``train`` and ``val`` splits) are sorted and cut
    into ``n_members`` groups of consecutive actors; member j validates on group j and trains
    on the others. ``test`` (and any other split) is left as it is, so the test speakers are
    never seen. With RAVDESS cross-validation folds of 3 consecutive actors and 5 members,
    the groups are the 5 non-test folds.

    Parameters
    ----------
    splits : ndarray [n] of str
    actors : ndarray [n] of int
    n_members : int
        2 or more, at most the number of development speakers.

    Returns
    -------
    list of ndarray [n] of str
    """
    development = np.isin(splits, ("train", "val"))
    speakers = np.unique(actors[development])
    if not 2 <= n_members <= len(speakers):
        raise ConfigError(f"an ensemble by fold needs 2 to {len(speakers)} members (one group of speakers each), not {n_members}")
    out = []
    for group in np.array_split(speakers, n_members):
        member = np.asarray(splits, dtype=object).copy()
        member[development] = np.where(np.isin(actors[development], group), "val", "train")
        out.append(member)
    return out

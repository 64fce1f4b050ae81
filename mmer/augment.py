"""On-the-fly augmentation of training batches, and mixup: pure numpy functions of a seeded generator."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from mmer.errors import ConfigError

logger = logging.getLogger(__name__)


def augment_mfcc(
    mfcc: np.ndarray,
    speech_frames: np.ndarray,
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
    speech_frames : ndarray [n]
        Frames before padding/truncation; the last ``min(speech_frames, T)`` frames are speech.
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
    if mfcc.ndim != 3 or len(speech_frames) != len(mfcc):
        raise ValueError(
            f"mfcc must be [n, T, c] with one speech_frames per clip, got {mfcc.shape} and {len(speech_frames)}"
        )
    out = np.array(mfcc, dtype=np.float32, copy=True)
    n_time, n_coef = out.shape[1:]
    for i, length in enumerate(np.minimum(np.asarray(speech_frames), n_time)):
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


def augment_batch(
    inputs: Mapping[str, np.ndarray], speech_frames: np.ndarray | None, *, rng: np.random.Generator, **augment: Any
) -> dict[str, np.ndarray]:
    """Apply :func:`augment_mfcc` / :func:`augment_faces` to the inputs present in ``inputs``.

    ``augment`` holds the keyword arguments of both (the ``augment`` params section without
    ``enabled``); ``speech_frames`` is needed when ``mfcc`` is present.
    """
    unknown = sorted(set(augment) - set(AUDIO_AUGMENT_KEYS) - set(VIDEO_AUGMENT_KEYS))
    if unknown:
        raise ConfigError(f"unknown augmentation arguments {unknown}")
    out = dict(inputs)
    if "audio_features" in out:
        if speech_frames is None:
            raise ValueError("augmenting mfcc needs speech_frames")
        out["audio_features"] = augment_mfcc(
            out["audio_features"],
            speech_frames,
            rng=rng,
            **{k: v for k, v in augment.items() if k in AUDIO_AUGMENT_KEYS},
        )
    if "faces" in out:
        out["faces"] = augment_faces(
            out["faces"], rng=rng, **{k: v for k, v in augment.items() if k in VIDEO_AUGMENT_KEYS}
        )
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
        mixed[name] = (
            np.clip(np.rint(blend), 0, 255).astype(np.uint8) if array.dtype == np.uint8 else blend.astype(array.dtype)
        )
    soft = lam[:, None] * targets + (1.0 - lam[:, None]) * targets[partner]
    return mixed, soft.astype(np.float32)

"""Figures for `dvc plots`: the seed's sample figure (face crops + MFCC image + label)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmer.io import atomic_path

logger = logging.getLogger(__name__)


def pick_samples(labels: Sequence[int], n: int = 3) -> list[int]:
    """Row numbers of ``n`` samples with different labels where possible (first of each label)."""
    chosen, seen = [], set()
    for row, label in enumerate(labels):
        if label not in seen:
            chosen.append(row)
            seen.add(label)
        if len(chosen) == n:
            return chosen
    extra = [row for row in range(len(labels)) if row not in chosen]
    return (chosen + extra)[:n]


def sample_figure(
    faces: np.ndarray,
    mfcc: np.ndarray,
    titles: Sequence[str],
    out_path: str | Path,
    *,
    hop_length: int = 160,
    sample_rate: int = 16000,
) -> None:
    """Plot a few samples: their face crops in a row, their MFCC image, their emotion.

    Parameters
    ----------
    faces : ndarray, shape (n, n_frames, size, size, 3), uint8, or None
        None (an audio-only corpus): the MFCC images alone.
    mfcc : ndarray, shape (n, T, n_mfcc)
        Time-major, as in the audio cache.
    titles : sequence of str
        One title per sample (clip id and emotion).
    out_path : str or Path
        PNG to write.
    """
    import librosa.display
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, n_frames = (len(mfcc), 0) if faces is None else faces.shape[:2]
    if n == 0:
        raise ValueError("sample_figure needs at least one sample")
    fig = plt.figure(figsize=(2 + 1.3 * n_frames + 4, 1.9 * n), dpi=100)
    grid = fig.add_gridspec(n, n_frames + 3)
    for row in range(n):
        for frame in range(n_frames):
            axis = fig.add_subplot(grid[row, frame])
            axis.imshow(faces[row, frame])
            axis.set_axis_off()
        axis = fig.add_subplot(grid[row, n_frames:])
        librosa.display.specshow(mfcc[row].T, x_axis="time", sr=sample_rate, hop_length=hop_length, ax=axis, cmap="coolwarm")
        axis.set_ylabel("MFCC")
        axis.set_title(titles[row], fontsize=9)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    logger.info("wrote %s", out_path)

"""Every figure mmer draws: the sample figure, the confusion matrix and per-class recall.

Figures are written as PNG for ``dvc plots``, atomically; matplotlib is imported only when a
figure is drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmer.config import AudioParams, SpanParams
from mmer.files import atomic_path

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
    hop_length: int = AudioParams.hop_length,
    sample_rate: int = SpanParams.sample_rate,
) -> None:
    """Plot a few samples: their face crops in a row, their MFCC image, their emotion.

    Parameters
    ----------
    faces : ndarray, shape (n, frames_per_clip, size, size, 3), uint8, or None
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

    n, frames_per_clip = (len(mfcc), 0) if faces is None else faces.shape[:2]
    if n == 0:
        raise ValueError("sample_figure needs at least one sample")
    fig = plt.figure(figsize=(2 + 1.3 * frames_per_clip + 4, 1.9 * n), dpi=100)
    grid = fig.add_gridspec(n, frames_per_clip + 3)
    for row in range(n):
        for frame in range(frames_per_clip):
            axis = fig.add_subplot(grid[row, frame])
            axis.imshow(faces[row, frame])
            axis.set_axis_off()
        axis = fig.add_subplot(grid[row, frames_per_clip:])
        librosa.display.specshow(
            mfcc[row].T, x_axis="time", sr=sample_rate, hop_length=hop_length, ax=axis, cmap="coolwarm"
        )
        axis.set_ylabel("MFCC")
        axis.set_title(titles[row], fontsize=9)
    fig.tight_layout()
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    logger.info("wrote %s", out_path)


def plot_confusion(confusion: np.ndarray, *, label_names: Sequence[str], path: str | Path, title: str = "") -> None:
    """Confusion matrix as a PNG: counts, coloured by the share of each actual class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(confusion)
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.6 * len(label_names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (row, col), count in np.ndenumerate(confusion):
        ax.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            color="white" if shares[row, col] > 0.5 else "black",
            fontsize=9,
        )
    ax.set_xticks(range(len(label_names)), label_names, rotation=45, ha="right")
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(title or f"confusion ({confusion.sum()} clips)")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of actual class")
    fig.tight_layout()
    _save_figure(fig, path)


def plot_per_class_recall(
    recall: Mapping[str, float | None], *, path: str | Path, chance: float | None = None, title: str = ""
) -> None:
    """Per-class recall as a bar chart, with the chance level (1 / n_classes) as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(recall)
    values = [np.nan if recall[n] is None else recall[n] for n in names]
    fig, ax = plt.subplots(figsize=(1.5 + 0.7 * len(names), 3.5))
    ax.bar(names, values, color="tab:blue")
    ax.axhline(chance if chance is not None else 1.0 / len(names), color="grey", linestyle="--", label="chance")
    ax.set_ylim(0, 1)
    ax.set_ylabel("recall")
    ax.set_title(title or "recall per class")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(loc="upper right")
    fig.tight_layout()
    _save_figure(fig, path)


def _save_figure(fig: Any, path: str | Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)

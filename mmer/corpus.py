"""RAVDESS names, labels, speaker splits and the clip index (``data/index.csv``).

A RAVDESS file name is seven two-digit fields::

    modality-vocal_channel-emotion-intensity-statement-repetition-actor
    01-01-06-01-02-01-12.mp4  ->  audio-video, speech, fearful, normal, "Dogs...", 1st, actor 12

Odd actors are male, even actors female. Splits are always by speaker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mmer.config import IndexParams
from mmer.errors import DatasetError
from mmer.files import walk_files
from mmer.labels import emotion_label, label_names
from mmer.ravdess import parse_name
from mmer.splits import assign_folds, fixed_split

logger = logging.getLogger(__name__)

MEDIA_SUFFIXES = (".mp4", ".wav", ".flac")
INDEX_COLUMNS = [
    "clip_id",
    "path",
    "dataset",
    "modality",
    "vocal_channel",
    "actor",
    "sex",
    "emotion",
    "label",
    "intensity",
    "statement",
    "repetition",
    "recording",
    "split",
    "fold",
]


def find_media(root: str | Path) -> list[Path]:
    """Every .mp4/.wav/.flac file below ``root``, sorted; symlinked folders are followed
    (each real folder once, so link loops end: :func:`mmer.files.walk_files`)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: corpus folder not found")
    return sorted(p for p in walk_files(root) if p.suffix.lower() in MEDIA_SUFFIXES)


def one_per_recording(index: pd.DataFrame) -> pd.DataFrame:
    """Keep one clip per recording when several modalities of it are present.

    RAVDESS gives the same performance as an audio-video file (01), a silent video (02) and
    an audio-only file (03). They share every id field but the modality, so they are one
    recording: keeping all of them would count one performance two or three times. The
    preference is audio-video, then audio-only, then video-only.
    """
    preference = {"av": 0, "audio": 1, "video": 2}
    ranked = index.assign(_rank=index["modality"].map(preference)).sort_values(["recording", "_rank"], kind="stable")
    kept = ranked.drop_duplicates("recording", keep="first").drop(columns="_rank")
    if len(kept) < len(index):
        dropped = index[~index["clip_id"].isin(kept["clip_id"])]
        counts = ", ".join(f"{k}={v}" for k, v in dropped["modality"].value_counts().items())
        logger.info(
            "%d clips are other modalities of recordings already indexed (%s): one clip per recording kept",
            len(dropped),
            counts,
        )
    return kept


def build_index(
    root: str | Path | Sequence[str | Path],
    *,
    classes: str = IndexParams.classes,
    subset: Sequence[str] = IndexParams.subset,
    modalities: Sequence[str] = IndexParams.modalities,
    vocal_channels: Sequence[str] = IndexParams.vocal_channels,
    val_actors: Sequence[int] = IndexParams.val_actors,
    test_actors: Sequence[int] = IndexParams.test_actors,
    n_folds: int = IndexParams.n_folds,
    dataset: str = "ravdess",
) -> pd.DataFrame:
    """Build the clip index of a corpus folder.

    Parameters
    ----------
    root : str or Path, or a sequence of them
        Searched recursively for .mp4, .wav and .flac files with RAVDESS names.
    classes, subset
        The label set (see :func:`label_names`); clips outside it are left out.
    modalities, vocal_channels
        Which clips to keep (``av``/``video``/``audio``; ``speech``/``song``).
    val_actors, test_actors
        The fixed speaker split; every other actor trains.
    n_folds : int
        Cross-validation folds of consecutive speakers (see :func:`assign_folds`).

    Returns
    -------
    DataFrame
        One row per clip with the columns of ``INDEX_COLUMNS``; paths as given under root.

    Raises
    ------
    DatasetError
        No usable clip, or the same clip id found at two paths.
    """
    names = label_names(classes, subset)
    roots = [root] if isinstance(root, (str, Path)) else list(root)
    rows, bad_names, seen = [], [], {}
    dropped: list[str] = []
    for path in [p for r in roots for p in find_media(r)]:
        try:
            parsed = parse_name(path)
        except DatasetError:
            bad_names.append(str(path))
            continue
        if parsed.clip_id in seen:
            raise DatasetError(f"duplicate clip id {parsed.clip_id}: {seen[parsed.clip_id]} and {path}")
        seen[parsed.clip_id] = path
        label = emotion_label(parsed.emotion, names, classes=classes)
        if parsed.modality not in modalities or parsed.vocal_channel not in vocal_channels or label is None:
            dropped.append(str(path))
            continue
        rows.append(
            {
                "clip_id": parsed.clip_id,
                "path": str(path),
                "dataset": dataset,
                "modality": parsed.modality,
                "vocal_channel": parsed.vocal_channel,
                "actor": parsed.actor,
                "sex": parsed.sex,
                "emotion": parsed.emotion,
                "label": label,
                "intensity": parsed.intensity,
                "statement": parsed.statement,
                "repetition": parsed.repetition,
                "recording": parsed.recording,
                "split": fixed_split(parsed.actor, val_actors, test_actors),
            }
        )
    if bad_names:
        shown = ", ".join(bad_names[:10]) + (f" and {len(bad_names) - 10} more" if len(bad_names) > 10 else "")
        logger.warning("skipped %d files whose names are not RAVDESS names: %s", len(bad_names), shown)
    if dropped:
        shown = ", ".join(dropped[:5]) + (f" and {len(dropped) - 5} more" if len(dropped) > 5 else "")
        logger.info(
            "left out %d clips outside modalities=%s, vocal_channels=%s, classes=%s: %s",
            len(dropped),
            list(modalities),
            list(vocal_channels),
            names,
            shown,
        )
    if not rows:
        raise DatasetError(
            f"{', '.join(map(str, roots))}: no usable RAVDESS clips found (checked {len(seen) + len(bad_names)} media files)"
        )
    index = one_per_recording(pd.DataFrame(rows))
    folds = assign_folds(index["actor"], min(n_folds, index["actor"].nunique()))
    index["fold"] = index["actor"].map(folds).astype(int)
    index = index.sort_values("clip_id", kind="stable").reset_index(drop=True)
    empty = [name for name in ("val", "test") if not (index["split"] == name).any()]
    if empty:
        actors = sorted(int(a) for a in index["actor"].unique())
        logger.warning(
            "the fixed split has no %s clips: index.val_actors %s / index.test_actors %s are not among this corpus's actors %s; "
            "the train and evaluate stages need both (cross-validation folds do not), so set them to actors of this corpus",
            " or ".join(empty),
            list(val_actors),
            list(test_actors),
            actors,
        )
    logger.info("%s", summarise(index))
    return index[INDEX_COLUMNS]


def summarise(index: pd.DataFrame) -> str:
    """A short human summary: clips per split, actor, emotion and modality."""
    parts = [f"{len(index)} clips from {index['actor'].nunique()} actors"]
    for column in ("split", "modality", "emotion"):
        counts = index[column].value_counts().sort_index()
        parts.append(f"{column}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    per_actor = index["actor"].value_counts()
    parts.append(f"clips per actor: {per_actor.min()}-{per_actor.max()}")
    return "; ".join(parts)


def read_index(path: str | Path) -> pd.DataFrame:
    """Read ``data/index.csv`` with the right column types."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: index not found (run the index stage: dvc repro index)")
    return pd.read_csv(path, dtype={"clip_id": str, "recording": str, "path": str})


def write_index(index: pd.DataFrame, path: str | Path) -> None:
    """Write the index as CSV (atomically)."""
    from mmer.files import atomic_path

    with atomic_path(path) as tmp:
        index.to_csv(tmp, index=False)

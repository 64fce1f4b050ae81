"""RAVDESS names, labels, speaker splits and the clip index (``data/index.csv``).

A RAVDESS file name is seven two-digit fields::

    modality-vocal_channel-emotion-intensity-statement-repetition-actor
    01-01-06-01-02-01-12.mp4  ->  audio-video, speech, fearful, normal, "Dogs...", 1st, actor 12

Odd actors are male, even actors female. Splits are always by speaker.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmer.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

MODALITIES = {1: "av", 2: "video", 3: "audio"}
VOCAL_CHANNELS = {1: "speech", 2: "song"}
EMOTIONS = {
    1: "neutral",
    2: "calm",
    3: "happy",
    4: "sad",
    5: "angry",
    6: "fearful",
    7: "disgust",
    8: "surprised",
}
INTENSITIES = {1: "normal", 2: "strong"}
STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
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
SPLITS = ("train", "val", "test")

_NAME_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of a RAVDESS file name, decoded."""

    clip_id: str
    modality: str
    vocal_channel: str
    emotion: str
    intensity: str
    statement: int
    repetition: int
    actor: int

    @property
    def sex(self) -> str:
        """``male`` for odd actors, ``female`` for even ones."""
        return "male" if self.actor % 2 else "female"

    @property
    def recording(self) -> str:
        """The id without its modality field: the same performance in every modality."""
        return self.clip_id[3:]


def parse_name(name: str | Path) -> RavdessName:
    """Decode a RAVDESS file name (with or without folder and suffix).

    Parameters
    ----------
    name : str or Path
        ``03-01-06-01-02-01-12.wav``, ``Actor_12/03-01-06-01-02-01-12.wav`` or the bare id.

    Returns
    -------
    RavdessName

    Raises
    ------
    DatasetError
        When the name is not seven two-digit fields or a field is out of its range.
    """
    stem = Path(str(name)).name
    for suffix in MEDIA_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    match = _NAME_RE.match(stem)
    if not match:
        raise DatasetError(f"{name}: not a RAVDESS name (expected seven two-digit fields like 01-01-06-01-02-01-12)")
    mod, chan, emo, inten, stmt, rep, actor = (int(g) for g in match.groups())
    problems = []
    if mod not in MODALITIES:
        problems.append(f"modality {mod:02d} not in 01-03")
    if chan not in VOCAL_CHANNELS:
        problems.append(f"vocal channel {chan:02d} not in 01-02")
    if emo not in EMOTIONS:
        problems.append(f"emotion {emo:02d} not in 01-08")
    if inten not in INTENSITIES:
        problems.append(f"intensity {inten:02d} not in 01-02")
    elif emo == 1 and inten == 2:
        problems.append("neutral has no strong intensity")
    if stmt not in STATEMENTS:
        problems.append(f"statement {stmt:02d} not in 01-02")
    if rep not in (1, 2):
        problems.append(f"repetition {rep:02d} not in 01-02")
    if not 1 <= actor <= 99:
        problems.append(f"actor {actor:02d} not in 01-99")
    if problems:
        raise DatasetError(f"{name}: not a valid RAVDESS name: {'; '.join(problems)}")
    return RavdessName(
        clip_id=stem,
        modality=MODALITIES[mod],
        vocal_channel=VOCAL_CHANNELS[chan],
        emotion=EMOTIONS[emo],
        intensity=INTENSITIES[inten],
        statement=stmt,
        repetition=rep,
        actor=actor,
    )


def label_names(classes: str = "merged7", subset: Sequence[str] = ()) -> list[str]:
    """The class names in label order for a label set.

    Parameters
    ----------
    classes : {'all8', 'merged7', 'subset'}
        ``all8``: the eight RAVDESS emotions; ``merged7``: calm merged into neutral;
        ``subset``: only the emotions named in ``subset`` (in RAVDESS order).
    subset : sequence of str
        Emotion names, used with ``classes='subset'``.
    """
    if classes == "all8":
        return list(EMOTIONS.values())
    if classes == "merged7":
        return [e for e in EMOTIONS.values() if e != "calm"]
    if classes == "subset":
        unknown = sorted(set(subset) - set(EMOTIONS.values()))
        if unknown or len(set(subset)) < 2:
            raise ConfigError(f"index.subset {list(subset)}: needs two or more of {list(EMOTIONS.values())}; unknown {unknown}")
        return [e for e in EMOTIONS.values() if e in set(subset)]
    raise ConfigError(f"index.classes must be all8, merged7 or subset, not {classes!r}")


def emotion_label(emotion: str, names: Sequence[str]) -> int | None:
    """The integer label of ``emotion`` under the label set ``names`` (None: not in the set)."""
    if emotion == "calm" and "calm" not in names and "neutral" in names and len(names) == 7:
        emotion = "neutral"
    try:
        return list(names).index(emotion)
    except ValueError:
        return None


def assign_folds(actors: Iterable[int], n_folds: int = 6) -> dict[int, int]:
    """Cross-validation folds of consecutive speakers.

    The sorted actors are cut into ``n_folds`` groups of consecutive actors, as equal as
    possible: 24 actors give 1-4, 5-8, ..., 21-24; 18 actors give 1-3, ..., 16-18.

    Returns
    -------
    dict
        actor -> fold number (0-based).
    """
    ordered = sorted(set(int(a) for a in actors))
    if len(ordered) < n_folds:
        raise DatasetError(f"{len(ordered)} speakers cannot make {n_folds} speaker folds")
    folds = {}
    for position, actor in enumerate(ordered):
        folds[actor] = position * n_folds // len(ordered)
    return folds


def fixed_split(actor: int, val_actors: Sequence[int], test_actors: Sequence[int]) -> str:
    """``train``, ``val`` or ``test`` for one actor under the fixed speaker split."""
    if actor in test_actors:
        return "test"
    if actor in val_actors:
        return "val"
    return "train"


def fold_splits(index: pd.DataFrame, fold: int, n_folds: int | None = None) -> pd.Series:
    """The split of every clip when cross-validation fold ``fold`` is the test set.

    The test speakers are those of fold ``fold``; the validation speakers are those of the
    next fold (``fold + 1`` modulo the number of folds), taken from the training side, so
    validation never sees a test speaker and every actor is tested exactly once across folds.

    Parameters
    ----------
    index : DataFrame
        The clip index with a ``fold`` column.
    fold : int
        0-based fold number; ``-1`` returns the fixed ``split`` column unchanged.
    n_folds : int, optional
        Number of folds (default: the number of distinct folds in the index).
    """
    if fold < 0:
        return index["split"].copy()
    n_folds = int(n_folds or index["fold"].nunique())
    if not 0 <= fold < n_folds:
        raise ConfigError(f"fold {fold} is not in 0..{n_folds - 1}")
    val_fold = (fold + 1) % n_folds
    split = pd.Series("train", index=index.index)
    split[index["fold"] == val_fold] = "val"
    split[index["fold"] == fold] = "test"
    return split


def find_media(root: str | Path) -> list[Path]:
    """Every .mp4/.wav/.flac file below ``root``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: corpus folder not found")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)


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
        logger.info("%d clips are other modalities of recordings already indexed (%s): one clip per recording kept", len(dropped), counts)
    return kept


def build_index(
    root: str | Path | Sequence[str | Path],
    *,
    classes: str = "merged7",
    subset: Sequence[str] = (),
    modalities: Sequence[str] = ("av", "video", "audio"),
    vocal_channels: Sequence[str] = ("speech",),
    val_actors: Sequence[int] = (18, 19, 20, 21, 22),
    test_actors: Sequence[int] = (23, 24),
    n_folds: int = 6,
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
        label = emotion_label(parsed.emotion, names)
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
            len(dropped), list(modalities), list(vocal_channels), names, shown,
        )
    if not rows:
        raise DatasetError(f"{', '.join(map(str, roots))}: no usable RAVDESS clips found (checked {len(seen) + len(bad_names)} media files)")
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
            " or ".join(empty), list(val_actors), list(test_actors), actors,
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
    from mmer.io import atomic_path

    with atomic_path(path) as tmp:
        index.to_csv(tmp, index=False)

"""The clip index (``data/index.csv``): corpus names parsed, labels, speaker splits and folds.

The names of each corpus are parsed by :mod:`mmer.corpora` (RAVDESS, CREMA-D, SAVEE,
EmoDB, TESS, or a manifest CSV); the index records each clip's corpus (``dataset``) and its
speaker as a corpus-qualified name (``actor``: ``ravdess-12``, ``savee-DC``). Splits are
always by speaker.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from mmer.config import DataParams, IndexParams
from mmer.corpora import MANIFEST_NAME, ClipName, parse_clip, read_manifest
from mmer.errors import DatasetError
from mmer.files import walk_files
from mmer.labels import emotion_label, label_names
from mmer.media import MEDIA_SUFFIXES, VIDEO_SUFFIXES
from mmer.splits import HELDOUT, assign_folds, fixed_split, seeded_speakers

logger = logging.getLogger(__name__)

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
    """Every media file below ``root`` (a suffix of :data:`MEDIA_SUFFIXES`: the containers
    ffmpeg reads, CREMA-D's .flv included), sorted; symlinked folders are followed (each real
    folder once, so link loops end: :func:`mmer.files.walk_files`). A broken link is found
    too: its clip then fails at ``trim`` with the reason, instead of vanishing."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: corpus folder not found")
    return sorted(p for p in walk_files(root, broken_links=True) if p.suffix.lower() in MEDIA_SUFFIXES)


def find_manifests(root: str | Path) -> list[Path]:
    """Every ``manifest.csv`` below ``root``, sorted."""
    return sorted(p for p in walk_files(Path(root)) if p.name == MANIFEST_NAME) if Path(root).is_dir() else []


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


# one file per clip id when a corpus gives a clip in several files (CREMA-D: .flv, .wav, .mp3)
_LOSSLESS = (".wav", ".flac")


def _file_rank(path: Path) -> tuple[int, int]:
    suffix = path.suffix.lower()
    return (0 if suffix in VIDEO_SUFFIXES else 1, 0 if suffix in _LOSSLESS else 1)


def _shown(items: Sequence[str], limit: int) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def read_names(
    roots: Sequence[str | Path],
    *,
    corpora: Sequence[str] = DataParams().corpora,
    emotion_map: Mapping[str, str] | None = None,
) -> list[tuple[Path, ClipName]]:
    """Every clip under ``roots`` whose name one of ``corpora`` parses, one file per clip id.

    Files following none of the namings are skipped and named in a warning, with the
    reason. ``manifest`` in ``corpora`` reads every ``manifest.csv`` under the roots; the
    files a manifest lists are not parsed by name.

    Raises
    ------
    DatasetError
        The same clip id in two files of the same suffix (a corpus copied twice).
    """
    named_corpora = [c for c in corpora if c != "manifest"]
    clips: list[tuple[Path, ClipName]] = []
    if "manifest" in corpora:
        for root in roots:
            for manifest in find_manifests(root):
                clips += read_manifest(manifest, emotion_map=emotion_map)
    listed = {p.resolve() for p, _ in clips}
    bad_names = []
    for path in [p for r in roots for p in find_media(r)]:
        if path.resolve() in listed:
            continue
        try:
            clips.append((path, parse_clip(path, named_corpora)))
        except DatasetError as err:
            bad_names.append(str(err))
    if bad_names:
        logger.warning(
            "skipped %d files whose names follow none of data.corpora %s: %s",
            len(bad_names),
            list(corpora),
            _shown(bad_names, 10),
        )
    chosen: dict[str, tuple[Path, ClipName]] = {}
    duplicates = 0
    for path, name in clips:
        if name.clip_id in chosen:
            other = chosen[name.clip_id][0]
            if other.suffix.lower() == path.suffix.lower():
                raise DatasetError(f"duplicate clip id {name.clip_id}: {other} and {path}")
            duplicates += 1
            if _file_rank(path) >= _file_rank(other):
                continue
        chosen[name.clip_id] = (path, name)
    if duplicates:
        logger.info(
            "%d clips come in several files (video, lossless audio, lossy audio): one file per clip kept, in that order",
            duplicates,
        )
    return list(chosen.values())


def build_index(
    root: str | Path | Sequence[str | Path],
    *,
    classes: str = IndexParams.classes,
    subset: Sequence[str] = IndexParams.subset,
    modalities: Sequence[str] = IndexParams.modalities,
    vocal_channels: Sequence[str] = IndexParams.vocal_channels,
    sexes: Sequence[str] = IndexParams.sexes,
    val_actors: Sequence[str | int] = IndexParams.val_actors,
    test_actors: Sequence[str | int] = IndexParams.test_actors,
    n_folds: int = IndexParams.n_folds,
    split_seed: int = IndexParams.split_seed,
    heldout_corpora: Sequence[str] = IndexParams.heldout_corpora,
    corpora: Sequence[str] = DataParams().corpora,
    emotion_map: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Build the clip index of one or several corpora.

    Parameters
    ----------
    root : str or Path, or a sequence of them
        Searched recursively for media files named as one of ``corpora`` names them (and
        for ``manifest.csv`` files with ``manifest``).
    classes, subset
        The label set (see :func:`label_names`); clips outside it are left out and named.
    modalities, vocal_channels
        Which clips to keep (``av``/``video``/``audio``; ``speech``/``song``). Outside
        RAVDESS a video container is ``av`` and an audio file ``audio``.
    sexes : sequence of str
        The speakers' sex to keep (``female``, ``male``, ``unknown``: as the corpus names
        it, e.g. RAVDESS's odd actors are male; held-out corpora too), e.g. ``["male"]``
        for a model of male voices.
    val_actors, test_actors
        The fixed speaker split by speaker name (``18``, ``ravdess-18``, ``KL``); every other
        speaker trains. Both empty: :func:`mmer.splits.seeded_speakers` with ``split_seed``.
        A manifest's ``split`` column, when given, wins for its clips.
    n_folds : int
        Cross-validation folds of consecutive speakers (see :func:`assign_folds`).
    heldout_corpora : sequence of str
        Corpora never trained on or validated on: split ``heldout``, fold -1, evaluated whole
        by the ``cross_corpus`` stage.
    corpora, emotion_map
        ``data.corpora`` and ``data.emotion_map`` (see :mod:`mmer.corpora`).

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
    clips = read_names(roots, corpora=corpora, emotion_map=emotion_map)
    rows, dropped, outside = [], [], {}
    for path, parsed in clips:
        label = emotion_label(parsed.emotion, names, classes=classes)
        if parsed.modality not in modalities or parsed.vocal_channel not in vocal_channels or parsed.sex not in sexes:
            dropped.append(str(path))
            continue
        if label is None:
            outside.setdefault(f"{parsed.corpus} {parsed.emotion}", []).append(path.name)
            continue
        rows.append(
            {
                "clip_id": parsed.clip_id,
                "path": str(path),
                "dataset": parsed.corpus,
                "modality": parsed.modality,
                "vocal_channel": parsed.vocal_channel,
                "actor": parsed.speaker,
                "sex": parsed.sex,
                "emotion": parsed.emotion,
                "label": label,
                "intensity": parsed.intensity,
                "statement": parsed.statement,
                "repetition": parsed.repetition,
                "recording": parsed.recording,
                "split": parsed.split,
            }
        )
    if outside:
        logger.warning(
            "left out %d clips whose emotion is not in index.classes=%s %s: %s",
            sum(map(len, outside.values())),
            classes,
            names,
            "; ".join(f"{key} ({len(files)}: {_shown(sorted(files), 3)})" for key, files in sorted(outside.items())),
        )
    if dropped:
        logger.info(
            "left out %d clips outside modalities=%s, vocal_channels=%s, sexes=%s: %s",
            len(dropped),
            list(modalities),
            list(vocal_channels),
            list(sexes),
            _shown(dropped, 5),
        )
    if not rows:
        raise DatasetError(
            f"{', '.join(map(str, roots))}: no usable clips of data.corpora {list(corpora)} found "
            f"(checked {len(clips)} named clips; see the warnings for the files skipped)"
        )
    index = one_per_recording(pd.DataFrame(rows))
    index = assign_splits(
        index,
        val_actors=val_actors,
        test_actors=test_actors,
        n_folds=n_folds,
        split_seed=split_seed,
        heldout_corpora=heldout_corpora,
    )
    index = index.sort_values("clip_id", kind="stable").reset_index(drop=True)
    if classes == "all8" and "calm" in set(index["emotion"]):
        without = sorted(set(index["dataset"]) - set(index.loc[index["emotion"] == "calm", "dataset"]))
        if without:
            logger.info("all8: only %s clips can be calm; %s have no calm clips", "ravdess", ", ".join(without))
    logger.info("%s", summarise(index))
    return index[INDEX_COLUMNS]


def assign_splits(
    index: pd.DataFrame,
    *,
    val_actors: Sequence[str | int] = IndexParams.val_actors,
    test_actors: Sequence[str | int] = IndexParams.test_actors,
    n_folds: int = IndexParams.n_folds,
    split_seed: int = IndexParams.split_seed,
    heldout_corpora: Sequence[str] = IndexParams.heldout_corpora,
) -> pd.DataFrame:
    """The ``split`` and ``fold`` columns, by speaker (see :func:`build_index`).

    Rows with a ``split`` already (a manifest's) keep it; held-out corpora get ``heldout``
    and fold -1; the rest follow the named speakers or, when none are named, the seeded rule.
    """
    index = index.copy()
    heldout = index["dataset"].isin(list(heldout_corpora)).to_numpy()
    index.loc[heldout, "split"] = HELDOUT
    free = (~heldout) & (index["split"].fillna("") == "").to_numpy()
    if not val_actors and not test_actors and free.any():
        val_actors, test_actors = seeded_speakers(index.loc[free, "actor"], seed=split_seed)
        logger.info(
            "seeded speaker split (index.split_seed %d): validation %s, test %s", split_seed, val_actors, test_actors
        )
    index.loc[free, "split"] = [fixed_split(a, val_actors, test_actors) for a in index.loc[free, "actor"]]
    trainable = index.loc[~heldout, "actor"]
    if trainable.empty:
        raise DatasetError(
            f"index.heldout_corpora {list(heldout_corpora)} holds every clip: nothing is left to train on"
        )
    folds = assign_folds(trainable, min(n_folds, trainable.nunique()))
    index["fold"] = index["actor"].map(folds).fillna(-1).astype(int)
    empty = [name for name in ("val", "test") if not (index["split"] == name).any()]
    if empty:
        logger.warning(
            "the fixed split has no %s clips: index.val_actors %s / index.test_actors %s are not among this corpus's speakers %s; "
            "the train and evaluate stages need both (cross-validation folds do not), so name speakers of this corpus, "
            "or leave both lists empty for the seeded rule",
            " or ".join(empty),
            list(val_actors),
            list(test_actors),
            sorted(trainable.unique()),
        )
    return index


def summarise(index: pd.DataFrame) -> str:
    """A short human summary: clips per split, actor, emotion and modality."""
    parts = [f"{len(index)} clips from {index['actor'].nunique()} speakers"]
    for column in ("dataset", "split", "modality", "emotion"):
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
    return pd.read_csv(
        path,
        dtype={"clip_id": str, "recording": str, "path": str, "actor": str, "statement": str, "repetition": str},
    )


def write_index(index: pd.DataFrame, path: str | Path) -> None:
    """Write the index as CSV (atomically)."""
    from mmer.files import atomic_path

    with atomic_path(path) as tmp:
        index.to_csv(tmp, index=False)

"""Speaker splits: the fixed split, cross-validation folds, and ensemble members' validation groups.

Splits are always by speaker: no speaker is ever in two of train, validation and test.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from mmer.config import IndexParams
from mmer.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)


SPLITS = ("train", "val", "test")
HELDOUT = "heldout"  # the split of a corpus in index.heldout_corpora: never trained on, evaluated by cross_corpus


def assign_folds(actors: Iterable[str | int], n_folds: int = IndexParams.n_folds) -> dict:
    """Cross-validation folds of consecutive speakers.

    The sorted speaker names are cut into ``n_folds`` groups of consecutive speakers, as
    equal as possible: 24 RAVDESS actors (``ravdess-01`` ... ``ravdess-24``) give 01-04,
    05-08, ..., 21-24; 18 give 01-03, ..., 16-18; SAVEE's 4 speakers give one each (with
    ``n_folds`` 4); CREMA-D's 91 give groups of 15 or 16. Several corpora sort by corpus, so
    a fold mixes corpora only at a boundary.

    Returns
    -------
    dict
        speaker -> fold number (0-based).
    """
    ordered = sorted(set(actors))
    if len(ordered) < n_folds:
        raise DatasetError(f"{len(ordered)} speakers cannot make {n_folds} speaker folds")
    folds = {}
    for position, actor in enumerate(ordered):
        folds[actor] = position * n_folds // len(ordered)
    return folds


def fixed_split(actor: str | int, val_actors: Sequence[str | int], test_actors: Sequence[str | int]) -> str:
    """``train``, ``val`` or ``test`` for one speaker under the fixed speaker split.

    A speaker is named by its qualified name (``savee-KL``) or its name inside its corpus
    (``KL``, ``18``); see :func:`mmer.corpora.speaker_matches`.
    """
    from mmer.corpora import speaker_matches

    if isinstance(actor, str):
        if speaker_matches(actor, test_actors):
            return "test"
        if speaker_matches(actor, val_actors):
            return "val"
        return "train"
    if actor in test_actors:
        return "test"
    if actor in val_actors:
        return "val"
    return "train"


def seeded_speakers(speakers: Iterable[str], *, seed: int = IndexParams.split_seed) -> tuple[list[str], list[str]]:
    """The validation and test speakers chosen by the seeded rule (when none are named).

    The sorted speakers are shuffled by ``numpy.random.default_rng(seed)``; the first
    ``max(1, round(n / 10))`` test, the next ``max(1, round(n / 5))`` validate, the rest train:
    4 speakers (SAVEE) give 1 test, 1 validation, 2 training; 24 give 2, 5, 17; 91 give 9, 18, 64.

    Raises
    ------
    DatasetError
        Fewer than 3 speakers.
    """
    ordered = sorted(set(speakers))
    if len(ordered) < 3:
        raise DatasetError(f"{len(ordered)} speakers {ordered}: a speaker split needs at least 3")
    shuffled = [ordered[k] for k in np.random.default_rng(seed).permutation(len(ordered))]
    n_test, n_val = max(1, round(len(ordered) / 10)), max(1, round(len(ordered) / 5))
    return sorted(shuffled[n_test : n_test + n_val]), sorted(shuffled[:n_test])


def fold_splits(index: pd.DataFrame, fold: int, n_folds: int | None = None) -> pd.Series:
    """The split of every clip when cross-validation fold ``fold`` is the test set.

    The test speakers are those of fold ``fold``; the validation speakers are those of the
    next fold (``fold + 1`` modulo the number of folds), taken from the training side, so
    validation never sees a test speaker and every actor is tested exactly once across folds.
    Clips of held-out corpora (fold -1, split ``heldout``) keep their split.

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
    n_folds = int(n_folds or index.loc[index["fold"] >= 0, "fold"].nunique())
    if not 0 <= fold < n_folds:
        raise ConfigError(f"fold {fold} is not in 0..{n_folds - 1}")
    val_fold = (fold + 1) % n_folds
    split = pd.Series("train", index=index.index)
    split[index["fold"] == val_fold] = "val"
    split[index["fold"] == fold] = "test"
    split[index["fold"] < 0] = index.loc[index["fold"] < 0, "split"]  # held-out corpora stay held out
    return split


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
        raise ConfigError(
            f"an ensemble by fold needs 2 to {len(speakers)} members (one group of speakers each), not {n_members}"
        )
    out = []
    for group in np.array_split(speakers, n_members):
        member = np.asarray(splits, dtype=object).copy()
        member[development] = np.where(np.isin(actors[development], group), "val", "train")
        out.append(member)
    return out

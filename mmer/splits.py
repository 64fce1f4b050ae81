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


def assign_folds(actors: Iterable[int], n_folds: int = IndexParams.n_folds) -> dict[int, int]:
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

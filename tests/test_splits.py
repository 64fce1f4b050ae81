"""Speaker splits and folds as properties (mmer/splits.py)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmer.errors import ConfigError, DatasetError
from mmer.splits import assign_folds, fixed_split, fold_splits, member_splits, seeded_speakers

speakers = st.lists(st.integers(1, 99), min_size=1, max_size=40)


@settings(max_examples=80, deadline=None)
@given(actors=speakers, n_folds=st.integers(1, 8))
def test_fold_assignment_is_a_partition_by_speaker(actors, n_folds):
    distinct = sorted(set(actors))
    if len(distinct) < n_folds:
        with pytest.raises(DatasetError, match=f"^{len(distinct)} speakers cannot make {n_folds} speaker folds$"):
            assign_folds(actors, n_folds)
        return
    folds = assign_folds(actors, n_folds)
    assert sorted(folds) == distinct  # every speaker once
    assert set(folds.values()) == set(range(n_folds))  # no empty fold
    sizes = np.bincount(list(folds.values()), minlength=n_folds)
    assert sizes.max() - sizes.min() <= 1  # as equal as possible
    assert [folds[a] for a in distinct] == sorted(folds[a] for a in distinct)  # consecutive speakers


@settings(max_examples=40, deadline=None)
@given(actors=st.lists(st.integers(1, 30), min_size=3, max_size=60), n_folds=st.integers(3, 5))
def test_each_fold_tests_its_speakers_validates_the_next_and_never_mixes(actors, n_folds):
    if len(set(actors)) < n_folds:
        return
    folds = assign_folds(actors, n_folds)
    index = pd.DataFrame({"actor": actors, "fold": [folds[a] for a in actors], "split": "train"})
    tested = []
    for fold in range(n_folds):
        split = fold_splits(index, fold, n_folds)
        by_split = {name: set(index.loc[split == name, "actor"]) for name in ("train", "val", "test")}
        assert by_split["test"] == {a for a, f in folds.items() if f == fold}
        assert by_split["val"] == {a for a, f in folds.items() if f == (fold + 1) % n_folds}
        assert not (by_split["train"] & by_split["val"] or by_split["train"] & by_split["test"])
        assert not by_split["val"] & by_split["test"]
        tested += sorted(by_split["test"])
    assert sorted(tested) == sorted(set(actors))  # every speaker tested exactly once


def test_fixed_split_and_the_unchanged_split_column():
    assert [fixed_split(a, (18, 19), (23, 24)) for a in (1, 18, 19, 23, 24)] == ["train", "val", "val", "test", "test"]
    assert fixed_split(5, (5,), (5,)) == "test"  # a speaker named twice is a test speaker, never trained on
    index = pd.DataFrame({"actor": [1, 2], "fold": [0, 1], "split": ["val", "test"]})
    assert fold_splits(index, -1).tolist() == ["val", "test"]
    assert fold_splits(index, 1).tolist() == ["val", "test"]  # n_folds from the index: 2
    with pytest.raises(ConfigError, match=r"^fold 2 is not in 0\.\.1$"):
        fold_splits(index, 2)


@settings(max_examples=40, deadline=None)
@given(n_dev=st.integers(2, 12), n_members=st.integers(2, 6))
def test_member_splits_validate_each_development_speaker_once(n_dev, n_members):
    actors = np.repeat(np.arange(1, n_dev + 3), 2)
    splits = np.where(actors > n_dev, "test", np.where(actors % 3 == 0, "val", "train"))
    if n_members > n_dev:
        with pytest.raises(ConfigError, match=f"needs 2 to {n_dev} members .*, not {n_members}$"):
            member_splits(splits, actors, n_members)
        return
    members = member_splits(splits, actors, n_members)
    assert len(members) == n_members
    validated = [sorted(set(actors[m == "val"])) for m in members]
    assert sorted(a for group in validated for a in group) == list(range(1, n_dev + 1))
    assert all(group for group in validated)
    for member in members:
        np.testing.assert_array_equal(member[splits == "test"], "test")
        assert set(member[splits != "test"]) <= {"train", "val"}


def test_fixed_split_by_qualified_or_bare_speaker_names():
    assert fixed_split("ravdess-23", [18, 19], [23, 24]) == "test"
    assert fixed_split("ravdess-03", [3], [23]) == "val"  # an integer matches the two-digit name
    assert fixed_split("savee-KL", ["KL"], ["savee-DC"]) == "val"
    assert fixed_split("savee-DC", ["DC"], ["savee-DC"]) == "test"  # named twice: tested, never validated on
    assert fixed_split("ravdess-01", [18], [23]) == "train"


def test_seeded_rule_sizes_and_its_pinned_choice():
    ravdess = [f"ravdess-{k:02d}" for k in range(1, 25)]
    val, test = seeded_speakers(ravdess, seed=0)
    # pinned: a change of the rule would silently move speakers between splits, and so every figure
    assert test == ["ravdess-05", "ravdess-19"]
    assert val == ["ravdess-03", "ravdess-11", "ravdess-12", "ravdess-22", "ravdess-23"]
    assert seeded_speakers([*reversed(ravdess), "ravdess-01"], seed=0) == (val, test)  # order, repeats: no matter
    # 10% test and 20% validation, rounded, at least one each
    for n, (n_val, n_test) in {3: (1, 1), 4: (1, 1), 24: (5, 2), 91: (18, 9)}.items():
        val, test = seeded_speakers([f"s{k:03d}" for k in range(n)], seed=3)
        assert (len(val), len(test)) == (n_val, n_test) and not set(val) & set(test)
        assert val == sorted(val) and test == sorted(test)
    with pytest.raises(DatasetError, match="at least 3"):
        seeded_speakers(["a", "b", "b"])


def test_held_out_corpora_keep_their_split_in_every_fold():
    index = pd.DataFrame({"actor": [1, 2, 3, 9], "fold": [0, 1, 2, -1], "split": ["train", "val", "test", "heldout"]})
    assert fold_splits(index, 0).tolist() == ["test", "val", "train", "heldout"]
    assert fold_splits(index, 2).tolist() == ["val", "train", "test", "heldout"]  # 3 folds: fold 0 validates


def test_member_splits_say_train_even_where_no_clip_was_train():
    # the splits hold only 'val' and 'test' (a 4-character string array): members still get a whole 'train'
    splits, actors = np.array(["val", "val", "val", "test"]), np.array([1, 2, 3, 4])
    members = [m.tolist() for m in member_splits(splits, actors, 3)]
    assert members == [
        ["val", "train", "train", "test"],
        ["train", "val", "train", "test"],
        ["train", "train", "val", "test"],
    ]

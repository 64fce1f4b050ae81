"""Label sets and the calm/neutral merge, checked for every label set (mmer/labels.py)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmer.errors import ConfigError
from mmer.labels import emotion_label, label_names
from mmer.ravdess import EMOTIONS

ALL = list(EMOTIONS.values())
WITHOUT_CALM = [e for e in ALL if e != "calm"]


def test_known_label_orders():
    assert label_names("all8") == ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert label_names("merged7") == WITHOUT_CALM
    # a subset keeps RAVDESS order, whatever order it is given in, and ignores repeats
    assert label_names("subset", ["sad", "neutral", "sad"]) == ["neutral", "sad"]


@pytest.mark.parametrize(
    ("classes", "subset"),
    [
        ("all8", ()),
        ("merged7", ()),
        ("subset", WITHOUT_CALM),  # the very names of merged7, but a subset: calm is dropped, not merged
        ("subset", ["neutral", "happy", "sad"]),
        ("subset", ["calm", "neutral"]),
        ("subset", ["happy", "sad"]),
    ],
)
def test_calm_is_merged_into_neutral_under_merged7_only(classes, subset):
    names = label_names(classes, subset)
    for emotion in ALL:
        label = emotion_label(emotion, names, classes=classes)
        if emotion == "calm" and classes == "merged7":
            assert label == names.index("neutral")
        elif emotion in names:
            assert label == names.index(emotion)
        else:
            assert label is None


@given(st.sets(st.sampled_from(ALL), min_size=2))
def test_every_subset_labels_its_own_emotions_and_drops_the_rest(subset):
    names = label_names("subset", sorted(subset))
    assert set(names) == subset and names == [e for e in ALL if e in subset]
    labels = [emotion_label(e, names, classes="subset") for e in ALL]
    assert sorted(x for x in labels if x is not None) == list(range(len(subset)))
    assert all((label is None) == (e not in subset) for e, label in zip(ALL, labels))


@pytest.mark.parametrize(
    ("classes", "subset", "match"),
    [
        ("nine", (), "all8, merged7 or subset"),
        ("subset", ["happy"], "two or more"),
        ("subset", ["happy", "happy"], "two or more"),
        ("subset", ["happy", "bored"], "bored"),
    ],
)
def test_bad_label_sets_raise(classes, subset, match):
    with pytest.raises(ConfigError, match=match):
        label_names(classes, subset)


def test_the_label_set_of_a_models_names():
    from mmer.labels import classes_of

    assert classes_of(label_names("all8")) == "all8" and classes_of(label_names("merged7")) == "merged7"
    assert classes_of(["happy", "sad"]) == "subset"

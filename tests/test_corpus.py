import re
from pathlib import Path

import pandas as pd
import pytest

from mmer.corpus import build_index
from mmer.errors import ConfigError, DatasetError
from mmer.labels import emotion_label, label_names
from mmer.ravdess import parse_name
from mmer.splits import assign_folds, fold_splits


def test_parse_every_field():
    n = parse_name("Actor_12/01-02-06-02-02-01-12.mp4")
    assert (n.modality, n.vocal_channel, n.emotion, n.intensity) == ("av", "song", "fearful", "strong")
    assert (n.statement, n.repetition, n.actor, n.sex) == (2, 1, 12, "female")
    assert n.clip_id == "01-02-06-02-02-01-12"
    assert n.recording == "02-06-02-02-01-12"
    assert parse_name("03-01-01-01-01-01-01.wav").modality == "audio"
    assert parse_name("02-01-08-01-01-02-23.mp4").modality == "video"
    assert parse_name("03-01-08-01-01-02-23.flac").sex == "male"


def test_edges_of_the_valid_fields():
    # calm (unlike neutral) has a strong intensity; actors run to 99; odd is male, even female
    calm = parse_name("01-01-02-02-01-01-03.mp4")
    assert (calm.emotion, calm.intensity, calm.actor, calm.sex) == ("calm", "strong", 3, "male")
    assert parse_name("03-02-08-02-02-02-99").actor == 99
    assert [parse_name(f"03-01-01-01-01-01-{a:02d}").sex for a in range(1, 7)] == ["male", "female"] * 3


FORMAT = "not a RAVDESS name (expected seven two-digit fields like 01-01-06-01-02-01-12)"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("hello.mp4", FORMAT),
        ("01-01-06-01-02-01.mp4", FORMAT),  # six fields
        ("1-01-06-01-02-01-12.mp4", FORMAT),
        ("01-01-06-01-02-01-12.mp4.part", FORMAT),  # a partial download is no clip
        ("04-01-06-01-02-01-12.mp4", "modality 04 not in 01-03"),
        ("01-03-06-01-02-01-12.mp4", "vocal channel 03 not in 01-02"),
        ("01-01-09-01-02-01-12.mp4", "emotion 09 not in 01-08"),
        ("01-01-06-03-02-01-12.mp4", "intensity 03 not in 01-02"),
        ("01-01-01-02-02-01-12.mp4", "neutral has no strong intensity"),
        ("01-01-06-01-03-01-12.mp4", "statement 03 not in 01-02"),
        ("01-01-06-01-02-03-12.mp4", "repetition 03 not in 01-02"),
        ("01-01-06-01-02-01-00.mp4", "actor 00 not in 01-99"),
        ("04-01-09-01-02-01-12.mp4", "modality 04 not in 01-03; emotion 09 not in 01-08"),  # every problem named
    ],
)
def test_bad_names_raise_naming_the_field(name, problem):
    message = problem if problem == FORMAT else f"not a valid RAVDESS name: {problem}"
    with pytest.raises(DatasetError, match=f"^{re.escape(name)}: {re.escape(message)}$"):
        parse_name(name)


def test_label_sets():
    assert len(label_names("all8")) == 8
    merged = label_names("merged7")
    assert len(merged) == 7 and "calm" not in merged
    assert emotion_label("calm", merged, classes="merged7") == emotion_label("neutral", merged, classes="merged7") == 0
    assert emotion_label("calm", label_names("all8"), classes="all8") == 1
    six = label_names("subset", ["surprised", "happy", "sad", "angry", "fearful", "disgust"])
    assert six == ["happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert emotion_label("neutral", six, classes="subset") is None
    with pytest.raises(ConfigError):
        label_names("subset", ["happy", "bored"])
    with pytest.raises(ConfigError):
        label_names("nine")


def test_folds_are_consecutive_and_cover_everyone():
    folds = assign_folds(range(1, 25), 6)
    assert [a for a, f in folds.items() if f == 0] == [1, 2, 3, 4]
    assert [a for a, f in folds.items() if f == 5] == [21, 22, 23, 24]
    folds18 = assign_folds(range(1, 19), 6)
    assert [a for a, f in folds18.items() if f == 1] == [4, 5, 6]
    with pytest.raises(DatasetError):
        assign_folds([1, 2], 6)


def _touch_corpus(root: Path, actors=range(1, 25), emotions=(1, 2, 3, 5)) -> None:
    for actor in actors:
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for emo in emotions:
            (folder / f"01-01-{emo:02d}-01-01-01-{actor:02d}.mp4").write_bytes(b"")
            (folder / f"02-01-{emo:02d}-01-01-01-{actor:02d}.mp4").write_bytes(b"")


def test_build_index_fixed_split_and_folds(tmp_path, caplog):
    _touch_corpus(tmp_path)
    (tmp_path / "Actor_01" / "notes.mp4").write_bytes(b"")
    index = build_index(tmp_path, modalities=["av"])
    assert "notes.mp4" in caplog.text
    assert len(index) == 24 * 4 and set(index["modality"]) == {"av"}
    by_actor = index.groupby("actor")["split"].first()
    assert set(by_actor[by_actor == "test"].index) == {"ravdess-23", "ravdess-24"}
    assert set(by_actor[by_actor == "val"].index) == {f"ravdess-{a}" for a in range(18, 23)}
    assert set(by_actor[by_actor == "train"].index) == {f"ravdess-{a:02d}" for a in range(1, 18)}
    assert set(index["dataset"]) == {"ravdess"}
    assert index.loc[index.emotion == "calm", "label"].eq(0).all()
    tested = []
    for fold in range(6):
        split = fold_splits(index, fold)
        actors = {s: set(index.loc[split == s, "actor"]) for s in ("train", "val", "test")}
        assert not (actors["train"] & actors["val"]) and not (actors["train"] & actors["test"])
        assert not (actors["val"] & actors["test"]) and actors["val"]
        tested += sorted(actors["test"])
    assert sorted(tested) == [f"ravdess-{a:02d}" for a in range(1, 25)]  # every actor tested exactly once
    pd.testing.assert_series_equal(fold_splits(index, -1), index["split"])


def test_duplicate_ids_name_both_paths(tmp_path):
    _touch_corpus(tmp_path / "a", actors=[1])
    _touch_corpus(tmp_path / "b", actors=[1])
    with pytest.raises(DatasetError, match="duplicate clip id 01-01-01-01-01-01-01.*a.*b"):
        build_index(tmp_path)


def test_empty_corpus_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match="no usable"):
        build_index(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        build_index(tmp_path / "missing")


def test_real_speech_index(real_speech_dir):
    index = build_index(real_speech_dir, modalities=["audio"], classes="all8")
    assert len(index) == 1080 and index["actor"].nunique() == 18
    assert index.groupby("actor").size().eq(60).all()

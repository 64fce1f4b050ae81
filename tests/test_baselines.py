import dataclasses
import json

import numpy as np
import pytest

from mmer.baselines import (
    baselines_stage,
    face_descriptor,
    fit_classifier,
    make_classifier,
    mfcc_statistics,
    pooled_features,
    run_baselines,
)
from mmer.clips import align_clips
from mmer.config import BaselinesParams, from_mapping, load_section
from mmer.errors import ConfigError, DatasetError

from conftest import ROOT
from feature_factory import make_corpus, write_corpus


@pytest.fixture(scope="module")
def data():
    corpus = make_corpus(seed=11, signal=0.35)
    return align_clips(corpus.index, corpus.caches), corpus.label_names


def test_mfcc_statistics_use_only_the_unpadded_frames():
    mfcc = np.zeros((2, 5, 2), np.float32)
    mfcc[0, 3:] = [[1, 10], [3, 20]]  # 2 speech frames after 3 frames of padding
    mfcc[1] = np.arange(10).reshape(5, 2)  # truncated clip: speech_frames > T, every frame is speech
    stats = mfcc_statistics(mfcc, np.array([2, 9]))
    assert stats.shape == (2, 3 * 2 + 1)
    np.testing.assert_allclose(stats[0], [2, 15, 1, 5, 2, 10, np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(stats[1], [4, 5, np.sqrt(8), np.sqrt(8), 2, 2, np.log(9)], rtol=1e-6)
    with pytest.raises(ValueError):
        mfcc_statistics(mfcc[0], np.array([2]))


def test_face_descriptor_averages_found_frames_in_grey_blocks():
    faces = np.zeros((1, 2, 4, 4, 3), np.uint8)
    faces[0, 0] = 255  # white frame with a face
    faces[0, 1] = 0  # black frame without one
    descriptor = face_descriptor(faces, np.array([[True, False]]), grid=2)
    np.testing.assert_allclose(descriptor, np.ones((1, 4)), atol=1e-3)
    np.testing.assert_allclose(
        face_descriptor(faces, np.array([[False, False]]), grid=2), np.full((1, 4), 0.5), atol=1e-3
    )  # none found: all frames
    faces[0, 0, :2, :2] = 0
    assert face_descriptor(faces, None, grid=2)[0].tolist() == pytest.approx([0.0, 0.5, 0.5, 0.5], abs=1e-3)
    with pytest.raises(ConfigError, match="face_grid"):
        face_descriptor(faces, grid=3)


def test_pooled_feature_sizes(data):
    clips, _ = data
    assert pooled_features(clips, "audio").shape == (len(clips), 3 * 8 + 1)
    assert pooled_features(clips, "video", face_grid=4).shape == (len(clips), 16)
    assert pooled_features(clips, "av", face_grid=8).shape == (len(clips), 3 * 8 + 1 + 64)
    with pytest.raises(ConfigError):
        pooled_features(clips, "text")


def test_baselines_beat_chance_on_learnable_features(data):
    clips, names = data
    results = run_baselines(clips, label_names=names, c_grid=(0.1, 10.0), zero_shot=False)  # zero-shot: stage test
    assert results["n"] == len(clips.split("test")) and results["majority"]["accuracy"] < 0.5
    for feature_set in ("audio", "video", "av"):
        for name in ("gnb", "lda", "linear_svm", "rbf_svm"):
            metrics = results[feature_set][name]
            assert set(metrics) >= {"accuracy", "macro_f1", "uar", "val_uar"}
            assert metrics["uar"] > 0.5, (feature_set, name, metrics)  # chance is 0.25
        assert results[feature_set]["rbf_svm"]["C"] in (0.1, 10.0) and "C" not in results[feature_set]["gnb"]
    assert set(results) == {"n", "majority", "audio", "video", "av"}
    json.dumps(results, allow_nan=False)


def test_baselines_stage_writes_json(tmp_path):
    corpus = write_corpus(tmp_path, make_corpus(seed=2))
    results = baselines_stage(
        corpus.index_path,
        audio_path=corpus.audio_path,
        video_path=corpus.video_path,
        out_path=tmp_path / "baselines.json",
        label_names=corpus.label_names,
        feature_sets=("audio",),
        classifiers=("gnb",),
    )
    assert json.loads((tmp_path / "baselines.json").read_text()) == results
    assert set(results) == {"n", "majority", "audio", "face_expression"}
    zero_shot = results["face_expression"]["fer2013_zero_shot"]
    assert set(zero_shot) == {"accuracy", "macro_f1", "uar", "val_uar"} and 0 <= zero_shot["accuracy"] <= 1


def test_bad_baseline_arguments_raise(data):
    clips, names = data
    with pytest.raises(ConfigError, match="classifiers"):
        run_baselines(clips, label_names=names, classifiers=("knn",))
    with pytest.raises(ConfigError, match="feature_sets"):
        run_baselines(clips, label_names=names, feature_sets=("text",))
    with pytest.raises(
        ConfigError, match=r"^baselines.classifiers: 'forest' is not one of \['gnb', 'lda', 'linear_svm'"
    ):
        make_classifier("forest")
    with pytest.raises(ConfigError, match=r"^baselines.feature_sets: 'text' is not one of \['audio', "):
        pooled_features(clips, "text")
    with pytest.raises(ConfigError, match="face_grid 3"):  # 3 does not divide the crops' side
        run_baselines(clips, label_names=names, feature_sets=("video",), classifiers=("gnb",), face_grid=3)
    for missing in ("train", "val", "test"):
        with pytest.raises(DatasetError, match=r"^baselines need train, val and test clips; got \d+, \d+ and \d+$"):
            run_baselines(clips.take(clips.splits != missing), label_names=names, zero_shot=False)
    for values in ({"classifiers": ["knn"]}, {"c_grid": [0]}, {"face_grid": 0}, {"feature_set": ["av"]}):
        with pytest.raises(ConfigError):
            from_mapping(BaselinesParams, values, section="baselines")
    assert load_section(BaselinesParams, "baselines", ROOT / "params.yaml").classifiers == (
        "gnb",
        "lda",
        "linear_svm",
        "rbf_svm",
    )


def test_svm_c_is_chosen_on_the_validation_speakers_never_the_test_speakers():
    # learnable train and validation speakers; the test speakers' labels shifted by one
    # class, so the well-fitted C scores 0 on test and a useless C (1e-6) scores more there:
    # only a C chosen on validation gives C=10 with val UAR 1 and test accuracy 0
    corpus = make_corpus(seed=11, signal=1.0, drop=0)
    data = align_clips(corpus.index, corpus.caches)
    labels = data.labels.copy()
    test = data.splits == "test"
    labels[test] = (labels[test] + 1) % 4
    shifted = dataclasses.replace(data, labels=labels)
    for grid in ([10.0, 1e-6], [1e-6, 10.0]):  # from either end of the grid
        results = run_baselines(
            shifted,
            label_names=corpus.label_names,
            feature_sets=["audio"],
            classifiers=["linear_svm", "rbf_svm"],
            c_grid=grid,
            zero_shot=False,
        )
        chosen = results["audio"]["linear_svm"]
        assert chosen["C"] == 10.0 and chosen["val_uar"] == pytest.approx(1.0)
        assert chosen["accuracy"] == 0.0
        assert results["audio"]["rbf_svm"]["C"] == 10.0  # 1e-6 validates worse for the RBF machine too
    # and the majority baseline is the training split's majority, scored on the test clips
    assert results["majority"]["class"] == corpus.label_names[0] and results["n"] == int(test.sum())


def test_mfcc_statistics_of_a_one_frame_clip_and_bad_shapes():
    mfcc = np.zeros((1, 4, 2), np.float32)
    mfcc[0, 3] = [2, -1]  # one speech frame after three of padding
    stats = mfcc_statistics(mfcc, np.array([1]))
    assert stats.dtype == np.float32
    np.testing.assert_array_equal(stats[0], [2, -1, 0, 0, 0, 0, 0])  # no spread, no change, log 1
    # no speech frame at all: still finite (the last frame counts), so no NaN reaches the classifiers
    np.testing.assert_array_equal(mfcc_statistics(mfcc, np.array([0]))[0], [2, -1, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="one speech_frames per clip"):
        mfcc_statistics(np.zeros((2, 4, 2)), np.array([1]))
    with pytest.raises(ValueError, match=r"\[n, T, c\]"):
        mfcc_statistics(np.zeros((4, 2)), np.ones(4))


def test_face_descriptor_per_clip_found_frames_and_its_checks():
    faces = np.zeros((2, 3, 4, 4, 3), np.uint8)
    faces[0, 0] = 255  # clip 0: its only frame with a face is white
    faces[1, 2] = 255  # clip 1: no face found anywhere, so all three frames count
    found = np.array([[True, False, False], [False, False, False]])
    np.testing.assert_allclose(face_descriptor(faces, found, grid=1), [[1.0], [1 / 3]], atol=1e-3)
    with pytest.raises(ConfigError, match=r"^baselines.face_grid 2 must divide the square crop size \(4, 6\)$"):
        face_descriptor(np.zeros((1, 1, 4, 6, 3), np.uint8), grid=2)
    default = face_descriptor(np.zeros((1, 2, 64, 64, 3), np.uint8))  # params' face_grid: 8 x 8 blocks
    assert default.shape == (1, 64) and default.dtype == np.float32
    with pytest.raises(ValueError, match="faces must be"):
        face_descriptor(np.zeros((1, 4, 4, 3), np.uint8))


def test_pooled_features_are_the_descriptors_of_the_clips(data):
    clips, _ = data
    found = clips.arrays["face_found"].copy()
    found[:, ::2] = False  # some frames without a face: only the others are averaged
    clips = dataclasses.replace(clips, arrays={**clips.arrays, "face_found": found})
    audio = mfcc_statistics(clips.arrays["audio_features"], clips.arrays["speech_frames"])
    video = face_descriptor(clips.arrays["faces"], found, grid=4)
    assert not np.allclose(video, face_descriptor(clips.arrays["faces"], None, grid=4))
    np.testing.assert_array_equal(pooled_features(clips, "audio"), audio)
    np.testing.assert_array_equal(pooled_features(clips, "video", face_grid=4), video)
    np.testing.assert_array_equal(pooled_features(clips, "av", face_grid=4), np.concatenate([audio, video], axis=1))


def _blobs(rng: np.random.Generator, n: int, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two overlapping classes in 6 features, each feature in its own unit (``scales``)."""
    labels = np.arange(n) % 2
    x = rng.normal(size=(n, 6)) + labels[:, None] * np.array([1.0, 0.5, 0, 0, 0, 0])
    return x * scales, labels


@pytest.mark.parametrize("name", ["gnb", "lda", "linear_svm", "rbf_svm"])
def test_classifiers_standardise_before_classifying(name):
    # the unit of each feature does not matter: the same clips in other units get the same predictions
    scales = 10.0 ** np.array([-3, 3, 0, 2, -2, 1])
    x_train, y_train = _blobs(np.random.default_rng(0), 60, np.ones(6))
    x_test, _ = _blobs(np.random.default_rng(1), 40, np.ones(6))
    plain = make_classifier(name, c=1.0).fit(x_train, y_train).predict(x_test)
    scaled = make_classifier(name, c=1.0).fit(x_train * scales, y_train).predict(x_test * scales)
    np.testing.assert_array_equal(scaled, plain)


def test_the_first_c_of_the_grid_wins_a_tie():
    # separable classes: every C validates perfectly, so the first of the grid (params: the smallest) is kept
    x = np.concatenate([np.zeros((10, 2)), np.full((10, 2), 5.0)]) + np.random.default_rng(0).normal(size=(20, 2))
    y = np.repeat([0, 1], 10)
    for grid in ([10.0, 100.0], [100.0, 10.0]):
        _, chosen = fit_classifier("linear_svm", x, y, x, y, label_names=["a", "b"], c_grid=grid)
        assert chosen == {"C": grid[0], "val_uar": 1.0}
    _, chosen = fit_classifier("gnb", x, y, x, y, label_names=["a", "b"], c_grid=[10.0, 100.0])
    assert chosen == {"val_uar": 1.0}


def test_audio_only_clips_skip_the_face_feature_sets(data):
    clips, names = data
    no_faces = {k: v for k, v in clips.arrays.items() if k not in ("faces", "face_found")}
    audio_only = dataclasses.replace(clips, arrays=no_faces)
    # the face sets first: skipping them must not end the loop; no zero-shot row without faces
    results = run_baselines(audio_only, label_names=names, feature_sets=("video", "av", "audio"), classifiers=("gnb",))
    assert set(results) == {"n", "majority", "audio"} and set(results["audio"]) == {"gnb"}
    with_faces = run_baselines(clips, label_names=names, feature_sets=("video",), classifiers=("gnb",), zero_shot=False)
    assert set(with_faces) == {"n", "majority", "video"}  # zero_shot off: no FER2013 row


def _with_functionals(clips, rng, *, signal=3.0):
    """The clips with a functionals array whose first columns shift with the label."""
    values = rng.normal(0, 1, size=(len(clips), 12)).astype(np.float32)
    values[np.arange(len(clips)), clips.labels % 12] += signal
    return dataclasses.replace(clips, arrays={**clips.arrays, "functionals": values})


def test_logreg_on_cached_functionals_keeps_its_test_probabilities(data):
    clips, names = data
    rich = _with_functionals(clips, np.random.default_rng(5))
    results = run_baselines(
        rich,
        label_names=names,
        feature_sets=("functionals",),
        classifiers=("logreg", "rbf_svm"),
        c_grid=(0.1, 1.0),
        keep_probabilities=True,
        zero_shot=False,
    )
    row = results["functionals"]["logreg"]
    test = rich.split("test")
    proba = row["test_probabilities"]
    assert proba.shape == (len(test), len(names)) and np.allclose(proba.sum(axis=1), 1.0)
    assert row["accuracy"] == pytest.approx(float((proba.argmax(axis=1) == test.labels).mean()))
    assert row["accuracy"] > 2 / len(names) and row["C"] in (0.1, 1.0)
    assert "test_probabilities" not in results["functionals"]["rbf_svm"]  # no probabilities without Platt scaling
    assert pooled_features(rich, "functionals").shape == (len(rich), 12)
    plain = run_baselines(rich, label_names=names, feature_sets=("functionals",), classifiers=("logreg",))
    assert "test_probabilities" not in plain["functionals"]["logreg"]


def test_the_functionals_set_without_cached_functionals(data):
    clips, names = data
    with pytest.raises(DatasetError, match="audio.functionals"):
        pooled_features(clips, "functionals")
    results = run_baselines(clips, label_names=names, feature_sets=("functionals", "audio"), classifiers=("gnb",))
    assert "functionals" not in results and "audio" in results

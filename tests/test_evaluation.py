import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from mmer.bundle import model_metadata, save_model_bundle
from mmer.clips import align_clips
from mmer.config import EvaluateParams, load_section
from mmer.errors import ConfigError, DatasetError, ModelError
from mmer.evaluation import (
    accuracy,
    classification_metrics,
    confusion_matrix,
    evaluate_split,
    evaluate_stage,
    evaluation_report,
    macro_f1,
    majority_baseline,
    majority_class,
    per_class_recall,
    predictions_table,
    unweighted_average_recall,
)
from mmer.networks import build_model
from mmer.plots import plot_confusion, plot_per_class_recall

from conftest import ROOT
from feature_factory import make_corpus, tiny_model_params, write_corpus

# rows = actual, columns = predicted
HAND = np.array([[5, 1, 0], [2, 3, 1], [0, 0, 4]])


class FixedAnswerModel:
    """Stands in for a keras model: the same class probabilities for every clip (known metrics, no TensorFlow)."""

    def __init__(self, probabilities: list[float]) -> None:
        self.probabilities = np.asarray(probabilities, np.float32)

    def predict_on_batch(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return np.tile(self.probabilities, (len(inputs["audio_features"]), 1))


def fixed_answer_metadata(label_names: list[str]) -> dict:
    """The model.json fields predict_proba reads, for a model of the feature factory's audio features."""
    return {
        "label_names": list(label_names),
        "model_inputs": "audio",
        "inputs": {"audio_features": {"shape": [40, 8], "dtype": "float32"}},
    }


def labels_of(confusion):
    pairs = [(a, p) for (a, p), count in np.ndenumerate(confusion) for _ in range(count)]
    return np.array([a for a, _ in pairs]), np.array([p for _, p in pairs])


def test_known_answers_on_a_hand_made_confusion():
    assert accuracy(HAND) == pytest.approx(12 / 16)
    np.testing.assert_allclose(per_class_recall(HAND), [5 / 6, 3 / 6, 4 / 4])
    assert unweighted_average_recall(HAND) == pytest.approx((5 / 6 + 1 / 2 + 1) / 3)
    # F1 = 2 TP / (actual + predicted): 10/13, 6/10, 8/9
    assert macro_f1(HAND) == pytest.approx((10 / 13 + 6 / 10 + 8 / 9) / 3)


def test_metrics_agree_with_scikit_learn(rng):
    y_true, y_pred = rng.integers(0, 5, 200), rng.integers(0, 5, 200)
    confusion = confusion_matrix(y_true, y_pred, n_classes=5)
    assert confusion.sum() == 200
    assert macro_f1(confusion) == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert unweighted_average_recall(confusion) == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    y_true, y_pred = labels_of(HAND)
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, n_classes=3), HAND)


def test_absent_class_is_left_out_of_uar_and_written_as_null():
    # class 2 ("c") has no test clip and is never predicted
    metrics = classification_metrics([0, 0, 1, 1], [0, 1, 1, 1], label_names=["a", "b", "c"])
    assert metrics["per_class_recall"] == {"a": 0.5, "b": 1.0, "c": None}
    assert metrics["uar"] == pytest.approx(0.75) and metrics["accuracy"] == pytest.approx(0.75) and metrics["n"] == 4
    assert metrics["macro_f1"] == pytest.approx(f1_score([0, 0, 1, 1], [0, 1, 1, 1], average="macro"))
    json.dumps(metrics, allow_nan=False)
    assert math.isnan(per_class_recall(np.array([[1, 0], [0, 0]]))[1])


def test_classes_seen_once_count_in_recall_and_f1():
    # class 1 occurs once as an actual label, class 2 once as a prediction only, class 3 never
    y_true, y_pred = [0, 0, 1], [0, 0, 2]
    confusion = confusion_matrix(y_true, y_pred, n_classes=4)
    np.testing.assert_array_equal(per_class_recall(confusion), [1.0, 0.0, np.nan, np.nan])
    assert unweighted_average_recall(confusion) == pytest.approx(0.5)
    assert macro_f1(confusion) == pytest.approx(1 / 3)  # F1 1, 0, 0 over the classes 0, 1, 2
    assert macro_f1(confusion) == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    np.testing.assert_array_equal(per_class_recall(np.array([[1, 0], [0, 0]])), [1.0, np.nan])
    np.testing.assert_array_equal(confusion_matrix([], [], n_classes=2), np.zeros((2, 2)))
    assert confusion.dtype == np.int64  # counts


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: confusion_matrix([0, 1], [0], n_classes=2), "same length"),
        (lambda: confusion_matrix([[0, 1]], [[0, 1]], n_classes=2), "1-d"),
        (lambda: confusion_matrix([0, 3], [0, 1], n_classes=2), "y_true holds labels outside 0..1"),
        (lambda: confusion_matrix([0, 2], [0, 1], n_classes=2), "y_true holds labels outside 0..1"),
        (lambda: confusion_matrix([0, 1], [0, -1], n_classes=2), "y_pred holds labels outside 0..1"),
        (lambda: accuracy(np.zeros((2, 2))), r"^the confusion matrix is empty \(no clips\)$"),
        (lambda: accuracy(np.ones(4)), "square"),
        (lambda: macro_f1(np.ones((2, 3))), "square"),
        (
            lambda: evaluation_report([0, 1], np.ones((2, 3)) / 3, label_names=["a", "b"], train_labels=[0]),
            "probabilities of shape",
        ),
    ],
)
def test_bad_metric_inputs_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_majority_baseline_uses_the_training_labels():
    train = [2, 2, 2, 0, 1]  # majority class 2 in training
    test = [0, 0, 0, 1, 2]  # majority class 0 in the test set
    assert majority_class(train, n_classes=3) == 2
    baseline = majority_baseline(train, test, label_names=["a", "b", "c"])
    assert (
        baseline["class"] == "c"
        and baseline["accuracy"] == pytest.approx(1 / 5)
        and baseline["uar"] == pytest.approx(1 / 3)
    )
    assert majority_class([1, 0], n_classes=2) == 0  # tie: the lowest label
    with pytest.raises(DatasetError, match="^no training labels to find the majority class from$"):
        majority_class([], n_classes=2)


def test_report_table_and_figures(tmp_path):
    names = ["a", "b", "c"]
    y_true, y_pred = labels_of(HAND)
    probabilities = np.eye(3)[y_pred] * 0.7 + 0.1
    report = evaluation_report(y_true, probabilities, label_names=names, train_labels=[0, 0, 1])
    assert report["accuracy"] == pytest.approx(0.75) and report["majority"]["class"] == "a"
    table = predictions_table([f"clip{i}" for i in range(16)], [1] * 16, y_true, probabilities, label_names=names)
    assert list(table.columns) == ["clip_id", "actor", "actual", "predicted", "prob_a", "prob_b", "prob_c"]
    assert (table["actual"] == np.array(names)[y_true]).all() and (table["predicted"] == np.array(names)[y_pred]).all()
    plot_confusion(HAND, label_names=names, path=tmp_path / "confusion.png")
    plot_per_class_recall(report["per_class_recall"], path=tmp_path / "recall.png")
    for name in ("confusion.png", "recall.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predictions_table_known_rows():
    probabilities = np.array([[1 / 3, 2 / 3], [0.9, 0.1]])
    table = predictions_table(["x", "y"], ["ravdess-01", 2], [1, 0], probabilities, label_names=["a", "b"])
    assert table.to_dict("records") == [
        {"clip_id": "x", "actor": "ravdess-01", "actual": "b", "predicted": "b", "prob_a": 0.33333, "prob_b": 0.66667},
        {"clip_id": "y", "actor": "2", "actual": "a", "predicted": "a", "prob_a": 0.9, "prob_b": 0.1},
    ]
    empty = predictions_table([], [], [], np.zeros((0, 2)), label_names=["a", "b"])
    assert len(empty) == 0 and list(empty.columns) == ["clip_id", "actor", "actual", "predicted", "prob_a", "prob_b"]


def test_evaluate_stage_on_the_test_speakers(tmp_path):
    corpus = write_corpus(tmp_path, make_corpus(seed=5))
    params = tiny_model_params()
    model = build_model(
        inputs="audio",
        n_classes=4,
        audio_features_shape=(40, 8),
        audio_units=params.audio_units,
        audio_dense=params.audio_dense,
        head_units=params.head_units,
    )
    attrs = {"audio": corpus.audio.attrs}
    save_model_bundle(
        model,
        model_metadata(model, model_inputs="audio", label_names=corpus.label_names, feature_attrs=attrs),
        tmp_path / "model.keras",
    )
    out = {
        name: tmp_path / "metrics" / name for name in ("eval.json", "predictions.csv", "confusion.png", "recall.png")
    }
    report = evaluate_stage(
        corpus.index_path,
        audio_path=corpus.audio_path,
        video_path=corpus.video_path,
        model_path=tmp_path / "model.keras",
        metrics_path=out["eval.json"],
        predictions_path=out["predictions.csv"],
        confusion_path=out["confusion.png"],
        recall_path=out["recall.png"],
    )
    both = set(corpus.audio.clip_ids) & set(corpus.video.clip_ids)
    test_ids = [c for c in corpus.index.loc[corpus.index["split"] == "test", "clip_id"] if c in both]
    table = pd.read_csv(out["predictions.csv"], dtype={"clip_id": str})
    assert list(table["clip_id"]) == test_ids and set(table["actor"]) == {6}
    assert json.loads(out["eval.json"].read_text()) == report
    assert report["n"] == len(test_ids) and report["model_inputs"] == "audio" and report["split"] == "test"
    assert set(report) >= {"accuracy", "macro_f1", "uar", "per_class_recall", "majority"}
    assert all(out[name].is_file() for name in out)
    with pytest.raises(ConfigError, match="split"):
        evaluate_stage(
            corpus.index_path,
            audio_path=corpus.audio_path,
            video_path=corpus.video_path,
            model_path=tmp_path / "model.keras",
            metrics_path=out["eval.json"],
            predictions_path=out["predictions.csv"],
            confusion_path=out["confusion.png"],
            recall_path=out["recall.png"],
            split="train",
        )
    three = build_model(
        inputs="audio", n_classes=3, audio_features_shape=(40, 8), audio_units=4, audio_dense=4, head_units=4
    )
    save_model_bundle(
        three,
        model_metadata(three, model_inputs="audio", label_names=["happy", "sad", "angry"], feature_attrs=attrs),
        tmp_path / "three.keras",
    )
    with pytest.raises(ModelError, match="classes"):
        evaluate_stage(
            corpus.index_path,
            audio_path=corpus.audio_path,
            video_path=corpus.video_path,
            model_path=tmp_path / "three.keras",
            metrics_path=out["eval.json"],
            predictions_path=out["predictions.csv"],
            confusion_path=out["confusion.png"],
            recall_path=out["recall.png"],
        )


def test_evaluate_params():
    assert load_section(EvaluateParams, "evaluate", ROOT / "params.yaml").split == "test"
    with pytest.raises(ConfigError, match="evaluate.split"):
        EvaluateParams(split="train")


def test_evaluate_split_takes_the_majority_class_from_the_training_speakers():
    # a skewed training split (mostly "fearful") and a test split that is mostly "happy":
    # the baseline must predict fearful on the test clips, whatever the model does
    corpus = make_corpus(seed=5, drop=0)
    data = align_clips(corpus.index, corpus.caches)
    keep = (data.splits != "train") | (data.labels == 3) | (data.actors == 1)
    two_fearful_tests = np.flatnonzero((data.splits == "test") & (data.labels == 3))[:2]
    keep &= (data.splits != "test") | (data.labels == 0) | np.isin(np.arange(len(data)), two_fearful_tests)
    skewed = data.take(keep)
    train, test = skewed.split("train"), skewed.split("test")
    assert np.bincount(train.labels).argmax() == 3 and np.bincount(test.labels).argmax() == 0
    assert set(test.labels) == {0, 3}
    # a model that always answers happy (the test split's majority) scores what the training majority cannot
    model = FixedAnswerModel([0.7, 0.1, 0.1, 0.1])
    report, table = evaluate_split(skewed, model, fixed_answer_metadata(corpus.label_names))
    assert report["accuracy"] == pytest.approx((len(test) - 2) / len(test)) and set(table["predicted"]) == {"happy"}
    assert report["majority"]["class"] == "fearful"
    assert report["majority"]["accuracy"] == pytest.approx(2 / len(test))  # the two fearful test clips
    assert report["majority"]["uar"] == pytest.approx(1 / 2)  # fearful recall 1, happy recall 0
    # the table and the report are about the test speakers, and only them
    assert {str(a) for a in table["actor"]} == {str(a) for a in test.actors} == {"6"} and report["n"] == len(
        test
    ) == len(table)
    assert not set(skewed.split("val").actors) & set(test.actors)


def test_evaluate_split_on_the_validation_speakers_and_its_errors():
    corpus = make_corpus(seed=5, drop=0)
    data = align_clips(corpus.index, corpus.caches)
    model, metadata = FixedAnswerModel([0.1, 0.6, 0.2, 0.1]), fixed_answer_metadata(corpus.label_names)
    report, table = evaluate_split(data, model, metadata, split="val")
    val = data.split("val")
    assert report["split"] == "val" and report["model_inputs"] == "audio"
    assert report["n"] == len(val) == len(table) and list(table["clip_id"]) == list(val.clip_ids)
    assert list(table["actual"]) == [corpus.label_names[k] for k in val.labels]
    assert set(table["predicted"]) == {corpus.label_names[1]}
    assert report["accuracy"] == pytest.approx(np.mean(val.labels == 1)) and 0 < report["accuracy"] < 1
    assert report["uar"] == pytest.approx(1 / len(set(val.labels)))  # recall 1 for class 1, 0 for the others
    train_majority = np.bincount(data.split("train").labels).argmax()
    assert report["majority"]["class"] == corpus.label_names[train_majority]
    with pytest.raises(ConfigError, match="evaluate.split"):
        evaluate_split(data, model, metadata, split="train")
    with pytest.raises(DatasetError, match="no test clips"):
        evaluate_split(data.take(data.splits != "test"), model, metadata)
    with pytest.raises(DatasetError, match="no training labels"):
        evaluate_split(data.take(data.splits != "train"), model, metadata)
    # a model that knows 3 classes cannot score clips labelled up to 3
    three = FixedAnswerModel([0.2, 0.5, 0.3])
    with pytest.raises(ModelError, match="classes"):
        evaluate_split(data, three, fixed_answer_metadata(corpus.label_names[:3]))

"""Metrics on the test speakers, the majority-class baseline, predictions table and figures.

The metric functions are pure: a confusion matrix (rows = actual, columns = predicted) in,
numbers out. Conventions follow scikit-learn: recall of a class without test clips is
undefined (NaN, written as null) and left out of the unweighted average recall (UAR);
macro-F1 averages over the classes that occur as actual or predicted labels.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mmer.clips import ClipData
from mmer.config import EvaluateParams
from mmer.errors import ConfigError, DatasetError, ModelError
from mmer.files import atomic_path
from mmer.plots import plot_confusion, plot_per_class_recall

if TYPE_CHECKING:
    import keras

logger = logging.getLogger(__name__)

METRIC_KEYS = ("accuracy", "macro_f1", "uar")


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], *, n_classes: int) -> np.ndarray:
    """Counts of (actual, predicted) label pairs.

    Returns
    -------
    ndarray [n_classes, n_classes], int64
        Row = actual class, column = predicted class.
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be 1-d and the same length")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"{name} holds labels outside 0..{n_classes - 1}")
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    return confusion


def _check_confusion(confusion: np.ndarray) -> np.ndarray:
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"a confusion matrix is square, not of shape {confusion.shape}")
    if confusion.sum() == 0:
        raise ValueError("the confusion matrix is empty (no clips)")
    return confusion


def accuracy(confusion: np.ndarray) -> float:
    """Share of clips whose predicted class is the actual one."""
    confusion = _check_confusion(confusion)
    return float(np.trace(confusion) / confusion.sum())


def per_class_recall(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class (NaN for a class without actual clips)."""
    confusion = _check_confusion(confusion)
    support = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)


def unweighted_average_recall(confusion: np.ndarray) -> float:
    """Mean recall over the classes with actual clips (balanced accuracy)."""
    return float(np.nanmean(per_class_recall(confusion)))


def macro_f1(confusion: np.ndarray) -> float:
    """Unweighted mean F1 over the classes that occur as actual or predicted labels."""
    confusion = _check_confusion(confusion)
    true_pos = np.diag(confusion).astype(float)
    actual, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    present = (actual + predicted) > 0
    f1 = 2 * true_pos[present] / (actual[present] + predicted[present])
    return float(f1.mean())


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], *, label_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, UAR, per-class recall (by name) and n of a set of predictions."""
    confusion = confusion_matrix(y_true, y_pred, n_classes=len(label_names))
    recall = per_class_recall(confusion)
    return {
        "n": int(confusion.sum()),
        "accuracy": accuracy(confusion),
        "macro_f1": macro_f1(confusion),
        "uar": unweighted_average_recall(confusion),
        "per_class_recall": {name: (None if math.isnan(r) else float(r)) for name, r in zip(label_names, recall)},
    }


def majority_class(train_labels: Sequence[int], *, n_classes: int) -> int:
    """The most frequent training label (the lowest label on a tie)."""
    train_labels = np.asarray(train_labels, dtype=np.int64)
    if train_labels.size == 0:
        raise DatasetError("no training labels to find the majority class from")
    return int(np.argmax(np.bincount(train_labels, minlength=n_classes)))


def majority_baseline(
    train_labels: Sequence[int], y_true: Sequence[int], *, label_names: Sequence[str]
) -> dict[str, Any]:
    """Metrics of always predicting the most frequent *training* class on ``y_true``."""
    label = majority_class(train_labels, n_classes=len(label_names))
    metrics = classification_metrics(y_true, np.full(len(y_true), label), label_names=label_names)
    metrics.pop("per_class_recall")
    return {"class": label_names[label], **metrics}


def evaluation_report(
    y_true: Sequence[int],
    probabilities: np.ndarray,
    *,
    label_names: Sequence[str],
    train_labels: Sequence[int],
) -> dict[str, Any]:
    """The content of ``metrics/eval.json``: the model's metrics and the majority baseline's.

    Parameters
    ----------
    y_true : sequence of int [n]
        Actual labels of the evaluated clips.
    probabilities : ndarray [n, n_classes]
    label_names : sequence of str
    train_labels : sequence of int
        Labels of the training clips (for the majority class).
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape != (len(y_true), len(label_names)):
        raise ValueError(
            f"probabilities of shape {probabilities.shape} do not fit {len(y_true)} clips and {len(label_names)} classes"
        )
    y_pred = probabilities.argmax(axis=1)
    report = classification_metrics(y_true, y_pred, label_names=label_names)
    report["majority"] = majority_baseline(train_labels, y_true, label_names=label_names)
    return report


def predictions_table(
    clip_ids: Sequence[str],
    actors: Sequence[str],
    y_true: Sequence[int],
    probabilities: np.ndarray,
    *,
    label_names: Sequence[str],
) -> pd.DataFrame:
    """One row per clip: clip_id, actor, actual, predicted (names), ``prob_<class>`` columns."""
    probabilities = np.asarray(probabilities)
    names = np.asarray(label_names, dtype=object)
    table = pd.DataFrame(
        {
            "clip_id": list(clip_ids),
            "actor": np.asarray(actors, dtype=object).astype(str),
            "actual": names[np.asarray(y_true, dtype=int)],
            "predicted": names[probabilities.argmax(axis=1)] if len(probabilities) else [],
        }
    )
    for k, name in enumerate(label_names):
        table[f"prob_{name}"] = np.round(probabilities[:, k], 5)
    return table


def evaluate_split(
    data: ClipData,
    model: keras.Model,
    metadata: Mapping[str, Any],
    *,
    split: str = EvaluateParams.split,
    batch_size: int = EvaluateParams.batch_size,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Evaluate a model on the clips of ``split``; the majority class comes from ``train``.

    Parameters
    ----------
    data : ClipData
        Aligned clips with their splits.
    model, metadata
        From :func:`mmer.bundle.load_model_bundle` (or a freshly trained model).
    split : {'test', 'val'}
    batch_size : int

    Returns
    -------
    report : dict
        See :func:`evaluation_report`, plus ``split`` and ``model_inputs``.
    predictions : DataFrame
        See :func:`predictions_table`.
    """
    from mmer.bundle import predict_proba

    if split not in ("test", "val"):
        raise ConfigError(f"evaluate.split must be test or val, not {split!r}")
    label_names = list(metadata["label_names"])
    clips, train = data.split(split), data.split("train")
    if len(clips) == 0:
        raise DatasetError(f"no {split} clips to evaluate on (of {len(data)} clips in every feature cache)")
    if max(clips.labels.max(), train.labels.max(initial=0)) >= len(label_names):
        raise ModelError(
            f"the index has labels up to {clips.labels.max()} but the model knows {len(label_names)} classes {label_names}; retrain after changing index.classes"
        )
    probabilities = predict_proba(model, metadata, clips.arrays, batch_size=batch_size)
    report = evaluation_report(clips.labels, probabilities, label_names=label_names, train_labels=train.labels)
    report.update(split=split, model_inputs=metadata["model_inputs"])
    table = predictions_table(clips.clip_ids, clips.actors, clips.labels, probabilities, label_names=label_names)
    logger.info(
        "%s on %d %s clips: accuracy %.3f, macro-F1 %.3f, UAR %.3f (majority %s: accuracy %.3f)",
        metadata["model_inputs"],
        report["n"],
        split,
        report["accuracy"],
        report["macro_f1"],
        report["uar"],
        report["majority"]["class"],
        report["majority"]["accuracy"],
    )
    return report, table


def perturbed_average_proba(
    model: keras.Model, metadata: Mapping[str, Any], clips: ClipData, *, batch_size: int = EvaluateParams.batch_size
) -> tuple[np.ndarray, int]:
    """Test-time augmentation: class probabilities averaged over each clip and its perturbed copies.

    The copies are the speed- or pitch-perturbed audio features the cache holds for every
    clip (``audio.perturbations``; training uses those of the training clips only). Without
    such copies, or for a model that reads no audio, the plain probabilities come back.

    Returns
    -------
    probabilities : ndarray [n, n_classes]
    n_views : int
        How many views were averaged (1 + the number of copies).
    """
    from mmer.bundle import predict_proba
    from mmer.clips import PERTURBED_ARRAYS

    views = [predict_proba(model, metadata, clips.arrays, batch_size=batch_size)]
    copies = clips.arrays.get(PERTURBED_ARRAYS["audio_features"])
    if copies is None or "audio_features" not in metadata["inputs"]:
        return views[0], 1
    frames = clips.arrays[PERTURBED_ARRAYS["speech_frames"]]
    for k in range(copies.shape[1]):
        arrays = {**clips.arrays, "audio_features": copies[:, k], "speech_frames": frames[:, k]}
        views.append(predict_proba(model, metadata, arrays, batch_size=batch_size))
    return np.mean(views, axis=0), len(views)


def evaluate_stage(
    index_path: str | Path,
    *,
    audio_path: str | Path,
    video_path: str | Path,
    model_path: str | Path,
    metrics_path: str | Path,
    predictions_path: str | Path,
    confusion_path: str | Path,
    recall_path: str | Path,
    split: str = EvaluateParams.split,
    batch_size: int = EvaluateParams.batch_size,
) -> dict[str, Any]:
    """Stage ``evaluate``: the saved model on the test speakers -> metrics, table, figures."""
    from mmer.bundle import load_model_bundle
    from mmer.clips import load_clip_data
    from mmer.files import write_json

    model, metadata = load_model_bundle(model_path)
    data = load_clip_data(index_path, audio_path=audio_path, video_path=video_path)
    report, table = evaluate_split(data, model, metadata, split=split, batch_size=batch_size)
    write_json(report, metrics_path)
    with atomic_path(predictions_path) as tmp:
        table.to_csv(tmp, index=False)
    names = list(metadata["label_names"])
    confusion = confusion_matrix(
        [names.index(a) for a in table["actual"]], [names.index(p) for p in table["predicted"]], n_classes=len(names)
    )
    title = f"{metadata['model_inputs']} model, {split} speakers: accuracy {report['accuracy']:.2f}, UAR {report['uar']:.2f}"
    plot_confusion(confusion, label_names=names, path=confusion_path, title=title)
    plot_per_class_recall(report["per_class_recall"], path=recall_path, title=title)
    return report

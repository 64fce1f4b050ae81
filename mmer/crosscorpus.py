"""Cross-corpus evaluation: the trained model on corpora it never met (stage ``cross_corpus``).

The corpora of ``index.heldout_corpora`` are in the index with split ``heldout``: never
trained on, never validated on. This stage scores the model saved by ``train`` on every
one of their clips, corpus by corpus, with what ``evaluate`` reports (accuracy, macro-F1,
UAR, per-class recall, the majority class of the training clips on the same clips), plus
the confusion matrix, the best constant answer on those clips, and the classical baselines
of the ``baselines`` section fitted on the same training speakers (C chosen on the same
validation speakers) and scored on the same clips.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmer.clips import ClipData
from mmer.config import BaselinesParams, EvaluateParams
from mmer.errors import DatasetError, ModelError
from mmer.evaluation import METRIC_KEYS, classification_metrics, confusion_matrix, evaluation_report, predictions_table
from mmer.splits import HELDOUT

logger = logging.getLogger(__name__)


def best_constant(y_true: np.ndarray, *, label_names: Sequence[str]) -> dict[str, Any]:
    """The most frequent class *of these clips*, answered for every clip: no constant does better."""
    label = int(np.argmax(np.bincount(np.asarray(y_true, dtype=np.int64), minlength=len(label_names))))
    metrics = classification_metrics(y_true, np.full(len(y_true), label), label_names=label_names)
    metrics.pop("per_class_recall")
    return {"class": label_names[label], **metrics}


def classical_on_heldout(
    data: ClipData,
    heldout: ClipData,
    *,
    label_names: Sequence[str],
    feature_sets: Sequence[str] = BaselinesParams.feature_sets,
    classifiers: Sequence[str] = BaselinesParams.classifiers,
    c_grid: Sequence[float] = BaselinesParams.c_grid,
    face_grid: int = BaselinesParams.face_grid,
    seed: int = BaselinesParams.seed,
) -> dict[str, dict[str, Any]]:
    """Each classical baseline fitted on the training speakers (C by validation UAR), scored on ``heldout``.

    Returns ``{feature_set: {classifier: {accuracy, macro_f1, uar, val_uar, C}}}``; feature
    sets the caches cannot give (faces in an audio-only run) are left out.
    """
    from mmer.baselines import fit_classifier, pooled_features

    train, val = data.split("train"), data.split("val")
    if min(len(train), len(val)) == 0:
        raise DatasetError(f"classical baselines need train and val clips; got {len(train)} and {len(val)}")
    results: dict[str, dict[str, Any]] = {}
    for feature_set in feature_sets:
        if feature_set in ("video", "av") and "faces" not in data.arrays:
            continue
        x_train, x_val, x_test = (pooled_features(p, feature_set, face_grid=face_grid) for p in (train, val, heldout))
        results[feature_set] = {}
        for name in classifiers:
            model, chosen = fit_classifier(
                name, x_train, train.labels, x_val, val.labels, label_names=label_names, c_grid=c_grid, seed=seed
            )
            metrics = classification_metrics(heldout.labels, model.predict(x_test), label_names=label_names)
            results[feature_set][name] = {key: metrics[key] for key in METRIC_KEYS} | chosen
    return results


def cross_corpus_report(
    data: ClipData,
    corpus_of: pd.Series,
    model: Any,
    metadata: dict[str, Any],
    *,
    batch_size: int = EvaluateParams.batch_size,
    baselines: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The model (and the baselines) on every held-out corpus.

    Parameters
    ----------
    data : ClipData
        Aligned clips; those of split ``heldout`` are scored.
    corpus_of : Series
        clip_id -> corpus name (the index's ``dataset``).
    model, metadata
        From :func:`mmer.bundle.load_model_bundle`.
    baselines : dict, optional
        Keyword arguments of :func:`classical_on_heldout`; None: no classical baselines.

    Returns
    -------
    report : dict
        ``{'train_corpora': [...], 'corpora': {name: {n, accuracy, macro_f1, uar,
        per_class_recall, majority, best_constant, confusion, baselines}}}``.
    predictions : DataFrame
        :func:`mmer.evaluation.predictions_table` of every held-out clip, with a ``corpus`` column.
    """
    from mmer.bundle import predict_proba

    label_names = list(metadata["label_names"])
    train = data.split("train")
    corpora = corpus_of.reindex(data.clip_ids).to_numpy(dtype=object)
    report: dict[str, Any] = {
        "model_inputs": metadata["model_inputs"],
        "label_names": label_names,
        "train_corpora": sorted(set(corpora[data.splits == "train"])),
        "corpora": {},
    }
    tables = []
    for corpus in sorted(set(corpora[data.splits == HELDOUT])):
        clips = data.take((data.splits == HELDOUT) & (corpora == corpus))
        if clips.labels.max() >= len(label_names):
            raise ModelError(f"{corpus}: labels up to {clips.labels.max()} but the model knows {label_names}")
        probabilities = predict_proba(model, metadata, clips.arrays, batch_size=batch_size)
        entry = evaluation_report(clips.labels, probabilities, label_names=label_names, train_labels=train.labels)
        entry["best_constant"] = best_constant(clips.labels, label_names=label_names)
        entry["confusion"] = confusion_matrix(
            clips.labels, probabilities.argmax(axis=1), n_classes=len(label_names)
        ).tolist()  # rows actual, columns predicted, in label_names order
        if baselines is not None:
            entry["baselines"] = classical_on_heldout(data, clips, label_names=label_names, **baselines)
        report["corpora"][corpus] = entry
        table = predictions_table(clips.clip_ids, clips.actors, clips.labels, probabilities, label_names=label_names)
        tables.append(table.assign(corpus=corpus))
        logger.info(
            "trained on %s, tested on all of %s (%d clips): accuracy %.3f, macro-F1 %.3f, UAR %.3f "
            "(training majority %s: %.3f; best constant %s: %.3f)",
            "+".join(report["train_corpora"]),
            corpus,
            entry["n"],
            entry["accuracy"],
            entry["macro_f1"],
            entry["uar"],
            entry["majority"]["class"],
            entry["majority"]["accuracy"],
            entry["best_constant"]["class"],
            entry["best_constant"]["accuracy"],
        )
    columns = ["clip_id", "actor", "actual", "predicted", *(f"prob_{n}" for n in label_names), "corpus"]
    return report, (pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns))


def cross_corpus_stage(
    index_path: str | Path,
    *,
    audio_path: str | Path,
    video_path: str | Path,
    model_path: str | Path,
    metrics_path: str | Path,
    out_dir: str | Path,
    batch_size: int = EvaluateParams.batch_size,
    baselines: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Stage ``cross_corpus``: metrics -> ``metrics_path``; predictions and a confusion figure per corpus -> ``out_dir``.

    Without held-out corpora (``index.heldout_corpora`` empty) it writes a report with no
    corpora and an empty predictions table, in a moment.
    """
    from mmer.bundle import load_model_bundle
    from mmer.clips import align_clips, read_caches
    from mmer.corpus import read_index
    from mmer.files import atomic_path, write_json
    from mmer.plots import plot_confusion

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = read_index(index_path)
    if not (index["split"] == HELDOUT).any():
        logger.info("no held-out corpus (index.heldout_corpora is empty): nothing to evaluate across corpora")
        report: dict[str, Any] = {"train_corpora": sorted(set(index["dataset"])), "corpora": {}}
        table = pd.DataFrame(columns=["clip_id", "actor", "actual", "predicted", "corpus"])
    else:
        model, metadata = load_model_bundle(model_path)
        data = align_clips(index, read_caches(audio_path, video_path))
        report, table = cross_corpus_report(
            data, index.set_index("clip_id")["dataset"], model, metadata, batch_size=batch_size, baselines=baselines
        )
        for corpus, entry in report["corpora"].items():
            title = (
                f"trained on {'+'.join(report['train_corpora'])}, tested on {corpus}: "
                f"accuracy {entry['accuracy']:.2f}, UAR {entry['uar']:.2f}"
            )
            plot_confusion(
                np.asarray(entry["confusion"]),
                label_names=report["label_names"],
                path=out_dir / f"confusion_{corpus}.png",
                title=title,
            )
    with atomic_path(out_dir / "predictions.csv") as tmp:
        table.to_csv(tmp, index=False)
    write_json(report, metrics_path)
    return report

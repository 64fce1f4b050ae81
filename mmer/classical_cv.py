"""Speaker cross-validation of a classical baseline (``cv.classifier: rbf_svm`` and the like).

The same folds as :func:`mmer.training.cross_validate` (fold k tests, fold k+1 validates
and alone picks the SVM's C), the same summary shape (mean and standard deviation over
folds, ddof 0, of accuracy, macro-F1 and UAR, and of the majority baseline), so a
classical row and a network row of ``dvc exp show`` sit in the same columns. The features
are the pooled ones of :mod:`mmer.baselines`, of the inputs ``model.inputs`` names, or the
set ``cv.feature_set`` names (e.g. ``functionals``). A classifier with probabilities keeps
each fold's test probabilities, so ``mmer report --combine`` can average it with networks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmer.errors import ConfigError
from mmer.evaluation import METRIC_KEYS

logger = logging.getLogger(__name__)


def _mean_std(values: Sequence[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def cross_validate_classical(
    index: Any,
    caches: Mapping[str, Any],
    *,
    label_names: Sequence[str],
    classifier: str,
    feature_set: str,
    folds: Sequence[int] = (),
    c_grid: Sequence[float] = (0.1, 1.0, 10.0),
    face_grid: int = 8,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """:func:`mmer.baselines.run_baselines` of one classifier on one feature set, per fold.

    Returns ``(summary, per_fold)`` shaped as :func:`mmer.training.cross_validate`'s.
    """
    from mmer.baselines import run_baselines
    from mmer.clips import align_clips

    n_folds = int(index.loc[index["fold"] >= 0, "fold"].nunique())  # held-out corpora have fold -1
    folds = list(folds) or list(range(n_folds))
    bad = [k for k in folds if not 0 <= k < n_folds]
    if bad:
        raise ConfigError(f"cv.folds {bad} not in 0..{n_folds - 1}")
    per_fold = []
    for fold in folds:
        data = align_clips(index, caches, fold=fold)
        result = run_baselines(
            data,
            label_names=label_names,
            feature_sets=(feature_set,),
            classifiers=(classifier,),
            c_grid=c_grid,
            face_grid=face_grid,
            seed=seed,
            zero_shot=False,
            keep_probabilities=True,
        )
        if feature_set not in result:
            raise ConfigError(
                f"cv.classifier {classifier}: no {feature_set} features in this corpus "
                "(model.inputs or cv.feature_set; functionals need audio.functionals)"
            )
        scores = dict(result[feature_set][classifier])
        probabilities = scores.pop("test_probabilities", None)
        report = {
            "fold": fold,
            "n": result["n"],
            "test_actors": sorted(str(a) for a in set(data.split("test").actors)),
            "val_actors": sorted(str(a) for a in set(data.split("val").actors)),
            "classifier": classifier,
            "feature_set": feature_set,
            **scores,
            "majority": result["majority"],
        }
        if probabilities is not None:  # as a network run keeps them, for mmer report --combine
            test = data.split("test")
            report["test_probabilities"] = {
                "clip_ids": [str(c) for c in test.clip_ids],
                "label_names": list(label_names),
                "labels": test.labels.tolist(),
                "plain": probabilities.round(6).tolist(),
                "augmented": False,  # no test-time augmentation: its plain probabilities stand in for tta
            }
        per_fold.append(report)
        logger.info(
            "fold %d (test actors %s): %s accuracy %.3f, UAR %.3f",
            fold,
            report["test_actors"],
            classifier,
            report["accuracy"],
            report["uar"],
        )
    summary: dict[str, Any] = {"enabled": True, "folds": folds, "n": int(sum(r["n"] for r in per_fold))}
    for key in METRIC_KEYS:
        summary[key] = _mean_std([r[key] for r in per_fold])
        summary[f"majority_{key}"] = _mean_std([r["majority"][key] for r in per_fold])
    return summary, per_fold


def classical_cv_stage(
    index_path: str | Path,
    *,
    audio_path: str | Path,
    video_path: str | Path,
    out_dir: str | Path,
    enabled: bool,
    folds: Sequence[int] = (),
    **kwargs: Any,
) -> dict[str, Any]:
    """Stage ``cv`` with ``cv.classifier`` a classical baseline: the files of :func:`mmer.training.cv_stage`."""
    from mmer.clips import read_caches
    from mmer.corpus import read_index
    from mmer.report import write_cv_results

    summary: dict[str, Any] = {"enabled": False}
    per_fold: list[dict[str, Any]] = []
    if enabled:
        caches = read_caches(audio_path, video_path)
        summary, per_fold = cross_validate_classical(read_index(index_path), caches, folds=folds, **kwargs)
    write_cv_results(out_dir, summary, per_fold)
    return summary

"""Classical baselines: scikit-learn classifiers on pooled, standardised per-clip features.

- audio: mean and standard deviation of each MFCC coefficient over the unpadded frames;
- video: the face crops in grey, averaged over the frames where a face was found and
  block-averaged down to ``face_grid x face_grid`` pixels;
- av: both, concatenated;
- functionals: the prosodic and spectral functionals of :mod:`mmer.functionals`, which the
  feature stage caches when ``audio.functionals`` names their groups.

Each classifier is fitted on the training speakers; the SVMs' C is chosen by UAR on the
validation speakers; results are reported on the test speakers in the format of
``metrics/eval.json``.

Beside them, with ``zero_shot``, a row that learns nothing from the corpus: the pretrained
FER2013 network's own expression probabilities averaged over a clip's frames and mapped
onto the label set (:mod:`mmer.face_expression`; calm gets no probability).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmer.audio import speech_mask
from mmer.clips import FUNCTIONALS_ARRAY, ClipData
from mmer.config import BASELINE_CLASSIFIERS, BASELINE_FEATURE_SETS, BaselinesParams
from mmer.errors import ConfigError, DatasetError
from mmer.evaluation import METRIC_KEYS, classification_metrics, majority_baseline

logger = logging.getLogger(__name__)

GREY = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 luma
TUNED = {"linear_svm", "rbf_svm", "logreg"}


def mfcc_statistics(mfcc: np.ndarray, speech_frames: np.ndarray) -> np.ndarray:
    """Per-clip statistics of the unpadded frames: mean, std, mean absolute change, length.

    Mean and standard deviation carry nothing once each clip is standardised
    (``audio.normalise: clip`` makes them 0 and 1), so the descriptor also has what
    standardisation keeps: how fast each coefficient moves (mean absolute frame-to-frame
    change) and how long the speech lasts (log number of frames).

    Parameters
    ----------
    mfcc : ndarray [n, T, c]
        Zero pre-padded: the last ``min(speech_frames, T)`` frames of each clip are speech.
    speech_frames : ndarray [n]

    Returns
    -------
    ndarray [n, 3c + 1], float32
        Means, standard deviations, mean absolute changes, then log length.
    """
    if mfcc.ndim != 3 or len(speech_frames) != len(mfcc):
        raise ValueError(
            f"mfcc must be [n, T, c] with one speech_frames per clip, got {mfcc.shape} and {len(speech_frames)}"
        )
    n_time = mfcc.shape[1]
    lengths = np.clip(np.asarray(speech_frames), 1, n_time)
    speech = speech_mask(speech_frames, n_time)  # [n, T]
    weights = speech[..., None].astype(np.float64)
    mean = (mfcc * weights).sum(axis=1) / lengths[:, None]
    var = (((mfcc - mean[:, None, :]) ** 2) * weights).sum(axis=1) / lengths[:, None]
    both = (speech[:, 1:] & speech[:, :-1])[..., None].astype(np.float64)  # consecutive speech frames
    change = (np.abs(np.diff(mfcc, axis=1)) * both).sum(axis=1) / np.maximum(both.sum(axis=1), 1)
    log_length = np.log(np.maximum(np.asarray(speech_frames, dtype=np.float64), 1))[:, None]
    return np.concatenate([mean, np.sqrt(var), change, log_length], axis=1).astype(np.float32)


def face_descriptor(faces: np.ndarray, face_found: np.ndarray | None = None, *, grid: int = 8) -> np.ndarray:
    """Grey face crops averaged over the frames with a face, block-averaged to ``grid x grid``.

    Parameters
    ----------
    faces : ndarray [n, f, s, s, 3], uint8
    face_found : ndarray [n, f] of bool, optional
        Frames to average; a clip with no found frame uses all its frames.
    grid : int
        Output side; must divide the crop size (64 -> 8 means 8x8-pixel blocks).

    Returns
    -------
    ndarray [n, grid * grid], float32, in [0, 1]
    """
    if faces.ndim != 5:
        raise ValueError(f"faces must be [n, frames, height, width, 3], got shape {faces.shape}")
    size = faces.shape[2]
    if grid < 1 or size % grid or faces.shape[3] != size:
        raise ConfigError(f"baselines.face_grid {grid} must divide the square crop size {faces.shape[2:4]}")
    grey = (faces.astype(np.float32) @ GREY) / 255.0  # [n, f, s, s]
    found = np.ones(faces.shape[:2], bool) if face_found is None else np.asarray(face_found, bool)
    found = np.where(found.any(axis=1, keepdims=True), found, True)
    mean = (grey * found[:, :, None, None]).sum(axis=1) / found.sum(axis=1)[:, None, None]
    block = size // grid
    pooled = mean.reshape(len(faces), grid, block, grid, block).mean(axis=(2, 4))
    return pooled.reshape(len(faces), grid * grid).astype(np.float32)


def pooled_features(data: ClipData, feature_set: str, *, face_grid: int = BaselinesParams.face_grid) -> np.ndarray:
    """The per-clip feature vectors of ``feature_set`` (audio, video or av) [n, d]."""
    if feature_set not in BASELINE_FEATURE_SETS:
        raise ConfigError(f"baselines.feature_sets: {feature_set!r} is not one of {list(BASELINE_FEATURE_SETS)}")
    if feature_set == FUNCTIONALS_ARRAY:
        if FUNCTIONALS_ARRAY not in data.arrays:
            raise DatasetError("the functionals feature set needs the audio cache's functionals: set audio.functionals")
        return np.asarray(data.arrays[FUNCTIONALS_ARRAY], dtype=np.float32)
    parts = []
    if feature_set in ("audio", "av"):
        parts.append(mfcc_statistics(data.arrays["audio_features"], data.arrays["speech_frames"]))
    if feature_set in ("video", "av"):
        parts.append(face_descriptor(data.arrays["faces"], data.arrays.get("face_found"), grid=face_grid))
    return np.concatenate(parts, axis=1)


def make_classifier(name: str, *, c: float = 1.0, seed: int = BaselinesParams.seed) -> Any:
    """A scikit-learn pipeline: StandardScaler -> classifier ``name``.

    ``gnb`` Gaussian naive Bayes, ``lda`` linear discriminant analysis (shrinkage by
    Ledoit-Wolf, since features may outnumber clips per class), ``linear_svm`` and
    ``rbf_svm`` support vector machines with penalty ``c`` (RBF gamma ``scale``), ``logreg``
    multinomial logistic regression with inverse L2 penalty ``c`` (it gives probabilities, so
    its cross-validation runs can join an ensemble in ``mmer report --combine``).
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    if name == "gnb":
        classifier = GaussianNB()
    elif name == "lda":
        classifier = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
    elif name == "linear_svm":
        # liblinear: libsvm's linear kernel can take minutes to converge at large C
        classifier = LinearSVC(C=c, max_iter=20_000, random_state=seed)
    elif name == "logreg":
        classifier = LogisticRegression(C=c, max_iter=5000, random_state=seed)
    elif name == "rbf_svm":
        classifier = SVC(kernel="rbf", C=c, gamma="scale", random_state=seed)
    else:
        raise ConfigError(f"baselines.classifiers: {name!r} is not one of {list(BASELINE_CLASSIFIERS)}")
    return make_pipeline(StandardScaler(), classifier)


def fit_classifier(
    name: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    label_names: Sequence[str],
    c_grid: Sequence[float] = BaselinesParams.c_grid,
    seed: int = BaselinesParams.seed,
) -> tuple[Any, dict[str, Any]]:
    """Fit classifier ``name`` on train; for the SVMs pick C from ``c_grid`` by validation UAR.

    Returns the fitted pipeline and ``{'C': chosen, 'val_uar': ...}`` (empty C for the
    classifiers without one).
    """
    candidates = list(c_grid) if name in TUNED else [None]
    best, best_uar, best_c = None, -1.0, None
    for c in candidates:
        model = make_classifier(name, c=c or 1.0, seed=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)  # collinear features in LDA/GNB on tiny sets
            model.fit(x_train, y_train)
        uar = classification_metrics(y_val, model.predict(x_val), label_names=label_names)["uar"]
        if uar > best_uar:
            best, best_uar, best_c = model, uar, c
    return best, ({"C": best_c} if best_c is not None else {}) | {"val_uar": best_uar}


def run_baselines(
    data: ClipData,
    *,
    label_names: Sequence[str],
    feature_sets: Sequence[str] = BaselinesParams.feature_sets,
    classifiers: Sequence[str] = BaselinesParams.classifiers,
    c_grid: Sequence[float] = BaselinesParams.c_grid,
    face_grid: int = BaselinesParams.face_grid,
    seed: int = BaselinesParams.seed,
    zero_shot: bool = BaselinesParams.zero_shot,
    keep_probabilities: bool = False,
) -> dict[str, Any]:
    """Every classifier on every feature set: train speakers -> (val for C) -> test speakers.

    Returns
    -------
    dict
        ``{'n': test clips, 'majority': {...}, '<feature_set>': {'<classifier>': {accuracy,
        macro_f1, uar, val_uar, C (tuned classifiers)}}}`` on the test speakers; with
        ``keep_probabilities``, a classifier that gives probabilities (``logreg``, ``gnb``,
        ``lda``) also keeps ``test_probabilities`` [n_test, n_classes]; with ``zero_shot``
        and face crops also ``'face_expression': {'fer2013_zero_shot': {...}}``
        (:func:`zero_shot_scores`).
    """
    for value in feature_sets:
        if value not in BASELINE_FEATURE_SETS:
            raise ConfigError(f"baselines.feature_sets: {value!r} is not one of {list(BASELINE_FEATURE_SETS)}")
    for value in classifiers:
        if value not in BASELINE_CLASSIFIERS:
            raise ConfigError(f"baselines.classifiers: {value!r} is not one of {list(BASELINE_CLASSIFIERS)}")
    train, val, test = data.split("train"), data.split("val"), data.split("test")
    if min(len(train), len(val), len(test)) == 0:
        raise DatasetError(f"baselines need train, val and test clips; got {len(train)}, {len(val)} and {len(test)}")
    results: dict[str, Any] = {
        "n": len(test),
        "majority": majority_baseline(train.labels, test.labels, label_names=label_names),
    }
    for feature_set in feature_sets:
        if feature_set in ("video", "av") and "faces" not in data.arrays:
            logger.warning(
                "baselines: no face crops (an audio-only corpus): the %s feature set is skipped", feature_set
            )
            continue
        if feature_set == FUNCTIONALS_ARRAY and FUNCTIONALS_ARRAY not in data.arrays:
            logger.warning("baselines: the audio cache holds no functionals (audio.functionals is empty): skipped")
            continue
        x = {
            name: pooled_features(part, feature_set, face_grid=face_grid)
            for name, part in (("train", train), ("val", val), ("test", test))
        }
        results[feature_set] = {}
        for name in classifiers:
            model, chosen = fit_classifier(
                name, x["train"], train.labels, x["val"], val.labels, label_names=label_names, c_grid=c_grid, seed=seed
            )
            metrics = classification_metrics(test.labels, model.predict(x["test"]), label_names=label_names)
            results[feature_set][name] = {key: metrics[key] for key in METRIC_KEYS} | chosen
            if keep_probabilities and hasattr(model, "predict_proba"):
                # columns: the classes seen in training, spread onto the full label set
                proba = np.zeros((len(test), len(label_names)))
                proba[:, model.classes_] = model.predict_proba(x["test"])
                results[feature_set][name]["test_probabilities"] = proba
            logger.info(
                "%s on %s features (%d dims): test accuracy %.3f, UAR %.3f",
                name,
                feature_set,
                x["train"].shape[1],
                metrics["accuracy"],
                metrics["uar"],
            )
    if zero_shot and "faces" in data.arrays:
        results["face_expression"] = {"fer2013_zero_shot": zero_shot_scores(val, test, label_names=label_names)}
    return results


def zero_shot_scores(val: ClipData, test: ClipData, *, label_names: Sequence[str]) -> dict[str, Any]:
    """The FER2013 network's expressions, averaged over frames and mapped onto ``label_names``,
    scored on ``test`` (and its UAR on ``val``, as the classifiers' ``val_uar``)."""
    from mmer.face_expression import clip_expressions, to_corpus_probabilities

    scores: dict[str, Any] = {}
    for name, part in (("val", val), ("test", test)):
        expressions = clip_expressions(part.arrays["faces"], part.arrays.get("face_found"))
        predicted = to_corpus_probabilities(expressions, label_names).argmax(axis=1)
        scores[name] = classification_metrics(part.labels, predicted, label_names=label_names)
    logger.info(
        "fer2013 zero-shot on faces: test accuracy %.3f, UAR %.3f", scores["test"]["accuracy"], scores["test"]["uar"]
    )
    return {key: scores["test"][key] for key in METRIC_KEYS} | {"val_uar": scores["val"]["uar"]}


def baselines_stage(
    index_path: str | Path,
    *,
    audio_path: str | Path,
    video_path: str | Path,
    out_path: str | Path,
    label_names: Sequence[str],
    **kwargs: Any,
) -> dict[str, Any]:
    """Stage ``baselines``: :func:`run_baselines` on the clips of both caches -> ``metrics/baselines.json``."""
    from mmer.clips import load_clip_data
    from mmer.files import write_json

    data = load_clip_data(index_path, audio_path=audio_path, video_path=video_path)
    results = run_baselines(data, label_names=label_names, **kwargs)
    write_json(results, out_path)
    return results

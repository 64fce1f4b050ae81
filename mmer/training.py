"""Training: seeded Keras fit with callbacks on the validation speakers, DVCLive logs, CV.

Every choice made during training (the learning-rate schedule, early stopping, the best
checkpoint) watches the *validation* speakers only; the test speakers are not seen here.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mmer.augment import augment_batch, mixup_batch
from mmer.bundle import model_metadata, save_model_bundle
from mmer.clips import (
    ClipData,
    align_clips,
    frame_statistics,
    read_caches,
    with_perturbed_copies,
)
from mmer.config import (
    MODEL_STANDARDISED,
    AudioParams,
    AugmentParams,
    CvParams,
    EvaluateParams,
    ModelParams,
    TrainParams,
)
from mmer.errors import ConfigError, DatasetError
from mmer.evaluation import classification_metrics, evaluate_split, perturbed_average_proba
from mmer.networks import INPUT_ARRAYS, build_model
from mmer.report import cv_summary
from mmer.splits import member_splits

logger = logging.getLogger(__name__)


def configure_runtime(
    *, seed: int, threads: int = TrainParams.threads, deterministic: bool = TrainParams.deterministic
) -> None:
    """Seed Python, numpy and TensorFlow; cap TensorFlow's threads; ask for deterministic ops.

    The thread counts can only be set before TensorFlow's first operation; later calls
    keep the first setting (and say so at debug level).
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        logger.debug("TensorFlow already running; thread counts stay as they are")
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(seed)


def class_weights(labels: Sequence[int], *, n_classes: int, mode: str = "none") -> dict[int, float] | None:
    """Per-class loss weights: None, or ``balanced`` (n / (n_present_classes * count)).

    Classes without training clips get weight 0 (they contribute no loss anyway).
    """
    if mode == "none":
        return None
    if mode != "balanced":
        raise ConfigError(f"train.class_weight must be none or balanced, not {mode!r}")
    counts = np.bincount(np.asarray(labels, dtype=int), minlength=n_classes)
    present = int((counts > 0).sum())
    return {k: (float(len(labels) / (present * c)) if c else 0.0) for k, c in enumerate(counts)}


class ClipBatches(keras.utils.PyDataset):
    """Shuffled, optionally augmented training batches ``(inputs dict, labels)``.

    The generator of each batch is seeded from (seed, epoch, batch), so the same params
    give the same batches whatever order Keras asks for them in.

    Parameters
    ----------
    inputs : mapping of str to ndarray
        The model inputs by name, one row per clip.
    labels : ndarray [n]
    speech_frames : ndarray [n], optional
        Needed to augment ``mfcc``.
    batch_size : int
    seed : int
        With the epoch and batch number, seeds the shuffling and the augmentation.
    augment : mapping, optional
        Keyword arguments of :func:`mmer.augment.augment_batch`; None: no augmentation.
    shuffle : bool
    n_classes : int
        When given, the labels come one-hot ([batch, n_classes] float32), as a soft-label
        loss (mixup, label smoothing) needs; 0: integer labels.
    mixup : float
        Beta alpha of :func:`mmer.augment.mixup_batch` (needs ``n_classes``); 0: off.
    """

    def __init__(
        self,
        inputs: Mapping[str, np.ndarray],
        labels: np.ndarray,
        *,
        speech_frames: np.ndarray | None = None,
        batch_size: int = TrainParams.batch_size,
        seed: int = 0,
        augment: Mapping[str, Any] | None = None,
        shuffle: bool = True,
        n_classes: int = 0,
        mixup: float = TrainParams.mixup,
    ) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be positive, not {batch_size}")
        if mixup and not n_classes:
            raise ConfigError("mixup needs one-hot labels: give n_classes")
        self.n_classes, self.mixup = n_classes, mixup
        sizes = {name: len(array) for name, array in inputs.items()}
        if not sizes or set(sizes.values()) != {len(labels)}:
            raise ValueError(f"inputs {sizes} and {len(labels)} labels must have the same rows")
        self.inputs, self.labels, self.speech_frames = dict(inputs), np.asarray(labels), speech_frames
        self.batch_size, self.seed, self.augment, self.shuffle = (
            batch_size,
            seed,
            dict(augment) if augment else None,
            shuffle,
        )
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.labels))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.labels))

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, batch: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        rows = self.order[batch * self.batch_size : (batch + 1) * self.batch_size]
        inputs = {name: array[rows] for name, array in self.inputs.items()}
        if self.augment:
            rng = np.random.default_rng([self.seed, self.epoch, batch, 1])
            speech_frames = None if self.speech_frames is None else self.speech_frames[rows]
            inputs = augment_batch(inputs, speech_frames, rng=rng, **self.augment)
        labels = self.labels[rows]
        if self.n_classes:
            labels = np.eye(self.n_classes, dtype=np.float32)[labels]
            if self.mixup:
                inputs, labels = mixup_batch(
                    inputs, labels, rng=np.random.default_rng([self.seed, self.epoch, batch, 2]), alpha=self.mixup
                )
        return inputs, labels

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


class LiveLogger(keras.callbacks.Callback):
    """Per-epoch train/val loss and accuracy and the learning rate into a DVCLive run."""

    def __init__(self, live: Any) -> None:
        super().__init__()
        self.live = live

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        for key, value in (logs or {}).items():
            name = f"val/{key[4:]}" if key.startswith("val_") else key if key == "learning_rate" else f"train/{key}"
            self.live.log_metric(name, float(value))
        self.live.next_step()


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of each epoch (including the validation pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def format_epoch(epoch: int, epochs: int, logs: Mapping[str, float], seconds: float, *, label: str = "") -> str:
    """One line of training progress, e.g.
    ``epoch 3/30: loss 1.52 acc 0.41 | val_loss 1.61 val_acc 0.38 | lr 1e-03 | 7.1 s``.

    ``epoch`` is 1-based; ``label`` (e.g. ``fold 2/6 member 1/3``) goes in front.
    """

    def scores(prefix: str) -> str:
        parts = [f"{prefix}loss {logs[prefix + 'loss']:.3f}"] if prefix + "loss" in logs else []
        if prefix + "accuracy" in logs:
            parts.append(f"{prefix}acc {logs[prefix + 'accuracy']:.3f}")
        return " ".join(parts)

    fields = [part for part in (scores(""), scores("val_")) if part]
    if "learning_rate" in logs:
        fields.append(f"lr {float(logs['learning_rate']):.0e}")
    fields.append(f"{seconds:.1f} s")
    return f"{label + ' ' if label else ''}epoch {epoch}/{epochs}: " + " | ".join(fields)


class EpochLogger(keras.callbacks.Callback):
    """One INFO line per epoch (loss, accuracy, their validation values, learning rate, time),
    so that ``dvc repro`` shows training as it goes; ``*`` marks a new best ``monitor``."""

    def __init__(self, *, label: str = "", monitor: str = "val_loss") -> None:
        super().__init__()
        self.label, self.monitor = label, monitor
        self.best: float | None = None

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
        logs = dict(logs or {})
        if "learning_rate" not in logs and getattr(self.model, "optimizer", None) is not None:
            try:
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            except (TypeError, ValueError, AttributeError):
                pass
        line = format_epoch(
            epoch + 1, int(self.params.get("epochs", 0)), logs, time.perf_counter() - self._start, label=self.label
        )
        value = logs.get(self.monitor)
        if value is not None and (
            self.best is None or (value < self.best if self.monitor.endswith("loss") else value > self.best)
        ):
            self.best = float(value)
            line += " *"
        logger.info("%s", line)


def fit_model(
    model: keras.Model,
    train: ClipData,
    val: ClipData,
    *,
    epochs: int = TrainParams.epochs,
    batch_size: int = TrainParams.batch_size,
    learning_rate: float = TrainParams.learning_rate,
    clipnorm: float = TrainParams.clipnorm,
    monitor: str = TrainParams.monitor,
    patience: int = TrainParams.patience,
    lr_patience: int = TrainParams.lr_patience,
    lr_factor: float = TrainParams.lr_factor,
    min_lr: float = TrainParams.min_lr,
    class_weight: str = TrainParams.class_weight,
    seed: int = TrainParams.seed,
    mixup: float = TrainParams.mixup,
    label_smoothing: float = TrainParams.label_smoothing,
    augment: Mapping[str, Any] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 0,
    label: str = "",
) -> dict[str, Any]:
    """Compile and fit ``model`` on ``train``, watching ``val`` (the validation speakers).

    Adam with gradient-norm clipping; ReduceLROnPlateau, EarlyStopping and a best-epoch
    checkpoint all monitor ``monitor`` on ``val``. The returned model holds the weights of
    the best epoch.

    Parameters
    ----------
    model : keras.Model
        From :func:`mmer.networks.build_model`; its input names pick the arrays.
    train, val : ClipData
    epochs, batch_size, learning_rate, clipnorm
        The optimisation.
    monitor : {'val_loss', 'val_accuracy'}
    patience : int
        Epochs without improvement before stopping.
    lr_patience, lr_factor, min_lr
        The learning rate is multiplied by ``lr_factor`` after ``lr_patience`` epochs
        without improvement, down to ``min_lr``.
    class_weight : {'none', 'balanced'}
    seed : int
        Seeds the batch order and the augmentation.
    mixup : float
        Beta alpha of mixup on the training batches (:func:`mmer.augment.mixup_batch`); 0: off.
    label_smoothing : float
        Of the cross-entropy. With it or mixup the labels go one-hot (categorical loss).
    augment : mapping, optional
        Keyword arguments of :func:`mmer.augment.augment_batch`; None: no augmentation.
    callbacks : sequence of keras callbacks
        Added to the schedule/stopping/checkpoint callbacks (e.g. :class:`LiveLogger`).
    label : str
        Put in front of each per-epoch progress line (:class:`EpochLogger`).

    Returns
    -------
    dict
        ``history`` (per-epoch logs), ``best_epoch`` (1-based), ``epochs_run``,
        ``seconds_per_epoch`` (mean after the first epoch, which also traces the graph),
        ``train_seconds`` and ``val`` (loss and accuracy of the returned weights).
    """
    if monitor not in ("val_loss", "val_accuracy"):
        raise ConfigError(f"train.monitor must be val_loss or val_accuracy, not {monitor!r}")
    if len(train) == 0 or len(val) == 0:
        raise DatasetError(
            f"training needs train and validation clips; got {len(train)} train and {len(val)} validation clips"
        )
    names = [t.name for t in model.inputs]
    mode = "min" if monitor == "val_loss" else "max"
    n_classes = int(model.outputs[0].shape[-1])
    soft = mixup > 0 or label_smoothing > 0
    one_hot = n_classes if soft else 0
    batches = ClipBatches(
        train.inputs(names),
        train.labels,
        speech_frames=train.arrays.get("speech_frames"),
        batch_size=batch_size,
        seed=seed,
        augment=augment,
        n_classes=one_hot,
        mixup=mixup,
    )
    # validation as a PyDataset too: Keras' tf.data path for arrays logs a spurious
    # TensorFlow error line (use_unbounded_threadpool) with this Keras/TensorFlow pair
    val_batches = ClipBatches(
        val.inputs(names),
        val.labels,
        batch_size=max(batch_size, EvaluateParams.batch_size),
        shuffle=False,
        n_classes=one_hot,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipnorm=clipnorm),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
        if soft
        else "sparse_categorical_crossentropy",
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")] if soft else ["accuracy"],
    )
    timer = EpochTimer()
    with tempfile.TemporaryDirectory(prefix="mmer-checkpoint-") as tmp:
        best_path = Path(tmp) / "best.weights.h5"
        schedule = [
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, mode=mode, factor=lr_factor, patience=lr_patience, min_lr=min_lr
            ),
            keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience, restore_best_weights=True),
            keras.callbacks.ModelCheckpoint(
                best_path, monitor=monitor, mode=mode, save_best_only=True, save_weights_only=True
            ),
            timer,
            EpochLogger(label=label, monitor=monitor),
            *callbacks,
        ]
        history = model.fit(
            batches,
            validation_data=val_batches,
            epochs=epochs,
            class_weight=class_weights(train.labels, n_classes=n_classes, mode=class_weight),
            callbacks=schedule,
            verbose=verbose,
        )
        if best_path.is_file():
            model.load_weights(best_path)
    scores = np.asarray(history.history[monitor])
    # the first epoch also traces the graph; later ones show the steady speed
    steady = timer.seconds[1:] or timer.seconds
    best = int(np.argmin(scores) if mode == "min" else np.argmax(scores))
    val_loss, val_accuracy = model.evaluate(val_batches, verbose=0)
    logger.info(
        "trained %d epochs (%.1f s/epoch); best epoch %d: val loss %.3f, val accuracy %.3f",
        len(scores),
        float(np.mean(steady)),
        best + 1,
        val_loss,
        val_accuracy,
    )
    return {
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
        "best_epoch": best + 1,
        "epochs_run": len(scores),
        "seconds_per_epoch": float(np.mean(steady)),
        "train_seconds": float(np.sum(timer.seconds)),
        "val": {"loss": float(val_loss), "accuracy": float(val_accuracy)},
    }


@dataclasses.dataclass
class TrainResult:
    """A trained model, its ``model.json`` content and the fit summary."""

    model: keras.Model
    metadata: dict[str, Any]
    summary: dict[str, Any]


def input_shapes(data: ClipData, model_inputs: str) -> dict[str, tuple[int, ...]]:
    """The per-clip shapes of the arrays a ``model_inputs`` model reads (``audio_features_shape``, ``faces_shape``)."""
    missing = [name for name in INPUT_ARRAYS[model_inputs] if name not in data.arrays]
    if missing:
        raise DatasetError(
            f"a model.inputs {model_inputs} model needs {missing} features, which the corpus does not have (an audio-only corpus trains model.inputs: audio)"
        )
    return {f"{name}_shape": tuple(int(d) for d in data.arrays[name].shape[1:]) for name in INPUT_ARRAYS[model_inputs]}


def audio_statistics(train: ClipData, model_inputs: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Training-frame statistics for the model to standardise with, when the cache holds raw
    features (``normalise: none`` or ``cmn`` in its attributes); None when they are standardised per clip."""
    if (
        "audio_features" not in INPUT_ARRAYS[model_inputs]
        or train.attrs.get("audio", {}).get("normalise", AudioParams.normalise) not in MODEL_STANDARDISED
        or len(train) == 0
    ):
        return None
    return frame_statistics(train.arrays["audio_features"], train.arrays["speech_frames"])


def ensemble_model(members: Sequence[keras.Model]) -> keras.Model:
    """One model averaging the probabilities of ``members`` (same inputs and classes).

    Each member keeps its own input standardisation; the result saves, loads and predicts
    like a single model (inputs by name, output [n, n_classes]).
    """
    first = members[0]
    inputs = {t.name: keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=t.name) for t in first.inputs}
    outputs = keras.layers.Average(name="ensemble_mean")([member(inputs) for member in members])
    return keras.Model(inputs=inputs, outputs=outputs, name=f"ensemble_of_{len(members)}")


def ensemble_summary(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The fit summaries of ensemble members as one: sums of epochs, time and parameters,
    the median best epoch, means of speed and of each member's validation scores (each on
    its own validation speakers), the first member's history, and every member's summary."""
    first = summaries[0]
    return {
        "history": first["history"],
        "best_epoch": int(np.median([s["best_epoch"] for s in summaries])),
        "epochs_run": int(sum(s["epochs_run"] for s in summaries)),
        "seconds_per_epoch": float(np.mean([s["seconds_per_epoch"] for s in summaries])),
        "train_seconds": float(sum(s["train_seconds"] for s in summaries)),
        "val": {key: float(np.mean([s["val"][key] for s in summaries])) for key in first["val"]},
        "n_parameters": int(sum(s["n_parameters"] for s in summaries)),
        "n_train": first["n_train"],
        "n_perturbed": first["n_perturbed"],
        "n_val": first["n_val"],
        "val_actors": sorted({a for s in summaries for a in s["val_actors"]}),
        "members": [{k: v for k, v in s.items() if k != "history"} for s in summaries],
    }


def train_model(
    data: ClipData,
    *,
    label_names: Sequence[str],
    model_params: ModelParams,
    train_params: TrainParams,
    augment_params: AugmentParams,
    epochs: int | None = None,
    live: Any = None,
    verbose: int = 0,
    label: str = "",
) -> TrainResult:
    """Build, seed and fit a model on the ``train`` clips of ``data``, watching ``val``.

    With ``train_params.ensemble`` > 1, that many members are trained (seeds ``seed + j``;
    with ``ensemble_by: fold`` member j also validates on its own group of development
    speakers, :func:`mmer.splits.member_splits`) and averaged into one model
    (:func:`ensemble_model`); the test speakers are never used. Perturbed audio copies in
    the cache (``audio.perturbations``) join the training clips only; raw audio features
    (``audio.normalise: none``) are standardised inside the model with statistics of the
    training frames.

    Parameters
    ----------
    data : ClipData
        Aligned clips with train/val(/test) splits (see :func:`mmer.clips.align_clips`).
    label_names : sequence of str
        Class names in label order (``mmer.labels.label_names``).
    model_params, train_params, augment_params
        The ``model``, ``train`` and ``augment`` params sections.
    epochs : int, optional
        Overrides ``train_params.epochs`` (cross-validation may train shorter).
    live : dvclive.Live, optional
        Where to log params, per-epoch curves and the summary.
    label : str
        Put in front of the progress lines (e.g. ``fold 2/6``).

    Returns
    -------
    TrainResult
    """
    labels_seen = int(data.labels.max()) if len(data) else -1
    if labels_seen >= len(label_names):
        raise DatasetError(
            f"the index has label {labels_seen} but only {len(label_names)} classes {list(label_names)}; rerun the index stage"
        )
    n_members = train_params.ensemble
    if n_members > 1 and train_params.ensemble_by == "fold":
        member_data = [
            dataclasses.replace(data, splits=splits) for splits in member_splits(data.splits, data.actors, n_members)
        ]
    else:
        member_data = [data] * n_members
    fit_kwargs = {
        k: v
        for k, v in dataclasses.asdict(train_params).items()
        if k not in ("deterministic", "threads", "ensemble", "ensemble_by")
    }
    if epochs:
        fit_kwargs["epochs"] = epochs
    augment = (
        {k: v for k, v in dataclasses.asdict(augment_params).items() if k != "enabled"}
        if augment_params.enabled
        else None
    )
    params_log = {
        "model": dataclasses.asdict(model_params),
        "train": {**dataclasses.asdict(train_params), "epochs": fit_kwargs["epochs"]},
        "augment": dataclasses.asdict(augment_params),
    }
    members, summaries = [], []
    for j, clips in enumerate(member_data):
        seed = train_params.seed + j
        member_label = " ".join(filter(None, (label, f"member {j + 1}/{n_members}" if n_members > 1 else "")))
        configure_runtime(seed=seed, threads=train_params.threads, deterministic=train_params.deterministic)
        if j == 0:
            keras.backend.clear_session()
        train, val = with_perturbed_copies(clips.split("train")), clips.split("val")
        if n_members > 1:
            logger.info(
                "%s: seed %d, %d training clips, validation actors %s",
                member_label,
                seed,
                len(train),
                sorted(str(a) for a in set(val.actors)),
            )
        model = build_model(
            n_classes=len(label_names),
            audio_standardise=audio_statistics(train, model_params.inputs),
            **input_shapes(clips, model_params.inputs),
            **dataclasses.asdict(model_params),
        )
        if live is not None and j == 0:
            live.log_params(
                {
                    **params_log,
                    "n_parameters": model.count_params() * n_members,
                    "n_train": len(train),
                    "n_val": len(val),
                }
            )
        # DVCLive follows the first member only (its curves are one training's)
        callbacks = [LiveLogger(live)] if live is not None and j == 0 else ()
        summary = fit_model(
            model,
            train,
            val,
            augment=augment,
            callbacks=callbacks,
            verbose=verbose,
            label=member_label,
            **{**fit_kwargs, "seed": seed},
        )
        summary.update(
            n_parameters=model.count_params(),
            n_train=len(train),
            n_perturbed=len(train) - int((clips.splits == "train").sum()),
            n_val=len(val),
            val_actors=sorted(str(a) for a in set(val.actors)),
        )
        if n_members > 1:
            model.name = f"member_{j}"
            logger.info(
                "%s (seed %d, validation actors %s): val accuracy %.3f",
                member_label,
                seed,
                summary["val_actors"],
                summary["val"]["accuracy"],
            )
        members.append(model)
        summaries.append(summary)
    model = members[0] if n_members == 1 else ensemble_model(members)
    summary = summaries[0] if n_members == 1 else ensemble_summary(summaries)
    metadata = model_metadata(
        model,
        model_inputs=model_params.inputs,
        label_names=label_names,
        feature_attrs=data.attrs,
        params=params_log,
        training={k: v for k, v in summary.items() if k != "history"},
    )
    return TrainResult(model=model, metadata=metadata, summary=summary)


def log_summary(live: Any, summary: Mapping[str, Any]) -> None:
    """The end-of-training figures as DVCLive summary metrics (not plotted)."""
    for key in (
        "best_epoch",
        "epochs_run",
        "seconds_per_epoch",
        "train_seconds",
        "n_parameters",
        "n_train",
        "n_perturbed",
        "n_val",
    ):
        live.log_metric(key, summary[key], plot=False)
    for key, value in summary["val"].items():
        live.log_metric(f"best/val_{key}", value, plot=False)


def train_stage(
    index_path: str | Path,
    *,
    audio_path: str | Path,
    video_path: str | Path,
    model_path: str | Path,
    live_dir: str | Path,
    label_names: Sequence[str],
    model_params: ModelParams,
    train_params: TrainParams,
    augment_params: AugmentParams,
) -> TrainResult:
    """Stage ``train``: fit on the fixed split, log to DVCLive, save model.keras + model.json."""
    from dvclive import Live

    from mmer.clips import load_clip_data

    data = load_clip_data(index_path, audio_path=audio_path, video_path=video_path)
    with Live(dir=str(live_dir), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        result = train_model(
            data,
            label_names=label_names,
            model_params=model_params,
            train_params=train_params,
            augment_params=augment_params,
            live=live,
        )
        log_summary(live, result.summary)
    save_model_bundle(result.model, result.metadata, model_path)
    return result


def _speaker_list(speakers: Any) -> str:
    """``[3, 4]``: sorted speaker names for a log line (numbers in numeric order)."""
    names = sorted({str(s) for s in speakers}, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
    return "[" + ", ".join(names) + "]"


def cross_validate(
    index: Any,
    caches: Mapping[str, Any],
    *,
    label_names: Sequence[str],
    model_params: ModelParams,
    train_params: TrainParams,
    augment_params: AugmentParams,
    folds: Sequence[int] = CvParams.folds,
    epochs: int | None = None,
    batch_size: int = EvaluateParams.batch_size,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Speaker cross-validation: for each fold k, train with fold k+1 as validation, test on k.

    Parameters
    ----------
    index : DataFrame
        The clip index (with its ``fold`` column).
    caches : mapping of str to FeatureCache
        ``{'audio': ..., 'video': ...}``.
    label_names, model_params, train_params, augment_params
        As for :func:`train_model`.
    folds : sequence of int
        Folds to run; empty: every fold of the index.
    epochs : int, optional
        Overrides ``train_params.epochs``.

    Returns
    -------
    summary : dict
        Mean and standard deviation (over folds, ddof=0) of each metric and of the majority
        baseline, the folds run and their test actors.
    per_fold : list of dict
        One evaluation report per fold (see :func:`mmer.evaluation.evaluation_report`).
    """
    n_folds = int(index.loc[index["fold"] >= 0, "fold"].nunique())  # held-out corpora have fold -1
    folds = list(folds) or list(range(n_folds))
    bad = [k for k in folds if not 0 <= k < n_folds]
    if bad:
        raise ConfigError(f"cv.folds {bad} not in 0..{n_folds - 1}")
    per_fold = []
    for i, fold in enumerate(folds):
        data = align_clips(index, caches, fold=fold)
        fold_label = f"fold {i + 1}/{len(folds)}"
        logger.info(
            "%s (fold %d): test actors %s, validation actors %s",
            fold_label,
            fold,
            _speaker_list(data.split("test").actors),
            _speaker_list(data.split("val").actors),
        )
        result = train_model(
            data,
            label_names=label_names,
            model_params=model_params,
            train_params=train_params,
            augment_params=augment_params,
            epochs=epochs,
            label=fold_label,
        )
        report, table = evaluate_split(data, result.model, result.metadata, split="test", batch_size=batch_size)
        test = data.split("test")
        tta_proba, n_views = perturbed_average_proba(result.model, result.metadata, test, batch_size=batch_size)
        if n_views > 1:
            # test-time augmentation over the cache's perturbed copies (reported beside, never chosen on)
            report["tta"] = {
                "n_views": n_views,
                **classification_metrics(test.labels, tta_proba.argmax(axis=1), label_names=label_names),
            }
        report.update(
            # every test clip's probabilities: ensembles of separate runs can be scored afterwards
            test_probabilities={
                "label_names": list(label_names),
                "clip_ids": [str(c) for c in test.clip_ids],
                "labels": [int(y) for y in test.labels],
                "plain": table[[f"prob_{name}" for name in label_names]].to_numpy().tolist(),
                **({"tta": np.round(tta_proba, 5).tolist()} if n_views > 1 else {}),
            },
            fold=fold,
            test_actors=sorted(str(a) for a in set(data.split("test").actors)),
            val_actors=sorted(str(a) for a in set(data.split("val").actors)),
            training={k: v for k, v in result.summary.items() if k != "history"},
        )
        per_fold.append(report)
        logger.info(
            "%s: test actors %s -> accuracy %.3f, UAR %.3f",
            fold_label,
            _speaker_list(report["test_actors"]),
            report["accuracy"],
            report["uar"],
        )
    summary = cv_summary(per_fold)
    logger.info(
        "cross-validation over %d folds: accuracy %.3f ± %.3f, UAR %.3f ± %.3f (majority accuracy %.3f)",
        len(folds),
        summary["accuracy"]["mean"],
        summary["accuracy"]["std"],
        summary["uar"]["mean"],
        summary["uar"]["std"],
        summary["majority_accuracy"]["mean"],
    )
    return summary, per_fold


def cv_stage(
    index_path: str | Path,
    *,
    audio_path: str | Path,
    video_path: str | Path,
    out_dir: str | Path,
    enabled: bool,
    folds: Sequence[int] = CvParams.folds,
    epochs: int = CvParams.epochs,
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Stage ``cv``: ``<out_dir>/summary.json`` (the DVC metric) and ``<out_dir>/folds.json`` (every fold's report).

    When ``enabled`` is false nothing is trained and the summary says so, so ``dvc repro``
    stays short until ``cv.enabled`` is switched on.
    """
    from mmer.corpus import read_index
    from mmer.report import write_cv_results

    summary: dict[str, Any] = {"enabled": False}
    per_fold: list[dict[str, Any]] = []
    if not enabled:
        logger.info("cv.enabled is false: no cross-validation run (dvc exp run -S cv.enabled=true runs it)")
    else:
        caches = read_caches(audio_path, video_path)
        summary, per_fold = cross_validate(
            read_index(index_path), caches, folds=folds, epochs=epochs or None, **train_kwargs
        )
    write_cv_results(out_dir, summary, per_fold)
    return summary

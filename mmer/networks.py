"""The networks: one Keras functional sub-model per modality, fused by one builder.

Inputs are named after the cache arrays they take, so a model is fed a dict::

    {"audio_features": float32 [n, T, n_mfcc], "faces": uint8 [n, frames_per_clip, size, size, 3]}

- ``audio`` sub-model: (average-pool frames) -> (mask the zero pre-padding) ->
  BLSTM(units, return sequences) -> Dropout -> BLSTM(units) -> Dense(dense, relu).
- ``video`` sub-model: uint8 frames rescaled to [0, 1] inside the model, a VGG-like
  Conv2D + MaxPooling stack per frame (``frame_cnn``, applied with TimeDistributed) ->
  Dense(dense, relu) per frame -> max over time (or a GRU/LSTM). With ``video_encoder:
  fer2013`` the per-frame encoder is the pretrained FER2013 network instead
  (:func:`mmer.face_expression.fer_frame_encoder`).
- fusion ``concat`` (early): concatenate both representations -> Dense(head_units, relu) ->
  Dropout -> Dense(n_classes, softmax). ``average``/``learned`` (late): each branch has that
  head, and the two probability vectors are averaged (plainly, or with learned weights).
- Unimodal models are the same branch with the same head.

A trained model is saved as ``model.keras`` with ``model.json`` beside it (label names,
modality, input shapes and the feature params); :func:`predict_proba` is the one way to get
probabilities from them, for the evaluate stage and ``mmer predict`` alike.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import layers

from mmer import face_expression  # its FerInput layer must be registered to load a saved fer2013 model
from mmer.config import (  # noqa: F401 (AUDIO_INPUT, VIDEO_INPUT, INPUT_ARRAYS: re-exported)
    AUDIO_FRONTENDS,
    AUDIO_INPUT,
    AUDIO_POOLINGS,
    INPUT_ARRAYS,
    TEMPORAL_POOLS,
    VIDEO_ENCODERS,
    VIDEO_INPUT,
    ModelParams,
)
from mmer.errors import ConfigError

logger = logging.getLogger(__name__)

PROBABILITIES = "probabilities"


def _check_int(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"model.{name} must be an integer >= {minimum}, not {value!r}")


def _check_rate(name: str, value: float) -> None:
    if not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"model.{name} must be in [0, 1), not {value!r}")


@keras.saving.register_keras_serializable(package="mmer")
class WeightedAverage(layers.Layer):
    """A learned convex combination of branch outputs: softmax(w) . [p_1, ..., p_k]."""

    def build(self, input_shape: Sequence[tuple]) -> None:
        self.branch_logits = self.add_weight(name="branch_logits", shape=(len(input_shape),), initializer="zeros")

    def call(self, inputs: Sequence) -> keras.KerasTensor:
        weights = keras.ops.softmax(self.branch_logits)
        return sum(weights[i] * x for i, x in enumerate(inputs))

    def compute_output_shape(self, input_shape: Sequence[tuple]) -> tuple:
        return input_shape[0]


@keras.saving.register_keras_serializable(package="mmer")
class SpeechFrames(layers.Layer):
    """1.0 for frames with any non-zero coefficient (speech), 0.0 for the zero pre-padding: [n, t, c] -> [n, t, 1]."""

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        return keras.ops.cast(keras.ops.any(keras.ops.not_equal(x, 0.0), axis=-1, keepdims=True), x.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package="mmer")
class MaskedStatsPooling(layers.Layer):
    """Mean and standard deviation over the unmasked time steps: [n, t, d] -> [n, 2d]."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x: keras.KerasTensor, mask: keras.KerasTensor | None = None) -> keras.KerasTensor:
        ops = keras.ops
        weights = ops.ones_like(x[..., :1]) if mask is None else ops.cast(mask, x.dtype)[..., None]
        count = ops.maximum(ops.sum(weights, axis=1), 1.0)
        mean = ops.sum(x * weights, axis=1) / count
        variance = ops.sum(weights * ops.square(x - mean[:, None, :]), axis=1) / count
        return ops.concatenate([mean, ops.sqrt(variance + 1e-6)], axis=-1)

    def compute_mask(self, x: keras.KerasTensor, mask: keras.KerasTensor | None = None) -> None:
        return None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], 2 * input_shape[-1])


@keras.saving.register_keras_serializable(package="mmer")
class AttentionPooling(layers.Layer):
    """Softmax attention over the unmasked time steps (one learned score per step): [n, t, d] -> [n, d]."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.supports_masking = True
        self.score = layers.Dense(1, name="score")

    def build(self, input_shape: tuple) -> None:
        self.score.build(input_shape)

    def call(self, x: keras.KerasTensor, mask: keras.KerasTensor | None = None) -> keras.KerasTensor:
        ops = keras.ops
        scores = self.score(x)  # [n, t, 1]
        if mask is not None:
            scores = scores + (1.0 - ops.cast(mask, scores.dtype)[..., None]) * -1e9
        weights = ops.softmax(scores, axis=1)
        return ops.sum(weights * x, axis=1)

    def compute_mask(self, x: keras.KerasTensor, mask: keras.KerasTensor | None = None) -> None:
        return None

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[-1])


def audio_branch(
    *,
    input_shape: tuple[int, int],
    units: int = 64,
    dropout: float = 0.5,
    pool: int = 1,
    mask: bool = True,
    dense: int = 128,
    standardise: tuple[Sequence[float], Sequence[float]] | None = None,
    frontend: str = "none",
    conv_filters: int = 128,
    conv_layers: int = 2,
    rnn_layers: int = 2,
    pooling: str = "last",
    name: str = "audio",
) -> keras.Model:
    """The audio sub-model: MFCC frames -> a ``dense``-d representation.

    Parameters
    ----------
    input_shape : (T, n_coefficients)
        Frames (time-major, zero pre-padded) and coefficients per frame.
    units : int
        LSTM units per direction in both BLSTM layers.
    dropout : float
        Dropout between the two BLSTM layers.
    pool : int
        Average ``pool`` consecutive frames before the BLSTM (1: none). Pooling by 2
        halves the recurrent steps, and the time per epoch nearly with it.
    mask : bool
        Mask all-zero frames (the pre-padding), so the backward LSTM starts at the speech.
    dense : int
        Size of the representation (a ReLU Dense layer).
    standardise : (mean, std), optional
        Per-coefficient training statistics, for features not standardised per clip
        (``audio.normalise: none``): frames are standardised inside the model, after the
        padding mask is taken, so the padding stays masked.
    frontend : {'none', 'conv1d'}
        ``conv1d``: ``conv_layers`` blocks of Conv1D(``conv_filters``, 5) -> BatchNorm ->
        ReLU -> MaxPooling(2) over time before the recurrent layers (local spectral-temporal
        patterns, and 2**conv_layers fewer recurrent steps); the padding stays zero.
    rnn_layers : {0, 1, 2}
        BLSTM layers (0: the pooling reads the front end's output directly).
    pooling : {'last', 'attention', 'stats'}
        How the sequence becomes one vector: the last BLSTM's final states (the seed's
        reference), softmax attention over the steps, or the mean and standard deviation
        of the steps (statistics pooling); padding steps are left out of both.

    Returns
    -------
    keras.Model
        Input ``mfcc`` float32 [n, T, n_coefficients], output float32 [n, dense].
    """
    if len(input_shape) != 2:
        raise ConfigError(f"audio input_shape must be (T, n_coefficients), not {input_shape!r}")
    for key, value in (
        ("audio T", input_shape[0]),
        ("audio coefficients", input_shape[1]),
        ("audio_units", units),
        ("audio_pool", pool),
        ("audio_dense", dense),
    ):
        _check_int(key, value)
    _check_rate("audio_dropout", dropout)
    if pool > input_shape[0]:
        raise ConfigError(f"model.audio_pool {pool} is longer than the {input_shape[0]} frames of the input")
    if frontend not in AUDIO_FRONTENDS:
        raise ConfigError(f"model.audio_frontend must be one of {list(AUDIO_FRONTENDS)}, not {frontend!r}")
    if pooling not in AUDIO_POOLINGS:
        raise ConfigError(f"model.audio_pooling must be one of {list(AUDIO_POOLINGS)}, not {pooling!r}")
    if rnn_layers not in (0, 1, 2) or isinstance(rnn_layers, bool):
        raise ConfigError(f"model.audio_rnn_layers must be 0, 1 or 2, not {rnn_layers!r}")
    if rnn_layers == 0 and pooling == "last":
        raise ConfigError(
            "model.audio_rnn_layers 0 needs model.audio_pooling attention or stats (no BLSTM state to take)"
        )
    if frontend != "none":
        _check_int("audio_conv_filters", conv_filters)
        _check_int("audio_conv_layers", conv_layers)
    inputs = keras.Input(shape=tuple(input_shape), name=AUDIO_INPUT)
    x = inputs
    if pool > 1:
        # all-zero windows of the pre-padding stay exactly zero, so masking still finds them
        x = layers.AveragePooling1D(pool_size=pool, name="frame_pool")(x)
    if frontend != "none":
        return _conv_audio_branch(
            inputs,
            x,
            units=units,
            dropout=dropout,
            mask=mask,
            dense=dense,
            standardise=standardise,
            conv_filters=conv_filters,
            conv_layers=conv_layers,
            rnn_layers=rnn_layers,
            pooling=pooling,
            n_coefficients=input_shape[1],
            name=name,
        )
    if mask:
        x = layers.Masking(mask_value=0.0, name="padding_mask")(x)
    if standardise is not None:
        x = layers.Normalization(**_standardise_stats(standardise, input_shape[1]), name="standardise")(x)
    x = _recurrent_pooling(x, units=units, dropout=dropout, rnn_layers=rnn_layers, pooling=pooling)
    x = layers.Dense(dense, activation="relu", name="audio_dense")(x)
    return keras.Model(inputs, x, name=name)


def _standardise_stats(
    standardise: tuple[Sequence[float], Sequence[float]], n_coefficients: int
) -> dict[str, np.ndarray]:
    """``mean`` and ``variance`` keyword arguments of a Normalization layer, checked."""
    mean, std = (np.asarray(v, dtype=np.float32) for v in standardise)
    if mean.shape != (n_coefficients,) or std.shape != (n_coefficients,) or not np.all(std > 0):
        raise ConfigError(
            f"audio standardise needs a mean and a positive std for each of the {n_coefficients} coefficients"
        )
    return {"mean": mean, "variance": np.square(std)}


def _recurrent_pooling(
    x: keras.KerasTensor, *, units: int, dropout: float, rnn_layers: int, pooling: str
) -> keras.KerasTensor:
    """The BLSTM layers and the pooling over time (the reference: two BLSTMs, last state)."""
    if rnn_layers >= 1:
        x = layers.Bidirectional(
            layers.LSTM(units, return_sequences=rnn_layers == 2 or pooling != "last"), name="blstm_1"
        )(x)
    if rnn_layers == 2:
        x = layers.Dropout(dropout, name="blstm_dropout")(x)
        x = layers.Bidirectional(layers.LSTM(units, return_sequences=pooling != "last"), name="blstm_2")(x)
    if pooling == "stats":
        x = MaskedStatsPooling(name="stats_pooling")(x)
    elif pooling == "attention":
        x = AttentionPooling(name="attention_pooling")(x)
    return x


def _conv_audio_branch(
    inputs: keras.KerasTensor,
    x: keras.KerasTensor,
    *,
    units: int,
    dropout: float,
    mask: bool,
    dense: int,
    standardise: tuple[Sequence[float], Sequence[float]] | None,
    conv_filters: int,
    conv_layers: int,
    rnn_layers: int,
    pooling: str,
    n_coefficients: int,
    name: str,
) -> keras.Model:
    """The audio branch with a Conv1D front end; the padding is found before the convolutions
    (which would smear it) and set back to zero after each stage that moves it."""
    speech = SpeechFrames(name="speech_frames")(x)  # [n, t, 1]
    if standardise is not None:
        x = layers.Normalization(**_standardise_stats(standardise, n_coefficients), name="standardise")(x)
        x = layers.Multiply(name="zero_padding")([x, speech])
    for block in range(1, conv_layers + 1):
        x = layers.Conv1D(conv_filters, 5, padding="same", use_bias=False, name=f"conv{block}")(x)
        x = layers.BatchNormalization(name=f"conv{block}_norm")(x)
        x = layers.ReLU(name=f"conv{block}_relu")(x)
        x = layers.MaxPooling1D(2, padding="same", name=f"conv{block}_pool")(x)
    speech = layers.MaxPooling1D(2**conv_layers, padding="same", name="speech_frames_pooled")(speech)
    x = layers.Multiply(name="conv_zero_padding")([x, speech])
    x = layers.Dropout(dropout, name="conv_dropout")(x)
    if mask:
        x = layers.Masking(mask_value=0.0, name="padding_mask")(x)
    x = _recurrent_pooling(x, units=units, dropout=dropout, rnn_layers=rnn_layers, pooling=pooling)
    x = layers.Dense(dense, activation="relu", name="audio_dense")(x)
    return keras.Model(inputs, x, name=name)


def frame_cnn(
    *,
    frame_shape: tuple[int, int, int],
    filters: Sequence[int] = (16, 32, 64),
    convs_per_block: int = 1,
    dropout: float = 0.25,
    dense: int = 128,
    name: str = "frame_cnn",
) -> keras.Model:
    """A VGG-like CNN for one face crop: uint8 [size, size, 3] -> float32 [dense].

    Each block is ``convs_per_block`` Conv2D(3x3, same, relu) layers and a 2x2 max pooling;
    then Flatten -> Dropout -> Dense(dense, relu).
    """
    if len(frame_shape) != 3:
        raise ConfigError(f"frame_shape must be (height, width, channels), not {frame_shape!r}")
    if not filters:
        raise ConfigError("model.video_filters must name at least one block")
    for value in filters:
        _check_int("video_filters", value)
    _check_int("video_convs", convs_per_block)
    _check_int("video_dense", dense)
    _check_rate("video_dropout", dropout)
    if min(frame_shape[:2]) < 2 ** len(filters):
        raise ConfigError(
            f"{len(filters)} pooling blocks (model.video_filters) need frames of at least {2 ** len(filters)} pixels, not {frame_shape[:2]}"
        )
    inputs = keras.Input(shape=tuple(frame_shape), dtype="uint8", name="frame")
    x = layers.Rescaling(1.0 / 255.0, name="to_unit_range")(inputs)
    for block, n_filters in enumerate(filters, start=1):
        for conv in range(1, convs_per_block + 1):
            x = layers.Conv2D(n_filters, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="frame_dropout")(x)
    x = layers.Dense(dense, activation="relu", name="frame_dense")(x)
    return keras.Model(inputs, x, name=name)


def video_branch(
    *,
    input_shape: tuple[int, int, int, int],
    filters: Sequence[int] = (16, 32, 64),
    convs_per_block: int = 1,
    dropout: float = 0.25,
    dense: int = 128,
    temporal: str = "max",
    encoder: str = "vgg",
    encoder_trainable: str = "frozen",
    name: str = "video",
) -> keras.Model:
    """The video sub-model: face crops of a clip -> a ``dense``-d representation.

    Parameters
    ----------
    input_shape : (frames_per_clip, size, size, 3)
        Face crops per clip, uint8 RGB.
    filters, convs_per_block, dropout, dense
        The per-frame CNN (see :func:`frame_cnn`).
    temporal : {'max', 'gru', 'lstm'}
        Pooling over the frames: element-wise max, or a GRU/LSTM with ``dense`` units.
    encoder : {'vgg', 'fer2013'}
        The per-frame encoder: :func:`frame_cnn` (``filters``, ``convs_per_block``), or the
        pretrained FER2013 network (:func:`mmer.face_expression.fer_frame_encoder`).
    encoder_trainable : {'frozen', 'last', 'all'}
        ``fer2013``: which of its layers train.

    Returns
    -------
    keras.Model
        Input ``faces`` uint8 [n, frames_per_clip, size, size, 3], output float32 [n, dense].
    """
    if len(input_shape) != 4:
        raise ConfigError(f"video input_shape must be (frames_per_clip, height, width, channels), not {input_shape!r}")
    _check_int("video frames", input_shape[0])
    if temporal not in TEMPORAL_POOLS:
        raise ConfigError(f"model.video_temporal must be one of {list(TEMPORAL_POOLS)}, not {temporal!r}")
    if encoder not in VIDEO_ENCODERS:
        raise ConfigError(f"model.video_encoder must be one of {list(VIDEO_ENCODERS)}, not {encoder!r}")
    if encoder == "fer2013":
        _check_int("video_dense", dense)
        _check_rate("video_dropout", dropout)
        cnn = face_expression.fer_frame_encoder(
            frame_shape=tuple(input_shape[1:]), trainable=encoder_trainable, dropout=dropout, dense=dense
        )
    else:
        cnn = frame_cnn(
            frame_shape=tuple(input_shape[1:]),
            filters=filters,
            convs_per_block=convs_per_block,
            dropout=dropout,
            dense=dense,
        )
    inputs = keras.Input(shape=tuple(input_shape), dtype="uint8", name=VIDEO_INPUT)
    x = layers.TimeDistributed(cnn, name="per_frame")(inputs)
    if temporal == "max":
        x = layers.GlobalMaxPooling1D(name="max_over_time")(x)
    elif temporal == "gru":
        x = layers.GRU(dense, name="gru_over_time")(x)
    else:
        x = layers.LSTM(dense, name="lstm_over_time")(x)
    return keras.Model(inputs, x, name=name)


def classifier_head(
    x: keras.KerasTensor, *, n_classes: int, units: int = 256, dropout: float = 0.5, prefix: str = ""
) -> keras.KerasTensor:
    """Dense(units, relu) -> Dropout -> Dense(n_classes, softmax) on a representation."""
    _check_int("n_classes", n_classes, minimum=2)
    _check_int("head_units", units)
    _check_rate("head_dropout", dropout)
    x = layers.Dense(units, activation="relu", name=f"{prefix}head_dense")(x)
    x = layers.Dropout(dropout, name=f"{prefix}head_dropout")(x)
    return layers.Dense(n_classes, activation="softmax", name=f"{prefix}{PROBABILITIES}")(x)


def build_model(
    *,
    inputs: str = ModelParams.inputs,
    n_classes: int,
    audio_features_shape: tuple[int, int] | None = None,
    faces_shape: tuple[int, int, int, int] | None = None,
    fusion: str = ModelParams.fusion,
    audio_units: int = ModelParams.audio_units,
    audio_dropout: float = ModelParams.audio_dropout,
    audio_pool: int = ModelParams.audio_pool,
    audio_mask: bool = ModelParams.audio_mask,
    audio_dense: int = ModelParams.audio_dense,
    audio_standardise: tuple[Sequence[float], Sequence[float]] | None = None,
    audio_frontend: str = ModelParams.audio_frontend,
    audio_conv_filters: int = ModelParams.audio_conv_filters,
    audio_conv_layers: int = ModelParams.audio_conv_layers,
    audio_rnn_layers: int = ModelParams.audio_rnn_layers,
    audio_pooling: str = ModelParams.audio_pooling,
    video_filters: Sequence[int] = ModelParams.video_filters,
    video_convs: int = ModelParams.video_convs,
    video_dropout: float = ModelParams.video_dropout,
    video_dense: int = ModelParams.video_dense,
    video_temporal: str = ModelParams.video_temporal,
    video_encoder: str = ModelParams.video_encoder,
    video_encoder_trainable: str = ModelParams.video_encoder_trainable,
    head_units: int = ModelParams.head_units,
    head_dropout: float = ModelParams.head_dropout,
) -> keras.Model:
    """The emotion classifier for ``inputs``, uncompiled.

    Parameters
    ----------
    inputs : {'av', 'audio', 'video'}
        What the model reads (``model.inputs``; validated by :class:`mmer.config.ModelParams`).
        Which branches the model has; its Keras inputs are those of :data:`INPUT_ARRAYS`.
    n_classes : int
        Number of emotions (2 or more).
    audio_features_shape : (T, n_coefficients)
        Needed when the model has the audio branch.
    faces_shape : (frames_per_clip, size, size, 3)
        Needed when the model has the video branch.
    fusion : {'concat', 'average', 'learned'}
        ``av`` only: early fusion of the representations, or late fusion of each branch's
        probabilities (plain or learned-weight average).
    audio_*, video_*, head_*
        Hyperparameters of :func:`audio_branch`, :func:`video_branch`, :func:`classifier_head`.

    Returns
    -------
    keras.Model
        Named ``<inputs>_emotion``; dict inputs ``audio_features``/``faces``; output [n, n_classes]
        probabilities. The branches are the named sub-models ``audio`` and ``video``.

    Raises
    ------
    ConfigError
        A bad choice, size or rate, or a missing input shape.
    """
    _check_int("n_classes", n_classes, minimum=2)
    input_layers, features = {}, {}
    if AUDIO_INPUT in INPUT_ARRAYS[inputs]:
        if audio_features_shape is None:
            raise ConfigError(f"a {inputs} model needs audio_features_shape (T, n_coefficients)")
        branch = audio_branch(
            input_shape=tuple(audio_features_shape),
            units=audio_units,
            dropout=audio_dropout,
            pool=audio_pool,
            mask=audio_mask,
            dense=audio_dense,
            standardise=audio_standardise,
            frontend=audio_frontend,
            conv_filters=audio_conv_filters,
            conv_layers=audio_conv_layers,
            rnn_layers=audio_rnn_layers,
            pooling=audio_pooling,
        )
        input_layers[AUDIO_INPUT] = keras.Input(shape=tuple(audio_features_shape), name=AUDIO_INPUT)
        features["audio"] = branch(input_layers[AUDIO_INPUT])
    if VIDEO_INPUT in INPUT_ARRAYS[inputs]:
        if faces_shape is None:
            raise ConfigError(f"a {inputs} model needs faces_shape (frames_per_clip, size, size, 3)")
        branch = video_branch(
            input_shape=tuple(faces_shape),
            filters=video_filters,
            convs_per_block=video_convs,
            dropout=video_dropout,
            dense=video_dense,
            temporal=video_temporal,
            encoder=video_encoder,
            encoder_trainable=video_encoder_trainable,
        )
        input_layers[VIDEO_INPUT] = keras.Input(shape=tuple(faces_shape), dtype="uint8", name=VIDEO_INPUT)
        features["video"] = branch(input_layers[VIDEO_INPUT])
    head = {"n_classes": n_classes, "units": head_units, "dropout": head_dropout}
    if len(features) == 1:
        outputs = classifier_head(next(iter(features.values())), **head)
    elif fusion == "concat":
        joint = layers.Concatenate(name="fused")([features["audio"], features["video"]])
        outputs = classifier_head(joint, **head)
    else:
        branch_probabilities = [classifier_head(features[m], prefix=f"{m}_", **head) for m in ("audio", "video")]
        combine = layers.Average(name=PROBABILITIES) if fusion == "average" else WeightedAverage(name=PROBABILITIES)
        outputs = combine(branch_probabilities)
    model = keras.Model(inputs=input_layers, outputs=outputs, name=f"{inputs}_emotion")
    logger.info(
        "built %s model (%s fusion): %d parameters", inputs, fusion if len(features) > 1 else "no", model.count_params()
    )
    return model

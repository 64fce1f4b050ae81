"""The model bundle: ``model.keras`` with ``model.json`` beside it (labels, inputs, feature params).

Saving, loading, checking that the two belong together, and predicting with them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from mmer.config import AUDIO_INPUT, VIDEO_INPUT, EvaluateParams
from mmer.errors import ConfigError, ModelError

if TYPE_CHECKING:  # Keras is imported where a network is loaded or run: reading model.json needs none
    import keras

logger = logging.getLogger(__name__)


BUNDLE_FORMAT = 1


def import_keras() -> ModuleType:
    """``import keras`` (and TensorFlow, its backend) without letting them import scikit-learn.

    Keras 3 imports scikit-learn when it starts (``keras.src.wrappers``, for scikit-learn
    wrappers mmer never uses), and ``import tensorflow`` imports Keras: 0.7-1.4 s of a cold
    ``mmer predict`` on 2 cores, for nothing the networks use. In a process that has imported
    neither Keras nor scikit-learn, scikit-learn is hidden while Keras loads (Keras then leaves
    its wrappers without it); it imports as usual afterwards (:mod:`mmer.baselines` uses it).
    """
    if "keras" in sys.modules or "sklearn" in sys.modules:
        import keras

        return keras
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # `import sklearn` raises ImportError
    try:
        import keras
    finally:
        if "sklearn" in sys.modules and sys.modules["sklearn"] is None:
            del sys.modules["sklearn"]
    return keras


INPUT_DTYPES = {AUDIO_INPUT: "float32", VIDEO_INPUT: "uint8"}


CACHE_OF_INPUT = {AUDIO_INPUT: "audio", VIDEO_INPUT: "video"}


def metadata_path(model_path: str | Path) -> Path:
    """``models/model.json`` for ``models/model.keras``."""
    return Path(model_path).with_suffix(".json")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def model_metadata(
    model: keras.Model,
    *,
    model_inputs: str,
    label_names: Sequence[str],
    feature_attrs: Mapping[str, Mapping[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    """What ``model.json`` holds: everything needed to prepare features and read the output.

    Parameters
    ----------
    model : keras.Model
        Built by :func:`build_model`.
    model_inputs : str
    label_names : sequence of str
        Class names in output order.
    feature_attrs : mapping
        The attributes of the feature caches by cache name (``audio``: n_mfcc, padded_frames
        (T), hop_length, ...; ``video``: frames_per_clip, size, margin, ...). Only those of the
        caches the model reads are kept.
    **extra
        Anything else worth keeping (params, clip counts, best epoch).
    """
    inputs = {t.name: {"shape": [int(d) for d in t.shape[1:]], "dtype": INPUT_DTYPES[t.name]} for t in model.inputs}
    if int(model.outputs[0].shape[-1]) != len(label_names):
        raise ModelError(
            f"the model has {model.outputs[0].shape[-1]} outputs for {len(label_names)} label names {list(label_names)}"
        )
    features = {CACHE_OF_INPUT[name]: dict(feature_attrs.get(CACHE_OF_INPUT[name], {})) for name in inputs}
    # the speech-span params shape both inputs (the audio span, the frames inside it)
    span = next(
        (attrs["span"] for attrs in feature_attrs.values() if isinstance(attrs, Mapping) and "span" in attrs), None
    )
    if span:
        features["span"] = dict(span)
    meta = {
        "format": BUNDLE_FORMAT,
        "model_inputs": model_inputs,
        "label_names": list(label_names),
        "inputs": inputs,
        "features": features,
        **extra,
    }
    return _jsonable(meta)


DIGEST_KEY = "bundle_sha256"


def bundle_digest(model_path: str | Path, metadata: Mapping[str, Any]) -> str:
    """SHA-256 over the model file's bytes and the metadata (without this digest), canonical JSON.

    ``model.json`` records it, so a description that belongs to another model file, or that
    was edited by hand (two labels swapped, other feature params of the same shapes), is refused
    on load instead of giving wrong answers.
    """
    digest = hashlib.sha256()
    with Path(model_path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    described = {k: v for k, v in metadata.items() if k != DIGEST_KEY}
    digest.update(json.dumps(_jsonable(described), sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def save_model_bundle(model: keras.Model, metadata: Mapping[str, Any], model_path: str | Path) -> None:
    """Write ``model_path`` (native ``.keras``) and its ``.json`` metadata, each atomically.

    The metadata gains ``bundle_sha256`` (:func:`bundle_digest`), which ties it to this model file.
    """
    from mmer.files import write_json

    model_path = Path(model_path)
    if model_path.suffix != ".keras":
        raise ConfigError(f"{model_path}: a model file must end in .keras")
    model_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{model_path.stem}.", dir=model_path.parent) as tmp:
        staged = Path(tmp) / model_path.name
        model.save(staged)
        os.replace(staged, model_path)
    metadata = {k: v for k, v in _jsonable(dict(metadata)).items() if k != DIGEST_KEY}
    write_json({**metadata, DIGEST_KEY: bundle_digest(model_path, metadata)}, metadata_path(model_path))
    logger.info("saved %s and %s", model_path, metadata_path(model_path))


def read_metadata(model_path: str | Path) -> dict[str, Any]:
    """The ``.json`` beside a model file, read without loading the model (no Keras import).

    Raises
    ------
    ModelError
        The model or its ``.json`` is missing, or the ``.json`` is not an mmer model description.
    """
    model_path, meta_path = Path(model_path), metadata_path(model_path)
    for path in (model_path, meta_path):
        if not path.is_file():
            raise ModelError(f"{path}: not found (train a model first: dvc repro train)")
    try:
        metadata = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise ModelError(f"{meta_path}: not valid JSON: {err}") from err
    for key in ("model_inputs", "label_names", "inputs"):
        if key not in metadata:
            raise ModelError(f"{meta_path}: no {key!r} entry; not an mmer model description")
    return metadata


def load_model_bundle(model_path: str | Path) -> tuple[keras.Model, dict[str, Any]]:
    """Read a model saved by :func:`save_model_bundle` and its metadata.

    Raises
    ------
    ModelError
        The model or its ``.json`` is missing or unreadable, or they disagree.
    """
    model_path, meta_path = Path(model_path), metadata_path(model_path)
    metadata = read_metadata(model_path)
    if not _intact_zip(model_path):
        raise ModelError(
            f"{model_path}: cannot load the model: corrupt or truncated model file (not a complete .keras archive)"
        )
    recorded = metadata.get(DIGEST_KEY)
    if recorded is None:
        logger.warning("%s records no %s: it cannot be checked against %s", meta_path, DIGEST_KEY, model_path)
    elif recorded != bundle_digest(model_path, metadata):
        raise ModelError(
            f"{meta_path} does not match {model_path} ({DIGEST_KEY} differs): the description belongs to another "
            "model file, or one of the two was edited; use the pair the train stage wrote together"
        )
    keras = import_keras()

    import mmer.networks  # noqa: F401 - registers mmer's own layers (FerInput, WeightedAverage)

    try:
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as err:  # noqa: BLE001 - Keras raises many kinds for a bad file
        raise ModelError(f"{model_path}: cannot load the model: {err}") from err
    if int(model.outputs[0].shape[-1]) != len(metadata["label_names"]):
        raise ModelError(
            f"{model_path} has {model.outputs[0].shape[-1]} outputs but {meta_path} names {len(metadata['label_names'])} labels"
        )
    return model, metadata


def _intact_zip(path: Path) -> bool:
    """Whether ``path`` is a readable zip whose members all pass their CRC (a .keras file is one)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def predict_proba(
    model: keras.Model,
    metadata: Mapping[str, Any],
    features: Mapping[str, np.ndarray],
    *,
    batch_size: int = EvaluateParams.batch_size,
    eager: bool = False,
) -> np.ndarray:
    """Class probabilities of clips, from a loaded model and its metadata.

    Parameters
    ----------
    model : keras.Model
    metadata : mapping
        The content of ``model.json`` (see :func:`model_metadata`).
    features : mapping of str to ndarray
        The arrays the model reads, as the caches store them: ``mfcc`` float32 [n, T, c]
        (standardised, zero pre-padded to T) and/or ``faces`` uint8 [n, frames, size, size, 3].
        Other keys are ignored.
    batch_size : int
    eager : bool
        Call the model op by op instead of through a traced graph. Tracing costs about a
        second once and saves tens of milliseconds on every later call, so eager pays only
        for a single call in a process (a cold ``mmer predict clip``); the probabilities are
        the same to float32 rounding.

    Returns
    -------
    ndarray [n, n_classes], float32
        Columns in the order of ``metadata['label_names']``.

    Raises
    ------
    ModelError
        A needed array is missing or its shape differs from the one the model was trained on.
    """
    inputs = {}
    for name, spec in metadata["inputs"].items():
        if name not in features:
            raise ModelError(f"the {metadata['model_inputs']} model needs {name!r} features; got {sorted(features)}")
        array = np.asarray(features[name])
        if list(array.shape[1:]) != list(spec["shape"]):
            raise ModelError(
                f"{name} features have shape {list(array.shape[1:])} per clip; the model was trained on {spec['shape']} (see features.{CACHE_OF_INPUT[name]} in model.json)"
            )
        inputs[name] = array.astype(spec["dtype"], copy=False)
    n = {len(a) for a in inputs.values()}
    if len(n) != 1:
        raise ModelError(
            f"the feature arrays have different numbers of clips: { {k: len(v) for k, v in inputs.items()} }"
        )
    if n == {0}:
        return np.zeros((0, len(metadata["label_names"])), np.float32)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be positive, not {batch_size}")
    # batch by batch: model.predict on arrays builds a tf.data pipeline that costs more
    # than it saves for a few clips (and logs a spurious TensorFlow error line)
    import keras

    n_clips = n.pop()
    call = (lambda batch: model(batch, training=False)) if eager else model.predict_on_batch
    chunks = [
        np.asarray(
            keras.ops.convert_to_numpy(call({k: v[start : start + batch_size] for k, v in inputs.items()})),
            dtype=np.float32,
        )
        for start in range(0, n_clips, batch_size)
    ]
    return np.concatenate(chunks)


def _require(section: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    missing = [k for k in keys if k not in section]
    if missing:
        raise ModelError(f"{where}: no {missing} entries; the model description cannot say how to compute the features")


def check_bundle(model: Any, metadata: Mapping[str, Any], meta_path: str | Path, *, speaker_norm: bool = False) -> None:
    """Check that a loaded model and its ``model.json`` fit each other and the feature code.

    Parameters
    ----------
    model, metadata
        From :func:`load_model_bundle`.
    meta_path : str or Path
        The ``.json`` (named in errors).
    speaker_norm : bool
        The caller normalises several clips of one speaker together (speaker enrolment,
        :mod:`mmer.enrol`), so a model trained on speaker-normalised features can be used.

    Raises
    ------
    ModelError
        An unknown model_inputs, inputs that the model does not have, feature params missing,
        feature params that would not give the input shapes the model was trained on, or a
        speaker-normalised model without ``speaker_norm``.
    """
    from mmer.config import INPUT_ARRAYS

    model_inputs = metadata["model_inputs"]
    if model_inputs not in INPUT_ARRAYS:
        raise ModelError(f"{meta_path}: model_inputs {model_inputs!r} is not one of {sorted(INPUT_ARRAYS)}")
    inputs = metadata["inputs"]
    if sorted(inputs) != sorted(INPUT_ARRAYS[model_inputs]):
        raise ModelError(
            f"{meta_path}: a {model_inputs} model reads {list(INPUT_ARRAYS[model_inputs])}, but the file lists inputs {sorted(inputs)}"
        )
    actual = {t.name: [int(d) for d in t.shape[1:]] for t in model.inputs}
    for name, spec in inputs.items():
        if actual.get(name) != list(spec["shape"]):
            raise ModelError(
                f"{meta_path}: says input {name} has shape {spec['shape']}, but the model beside it takes "
                f"{actual.get(name, 'no such input')}: the two files do not belong together"
            )
    features = metadata.get("features", {})
    if "audio_features" in inputs:
        audio = features.get("audio", {})
        _require(
            audio,
            ("n_mfcc", "n_fft", "win_length", "hop_length", "n_mels", "padded_frames", "sample_rate"),
            f"{meta_path} features.audio",
        )
        if audio.get("normalise") == "speaker" and not speaker_norm:
            raise ModelError(
                f"{meta_path}: the model was trained on speaker-normalised audio features (audio.normalise: speaker), "
                "which need several clips of the speaker: it cannot answer one clip at a time; give clips of one "
                "speaker with --speaker-norm (docs/predict.md, speaker enrolment) or another model"
            )
        from mmer.audio import n_features

        expected = [
            int(audio["padded_frames"]),
            n_features(**{k: audio[k] for k in ("features", "n_mfcc", "n_mels", "deltas") if k in audio}),
        ]
        if expected != list(inputs["audio_features"]["shape"]):
            raise ModelError(
                f"{meta_path}: the audio params give MFCCs of shape {expected}, the model takes {inputs['audio_features']['shape']}"
            )
    if "faces" in inputs:
        video = features.get("video", {})
        _require(video, ("frames_per_clip", "size"), f"{meta_path} features.video")
        expected = [int(video["frames_per_clip"]), int(video["size"]), int(video["size"]), 3]
        if expected != list(inputs["faces"]["shape"]):
            raise ModelError(
                f"{meta_path}: the faces params give crops of shape {expected}, the model takes {inputs['faces']['shape']}"
            )

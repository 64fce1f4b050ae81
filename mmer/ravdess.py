"""RAVDESS file names: the seven fields, their vocabularies and the parser.

A RAVDESS file name is seven two-digit fields::

    modality-vocal_channel-emotion-intensity-statement-repetition-actor
    01-01-06-01-02-01-12.mp4  ->  audio-video, speech, fearful, normal, "Dogs...", 1st, actor 12

Odd actors are male, even actors female.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from mmer.errors import DatasetError

logger = logging.getLogger(__name__)


MODALITIES = {1: "av", 2: "video", 3: "audio"}


VOCAL_CHANNELS = {1: "speech", 2: "song"}


EMOTIONS = {
    1: "neutral",
    2: "calm",
    3: "happy",
    4: "sad",
    5: "angry",
    6: "fearful",
    7: "disgust",
    8: "surprised",
}


INTENSITIES = {1: "normal", 2: "strong"}


STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}


_NAME_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


@dataclass(frozen=True)
class RavdessName:
    """The seven fields of a RAVDESS file name, decoded."""

    clip_id: str
    modality: str
    vocal_channel: str
    emotion: str
    intensity: str
    statement: int
    repetition: int
    actor: int

    @property
    def sex(self) -> str:
        """``male`` for odd actors, ``female`` for even ones."""
        return "male" if self.actor % 2 else "female"

    @property
    def recording(self) -> str:
        """The id without its modality field: the same performance in every modality."""
        return self.clip_id[3:]


def parse_name(name: str | Path) -> RavdessName:
    """Decode a RAVDESS file name (with or without folder and suffix).

    Parameters
    ----------
    name : str or Path
        ``03-01-06-01-02-01-12.wav``, ``Actor_12/03-01-06-01-02-01-12.wav`` or the bare id.

    Returns
    -------
    RavdessName

    Raises
    ------
    DatasetError
        When the name is not seven two-digit fields or a field is out of its range.
    """
    stem = Path(str(name)).name
    if "." in stem:  # any container: the name is what counts
        stem = stem.rsplit(".", 1)[0]
    match = _NAME_RE.match(stem)
    if not match:
        raise DatasetError(f"{name}: not a RAVDESS name (expected seven two-digit fields like 01-01-06-01-02-01-12)")
    mod, chan, emo, inten, stmt, rep, actor = (int(g) for g in match.groups())
    problems = []
    if mod not in MODALITIES:
        problems.append(f"modality {mod:02d} not in 01-03")
    if chan not in VOCAL_CHANNELS:
        problems.append(f"vocal channel {chan:02d} not in 01-02")
    if emo not in EMOTIONS:
        problems.append(f"emotion {emo:02d} not in 01-08")
    if inten not in INTENSITIES:
        problems.append(f"intensity {inten:02d} not in 01-02")
    elif emo == 1 and inten == 2:
        problems.append("neutral has no strong intensity")
    if stmt not in STATEMENTS:
        problems.append(f"statement {stmt:02d} not in 01-02")
    if rep not in (1, 2):
        problems.append(f"repetition {rep:02d} not in 01-02")
    if not 1 <= actor <= 99:
        problems.append(f"actor {actor:02d} not in 01-99")
    if problems:
        raise DatasetError(f"{name}: not a valid RAVDESS name: {'; '.join(problems)}")
    return RavdessName(
        clip_id=stem,
        modality=MODALITIES[mod],
        vocal_channel=VOCAL_CHANNELS[chan],
        emotion=EMOTIONS[emo],
        intensity=INTENSITIES[inten],
        statement=stmt,
        repetition=rep,
        actor=actor,
    )

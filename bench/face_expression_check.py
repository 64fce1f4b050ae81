"""The zero-shot FER2013 face baseline measured outside the pipeline (issue 13, docs/faces.md).

Two reports, as JSON on stdout:

- ``--video features/video.h5 --index data/index.csv``: the zero-shot expressions of every
  cached clip (no training, so every speaker is a fair test), scored under ``merged7`` and
  ``all8`` with the majority class of the same clips beside them;
- ``--clips DIR``: clip by clip, for each audio-video or silent video under ``DIR`` (the
  genuine RAVDESS files of ``../shared/data/ravdess-av-samples``), the true emotion its name
  gives, the zero-shot expression of crops taken with each ``--margins`` value, and the answer
  of each ``--model`` (a trained bundle; what ``mmer predict`` prints).

Run as ``python -m bench.face_expression_check``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmer.config import FacesParams


def score_cache(video_path: str | Path, index_path: str | Path, classes: Sequence[str] = ("merged7", "all8")) -> dict:
    """Zero-shot accuracy and UAR over every clip of a face cache, per label set."""
    from mmer.corpus import read_index
    from mmer.evaluation import classification_metrics
    from mmer.face_expression import clip_expressions, to_corpus_probabilities
    from mmer.featurefile import read_cache
    from mmer.labels import emotion_label, label_names

    cache = read_cache(video_path, ["faces", "face_found"])
    emotions = read_index(index_path).set_index("clip_id").loc[list(cache.clip_ids), "emotion"].to_numpy()
    expressions = clip_expressions(cache.arrays["faces"], cache.arrays["face_found"])
    out: dict[str, Any] = {"clips": len(emotions), "margin": cache.attrs.get("margin")}
    for name in classes:
        names = label_names(name)
        labels = np.array([emotion_label(e, names, classes=name) for e in emotions])
        predicted = to_corpus_probabilities(expressions, names).argmax(axis=1)
        metrics = classification_metrics(labels, predicted, label_names=names)
        majority = np.bincount(labels, minlength=len(names)).max() / len(labels)
        out[name] = {
            "accuracy": round(metrics["accuracy"], 4),
            "uar": round(metrics["uar"], 4),
            "majority_accuracy": round(float(majority), 4),
            "chance_uar": round(1 / len(names), 4),
            "predicted_counts": {names[k]: int(v) for k, v in enumerate(np.bincount(predicted, minlength=len(names)))},
        }
    return out


def check_clips(clips_dir: str | Path, *, margins: Sequence[float], models: Sequence[str | Path]) -> list[dict]:
    """Clip by clip: true emotion, zero-shot expression per crop margin, each model's answer."""
    from mmer import faces, speech
    from mmer.face_expression import FER_EMOTIONS, clip_expressions
    from mmer.predictor import Predictor
    from mmer.ravdess import EMOTIONS

    clips = sorted(Path(clips_dir).rglob("*.mp4"))
    rows = [{"file": c.name, "true": EMOTIONS.get(int(c.name.split("-")[2]), "?")} for c in clips]
    faces.init_worker()
    with tempfile.TemporaryDirectory() as tmp:
        for row, clip in zip(rows, clips):
            span = speech.trim_clip(clip, Path(tmp) / "span.wav")
            for margin in margins:
                crops = faces.clip_face_crops(
                    clip, span["start_s"], span["end_s"], frames_per_clip=FacesParams.frames_per_clip, margin=margin
                )
                probabilities = clip_expressions(crops.crops[None], crops.found[None])[0]
                best = int(probabilities.argmax())
                row[f"zero_shot_margin_{margin}"] = f"{FER_EMOTIONS[best]} {probabilities[best]:.2f}"
    for model in models:
        with Predictor(model) as predictor:
            for row, clip in zip(rows, clips):
                try:
                    result = predictor.predict(clip)
                    row[str(model)] = f"{result.emotion} {result.probability:.2f} ({result.head})"
                except Exception as err:  # noqa: BLE001 - a report row, not a failure
                    row[str(model)] = f"{type(err).__name__}: {str(err).split(': ', 1)[-1][:60]}"
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--video", help="a face cache (features/video.h5)")
    parser.add_argument("--index", default="data/index.csv")
    parser.add_argument("--clips", help="a folder of clips named the RAVDESS way")
    parser.add_argument("--margins", type=float, nargs="+", default=[FacesParams.margin])
    parser.add_argument("--model", action="append", default=[], help="a trained model.keras (repeatable)")
    args = parser.parse_args(argv)
    from mmer.logs import setup_logging

    setup_logging()
    report: dict[str, Any] = {}
    if args.video:
        report["cache"] = score_cache(args.video, args.index)
    if args.clips:
        report["clips"] = check_clips(args.clips, margins=args.margins, models=args.model)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

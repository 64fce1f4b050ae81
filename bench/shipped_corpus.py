"""The shipped voice model on a whole corpus it never met, clip by clip, as ``mmer predict`` answers.

Run as ``python -m bench.shipped_corpus [DIR] [--no-views] [--out FILE]`` (default: all of
``../shared/data/savee``). Each audio file is answered by :class:`mmer.predictor.Predictor`
with the shipped voice model (:func:`mmer.pretrained.shipped_voice_model`): with its views
(:mod:`mmer.views`, what ``mmer predict`` uses) or, with ``--no-views``, ``voice.keras``
alone. The emotion comes from the file name (:func:`mmer.corpora.parse_clip`: SAVEE, RAVDESS,
CREMA-D, EmoDB, TESS). The 8 answers are scored over RAVDESS's merged 7 classes: calm's
probability goes to neutral (a corpus without calm), then the most probable class is the
answer. Prints accuracy, UAR (chance 1/7) and per-class recall; writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("bench.shipped_corpus")

CORPORA = ("savee", "ravdess", "cremad", "emodb", "tess")


def score_corpus(folder: Path, *, views: bool) -> dict[str, Any]:
    """Answer every clip of ``folder`` and score the answers over the merged 7 classes."""
    from tqdm import tqdm

    from mmer.corpora import parse_clip
    from mmer.errors import MmerError
    from mmer.evaluation import classification_metrics, majority_baseline
    from mmer.labels import label_names
    from mmer.predictor import Predictor, find_clips
    from mmer.pretrained import shipped_voice_model

    merged = label_names("merged7")
    files = find_clips([folder])
    truth, answers, failed = [], [], []
    with Predictor(shipped_voice_model(), threads=2, views=views) as predictor:
        for path in tqdm(files, desc="clips", unit="clip"):
            try:
                emotion = parse_clip(path, CORPORA).emotion
                probabilities = predictor.predict(path).probabilities
            except MmerError as err:
                failed.append({"file": str(path), "reason": str(err)})
                continue
            folded = dict(probabilities)
            folded["neutral"] = folded.get("neutral", 0.0) + folded.pop("calm", 0.0)
            truth.append(merged.index("neutral" if emotion == "calm" else emotion))
            answers.append(int(np.argmax([folded[name] for name in merged])))
    metrics = classification_metrics(truth, answers, label_names=merged)
    return {
        "folder": str(folder),
        "model": str(shipped_voice_model()) + (" with its views" if views else " alone (no views)"),
        "classes": "merged7: calm's probability added to neutral's",
        **metrics,
        "chance_uar": 1 / len(merged),
        "commonest_class": majority_baseline(truth, truth, label_names=merged),
        "failed": failed,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folder", nargs="?", default="../shared/data/savee", help="a corpus folder (file names give emotions)"
    )
    parser.add_argument("--no-views", action="store_true", help="voice.keras alone, not its views")
    parser.add_argument("--out", default=None, help="JSON file for the figures (default: print only)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    folder = Path(args.folder)
    if not folder.is_dir():
        logger.error("%s: no such folder", folder)
        return 1
    result = score_corpus(folder, views=not args.no_views)
    recall = ", ".join(f"{k} {v:.3f}" for k, v in result["per_class_recall"].items() if v is not None)
    print(
        f"{result['model']} on {result['n']} clips of {folder}: accuracy {result['accuracy']:.3f}, "
        f"UAR {result['uar']:.3f} (chance {result['chance_uar']:.3f}), macro-F1 {result['macro_f1']:.3f}; "
        f"recall: {recall}; {len(result['failed'])} failed"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

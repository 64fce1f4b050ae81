"""Stage cross_corpus: the trained model (and the classical baselines) on every held-out corpus, whole."""

import argparse
import dataclasses

from mmer.config import BaselinesParams, EvaluateParams, load_section
from mmer.logs import setup_logging

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--index", default="data/index.csv")
    parser.add_argument("--audio", default="features/audio.h5")
    parser.add_argument("--video", default="features/video.h5")
    parser.add_argument("--model", default="models/model.keras")
    parser.add_argument("--metrics", default="metrics/cross_corpus.json")
    parser.add_argument("--out-dir", default="metrics/cross_corpus", help="predictions.csv, confusion_<corpus>.png")
    args = parser.parse_args()
    setup_logging()
    from mmer.crosscorpus import cross_corpus_stage  # after logging set-up: quiets TensorFlow's start-up

    cross_corpus_stage(
        args.index,
        audio_path=args.audio,
        video_path=args.video,
        model_path=args.model,
        metrics_path=args.metrics,
        out_dir=args.out_dir,
        batch_size=load_section(EvaluateParams, "evaluate").batch_size,
        baselines={  # the zero-shot FER2013 row is scored by the baselines stage only
            k: v for k, v in dataclasses.asdict(load_section(BaselinesParams, "baselines")).items() if k != "zero_shot"
        },
    )

"""Stage evaluate: the trained model on the test speakers -> metrics, predictions, figures."""

import argparse

from mmer.config import EvaluateParams, load_section
from mmer.logs import setup_logging

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--index", default="data/index.csv")
    parser.add_argument("--audio", default="features/audio.h5")
    parser.add_argument("--video", default="features/video.h5")
    parser.add_argument("--model", default="models/model.keras")
    parser.add_argument("--metrics", default="metrics/eval.json")
    parser.add_argument("--predictions", default="metrics/predictions.csv")
    parser.add_argument("--confusion", default="metrics/confusion.png")
    parser.add_argument("--recall", default="metrics/per_class_recall.png")
    args = parser.parse_args()
    setup_logging()
    from mmer.evaluation import evaluate_stage

    params = load_section(EvaluateParams, "evaluate")
    evaluate_stage(
        args.index,
        audio_path=args.audio,
        video_path=args.video,
        model_path=args.model,
        metrics_path=args.metrics,
        predictions_path=args.predictions,
        confusion_path=args.confusion,
        recall_path=args.recall,
        split=params.split,
        batch_size=params.batch_size,
    )

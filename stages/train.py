"""Stage train: fit the model on the train speakers, watching the validation speakers.

Writes the model (native .keras) with model.json beside it, and the DVCLive run (params,
per-epoch curves, summary) into the --live folder.
"""

import argparse

from mmer.config import (
    AugmentParams,
    IndexParams,
    ModelParams,
    TrainParams,
    load_section,
)
from mmer.labels import label_names
from mmer.logs import setup_logging

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--index", default="data/index.csv")
    parser.add_argument("--audio", default="features/audio.h5")
    parser.add_argument("--video", default="features/video.h5")
    parser.add_argument("--model", default="models/model.keras", help="model.json is written beside it")
    parser.add_argument("--live", default="metrics/train", help="DVCLive folder")
    args = parser.parse_args()
    setup_logging()
    from mmer.training import (
        train_stage,  # after logging set-up: quiets TensorFlow's start-up
    )

    index = load_section(IndexParams, "index")
    train_stage(
        args.index,
        audio_path=args.audio,
        video_path=args.video,
        model_path=args.model,
        live_dir=args.live,
        label_names=label_names(index.classes, index.subset),
        model_params=load_section(ModelParams, "model"),
        train_params=load_section(TrainParams, "train"),
        augment_params=load_section(AugmentParams, "augment"),
    )

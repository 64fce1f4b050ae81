"""Stage baselines: naive Bayes, LDA and SVMs on pooled MFCC statistics and face descriptors."""

import argparse
import dataclasses

from mmer.config import BaselinesParams, IndexParams, load_section
from mmer.labels import label_names
from mmer.logs import setup_logging

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--index", default="data/index.csv")
    parser.add_argument("--audio", default="features/audio.h5")
    parser.add_argument("--video", default="features/video.h5")
    parser.add_argument("--out", default="metrics/baselines.json")
    args = parser.parse_args()
    setup_logging()
    from mmer.baselines import (
        baselines_stage,  # after logging set-up: quiets TensorFlow's start-up
    )
    index = load_section(IndexParams, "index")
    baselines_stage(
        args.index,
        audio_path=args.audio,
        video_path=args.video,
        out_path=args.out,
        label_names=label_names(index.classes, index.subset),
        **dataclasses.asdict(load_section(BaselinesParams, "baselines")),
    )

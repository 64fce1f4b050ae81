"""Stage baselines: naive Bayes, LDA and SVMs on pooled MFCC statistics and face descriptors.

Every classifier on every feature set goes to --table (a plain output); the DVC metric
(--out) holds only the headline: per feature set, the classifier with the best validation
UAR and its test figures, and the majority baseline.
"""

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
    parser.add_argument("--table", default="metrics/baselines_table.json", help="every classifier on every feature set")
    parser.add_argument("--out", default="metrics/baselines.json", help="the headline figures (the DVC metric)")
    args = parser.parse_args()
    setup_logging()
    from mmer.baselines import baselines_stage  # after logging set-up: quiets TensorFlow's start-up
    from mmer.files import write_json
    from mmer.report import headline_baselines

    index = load_section(IndexParams, "index")
    results = baselines_stage(
        args.index,
        audio_path=args.audio,
        video_path=args.video,
        out_path=args.table,
        label_names=label_names(index.classes, index.subset),
        **dataclasses.asdict(load_section(BaselinesParams, "baselines")),
    )
    write_json(headline_baselines(results), args.out)

"""Stage cv: speaker cross-validation (fold k tests, fold k+1 validates) -> per-fold and summary metrics.

Off unless cv.enabled is true (six trainings do not fit the demo's time budget):
run it with `dvc exp run -S cv.enabled=true` (or set it in params.yaml and `dvc repro cv`).
"""

import argparse

from mmer.config import (
    AugmentParams,
    CvParams,
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
    parser.add_argument("--out-dir", default="metrics/cv", help="summary.json and fold_<k>.json")
    args = parser.parse_args()
    setup_logging()
    from mmer.training import (
        cv_stage,  # after logging set-up: quiets TensorFlow's start-up
    )
    cv = load_section(CvParams, "cv")
    index = load_section(IndexParams, "index")
    cv_stage(
        args.index,
        audio_path=args.audio,
        video_path=args.video,
        out_dir=args.out_dir,
        enabled=cv.enabled,
        folds=cv.folds,
        epochs=cv.epochs,
        label_names=label_names(index.classes, index.subset),
        model_params=load_section(ModelParams, "model"),
        train_params=load_section(TrainParams, "train"),
        augment_params=load_section(AugmentParams, "augment"),
    )

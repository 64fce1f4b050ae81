"""Stage cv: speaker cross-validation (fold k tests, fold k+1 validates) -> summary and per-fold metrics.

Off unless cv.enabled is true (six trainings do not fit the demo's time budget):
run it with `dvc exp run -S cv.enabled=true` (or set it in params.yaml and `dvc repro cv`).
cv.classifier chooses the network of the model section (the default) or a classical
baseline (e.g. rbf_svm) on pooled features of model.inputs.
"""

import argparse

from mmer.config import AugmentParams, BaselinesParams, CvParams, IndexParams, ModelParams, TrainParams, load_section
from mmer.labels import label_names
from mmer.logs import setup_logging

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--index", default="data/index.csv")
    parser.add_argument("--audio", default="features/audio.h5")
    parser.add_argument("--video", default="features/video.h5")
    parser.add_argument("--out-dir", default="metrics/cv", help="summary.json (mean and std over folds) and folds.json")
    args = parser.parse_args()
    setup_logging()
    cv = load_section(CvParams, "cv")
    index = load_section(IndexParams, "index")
    paths = {"audio_path": args.audio, "video_path": args.video, "out_dir": args.out_dir}
    names = label_names(index.classes, index.subset)
    if cv.classifier != "network":
        from mmer.classical_cv import classical_cv_stage

        baselines = load_section(BaselinesParams, "baselines")
        classical_cv_stage(
            args.index,
            **paths,
            enabled=cv.enabled,
            folds=cv.folds,
            label_names=names,
            classifier=cv.classifier,
            feature_set=load_section(ModelParams, "model").inputs if cv.feature_set == "inputs" else cv.feature_set,
            c_grid=baselines.c_grid,
            face_grid=baselines.face_grid,
            seed=baselines.seed,
        )
    else:
        from mmer.training import cv_stage  # after logging set-up: quiets TensorFlow's start-up

        cv_stage(
            args.index,
            **paths,
            enabled=cv.enabled,
            folds=cv.folds,
            epochs=cv.epochs,
            label_names=names,
            model_params=load_section(ModelParams, "model"),
            train_params=load_section(TrainParams, "train"),
            augment_params=load_section(AugmentParams, "augment"),
        )

"""Speaker cross-validation on real RAVDESS speech, through the mmer functions the DVC stages call.

Reads the index and span wavs that experiments/speech_prepare.py wrote under --work, builds
the audio cache of the chosen feature params with mmer.pipeline.audio_features_stage (once per
setting, cached under --work), and runs mmer.training.cross_validate (the cv stage's function:
fold k tests, fold k+1 validates and alone picks the epoch and the learning-rate schedule) or,
with --svm, mmer.baselines.run_baselines per fold. Params come from params.yaml, then the
presets named (presets/*.yaml), then --set key=value. Results -> experiments/results/<tag>.json.

    nice python experiments/speech_cv.py --preset ravdess-speech --tag reference_all8
    nice python experiments/speech_cv.py --preset ravdess-speech speech-best --classes merged7 --tag best_merged7
    nice python experiments/speech_cv.py --preset ravdess-speech --set audio.normalise=none --svm --tag svm_all8
"""

import argparse
import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np
import yaml

from mmer.cache import read_cache, write_cache
from mmer.config import AudioParams, AugmentParams, BaselinesParams, ModelParams, TrainParams, from_mapping, read_params
from mmer.dataset import label_names, read_index
from mmer.logs import setup_logging
from mmer.presets import check_preset, load_preset

RESULTS = Path("experiments/results")
METRICS = ("accuracy", "uar", "macro_f1")


def merged_params(presets, sets):
    params = read_params()
    overrides = {}
    for name in presets:
        preset = load_preset(name)
        check_preset(preset, params, name=name)
        overrides.update(preset)
    for item in sets:
        key, value = item.split("=", 1)
        overrides[key] = yaml.safe_load(value)
    check_preset(overrides, params, name="--set")
    for key, value in overrides.items():
        section, name = key.split(".")
        params[section][name] = value
    return params, overrides


def audio_cache(work: Path, audio: AudioParams, sample_rate: int) -> Path:
    from mmer.pipeline import audio_features_stage

    digest = hashlib.md5(json.dumps(dataclasses.asdict(audio), sort_keys=True).encode()).hexdigest()[:10]
    path = work / f"audio_{digest}.h5"
    if not path.is_file():
        audio_features_stage(
            work / "index_all8.csv", work / "spans.csv", wav_dir=work / "audio", out_path=path,
            failures_path=work / f"failures_audio_{digest}.csv", metrics_path=work / f"audio_{digest}.json",
            params=audio, sample_rate=sample_rate,
        )
    return path


def empty_video_cache(work: Path) -> Path:
    path = work / "video_empty.h5"
    if not path.is_file():
        arrays = {"faces": np.zeros((0, 6, 64, 64, 3), np.uint8), "face_found": np.zeros((0, 6), bool)}
        write_cache(path, arrays, [], {"layout": "clip,frame,y,x,rgb"})
    return path


def mean_std(values):
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def run_svm(index, caches, names, folds, baselines: BaselinesParams):
    from mmer.baselines import run_baselines
    from mmer.data import align_clips

    per_fold = []
    for fold in folds:
        data = align_clips(index, caches, fold=fold)
        result = run_baselines(data, label_names=names, feature_sets=("audio",), classifiers=("rbf_svm",), c_grid=baselines.c_grid, seed=baselines.seed)
        per_fold.append({"fold": fold, **result["audio"]["rbf_svm"], "majority": result["majority"]})
    summary = {key: mean_std([r[key] for r in per_fold]) for key in METRICS}
    summary.update({f"majority_{key}": mean_std([r["majority"][key] for r in per_fold]) for key in METRICS})
    return summary, per_fold


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=".cache/speech")
    parser.add_argument("--preset", nargs="*", default=["ravdess-speech"])
    parser.add_argument("--set", nargs="*", default=[], help="extra key=value overrides")
    parser.add_argument("--classes", default=None, help="all8 | merged7 (default: index.classes after the presets)")
    parser.add_argument("--folds", default="", help="comma-separated folds (default: cv.folds, empty = all)")
    parser.add_argument("--svm", action="store_true", help="the RBF-SVM baseline on MFCC statistics instead of the network")
    parser.add_argument("--tag", required=True)
    args = parser.parse_args()
    setup_logging()
    params, overrides = merged_params(args.preset, args.set)
    classes = args.classes or params["index"]["classes"]
    work = Path(args.work)
    index = read_index(work / f"index_{classes}.csv")
    names = label_names(classes)
    audio = from_mapping(AudioParams, params["audio"], section="audio")
    caches = {"audio": read_cache(audio_cache(work, audio, params["trim"]["sample_rate"])), "video": read_cache(empty_video_cache(work))}
    folds = [int(f) for f in args.folds.split(",") if f] or list(params["cv"]["folds"]) or sorted(index["fold"].unique())
    start = time.perf_counter()
    if args.svm:
        summary, per_fold = run_svm(index, caches, names, folds, from_mapping(BaselinesParams, params["baselines"], section="baselines"))
    else:
        from mmer.training import cross_validate

        summary, per_fold = cross_validate(
            index, caches, label_names=names, folds=folds, epochs=params["cv"]["epochs"] or None,
            model_params=from_mapping(ModelParams, params["model"], section="model"),
            train_params=from_mapping(TrainParams, params["train"], section="train"),
            augment_params=from_mapping(AugmentParams, params["augment"], section="augment"),
        )
    seconds = time.perf_counter() - start
    result = {"tag": args.tag, "classes": classes, "folds": folds, "svm": args.svm, "presets": args.preset, "overrides": overrides,
              "wall_seconds": round(seconds), "summary": summary, "per_fold": per_fold}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.tag}.json").write_text(json.dumps(result, indent=1, default=float))
    line = ", ".join(f"{k} {summary[k]['mean']:.3f} ± {summary[k]['std']:.3f}" for k in METRICS)
    print(f"{args.tag} ({classes}, folds {folds}, {seconds / 60:.1f} min): {line}; majority accuracy {summary['majority_accuracy']['mean']:.3f}")

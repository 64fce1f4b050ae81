"""The results table of the README's "Results on real RAVDESS speech" from experiments/results/*.json.

Runs of the same settings (classes, SVM or network, presets and overrides) on different folds
are joined per fold (training is seeded and deterministic, so a fold run twice gives the same
figures; a disagreement is reported). Mean and standard deviation (ddof=0) are over folds.

    python experiments/speech_report.py > experiments/results/speech_table.md
    python experiments/speech_report.py --readme README.md   # rewrite the tables between the README's markers

A second table (the effect of each option) lists every full 6-fold network run of the same
classes as the run tagged ABLATION_BASE by what it changed from it, with the difference in
mean accuracy; the folds are the same, so the per-fold differences are paired.
"""

import argparse
import contextlib
import functools
import io
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

RESULTS = Path("experiments/results")
METRICS = ("accuracy", "uar", "macro_f1")
ABLATION_BASE = "full_best_all8"  # 40 MFCC + deltas, speaker-norm, speed0.9/1.1, conv1d > stats pooling


@functools.cache
def param_defaults():
    """params.yaml, read once."""
    from mmer.config import read_params

    return read_params()


def effective(overrides):
    """The overrides that differ from params.yaml (so ``--set train.ensemble=1`` names the same setting as no --set)."""
    defaults = param_defaults()
    return {k: v for k, v in overrides.items() if defaults.get(k.split(".")[0], {}).get(k.split(".", 1)[1], object()) != v}


def settings_key(result):
    return json.dumps([result["classes"], result["svm"], effective(result["overrides"])], sort_keys=True)


def describe(overrides, svm):
    """A short name of the settings changed from params.yaml (beyond the corpus preset)."""
    o = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith(("audio.", "model.audio_"))}
    features = f"{o.get('n_mfcc', 24)} MFCC" if o.get("features", "mfcc") == "mfcc" else f"{o.get('n_mels', 40)} log-mel"
    parts = [features + ("+deltas" if o.get("deltas") else ""), f"{o.get('normalise', 'clip')}-norm"]
    if o.get("perturbations"):
        parts.append("+".join(o["perturbations"]))
    if svm:
        return "RBF-SVM on mean+std: " + ", ".join(parts)
    frontend = "conv1d" if o.get("audio_frontend") == "conv1d" else ""
    rnn = {0: "", 1: "BLSTM"}.get(o.get("audio_rnn_layers", 2), "2xBLSTM")
    pooling = {"last": "last state", "attention": "attention", "stats": "stats pooling"}[o.get("audio_pooling", "last")]
    network = " > ".join(x for x in (frontend, rnn, pooling) if x)
    if o.get("max_frames"):
        parts.append(f"T={o['max_frames']}")
    if overrides.get("augment.enabled") is False:
        parts.append("no masks/shift/noise")
    t = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith("train.")}
    if t.get("mixup"):
        parts.append(f"mixup {t['mixup']}")
    if t.get("label_smoothing"):
        parts.append(f"label smoothing {t['label_smoothing']}")
    if t.get("ensemble", 1) > 1:
        parts.append(f"ensemble of {t['ensemble']} by {t.get('ensemble_by', 'seed')}")
    name = "**reference**: " if not o and not t else ""
    return f"{name}{network}; " + ", ".join(parts)


def main():
    groups = defaultdict(dict)
    names = defaultdict(list)
    for path in sorted(RESULTS.glob("*.json")):
        result = json.loads(path.read_text())
        if "per_fold" not in result:
            continue
        key = settings_key(result)
        names[key].append(result["tag"])
        for fold in result["per_fold"]:
            old = groups[key].get(fold["fold"])
            if old is not None and abs(old["accuracy"] - fold["accuracy"]) > 1e-9:
                print(f"<!-- warning: fold {fold['fold']} of {result['tag']} differs from an earlier run: {old['accuracy']:.3f} vs {fold['accuracy']:.3f} -->")
            groups[key][fold["fold"]] = {**fold, "wall": result["wall_seconds"] / len(result["per_fold"])}
    print("| classes | setting | folds | accuracy | UAR | macro-F1 | majority acc. | min/fold | runs |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for key, folds in groups.items():
        classes, svm, overrides = json.loads(key)
        per_fold = [folds[k] for k in sorted(folds)]
        cells = [f"{np.mean([f[m] for f in per_fold]):.3f} ± {np.std([f[m] for f in per_fold]):.3f}" for m in METRICS]
        majority = np.mean([f["majority"]["accuracy"] for f in per_fold])
        minutes = np.mean([f["wall"] for f in per_fold]) / 60
        fold_text = "all 6" if len(per_fold) == 6 else ",".join(str(k) for k in sorted(folds))
        rows.append((classes, len(per_fold) != 6, -np.mean([f["accuracy"] for f in per_fold]), f"| {classes} | {describe(overrides, svm)} | {fold_text} | {' | '.join(cells)} | {majority:.3f} | {minutes:.1f} | {', '.join(names[key])} |"))
    for row in sorted(rows):
        print(row[-1])
    ablation_table(groups, names)


def changes(base, overrides):
    """``key=value`` for every key ``overrides`` sets differently from ``base`` (``-key`` when dropped)."""
    out = [f"{k}={json.dumps(v)}" for k, v in sorted(overrides.items()) if base.get(k) != v]
    return out + [f"-{k}" for k in sorted(set(base) - set(overrides))]


def ablation_table(groups, names):
    base_key = next((key for key, tags in names.items() if ABLATION_BASE in tags), None)
    if base_key is None:
        return
    classes, _, base = json.loads(base_key)
    base_folds = groups[base_key]
    print(f"\n| change from `{ABLATION_BASE}` ({classes}, all 6 folds) | accuracy | Δ accuracy | folds better / worse | UAR | runs |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    for key, folds in groups.items():
        other_classes, svm, overrides = json.loads(key)
        if svm or other_classes != classes or sorted(folds) != sorted(base_folds):
            continue
        acc = np.array([folds[k]["accuracy"] for k in sorted(folds)])
        ref = np.array([base_folds[k]["accuracy"] for k in sorted(folds)])
        uar = np.mean([folds[k]["uar"] for k in folds])
        changed = changes(base, overrides)
        label = ", ".join(changed) if len(changed) <= 4 else f"all of it: {describe(overrides, False)}"
        label = label or "(none: the base)"
        rows.append((-acc.mean(), f"| {label} | {acc.mean():.3f} ± {acc.std():.3f} | {acc.mean() - ref.mean():+.3f} | {(acc > ref).sum()} / {(acc < ref).sum()} | {uar:.3f} | {', '.join(names[key])} |"))
    for row in sorted(rows):
        print(row[-1])


MARKERS = ("<!-- speech-table -->", "<!-- /speech-table -->")

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", help="replace the text between the markers <!-- speech-table --> and <!-- /speech-table --> of this file")
    args = parser.parse_args()
    if not args.readme:
        main()
    else:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            main()
        readme = Path(args.readme)
        pattern = re.compile(re.escape(MARKERS[0]) + ".*?" + re.escape(MARKERS[1]), re.S)
        text = readme.read_text()
        if not pattern.search(text):
            raise SystemExit(f"{readme}: no {MARKERS[0]} ... {MARKERS[1]} markers")
        readme.write_text(pattern.sub(lambda _: f"{MARKERS[0]}\n{out.getvalue()}{MARKERS[1]}", text))

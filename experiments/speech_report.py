"""The results table of the README's "Results on real RAVDESS speech" from experiments/results/*.json.

Runs of the same settings (classes, SVM or network, presets and overrides) on different folds
are joined per fold (training is seeded and deterministic, so a fold run twice gives the same
figures; a disagreement is reported). Mean and standard deviation (ddof=0) are over folds.

    python experiments/speech_report.py > experiments/results/speech_table.md
"""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

RESULTS = Path("experiments/results")
METRICS = ("accuracy", "uar", "macro_f1")


def settings_key(result):
    return json.dumps([result["classes"], result["svm"], result["overrides"]], sort_keys=True)


def describe(overrides, svm):
    shown = {k: v for k, v in overrides.items() if not k.startswith(("data.", "index.", "baselines.", "model.modality"))}
    text = ", ".join(f"{k.split('.', 1)[1]}={json.dumps(v, separators=(',', ':'))}" for k, v in shown.items()) or "reference (BLSTM, 24 MFCCs per clip)"
    return ("RBF-SVM on MFCC mean+std; " if svm else "") + text


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


if __name__ == "__main__":
    main()

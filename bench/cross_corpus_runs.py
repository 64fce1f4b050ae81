"""Score the ``cross_corpus`` stage's predictions of several runs: each alone and averaged.

Run as ``python -m bench.cross_corpus_runs A.csv B.csv ...``: each file is a run's
``metrics/cross_corpus/predictions.csv`` (one row per held-out clip: ``clip_id``,
``actual``, ``prob_<label>`` ...). Prints, for each file and for the mean of their
probabilities clip by clip (the runs as one ensemble), accuracy and UAR two ways: over the
model's own labels (a corpus without calm counts a calm answer as an error) and with calm's
probability added to neutral's (RAVDESS's merged 7 classes, as ``mmer predict``'s corpus
benchmark :mod:`bench.shipped_corpus` scores). UAR averages the recall of the classes the
held-out clips have. ``--json FILE`` writes the figures.

With ``--folds`` each argument is instead a glob pattern naming the folds of one run (each
fold its own clips, e.g. the ``evaluate`` stage's ``metrics/predictions.csv`` of each
left-out speaker): they are put together and scored as one set of clips, and several
patterns (one per seed) are runs of the same clips, each alone and averaged as above.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _tables(paths: Sequence[str | Path]) -> tuple[list[pd.DataFrame], list[str], list[str]]:
    """The files' tables (indexed by clip, sorted), their ``prob_`` columns (the same in every
    file) and the labels those columns name."""
    tables = [pd.read_csv(path).set_index("clip_id").sort_index() for path in paths]
    columns = [c for c in tables[0].columns if c.startswith("prob_")]
    for path, table in zip(paths, tables):
        if [c for c in table.columns if c.startswith("prob_")] != columns:
            raise ValueError(f"{path}: not the same labels as {paths[0]}")
    return tables, columns, [c[len("prob_") :] for c in columns]


def _truth(table: pd.DataFrame, labels: list[str], path: str | Path) -> np.ndarray:
    unknown = sorted(set(table["actual"]) - set(labels))
    if unknown:
        raise ValueError(f"{path}: emotions {unknown} are not among the model's labels {labels}")
    return table["actual"].map(labels.index).to_numpy()


def read_runs(paths: Sequence[str | Path]) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    """Labels, true label indices and each run's probabilities, clips in one order.

    Raises
    ------
    ValueError
        The files do not hold the same clips and labels.
    """
    tables, columns, labels = _tables(paths)
    for path, table in zip(paths, tables):
        if list(table.index) != list(tables[0].index):
            raise ValueError(f"{path}: not the same clips and labels as {paths[0]}")
    truth = _truth(tables[0], labels, paths[0])
    return labels, truth, [t[columns].to_numpy(dtype=np.float64) for t in tables]


def read_folds(paths: Sequence[str | Path]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels, true label indices and probabilities of the folds of one run, put together.

    The clips are in one order (sorted by clip id), so runs of the same folds line up.

    Raises
    ------
    ValueError
        The files do not hold the same labels, or two of them hold the same clip.
    """
    tables, columns, labels = _tables(paths)
    table = pd.concat(tables).sort_index()
    repeated = table.index[table.index.duplicated()]
    if len(repeated):
        raise ValueError(f"folds {list(map(str, paths))} share clips, e.g. {repeated[0]}: folds hold disjoint clips")
    return labels, _truth(table, labels, paths[0]), table[columns].to_numpy(dtype=np.float64)


def read_fold_runs(patterns: Sequence[str]) -> tuple[list[str], np.ndarray, list[np.ndarray], list[list[str]]]:
    """Runs made of folds: each glob pattern names one run's fold files (see :func:`read_folds`).

    Returns the labels, the true label indices, each run's probabilities and each run's files.

    Raises
    ------
    ValueError
        A pattern names no file, or the runs do not hold the same clips and labels.
    """
    files = [sorted(glob.glob(pattern)) for pattern in patterns]
    empty = [pattern for pattern, found in zip(patterns, files) if not found]
    if empty:
        raise ValueError(f"no files match {empty}")
    runs = [read_folds(found) for found in files]
    labels, truth, _ = runs[0]
    for pattern, (other_labels, other_truth, _) in zip(patterns, runs):
        if other_labels != labels or other_truth.tolist() != truth.tolist():
            raise ValueError(f"{pattern}: not the same clips and labels as {patterns[0]}")
    return labels, truth, [probabilities for _, _, probabilities in runs], files


def score(probabilities: np.ndarray, truth: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, UAR and per-class recall over the classes present, with and without calm folded into neutral."""
    out: dict[str, Any] = {}
    folded = probabilities.copy()
    if "calm" in labels and "neutral" in labels:
        folded[:, labels.index("neutral")] += folded[:, labels.index("calm")]
        folded[:, labels.index("calm")] = -1.0  # never the answer
    truth_folded = (
        np.where(truth == labels.index("calm"), labels.index("neutral"), truth) if "calm" in labels else truth
    )
    for name, p, y in (("labels", probabilities, truth), ("calm_as_neutral", folded, truth_folded)):
        answers = p.argmax(axis=1)
        recall = {labels[k]: float(np.mean(answers[y == k] == k)) for k in sorted(set(y.tolist()))}
        out[name] = {
            "accuracy": float(np.mean(answers == y)),
            "uar": float(np.mean(list(recall.values()))),
            "per_class_recall": recall,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Print each run's figures and the ensemble's; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="predictions.csv files of cross_corpus runs (--folds: glob patterns)")
    parser.add_argument("--folds", action="store_true", help="each run is a glob pattern of its folds' files")
    parser.add_argument("--json", default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if args.folds:
        labels, truth, runs, files = read_fold_runs(args.runs)
        names = [f"{pattern} ({len(found)} folds, {len(truth)} clips)" for pattern, found in zip(args.runs, files)]
    else:
        labels, truth, runs = read_runs(args.runs)
        names = [str(path) for path in args.runs]
    results = {name: score(p, truth, labels) for name, p in zip(names, runs)}
    if len(runs) > 1:
        results["mean of the runs"] = score(np.mean(runs, axis=0), truth, labels)
    per_run = [r["calm_as_neutral"]["uar"] for k, r in results.items() if k != "mean of the runs"]
    for name, result in results.items():
        own, folded = result["labels"], result["calm_as_neutral"]
        print(
            f"{name}: accuracy {own['accuracy']:.3f}, UAR {own['uar']:.3f} | calm as neutral: "
            f"accuracy {folded['accuracy']:.3f}, UAR {folded['uar']:.3f} ("
            + ", ".join(f"{k} {v:.2f}" for k, v in folded["per_class_recall"].items())
            + ")"
        )
    if len(runs) > 1:
        print(f"calm-as-neutral UAR per run: mean {np.mean(per_run):.3f}, sd {np.std(per_run, ddof=1):.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Experiment records: the compact DVC metrics the stages write, and Markdown tables built back from DVC.

What is a DVC metric here (what ``dvc exp show`` and ``dvc exp diff`` display) is kept short:

- ``metrics/cv/summary.json``: mean and standard deviation over the folds (:func:`write_cv_results`);
  every fold's report goes to ``metrics/cv/folds.json``, an output that is not a metric;
- ``metrics/baselines.json``: per feature set, the classical classifier chosen by the
  validation speakers and its test figures, and the majority baseline
  (:func:`headline_baselines`); the full table goes to ``metrics/baselines_table.json``.

``mmer report`` reads DVC's own experiment records (``dvc exp show --json``) and prints the
cross-validation table: one row per experiment with the params it changed, mean ± standard
deviation of accuracy, UAR and macro-F1 over the folds, and the majority baseline.
``--base NAME`` adds each experiment's difference from experiment NAME, paired over the folds
(the per-fold figures come from ``metrics/cv/folds.json`` in the experiment's commit)::

    dvc queue start -j 1            # after dvc exp run --queue -n NAME ... for each setting
    mmer report                     # runs dvc exp show --json itself
    mmer report --base best-one-model --out table.md
    dvc exp show --json > exps.json && mmer report --input exps.json

Folds run side by side (one queued experiment or one machine per fold, ``cv.folds=[k]``)
merge into the serial run's files with ``mmer report --merge RUN ... --out-dir metrics/cv``
(:func:`merge_fold_runs`)::

    mmer report --merge fold0 fold1 fold2 fold3 fold4 fold5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmer.errors import MmerError
from mmer.ravdess import EMOTIONS

logger = logging.getLogger(__name__)

CV_SUMMARY = "metrics/cv/summary.json"
CV_FOLDS = "metrics/cv/folds.json"
PARAMS_FILE = "params.yaml"
METRICS = ("accuracy", "uar", "macro_f1")
METRIC_NAMES = {"accuracy": "accuracy", "uar": "UAR", "macro_f1": "macro-F1"}
HEADLINE_KEYS = ("accuracy", "uar")


# ---------------------------------------------------------------- what the stages write


def cv_summary(per_fold: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``metrics/cv/summary.json`` from the folds' reports, in their order: the folds run, the
    clips tested, mean and standard deviation (ddof=0) of each metric and of the majority baseline.

    The ``cv`` stage and :func:`merge_fold_runs` (folds run side by side) both call it, so a
    cross-validation spread over several runs gives the serial run's summary.
    """
    import numpy as np

    from mmer.evaluation import METRIC_KEYS

    def spread(values: Sequence[float]) -> dict[str, float]:
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}

    summary: dict[str, Any] = {
        "enabled": True,
        "folds": [int(r["fold"]) for r in per_fold],
        "n": int(sum(r["n"] for r in per_fold)),
    }
    for key in METRIC_KEYS:
        summary[key] = spread([r[key] for r in per_fold])
        summary[f"majority_{key}"] = spread([r["majority"][key] for r in per_fold])
        if per_fold and all("tta" in r for r in per_fold):  # test-time augmented scores (the cache's speed copies)
            summary[f"tta_{key}"] = spread([r["tta"][key] for r in per_fold])
    return summary


def fold_run_reports(source: str, cwd: str | Path | None = None) -> list[dict[str, Any]]:
    """The per-fold reports of one run: a ``folds.json`` file, a folder holding one, or an experiment
    name or Git revision (its ``metrics/cv/folds.json``)."""
    path = Path(cwd or ".") / source
    if path.is_dir():
        path = path / "folds.json"
    if path.is_file():
        return json.loads(path.read_text())
    reports = git_fold_reports(experiment_rev(source, cwd), cwd)
    if reports is None:
        raise MmerError(
            f"{source}: not a folds.json, a folder with one, or a Git revision or experiment name with {CV_FOLDS}"
        )
    return reports


def merge_fold_runs(
    sources: Sequence[str], out_dir: str | Path, *, cwd: str | Path | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One cross-validation from folds run apart (``cv.folds=[k]`` per run): ``summary.json`` and
    ``folds.json`` in ``out_dir``, as one run of all those folds writes them (folds in ascending order).

    Raises
    ------
    MmerError
        A fold is in two runs, or a run has no cross-validation.
    """
    per_fold: dict[int, dict[str, Any]] = {}
    for source in sources:
        reports = fold_run_reports(source, cwd)
        if not reports:
            raise MmerError(f"{source}: ran no cross-validation (cv.enabled false?)")
        for report in reports:
            fold = int(report["fold"])
            if fold in per_fold:
                raise MmerError(f"fold {fold} is in two of the runs merged ({source} and an earlier one)")
            per_fold[fold] = report
    ordered = [per_fold[k] for k in sorted(per_fold)]
    summary = cv_summary(ordered)
    write_cv_results(out_dir, summary, ordered)
    return summary, ordered


def write_cv_results(out_dir: str | Path, summary: Mapping[str, Any], per_fold: Sequence[Mapping[str, Any]]) -> None:
    """``<out_dir>/summary.json`` (the DVC metric) and ``<out_dir>/folds.json`` (a list, empty when cv is off)."""
    from mmer.files import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(dict(summary), out_dir / "summary.json")
    write_json(list(per_fold), out_dir / "folds.json")


def headline_baselines(results: Mapping[str, Any]) -> dict[str, Any]:
    """The few figures of :func:`mmer.baselines.run_baselines`'s table that are a DVC metric.

    Per feature set, the classifier with the best validation UAR (ties: the first in the
    table's order), so the choice never looks at the test speakers; its test accuracy and
    UAR; and the majority baseline's.
    """
    out: dict[str, Any] = {"majority": {key: results["majority"][key] for key in HEADLINE_KEYS}}
    for feature_set, table in results.items():
        if feature_set in ("n", "majority") or not isinstance(table, Mapping) or not table:
            continue
        name = max(table, key=lambda c: (table[c].get("val_uar", float("-inf")), -list(table).index(c)))
        out[feature_set] = {"classifier": name, **{key: table[name][key] for key in HEADLINE_KEYS}}
    return out


# ---------------------------------------------------------------- reading dvc exp show --json


@dataclasses.dataclass
class Record:
    """One row of ``dvc exp show``: an experiment, a commit or the workspace."""

    name: str  # experiment name, branch/tag or short sha, or "workspace"
    rev: str
    kind: str  # experiment | commit | workspace
    baseline: str  # the rev of the commit it derives from (its own rev for a commit)
    params: dict[str, Any]  # flat: section.key -> value
    metrics: dict[str, dict[str, Any]]  # file -> its data
    status: str = ""

    @property
    def cv(self) -> dict[str, Any] | None:
        summary = self.metrics.get(CV_SUMMARY)
        return summary if summary and summary.get("enabled") else None


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _files(block: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {path: (entry or {}).get("data") or {} for path, entry in (block or {}).items()}


def _record(entry: Mapping[str, Any], *, kind: str, baseline: str, name: str | None) -> Record:
    data = entry.get("data") or {}
    rev = entry.get("rev") or data.get("rev") or ""
    params = _files(data.get("params"))
    meta = data.get("meta") or {}
    return Record(
        name=name or entry.get("name") or (rev if kind == "workspace" else rev[:7]),
        rev=rev,
        kind=kind,
        baseline=baseline,
        params=flatten(params.get(PARAMS_FILE, {})),
        metrics=_files(data.get("metrics")),
        status=str(data.get("status") or meta.get("status") or ""),
    )


def records(exp_show: Sequence[Mapping[str, Any]]) -> list[Record]:
    """Every row of ``dvc exp show --json`` output (DVC 3): workspace, commits and their experiments."""
    out = []
    for entry in exp_show:
        rev = entry.get("rev") or ""
        if rev == "workspace":
            out.append(_record(entry, kind="workspace", baseline="", name="workspace"))
            continue
        out.append(_record(entry, kind="commit", baseline=rev, name=entry.get("name")))
        for exp in entry.get("experiments") or []:
            revs = exp.get("revs") or []
            if revs:  # the last revision of an experiment (DVC 3 has no checkpoints: one)
                out.append(
                    _record(revs[0], kind="experiment", baseline=rev, name=exp.get("name") or revs[0].get("name"))
                )
    return out


def dvc_exp_show(args: Sequence[str] = (), cwd: str | Path | None = None) -> list[dict[str, Any]]:
    """``dvc exp show --json [args]``, parsed."""
    cmd = ["dvc", "exp", "show", "--json", *args]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise MmerError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


def git_fold_reports(rev: str, cwd: str | Path | None = None) -> list[dict[str, Any]] | None:
    """``metrics/cv/folds.json`` of commit ``rev`` (an experiment's), or None when git does not have it."""
    proc = subprocess.run(["git", "show", f"{rev}:{CV_FOLDS}"], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        return None
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        return None


def fold_reports_here(record: Record) -> list[dict[str, Any]] | None:
    """The per-fold reports of a row: from its commit, or for the workspace from ``metrics/cv/folds.json``."""
    if record.kind != "workspace":
        return git_fold_reports(record.rev)
    path = Path(CV_FOLDS)
    return json.loads(path.read_text()) if path.is_file() else None


def experiment_rev(name: str, cwd: str | Path | None = None) -> str:
    """The commit of experiment ``name`` (its ``refs/exps/.../name`` ref), or ``name`` itself (a revision)."""
    proc = subprocess.run(
        ["git", "for-each-ref", "--format=%(objectname) %(refname)", "refs/exps"],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    for line in proc.stdout.splitlines():
        sha, ref = line.split(" ", 1)
        if ref.rsplit("/", 1)[-1] == name:
            return sha
    return name


def combined_folds(fold_sets: Sequence[Sequence[Mapping[str, Any]]], *, view: str = "plain") -> dict[str, Any]:
    """Several cross-validations of the same folds scored as one ensemble: per fold, the mean of
    their test probabilities (``view``: ``plain``, or ``tta`` for test-time augmentation).

    Each ``fold_sets`` entry is one run's ``folds.json`` (which keeps ``test_probabilities``);
    the folds and clips they share are compared clip by clip. A classical run (``augmented``
    false: no test-time augmentation) joins the ``tta`` view with its plain probabilities. One run alone gives its own
    figures, with the confusion summed over its folds.

    Returns
    -------
    dict
        ``folds`` (fold -> accuracy, UAR, macro-F1), ``summary`` (mean and std over folds),
        ``per_class_recall`` (of the summed confusion), ``confusion`` (rows actual) and ``label_names``.
    """
    from mmer.evaluation import METRIC_KEYS, classification_metrics, confusion_matrix

    by_fold = [{r["fold"]: r for r in reports} for reports in fold_sets]
    shared = sorted(set.intersection(*(set(f) for f in by_fold)))
    if not shared:
        raise MmerError("the cross-validations share no fold")
    first = by_fold[0][shared[0]]
    # label order: recorded with the probabilities; runs before that record it follow RAVDESS's
    # emotion order (every label set does; per_class_recall's keys are sorted by name in the JSON)
    label_names = first.get("test_probabilities", {}).get("label_names") or [
        name for name in EMOTIONS.values() if name in first["per_class_recall"]
    ]
    folds, total = {}, np.zeros((len(label_names), len(label_names)), dtype=np.int64)
    every: dict[str, list] = {"clip_ids": [], "labels": [], "predicted": []}
    for fold in shared:
        kept = [runs[fold].get("test_probabilities") for runs in by_fold]
        # a classical run has no test-time augmentation: its plain probabilities stand in for tta
        kept = [k | {view: k["plain"]} if k is not None and k.get("augmented") is False else k for k in kept]
        if any(k is None or view not in k for k in kept):
            raise MmerError(f"fold {fold}: a run kept no {view} test probabilities (older than this option)")
        ids = kept[0]["clip_ids"]
        if any(k["clip_ids"] != ids for k in kept):
            raise MmerError(f"fold {fold}: the runs tested different clips")
        probabilities = np.mean([np.asarray(k[view]) for k in kept], axis=0)
        labels, predicted = np.asarray(kept[0]["labels"]), probabilities.argmax(axis=1)
        metrics = classification_metrics(labels, predicted, label_names=label_names)
        folds[fold] = {key: metrics[key] for key in METRIC_KEYS}
        total += confusion_matrix(labels, predicted, n_classes=len(label_names))
        for key, values in (("clip_ids", ids), ("labels", labels), ("predicted", predicted)):
            every[key].extend(values)
    recall = total.diagonal() / np.maximum(total.sum(axis=1), 1)
    return {
        "folds": folds,
        "summary": {key: _mean_std_of([f[key] for f in folds.values()]) for key in METRIC_KEYS},
        "per_class_recall": dict(zip(label_names, recall.round(3).tolist())),
        "confusion": total.tolist(),
        "label_names": label_names,
        "by_sex": by_sex(every["clip_ids"], every["labels"], every["predicted"], label_names=label_names),
    }


def sex_of(clip_id: str) -> str:
    """The speaker's sex that a clip's name gives (:mod:`mmer.corpora`: RAVDESS's odd actors are
    male, SAVEE's speakers male ...), or ``unknown`` for a name no corpus naming reads."""
    from mmer.config import CORPORA
    from mmer.corpora import parse_clip
    from mmer.errors import DatasetError

    try:
        return parse_clip(clip_id, [c for c in CORPORA if c != "manifest"]).sex
    except DatasetError:
        return "unknown"


def by_sex(
    clip_ids: Sequence[str], labels: Sequence[int], predicted: Sequence[int], *, label_names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Accuracy and UAR of the clips of each speaker sex (:func:`sex_of`): ``{sex: {n, accuracy, uar}}``."""
    from mmer.evaluation import classification_metrics

    sexes = np.asarray([sex_of(c) for c in clip_ids])
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    out = {}
    for sex in sorted(set(sexes.tolist())):
        chosen = sexes == sex
        metrics = classification_metrics(labels[chosen], predicted[chosen], label_names=label_names)
        out[sex] = {"n": int(chosen.sum()), "accuracy": metrics["accuracy"], "uar": metrics["uar"]}
    return out


def _mean_std_of(values: Sequence[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def combined_text(result: Mapping[str, Any], names: Sequence[str], view: str) -> str:
    """Markdown of :func:`combined_folds`: the folds, the summary, per-class recall and the confusion."""
    folds = result["folds"]
    lines = [
        f"{' + '.join(names)} ({view}): accuracy {result['summary']['accuracy']['mean']:.3f} ± "
        f"{result['summary']['accuracy']['std']:.3f}, UAR {result['summary']['uar']['mean']:.3f}, "
        f"macro-F1 {result['summary']['macro_f1']['mean']:.3f}",
        "",
        "| fold | " + " | ".join(str(f) for f in folds) + " |",
        "| --- |" + " --- |" * len(folds),
        "| accuracy | " + " | ".join(f"{f['accuracy']:.3f}" for f in folds.values()) + " |",
        "",
        "By the speaker's sex (all folds' clips): "
        + "; ".join(
            f"{sex} {v['n']} clips, accuracy {v['accuracy']:.3f}, UAR {v['uar']:.3f}"
            for sex, v in result["by_sex"].items()
        ),
        "",
        "| actual \\ predicted | " + " | ".join(result["label_names"]) + " | recall |",
        "| --- |" + " ---: |" * (len(result["label_names"]) + 1),
    ]
    for name, row in zip(result["label_names"], result["confusion"]):
        recall = result["per_class_recall"][name]
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + f" | {recall:.3f} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- tables


def value_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def changes(params: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, Any]:
    """The params of ``params`` that differ from ``reference`` (a key missing there counts as changed)."""
    missing = object()
    return {key: value for key, value in params.items() if reference.get(key, missing) != value}


def mean_std(summary: Mapping[str, Any], key: str) -> str:
    cell = summary.get(key)
    if not isinstance(cell, Mapping) or "mean" not in cell:
        return "-"
    return f"{cell['mean']:.3f} ± {cell.get('std', 0.0):.3f}"


def row_folds(record: Record) -> list[int]:
    """The folds a row's cross-validation ran: its summary's (DVC drops lists from metrics), else
    ``cv.folds``, else every fold (``index.n_folds``)."""
    folds = (
        (record.cv or {}).get("folds")
        or record.params.get("cv.folds")
        or range(int(record.params.get("index.n_folds") or 0))
    )
    return sorted(int(k) for k in folds)


def folds_text(record: Record) -> str:
    folds = row_folds(record)
    n_folds = record.params.get("index.n_folds")
    if n_folds is not None and folds == list(range(int(n_folds))):
        return f"all {n_folds}"
    return ",".join(str(k) for k in folds) or "?"


def cv_rows(all_records: Iterable[Record], *, include_workspace: bool = False) -> list[Record]:
    """The records with a cross-validation summary (cv.enabled), best mean accuracy first."""
    rows = [r for r in all_records if r.cv and (include_workspace or r.kind != "workspace")]
    return sorted(rows, key=lambda r: -float(r.cv["accuracy"]["mean"]))


def _reference_params(rows: Sequence[Record], all_records: Sequence[Record]) -> dict[str, Any]:
    commits = {r.rev: r.params for r in all_records if r.kind == "commit"}
    for row in rows:
        if row.baseline in commits:
            return commits[row.baseline]
    return {}


def cv_table(all_records: Sequence[Record], *, include_workspace: bool = False) -> str:
    """The Markdown cross-validation table of every experiment that ran it.

    A row's ``params`` are those it changed from the params of the commit it derives from,
    less those every row changed alike (listed once above the table).
    """
    rows = cv_rows(all_records, include_workspace=include_workspace)
    if not rows:
        return "No experiment with a cross-validation summary (run one with: dvc exp run -S cv.enabled=true).\n"
    reference = _reference_params(rows, all_records)
    changed = [changes(r.params, reference) for r in rows]
    common = (
        {k: v for k, v in changed[0].items() if all(k in c and c[k] == v for c in changed[1:])} if len(rows) > 1 else {}
    )
    lines = []
    if common:
        lines.append("Every row: " + ", ".join(f"`{k}={value_text(v)}`" for k, v in sorted(common.items())) + "\n")
    lines.append(
        "| experiment | params (changed from the commit's params.yaml) | folds | accuracy | UAR | macro-F1 | majority acc. |"
    )
    lines.append("| --- | --- | --- | --- | --- | --- | --- |")
    for row, change in zip(rows, changed):
        own = {k: v for k, v in change.items() if k not in common}
        params_text = ", ".join(f"{k}={value_text(v)}" for k, v in sorted(own.items())) or "(none)"
        cells = [mean_std(row.cv, key) for key in METRICS]
        majority = row.cv.get("majority_accuracy", {}).get("mean")
        lines.append(
            f"| {row.name} | {params_text} | {folds_text(row)} | {' | '.join(cells)} | "
            f"{'-' if majority is None else f'{majority:.3f}'} |"
        )
    return "\n".join(lines) + "\n"


def fold_accuracies(reports: Sequence[Mapping[str, Any]] | None) -> dict[int, float] | None:
    if not reports:
        return None
    return {int(r["fold"]): float(r["accuracy"]) for r in reports}


def ablation_table(
    all_records: Sequence[Record],
    base: str,
    *,
    fold_reports: Callable[[Record], Sequence[Mapping[str, Any]] | None] = lambda r: None,
    include_workspace: bool = False,
) -> str:
    """Each cross-validated experiment on the folds of experiment ``base``, by what it changed from it.

    Δ is the difference in mean accuracy; ``better / worse`` counts the folds, paired, when
    ``fold_reports`` gives both runs' per-fold reports (else "-").
    """
    rows = cv_rows(all_records, include_workspace=include_workspace)
    base_row = next((r for r in rows if r.name == base), None)
    if base_row is None:
        raise MmerError(f"no cross-validated experiment named {base!r} (have: {[r.name for r in rows]})")
    base_folds = row_folds(base_row)
    base_acc = float(base_row.cv["accuracy"]["mean"])
    base_per_fold = fold_accuracies(fold_reports(base_row))
    lines = [
        f"| change from `{base}` | accuracy | Δ accuracy | folds better / worse | UAR | experiment |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        if row_folds(row) != base_folds:
            continue
        change = changes(row.params, base_row.params)
        dropped = sorted(set(base_row.params) - set(row.params))
        label = (
            ", ".join([f"{k}={value_text(v)}" for k, v in sorted(change.items())] + [f"-{k}" for k in dropped])
            or "(none: the base)"
        )
        acc = float(row.cv["accuracy"]["mean"])
        paired = "-"
        per_fold = fold_accuracies(fold_reports(row)) if row is not base_row else base_per_fold
        if base_per_fold and per_fold and set(per_fold) == set(base_per_fold):
            better = sum(per_fold[k] > base_per_fold[k] for k in per_fold)
            worse = sum(per_fold[k] < base_per_fold[k] for k in per_fold)
            paired = f"{better} / {worse}"
        uar = row.cv.get("uar", {}).get("mean")
        lines.append(
            f"| {label} | {mean_std(row.cv, 'accuracy')} | {acc - base_acc:+.3f} | {paired} | "
            f"{'-' if uar is None else f'{uar:.3f}'} | {row.name} |"
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- mmer report


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", help="a saved `dvc exp show --json` output (default: run it here)")
    parser.add_argument(
        "--base", help="also a table of each experiment's change from this experiment, paired over folds"
    )
    parser.add_argument("--workspace", action="store_true", help="include the workspace row")
    parser.add_argument("--out", help="write the Markdown here too")
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="RUN",
        help="instead: merge cross-validations of some folds each (folds.json files, folders, experiment names "
        "or Git revisions) into one summary.json and folds.json in --out-dir, as one run of all the folds writes them",
    )
    parser.add_argument("--out-dir", default="metrics/cv", help="with --merge: where to write them")
    parser.add_argument(
        "--combine",
        nargs="+",
        metavar="EXP",
        help="instead: score these cross-validations (folds.json files, folders, experiment names or revisions) "
        "as one ensemble, averaging each test clip's probabilities; one alone gives its confusion and per-class recall",
    )
    parser.add_argument(
        "--tta", action="store_true", help="with --combine: the test-time augmented probabilities (speed copies)"
    )
    parser.add_argument(
        "exp_show_args", nargs="*", metavar="DVC_ARG", help="passed to dvc exp show (after --), e.g. -- -A"
    )


def run(args: argparse.Namespace) -> int:
    if args.merge:
        summary, _ = merge_fold_runs(args.merge, args.out_dir)
        print(
            f"folds {summary['folds']}: accuracy {mean_std(summary, 'accuracy')}, UAR {mean_std(summary, 'uar')} "
            f"-> {Path(args.out_dir) / 'summary.json'}"
        )
        return 0
    if args.combine:
        view = "tta" if args.tta else "plain"
        fold_sets = [fold_run_reports(name) for name in args.combine]
        text = combined_text(combined_folds(fold_sets, view=view), args.combine, view)
        print(text, end="")
        if args.out:
            Path(args.out).write_text(text)
        return 0
    data = json.loads(Path(args.input).read_text()) if args.input else dvc_exp_show(args.exp_show_args)
    all_records = records(data)
    text = cv_table(all_records, include_workspace=args.workspace)
    if args.base:
        text += "\n" + ablation_table(
            all_records, args.base, fold_reports=fold_reports_here, include_workspace=args.workspace
        )
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0

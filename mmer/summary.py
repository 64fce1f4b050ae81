"""``mmer summary``: what the pipeline trained and how it scored, as a short table.

Reads the metrics files that are there (any may be missing) in a project folder:

- ``metrics/eval.json`` (stage ``evaluate``): the model on the test speakers, and the
  majority class;
- ``metrics/train/metrics.json`` and ``metrics/train/params.yaml`` (stage ``train``): what
  was trained;
- ``metrics/cv/summary.json`` (stage ``cv``, when it ran);
- ``metrics/baselines.json`` (stage ``baselines``): per feature set, the classifier with
  the best *validation* UAR (the test speakers choose nothing);

and, with DVC at hand, the experiments of the current commit (``dvc exp show --json``), so
that ``dvc exp run -n audio-only -S ...`` runs show beside the fused model. ``make demo``
ends with it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

logger = logging.getLogger(__name__)

EVAL = Path("metrics/eval.json")
TRAIN_METRICS = Path("metrics/train/metrics.json")
TRAIN_PARAMS = Path("metrics/train/params.yaml")
CV_SUMMARY = Path("metrics/cv/summary.json")
BASELINES = Path("metrics/baselines.json")
MODEL_NAMES = {"av": "fused (audio + video)", "audio": "audio-only", "video": "video-only"}
COLUMNS = ("accuracy", "uar", "macro_f1")
HEADERS = ("accuracy", "UAR", "macro-F1")


@dataclass
class Row:
    """One line of the table: a name, mean scores, and their spread over folds if any."""

    name: str
    scores: dict[str, float]
    spread: dict[str, float] | None = None
    note: str = ""


def read_json(path: Path) -> Any:
    """The JSON at ``path``, or None when it is missing or unreadable (with a debug line)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        logger.debug("%s: %s", path, err)
        return None


def model_inputs(report: Mapping[str, Any] | None, params: Mapping[str, Any] | None = None) -> str | None:
    """What a model read (``av``, ``audio`` or ``video``), from its eval report or its params."""
    for source in (report or {}, (params or {}).get("model", {})):
        for key in ("model_inputs", "inputs"):
            value = source.get(key)
            if isinstance(value, str):
                return value
    return None


def model_row(report: Mapping[str, Any], inputs: str | None, note: str = "") -> Row:
    return Row(
        MODEL_NAMES.get(inputs or "", f"model ({inputs or 'unknown inputs'})"),
        {k: report[k] for k in COLUMNS if k in report},
        note=note,
    )


def best_baselines(baselines: Mapping[str, Any]) -> list[Row]:
    """Per feature set, the classifier with the best validation UAR (test UAR when none is recorded)."""
    rows = []
    for feature_set, results in baselines.items():
        if not isinstance(results, Mapping) or feature_set == "majority":
            continue
        if isinstance(results.get("classifier"), str):  # the headline form: the stage already chose on validation
            results = {results["classifier"]: results}
        scored = {name: r for name, r in results.items() if isinstance(r, Mapping) and "accuracy" in r}
        if not scored:
            continue
        name = max(scored, key=lambda n: (scored[n].get("val_uar", scored[n].get("uar", 0.0)), n))
        rows.append(
            Row(
                f"baseline {'audio+video' if feature_set == 'av' else feature_set}: {name}",
                {k: scored[name][k] for k in COLUMNS if k in scored[name]},
            )
        )
    return rows


def experiment_rows(exp_show: Sequence[Mapping[str, Any]], eval_path: Path = EVAL) -> list[Row]:
    """One row per commit and experiment of ``dvc exp show --json`` with evaluate metrics
    (the workspace is read from its files instead)."""
    rows = []
    for commit in exp_show:
        if commit.get("rev") != "workspace":
            report = ((((commit.get("data") or {}).get("metrics") or {}).get(str(eval_path))) or {}).get("data")
            if report:
                params = ((((commit.get("data") or {}).get("params") or {}).get("params.yaml")) or {}).get("data")
                rows.append(
                    model_row(
                        report,
                        model_inputs(report, params),
                        note=f"commit {commit.get('name') or str(commit.get('rev', ''))[:7]}",
                    )
                )
        for experiment in commit.get("experiments") or ():
            revs = experiment.get("revs") or []
            data = (revs[0].get("data") if revs else None) or {}
            report = ((data.get("metrics") or {}).get(str(eval_path)) or {}).get("data")
            if not report:
                continue
            params = ((data.get("params") or {}).get("params.yaml") or {}).get("data")
            name = experiment.get("name") or revs[0].get("name") or str(revs[0].get("rev", ""))[:7]
            rows.append(model_row(report, model_inputs(report, params), note=f"exp {name}"))
    return rows


def dvc_experiments(root: Path) -> list[Mapping[str, Any]]:
    """``dvc exp show --json`` in ``root``, or [] when DVC is missing or says no."""
    dvc = shutil.which("dvc")
    if dvc is None or not (root / ".dvc").is_dir():
        return []
    try:
        done = subprocess.run(
            [dvc, "exp", "show", "--json"], cwd=root, capture_output=True, text=True, timeout=120, check=True
        )
        return json.loads(done.stdout)
    except (subprocess.SubprocessError, ValueError) as err:
        logger.debug("dvc exp show: %s", err)
        return []


def collect(root: str | Path = ".", experiments: Sequence[Mapping[str, Any]] = ()) -> tuple[list[str], list[Row]]:
    """The summary of a project folder: heading lines and table rows (see the module doc)."""
    root = Path(root)
    report = read_json(root / EVAL)
    train = read_json(root / TRAIN_METRICS)
    params = _read_yaml(root / TRAIN_PARAMS)
    inputs = model_inputs(report, params)
    heading, rows = [], []
    if train:
        heading.append("trained: " + trained_line(train, inputs, params))
    if report:
        heading.append(f"scored on the {report.get('split', 'test')} speakers' {report.get('n', '?')} clips")
        rows.append(model_row(report, inputs, note="this workspace"))
    known = {_key(r) for r in rows}
    for row in experiment_rows(experiments):
        if rows and _key(row) == _key(rows[0]):  # the workspace holds this experiment's results
            rows[0].note = f"this workspace = {row.note}"
        elif _key(row) not in known:
            rows.append(row)
        known.add(_key(row))
    cv = read_json(root / CV_SUMMARY)
    if cv and cv.get("enabled"):
        rows.append(
            Row(
                f"cross-validation, {len(cv.get('folds', []))} folds",
                {k: cv[k]["mean"] for k in COLUMNS if k in cv},
                {k: cv[k]["std"] for k in COLUMNS if k in cv},
                note="mean±std over folds",
            )
        )
    baselines = read_json(root / BASELINES)
    if baselines:
        rows.extend(best_baselines(baselines))
    majority = (report or {}).get("majority") or (baselines or {}).get("majority")
    if majority:
        rows.append(
            Row(f"majority (always {majority.get('class', '?')})", {k: majority[k] for k in COLUMNS if k in majority})
        )
    return heading, rows


def trained_line(train: Mapping[str, Any], inputs: str | None, params: Mapping[str, Any] | None) -> str:
    model = (params or {}).get("model", {})
    parts = [
        f"{inputs or '?'} model" + (f", {model['fusion']} fusion" if inputs == "av" and model.get("fusion") else "")
    ]
    ensemble = (params or {}).get("train", {}).get("ensemble", 1)
    if isinstance(ensemble, int) and ensemble > 1:
        parts.append(f"ensemble of {ensemble}")
    if "epochs_run" in train:
        parts.append(
            f"{train['epochs_run']} epochs" + (f" (best {train['best_epoch']})" if "best_epoch" in train else "")
        )
    if "train_seconds" in train:
        parts.append(f"{train['train_seconds'] / 60:.1f} min")
    if "n_parameters" in train:
        n = train["n_parameters"]
        parts.append(f"{n / 1000:.1f}k parameters" if n >= 10_000 else f"{n} parameters")
    if "n_train" in train:
        parts.append(f"{train['n_train']} training clips")
    return ", ".join(parts)


def format_table(heading: Sequence[str], rows: Sequence[Row]) -> str:
    """The summary as text: heading lines, then one line per row."""
    if not rows and not heading:
        return "no metrics yet: run `make demo` (or `dvc repro`) first"

    def cell(row: Row, key: str) -> str:
        value = row.scores.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{value:.3f}" + (f"±{row.spread[key]:.3f}" if row.spread and key in row.spread else "")

    table = [("model", *HEADERS, "")] + [(row.name, *(cell(row, k) for k in COLUMNS), row.note) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS) + 1)]
    lines = list(heading)
    for line in table:
        text = line[0].ljust(widths[0]) + "".join(
            "  " + value.rjust(width) for value, width in zip(line[1:-1], widths[1:])
        )
        lines.append((text + ("  " + line[-1] if line[-1] else "")).rstrip())
    if any(r.name.startswith("baseline ") for r in rows):
        lines.append("(baseline per feature set: the classifier with the best validation UAR)")
    return "\n".join(lines)


def summarise(root: str | Path = ".", *, experiments: bool = True) -> str:
    """The text ``mmer summary`` prints for the project folder ``root``."""
    root = Path(root)
    return format_table(*collect(root, dvc_experiments(root) if experiments else ()))


def _key(row: Row) -> tuple[Any, ...]:
    return (row.name, *(round(row.scores.get(k, math.nan), 6) for k in COLUMNS))


def _read_yaml(path: Path) -> dict[str, Any] | None:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        logger.debug("%s: %s", path, err)
        return None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", nargs="?", default=".", help="project folder (with metrics/)")
    parser.add_argument(
        "--no-experiments", action="store_true", help="do not ask DVC for the experiments of this commit"
    )


def run(args: argparse.Namespace) -> int:
    print(summarise(args.root, experiments=not args.no_experiments))
    return 0

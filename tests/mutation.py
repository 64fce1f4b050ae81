"""Mutation score of the modules that decide what a figure means (``make mutation``).

For each target module, mutmut 3 mutates the module (or only the named functions) in a
scratch copy of the repository and runs the fast tests that test it; a mutant survives when
they all still pass. Each run's counts go to ``docs/mutation.json`` under a label (``after``
for the current tree, ``before`` for an older checkout given with ``--root``); the table in
``docs/mutation.md`` (between its ``mutation-table`` markers) is rewritten from that file, and
the current tree's surviving mutants' diffs go to ``docs/mutation-survivors.txt``.

Usage: ``python tests/mutation.py [module ...] [--minutes N] [--root DIR --label before]``
(default: every target, the current tree). Not run in CI: about half an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# the fast tests of the audio functions in test_speech.py (the rest of it trains models)
SPEECH_FEATURE_TESTS = [
    "tests/test_speech.py::" + name
    for name in (
        "test_log_mel_frames_match_mfcc_and_find_the_tone",
        "test_feature_options_columns_and_normalisation",
        "test_speaker_standardise_uses_each_speakers_frames",
        "test_speed_and_pitch_perturbation",
        "test_bad_perturbation_names_raise",
    )
]

# module -> (pytest selection, functions to mutate: empty = the whole module). The selected tests must
# not run TensorFlow: mutmut forks each mutant's tests from the process that ran them all once, and
# TensorFlow hangs in a child forked after it ran, so every such mutant would "time out" and count as
# caught. (mutmut's fork server avoids that, but is several times slower here.)
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "ravdess": (["tests/test_corpus.py", "tests/test_labels.py"], []),
    "labels": (["tests/test_labels.py", "tests/test_corpus.py"], []),
    "splits": (["tests/test_splits.py", "tests/test_corpus.py"], []),
    # the metrics, the majority baseline and the split evaluate scores; not evaluate_stage (files and
    # figures around evaluate_split; its test trains no model but runs keras, 10 s a mutant here) nor
    # perturbed_average_proba (test-time augmentation, test_training.py)
    "evaluation": (
        ["tests/test_evaluation.py", "-k", "not evaluate_stage"],
        [
            "confusion_matrix",
            "_check_confusion",
            "accuracy",
            "per_class_recall",
            "unweighted_average_recall",
            "macro_f1",
            "classification_metrics",
            "majority_class",
            "majority_baseline",
            "evaluation_report",
            "predictions_table",
            "evaluate_split",
        ],
    ),
    # the features, the classifiers, C chosen on validation and the table; not zero_shot_scores (the
    # FER2013 network, test_face_expression.py) nor baselines_stage (file I/O around run_baselines; its
    # test runs the FER2013 network: mutants of the zero-shot line of run_baselines count as untested)
    "baselines": (
        ["tests/test_baselines.py", "-k", "not stage"],
        ["mfcc_statistics", "face_descriptor", "pooled_features", "make_classifier", "fit_classifier", "run_baselines"],
    ),
    "audio": (["tests/test_audio.py", *SPEECH_FEATURE_TESTS], []),
    # the face box and crop geometry; the detector and the video batch are tested end to end
    "faces": (
        ["tests/test_faces.py", "-k", "square_box or crop_face or fill_missing"],
        ["square_box", "crop_face", "fill_missing_boxes"],
    ),
}
COPIED = ("mmer", "tests", "bench", "params.yaml", "pyproject.toml", "presets")
# a log line decides no figure: its message is not mutated
DO_NOT_MUTATE = [r"^\s*logger\.\w+\("]
CAUGHT = ("killed", "timeout", "segfault", "caught by type check")
TABLE_START, TABLE_END = "<!-- mutation-table: start -->", "<!-- mutation-table: end -->"


def mutmut_config(module: str, tests: list[str]) -> str:
    """The ``[tool.mutmut]`` section for one target module."""
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["mmer/"]\n'
        f'only_mutate = ["mmer/{module}.py"]\n'
        'also_copy = ["bench/", "params.yaml", "presets/"]\n'
        f"do_not_mutate_patterns = {json.dumps(DO_NOT_MUTATE)}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    )


def _exists(root: Path, test: str) -> bool:
    """Whether a pytest path or node id (``file.py::test``) exists in the checkout ``root``."""
    if not test.startswith("tests/"):
        return True  # an option such as -k
    path, _, name = test.partition("::")
    return (root / path).is_file() and (not name or f"def {name}(" in (root / path).read_text())


def mutant_patterns(module: str, functions: list[str]) -> list[str]:
    """mutmut's mutant-name globs for ``functions`` of ``module`` (methods: ``Class.method``)."""
    patterns = []
    for function in functions:
        owner, _, name = function.rpartition(".")
        patterns.append(f"mmer.{module}.x{'ǁ' + owner + 'ǁ' if owner else '_'}{name}__mutmut_*")
    return patterns


def run_module(module: str, *, minutes: float, children: int, root: Path = ROOT) -> dict[str, Any]:
    """Mutate one target module in a scratch copy of ``root`` and count the outcomes."""
    tests, functions = TARGETS[module]
    # another checkout's tests (--root, for a before/after comparison) may lack some tests
    tests = [t for t in tests if _exists(root, t)]
    patterns = mutant_patterns(module, functions)
    commit = commit_of(root)  # of the tree copied next
    scratch = Path(tempfile.mkdtemp(prefix=f"mmer-mutation-{module}-"))
    for name in COPIED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, scratch / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            shutil.copy2(source, scratch / name)
    with open(scratch / "pyproject.toml", "a") as toml:
        toml.write(mutmut_config(module, tests))
    mutmut = [sys.executable, "-m", "mutmut"]
    env = dict(os.environ, PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    started = datetime.datetime.now()
    try:
        run = subprocess.run(
            [*mutmut, "run", "--max-children", str(children), *patterns],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=minutes * 60,
        )
        timed_out = False
        if run.returncode:
            print(run.stdout[-3000:], run.stderr[-3000:], file=sys.stderr)
    except subprocess.TimeoutExpired:
        timed_out = True
    seconds = (datetime.datetime.now() - started).total_seconds()
    results = subprocess.run(
        [*mutmut, "results", "--all", "true"], cwd=scratch, env=env, capture_output=True, text=True
    ).stdout
    statuses: dict[str, str] = {}
    for line in results.splitlines():
        match = re.match(r"\s*(mmer\.\S+): (.+)$", line)
        if match and (not patterns or any(fnmatch.fnmatchcase(match[1], p) for p in patterns)):
            statuses[match[1]] = match[2].strip()
    survivors = sorted(name for name, status in statuses.items() if status in ("survived", "no tests"))
    diffs = []
    for name in survivors:
        shown = subprocess.run([*mutmut, "show", name], cwd=scratch, env=env, capture_output=True, text=True)
        diffs.append(f"### {name}\n{shown.stdout.strip()}\n")
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "counts": counts,
        "total": len(statuses),
        "survivors": survivors,
        "diffs": diffs,
        "timed_out": timed_out,
        "seconds": round(seconds),
        "tests": tests,
        "functions": functions or "all",
        "commit": commit,
    }


def score(counts: dict[str, int]) -> tuple[int, int]:
    """(caught, judged): a mutant is caught when a test fails, times out or crashes; one that no
    test runs counts as a survivor; one left unchecked at the time limit is not judged."""
    caught = sum(counts.get(k, 0) for k in CAUGHT)
    return caught, caught + counts.get("survived", 0) + counts.get("no tests", 0)


def _cell(entry: dict[str, Any] | None) -> str:
    """``killed/judged (score)`` of one run, with its unchecked mutants if any."""
    if entry is None:
        return "not run"
    caught, judged = score(entry["counts"])
    unchecked = entry["total"] - judged
    text = f"{caught}/{judged} ({caught / judged:.1%})" if judged else "none judged"
    if unchecked:
        text += f", {unchecked} of {entry['total']} not run (time limit)"
    return text


def render_table(record: dict[str, Any]) -> str:
    """The before/after table of ``docs/mutation.json`` as markdown."""
    lines = [
        "| module | functions mutated | before | after | minutes (before, after) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for module in TARGETS:
        before, after = (record.get(label, {}).get("modules", {}).get(module) for label in ("before", "after"))
        functions = (after or before or {}).get("functions", "all")
        named = "all" if functions == "all" else ", ".join(f"`{f}`" for f in functions)
        minutes = ", ".join(f"{e['seconds'] / 60:.1f}" if e else "-" for e in (before, after))
        lines.append(f"| `mmer/{module}.py` | {named} | {_cell(before)} | {_cell(after)} | {minutes} |")
    sources = []
    for label in ("before", "after"):
        if label in record:
            commits = sorted({e.get("commit", record[label]["commit"]) for e in record[label]["modules"].values()})
            sources.append(f"{label}: commit {', '.join(commits)} ({record[label]['date']})")
    lines += ["", "Cells: caught/judged (score). Commits the modules were run at: " + "; ".join(sources) + "."]
    return "\n".join(lines)


def write_report(record: dict[str, Any], path: Path) -> None:
    """Rewrite the table between the markers of ``path`` (a new file gets a heading first)."""
    table = f"{TABLE_START}\n{render_table(record)}\n{TABLE_END}"
    text = path.read_text() if path.is_file() else f"# Mutation score\n\n{TABLE_START}\n{TABLE_END}\n"
    start, end = text.index(TABLE_START), text.index(TABLE_END) + len(TABLE_END)
    path.write_text(text[:start] + table + text[end:])


def commit_of(root: Path) -> str:
    """The short commit of a checkout, with ``+changes`` when its tree differs from it."""
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(root), "status", "--porcelain", "--", *COPIED], capture_output=True, text=True
    )
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(TARGETS), help="target modules (default: all)")
    parser.add_argument("--minutes", type=float, default=15.0, help="time limit per module (default: %(default)s)")
    parser.add_argument("--children", type=int, default=1, help="parallel mutmut workers (default: %(default)s)")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose code and tests to use")
    parser.add_argument("--label", default="after", help="column of the table (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DOCS / "mutation.md", help="report (default: %(default)s)")
    args = parser.parse_args()
    unknown = sorted(set(args.modules) - set(TARGETS))
    if unknown:
        parser.error(f"unknown modules {unknown}; targets: {list(TARGETS)}")
    record_path = args.out.with_suffix(".json")
    commit, date = commit_of(args.root), datetime.date.today().isoformat()
    for module in args.modules:
        result = run_module(module, minutes=args.minutes, children=args.children, root=args.root)
        diffs = result.pop("diffs")
        print(f"mmer/{module}.py: {result['counts']} -> {_cell(result)}", flush=True)
        # read again: a run of the other label may have written meanwhile
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        entry = record.setdefault(args.label, {"modules": {}})
        entry.update(commit=commit, date=date)
        entry["modules"][module] = result
        record_path.write_text(json.dumps(record, indent=1) + "\n")
        write_report(record, args.out)
        if args.root.resolve() == ROOT:
            _write_survivors(module, diffs, args.out.parent / "mutation-survivors.txt")


def _write_survivors(module: str, diffs: list[str], path: Path) -> None:
    """Replace ``module``'s section of the survivors file with this run's diffs."""
    sections = re.split(r"(?m)^(?=## mmer/)", path.read_text()) if path.is_file() else []
    kept = [s for s in sections if s.startswith("## mmer/") and not s.startswith(f"## mmer/{module}.py")]
    kept.append(f"## mmer/{module}.py\n\n" + ("\n".join(diffs) or "no survivors\n") + "\n")
    order = {f"## mmer/{m}.py": k for k, m in enumerate(TARGETS)}
    kept.sort(key=lambda s: order.get(s.split("\n", 1)[0], len(order)))
    path.write_text("".join(kept))


if __name__ == "__main__":
    main()

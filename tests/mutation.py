"""Mutation score of the modules that decide what a figure means (``make mutation``).

For each target module, mutmut 3 mutates the module (or only the named functions) in a
scratch copy of the repository and runs the fast test modules that test it; a mutant
survives when they all still pass. The score per module goes to ``docs/mutation.md`` and
the surviving mutants' diffs to ``docs/mutation-survivors.txt``.

Usage: ``python tests/mutation.py [module ...] [--minutes N]`` (default: every target,
5 minutes each). Not run in CI: it takes a few minutes per module on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module -> (test selection for pytest, mutant-name patterns: empty = the whole module)
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "ravdess": (["tests/test_corpus.py", "tests/test_labels.py"], []),
    "labels": (["tests/test_labels.py", "tests/test_corpus.py"], []),
    "splits": (["tests/test_splits.py", "tests/test_corpus.py"], []),
    "evaluation": (["tests/test_evaluation.py"], []),
    "baselines": (["tests/test_baselines.py"], []),
    "audio": (["tests/test_audio.py"], []),
    # the face box and crop geometry; the detector and the video batch are tested end to end
    "faces": (
        ["tests/test_faces.py", "-k", "square_box or crop_face or fill_missing"],
        ["mmer.faces.x_square_box*", "mmer.faces.x_crop_face*", "mmer.faces.x_fill_missing_boxes*"],
    ),
}
COPIED = ("mmer", "tests", "bench", "params.yaml", "pyproject.toml", "presets")


def mutmut_config(module: str, tests: list[str]) -> str:
    quoted = ", ".join(f'"{t}"' for t in tests)
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["mmer/"]\n'
        f'only_mutate = ["mmer/{module}.py"]\n'
        'also_copy = ["bench/", "params.yaml", "presets/"]\n'
        f"pytest_add_cli_args_test_selection = [{quoted}]\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]\n'
    )


def run_module(module: str, *, minutes: float, children: int, root: Path = ROOT) -> dict[str, object]:
    tests, patterns = TARGETS[module]
    # another checkout's tests (--root, for a before/after comparison) may lack some test modules
    tests = [t for t in tests if not t.endswith(".py") or (root / t).is_file()]
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
    results = subprocess.run(
        [*mutmut, "results", "--all", "true"], cwd=scratch, env=env, capture_output=True, text=True
    ).stdout
    statuses: dict[str, str] = {}
    for line in results.splitlines():
        match = re.match(r"\s*(mmer\.\S+): (.+)$", line)
        if match and (not patterns or any(_glob(match[1], p) for p in patterns)):
            statuses[match[1]] = match[2].strip()
    survivors = [name for name, status in statuses.items() if status == "survived"]
    diffs = []
    for name in survivors:
        shown = subprocess.run([*mutmut, "show", name], cwd=scratch, env=env, capture_output=True, text=True)
        diffs.append(f"### {name}\n{shown.stdout.strip()}\n")
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "module": module,
        "counts": counts,
        "total": len(statuses),
        "survivors": survivors,
        "diffs": diffs,
        "timed_out": timed_out,
        "seconds": (datetime.datetime.now() - started).total_seconds(),
    }


def _glob(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatch(name, pattern)


def score(result: dict[str, object]) -> float:
    counts = result["counts"]
    # a mutant that times out or crashes the tests is caught too
    caught = sum(counts.get(k, 0) for k in ("killed", "timeout", "segfault", "caught by type check"))
    judged = caught + counts.get("survived", 0)
    return caught / judged if judged else float("nan")


def write_report(results: list[dict[str, object]], path: Path) -> None:
    lines = [
        "# Mutation score",
        "",
        f"`make mutation` (mutmut 3, {datetime.date.today().isoformat()}): each module's mutants against its fast "
        "test modules (see `tests/mutation.py`). Score = caught / (caught + survived); a mutant is caught when a "
        "test fails or times out. Survivors' diffs: `docs/mutation-survivors.txt`.",
        "",
        "| module | mutants | killed | timeout | survived | not checked | score | minutes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        c = r["counts"]
        unchecked = r["total"] - sum(c.get(k, 0) for k in ("killed", "timeout", "segfault", "survived"))
        lines.append(
            f"| `mmer/{r['module']}.py` | {r['total']} | {c.get('killed', 0)} | {c.get('timeout', 0)} | "
            f"{c.get('survived', 0)} | {unchecked} | {score(r):.0%}{' of those checked' if unchecked else ''} | "
            f"{r['seconds'] / 60:.1f}"
            f"{' (time limit)' if r['timed_out'] else ''} |"
        )
    path.write_text("\n".join(lines) + "\n")
    survivors = [d for r in results for d in r["diffs"]]
    (path.parent / "mutation-survivors.txt").write_text("\n".join(survivors) or "no survivors\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(TARGETS), help="target modules (default: all)")
    parser.add_argument("--minutes", type=float, default=5.0, help="time limit per module (default: %(default)s)")
    parser.add_argument("--children", type=int, default=2, help="parallel mutmut workers (default: %(default)s)")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose code and tests to use")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "mutation.md", help="report (default: %(default)s)")
    args = parser.parse_args()
    results = []
    for module in args.modules:
        result = run_module(module, minutes=args.minutes, children=args.children, root=args.root)
        print(f"mmer/{module}.py: {result['counts']} -> {score(result):.0%}", flush=True)
        results.append(result)
    write_report(results, args.out)


if __name__ == "__main__":
    main()

"""End to end: comparing experiments as a new user would, on a tiny generated corpus.

The repository has no committed results (as a fresh clone): `make demo`'s `dvc repro` and its
`dvc exp save` of the baseline, then `dvc exp run -n audio-only -S model.inputs=audio`, and
`dvc exp diff baseline audio-only` / `dvc metrics diff baseline` must give numbers on both
sides. `make exps`'s column filter must leave a table a terminal can show. Cross-validations
queued with `dvc exp run --queue` and run by `dvc queue start` must land in
`dvc exp show --json`, and `mmer report` must build the table from them.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

import repo_factory
from conftest import ROOT
from repo_factory import commit, make_repo, tiny_demo_corpus

pytestmark = pytest.mark.slow

EVAL = "metrics/eval.json"


def run(cmd: list[str], cwd: Path) -> str:
    proc = repo_factory.run(cmd, cwd)
    return proc.stdout + proc.stderr


def makefile_recipe(target: str, containing: str) -> list[str]:
    """The line of the Makefile's ``target`` recipe that contains ``containing``, as argv (``$(BIN)/`` dropped)."""
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", text, re.M)
    assert recipe, f"no {target} target in the Makefile"
    [line] = [line.strip() for line in recipe.group(1).splitlines() if containing in line]
    variables = dict(re.findall(r"^(\w+) \?= (.*)$", text, re.M))
    line = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), "").replace("$$", "$"), line)
    return shlex.split(line.replace("/dvc ", "dvc ", 1).lstrip("/"))


def numbers_on_both_sides(diff: dict, path: str, key: str) -> tuple[float, float]:
    entry = diff.get("metrics", diff)[path][key]  # dvc exp diff nests under "metrics", dvc metrics diff does not
    assert isinstance(entry["old"], float | int) and isinstance(entry["new"], float | int), entry
    return entry["old"], entry["new"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A fresh clone after `make demo`: the pipeline ran, nothing was committed, the baseline was saved."""
    repo = make_repo(tmp_path_factory.mktemp("exps"))
    tiny_demo_corpus(repo, actors="1-6")
    commit(repo, "tiny corpus pipeline")
    run(["dvc", "repro"], repo)
    save = makefile_recipe("demo", "exp save")
    assert save[:3] == ["dvc", "exp", "save"]
    run(save, repo)
    return repo


def test_demo_records_a_baseline_and_commits_nothing(repo):
    assert "baseline" in run(["dvc", "exp", "list", "--name-only"], repo).split()
    assert run(["git", "log", "--oneline"], repo).count("\n") == 1  # the user's history is untouched
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo))
    [baseline] = [r for e in shown for x in e.get("experiments") or [] for r in x["revs"] if r["name"] == "baseline"]
    assert baseline["data"]["metrics"][EVAL]["data"]["accuracy"] >= 0.0
    # a second make demo replaces it instead of failing
    run(makefile_recipe("demo", "exp save"), repo)


def test_compare_an_experiment_with_the_baseline(repo):
    run(["dvc", "exp", "run", "-n", "audio-only", "-S", "model.inputs=audio"], repo)
    diff = json.loads(run(["dvc", "exp", "diff", "baseline", "audio-only", "--all", "--json"], repo))
    for key in ("accuracy", "uar", "macro_f1"):
        numbers_on_both_sides(diff, EVAL, key)
    assert (
        diff["metrics"][EVAL]["model_inputs"]["old"] == "av" and diff["metrics"][EVAL]["model_inputs"]["new"] == "audio"
    )
    assert diff["params"]["params.yaml"]["model.inputs"] == {"old": "av", "new": "audio"}
    old, new = numbers_on_both_sides(diff, "metrics/train/metrics.json", "n_parameters")
    assert new < old  # one branch instead of two

    # the workspace holds audio-only's results: `make compare` and `dvc metrics diff baseline` agree
    compare = makefile_recipe("compare", "exp diff")
    assert compare[:4] == ["dvc", "exp", "diff", "baseline"]
    workspace = json.loads(run([*compare, "--all", "--json"], repo))
    metrics = json.loads(run(["dvc", "metrics", "diff", "baseline", "--all", "--json"], repo))
    for source in (workspace, metrics):
        assert numbers_on_both_sides(source, EVAL, "accuracy") == numbers_on_both_sides(diff, EVAL, "accuracy")
    table = run(["dvc", "exp", "diff", "baseline", "audio-only"], repo)
    assert "failed to load" not in table and re.search(r"params.yaml\s+model.inputs\s+av\s+audio", table)

    # only the headline baselines are a metric: a handful of columns, the full table is a plain output
    baselines = json.loads(run(["dvc", "metrics", "show", "--json"], repo))
    [data] = [v["data"] for v in baselines.values()]
    assert sorted(data["metrics/baselines.json"]["data"]) == ["audio", "av", "face_expression", "majority", "video"]
    assert set(json.loads((repo / "metrics/baselines_table.json").read_text())["av"]) == {
        "gnb",
        "lda",
        "linear_svm",
        "rbf_svm",
    }


def test_make_exps_fits_a_terminal(repo):
    exps = makefile_recipe("exps", "exp show")
    columns = run([*exps, "--csv"], repo).splitlines()[0].split(",")
    everything = run(["dvc", "exp", "show", "--no-pager", "--csv"], repo).splitlines()[0].split(",")
    assert len(everything) > 150 and len(columns) <= 20, columns
    assert {"Experiment", "accuracy", "uar", "macro_f1", "model.inputs", "av.accuracy"} <= set(columns)
    assert not [c for c in columns if "/" in c or c.startswith(("per_class_recall", "majority.", "train.loss"))]


def test_queued_cross_validations_and_the_report(repo):
    raw = str((repo / "data/raw").resolve())  # queued runs happen in a temporary copy of the repo
    queued = {
        "cv-svm": ["-S", "cv.classifier=rbf_svm"],
        "cv-lda": ["-S", "cv.classifier=lda"],
        "cv-net": ["-S", "cv.epochs=1", "-S", "cv.folds=[0,1]"],
    }
    for name, args in queued.items():
        run(
            ["dvc", "exp", "run", "--queue", "-n", name, "-S", f"data.raw={raw}", "-S", "cv.enabled=true", *args, "cv"],
            repo,
        )
    run(["dvc", "queue", "start", "-j", "1"], repo)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo)
        if not re.search(r"\b(Queued|Running)\b", status):
            break
        time.sleep(5)
    assert status.count("Success") >= 3 and "Failed" not in status, status

    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo))
    revs = {r["name"]: r for e in shown for x in e.get("experiments") or [] for r in x["revs"]}
    for name in queued:
        summary = revs[name]["data"]["metrics"]["metrics/cv/summary.json"]["data"]
        folds = json.loads(run(["git", "show", f"{revs[name]['rev']}:metrics/cv/folds.json"], repo))
        assert summary["enabled"] is True and len(folds) == (2 if name == "cv-net" else 6)
        assert summary["accuracy"]["mean"] == pytest.approx(sum(f["accuracy"] for f in folds) / len(folds))

    table = run([sys.executable, "-m", "mmer", "report", "--base", "cv-svm"], repo)
    rows = {line.split(" | ")[0][2:]: line for line in table.splitlines() if line.startswith("| cv-")}
    assert set(rows) == {"cv-svm", "cv-lda", "cv-net"}
    lda = revs["cv-lda"]["data"]["metrics"]["metrics/cv/summary.json"]["data"]["accuracy"]
    assert f"| cv-lda | cv.classifier=lda | all 6 | {lda['mean']:.3f} ± {lda['std']:.3f} |" in table
    assert "| cv-net | cv.epochs=1, cv.folds=[0,1] | 0,1 |" in table
    ablation = [line for line in table.splitlines() if line.endswith("| cv-lda |")]
    assert len(ablation) == 1 and re.search(r"\| \d / \d \|", ablation[0])  # paired over the 6 folds

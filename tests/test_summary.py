"""`mmer summary` (the end of `make demo`) on fabricated metrics files."""

import json

import yaml

from mmer.cli import main
from mmer.summary import collect, format_table, summarise


def scores(accuracy, uar, f1, **extra):
    return {"accuracy": accuracy, "uar": uar, "macro_f1": f1, **extra}


def write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content) if path.suffix == ".yaml" else json.dumps(content))


def fabricate(root, *, cv=True):
    majority = scores(0.125, 0.125, 0.028, **{"class": "neutral", "n": 48})
    write(
        root / "metrics/eval.json",
        scores(0.469, 0.455, 0.44, n=48, split="test", model_inputs="av", majority=majority, per_class_recall={}),
    )
    write(
        root / "metrics/train/metrics.json",
        {
            "epochs_run": 30,
            "best_epoch": 27,
            "train_seconds": 252.0,
            "n_parameters": 98304,
            "n_train": 160,
            "best": {"val_loss": 1.2},
            "train": {"loss": 1.0},
        },
    )
    write(root / "metrics/train/params.yaml", {"model": {"inputs": "av", "fusion": "concat"}, "train": {"ensemble": 1}})
    write(
        root / "metrics/baselines.json",
        {
            "n": 48,
            "majority": majority,
            "audio": {
                "gnb": scores(0.30, 0.29, 0.25, val_uar=0.31),
                "svm_rbf": scores(0.35, 0.36, 0.33, val_uar=0.40, C=1.0),
                "lda": scores(0.41, 0.40, 0.39, val_uar=0.33),
            },
            "video": {"lda": scores(0.2, 0.21, 0.18, val_uar=0.25)},
        },
    )
    write(
        root / "metrics/cv/summary.json",
        {
            "enabled": True,
            "folds": [0, 1, 2],
            "n": 144,
            **{k: {"mean": m, "std": 0.02} for k, m in (("accuracy", 0.45), ("uar", 0.44), ("macro_f1", 0.42))},
        }
        if cv
        else {"enabled": False},
    )


def exp_show(name, inputs, accuracy):
    data = {
        "params": {"params.yaml": {"data": {"model": {"inputs": inputs}}}},
        "metrics": {"metrics/eval.json": {"data": scores(accuracy, 0.3, 0.2, model_inputs=inputs)}},
    }
    return {
        "revs": [{"rev": "e1ca3f21fa15", "name": name, "data": data, "error": None, "experiments": None}],
        "executor": None,
        "name": name,
    }


def test_summary_of_a_demo_run(tmp_path):
    fabricate(tmp_path)
    text = format_table(*collect(tmp_path))
    lines = text.splitlines()
    assert (
        lines[0]
        == "trained: av model, concat fusion, 30 epochs (best 27), 4.2 min, 98.3k parameters, 160 training clips"
    )
    assert lines[1] == "scored on the test speakers' 48 clips"
    assert lines[2].split() == ["model", "accuracy", "UAR", "macro-F1"]
    assert lines[3].split() == ["fused", "(audio", "+", "video)", "0.469", "0.455", "0.440", "this", "workspace"]
    assert lines[4].split() == [
        "cross-validation,",
        "3",
        "folds",
        "0.450±0.020",
        "0.440±0.020",
        "0.420±0.020",
        "mean±std",
        "over",
        "folds",
    ]
    # chosen on validation UAR: svm_rbf (0.40), not lda with the better test score
    assert lines[5].split()[:3] == ["baseline", "audio:", "svm_rbf"] and "0.350" in lines[5]
    assert lines[6].split()[:3] == ["baseline", "video:", "lda"]
    assert lines[7].split() == ["majority", "(always", "neutral)", "0.125", "0.125", "0.028"]
    assert "best validation UAR" in lines[8] and len(lines) == 9
    assert max(len(line) for line in lines) <= 100


def test_experiments_join_the_table_and_the_workspace_says_which_it_is(tmp_path):
    fabricate(tmp_path, cv=False)
    head = {
        "rev": "6aa956f6",
        "name": "main",
        "error": None,
        "data": {
            "metrics": {"metrics/eval.json": {"data": scores(0.469, 0.455, 0.44, model_inputs="av")}},
            "params": {},
        },
        "experiments": [
            exp_show("audio-only", "audio", 0.41),
            exp_show("video-only", "video", 0.22),
            exp_show("broken", "audio", 0.0) | {"revs": []},
        ],
    }
    _, rows = collect(tmp_path, [{"rev": "workspace", "data": None, "experiments": None}, head])
    assert [(r.name, r.note) for r in rows][:3] == [
        ("fused (audio + video)", "this workspace = commit main"),
        ("audio-only", "exp audio-only"),
        ("video-only", "exp video-only"),
    ]
    assert rows[1].scores == scores(0.41, 0.3, 0.2)
    assert not any(r.name.startswith("cross-validation") for r in rows)


def test_missing_metrics_say_what_to_run(tmp_path, capsys):
    assert summarise(tmp_path, experiments=False) == "no metrics yet: run `make demo` (or `dvc repro`) first"
    write(tmp_path / "metrics/eval.json", scores(0.5, 0.5, 0.5, model_inputs="audio"))  # nothing else yet
    assert main(["summary", "--no-experiments", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].split() == ["audio-only", "0.500", "0.500", "0.500", "this", "workspace"]


def test_headline_baselines_are_read_as_chosen():
    """metrics/baselines.json as the baselines stage writes it: one chosen classifier per feature set."""
    from mmer.summary import best_baselines

    rows = best_baselines(
        {
            "audio": {"classifier": "rbf_svm", "accuracy": 0.41, "uar": 0.41},
            "av": {"classifier": "linear_svm", "accuracy": 0.53, "uar": 0.48},
            "majority": {"accuracy": 0.25, "uar": 0.14},
        }
    )
    assert [r.name for r in rows] == ["baseline audio: rbf_svm", "baseline audio+video: linear_svm"]
    assert rows[1].scores == {"accuracy": 0.53, "uar": 0.48}

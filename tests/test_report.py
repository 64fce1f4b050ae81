"""mmer.report and mmer.classical_cv: the compact metrics, and tables from `dvc exp show --json`.

tests/data/exp_show.json is the real `dvc exp show --json` output (DVC 3.67) of a tiny
generated corpus (actors 1-6, 6 folds of one actor): a `baseline` saved with `dvc exp save`,
and three queued cross-validations, cv-net (the network, folds 0,1, 1 epoch), cv-svm
(cv.classifier=rbf_svm) and cv-lda (cv.classifier=lda).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmer import report
from mmer.baselines import run_baselines
from mmer.classical_cv import classical_cv_stage, cross_validate_classical
from mmer.clips import align_clips
from mmer.config import CvParams
from mmer.errors import ConfigError, MmerError

from feature_factory import make_corpus, write_corpus

SAMPLE = Path(__file__).parent / "data" / "exp_show.json"
# per-fold accuracies of the sample's runs (metrics/cv/folds.json of each experiment commit)
FOLDS = {
    "cv-svm": [0.5, 0.5, 0.625, 0.25, 0.25, 0.375],
    "cv-lda": [0.75, 0.625, 0.875, 0.375, 0.5, 0.5],
    "cv-net": [0.25, 0.25],
}


@pytest.fixture(scope="module")
def rows():
    return report.records(json.loads(SAMPLE.read_text()))


def fold_reports(record):
    return [{"fold": k, "accuracy": a} for k, a in enumerate(FOLDS[record.name])] if record.name in FOLDS else None


def test_records_read_every_row_of_dvc_exp_show(rows):
    kinds = {r.name: r.kind for r in rows}
    assert kinds == {
        "workspace": "workspace",
        "master": "commit",
        "baseline": "experiment",
        "cv-net": "experiment",
        "cv-svm": "experiment",
        "cv-lda": "experiment",
    }
    by_name = {r.name: r for r in rows}
    master = by_name["master"]
    assert all(r.baseline == master.rev for r in rows if r.kind == "experiment")
    assert by_name["cv-svm"].params["cv.classifier"] == "rbf_svm" and by_name["cv-svm"].params["model.inputs"] == "av"
    # the compare flow's baseline has the fixed-split metrics but no cross-validation
    assert by_name["baseline"].metrics["metrics/eval.json"]["accuracy"] == pytest.approx(0.25)
    assert by_name["baseline"].cv is None and by_name["master"].cv is None
    assert by_name["cv-lda"].cv["accuracy"]["mean"] == pytest.approx(np.mean(FOLDS["cv-lda"]))
    assert by_name["cv-lda"].cv["accuracy"]["std"] == pytest.approx(np.std(FOLDS["cv-lda"]))


def test_cv_table(rows):
    text = report.cv_table(rows)
    lines = text.splitlines()
    # params every row changed alike are said once, above the table
    assert lines[0].startswith("Every row: `cv.enabled=true`")
    table = [line for line in lines if line.startswith("| cv-")]
    assert [line.split(" | ")[0] for line in table] == ["| cv-lda", "| cv-svm", "| cv-net"]  # best first
    assert table[0] == "| cv-lda | cv.classifier=lda | all 6 | 0.604 ± 0.168 | 0.607 ± 0.188 | 0.534 ± 0.213 | 0.250 |"
    assert "| cv-net | cv.epochs=1, cv.folds=[0,1] | 0,1 | 0.250 ± 0.000 |" in table[2]
    assert "baseline" not in text and "workspace" not in text  # no cross-validation there


def test_cv_table_without_cross_validation(rows):
    plain = [r for r in rows if r.cv is None]
    assert "dvc exp run -S cv.enabled=true" in report.cv_table(plain)


def test_ablation_table_pairs_the_folds(rows):
    text = report.ablation_table(rows, "cv-svm", fold_reports=fold_reports)
    lines = text.splitlines()
    assert lines[0].startswith("| change from `cv-svm` |")
    assert "| cv.classifier=lda | 0.604 ± 0.168 | +0.187 | 6 / 0 | 0.607 | cv-lda |" in lines
    assert "| (none: the base) | 0.417 ± 0.138 | +0.000 | 0 / 0 | 0.369 | cv-svm |" in lines
    assert "cv-net" not in text  # other folds: not comparable
    # without the per-fold reports the pairing is unknown, the means still compare
    assert "| cv.classifier=lda | 0.604 ± 0.168 | +0.187 | - |" in report.ablation_table(rows, "cv-svm")
    with pytest.raises(MmerError, match="no cross-validated experiment named 'nope'"):
        report.ablation_table(rows, "nope")


def test_mmer_report_command(tmp_path, capsys):
    from mmer.cli import main

    out = tmp_path / "table.md"
    assert main(["report", "--input", str(SAMPLE), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| cv-lda |" in printed and out.read_text() == printed


def test_changes_and_values():
    assert report.changes({"a.b": 1, "a.c": [1, 2], "a.d": "x"}, {"a.b": 1, "a.c": [1]}) == {"a.c": [1, 2], "a.d": "x"}
    assert (
        report.value_text([0.9, 1.1]) == "[0.9,1.1]"
        and report.value_text("speaker") == "speaker"
        and report.value_text(True) == "true"
    )
    assert report.flatten({"a": {"b": 1, "c": {"d": [2]}}}) == {"a.b": 1, "a.c.d": [2]}


def test_headline_baselines_pick_by_validation_not_test():
    results = {
        "n": 32,
        "majority": {"accuracy": 0.25, "uar": 0.143, "macro_f1": 0.057, "class": "neutral", "n": 32},
        "audio": {
            "gnb": {"accuracy": 0.9, "uar": 0.9, "macro_f1": 0.9, "val_uar": 0.2},  # best on test, worst on validation
            "lda": {"accuracy": 0.5, "uar": 0.4, "macro_f1": 0.45, "val_uar": 0.6},
            "rbf_svm": {
                "accuracy": 0.45,
                "uar": 0.41,
                "macro_f1": 0.4,
                "val_uar": 0.6,
                "C": 1.0,
            },  # a tie: the first wins
        },
        "av": {"lda": {"accuracy": 0.625, "uar": 0.571, "macro_f1": 0.614, "val_uar": 0.7}},
    }
    assert report.headline_baselines(results) == {
        "majority": {"accuracy": 0.25, "uar": 0.143},
        "audio": {"classifier": "lda", "accuracy": 0.5, "uar": 0.4},
        "av": {"classifier": "lda", "accuracy": 0.625, "uar": 0.571},
    }


def test_write_cv_results(tmp_path):
    report.write_cv_results(tmp_path / "cv", {"enabled": False}, [])
    assert json.loads((tmp_path / "cv" / "summary.json").read_text()) == {"enabled": False}
    assert json.loads((tmp_path / "cv" / "folds.json").read_text()) == []


def test_classical_cross_validation_is_run_baselines_per_fold(tmp_path):
    corpus = make_corpus(seed=11, signal=0.35)
    names = corpus.label_names
    summary, per_fold = cross_validate_classical(
        corpus.index, corpus.caches, label_names=names, classifier="lda", feature_set="audio", folds=(0, 2)
    )
    assert [f["fold"] for f in per_fold] == [0, 2] and summary["folds"] == [0, 2] and summary["enabled"] is True
    for fold in per_fold:
        direct = run_baselines(
            align_clips(corpus.index, corpus.caches, fold=fold["fold"]),
            label_names=names,
            feature_sets=("audio",),
            classifiers=("lda",),
        )
        assert fold["accuracy"] == direct["audio"]["lda"]["accuracy"] and fold["majority"] == direct["majority"]
        assert not set(fold["test_actors"]) & set(fold["val_actors"])
    assert summary["accuracy"]["mean"] == pytest.approx(np.mean([f["accuracy"] for f in per_fold]))
    assert summary["majority_uar"]["std"] == pytest.approx(np.std([f["majority"]["uar"] for f in per_fold]))
    with pytest.raises(ConfigError, match="cv.folds"):
        cross_validate_classical(
            corpus.index, corpus.caches, label_names=names, classifier="lda", feature_set="audio", folds=(9,)
        )

    files = write_corpus(tmp_path, corpus)
    paths = {"audio_path": files.audio_path, "video_path": files.video_path, "out_dir": tmp_path / "cv"}
    kwargs = {"label_names": names, "classifier": "rbf_svm", "feature_set": "av", "c_grid": (1.0,)}
    assert classical_cv_stage(files.index_path, enabled=False, **paths, **kwargs) == {"enabled": False}
    stage = classical_cv_stage(files.index_path, enabled=True, folds=(1,), **paths, **kwargs)
    assert json.loads((tmp_path / "cv" / "summary.json").read_text()) == stage
    [fold] = json.loads((tmp_path / "cv" / "folds.json").read_text())
    assert fold["classifier"] == "rbf_svm" and fold["feature_set"] == "av" and fold["C"] == 1.0


def test_cv_classifier_param():
    assert CvParams().classifier == "network" and CvParams(classifier="rbf_svm").classifier == "rbf_svm"
    with pytest.raises(ConfigError, match="cv.classifier"):
        CvParams(classifier="svm")


def test_preset_command_sets_last_and_makes_the_corpus_path_absolute(tmp_path, monkeypatch, capsys):
    from mmer.cli import main

    from conftest import ROOT

    monkeypatch.chdir(ROOT)
    assert main(["preset", "ravdess-speech", "speech-best", "--set", "train.ensemble=1", "cv.enabled=true"]) == 0
    lines = capsys.readouterr().out.splitlines()
    settings = dict(line.split(" ", 1)[1].split("=", 1) for line in lines)
    assert settings["data.raw"] == str((ROOT / "../shared/data/ravdess-speech-dev").resolve())
    # one -S per key, the override's value (the preset's own would win if appended after it)
    assert settings["train.ensemble"] == "1" and settings["cv.enabled"] == "true" and len(settings) == len(lines)
    assert main(["preset", "ravdess-speech", "--set", "train.ensembl=1"]) == 1


def _fold(k: int, accuracy: float) -> dict:
    figures = {"accuracy": accuracy, "macro_f1": accuracy / 2, "uar": accuracy / 3}
    return {"fold": k, "n": 10, **figures, "majority": {key: 0.1 for key in figures}}


def test_merge_fold_runs_writes_what_one_run_of_the_folds_writes(tmp_path):
    from mmer.report import cv_summary, merge_fold_runs, write_cv_results

    write_cv_results(tmp_path / "b", cv_summary([_fold(2, 0.5)]), [_fold(2, 0.5)])
    (tmp_path / "a.json").write_text(json.dumps([_fold(0, 0.25), _fold(1, 0.75)]))
    summary, per_fold = merge_fold_runs([str(tmp_path / "b"), str(tmp_path / "a.json")], tmp_path / "merged")
    assert [r["fold"] for r in per_fold] == [0, 1, 2]
    assert summary == cv_summary([_fold(0, 0.25), _fold(1, 0.75), _fold(2, 0.5)])
    assert summary["accuracy"]["mean"] == pytest.approx(0.5) and summary["n"] == 30
    assert json.loads((tmp_path / "merged" / "summary.json").read_text()) == summary
    with pytest.raises(MmerError, match="fold 2 is in two"):
        merge_fold_runs([str(tmp_path / "b"), str(tmp_path / "b")], tmp_path / "again")


def _kept_run(fold, probabilities, labels, tta_shift=0.0):
    recall = {"a": 0.0, "b": 0.0}  # sorted by name in a folds.json; the order is recorded below
    plain = np.asarray(probabilities, dtype=float)
    return {
        "fold": fold,
        "per_class_recall": recall,
        "test_probabilities": {
            "label_names": ["a", "b"],
            "clip_ids": [f"c{k}" for k in range(len(labels))],
            "labels": list(labels),
            "plain": plain.tolist(),
            "tta": (plain + tta_shift).tolist(),
        },
    }


def test_combined_folds_averages_each_clip_over_the_runs():
    from mmer.report import combined_folds, combined_text

    labels = [0, 0, 1, 1]
    first = [_kept_run(0, [[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.2, 0.8]], labels)]
    second = [_kept_run(0, [[0.8, 0.2], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]], labels)]
    alone = combined_folds([first])
    assert alone["folds"][0]["accuracy"] == 0.5 and alone["confusion"] == [[1, 1], [1, 1]]
    both = combined_folds([first, second])  # clip 1: (0.4+0.8)/2 -> a; clip 2: (0.4+0.7)/2 -> b
    assert both["folds"][0]["accuracy"] == 1.0 and both["per_class_recall"] == {"a": 1.0, "b": 1.0}
    assert "| a | 2 | 0 | 1.000 |" in combined_text(both, ["x", "y"], "plain")
    with pytest.raises(MmerError, match="share no fold"):
        combined_folds([first, [_kept_run(1, [[1.0, 0.0]], [0])]])


def test_combined_folds_split_by_the_speakers_sex():
    from mmer.report import combined_folds, combined_text, sex_of

    assert [sex_of(c) for c in ("03-01-05-01-01-01-01", "03-01-05-01-01-01-02", "DC_a01", "anna_1")] == [
        "male",
        "female",
        "male",
        "unknown",
    ]
    run = _kept_run(0, [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9]], [0, 1, 1, 0, 1])
    # actor 01 (male): right, right; actor 02 (female): wrong (b as a), right; SAVEE DC (male): right
    run["test_probabilities"]["clip_ids"] = [
        "03-01-01-01-01-01-01",
        "03-01-05-01-01-01-01",
        "03-01-05-01-01-01-02",
        "03-01-01-01-01-01-02",
        "DC_a01",
    ]
    result = combined_folds([[run]])
    assert result["by_sex"] == {
        "female": {"n": 2, "accuracy": 0.5, "uar": 0.5},
        "male": {"n": 3, "accuracy": 1.0, "uar": 1.0},
    }
    assert "female 2 clips, accuracy 0.500, UAR 0.500; male 3 clips, accuracy 1.000" in combined_text(
        result, ["x"], "plain"
    )


def test_combine_reads_saved_folds_files_and_names_what_it_cannot_read(tmp_path, capsys, caplog):
    from mmer.cli import main

    labels = [0, 0, 1, 1]
    runs = {
        "mfcc.json": [_kept_run(0, [[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.2, 0.8]], labels)],
        "logmel.json": [_kept_run(0, [[0.8, 0.2], [0.8, 0.2], [0.3, 0.7], [0.1, 0.9]], labels)],
    }
    for name, reports in runs.items():
        (tmp_path / name).write_text(json.dumps(reports))
    assert main(["report", "--combine", str(tmp_path / "mfcc.json"), str(tmp_path / "logmel.json")]) == 0
    out = capsys.readouterr().out
    assert "accuracy 1.000" in out and "| a | 2 | 0 | 1.000 |" in out
    assert main(["report", "--combine", str(tmp_path / "nothing-here")]) != 0
    assert "nothing-here: not a folds.json" in caplog.text


def test_a_classical_run_keeps_test_probabilities_and_joins_an_ensemble(tmp_path, capsys):
    from mmer.cli import main
    from mmer.featurefile import FeatureCache

    corpus = make_corpus(seed=11, signal=0.35)
    names = corpus.label_names
    audio = corpus.caches["audio"]
    labels = dict(zip(corpus.index["clip_id"], corpus.index["label"]))
    values = np.random.default_rng(3).normal(0, 1, size=(len(audio.clip_ids), len(names))).astype(np.float32)
    values[np.arange(len(values)), [labels[c] for c in audio.clip_ids]] += 2.0
    caches = {
        **corpus.caches,
        "audio": FeatureCache({**audio.arrays, "functionals": values}, audio.clip_ids, audio.attrs),
    }
    _, per_fold = cross_validate_classical(
        corpus.index, caches, label_names=names, classifier="logreg", feature_set="functionals", folds=(0, 1)
    )
    for fold in per_fold:
        kept = fold["test_probabilities"]
        proba, truth = np.asarray(kept["plain"]), np.asarray(kept["labels"])
        assert kept["augmented"] is False and kept["label_names"] == list(names) and len(kept["clip_ids"]) == fold["n"]
        assert fold["accuracy"] == pytest.approx(float((proba.argmax(axis=1) == truth).mean()))
    # a network run of the same folds and clips: the classical run joins its tta view with its plain probabilities
    network = [
        {
            "fold": f["fold"],
            "test_probabilities": {
                **f["test_probabilities"],
                "augmented": True,
                "tta": f["test_probabilities"]["plain"],
            },
        }
        for f in per_fold
    ]
    both = report.combined_folds([per_fold, network], view="tta")
    assert [both["folds"][k]["accuracy"] for k in (0, 1)] == [f["accuracy"] for f in per_fold]
    older = [
        {**f, "test_probabilities": {k: v for k, v in f["test_probabilities"].items() if k != "tta"}} for f in network
    ]
    with pytest.raises(MmerError, match="no tta test probabilities"):
        report.combined_folds([per_fold, older], view="tta")
    (tmp_path / "logreg.json").write_text(json.dumps(per_fold))
    assert main(["report", "--combine", str(tmp_path / "logreg.json"), "--tta"]) == 0
    assert f"accuracy {np.mean([f['accuracy'] for f in per_fold]):.3f}" in capsys.readouterr().out


def test_cv_feature_set_param():
    assert CvParams().feature_set == "inputs" and CvParams(feature_set="functionals").feature_set == "functionals"
    with pytest.raises(ConfigError, match="cv.feature_set"):
        CvParams(feature_set="prosody")

"""bench.run and bench.report: the pieces on fabricated input, and a quick smoke run.

No test asserts a speed: the smoke run checks that the JSON has every figure of the parts it
ran as a positive number and that the report renders.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from bench import run as bench
from bench.report import FIGURE_KEYS, figure, missing_figures, render_markdown
from mmer.errors import ConfigError

from conftest import ROOT


def fake_report() -> dict:
    """A bench.json with every figure set to 1.5."""
    report: dict = {"settings": {"repeats": 3, "skipped": []}, "machine": {"load_average_start": [1.0, 1.0, 1.0]}}
    for key in FIGURE_KEYS:
        *parents, last = key.split(".")
        node = report
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = 1.5
    report["dvc"]["train_change_stages"] = ["evaluate", "train"]
    report["serve"]["concurrent"]["concurrency"] = 4
    return report


@pytest.mark.parametrize(
    ("clips", "actors", "per_actor"), [(1, 6, 1), (6, 6, 1), (7, 6, 2), (24, 24, 1), (120, 24, 5), (1440, 24, 60)]
)
def test_corpus_for_rounds_up_to_equal_clips_per_actor(clips, actors, per_actor):
    spec = bench.corpus_for(clips, "320x180")
    assert (len(spec.actors), spec.clips_per_actor) == (actors, per_actor)
    assert spec.n_clips >= clips
    assert {19, 24} <= set(spec.actors)  # validation and test speakers of the default split


@pytest.mark.parametrize("clips", [0, -3, 1441])
def test_corpus_for_rejects_bad_sizes(clips):
    with pytest.raises(ConfigError, match="--clips"):
        bench.corpus_for(clips, "1280x720")


@pytest.mark.parametrize(
    "argv", [["--repeats", "0"], ["--added", "0"], ["--jobs", "-1"], ["--size", "1281x720"], ["--clips", "5000"]]
)
def test_bad_options_raise(argv):
    with pytest.raises(ConfigError):
        bench.resolve_options(bench.build_parser().parse_args(argv))


def test_quick_defaults():
    options = bench.resolve_options(bench.build_parser().parse_args(["--quick", "--workdir", "/tmp/x"]))
    assert (options.clips, options.repeats, options.size, options.train_epochs_timed) == (
        bench.QUICK_CLIPS,
        1,
        bench.QUICK_SIZE,
        1,
    )


def test_serving_needs_the_trained_model():
    options = bench.resolve_options(bench.build_parser().parse_args(["--skip", "train", "--workdir", "/tmp/x"]))
    assert {"train", "predict", "serve"} <= set(options.skip)
    options = bench.resolve_options(bench.build_parser().parse_args(["--skip", "predict", "--workdir", "/tmp/x"]))
    assert "serve" not in options.skip


def test_dvc_stages_from_output():
    output = (
        "Stage 'index' didn't change, skipping\n"
        "Running stage 'train':\n> python stages/train.py\n"
        "Stage 'cv' is cached - skipping run, checking out outputs\n"
        "Running stage 'evaluate':\n"
    )
    assert bench.dvc_stages(output) == ({"train", "evaluate"}, {"cv"})
    assert bench.dvc_stages("Data and pipelines are up to date.\n") == (set(), set())


def test_tree_memory_sees_a_child_process():
    code = (
        "import time; block = bytearray(150 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); time.sleep(1.5)"
    )
    with bench.TreeMemory(interval_s=0.02, pss_interval_s=0.2) as memory:
        memory.take_peak()
        subprocess.run([sys.executable, "-c", code], check=True)
        peak = memory.take_peak()
    assert peak["rss"] > 150 * bench.MB and peak["pss"] > 100 * bench.MB


def test_epoch_clock():
    clock = bench.EpochClock()
    clock.log_params({})
    for _ in range(3):
        time.sleep(0.01)
        clock.log_metric("loss", 1.0)
        clock.next_step()
    seconds = clock.epoch_seconds()
    assert len(seconds) == 3 and all(s >= 0.009 for s in seconds)


def test_report_renders_every_part():
    report = fake_report()
    assert missing_figures(report) == []
    text = render_markdown(report)
    for needle in (
        "| trim |",
        "naive face crops",
        "s per epoch",
        "`mmer predict clip.mp4`",
        "`dvc repro`, nothing changed",
        "clips added",
        "`mmer serve`, POST /predict, 4 clients at once",
        "`mmer serve` process memory",
    ):
        assert needle in text
    assert figure(report, "preprocess.stages.trim.clips_per_s") == 1.5 and figure(report, "nope.nothing") is None


def test_missing_figures_names_bad_values_and_ignores_skipped_parts():
    report = fake_report()
    report["train"]["seconds_per_epoch"] = 0.0
    report["dvc"]["noop_s"] = "fast"
    del report["predict"]
    assert set(missing_figures(report)) == {
        "train.seconds_per_epoch",
        "dvc.noop_s",
        "predict.warm_s",
        "predict.cold_s",
        "predict.clip_duration_s",
    }
    report["settings"]["skipped"] = ["train", "predict", "dvc"]
    assert missing_figures(report) == []
    assert "s per epoch" not in render_markdown({k: v for k, v in report.items() if k != "train"})


@pytest.mark.slow
def test_quick_run_writes_every_figure(tmp_path):
    """``--quick`` on six 320x180 clips, preprocessing and the incremental run (training,
    prediction, the DVC timings, the face encoders and the long-input part, each a minute of TensorFlow start-up, are left out)."""
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        "-m",
        "bench.run",
        "--quick",
        "--jobs",
        "1",
        "--workdir",
        str(tmp_path / "work"),
        "--out",
        str(out),
        "--params",
        str(ROOT / "params.yaml"),
        "--skip",
        "train",
        "--skip",
        "predict",
        "--skip",
        "dvc",
        "--skip",
        "long",
        "--skip",
        "face_encoder",  # timed on its own below
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # bench/ is a folder of the checkout, not installed
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert missing_figures(report) == []
    assert report["settings"]["repeats"] == 1 and report["corpus"]["size"] == "320x180"
    assert (
        report["incremental"]["cache_hits_verified"]
        and report["incremental"]["cached_entries_reused"] == 2 * report["corpus"]["clips"]
    )
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu_model"]
    assert "trim + audio_features + face_crops" in proc.stdout  # the table printed at the end


def test_encoder_times_cover_every_face_encoder_and_the_zero_shot_expression():
    import numpy as np

    from bench.run import FACE_ENCODERS, encoder_times

    faces = np.random.default_rng(0).integers(0, 256, size=(4, 2, 64, 64, 3), dtype=np.uint8)
    times = encoder_times(faces, repeats=1, batch_size=4)
    assert times["clips"] == 4 and times["frames_per_clip"] == 2
    names = ["vgg" if encoder == "vgg" else f"{encoder}_{trainable}" for encoder, trainable in FACE_ENCODERS]
    for name in names:
        assert times[name]["train_ms_per_clip"] > 0 and times[name]["predict_ms_per_clip"] > 0
    assert times["fer2013_zero_shot"]["predict_ms_per_clip"] > 0
    markdown = render_markdown({"settings": {"skipped": []}, "machine": {}, "face_encoder": times})
    assert "face encoder `fer2013_all`" in markdown and "`face_expression` (zero-shot FER2013)" in markdown


def test_the_main_block_comes_after_every_definition():
    """``python -m bench.run`` runs ``main()`` from the ``__main__`` block: a function defined below it does
    not exist yet when main calls it (the serve part once died so, with a NameError, after 10 minutes)."""
    import ast

    tree = ast.parse((ROOT / "bench" / "run.py").read_text())
    last = tree.body[-1]
    assert isinstance(last, ast.If) and "__main__" in ast.unparse(last.test)


def test_cross_corpus_runs_scores_each_run_and_their_mean(tmp_path, capsys):
    import pandas as pd

    from bench import cross_corpus_runs

    labels = ["neutral", "calm", "happy", "sad"]
    actual = ["neutral", "neutral", "happy", "sad"]  # a corpus without calm

    def run(name, rows):
        table = pd.DataFrame(rows, columns=[f"prob_{k}" for k in labels])
        table.insert(0, "clip_id", [f"c{i}" for i in range(len(rows))])
        table.insert(1, "actual", actual)
        table.to_csv(tmp_path / name, index=False)
        return str(tmp_path / name)

    # run a: calm for the first neutral clip (wrong as a label, right folded), right on the rest but sad
    a = run("a.csv", [[0.2, 0.5, 0.2, 0.1], [0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.7, 0.1]])
    # run b: happy for both neutral clips; averaged with a, no ties: neutral, neutral, happy, sad
    b = run("b.csv", [[0.1, 0.1, 0.6, 0.2], [0.1, 0.1, 0.6, 0.2], [0.1, 0.1, 0.7, 0.1], [0.05, 0.05, 0.1, 0.8]])
    labels_read, truth, runs = cross_corpus_runs.read_runs([a, b])
    assert labels_read == labels and truth.tolist() == [0, 0, 2, 3]
    scored = cross_corpus_runs.score(runs[0], truth, labels)
    assert scored["labels"]["accuracy"] == pytest.approx(0.5)
    assert scored["labels"]["uar"] == pytest.approx((0.5 + 1 + 0) / 3)  # neutral, happy, sad: calm has no clips
    assert scored["calm_as_neutral"]["accuracy"] == pytest.approx(0.75)
    assert scored["calm_as_neutral"]["uar"] == pytest.approx(2 / 3)
    out = tmp_path / "figures.json"
    assert cross_corpus_runs.main([a, b, "--json", str(out)]) == 0
    mean = json.loads(out.read_text())["mean of the runs"]["calm_as_neutral"]
    assert mean["per_class_recall"] == {"neutral": 1.0, "happy": 1.0, "sad": 1.0}
    assert "calm-as-neutral UAR per run: mean" in capsys.readouterr().out
    pd.read_csv(b).drop(index=0).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ValueError, match="not the same clips"):
        cross_corpus_runs.read_runs([a, str(tmp_path / "short.csv")])
    # --folds: the folds of one run, each its own clips, scored together
    first, second = tmp_path / "fold0.csv", tmp_path / "fold1.csv"
    pd.read_csv(a).iloc[:2].to_csv(first, index=False)
    pd.read_csv(b).iloc[2:].to_csv(second, index=False)
    labels_read, truth, together = cross_corpus_runs.read_folds([str(second), str(first)])  # any order
    assert truth.tolist() == [0, 0, 2, 3] and together.argmax(axis=1).tolist() == [1, 0, 2, 3]
    pattern = str(tmp_path / "fold*.csv")
    assert cross_corpus_runs.main([pattern, "--folds", "--json", str(out)]) == 0
    folded = json.loads(out.read_text())[f"{pattern} (2 folds, 4 clips)"]["calm_as_neutral"]
    assert folded["accuracy"] == pytest.approx(1.0) and "per run" not in capsys.readouterr().out
    # a second run of the same folds (another seed): each alone and the two averaged
    (tmp_path / "seed2").mkdir()
    pd.read_csv(b).iloc[:2].to_csv(tmp_path / "seed2" / "fold0.csv", index=False)
    pd.read_csv(a).iloc[2:].to_csv(tmp_path / "seed2" / "fold1.csv", index=False)
    labels_read, truth, runs, files = cross_corpus_runs.read_fold_runs([pattern, str(tmp_path / "seed2" / "fold*.csv")])
    assert [len(f) for f in files] == [2, 2]
    assert runs[0][0].tolist() == [0.2, 0.5, 0.2, 0.1] and runs[1][0].tolist() == [0.1, 0.1, 0.6, 0.2]  # clip c0 both
    assert cross_corpus_runs.main([pattern, str(tmp_path / "seed2" / "fold*.csv"), "--folds", "--json", str(out)]) == 0
    both = json.loads(out.read_text())
    seed2 = both[f"{tmp_path / 'seed2' / 'fold*.csv'} (2 folds, 4 clips)"]["calm_as_neutral"]
    assert seed2["per_class_recall"] == {"neutral": 0.0, "happy": 1.0, "sad": 0.0}
    assert both["mean of the runs"]["calm_as_neutral"]["per_class_recall"] == {"neutral": 1.0, "happy": 1.0, "sad": 1.0}
    with pytest.raises(ValueError, match="share clips, e.g. c0"):
        cross_corpus_runs.read_folds([a, str(first)])
    with pytest.raises(ValueError, match="no files match"):
        cross_corpus_runs.read_fold_runs([str(tmp_path / "none*.csv")])
    with pytest.raises(ValueError, match="not the same clips"):
        cross_corpus_runs.read_fold_runs([pattern, str(first)])

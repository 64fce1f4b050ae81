"""mmer.enrol: speaker enrolment (clips of one speaker answered together by a speaker-normalised model).

A tiny untrained audio model whose ``model.json`` says ``audio.normalise: speaker`` stands in
for a trained one: the tests check the plumbing (statistics over all clips by
:func:`mmer.audio.speaker_standardise`, the minimum, the JSON), not accuracy. The clips are
soundtracks of the generated corpus (:func:`mmer.pretrained.write_reference_clips`).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from mmer import enrol, pretrained
from mmer.audio import pad_or_truncate, speaker_standardise
from mmer.bundle import DIGEST_KEY, bundle_digest, predict_proba
from mmer.cli import main
from mmer.errors import ConfigError, MmerError, ModelError
from mmer.predict_cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from mmer.predictor import Predictor

from conftest import SHARED_DATA
from feature_factory import untrained_model_bundle

N_CLIPS = 4


def speaker_model(path):
    """An untrained audio model saved as speaker-normalised (its json edited consistently)."""
    untrained_model_bundle(path, inputs="audio", padded_frames=120)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["features"]["audio"]["normalise"] = "speaker"
    meta[DIGEST_KEY] = bundle_digest(path, meta)
    meta_path.write_text(json.dumps(meta))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("enrol")
    return {
        "speaker": speaker_model(root / "speaker.keras"),
        "clip": untrained_model_bundle(root / "clip.keras", inputs="audio", padded_frames=120),
    }


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Soundtracks of one generated actor (wav, 48 kHz)."""
    return pretrained.write_reference_clips(
        tmp_path_factory.mktemp("clips"), pretrained.speaker_reference_clips(N_CLIPS)
    )


@pytest.fixture(scope="module")
def predictor(models):
    with Predictor(models["speaker"], threads=2, speaker_norm=True) as loaded:
        yield loaded


def test_enrolment_is_speaker_standardise_over_all_clips_then_the_model(predictor, clips):
    answers = enrol.predict_speaker(predictor, clips, minimum=N_CLIPS)
    assert [path for path, _ in answers] == clips
    frames = [predictor.features(path, whole=True).audio_frames for path in clips]
    by_hand = speaker_standardise(frames, ["one"] * len(frames))
    length = int(predictor.audio_params["padded_frames"])
    x = np.stack([pad_or_truncate(f, length) for f in by_hand])
    expected = predict_proba(predictor.model, predictor.metadata, {"audio_features": x})
    for (_, prediction), row in zip(answers, expected):
        np.testing.assert_allclose([prediction.probabilities[n] for n in predictor.label_names], row, atol=1e-6)
        assert prediction.enrolment["clips"] == N_CLIPS and prediction.enrolment["given"] == N_CLIPS
    # the statistics are those of all the clips together: fewer clips give other inputs
    fewer = speaker_standardise(frames[:2], ["one"] * 2)
    assert not np.allclose(fewer[0], by_hand[0])


@pytest.mark.parametrize("given", [0, 1, N_CLIPS - 1])
def test_fewer_clips_than_the_minimum_are_refused_naming_the_counts(predictor, clips, given):
    with pytest.raises(ConfigError, match=f"at least {N_CLIPS} clips .* got {given} of the {given} clip"):
        enrol.predict_speaker(predictor, clips[:given], minimum=N_CLIPS)


def test_failed_clips_do_not_count_towards_the_minimum(predictor, clips, tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(ConfigError, match=r"got 3 of the 4 clips given \(1 failed"):
        enrol.predict_speaker(predictor, [*clips[:3], missing], minimum=N_CLIPS)
    answers = dict(enrol.predict_speaker(predictor, [*clips, missing], minimum=N_CLIPS))
    assert isinstance(answers[missing], MmerError)  # an error for that clip alone
    assert answers[clips[0]].enrolment == enrol.enrolment_record(N_CLIPS, N_CLIPS + 1, minimum=N_CLIPS)


@pytest.mark.parametrize("minimum", [0, -1])
def test_a_minimum_below_one_is_a_config_error(minimum):
    with pytest.raises(ConfigError, match="at least 1"):
        enrol.check_enough(5, 5, minimum=minimum)


def test_a_speaker_model_answers_no_single_clip(predictor, models, clips):
    with pytest.raises(ModelError, match="--speaker-norm"):
        Predictor(models["speaker"])  # one clip at a time: refused when loaded
    with pytest.raises(ModelError, match="one speaker together"):
        predictor.predict(clips[0])
    with pytest.raises(ModelError, match="needs a speaker-normalised model"):
        Predictor(models["clip"], speaker_norm=True)


def test_cli_json_says_the_model_and_the_enrolment(models, clips, monkeypatch, capsys):
    monkeypatch.setattr(enrol, "MIN_CLIPS", N_CLIPS)
    args = ["predict", *map(str, clips), "--speaker-norm", "--json", "--no-progress", "--model", str(models["speaker"])]
    assert main(args) == EXIT_OK
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["file"] for line in lines] == [str(c) for c in clips]
    for line in lines:
        assert line["model"]["path"] == str(models["speaker"]) and line["model"]["source"] == "given"
        assert line["enrolment"]["clips"] == N_CLIPS and line["enrolment"]["minimum"] == N_CLIPS
        assert line["enrolment"]["transductive"] is True


def test_cli_refuses_too_few_clips_with_a_usage_error(models, clips, caplog):
    args = ["predict", *map(str, clips[:2]), "--speaker-norm", "--no-progress", "--model", str(models["speaker"])]
    with caplog.at_level(logging.ERROR):
        assert main(args) == EXIT_USAGE
    assert f"at least {enrol.MIN_CLIPS} clips of the speaker with speech; got 2 of the 2 clips" in caplog.text
    caplog.clear()  # refused before any model is loaded: even a missing one
    with caplog.at_level(logging.ERROR):
        assert main([*args[:-1], "missing.keras"]) == EXIT_USAGE
    assert "got 2 of the 2 clips" in caplog.text and "missing.keras" not in caplog.text


def test_cli_a_speaker_model_without_speaker_norm_fails_saying_what_to_do(models, clips, tmp_path, monkeypatch, caplog):
    import shutil

    (tmp_path / "models").mkdir()
    for suffix in (".keras", ".json"):
        shutil.copyfile(models["speaker"].with_suffix(suffix), tmp_path / "models" / f"model{suffix}")
    monkeypatch.chdir(tmp_path)  # the project's model is speaker-normalised
    with caplog.at_level(logging.ERROR):
        assert main(["predict", str(clips[0]), "--no-progress"]) == EXIT_FAILED
    assert "speaker-normalised" in caplog.text and "--speaker-norm" in caplog.text


def test_resolve_model_with_speaker_norm(models, tmp_path, monkeypatch):
    project = tmp_path / "model.keras"
    for suffix in (".keras", ".json"):
        project.with_suffix(suffix).write_bytes(models["speaker"].with_suffix(suffix).read_bytes())
    assert pretrained.resolve_model(None, project_model=project, speaker_norm=True) == (project, "project")
    assert pretrained.resolve_model("given.keras", project_model=project, speaker_norm=True)[1] == "given"
    project.with_suffix(".json").write_bytes(models["clip"].with_suffix(".json").read_bytes())
    assert not pretrained.is_speaker_normalised(project)
    monkeypatch.setattr(pretrained, "SPEAKER_MODEL", tmp_path / "none.keras")
    with pytest.raises(ModelError, match="ships no speaker-normalised model"):
        pretrained.resolve_model(None, project_model=project, speaker_norm=True)  # the project's is not one
    assert pretrained.resolve_model(None, project_model=project) == (project, "project")  # without enrolment: it is


def test_enrolment_groups_of_the_bench_cut_each_speaker_into_groups_of_k():
    from bench.enrolment import groups_of

    speakers = ["a"] * 10 + ["b"] * 7
    groups = groups_of(speakers, 3, np.random.default_rng(0))
    sizes = {g: groups.count(g) for g in set(groups)}
    assert sorted(sizes.values()) == [3, 3, 3, 4, 4] and {g[0] for g in groups} == {"a", "b"}
    assert all(g[0] == s for g, s in zip(groups, speakers))
    assert set(groups_of(speakers, None, np.random.default_rng(0))) == {("a", 0), ("b", 0)}


SAVEE = SHARED_DATA / "savee"


@pytest.mark.realdata
def test_shipped_speaker_model_on_real_clips_of_one_speaker(tmp_path, monkeypatch, capsys):
    if pretrained.shipped_speaker_model() is None or not SAVEE.is_dir():
        pytest.skip("no shipped speaker model, or SAVEE not present")
    clips = sorted(SAVEE.glob("DC_*"))[: enrol.MIN_CLIPS]
    monkeypatch.chdir(tmp_path)  # no project model
    assert main(["predict", *map(str, clips), "--speaker-norm", "--json", "--no-progress"]) == EXIT_OK
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == len(clips)
    assert {line["model"]["path"] for line in lines} == {str(pretrained.SPEAKER_MODEL)}
    assert {line["enrolment"]["clips"] for line in lines} == {enrol.MIN_CLIPS}


def test_release_ships_a_speaker_model_as_voice_speaker_with_enrolled_reference_probabilities(models, tmp_path):
    import pandas as pd

    from mmer.release import release

    wav = tmp_path / "c0.wav"
    wav.write_bytes(b"clip")
    index = tmp_path / "index.csv"
    pd.DataFrame([{"clip_id": "c0", "path": str(wav), "actor": "01", "split": "train"}]).to_csv(index, index=False)
    out = tmp_path / "pretrained"
    out.mkdir()
    record = release(
        model_path=models["speaker"], index_path=index, lock_path=tmp_path / "none", cross_corpus_path=None,
        cv_paths=[], note="test", out_dir=out,
    )  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == [
        "voice-speaker.json",
        "voice-speaker.keras",
        "voice-speaker.release.json",
    ]
    assert record["enrolment"]["minimum"] == enrol.MIN_CLIPS
    assert record["reference"]["clips"] == [list(c) for c in pretrained.speaker_reference_clips(enrol.MIN_CLIPS)]
    clips = tuple(tuple(c) for c in record["reference"]["clips"])
    again = pretrained.reference_probabilities(out / "voice-speaker.keras", tmp_path / "clips", clips=clips)
    assert list(again) == list(record["reference"]["probabilities"])
    for name, expected in record["reference"]["probabilities"].items():
        assert again[name] == pytest.approx(expected, abs=1e-6)


def test_names_of_several_speakers_give_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="mmer.enrol"):
        assert enrol.warn_if_several_speakers(["x/DC_a01.wav", "x/DC_h02.wav", "clip.wav"]) == {"savee-DC"}
        assert not caplog.records
        assert enrol.warn_if_several_speakers(["DC_a01.wav", "JE_a01.wav"]) == {"savee-DC", "savee-JE"}
    assert "2 speakers (savee-DC, savee-JE)" in caplog.text and "ONE speaker" in caplog.text


def test_enrolment_table_lists_the_curve_rows_only():
    from bench.enrolment import table

    row = {"uar": {"mean": 0.3, "std": 0.01, "min": 0.29}, "accuracy": {"mean": 0.31}, "seeds": [0]}
    result = {"all": {"uar": 0.4, "accuracy": 0.41}, "5": row, "clips": 10, "cache_max_difference": 0.0}
    assert table(result, 5).splitlines()[2:] == [
        "| 5 | 0.300 ± 0.010 | 0.290 | 0.310 |",
        "| all (5) | 0.400 | - | 0.410 |",
    ]


# --- several speakers named by a pattern (--speaker-pattern) ---


def test_speaker_groups_by_pattern():
    paths = ["x/DC_a01.wav", "DC_a02.wav", "JE_h01.wav"]
    assert enrol.speaker_groups(paths, r"^([A-Z]+)_") == {
        "DC": [Path("x/DC_a01.wav"), Path("DC_a02.wav")],
        "JE": [Path("JE_h01.wav")],
    }
    assert set(enrol.speaker_groups(paths, r"^[A-Z]+")) == {"DC", "JE"}  # no group: the whole match


@pytest.mark.parametrize(
    "pattern, message",
    [(r"^([a-z]+)_", "names no speaker in 3 file names: DC_a01.wav"), (r"([", "not a regular expression")],
)
def test_a_pattern_that_names_no_speaker_is_a_config_error(pattern, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        enrol.speaker_groups(["DC_a01.wav", "DC_a02.wav", "JE_h01.wav"], pattern)


def test_each_speaker_needs_the_minimum():
    groups = {"DC": [Path("a")] * 3, "JE": [Path("b")] * 1, "KL": [Path("c")] * 5}
    with pytest.raises(ConfigError, match="at least 3 clips of each speaker; 1 of the 3 speakers have fewer: JE 1"):
        enrol.check_groups(groups, minimum=3)


def test_each_named_speaker_is_enrolled_on_its_own(predictor, clips, tmp_path, monkeypatch, capsys):
    import shutil

    renamed = []
    for speaker in ("A", "B"):  # the same four soundtracks as two speakers, interleaved in the order given
        renamed += [shutil.copyfile(c, tmp_path / f"{speaker}_{k}.wav") for k, c in enumerate(clips)]
    order = renamed[::2] + renamed[1::2]
    answers = enrol.predict_speakers(predictor, order, pattern=r"^([AB])_", minimum=N_CLIPS)
    assert [path for path, _ in answers] == order
    alone = dict(enrol.predict_speaker(predictor, renamed[:N_CLIPS], minimum=N_CLIPS))
    for path, prediction in answers:
        assert prediction.enrolment["speaker"] == path.name[0] and prediction.enrolment["clips"] == N_CLIPS
        twin = alone[tmp_path / f"A_{path.name[2:]}"]  # B's clips are A's: the same statistics, the same answer
        assert prediction.probabilities == pytest.approx(twin.probabilities, abs=1e-6)
    monkeypatch.setattr(enrol, "MIN_CLIPS", N_CLIPS)
    model = str(predictor.model_path)
    args = ["predict", *map(str, order), "--speaker-pattern", "^([AB])_", "--json", "--no-progress", "--model", model]
    assert main(args) == EXIT_OK
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [line["enrolment"]["speaker"] for line in lines] == [Path(p).name[0] for p in order]
    lonely = shutil.copyfile(clips[0], tmp_path / "C_0.wav")  # a third speaker with one clip: refused, all of it
    assert main([*args[:2], str(lonely), *args[2:]]) == EXIT_USAGE
    assert capsys.readouterr().out == ""

"""Corpus readers (mmer.corpora) and multi-corpus indexes, on generated (empty) files."""

from pathlib import Path

import pytest

from mmer.config import DataParams, IndexParams
from mmer.corpora import (
    parse_clip,
    parse_cremad,
    parse_emodb,
    parse_ravdess,
    parse_savee,
    parse_tess,
    read_manifest,
    speaker_matches,
)
from mmer.corpus import build_index
from mmer.errors import ConfigError, DatasetError
from mmer.splits import fold_splits, seeded_speakers

SAVEE_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "savee"


def _touch(root: Path, names) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def savee_names(speakers=("DC", "JE", "JK", "KL"), numbers=(1, 2), folder_form=False):
    sep = "/" if folder_form else "_"
    return [f"{s}{sep}{e}{n:02d}.wav" for s in speakers for e in ("a", "d", "f", "h", "n", "sa", "su") for n in numbers]


# --- each parser: a good name with every field, edge cases, and wrong names ---


def test_ravdess_as_today():
    clip = parse_ravdess("Actor_12/01-02-06-02-02-01-12.mp4")
    assert (clip.corpus, clip.speaker, clip.sex, clip.emotion, clip.modality) == (
        "ravdess",
        "ravdess-12",
        "female",
        "fearful",
        "av",
    )
    assert clip.recording == "02-06-02-02-01-12"


@pytest.mark.parametrize("suffix, modality", [(".flv", "av"), (".wav", "audio"), (".mp3", "audio")])
def test_cremad(suffix, modality):
    clip = parse_cremad(f"VideoFlash/1001_DFA_ANG_XX{suffix}")
    assert (clip.clip_id, clip.speaker, clip.emotion, clip.intensity, clip.statement, clip.modality) == (
        "1001_DFA_ANG_XX",
        "cremad-1001",
        "angry",
        "unspecified",
        "DFA",
        modality,
    )
    assert parse_cremad("1091_IEO_SAD_HI.wav").intensity == "high"
    assert [parse_cremad(f"1050_TIE_{e}_LO.wav").emotion for e in ("DIS", "FEA", "HAP", "NEU")] == [
        "disgust",
        "fearful",
        "happy",
        "neutral",
    ]


@pytest.mark.parametrize(
    "name, why",
    [
        ("1000_DFA_ANG_XX.wav", "speaker 1000"),
        ("1092_DFA_ANG_XX.wav", "speaker 1092"),
        ("1001_ABC_ANG_XX.wav", "sentence ABC"),
        ("1001_DFA_SUR_XX.wav", "emotion SUR"),
        ("1001_DFA_ANG_ZZ.wav", "level ZZ"),
        ("1001_DFA_ANG.wav", "not a CREMA-D name"),
    ],
)
def test_cremad_bad_names(name, why):
    with pytest.raises(DatasetError, match=why):
        parse_cremad(name)


def test_savee_both_forms():
    flat, folder = parse_savee("DC_sa01.wav"), parse_savee("AudioData/DC/sa01.wav")
    assert flat == folder
    assert (flat.clip_id, flat.speaker, flat.emotion, flat.sex) == ("DC_sa01", "savee-DC", "sad", "male")
    assert parse_savee("KL_su15.flac").emotion == "surprised"
    assert parse_savee("JK_n30.wav").emotion == "neutral"  # neutral has 30 sentences, the others 15
    assert {parse_savee(f"JE_{e}01.wav").emotion for e in ("a", "d", "f", "h")} == {
        "angry",
        "disgust",
        "fearful",
        "happy",
    }


@pytest.mark.parametrize(
    "name, why",
    [
        ("XX_a01.wav", "speaker XX"),
        ("AudioData/a01.wav", "speaker AudioData"),
        ("DC_a16.wav", "number 16"),
        ("DC_n31.wav", "number 31"),
        ("DC_s01.wav", "not a SAVEE name"),
        ("dc_a01.wav", "not a SAVEE name"),
    ],
)
def test_savee_bad_names(name, why):
    with pytest.raises(DatasetError, match=why):
        parse_savee(name)


def test_emodb():
    clip = parse_emodb("wav/03a01Wa.wav")
    assert (clip.clip_id, clip.speaker, clip.sex, clip.emotion, clip.statement, clip.repetition) == (
        "03a01Wa",
        "emodb-03",
        "male",
        "angry",
        "a01",
        "a",
    )
    letters = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}
    assert {parse_emodb(f"16b10{k}c.wav").emotion for k in letters} == set(letters.values())
    assert parse_emodb("08b03Tb.wav").sex == "female"


@pytest.mark.parametrize(
    "name, why", [("04a01Wa.wav", "speaker 04"), ("03a03Wa.wav", "text a03"), ("03a01Xa.wav", "letter X")]
)
def test_emodb_bad_names(name, why):
    with pytest.raises(DatasetError, match=why):
        parse_emodb(name)


def test_tess():
    clip = parse_tess("OAF_angry/OAF_back_angry.wav")
    assert (clip.clip_id, clip.speaker, clip.sex, clip.emotion, clip.statement) == (
        "OAF_back_angry",
        "tess-OAF",
        "female",
        "angry",
        "back",
    )
    assert parse_tess("YAF_dog_ps.wav").emotion == "surprised"  # pleasant surprise
    assert parse_tess("YAF_dog_fear.wav").emotion == "fearful"
    assert parse_tess("OAF_Fear/OAF_bath_Fear.wav").emotion == "fearful"  # case as in some copies
    with pytest.raises(DatasetError, match="speaker MAF"):
        parse_tess("MAF_back_angry.wav")
    with pytest.raises(DatasetError, match="emotion calm"):
        parse_tess("OAF_back_calm.wav")


def test_the_namings_do_not_overlap():
    names = ["03-01-06-01-02-01-12.wav", "1001_DFA_ANG_XX.wav", "DC_a01.wav", "03a01Wa.wav", "OAF_back_angry.wav"]
    corpora = ("ravdess", "cremad", "savee", "emodb", "tess")
    for name, corpus in zip(names, corpora):
        assert parse_clip(name, corpora).corpus == corpus
        assert sum(parse_clip_ok(name, (other,)) for other in corpora) == 1


def parse_clip_ok(name, corpora) -> bool:
    try:
        parse_clip(name, corpora)
    except DatasetError:
        return False
    return True


def test_a_name_of_a_corpus_not_enabled_says_so():
    with pytest.raises(DatasetError, match="savee name: add savee to data.corpora"):
        parse_clip("DC_a01.wav", ("ravdess",))


def test_speaker_names_match_bare_qualified_and_int():
    assert speaker_matches("ravdess-03", [3]) and speaker_matches("ravdess-03", ["03"])
    assert speaker_matches("savee-KL", ["KL"]) and speaker_matches("savee-KL", ["savee-KL"])
    assert speaker_matches("cremad-1001", [1001]) and not speaker_matches("savee-KL", ["JK", 1])


def test_params_vocabularies():
    assert DataParams().corpora == ("ravdess",)
    with pytest.raises(ConfigError, match="data.corpora"):
        DataParams(corpora=("iemocap",))
    with pytest.raises(ConfigError, match="heldout_corpora"):
        IndexParams(heldout_corpora=("nope",))


# --- the manifest ---


def test_manifest_maps_emotions_and_keeps_splits(tmp_path):
    _touch(tmp_path, ["rec/anna_1.wav", "rec/anna_2.mp4", "rec/bob_1.wav", "rec/carl_1.wav"])
    (tmp_path / "manifest.csv").write_text(
        "path,emotion,speaker,split\n"
        "rec/anna_1.wav,Joy,anna,train\n"
        "rec/anna_2.mp4,anger,anna,train\n"
        "rec/bob_1.wav,neutral,bob,val\n"
        "rec/carl_1.wav,contempt,carl,test\n"
    )
    clips = read_manifest(tmp_path / "manifest.csv", emotion_map={"joy": "happy", "anger": "angry"})
    assert [c.emotion for _, c in clips] == ["happy", "angry", "neutral", "contempt"]
    assert [c.modality for _, c in clips] == ["audio", "av", "audio", "audio"]
    assert clips[0][0] == tmp_path / "rec" / "anna_1.wav" and clips[0][1].speaker == "manifest-anna"
    index = build_index(
        tmp_path, corpora=["manifest"], emotion_map={"joy": "happy", "anger": "angry"}, modalities=["av", "audio"]
    )
    assert list(index["split"]) == ["train", "train", "val"]  # contempt left out: no such class
    assert set(index["dataset"]) == {"manifest"}


@pytest.mark.parametrize(
    "text, why",
    [
        ("path,emotion\na.wav,happy\n", "missing \\['speaker'\\]"),
        ("path,emotion,speaker\na.wav,,anna\n", "line 2: empty \\['emotion'\\]"),
        ("path,emotion,speaker,split\na.wav,happy,anna,dev\n", "split 'dev'"),
    ],
)
def test_bad_manifests_raise(tmp_path, text, why):
    (tmp_path / "manifest.csv").write_text(text)
    with pytest.raises(DatasetError, match=why):
        read_manifest(tmp_path / "manifest.csv")


# --- indexes: several corpora, labels left out by name, speaker splits ---


def test_mixed_two_corpus_index(tmp_path, caplog):
    ravdess = [f"Actor_{a:02d}/03-01-{e:02d}-01-01-01-{a:02d}.wav" for a in range(1, 7) for e in (1, 2, 3, 5)]
    _touch(tmp_path / "ravdess", ravdess)
    _touch(tmp_path / "savee", savee_names(numbers=(1,), folder_form=True))
    _touch(tmp_path, ["savee/KL/notes.wav"])
    index = build_index(
        tmp_path,
        corpora=["ravdess", "savee"],
        modalities=["audio"],
        val_actors=[5, "JK"],
        test_actors=[6, "KL"],
        n_folds=4,
    )
    assert "notes.wav" in caplog.text  # the wrong name is skipped and named
    assert index.groupby("dataset").size().to_dict() == {"ravdess": 24, "savee": 28}
    assert set(index.loc[index["split"] == "test", "actor"]) == {"ravdess-06", "savee-KL"}
    assert set(index.loc[index["split"] == "val", "actor"]) == {"ravdess-05", "savee-JK"}
    assert index.loc[index["emotion"] == "calm", "label"].eq(0).all()  # merged7
    assert index["actor"].map(type).eq(str).all()
    assert index.groupby("actor")["fold"].nunique().eq(1).all()


def test_sexes_keep_the_speakers_of_one_sex_in_every_corpus(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO)
    _touch(
        tmp_path / "ravdess", [f"Actor_{a:02d}/03-01-{e:02d}-01-01-01-{a:02d}.wav" for a in range(1, 7) for e in (1, 5)]
    )
    _touch(tmp_path / "savee", savee_names(numbers=(1,)))
    _touch(tmp_path / "tess", ["OAF_back_angry.wav", "YAF_back_sad.wav"])
    roots = dict(corpora=["ravdess", "savee", "tess"], modalities=["audio"], n_folds=3)
    male = build_index(tmp_path, sexes=["male"], val_actors=[3], test_actors=[5], **roots)
    assert set(male["actor"]) == {"ravdess-01", "ravdess-03", "ravdess-05"} | {
        f"savee-{s}" for s in ("DC", "JE", "JK", "KL")
    }
    assert set(male["sex"]) == {"male"} and len(male) == 6 + 28
    assert "left out 8 clips outside modalities=['audio'], vocal_channels=['speech'], sexes=['male']" in caplog.text
    female = build_index(tmp_path, sexes=["female"], val_actors=[4], test_actors=[6], **roots)
    assert set(female["dataset"]) == {"ravdess", "tess"} and set(female["sex"]) == {"female"}
    assert len(build_index(tmp_path, val_actors=[4], test_actors=[6], **roots)) == 12 + 28 + 2  # default: everyone
    with pytest.raises(ConfigError, match="index.sexes"):
        IndexParams(sexes=("men",))


def test_savee_folds_are_speaker_disjoint_on_4_speakers(tmp_path):
    _touch(tmp_path, savee_names())
    index = build_index(tmp_path, corpora=["savee"], modalities=["audio"], val_actors=[], test_actors=[], n_folds=6)
    assert index.groupby("fold")["actor"].nunique().eq(1).all() and index["fold"].nunique() == 4
    tested = []
    for fold in range(4):
        split = fold_splits(index, fold)
        speakers = {s: set(index.loc[split == s, "actor"]) for s in ("train", "val", "test")}
        assert len(speakers["test"]) == len(speakers["val"]) == 1 and len(speakers["train"]) == 2
        assert not (speakers["train"] & speakers["test"]) and not (speakers["val"] & speakers["test"])
        assert not (speakers["train"] & speakers["val"])
        tested += speakers["test"]
    assert sorted(tested) == ["savee-DC", "savee-JE", "savee-JK", "savee-KL"]
    # the seeded rule (no named speakers): one test, one validation, two training speakers
    by_split = index.groupby("split")["actor"].nunique().to_dict()
    assert by_split == {"test": 1, "train": 2, "val": 1}


def test_seeded_rule_on_91_speakers_is_repeatable():
    speakers = [f"cremad-{n}" for n in range(1001, 1092)]
    val, test = seeded_speakers(speakers, seed=0)
    assert (len(test), len(val)) == (9, 18) and not set(val) & set(test)
    assert seeded_speakers(speakers, seed=0) == (val, test) and seeded_speakers(speakers, seed=1) != (val, test)
    with pytest.raises(DatasetError, match="at least 3"):
        seeded_speakers(["a", "b"])


def test_cremad_91_speakers_fold_groups(tmp_path):
    _touch(tmp_path, [f"{s}_DFA_{e}_XX.flv" for s in range(1001, 1092) for e in ("ANG", "HAP")])
    _touch(tmp_path, ["1001_DFA_ANG_XX.wav", "1001_DFA_ANG_XX.mp3"])  # the same clip in other files
    index = build_index(tmp_path, corpora=["cremad"], val_actors=[], test_actors=[])
    assert len(index) == 182 and index.loc[index["clip_id"] == "1001_DFA_ANG_XX", "path"].str.endswith(".flv").all()
    assert sorted(index.groupby("fold")["actor"].nunique()) == [15, 15, 15, 15, 15, 16]


def test_emodb_boredom_is_left_out_and_named(tmp_path, caplog):
    _touch(tmp_path, [f"{s}a01{e}a.wav" for s in ("03", "08", "09", "10") for e in "WLEAFTN"])
    index = build_index(tmp_path, corpora=["emodb"], modalities=["audio"], val_actors=["09"], test_actors=["10"])
    assert len(index) == 24 and "boredom" not in set(index["emotion"])
    assert "left out 4 clips whose emotion is not in index.classes=merged7" in caplog.text
    assert "emodb boredom (4: 03a01La.wav" in caplog.text


def test_all8_notes_the_corpora_without_calm(tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO)
    _touch(tmp_path, [f"03-01-02-01-01-01-{a:02d}.wav" for a in range(1, 4)])
    _touch(tmp_path, [f"OAF_back_{e}.wav" for e in ("angry", "sad")] + ["YAF_back_sad.wav"])
    index = build_index(
        tmp_path, corpora=["ravdess", "tess"], classes="all8", modalities=["audio"], val_actors=[2], test_actors=[3]
    )
    assert set(index["emotion"]) == {"calm", "angry", "sad"}
    assert "only ravdess clips can be calm; tess have no calm clips" in caplog.text


def test_heldout_corpus_is_never_trained_or_folded(tmp_path):
    _touch(tmp_path, [f"03-01-{e:02d}-01-01-01-{a:02d}.wav" for a in range(1, 7) for e in (1, 3)])
    _touch(tmp_path, savee_names(numbers=(1,)))
    index = build_index(
        tmp_path,
        corpora=["ravdess", "savee"],
        modalities=["audio"],
        val_actors=[5],
        test_actors=[6],
        heldout_corpora=["savee"],
        n_folds=3,
    )
    savee = index["dataset"] == "savee"
    assert index.loc[savee, "split"].eq("heldout").all() and index.loc[savee, "fold"].eq(-1).all()
    assert set(index.loc[~savee, "fold"]) == {0, 1, 2}
    for fold in range(3):
        assert fold_splits(index, fold)[savee].eq("heldout").all()
    with pytest.raises(DatasetError, match="nothing is left to train on"):
        build_index(tmp_path, corpora=["savee"], modalities=["audio"], heldout_corpora=["savee"])


def test_real_savee_index():
    if not SAVEE_DIR.is_dir():
        pytest.skip(f"{SAVEE_DIR} absent")
    index = build_index(SAVEE_DIR, corpora=["savee"], modalities=["audio"], val_actors=["JK"], test_actors=["KL"])
    assert len(index) == 480 and sorted(index["actor"].unique()) == ["savee-DC", "savee-JE", "savee-JK", "savee-KL"]
    assert index["emotion"].value_counts().to_dict()["neutral"] == 120


def test_cremad_flv_clip_goes_through_trim_audio_features_and_face_crops(tmp_path):
    """A CREMA-D-shaped FLV (480x360, 29.97 fps, MP3 audio at 22.05 kHz) through the stage functions.

    CREMA-D's video is VP6; the bundled ffmpeg decodes VP6 but cannot encode it, so the clip
    is Sorenson Spark (``-c:v flv``), the other FLV video codec, in the same container.
    """
    import json

    from mmer import preprocess
    from mmer.config import AudioParams, FacesParams, TrimParams
    from mmer.corpus import write_index
    from mmer.featurefile import read_cache

    import media_factory as mf

    source = mf.synth_video(tmp_path / "src.mp4", actor=1, emotion=5)
    clip = tmp_path / "raw" / "VideoFlash" / "1001_DFA_ANG_XX.flv"
    clip.parent.mkdir(parents=True)
    mf.ffmpeg(
        "-i", str(source), "-vf", "scale=480:360", "-r", "30000/1001", "-c:v", "flv", "-q:v", "4",
        "-c:a", "libmp3lame", "-ar", "22050", "-b:a", "64k", str(clip),
    )  # fmt: skip
    index = build_index(tmp_path / "raw", corpora=["cremad"], val_actors=["1002"], test_actors=["1003"])
    assert list(index["clip_id"]) == ["1001_DFA_ANG_XX"] and index.at[0, "modality"] == "av"
    write_index(index, tmp_path / "index.csv")
    out = tmp_path / "out"
    spans = preprocess.trim_stage(
        tmp_path / "index.csv",
        wav_dir=out / "wav",
        spans_path=out / "spans.csv",
        failures_path=out / "f_trim.csv",
        metrics_path=out / "trim.json",
        params=TrimParams(jobs=1),
        progress=False,
        cache_dir=None,
    )
    assert len(spans) == 1 and bool(spans.at[0, "has_audio"]) and (out / "wav" / "1001_DFA_ANG_XX.wav").is_file()
    preprocess.audio_features_stage(
        tmp_path / "index.csv",
        out / "spans.csv",
        wav_dir=out / "wav",
        out_path=out / "audio.h5",
        failures_path=out / "f_audio.csv",
        metrics_path=out / "audio.json",
        params=AudioParams(),
        progress=False,
    )
    preprocess.face_crops_stage(
        tmp_path / "index.csv",
        out / "spans.csv",
        out_path=out / "video.h5",
        failures_path=out / "f_faces.csv",
        metrics_path=out / "faces.json",
        params=FacesParams(jobs=1),
        progress=False,
        cache_dir=None,
    )
    audio, video = read_cache(out / "audio.h5"), read_cache(out / "video.h5", ("faces", "face_found"))
    assert audio.clip_ids == video.clip_ids == ["1001_DFA_ANG_XX"]
    assert audio.arrays["audio_features"].shape[2] == 24 and video.arrays["faces"].shape[1:] == (6, 64, 64, 3)
    assert video.arrays["face_found"].any(), json.loads((out / "faces.json").read_text())

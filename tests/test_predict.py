"""mmer.predict: the same features and probabilities as the stages, every input kind, every error.

One tiny corpus (the sample corpus generator at 320x240, 4 actors x 3 clips) goes through the
real preprocessing stage functions, a 1-epoch training and the evaluate stage in a module
fixture; ``mmer predict`` on the test speaker's clips, renamed, must give the probabilities of
the evaluate stage's predictions table.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.run import warm_latency
from mmer import predict_cli as pcli
from mmer import predictor as mp
from mmer.bundle import DIGEST_KEY, bundle_digest
from mmer.cli import main
from mmer.config import (
    SPAN_KEYS,
    AudioParams,
    AugmentParams,
    FacesParams,
    TrainParams,
    TrimParams,
)
from mmer.errors import (
    ConfigError,
    MediaError,
    ModelError,
    NoAudioError,
    NoFaceError,
    NoSpeechError,
)
from mmer.face_expression import FER_EMOTIONS, crops_expression
from mmer.featurefile import read_cache

import media_factory as mf
from conftest import ROOT
from feature_factory import tiny_model_params

pytestmark = pytest.mark.slow  # trains a model (once per module)

ACTORS = (1, 2, 3, 4)
VAL_ACTORS, TEST_ACTORS = (3,), (4,)
LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
# predictions.csv keeps 5 decimals
ATOL = 1e-5 + 5e-6


def ffmpeg(*args: str) -> None:
    subprocess.run([mf.FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True, capture_output=True)


def write_corpus(raw: Path) -> None:
    """The sample corpus when its generator is there, else still faces with tones (media_factory)."""
    try:
        from mmer.synth.corpus import synth_corpus
    except ImportError:
        synth_corpus = None
    if synth_corpus is not None:
        synth_corpus(raw, actors=ACTORS, clips_per_actor=3, width=320, height=240, progress=False)
        return
    rng = np.random.default_rng(0)
    face = mf.face_image()
    for actor in ACTORS:
        for k, emotion in enumerate((3, 4, 5)):
            audio = mf.sequence(
                ("silence", 0.6), ("tone", 0.8 + 0.2 * k), ("silence", 0.2), ("tone", 0.5), ("silence", 0.6), rng=rng
            )
            image = np.roll(face, 8 * (actor + k), axis=1)
            folder = raw / f"Actor_{actor:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            mf.still_video(folder / f"01-01-{emotion:02d}-01-01-01-{actor:02d}.mp4", image, 3.0, audio=audio)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """Corpus -> index -> trim, audio_features, face_crops -> 1-epoch training -> evaluate."""
    from mmer import preprocess
    from mmer.bundle import save_model_bundle
    from mmer.clips import load_clip_data
    from mmer.corpus import build_index, write_index
    from mmer.evaluation import evaluate_stage
    from mmer.training import train_model

    root = tmp_path_factory.mktemp("predict")
    write_corpus(root / "raw")
    index = build_index(
        root / "raw", classes="merged7", modalities=("av",), val_actors=VAL_ACTORS, test_actors=TEST_ACTORS, n_folds=2
    )
    paths = {
        name: root / name
        for name in ("index.csv", "spans.csv", "audio.h5", "video.h5", "model.keras", "predictions.csv")
    }
    write_index(index, paths["index.csv"])
    quiet = {"progress": False}
    preprocess.trim_stage(
        paths["index.csv"],
        wav_dir=root / "wav",
        spans_path=paths["spans.csv"],
        failures_path=root / "f1.csv",
        metrics_path=root / "m1.json",
        params=TrimParams(jobs=1),
        cache_dir=None,
        **quiet,
    )
    preprocess.audio_features_stage(
        paths["index.csv"],
        paths["spans.csv"],
        wav_dir=root / "wav",
        out_path=paths["audio.h5"],
        failures_path=root / "f2.csv",
        metrics_path=root / "m2.json",
        params=AudioParams(),
        **quiet,
    )
    preprocess.face_crops_stage(
        paths["index.csv"],
        paths["spans.csv"],
        out_path=paths["video.h5"],
        failures_path=root / "f3.csv",
        metrics_path=root / "m3.json",
        params=FacesParams(jobs=1),
        cache_dir=None,
        **quiet,
    )
    data = load_clip_data(paths["index.csv"], audio_path=paths["audio.h5"], video_path=paths["video.h5"])
    result = train_model(
        data,
        label_names=LABELS,
        model_params=tiny_model_params(),
        train_params=TrainParams(epochs=1, batch_size=8),
        augment_params=AugmentParams(enabled=False),
    )
    save_model_bundle(result.model, result.metadata, paths["model.keras"])
    evaluate_stage(
        paths["index.csv"],
        audio_path=paths["audio.h5"],
        video_path=paths["video.h5"],
        model_path=paths["model.keras"],
        metrics_path=root / "eval.json",
        predictions_path=paths["predictions.csv"],
        confusion_path=root / "c.png",
        recall_path=root / "r.png",
    )
    return {"root": root, "index": index, **paths}


@pytest.fixture(scope="module")
def predictor(bundle):
    with mp.Predictor(bundle["model.keras"]) as created:
        yield created


@pytest.fixture(scope="module")
def test_clips(bundle):
    """The evaluate stage's rows and each clip copied under a name that says nothing (or lies)."""
    table = pd.read_csv(bundle["predictions.csv"], dtype={"clip_id": str})
    paths = bundle["index"].set_index("clip_id")["path"]
    out = bundle["root"] / "renamed"
    out.mkdir()
    clips = []
    for i, clip_id in enumerate(table["clip_id"]):
        # the second name is a valid RAVDESS name of another emotion: prediction must ignore it
        name = f"clip {i}.mp4" if i % 2 == 0 else f"01-01-0{(i % 7) + 1}-01-01-01-99.mp4"
        clips.append(shutil.copy(paths[clip_id], out / name))
    return table, [Path(c) for c in clips]


@pytest.fixture(scope="module")
def kinds(bundle, test_clips):
    """One test clip in every form: audio-video, audio-only, silent video, silent audio track; and bad files."""
    _, clips = test_clips
    out = bundle["root"] / "kinds"
    out.mkdir()
    av = clips[0]
    rng = np.random.default_rng(5)
    ffmpeg("-i", str(av), "-vn", "-c:a", "copy", str(out / "voice.m4a"))  # same AAC packets: same samples
    ffmpeg("-i", str(av), "-an", "-c:v", "copy", str(out / "silent.mp4"))
    ffmpeg(
        "-i",
        str(av),
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=48000:cl=mono",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "copy",
        "-c:a",
        "aac",
        "-shortest",
        str(out / "silent_track.mp4"),
    )
    (out / "notes.txt").write_text("not a clip\n")
    noise = (0.2 * rng.standard_normal(int(2.5 * mf.SR))).astype(np.float32)
    return {
        "av": av,
        "audio": out / "voice.m4a",
        "silent": out / "silent.mp4",
        "silent_track": out / "silent_track.mp4",
        "missing": out / "missing.mp4",
        "random": mf.random_bytes(out / "random.mp4", rng),
        "text": out / "notes.txt",
        "no_face": mf.still_video(
            out / "cup.mp4", mf.no_face_image(), 2.5, audio=mf.tone_between_silences(rng, lead_s=0.5, tail_s=0.5)
        ),
        "no_speech": mf.still_video(out / "hiss.mp4", mf.face_image(), 2.5, audio=noise),
    }


def other_model(bundle, tmp_dir: Path, *, modality: str, fusion: str = "concat") -> Path:
    """An untrained model with the trained model's feature params (for the modality rules)."""
    from mmer.bundle import load_model_bundle, model_metadata, save_model_bundle
    from mmer.networks import build_model

    _, meta = load_model_bundle(bundle["model.keras"])
    shapes = {
        "audio_features_shape": tuple(meta["inputs"]["audio_features"]["shape"]),
        "faces_shape": tuple(meta["inputs"]["faces"]["shape"]),
    }
    params = tiny_model_params(inputs=modality, fusion=fusion)
    from dataclasses import asdict

    model = build_model(n_classes=len(LABELS), **shapes, **asdict(params))
    path = tmp_dir / f"{modality}_{fusion}" / "model.keras"
    save_model_bundle(
        model,
        model_metadata(
            model,
            model_inputs=modality,
            label_names=LABELS,
            feature_attrs=meta["features"],
            params={"model": asdict(params)},
        ),
        path,
    )
    return path


@pytest.fixture(scope="module")
def late_model(bundle):
    return other_model(bundle, bundle["root"], modality="av", fusion="average")


# --------------------------------------------------------------------------- same as the stages


def test_features_are_the_cached_ones(bundle, predictor, test_clips):
    table, clips = test_clips
    audio_cache, video_cache = read_cache(bundle["audio.h5"]), read_cache(bundle["video.h5"])
    for clip_id, clip in zip(table["clip_id"], clips):
        features = predictor.features(clip)
        assert features.head == "av" and set(features.inputs) == {"audio_features", "faces"}
        np.testing.assert_array_equal(
            features.inputs["audio_features"][0], audio_cache.select([clip_id])["audio_features"][0]
        )
        np.testing.assert_array_equal(features.inputs["faces"][0], video_cache.select([clip_id])["faces"][0])


def test_cli_predict_gives_the_evaluate_stage_probabilities(bundle, test_clips, capsys):
    table, clips = test_clips
    assert main(["predict", "--json", "--no-progress", "--model", str(bundle["model.keras"]), *map(str, clips)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(c) for c in clips]
    expected = table[[f"prob_{n}" for n in LABELS]].to_numpy()
    got = np.array([[line["probabilities"][n] for n in LABELS] for line in lines])
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0)
    assert [line["emotion"] for line in lines] == list(table["predicted"])
    first = lines[0]
    assert first["head"] == "av" and first["input"] == "audio-video" and first["faces_found"] == [True] * 6
    assert 0 <= first["span"]["start_s"] < first["span"]["end_s"] <= first["duration_s"]
    assert first["model"]["md5"] == mp.file_md5(bundle["model.keras"]) and first["probability"] == max(
        first["probabilities"].values()
    )
    # face_expression: the zero-shot FER2013 probabilities of the clip's cached crops
    video_cache = read_cache(bundle["video.h5"])
    for clip_id, line in zip(table["clip_id"], lines):
        cached = video_cache.select([clip_id])
        expected = crops_expression(cached["faces"][0], cached["face_found"][0])
        assert list(line["face_expression"]) == list(FER_EMOTIONS)
        np.testing.assert_allclose(
            [line["face_expression"][k] for k in FER_EMOTIONS], [expected[k] for k in FER_EMOTIONS], atol=1e-5
        )


def test_prediction_ignores_the_file_name(predictor, test_clips, tmp_path):
    _, clips = test_clips
    renamed = Path(shutil.copy(clips[0], tmp_path / "01-01-08-02-02-02-24.mov"))  # says "surprised", another suffix
    assert predictor.predict(renamed).probabilities == predictor.predict(clips[0]).probabilities


def test_trim_params_come_from_the_params_file():
    span = pcli.resolve_span_params(ROOT / "params.yaml")
    assert tuple(span) == SPAN_KEYS and span["threshold_db"] < 0
    assert pcli.resolve_span_params(ROOT / "no-such-params.yaml") is None


# --------------------------------------------------------------------------- input kinds


def test_concat_model_says_what_is_missing(predictor, kinds):
    with pytest.raises(
        MediaError,
        match=r"voice\.m4a: no video stream \(an audio-only file\): the av model \(concat fusion\) .*no audio-only head",
    ):
        predictor.predict(kinds["audio"])
    with pytest.raises(NoAudioError, match=r"silent\.mp4: no audio stream \(a silent video\): .*no video-only head"):
        predictor.predict(kinds["silent"])
    with pytest.raises(NoAudioError, match=r"silent_track\.mp4: no sound \(a silent audio track\)"):
        predictor.predict(kinds["silent_track"])


def test_late_fusion_model_answers_with_the_branch_it_can(bundle, late_model, kinds, test_clips):
    table, clips = test_clips
    with mp.Predictor(late_model) as late:
        both = late.predict(kinds["av"])
        voice = late.predict(kinds["audio"])
        face = late.predict(kinds["silent"])
        assert (both.head, voice.head, face.head) == ("av", "audio", "video")
        assert (voice.input_kind, face.input_kind) == ("audio", "silent video")
        assert voice.faces_found is None and face.faces_found == [True] * 6
        assert face.start_s == 0.0 and face.end_s == pytest.approx(face.duration_s)
        # the audio-only answer is the model's own audio head on the cached features of that clip
        head, meta = late._heads["audio"]
        cached = read_cache(bundle["audio.h5"]).select([table["clip_id"][0]])
        from mmer.bundle import predict_proba

        expected = predict_proba(head, meta, {"audio_features": cached["audio_features"]})[0]
        np.testing.assert_allclose([voice.probabilities[n] for n in LABELS], expected, atol=1e-5)
        assert not np.allclose(list(voice.probabilities.values()), list(both.probabilities.values()), atol=1e-6)


def test_unimodal_models(bundle, kinds, tmp_path):
    with mp.Predictor(other_model(bundle, tmp_path, modality="audio")) as audio_only:
        result = audio_only.predict(kinds["av"])
        assert result.head == "audio" and result.faces_found is None
        assert result.to_json()["face_expression"] is None  # no face crops taken for an audio model
        assert audio_only.predict(kinds["audio"]).probabilities == pytest.approx(result.probabilities, abs=1e-5)
        with pytest.raises(NoAudioError, match="silent.mp4: no audio stream .*the audio model needs speech"):
            audio_only.predict(kinds["silent"])
    with mp.Predictor(other_model(bundle, tmp_path, modality="video")) as video_only:
        silent = video_only.predict(kinds["silent"])
        assert silent.head == "video" and sum(silent.to_json()["face_expression"].values()) == pytest.approx(
            1, abs=1e-5
        )
        with pytest.raises(MediaError, match="voice.m4a: no video stream .*the video model needs a face"):
            video_only.predict(kinds["audio"])


# --------------------------------------------------------------------------- bad clips and models


@pytest.mark.parametrize(
    "kind, error, message",
    [
        ("missing", MediaError, "missing.mp4: no such file"),
        ("random", MediaError, "random.mp4: unreadable media file"),
        ("text", MediaError, "notes.txt: unreadable media file"),
        ("no_face", NoFaceError, "cup.mp4: no face in any of 6 sampled frames"),
        ("no_speech", NoSpeechError, "hiss.mp4: no speech"),
    ],
)
def test_bad_clips_raise_one_line_errors_naming_the_file(predictor, kinds, kind, error, message):
    with pytest.raises(error, match=message) as caught:
        predictor.predict(kinds[kind])
    assert "\n" not in str(caught.value)


def _bundle_copy(bundle, tmp_path: Path) -> Path:
    for name in ("model.keras", "model.json"):
        shutil.copy(bundle["root"] / name, tmp_path / name)
    return tmp_path / "model.keras"


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda meta: meta.update(label_names=LABELS[:3]), "has 7 outputs but .* names 3 labels"),
        (
            lambda meta: meta["features"]["audio"].update(padded_frames=meta["features"]["audio"]["padded_frames"] + 5),
            "audio params give MFCCs of shape",
        ),
        (lambda meta: meta["features"]["video"].update(size=32), "faces params give crops of shape"),
        (lambda meta: meta["inputs"]["faces"].update(shape=[6, 32, 32, 3]), "do not belong together"),
        (lambda meta: meta["features"].pop("audio"), r"features.audio: no \["),
        (lambda meta: meta.update(model_inputs="audio"), "reads \\['audio_features'\\], but the file lists inputs"),
    ],
)
def test_a_model_that_does_not_fit_its_description_is_refused(bundle, tmp_path, change, message):
    model_path = _bundle_copy(bundle, tmp_path)
    meta = json.loads(model_path.with_suffix(".json").read_text())
    change(meta)
    meta[DIGEST_KEY] = bundle_digest(model_path, meta)  # edited consistently: check_bundle must still refuse it
    model_path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=message):
        mp.Predictor(model_path)


def test_missing_or_broken_model_files(bundle, tmp_path):
    with pytest.raises(ModelError, match="nothing.keras: not found"):
        mp.Predictor(tmp_path / "nothing.keras")
    model_path = _bundle_copy(bundle, tmp_path)
    model_path.write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="model.keras: cannot load the model"):
        mp.Predictor(model_path)


# --------------------------------------------------------------------------- command line


def test_batch_reports_bad_clips_and_goes_on(bundle, kinds, tmp_path, capsys, caplog):
    order = ["av", "missing", "random", "no_face", "no_speech", "audio"]
    csv_path = tmp_path / "out" / "predictions.csv"
    status = main(
        [
            "predict",
            "--no-progress",
            "--model",
            str(bundle["model.keras"]),
            "--csv",
            str(csv_path),
            *(str(kinds[k]) for k in order),
        ]
    )
    assert status == pcli.EXIT_FAILED
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].split()[:3] == ["file", "emotion", "prob"] and rows[0].split()[3:] == [n[:9] for n in LABELS]
    assert len(rows) == 1 + len(order) and "FAILED" not in rows[1] and all("FAILED" in r for r in rows[2:])
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    for kind in order[1:]:
        assert sum(str(kinds[kind]) in e for e in errors) == 1
    assert any("5 of 6 clips failed" in r.getMessage() for r in caplog.records)
    table = pd.read_csv(csv_path, keep_default_na=False)
    assert list(table["file"]) == [str(kinds[k]) for k in order]
    assert (
        table["error"][0] == ""
        and table["error"][1].startswith("MediaError: ")
        and table["error"][3].startswith("NoFaceError: ")
    )
    assert [c for c in table.columns if c.startswith("prob_")] == [f"prob_{n}" for n in LABELS]
    assert float(table["probability"][0]) == pytest.approx(max(float(table[f"prob_{n}"][0]) for n in LABELS))


def test_single_bad_clip_exits_non_zero_with_json_error(bundle, kinds, capsys, caplog):
    assert main(["predict", "--json", "--model", str(bundle["model.keras"]), str(kinds["missing"])]) == pcli.EXIT_FAILED
    line = json.loads(capsys.readouterr().out)
    assert line == {"file": str(kinds["missing"]), "error": f"{kinds['missing']}: no such file", "kind": "MediaError"}
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [f"{kinds['missing']}: no such file"]


def test_missing_model_exits_one(kinds, tmp_path, caplog):
    assert main(["predict", "--model", str(tmp_path / "model.keras"), str(kinds["av"])]) == 1
    assert any("model.keras: not found" in r.getMessage() for r in caplog.records)


def test_usage_errors_exit_two(bundle, kinds, tmp_path, caplog):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    assert main(["predict", "--model", str(bundle["model.keras"]), str(tmp_path / "empty")]) == pcli.EXIT_USAGE
    assert any("empty: no media files" in r.getMessage() for r in caplog.records)
    two = [str(kinds["av"]), str(kinds["silent"])]
    assert (
        main(["predict", "--model", str(bundle["model.keras"]), "--annotate", str(tmp_path / "out.mp4"), *two])
        == pcli.EXIT_USAGE
    )
    assert (
        main(["predict", "--model", str(bundle["model.keras"]), "--annotate", str(tmp_path / "out.avi"), two[0]])
        == pcli.EXIT_USAGE
    )


def test_find_clips_searches_folders_and_keeps_named_files(tmp_path):
    for name in ("b/2.mp4", "a/1.wav", "a/deep/3.MOV", "a/readme.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert mp.find_clips([tmp_path]) == [tmp_path / "a/1.wav", tmp_path / "a/deep/3.MOV", tmp_path / "b/2.mp4"]
    assert mp.find_clips([tmp_path / "a/readme.txt", tmp_path / "gone.mp4"]) == [
        tmp_path / "a/readme.txt",
        tmp_path / "gone.mp4",
    ]
    with pytest.raises(ConfigError, match="no clip"):
        mp.find_clips([])


def test_annotate_one_clip_and_a_folder(late_model, kinds, tmp_path, capsys, caplog):
    out = tmp_path / "one.mp4"
    assert main(["predict", "--json", "--model", str(late_model), "--annotate", str(out), str(kinds["av"])]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["annotated"] == str(out) and out.stat().st_size > 0
    from mmer import media

    info = media.probe(out)
    assert info.has_video and info.has_audio and info.frame_size == media.probe(kinds["av"]).frame_size

    folder = tmp_path / "many"
    clips = [str(kinds["av"]), str(kinds["silent"]), str(kinds["audio"])]
    assert main(["predict", "--no-progress", "--model", str(late_model), "--annotate", str(folder), *clips]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{Path(kinds['av']).stem}.annotated.mp4",
        "silent.annotated.mp4",
    ]
    assert any("voice.m4a: audio-only: no video to annotate" in r.getMessage() for r in caplog.records)


def test_warm_latency_reports_seconds(bundle, kinds):
    figures = warm_latency(kinds["av"], bundle["model.keras"], repeats=1)
    assert figures["repeats"] == 1 and 0 < figures["min_s"] <= figures["max_s"] and figures["load_s"] > 0


# --------------------------------------------------------------------------- genuine RAVDESS files


@pytest.mark.realdata
def test_genuine_ravdess_files(real_av_dir, predictor, late_model):
    av = sorted(real_av_dir.rglob("01-01-*.mp4"))[0]
    silent = sorted(real_av_dir.rglob("02-01-*.mp4"))[0]
    result = predictor.predict(av)
    assert result.head == "av" and result.input_kind == "audio-video" and sum(result.faces_found) >= 5
    assert 0.0 < result.start_s < result.end_s < result.duration_s
    with pytest.raises(NoAudioError, match="no sound \\(a silent audio track\\)"):
        predictor.predict(silent)
    with mp.Predictor(late_model) as late:
        face = late.predict(silent)
        assert face.head == "video" and face.input_kind == "silent video" and sum(face.faces_found) >= 5


def test_csv_rows_carry_the_true_emotion_a_file_name_gives():
    from mmer.predict_cli import accuracy_by_corpus, true_emotion

    names = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    assert true_emotion("clips/DC_sa01.wav", names) == ("savee", "sad")
    assert true_emotion("x/03-01-02-01-01-01-12.wav", names) == ("ravdess", "neutral")  # calm merged
    assert true_emotion("1001_DFA_ANG_XX.flv", names) == ("cremad", "angry")
    assert true_emotion("03a01La.wav", names) == ("emodb", "")  # boredom: no class
    assert true_emotion("holiday.mp4", names) == ("", "")
    rows = [
        {"corpus": "savee", "true_emotion": "sad", "emotion": "sad"},
        {"corpus": "savee", "true_emotion": "sad", "emotion": "happy"},
        {"corpus": "", "true_emotion": "", "emotion": "happy"},
    ]
    assert accuracy_by_corpus(rows) == "savee 0.500 (1/2 clips)"

"""The options for real speech: log-mel, raw and speaker normalisation, offline perturbation,
conv front end and pooling, audio-only corpora, presets; and the real RAVDESS speech folder
(skipped when ../shared/data is absent)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from mmer import audio
from mmer.clips import align_clips
from mmer.config import AudioParams, ModelParams, SpanParams, TrainParams
from mmer.errors import ConfigError
from mmer.featurefile import FeatureCache, read_cache, write_cache
from mmer.networks import build_model
from mmer.preprocess import SPAN_COLUMNS, audio_features_stage, samples_stage
from mmer.presets import check_preset, dvc_set_args, load_preset
from mmer.training import cross_validate, train_model

from conftest import ROOT
from feature_factory import (
    make_corpus,
    make_index,
    tiny_augment_params,
    tiny_model_params,
)

SR = 16000
FAST = TrainParams(epochs=1, batch_size=16, patience=2)


def tone(freq: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(signal: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    return float(np.fft.rfftfreq(len(signal), 1 / SR)[np.argmax(spectrum)])


# --- features ---


def test_log_mel_frames_match_mfcc_and_find_the_tone():
    signal = tone(1000.0)
    energies = audio.log_mel(signal, SR, n_mels=40)
    assert energies.shape == audio.mfcc(signal, SR).shape[:1] + (40,)
    centres = audio.librosa.mel_frequencies(n_mels=42, fmax=SR / 2)[1:-1]
    assert abs(centres[energies.mean(axis=0).argmax()] - 1000.0) < 150
    assert energies.min() >= audio.LOG_MEL_FLOOR_DB
    # an absolute scale keeps loudness: half the amplitude is 6 dB less
    loudest = lambda x: audio.log_mel(x, SR).max(axis=1).mean()  # noqa: E731 - the tone's band, above the floor
    assert loudest(signal / 2) == pytest.approx(loudest(signal) - 6.02, abs=0.05)
    assert audio.log_mel(signal, SR, deltas=True).shape[1] == 120


def test_feature_options_columns_and_normalisation(rng):
    signal = tone(300.0) + 0.01 * rng.normal(size=SR // 2).astype(np.float32)
    raw = audio.clip_mfcc(signal, SR, normalise="none")
    np.testing.assert_array_equal(raw, audio.mfcc(signal - np.float32(signal.mean()), SR))  # DC removed first
    assert abs(audio.clip_mfcc(signal, SR).mean()) < 1e-5
    assert (
        audio.clip_mfcc(signal, SR, features="logmel", n_mels=32, deltas=True).shape[1]
        == audio.n_features(features="logmel", n_mels=32, deltas=True)
        == 96
    )
    with pytest.raises(ConfigError, match="audio.features"):
        audio.clip_mfcc(signal, SR, features="plp")
    with pytest.raises(ConfigError, match="audio.normalise"):
        audio.clip_mfcc(signal, SR, normalise="global")
    with pytest.raises(ConfigError, match="shorter than one window"):
        audio.log_mel(signal[:300], SR)


def test_speaker_standardise_uses_each_speakers_frames(rng):
    clips = [rng.normal(5, 2, (30, 3)), rng.normal(5, 2, (50, 3)), rng.normal(-4, 9, (40, 3))]
    out = audio.speaker_standardise(clips, ["a", "a", "b"])
    joined = np.concatenate(out[:2])
    np.testing.assert_allclose(joined.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(joined.std(axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(out[2], audio.standardise(clips[2]), atol=1e-5)  # a speaker of one clip
    with pytest.raises(ConfigError):
        audio.speaker_standardise(clips, ["a"])


def test_speed_and_pitch_perturbation():
    signal = tone(440.0, 1.0)
    faster = audio.perturb(signal, SR, speed=1.1)
    assert len(faster) == pytest.approx(len(signal) / 1.1, abs=2)
    assert peak_hz(faster) == pytest.approx(440 * 1.1, abs=3)
    lower = audio.perturb(signal, SR, semitones=-2)
    assert len(lower) == len(signal) and peak_hz(lower) == pytest.approx(440 * 2 ** (-2 / 12), abs=3)
    np.testing.assert_array_equal(audio.perturb(signal, SR), signal)
    copies = audio.clip_feature_set(signal, SR, perturbations=("speed0.9", "pitch2"))
    assert len(copies) == 3 and len(copies[1]) > len(copies[0])


@pytest.mark.parametrize("bad", ["speed", "speed3", "pitch", "tempo1.1", "speedx"])
def test_bad_perturbation_names_raise(bad):
    with pytest.raises(ConfigError, match="audio.perturbations"):
        audio.parse_perturbation(bad)
    with pytest.raises(ConfigError):
        AudioParams(perturbations=(bad,))


def test_audio_params_validate_new_keys():
    assert AudioParams().features == "mfcc" and AudioParams().normalise == "clip" and AudioParams().perturbations == ()
    for bad in ({"features": "plp"}, {"normalise": "global"}, {"perturbations": ("speed0.9", "speed0.9")}):
        with pytest.raises(ConfigError):
            AudioParams(**bad)


# --- the feature stage: perturbed copies and speaker normalisation ---


@pytest.fixture
def span_corpus(tmp_path, rng):
    """A tiny index with a tone wav per clip (the pitch rises with the label) and its spans."""
    index = make_index(actors=(1, 2, 3), repetitions=1, val_actors=(2,), test_actors=(3,), n_folds=3)
    wav_dir = tmp_path / "wav"
    wav_dir.mkdir()
    for clip_id, label, actor in zip(index["clip_id"], index["label"], index["actor"]):
        signal = tone(200.0 + 60 * label + 7 * actor, 0.4 + 0.05 * label) + 0.01 * rng.normal(
            size=int(SR * (0.4 + 0.05 * label))
        )
        sf.write(wav_dir / f"{clip_id}.wav", signal.astype(np.float32), SR)
    index_path, spans_path = tmp_path / "index.csv", tmp_path / "spans.csv"
    index.to_csv(index_path, index=False)
    pd.DataFrame(
        [{"clip_id": c, "start_s": 0.0, "end_s": 0.4, "duration_s": 0.5, "has_audio": True} for c in index["clip_id"]],
        columns=SPAN_COLUMNS,
    ).to_csv(spans_path, index=False)
    return index, index_path, spans_path, wav_dir


def run_features(tmp_path, span_corpus, **params):
    index, index_path, spans_path, wav_dir = span_corpus
    out = tmp_path / "audio.h5"
    audio_features_stage(
        index_path,
        spans_path,
        wav_dir=wav_dir,
        out_path=out,
        failures_path=tmp_path / "f.csv",
        metrics_path=tmp_path / "m.json",
        params=AudioParams(**params),
        span=SpanParams(sample_rate=SR),
        progress=False,
    )
    return read_cache(out)


def test_feature_stage_stores_perturbed_copies_beside_the_originals(tmp_path, span_corpus):
    cache = run_features(
        tmp_path, span_corpus, perturbations=("speed0.9", "speed1.1"), normalise="none", features="logmel", n_mels=32
    )
    n, t, c = cache.arrays["audio_features"].shape
    assert c == 32 and cache.arrays["audio_features_perturbed"].shape == (n, 2, t, c)
    slower, faster = cache.arrays["speech_frames_perturbed"].T
    assert np.all(slower > cache.arrays["speech_frames"]) and np.all(faster < cache.arrays["speech_frames"])
    assert cache.attrs["perturbations"] == ["speed0.9", "speed1.1"] and cache.attrs["normalise"] == "none"
    plain = run_features(tmp_path, span_corpus)
    assert "audio_features_perturbed" not in plain.arrays and plain.arrays["audio_features"].shape[2] == 24


def test_feature_stage_speaker_normalisation(tmp_path, span_corpus):
    index = span_corpus[0]
    cache = run_features(tmp_path, span_corpus, normalise="speaker", perturbations=("pitch2",))
    actors = index.set_index("clip_id").loc[cache.clip_ids, "actor"].to_numpy()
    t = cache.arrays["audio_features"].shape[1]
    for copy in (cache.arrays["audio_features"], cache.arrays["audio_features_perturbed"][:, 0]):
        lengths = (
            cache.arrays["speech_frames"]
            if copy is cache.arrays["audio_features"]
            else cache.arrays["speech_frames_perturbed"][:, 0]
        )
        for actor in set(actors):
            rows = np.where(actors == actor)[0]
            frames = np.concatenate([copy[r, t - min(lengths[r], t) :] for r in rows])
            assert np.abs(frames.mean(axis=0)).max() < 0.2  # truncation to T drops a few frames
            per_clip = [copy[r, t - min(lengths[r], t) :].mean(axis=0) for r in rows]
            assert np.ptp(np.stack(per_clip), axis=0).max() > 0.1  # clips still differ (not per clip)


# --- perturbed copies train, never evaluate ---


def test_perturbed_copies_are_used_for_training_clips_only():
    corpus = make_corpus(seed=5, perturbations=("speed0.9", "speed1.1"))
    summary, per_fold = cross_validate(
        corpus.index,
        corpus.caches,
        label_names=corpus.label_names,
        folds=(0,),
        model_params=tiny_model_params(inputs="audio"),
        train_params=FAST,
        augment_params=tiny_augment_params(),
    )
    fold = align_clips(corpus.index, corpus.caches, fold=0)
    assert per_fold[0]["n"] == int((fold.splits == "test").sum())  # test clips once each, no copies
    assert per_fold[0]["training"]["n_train"] == 3 * int((fold.splits == "train").sum())
    assert per_fold[0]["training"]["n_val"] == int((fold.splits == "val").sum())
    # test-time augmentation: each test clip and its 2 copies, reported beside the plain figure
    assert per_fold[0]["tta"]["n_views"] == 3 and per_fold[0]["tta"]["n"] == per_fold[0]["n"]
    assert "tta_accuracy" in summary
    kept = per_fold[0]["test_probabilities"]
    assert len(kept["clip_ids"]) == len(kept["plain"]) == len(kept["tta"]) == per_fold[0]["n"]
    np.testing.assert_allclose(np.sum(kept["tta"], axis=1), 1.0, atol=1e-3)


# --- model options ---


OPTIONS = [
    {"audio_pooling": "stats"},
    {"audio_pooling": "attention", "audio_rnn_layers": 1},
    {"audio_frontend": "conv1d", "audio_conv_filters": 8, "audio_rnn_layers": 0, "audio_pooling": "stats"},
    {"audio_frontend": "conv1d", "audio_conv_filters": 8, "audio_conv_layers": 1, "audio_pooling": "attention"},
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_audio_options_build_train_and_ignore_the_padding(options, tmp_path):
    corpus = make_corpus(seed=6, raw=True)
    data = align_clips(corpus.index, corpus.caches)
    params = tiny_model_params(inputs="audio", **options)
    result = train_model(
        data,
        label_names=corpus.label_names,
        model_params=params,
        train_params=FAST,
        augment_params=tiny_augment_params(),
    )
    model, mfcc = result.model, data.arrays["audio_features"][:4].copy()
    before = model.predict_on_batch({"audio_features": mfcc})
    shorter = mfcc.copy()
    shorter[:, :2] = 0.0  # two more frames of padding in front: the speech frames left are the same...
    for row, length in enumerate(data.arrays["speech_frames"][:4]):
        if length < mfcc.shape[1] - 2:  # ...for clips whose speech does not start in them
            np.testing.assert_allclose(model.predict_on_batch({"audio_features": shorter})[row], before[row], atol=1e-4)
    model.save(tmp_path / "m.keras")
    import keras

    reloaded = keras.saving.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_allclose(reloaded.predict_on_batch({"audio_features": mfcc}), before, atol=1e-5)


@pytest.mark.parametrize(
    "bad",
    [
        {"audio_frontend": "conv2d"},
        {"audio_pooling": "max"},
        {"audio_rnn_layers": 3},
        {"audio_rnn_layers": 0},
        {"audio_frontend": "conv1d", "audio_conv_filters": 0},
    ],
)
def test_bad_audio_options_raise(bad):
    with pytest.raises(ConfigError):
        kwargs = {**dataclasses.asdict(ModelParams(inputs="audio")), **bad}
        build_model(n_classes=3, audio_features_shape=(20, 4), **kwargs)


def test_defaults_keep_the_reference_blstm():
    model = build_model(n_classes=4, audio_features_shape=(30, 24), **dataclasses.asdict(ModelParams(inputs="audio")))
    names = [layer.name for layer in model.get_layer("audio").layers]
    assert names == [
        "audio_features",
        "frame_pool",
        "padding_mask",
        "blstm_1",
        "blstm_dropout",
        "blstm_2",
        "audio_dense",
    ]


# --- audio-only corpora ---


def test_audio_only_corpus_trains_and_plots_without_video(tmp_path):
    corpus = make_corpus(seed=7)
    empty = FeatureCache({k: v[:0] for k, v in corpus.video.arrays.items()}, [], corpus.video.attrs)
    data = align_clips(corpus.index, {"audio": corpus.audio, "video": empty})
    assert set(data.clip_ids) == set(corpus.audio.clip_ids) and "faces" not in data.arrays
    result = train_model(
        data,
        label_names=corpus.label_names,
        model_params=tiny_model_params(inputs="audio"),
        train_params=FAST,
        augment_params=tiny_augment_params(),
    )
    assert result.summary["n_train"] > 0
    with pytest.raises(Exception, match="faces"):
        train_model(
            data,
            label_names=corpus.label_names,
            model_params=tiny_model_params(inputs="av"),
            train_params=FAST,
            augment_params=tiny_augment_params(),
        )
    corpus.index.to_csv(tmp_path / "index.csv", index=False)
    write_cache(tmp_path / "audio.h5", corpus.audio.arrays, corpus.audio.clip_ids, corpus.audio.attrs)
    write_cache(tmp_path / "video.h5", empty.arrays, [], empty.attrs)
    samples_stage(
        tmp_path / "index.csv", tmp_path / "audio.h5", tmp_path / "video.h5", out_path=tmp_path / "samples.png"
    )
    assert (tmp_path / "samples.png").stat().st_size > 1000


# --- presets ---


def test_presets_in_the_repo_name_existing_params():
    from mmer.config import read_params

    params = read_params(ROOT / "params.yaml")
    names = sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))
    assert "ravdess-speech" in names
    for name in names:
        check_preset(load_preset(name, directory=ROOT / "presets"), params, name=name)


def test_preset_arguments_and_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("index.modalities: [audio]\nindex.val_actors: [16, 17]\nmodel.inputs: audio\n")
    (tmp_path / "b.yaml").write_text("model.inputs: av\n")
    args = dvc_set_args([load_preset("a", directory=tmp_path), load_preset("b", directory=tmp_path)])
    assert args == ["-S", 'index.modalities=["audio"]', "-S", "index.val_actors=[16,17]", "-S", "model.inputs=av"]
    (tmp_path / "flat.yaml").write_text("model:\n  modality: audio\n")
    with pytest.raises(ConfigError, match="section.key"):
        load_preset("flat", directory=tmp_path)
    with pytest.raises(ConfigError, match="no preset"):
        load_preset("missing", directory=tmp_path)
    with pytest.raises(ConfigError, match="not in params"):
        check_preset({"model.modalty": "audio"}, {"model": {"modality": "av"}})


# --- the real RAVDESS speech folder (skipped when absent) ---


def test_real_speech_index_trim_and_features(real_speech_dir, tmp_path):
    from mmer.corpus import build_index
    from mmer.speech import trim_clip

    index = build_index(
        real_speech_dir, modalities=["audio"], classes="all8", val_actors=(16, 17), test_actors=(18,), n_folds=6
    )
    assert len(index) == 1080 and index["actor"].nunique() == 18 and set(index["modality"]) == {"audio"}
    assert index.groupby("fold")["actor"].nunique().eq(3).all() and set(index["split"]) == {"train", "val", "test"}
    for path in index.groupby("emotion")["path"].first().iloc[:3]:
        span = trim_clip(path, tmp_path / "span.wav")
        assert span["has_audio"] and 0.0 < span["start_s"] < span["end_s"] < span["duration_s"]
        assert 0.8 < span["end_s"] - span["start_s"] < 3.5  # one short sentence
        features = audio.wav_mfcc(tmp_path / "span.wav")
        assert features.shape[1] == 24 and 80 < len(features) < 350 and np.isfinite(features).all()


def test_feature_stage_warns_naming_a_clip_far_longer_than_the_rest(tmp_path, span_corpus, caplog):
    """One 6 s clip among 0.4-0.75 s ones: named in a warning, cut to T, and T is the others' mean."""
    index, _, _, wav_dir = span_corpus
    train_ids = list(index.loc[index["split"] == "train", "clip_id"])
    long_id = train_ids[0]
    normal = run_features(tmp_path, span_corpus)
    lengths = dict(zip(normal.clip_ids, normal.arrays["speech_frames"].tolist()))
    others_t = int(round(np.mean([lengths[c] for c in train_ids[1:]])))
    sf.write(wav_dir / f"{long_id}.wav", tone(300.0, 6.0), SR)
    with caplog.at_level("WARNING", logger="mmer.preprocess"):
        cache = run_features(tmp_path, span_corpus)
    frames = int(cache.arrays["speech_frames"][cache.clip_ids.index(long_id)])
    assert frames > 10 * others_t
    assert (
        f"audio_features: 1 clips are over 4 times the median length and are cut to T={others_t} frames "
        f"(left out of T's mean): {long_id} ({frames} frames)"
    ) in caplog.text
    assert cache.attrs["padded_frames"] == others_t  # the long clip did not lengthen T
    assert json.loads((tmp_path / "m.json").read_text())["truncated"] >= 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="mmer.preprocess"):  # the clips as they were: no warning
        sf.write(wav_dir / f"{long_id}.wav", tone(300.0, 0.5), SR)
        run_features(tmp_path, span_corpus)
    assert "median length" not in caplog.text


def test_feature_stage_caches_the_functionals_it_is_asked_for(tmp_path, span_corpus):
    from mmer.functionals import SEMITONE_REFERENCE_HZ, functional_names

    index = span_corpus[0].set_index("clip_id")
    cache = run_features(tmp_path, span_corpus, functionals=("rhythm", "pitch"))
    names = functional_names(("pitch", "rhythm"))
    values = cache.arrays["functionals"]
    assert values.shape == (len(cache.clip_ids), len(names)) and cache.attrs["functionals"] == ["rhythm", "pitch"]
    hz = 200.0 + 60 * index.loc[cache.clip_ids, "label"].to_numpy() + 7 * index.loc[cache.clip_ids, "actor"].to_numpy()
    expected = 12 * np.log2(hz / SEMITONE_REFERENCE_HZ)
    assert np.allclose(values[:, names.index("f0_p50")], expected, atol=0.5)
    assert "functionals" not in run_features(tmp_path, span_corpus).arrays

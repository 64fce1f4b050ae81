import json

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from mmer.augment import augment_batch, augment_faces, augment_mfcc, mixup_batch
from mmer.bundle import load_model_bundle, predict_proba
from mmer.clips import align_clips, frame_statistics, with_perturbed_copies
from mmer.config import AugmentParams, CvParams, TrainParams, from_mapping, load_section
from mmer.errors import ConfigError, DatasetError
from mmer.networks import build_model
from mmer.splits import member_splits
from mmer.training import (
    ClipBatches,
    audio_statistics,
    class_weights,
    cv_stage,
    fit_model,
    train_model,
    train_stage,
)

from conftest import ROOT
from feature_factory import (
    make_corpus,
    tiny_augment_params,
    tiny_model_params,
    write_corpus,
)

FAST = TrainParams(epochs=2, batch_size=16, patience=5)


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(seed=3)


@pytest.fixture(scope="module")
def data(corpus):
    return align_clips(corpus.index, corpus.caches)


# --- data alignment and folds ---


def test_align_uses_clips_of_both_caches_in_index_order(corpus, data):
    both = set(corpus.audio.clip_ids) & set(corpus.video.clip_ids)
    assert set(data.clip_ids) == both and len(data) == len(corpus.index) - 4
    assert list(data.clip_ids) == [c for c in corpus.index["clip_id"] if c in both]
    row = list(corpus.audio.clip_ids).index(data.clip_ids[0])
    np.testing.assert_array_equal(data.arrays["audio_features"][0], corpus.audio.arrays["audio_features"][row])
    assert set(data.arrays) == {"audio_features", "speech_frames", "faces", "face_found"}
    assert {*data.splits} == {"train", "val", "test"}
    with pytest.raises(ConfigError, match="unknown caches"):
        align_clips(corpus.index, {"speech": corpus.audio})


def test_an_empty_video_cache_leaves_an_audio_only_corpus(corpus):
    from mmer.featurefile import FeatureCache
    from mmer.training import input_shapes

    no_video = FeatureCache({k: v[:0] for k, v in corpus.video.arrays.items()}, [], corpus.video.attrs)
    audio_only = align_clips(corpus.index, {"audio": corpus.audio, "video": no_video})
    assert len(audio_only) == len(corpus.audio.clip_ids) and "faces" not in audio_only.arrays
    assert input_shapes(audio_only, "audio") == {"audio_features_shape": (40, 8)}
    with pytest.raises(DatasetError, match="model.inputs: audio"):
        input_shapes(audio_only, "av")


def test_folds_never_share_a_speaker(corpus):
    tested = []
    for fold in range(3):
        fold_data = align_clips(corpus.index, corpus.caches, fold=fold)
        actors = {s: set(fold_data.split(s).actors) for s in ("train", "val", "test")}
        assert all(actors.values())
        assert (
            not actors["train"] & actors["val"]
            and not actors["train"] & actors["test"]
            and not actors["val"] & actors["test"]
        )
        tested += sorted(actors["test"])
    assert sorted(tested) == sorted({str(a) for a in corpus.index["actor"]})  # every speaker tested exactly once


def test_perturbed_copies_join_the_training_clips_only():
    corpus = make_corpus(seed=4, perturbations=("speed0.9", "pitch-2"))
    data = align_clips(corpus.index, corpus.caches)
    train = data.split("train")
    extended = with_perturbed_copies(train)
    n = len(train)
    assert len(extended) == 3 * n and list(extended.clip_ids[:n]) == list(train.clip_ids)
    assert (
        extended.clip_ids[n] == f"{train.clip_ids[0]}~speed0.9"
        and extended.clip_ids[2 * n] == f"{train.clip_ids[0]}~pitch-2"
    )
    np.testing.assert_array_equal(
        extended.arrays["audio_features"][2 * n + 1], train.arrays["audio_features_perturbed"][1, 1]
    )
    np.testing.assert_array_equal(extended.arrays["faces"][n + 1], train.arrays["faces"][1])
    np.testing.assert_array_equal(extended.labels[n : 2 * n], train.labels)
    assert set(extended.arrays) == {"audio_features", "speech_frames", "faces", "face_found"} and set(
        extended.splits
    ) == {"train"}
    plain = align_clips(make_corpus(seed=4).index, make_corpus(seed=4).caches).split("train")
    assert with_perturbed_copies(plain) is plain


def test_frame_statistics_skip_the_padding():
    mfcc = np.zeros((2, 4, 2), np.float32)
    mfcc[0, 2:] = [[1, 10], [3, 10]]
    mfcc[1, 3:] = [[2, 13]]
    mean, std = frame_statistics(mfcc, np.array([2, 1]))
    np.testing.assert_allclose(mean, [2, 11])
    np.testing.assert_allclose(std, [np.sqrt(2 / 3), np.sqrt(2)], rtol=1e-6)
    assert frame_statistics(np.zeros((1, 3, 1), np.float32), np.array([3]))[1][0] == pytest.approx(1e-6)
    raw = align_clips(*(lambda c: (c.index, c.caches))(make_corpus(raw=True)))
    assert audio_statistics(raw.split("train"), "av")[0].mean() > 10
    assert audio_statistics(raw.split("train"), "video") is None


# --- augmentation and batches ---


def test_augment_mfcc_keeps_padding_and_is_seeded(data):
    mfcc, speech_frames = data.arrays["audio_features"][:8], data.arrays["speech_frames"][:8]
    kwargs = {
        "noise_std": 0.5,
        "time_shift": 5,
        "freq_masks": 2,
        "freq_mask_width": 3,
        "time_masks": 2,
        "time_mask_width": 5,
    }
    out = augment_mfcc(mfcc, speech_frames, rng=np.random.default_rng(1), **kwargs)
    assert out.shape == mfcc.shape and out.dtype == np.float32
    padding = mfcc == 0
    padding &= np.all(mfcc == 0, axis=2, keepdims=True)
    assert np.all(out[np.broadcast_to(padding, out.shape)] == 0)
    assert not np.allclose(out, mfcc)
    np.testing.assert_array_equal(out, augment_mfcc(mfcc, speech_frames, rng=np.random.default_rng(1), **kwargs))
    np.testing.assert_array_equal(
        augment_mfcc(mfcc, speech_frames, rng=np.random.default_rng(1)), mfcc
    )  # all off: unchanged
    with pytest.raises(ValueError):
        augment_mfcc(mfcc[0], speech_frames[:1], rng=np.random.default_rng(1))


def test_augment_faces(data):
    faces = data.arrays["faces"][:6]
    out = augment_faces(faces, rng=np.random.default_rng(2), flip=True, brightness=0.2, contrast=0.2, pixel_shift=2)
    assert out.shape == faces.shape and out.dtype == np.uint8 and not np.array_equal(out, faces)
    np.testing.assert_array_equal(augment_faces(faces, rng=np.random.default_rng(2)), faces)
    flipped = [augment_faces(faces[:1], rng=np.random.default_rng(s), flip=True) for s in range(8)]
    assert any(np.array_equal(f[0], faces[0][:, :, ::-1]) for f in flipped)
    with pytest.raises(ValueError):
        augment_faces(faces[0], rng=np.random.default_rng(2))
    with pytest.raises(ConfigError, match="unknown augmentation"):
        augment_batch({"faces": faces}, None, rng=np.random.default_rng(0), hue=0.1)


def test_batches_cover_every_clip_once_per_epoch_and_repeat_with_the_seed(data):
    inputs = data.inputs(["audio_features", "faces"])
    batches = ClipBatches(
        inputs,
        data.labels,
        speech_frames=data.arrays["speech_frames"],
        batch_size=10,
        seed=7,
        augment={"noise_std": 0.1, "flip": True},
    )
    again = ClipBatches(
        inputs,
        data.labels,
        speech_frames=data.arrays["speech_frames"],
        batch_size=10,
        seed=7,
        augment={"noise_std": 0.1, "flip": True},
    )
    assert len(batches) == -(-len(data) // 10)
    first = np.concatenate([batches[i][1] for i in range(len(batches))])
    assert sorted(first) == sorted(data.labels)
    np.testing.assert_array_equal(batches[2][0]["audio_features"], again[2][0]["audio_features"])
    order = batches.order.copy()
    batches.on_epoch_end()
    assert not np.array_equal(order, batches.order)
    with pytest.raises(ValueError, match="same rows"):
        ClipBatches(inputs, data.labels[:-1])


def test_mixup_mixes_each_clip_with_a_partner_and_its_label_alike():
    rng = np.random.default_rng(0)
    mfcc = rng.normal(size=(8, 5, 3)).astype(np.float32)
    faces = rng.integers(0, 256, size=(8, 2, 4, 4, 3), dtype=np.uint8)
    targets = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1, 2, 3]]
    mixed, soft = mixup_batch(
        {"audio_features": mfcc, "faces": faces}, targets, rng=np.random.default_rng(1), alpha=0.4
    )
    again, _ = mixup_batch({"audio_features": mfcc, "faces": faces}, targets, rng=np.random.default_rng(1), alpha=0.4)
    np.testing.assert_array_equal(mixed["audio_features"], again["audio_features"])
    assert mixed["faces"].dtype == np.uint8 and mixed["audio_features"].dtype == np.float32
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    # the clip's own label keeps the larger weight, and the same weight mixes its inputs
    own = soft[np.arange(8), [0, 1, 2, 3, 0, 1, 2, 3]]
    assert (own >= 0.5 - 1e-6).all() and (own < 1.0).any()
    for i in range(8):
        lam = own[i] if own[i] < 1 else 1.0
        partner = [
            j
            for j in range(8)
            if not np.allclose(mixed["audio_features"][i], lam * mfcc[i] + (1 - lam) * mfcc[j], atol=1e-5)
        ]
        assert len(partner) < 8, f"clip {i} is no mix of itself and a batch partner"
    with pytest.raises(ConfigError, match="alpha"):
        mixup_batch({"audio_features": mfcc}, targets, rng=rng, alpha=0)


def test_member_splits_validate_every_development_speaker_once_and_never_touch_test():
    actors = np.repeat(np.arange(1, 19), 2)
    splits = np.where(actors <= 3, "test", np.where(actors <= 6, "val", "train")).astype(object)
    members = member_splits(splits, actors, 5)
    assert len(members) == 5
    validated = [sorted(set(actors[m == "val"])) for m in members]
    assert validated == [[4, 5, 6], [7, 8, 9], [10, 11, 12], [13, 14, 15], [16, 17, 18]]
    for m in members:
        assert (m[actors <= 3] == "test").all() and set(m[actors > 3]) == {"train", "val"}
    with pytest.raises(ConfigError, match="members"):
        member_splits(splits, actors, 16)


def test_class_weights():
    assert class_weights([0, 0, 1], n_classes=3) is None
    weights = class_weights([0, 0, 0, 1], n_classes=3, mode="balanced")
    assert weights[0] == pytest.approx(4 / 6) and weights[1] == pytest.approx(2.0) and weights[2] == 0.0
    with pytest.raises(ConfigError, match="class_weight"):
        class_weights([0], n_classes=2, mode="inverse")


# --- fitting ---


def test_tiny_model_overfits_a_tiny_batch(data):
    keras.utils.set_random_seed(0)
    model = build_model(
        inputs="av",
        n_classes=4,
        audio_features_shape=data.arrays["audio_features"].shape[1:],
        faces_shape=data.arrays["faces"].shape[1:],
        audio_units=8,
        audio_dense=16,
        video_filters=(4, 8),
        video_dense=16,
        head_units=16,
        audio_dropout=0.0,
        video_dropout=0.0,
        head_dropout=0.0,
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    batch = data.take(np.arange(12))
    history = model.fit(
        batch.inputs(["audio_features", "faces"]), batch.labels, epochs=30, batch_size=12, verbose=0
    ).history["loss"]
    assert history[-1] < 0.3 * history[0]


def test_fit_model_checks_its_arguments(data):
    model = build_model(
        inputs="audio",
        n_classes=4,
        audio_features_shape=data.arrays["audio_features"].shape[1:],
        audio_units=4,
        audio_dense=4,
        head_units=4,
    )
    with pytest.raises(ConfigError, match="monitor"):
        fit_model(model, data.split("train"), data.split("val"), monitor="test_loss")
    with pytest.raises(DatasetError, match="validation"):
        fit_model(model, data.split("train"), data.take(np.zeros(len(data), bool)))
    with pytest.raises(DatasetError, match="label"):
        train_model(
            data,
            label_names=["a", "b"],
            model_params=tiny_model_params(),
            train_params=FAST,
            augment_params=AugmentParams(enabled=False),
        )


@pytest.mark.parametrize(
    "section, values, match",
    [
        ("train", {"monitor": "test_loss"}, "monitor"),
        ("train", {"epochs": 0}, "epochs"),
        ("train", {"lr_factor": 1.5}, "lr_factor"),
        ("augment", {"noise_std": -1}, "noise_std"),
        ("cv", {"epochs": -1}, "cv.epochs"),
    ],
)
def test_bad_params_raise(section, values, match):
    cls = {"train": TrainParams, "augment": AugmentParams, "cv": CvParams}[section]
    with pytest.raises(ConfigError, match=match):
        from_mapping(cls, values, section=section)


def test_repo_params_load():
    for cls, section in [(TrainParams, "train"), (AugmentParams, "augment"), (CvParams, "cv")]:
        load_section(cls, section, ROOT / "params.yaml")
    assert load_section(CvParams, "cv", ROOT / "params.yaml").enabled is False


def test_train_stage_writes_model_metadata_and_dvclive_files(tmp_path, corpus):
    files = write_corpus(tmp_path, corpus)
    model_path, live = tmp_path / "models" / "model.keras", tmp_path / "metrics" / "train"
    params = {"model_params": tiny_model_params(), "train_params": FAST, "augment_params": tiny_augment_params()}
    result = train_stage(
        files.index_path,
        audio_path=files.audio_path,
        video_path=files.video_path,
        model_path=model_path,
        live_dir=live,
        label_names=corpus.label_names,
        **params,
    )

    # the default single-model path validates on the index's validation speakers, never a test speaker
    index = pd.read_csv(files.index_path, dtype={"actor": str})
    by_split = {s: set(index.loc[index["split"] == s, "actor"]) for s in ("train", "val", "test")}
    assert set(result.summary["val_actors"]) == by_split["val"] and by_split["test"]
    assert not set(result.summary["val_actors"]) & by_split["test"]

    meta = json.loads(model_path.with_suffix(".json").read_text())
    assert meta["label_names"] == corpus.label_names and meta["model_inputs"] == "av"
    assert meta["features"]["audio"]["padded_frames"] == 40 and meta["features"]["audio"]["n_mfcc"] == 8
    assert meta["features"]["video"]["size"] == 16 and meta["params"]["train"]["epochs"] == 2
    metrics = json.loads((live / "metrics.json").read_text())
    assert (
        metrics["epochs_run"] == 2
        and 1 <= metrics["best_epoch"] <= 2
        and metrics["n_train"] == result.summary["n_train"]
    )
    assert set(metrics["best"]) == {"val_loss", "val_accuracy"} and metrics["seconds_per_epoch"] > 0
    for curve in ("train/loss", "val/loss", "train/accuracy", "val/accuracy", "learning_rate"):
        assert len((live / "plots" / "metrics" / f"{curve}.tsv").read_text().splitlines()) == 1 + 2
    assert yaml.safe_load((live / "params.yaml").read_text())["model"]["audio_units"] == 8
    assert not (live / "dvc.yaml").exists()

    model, meta = load_model_bundle(model_path)
    data = align_clips(corpus.index, corpus.caches)
    probabilities = predict_proba(model, meta, data.split("test").arrays)
    assert probabilities.shape == (len(data.split("test")), len(corpus.label_names))
    np.testing.assert_allclose(
        probabilities, predict_proba(result.model, result.metadata, data.split("test").arrays), atol=1e-5
    )


def test_same_params_give_the_same_metrics(data, corpus):
    # seeds (weights, batch order, augmentation) and deterministic ops: equal to 1e-5; the
    # video model keeps the test short, the seeding is the same for every modality
    params = {
        "model_params": tiny_model_params(inputs="video"),
        "train_params": FAST,
        "augment_params": tiny_augment_params(),
    }
    first, again = (train_model(data, label_names=corpus.label_names, **params) for _ in range(2))
    assert again.summary["val"]["loss"] == pytest.approx(first.summary["val"]["loss"], abs=1e-5)
    assert again.summary["history"]["loss"] == pytest.approx(first.summary["history"]["loss"], abs=1e-5)
    # and training did something: the two epochs' losses differ (equal runs of a no-op would pass above)
    first_loss, second_loss = first.summary["history"]["loss"]
    assert abs(first_loss - second_loss) > 1e-3


def test_mixup_and_label_smoothing_train_with_soft_labels(data, corpus):
    train_params = TrainParams(epochs=2, batch_size=16, patience=5, mixup=0.4, label_smoothing=0.1)
    result = train_model(
        data,
        label_names=corpus.label_names,
        model_params=tiny_model_params(inputs="audio"),
        train_params=train_params,
        augment_params=tiny_augment_params(),
    )
    assert set(result.summary["history"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert 0 <= result.summary["val"]["accuracy"] <= 1 and np.isfinite(result.summary["val"]["loss"])
    batches = ClipBatches(
        data.inputs(["audio_features"]),
        data.labels,
        speech_frames=data.arrays["speech_frames"],
        batch_size=8,
        seed=1,
        n_classes=4,
        mixup=0.4,
    )
    _, soft = batches[0]
    assert soft.shape == (8, 4) and ((soft > 0) & (soft < 1)).any()
    with pytest.raises(ConfigError, match="mixup"):
        ClipBatches(data.inputs(["audio_features"]), data.labels, mixup=0.4)
    with pytest.raises(ConfigError, match="label_smoothing"):
        TrainParams(label_smoothing=1.0)


@pytest.mark.parametrize("by", ["seed", "fold"])
def test_an_ensemble_is_one_model_averaging_its_members(tmp_path, data, corpus, by):
    train_params = TrainParams(epochs=1, batch_size=16, patience=5, ensemble=2, ensemble_by=by)
    result = train_model(
        data,
        label_names=corpus.label_names,
        model_params=tiny_model_params(inputs="audio"),
        train_params=train_params,
        augment_params=tiny_augment_params(),
    )
    members = result.summary["members"]
    assert len(members) == 2 and [m.name for m in result.model.layers if m.name.startswith("member_")] == [
        "member_0",
        "member_1",
    ]
    if by == "fold":
        # each member validates on its own half of the development speakers
        assert not set(members[0]["val_actors"]) & set(members[1]["val_actors"])
        assert sorted(members[0]["val_actors"] + members[1]["val_actors"]) == sorted(
            set(data.actors[data.splits != "test"])
        )
    else:
        assert members[0]["val_actors"] == members[1]["val_actors"]
    test = data.split("test")
    probabilities = predict_proba(result.model, result.metadata, test.arrays)
    each = [predict_proba(result.model.get_layer(f"member_{j}"), result.metadata, test.arrays) for j in range(2)]
    np.testing.assert_allclose(probabilities, np.mean(each, axis=0), atol=1e-6)
    assert not np.allclose(each[0], each[1], atol=1e-4)
    from mmer.bundle import save_model_bundle

    save_model_bundle(result.model, result.metadata, tmp_path / "model.keras")
    model, meta = load_model_bundle(tmp_path / "model.keras")
    np.testing.assert_allclose(predict_proba(model, meta, test.arrays), probabilities, atol=1e-5)
    assert len(meta["training"]["members"]) == 2


def test_cv_stage_off_and_on(tmp_path):
    # raw features with a perturbed copy: the model standardises, the copies train
    corpus = make_corpus(seed=3, raw=True, perturbations=("speed1.1",))
    files = write_corpus(tmp_path, corpus)
    paths = {"audio_path": files.audio_path, "video_path": files.video_path, "out_dir": tmp_path / "cv"}
    params = {
        "label_names": corpus.label_names,
        "model_params": tiny_model_params(),
        "train_params": FAST,
        "augment_params": AugmentParams(enabled=False),
    }
    assert cv_stage(files.index_path, enabled=False, **paths, **params) == {"enabled": False}
    assert sorted(p.name for p in (tmp_path / "cv").iterdir()) == ["folds.json", "summary.json"]
    assert json.loads((tmp_path / "cv" / "folds.json").read_text()) == []

    summary = cv_stage(files.index_path, enabled=True, folds=(1, 2), epochs=1, **paths, **params)
    folds = json.loads((tmp_path / "cv" / "folds.json").read_text())
    assert [f["fold"] for f in folds] == [1, 2]
    assert folds[0]["test_actors"] == ["3", "4"] and folds[0]["val_actors"] == ["5", "6"]  # speaker names
    assert folds[1]["test_actors"] == ["5", "6"] and folds[1]["val_actors"] == ["1", "2"]  # the next fold, modulo 3
    for fold in folds:
        assert not set(fold["test_actors"]) & set(fold["val_actors"])
        assert fold["training"]["epochs_run"] == 1
        assert fold["training"]["n_perturbed"] == fold["training"]["n_train"] // 2 > 0
    # two folds: the mean and the (ddof=0) sd are numpy's over the folds' figures
    assert summary["folds"] == [1, 2] and summary["n"] == sum(f["n"] for f in folds)
    for key in ("accuracy", "macro_f1", "uar"):
        values = [f[key] for f in folds]
        assert summary[key] == pytest.approx({"mean": np.mean(values), "std": np.std(values)})
        majority = [f["majority"][key] for f in folds]
        assert summary[f"majority_{key}"] == pytest.approx({"mean": np.mean(majority), "std": np.std(majority)})
    assert summary["majority_accuracy"]["std"] > 0  # the folds differ, so the sd is not a tautology
    assert json.loads((tmp_path / "cv" / "summary.json").read_text()) == summary
    with pytest.raises(ConfigError, match="cv.folds"):
        cv_stage(files.index_path, enabled=True, folds=(7,), **paths, **params)


@pytest.mark.parametrize(("n", "batch_size", "shuffle"), [(37, 8, True), (37, 8, False), (40, 10, True), (5, 16, True)])
def test_every_epoch_uses_every_clip_exactly_once(n, batch_size, shuffle):
    # clip identities, not labels: the rows carry their own index, and labels repeat
    rows = np.arange(n)
    batches = ClipBatches({"row": rows[:, None]}, rows % 3, batch_size=batch_size, seed=4, shuffle=shuffle)
    for _ in range(3):
        seen = np.concatenate([batches[b][0]["row"][:, 0] for b in range(len(batches))])
        assert sorted(seen) == list(range(n))
        assert all(len(batches[b][1]) <= batch_size for b in range(len(batches)))
        labels = np.concatenate([batches[b][1] for b in range(len(batches))])
        np.testing.assert_array_equal(labels, seen % 3)  # each label travels with its clip
        batches.on_epoch_end()


def test_label_smoothing_is_in_the_loss(data, corpus):
    # known answer: the validation loss fit_model reports is the cross-entropy against
    # smoothed targets, (1 - s) one-hot + s / k, of the returned model's probabilities
    keras.utils.set_random_seed(0)
    model = build_model(
        inputs="audio",
        n_classes=4,
        audio_features_shape=data.arrays["audio_features"].shape[1:],
        audio_units=4,
        audio_dense=4,
        head_units=4,
    )
    smoothing = 0.4
    result = fit_model(
        model,
        data.split("train"),
        data.split("val"),
        epochs=6,
        batch_size=16,
        learning_rate=0.03,
        label_smoothing=smoothing,
    )
    val = data.split("val")
    probabilities = np.clip(model.predict(val.inputs(["audio_features"]), verbose=0), 1e-7, 1 - 1e-7)
    targets = np.eye(4)[val.labels] * (1 - smoothing) + smoothing / 4
    smoothed = float(np.mean(-(targets * np.log(probabilities)).sum(axis=1)))
    plain = float(np.mean(-np.log(probabilities[np.arange(len(val)), val.labels])))
    assert abs(smoothed - plain) > 0.05  # the two losses are told apart
    assert result["val"]["loss"] == pytest.approx(smoothed, rel=1e-3)

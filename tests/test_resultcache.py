import pytest

from mmer import resultcache
from mmer.errors import MediaError
from mmer.resultcache import ClipCache, clip_key, params_digest


def test_key_follows_content_not_name(tmp_path):
    a, b, c = tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4"
    a.write_bytes(b"same bytes")
    b.write_bytes(b"same bytes")
    c.write_bytes(b"other bytes")
    assert clip_key(a) == clip_key(b) != clip_key(c)
    assert clip_key(a, 0.5, 2.0) != clip_key(a, 0.5, 2.1)
    with pytest.raises(MediaError, match="missing.mp4"):
        clip_key(tmp_path / "missing.mp4")


def test_params_and_code_change_the_namespace():
    assert params_digest("trim", {"pad_s": 0.1}) == params_digest("trim", {"pad_s": 0.1})
    assert params_digest("trim", {"pad_s": 0.1}) != params_digest("trim", {"pad_s": 0.2})
    assert params_digest("trim", {"pad_s": 0.1}) != params_digest("trim", {"pad_s": 0.1}, modules=(resultcache,))


def test_get_or_compute_caches_results_not_failures(tmp_path):
    cache = ClipCache.for_stage("faces", {"size": 64}, base=tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"crops": [1, 2, 3]}

    assert cache.get_or_compute("k1", compute) == {"crops": [1, 2, 3]}
    assert cache.get_or_compute("k1", compute) == {"crops": [1, 2, 3]}
    assert len(calls) == 1

    def fail():
        raise MediaError("x.mp4: broken")

    for _ in range(2):
        with pytest.raises(MediaError):
            cache.get_or_compute("k2", fail)
    assert cache.get("k2") is None
    # a corrupt entry is ignored, not fatal
    entry = next(tmp_path.rglob("k1.pkl"))
    entry.write_bytes(b"garbage")
    assert cache.get("k1") is None

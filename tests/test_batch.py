import pytest

from mmer.batch import check_failed_share, map_clips
from mmer.errors import DatasetError, MediaError


def square_or_fail(x: int) -> int:
    if x == 3:
        raise MediaError(f"clip{x}.mp4: unreadable container")
    if x == 4:
        raise ZeroDivisionError("boom")
    return x * x


@pytest.mark.parametrize("jobs", [1, 2])
def test_bad_clips_are_recorded_and_the_rest_goes_on(jobs):
    items = list(range(6))
    result = map_clips(
        square_or_fail,
        items,
        keys=[f"c{i}" for i in items],
        paths=[f"p{i}" for i in items],
        stage="t",
        jobs=jobs,
        progress=False,
    )
    assert result.results == {"c0": 0, "c1": 1, "c2": 4, "c5": 25}
    assert [f["clip_id"] for f in result.failures] == ["c3", "c4"]
    assert result.failures[0]["kind"] == "MediaError" and "clip3.mp4: unreadable" in result.failures[0]["reason"]
    assert result.failures[1]["kind"] == "ZeroDivisionError"
    assert "4 done, 2 failed" in result.summary("t")


def test_failed_share():
    check_failed_share(1, 10, 0.1, stage="trim", failures_path="f.csv")
    with pytest.raises(DatasetError, match="2 of 10 clips failed.*f.csv"):
        check_failed_share(2, 10, 0.1, stage="trim", failures_path="f.csv")


def test_an_unknown_executor_is_refused():
    from mmer.errors import ConfigError

    with pytest.raises(ConfigError, match="batch.executor"):
        map_clips(square_or_fail, [0], keys=["c0"], paths=["p0"], stage="t", progress=False, executor="ray")


@pytest.mark.parametrize("n_items, jobs, chunk", [(120, 2, 1), (256, 2, 1), (1440, 2, 5), (100_000, 16, 8), (3, 0, 1)])
def test_pool_chunksize_keeps_the_last_chunk_small(n_items, jobs, chunk):
    from mmer.batch import pool_chunksize

    assert pool_chunksize(n_items, jobs) == chunk

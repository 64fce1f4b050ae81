"""The per-clip map on a real Dask cluster: a scheduler and two workers started with Dask's own CLI.

``dask scheduler`` and two ``dask worker --nthreads 1`` processes run on 127.0.0.1 (separate
process groups, stopped in the fixture's ``finally``). ``trim``, ``audio_features`` and
``face_crops`` run through them (``batch.executor: dask`` with the scheduler file as
``batch.address``) and must write the same bytes as the local process pool: spans, span
wavs, both HDF5 files, failures tables and counts. A second cluster loses a worker (SIGKILL
to its process group) in the middle of ``face_crops``: the stage finishes on the other
worker or fails naming the cluster, a rerun completes, and every clip is in the output once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_batch import square_or_fail

from mmer import executors, preprocess
from mmer.batch import map_clips
from mmer.config import AudioParams, BatchParams, FacesParams, TrimParams
from mmer.corpus import build_index, write_index
from mmer.errors import ExecutorError
from mmer.featurefile import read_cache

import media_factory as mf
import repo_factory as rf
from conftest import ROOT

pytestmark = pytest.mark.slow  # a cluster of three processes, twice

DASK = Path(sys.executable).parent / "dask"
ACTORS = (1, 2, 3, 4)
CLIPS_PER_ACTOR = 3
BROKEN = "01-01-05-01-01-01-02.mp4"  # an empty file under a RAVDESS name: a failure row of trim
KILL_FRAMES = 24  # frames per clip in the kill test: slow enough clips to kill a worker between them


@contextmanager
def dask_cluster(folder: Path, n_workers: int = 2) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A scheduler and ``n_workers`` single-thread workers from Dask's CLI: (scheduler file, worker processes)."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    env = {**rf.env(), "PYTHONPATH": str(ROOT)}  # the workers import this checkout's mmer
    procs: list[subprocess.Popen] = []

    def start(name: str, *args: str) -> subprocess.Popen:
        log = (folder / f"{name}.log").open("w")
        proc = subprocess.Popen(
            [str(DASK), *args], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        procs.append(proc)
        return proc

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
              "--scheduler-file", str(scheduler_file))  # fmt: skip
        deadline = time.monotonic() + 60
        while not scheduler_file.is_file() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler_file.is_file(), (folder / "scheduler.log").read_text()
        workers = [
            start(
                f"worker{i}",
                "worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nthreads",
                "1",
                "--nworkers",
                "1",
                "--host",
                "127.0.0.1",
                "--no-dashboard",
                "--name",
                f"w{i}",
                "--local-directory",
                str(folder / f"w{i}"),
            )  # fmt: skip
            for i in range(n_workers)
        ]
        from distributed import Client

        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(n_workers, timeout=120)
        yield str(scheduler_file), workers
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def run_stages(index: Path, out: Path, *, batch: BatchParams, stages=("trim", "audio", "faces"), **faces) -> dict:
    """The three preprocessing stages (2 jobs, no per-clip cache unless given) -> their output files."""
    files = {
        "spans": out / "spans.csv",
        "wavs": out / "audio",
        "audio": out / "audio.h5",
        "video": out / "video.h5",
    }
    quiet = {"progress": False, "batch": batch}
    if "trim" in stages:
        preprocess.trim_stage(index, wav_dir=files["wavs"], spans_path=files["spans"], failures_path=out / "f_trim.csv",
                              metrics_path=out / "m_trim.json", params=TrimParams(jobs=2), cache_dir=None, **quiet)  # fmt: skip
    if "audio" in stages:
        preprocess.audio_features_stage(index, files["spans"], wav_dir=files["wavs"], out_path=files["audio"],
                                        failures_path=out / "f_audio.csv", metrics_path=out / "m_audio.json",
                                        params=AudioParams(), **quiet)  # fmt: skip
    if "faces" in stages:
        preprocess.face_crops_stage(index, files["spans"], out_path=files["video"], failures_path=out / "f_faces.csv",
                                    metrics_path=out / "m_faces.json", params=FacesParams(jobs=2, **faces),
                                    cache_dir=faces_cache(out), **quiet)  # fmt: skip
    return files


def faces_cache(out: Path) -> Path | None:
    marker = out / "cache-dir.txt"
    return Path(marker.read_text()) if marker.is_file() else None


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cluster")
    corpus = mf.tiny_corpus(root / "raw", actors=ACTORS, clips_per_actor=CLIPS_PER_ACTOR)
    mf.zero_bytes(corpus / "Actor_02" / BROKEN)
    index = root / "index.csv"
    write_index(build_index(corpus, modalities=("av",), val_actors=[3], test_actors=[4]), index)
    return index


@pytest.fixture(scope="module")
def local_run(corpus_index) -> Path:
    out = corpus_index.parent / "local"
    run_stages(corpus_index, out, batch=BatchParams())
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    with dask_cluster(tmp_path_factory.mktemp("dask")) as (scheduler_file, _):
        yield scheduler_file


def test_stages_on_a_cluster_write_the_local_pools_bytes(corpus_index, local_run, cluster):
    out = corpus_index.parent / "dask"
    run_stages(corpus_index, out, batch=BatchParams(executor="dask", address=cluster))
    n_clips = len(ACTORS) * CLIPS_PER_ACTOR
    assert len(rf.tree_digests(local_run / "audio")) == n_clips
    assert rf.tree_digests(out / "audio") == rf.tree_digests(local_run / "audio")
    for name in ("spans.csv", "audio.h5", "video.h5", "f_trim.csv", "f_audio.csv", "f_faces.csv"):
        assert rf.digest(out / name) == rf.digest(local_run / name), name
    for name in ("m_trim.json", "m_audio.json", "m_faces.json"):
        assert (out / name).read_text() == (local_run / name).read_text(), name
    assert BROKEN[:-4] in (out / "f_trim.csv").read_text()  # the failure rows went through the cluster too
    assert len(read_cache(out / "video.h5").clip_ids) == n_clips


def test_workers_keep_their_detector_between_clips_and_stages(corpus_index, local_run, cluster, tmp_path):
    from distributed import Client

    def detector_id():  # run on each worker (a closure: sent by value)
        import mmer.faces

        return id(mmer.faces._DETECTOR) if mmer.faces._DETECTOR is not None else None

    (tmp_path / "spans.csv").write_bytes((local_run / "spans.csv").read_bytes())
    batch = BatchParams(executor="dask", address=cluster)
    with Client(scheduler_file=cluster) as client:
        run_stages(corpus_index, tmp_path, batch=batch, stages=("faces",))
        first = client.run(detector_id)
        run_stages(corpus_index, tmp_path, batch=batch, stages=("faces",))
        again = client.run(detector_id)
    assert any(first.values()) and again == first  # one detector per worker process, made once
    assert rf.digest(tmp_path / "video.h5") == rf.digest(local_run / "video.h5")


def test_the_per_clip_cache_filled_on_a_cluster_serves_the_local_pool(corpus_index, local_run, cluster, tmp_path):
    cache = tmp_path / "cache"
    for name, batch in (("cold", BatchParams(executor="dask", address=cluster)), ("warm", BatchParams())):
        out = tmp_path / name
        out.mkdir()
        (out / "cache-dir.txt").write_text(str(cache))
        (out / "spans.csv").write_bytes((local_run / "spans.csv").read_bytes())
        run_stages(corpus_index, out, batch=batch, stages=("faces",))
        assert rf.digest(out / "video.h5") == rf.digest(local_run / "video.h5"), name
    entries = sorted(cache.rglob("*.pkl"))
    assert len(entries) == len(ACTORS) * CLIPS_PER_ACTOR  # written once by the workers, then only read
    assert all(entry.stat().st_mtime < (tmp_path / "warm" / "video.h5").stat().st_mtime for entry in entries)


def test_a_worker_killed_in_the_middle_of_face_crops_loses_and_duplicates_no_clip(corpus_index, local_run, tmp_path):
    want = tmp_path / "local"
    want.mkdir()
    (want / "spans.csv").write_bytes((local_run / "spans.csv").read_bytes())
    run_stages(corpus_index, want, batch=BatchParams(), stages=("faces",), frames_per_clip=KILL_FRAMES)
    n_clips = len(read_cache(want / "video.h5").clip_ids)

    out = tmp_path / "dask"
    out.mkdir()
    (out / "spans.csv").write_bytes((local_run / "spans.csv").read_bytes())
    cache = tmp_path / "cache"
    (out / "cache-dir.txt").write_text(str(cache))
    with dask_cluster(tmp_path / "cluster") as (scheduler_file, workers):
        batch = BatchParams(executor="dask", address=scheduler_file)
        raised: list[BaseException] = []

        def stage() -> None:
            try:
                run_stages(corpus_index, out, batch=batch, stages=("faces",), frames_per_clip=KILL_FRAMES)
            except BaseException as err:  # noqa: BLE001 - handed to the test's thread
                raised.append(err)

        thread = threading.Thread(target=stage)
        thread.start()
        deadline = time.monotonic() + 120
        while len(list(cache.rglob("*.pkl"))) < 2 and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        done_at_kill = len(list(cache.rglob("*.pkl")))
        os.killpg(workers[0].pid, signal.SIGKILL)
        workers[0].wait()
        thread.join(timeout=300)
        assert not thread.is_alive()
        assert 2 <= done_at_kill < n_clips, "the worker was not killed in the middle of the stage"
        if raised:  # the cluster gave up: the stage says so and wrote nothing
            assert isinstance(raised[0], ExecutorError) and "Dask cluster" in str(raised[0]), raised[0]
            assert not (out / "video.h5").exists()
            run_stages(corpus_index, out, batch=batch, stages=("faces",), frames_per_clip=KILL_FRAMES)
    ids = read_cache(out / "video.h5").clip_ids
    assert len(ids) == len(set(ids)) == n_clips
    for name in ("video.h5", "f_faces.csv"):
        assert rf.digest(out / name) == rf.digest(want / name), name
    # a rerun completes (on the local pool now: the cluster is gone), from the cache, to the same bytes
    (out / "video.h5").unlink()
    run_stages(corpus_index, out, batch=BatchParams(), stages=("faces",), frames_per_clip=KILL_FRAMES)
    assert rf.digest(out / "video.h5") == rf.digest(want / "video.h5")


def test_an_in_process_cluster_when_no_address_is_given():
    items = list(range(6))
    result = map_clips(square_or_fail, items, keys=[f"c{i}" for i in items], paths=[f"p{i}" for i in items],
                       stage="t", jobs=2, progress=False, executor="dask")  # fmt: skip
    assert result.results == {"c0": 0, "c1": 1, "c2": 4, "c5": 25}
    assert [(f["clip_id"], f["kind"]) for f in result.failures] == [("c3", "MediaError"), ("c4", "ZeroDivisionError")]


def test_workers_running_other_code_are_refused(cluster, monkeypatch):
    # this process's code differs from the workers' (which run the real digest)
    real, here = executors.code_digest, os.getpid()
    monkeypatch.setattr(executors, "code_digest", lambda: "edited" if os.getpid() == here else real())
    with pytest.raises(ExecutorError, match="other mmer code"):
        map_clips(square_or_fail, [0], keys=["c0"], paths=["p0"], stage="t", progress=False, executor="dask",
                  address=cluster)  # fmt: skip


def test_an_unreachable_scheduler_is_named(monkeypatch):
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT_S", 2)
    with pytest.raises(ExecutorError, match="tcp://127.0.0.1:9.*cannot reach a Dask scheduler"):
        map_clips(square_or_fail, [0], keys=["c0"], paths=["p0"], stage="t", progress=False, executor="dask",
                  address="tcp://127.0.0.1:9")  # fmt: skip


def test_a_per_worker_detector_needs_single_thread_workers():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as threaded:
        with pytest.raises(ExecutorError, match=r"run several threads.*--nthreads 1"):
            map_clips(square_or_fail, [0], keys=["c0"], paths=["p0"], stage="t", progress=False, executor="dask",
                      address=threaded.scheduler_address, initializer=print)  # fmt: skip

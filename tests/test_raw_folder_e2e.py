"""The corpus folder is not a DVC dep: a dangling link in it fails one clip, and a changed file reruns its stages.

``unpack`` (always run) lists every file of ``data.raw`` with its size and mtime in
``data/interim/raw_files.csv``; ``index``, ``trim`` and ``face_crops`` depend on that listing
instead of the folder, which DVC would hash byte by byte and stop at on the first file it
cannot read. A tiny generated corpus (6 actors, the ``tiny`` preset) runs up to
``face_crops`` (no training).
"""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

from mmer.files import file_listing, read_failures, walk_files

import repo_factory as rf

pytestmark = pytest.mark.slow  # dvc repro of the preprocessing stages, three times

DANGLING = "Actor_01/01-01-05-02-02-02-01.mp4"  # a RAVDESS name, pointing at nothing


def test_walk_files_and_listing_name_a_broken_link(tmp_path, caplog):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "clip.mp4").write_bytes(b"x" * 10)
    (tmp_path / "a" / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    assert [p.name for p in walk_files(tmp_path)] == ["clip.mp4"]
    assert [p.name for p in walk_files(tmp_path, broken_links=True)] == ["clip.mp4", "gone.mp4"]
    with caplog.at_level("WARNING", logger="mmer.files"):
        listing = file_listing(tmp_path)
    assert listing["path"].tolist() == [str(tmp_path / "a" / "clip.mp4"), str(tmp_path / "a" / "gone.mp4")]
    assert listing["size"].tolist() == [10, -1]
    assert listing.loc[1, "problem"] == f"dangling symbolic link to {tmp_path / 'nowhere.mp4'}"
    assert f"{tmp_path / 'a' / 'gone.mp4'}: dangling symbolic link to" in caplog.text


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = rf.make_repo(tmp_path_factory.mktemp("rawfolder") / "repo")
    rf.tiny_demo_corpus(repo, actors="1-6")
    rf.set_params(repo, trim={"jobs": 1, "max_failed_share": 0.5}, faces={"jobs": 1})
    (repo / "data" / "raw" / DANGLING).symlink_to("/nonexistent/clip.mp4")
    rf.commit(repo, "tiny corpus with a dangling link")
    return repo


def test_dangling_link_is_a_failed_clip_and_the_rest_run(repo):
    proc = rf.run(["dvc", "repro", "face_crops"], repo, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert {"index", "trim", "face_crops"} <= rf.ran(out)
    assert f"data/raw/{DANGLING}: dangling symbolic link to /nonexistent/clip.mp4" in out  # the unpack warning
    failures = read_failures(repo / "data" / "interim" / "failures_trim.csv")
    assert failures["path"].tolist() == [f"data/raw/{DANGLING}"]
    assert failures["reason"].tolist() == [f"data/raw/{DANGLING}: dangling symbolic link to /nonexistent/clip.mp4"]
    spans = pd.read_csv(repo / "data" / "interim" / "spans.csv", dtype={"clip_id": str})
    index = pd.read_csv(repo / "data" / "index.csv", dtype={"clip_id": str})
    assert len(spans) == len(index) - 1 > 10
    listing = pd.read_csv(repo / "data" / "interim" / "raw_files.csv", keep_default_na=False)
    assert listing.set_index("path").loc[f"data/raw/{DANGLING}", "problem"].startswith("dangling symbolic link")


def test_nothing_changed_reruns_nothing_but_the_listing(repo):
    out = rf.run(["dvc", "repro", "face_crops"], repo)
    text = out.stdout + out.stderr
    assert rf.ran(text) == set(), text[-2000:]
    assert "Running stage 'unpack'" in text  # always_changed: it lists the folder every time
    status = rf.run(["dvc", "status", "face_crops", "--with-deps"], repo).stdout
    assert [line for line in status.splitlines() if line.endswith(":")] == ["unpack:"], status


def test_a_changed_clip_reruns_trim_and_face_crops(repo):
    raw = repo / "data" / "raw"
    clips = sorted(p for p in raw.glob("Actor_02/*.mp4"))
    spans_before = pd.read_csv(repo / "data" / "interim" / "spans.csv", dtype={"clip_id": str}).set_index("clip_id")
    # the same name, other bytes: another clip of the corpus copied over it (the index does not change)
    target = clips[0]
    target.unlink()
    shutil.copy(clips[1], target)
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    index_before = rf.digest(repo / "data" / "index.csv")
    out = rf.run(["dvc", "repro", "face_crops"], repo)
    text = out.stdout + out.stderr
    # index reruns (the listing changed) and writes the same index: trim and face_crops rerun for the bytes
    assert {"trim", "face_crops"} <= rf.ran(text), text[-2000:]
    assert rf.digest(repo / "data" / "index.csv") == index_before
    spans_after = pd.read_csv(repo / "data" / "interim" / "spans.csv", dtype={"clip_id": str}).set_index("clip_id")
    changed = target.stem
    assert spans_after.loc[changed, "end_s"] == pytest.approx(spans_after.loc[clips[1].stem, "end_s"])
    assert spans_after.loc[changed, "end_s"] != spans_before.loc[changed, "end_s"] or (
        spans_after.loc[changed, "start_s"] != spans_before.loc[changed, "start_s"]
    )

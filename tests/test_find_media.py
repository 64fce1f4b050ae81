"""Folder searches: symlinked folders are followed once each; predict takes every container
ffmpeg reads and names the files it skipped."""

import logging
import os

import pytest

from mmer.archives import find_archives
from mmer.corpus import find_media
from mmer.errors import ConfigError
from mmer.files import walk_files
from mmer.predictor import find_clips

from media_factory import ravdess_name

needs_symlinks = pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="symlinks")


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@needs_symlinks
def test_symlinked_actor_folders_are_read(tmp_path):
    # the corpus on a "shared drive", linked into the project folder actor by actor
    shared, raw = tmp_path / "shared", tmp_path / "raw"
    one = touch(shared / "Actor_01" / ravdess_name(actor=1))
    two = touch(shared / "Actor_02" / ravdess_name(actor=2, modality=3).replace(".mp4", ".wav"))
    touch(shared / "zips" / "Video_Speech_Actor_01.zip")
    raw.mkdir()
    for name in ("Actor_01", "Actor_02", "zips"):
        (raw / name).symlink_to(shared / name, target_is_directory=True)
    assert find_media(raw) == [raw / "Actor_01" / one.name, raw / "Actor_02" / two.name]
    assert find_archives(raw) == [raw / "zips" / "Video_Speech_Actor_01.zip"]
    # the whole corpus folder a link
    (tmp_path / "linked").symlink_to(shared, target_is_directory=True)
    assert [p.name for p in find_media(tmp_path / "linked")] == [one.name, two.name]


@needs_symlinks
def test_link_loops_end_and_no_file_is_found_twice(tmp_path, caplog):
    clip = touch(tmp_path / "raw" / "Actor_01" / ravdess_name(actor=1))
    (tmp_path / "raw" / "Actor_01" / "back").symlink_to(tmp_path / "raw", target_is_directory=True)  # a loop
    (tmp_path / "raw" / "Actor_01_again").symlink_to(tmp_path / "raw" / "Actor_01", target_is_directory=True)
    (tmp_path / "raw" / "broken").symlink_to(tmp_path / "nowhere")
    with caplog.at_level(logging.WARNING):
        assert find_media(tmp_path / "raw") == [clip]
        assert list(walk_files(tmp_path / "raw")) == [clip]
    warned = [r.getMessage() for r in caplog.records if "already searched" in r.getMessage()]
    assert any("back links to" in m for m in warned) and any("Actor_01_again links to" in m for m in warned)


def test_predict_folder_search_takes_every_container_ffmpeg_reads(tmp_path, caplog):
    names = [
        "a.flv",
        "b.3gp",
        "c.ts",
        "d.MTS",
        "e.wmv",
        "f.ogv",
        "g.mxf",
        "h.vob",
        "i.webm",
        "j.mkv",
        "k.avi",
        "l.mov",
        "m.m4v",
        "n.mpg",
        "o.wma",
        "p.aiff",
        "q.aif",
        "r.amr",
        "s.opus",
        "t.ogg",
        "u.caf",
        "v.au",
        "w.mp4",
        "x.wav",
        "y.flac",
        "z.mp3",
    ]
    for name in names:
        touch(tmp_path / "clips" / name)
    touch(tmp_path / "clips" / "notes.txt")
    touch(tmp_path / "clips" / "sub" / "subtitles.srt")
    touch(tmp_path / "clips" / "sub" / "README")
    touch(tmp_path / "clips" / ".DS_Store")
    with caplog.at_level(logging.WARNING, logger="mmer"):
        found = find_clips([tmp_path / "clips"])
    assert [p.name for p in found] == names
    [warning] = [r.getMessage() for r in caplog.records]
    assert (
        "skipped 3 files not named as media ((no suffix), .srt, .txt): notes.txt, sub/README, sub/subtitles.srt"
        in warning
    )
    assert ".DS_Store" not in warning


def test_predict_folder_without_media_names_what_it_found(tmp_path):
    touch(tmp_path / "docs" / "notes.txt")
    with pytest.raises(
        ConfigError, match=r"no media files in this folder \(skipped 1 file not named as media \(\.txt\): notes\.txt"
    ):
        find_clips([tmp_path / "docs"])


@pytest.mark.parametrize(
    "name, codecs",
    [
        ("clip.ts", ["-c:v", "mpeg2video", "-c:a", "mp2"]),
        ("clip.flv", ["-c:v", "flv1", "-c:a", "libmp3lame"]),
        ("clip.wmv", ["-c:v", "wmv2", "-c:a", "wmav2"]),
    ],
)
def test_other_containers_decode(tmp_path, name, codecs):
    # MPEG-TS writes codec tags like 0x0002 on the stream line: not the frame size
    import subprocess

    from mmer import media

    from media_factory import FFMPEG

    path = tmp_path / name
    subprocess.run(
        [
            FFMPEG,
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=25:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=1",
            *codecs,
            "-ar",
            "44100",
            str(path),
        ],
        check=True,
        capture_output=True,
    )
    info = media.probe(path)
    assert info.frame_size == (160, 120) and info.has_audio
    assert media.read_frames(path, [0.2, 0.6], info=info).shape == (2, 120, 160, 3)

import zipfile

import pytest

from mmer.archives import unpack_archives, usable_member
from mmer.corpus import build_index
from mmer.errors import MediaError


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)


def test_usable_members():
    assert usable_member("Actor_01/01-01-03-01-01-01-01.mp4")
    assert not usable_member("__MACOSX/Actor_01/._01-01-03-01-01-01-01.mp4")
    assert not usable_member("Actor_01/readme.txt")
    assert not usable_member("Actor_01/holiday.mp4")


def test_unpack_and_index_both_archives(tmp_path, caplog):
    raw, out = tmp_path / "raw", tmp_path / "unpacked"
    raw.mkdir()
    make_zip(
        raw / "Video_Speech_Actor_01.zip",
        {
            "Actor_01/01-01-03-01-01-01-01.mp4": b"av",
            "Actor_01/02-01-03-01-01-01-01.mp4": b"silent",
            "Actor_01/notes.txt": b"a wrong file inside",
            "__MACOSX/Actor_01/._01-01-03-01-01-01-01.mp4": b"fork",
        },
    )
    make_zip(
        raw / "Audio_Speech_Actors_01-24.zip",
        {"Actor_01/03-01-03-01-01-01-01.wav": b"wav", "Actor_01/03-01-05-01-01-01-01.wav": b"wav2"},
    )
    manifest = unpack_archives(raw, out, progress=False)
    assert len(manifest) == 4
    assert (out / "Video_Speech_Actor_01" / "Actor_01" / "01-01-03-01-01-01-01.mp4").read_bytes() == b"av"
    assert "notes.txt" in caplog.text
    assert not list(out.rglob("._*"))

    index = build_index([raw, out], modalities=["av", "video", "audio"])
    # one recording (happy, actor 1) in three modalities counts once, as the audio-video clip
    assert sorted(index["clip_id"]) == ["01-01-03-01-01-01-01", "03-01-05-01-01-01-01"]

    mtime = (out / "Video_Speech_Actor_01" / "Actor_01" / "01-01-03-01-01-01-01.mp4").stat().st_mtime_ns
    again = unpack_archives(raw, out, progress=False)
    assert len(again) == 4
    assert (out / "Video_Speech_Actor_01" / "Actor_01" / "01-01-03-01-01-01-01.mp4").stat().st_mtime_ns == mtime


def test_no_archives_gives_empty_manifest(tmp_path):
    manifest = unpack_archives(tmp_path, tmp_path / "out", progress=False)
    assert manifest.empty and (tmp_path / "out" / "manifest.csv").is_file()


def test_broken_zip_names_the_file(tmp_path):
    (tmp_path / "Video_Speech_Actor_02.zip").write_bytes(b"PK not really")
    with pytest.raises(MediaError, match="Video_Speech_Actor_02.zip"):
        unpack_archives(tmp_path, tmp_path / "out", progress=False)

"""The RAVDESS archives as they come: unpack the Zenodo zips found in the corpus folder.

``Video_Speech_Actor_XX.zip`` holds ``Actor_XX/01-...mp4`` (audio-video) and
``Actor_XX/02-...mp4`` (silent video-only) clips; ``Audio_Speech_Actors_01-24.zip`` holds
``Actor_XX/03-...wav``. Members that are not media files with RAVDESS names are skipped
with a warning (``__MACOSX/`` resource forks, notes, stray files). Unpacking is
incremental: an archive whose size and modification time match the manifest is not
unpacked again.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from pathlib import Path, PurePosixPath

import pandas as pd
from tqdm.auto import tqdm

from mmer.corpus import MEDIA_SUFFIXES
from mmer.errors import DatasetError, MediaError
from mmer.files import atomic_path, walk_files
from mmer.ravdess import parse_name

logger = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ["archive", "size", "mtime_ns", "member", "path"]


def find_archives(root: str | Path) -> list[Path]:
    """Every ``.zip`` file below ``root``, sorted (symlinked folders followed, once each)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: corpus folder not found")
    return sorted(p for p in walk_files(root) if p.suffix.lower() == ".zip")


def usable_member(name: str) -> bool:
    """Whether a zip member is a media file with a RAVDESS name (and not a macOS fork)."""
    member = PurePosixPath(name)
    if member.suffix.lower() not in MEDIA_SUFFIXES or "__MACOSX" in member.parts or member.name.startswith("._"):
        return False
    try:
        parse_name(member.name)
    except DatasetError:
        return False
    return True


def unpack_archive(archive: str | Path, out_dir: str | Path, *, progress: bool = True) -> list[dict]:
    """Unpack the usable members of one zip into ``out_dir/<archive stem>/``.

    Parameters
    ----------
    archive : str or Path
        A RAVDESS zip.
    out_dir : str or Path
        Where to unpack; member folders (``Actor_XX/``) are kept.

    Returns
    -------
    list of dict
        Manifest rows: archive, size, mtime_ns, member, path.

    Raises
    ------
    MediaError
        The file is not a readable zip.
    """
    archive = Path(archive)
    target = Path(out_dir) / archive.stem
    stat = archive.stat()
    rows, skipped = [], []
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            for member in tqdm(members, desc=archive.name, unit="file", disable=not progress):
                if not usable_member(member.filename):
                    skipped.append(member.filename)
                    continue
                destination = target / PurePosixPath(member.filename).name
                if len(PurePosixPath(member.filename).parts) > 1:
                    destination = (
                        target / PurePosixPath(member.filename).parent.name / PurePosixPath(member.filename).name
                    )
                destination.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(destination) as tmp, bundle.open(member) as source, tmp.open("wb") as sink:
                    shutil.copyfileobj(source, sink, length=1 << 20)
                rows.append(
                    {
                        "archive": str(archive),
                        "size": stat.st_size,
                        "mtime_ns": stat.st_mtime_ns,
                        "member": member.filename,
                        "path": str(destination),
                    }
                )
    except (zipfile.BadZipFile, OSError) as err:
        raise MediaError(f"{archive}: not a readable zip archive: {err}") from err
    if skipped:
        logger.warning(
            "%s: skipped %d members that are not RAVDESS media: %s", archive, len(skipped), ", ".join(skipped[:5])
        )
    logger.info("%s: unpacked %d media files into %s", archive, len(rows), target)
    return rows


def unpack_archives(root: str | Path, out_dir: str | Path, *, progress: bool = True) -> pd.DataFrame:
    """Unpack every zip below ``root`` into ``out_dir`` and write ``out_dir/manifest.csv``.

    An archive already unpacked (same size and modification time in the manifest, files
    present) is not unpacked again. A folder with no archive gives an empty manifest.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    previous = (
        pd.read_csv(manifest_path, dtype=str) if manifest_path.is_file() else pd.DataFrame(columns=MANIFEST_COLUMNS)
    )
    rows: list[dict] = []
    for archive in find_archives(root):
        stat = archive.stat()
        done = previous[
            (previous["archive"] == str(archive))
            & (previous["size"] == str(stat.st_size))
            & (previous["mtime_ns"] == str(stat.st_mtime_ns))
        ]
        if len(done) and all(Path(p).is_file() for p in done["path"]):
            rows.extend(done.to_dict("records"))
            logger.info("%s: already unpacked", archive)
            continue
        rows.extend(unpack_archive(archive, out_dir, progress=progress))
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    with atomic_path(manifest_path) as tmp:
        manifest.to_csv(tmp, index=False)
    return manifest

"""CPU cost per clip of trim, audio_features and face_crops by frame size and clip length (docs/scaling.md).

Run as ``python -m bench.scaling CORPUS [CORPUS ...]`` on folders written by ``mmer synth``
(e.g. ``--size 320x180``, ``640x360``, ``1280x720``): for each, the per-clip work of the three
stages (:func:`mmer.speech.trim_clip_and_info`, :func:`mmer.audio.wav_feature_set`,
:func:`mmer.faces.clip_face_crops` with one decoder thread and trim's probe facts, as a pool
worker runs it) on
``--clips`` audio-video clips in this one process, after one warm-up clip. Then the clips of
the last folder made 2x and 4x longer (concatenated with themselves, streams copied). Prints
one JSON line per row: CPU milliseconds per clip (this process and its ffmpeg children), which
a loaded machine disturbs less than wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from mmer import audio, faces, media, speech


def cpu_s() -> float:
    """CPU seconds of this process and its waited-for children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def per_clip_ms(clips: list[Path], scratch: Path) -> dict:
    """Mean CPU ms per clip of each stage's per-clip work, the mean span and the frame size."""
    spent = {"trim": 0.0, "audio_features": 0.0, "face_crops": 0.0}
    spans = []
    for i, clip in enumerate(clips):
        wav = scratch / f"{i}.wav"
        started = cpu_s()
        span, info = speech.trim_clip_and_info(clip, wav)
        spent["trim"] += cpu_s() - started
        started = cpu_s()
        audio.wav_feature_set(wav)
        spent["audio_features"] += cpu_s() - started
        started = cpu_s()
        # as the stage runs it: the probe facts come from trim (spans.csv), not from a probe of its own
        info = media.info_from_facts(clip, media.video_facts(info))
        faces.clip_face_crops(clip, span["start_s"], span["end_s"], threads=1, info=info)
        spent["face_crops"] += cpu_s() - started
        spans.append(span["end_s"] - span["start_s"])
    return {
        "clips": len(clips),
        **{stage: round(1000 * seconds / len(clips), 1) for stage, seconds in spent.items()},
        "mean_span_s": round(float(np.mean(spans)), 2),
        "frame": "x".join(map(str, media.probe(clips[0]).frame_size)),
    }


def repeated(clip: Path, times: int, out: Path) -> Path:
    """``clip`` concatenated with itself ``times`` times (streams copied)."""
    listing = out.with_suffix(".txt")
    listing.write_text(f"file '{clip.resolve()}'\n" * times)
    subprocess.run(
        [
            media.ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-c",
            "copy",
            str(out),
        ],
        check=True,
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="+", type=Path, help="folders written by mmer synth")
    parser.add_argument("--clips", type=int, default=8, help="clips per folder")
    parser.add_argument(
        "--longer", type=int, nargs="*", default=[2, 4], help="length multiples of the last folder's clips"
    )
    args = parser.parse_args()
    faces.worker_detector().detect(np.zeros((64, 64, 3), np.uint8))  # the detector's start-up is not per clip
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for folder in args.corpora:
            clips = sorted(folder.glob("Actor_*/01-*.mp4"))[: args.clips]
            per_clip_ms(clips[:1], scratch)  # warm-up
            print(json.dumps({"corpus": str(folder), **per_clip_ms(clips, scratch)}), flush=True)
        base = sorted(args.corpora[-1].glob("Actor_*/01-*.mp4"))[: max(1, args.clips // 2)]
        for times in args.longer:
            clips = [repeated(clip, times, scratch / f"x{times}-{i}.mp4") for i, clip in enumerate(base)]
            print(
                json.dumps({"corpus": f"{args.corpora[-1]} x{times} length", **per_clip_ms(clips, scratch)}), flush=True
            )


if __name__ == "__main__":
    main()

"""Long and large inputs: ``mmer predict`` on a 10-minute recording, and memory per worker by resolution.

Run as ``python -m bench.long_input`` (``make bench-long``; ``make bench`` runs it as its
``long`` part). From one clip of the sample corpus (``mmer synth``, 1280x720) it writes:

- a 10-minute 720p recording: the clip looped with ``ffmpeg -stream_loop -c copy`` (speech
  every 3.5 s, a face throughout);
- the clip scaled to each of ``--sizes`` (default 1280x720 and 3840x2160).

and measures, each in a new process:

- ``mmer predict LONG --json``: wall and CPU time, windows, and peak memory (see
  :func:`measured`);
- per size, the worker of the ``face_crops`` stage (:func:`mmer.faces.clip_face_crops` with
  the default params, detector created once, :data:`CLIPS_PER_WORKER` clips) and
  ``mmer predict CLIP`` on the same clip: the same figures; for the worker also its RSS
  before its first clip (MediaPipe loaded).

The model is untrained (random weights) with the default params and T=190 frames (a 1.92 s
window, as on the demo corpus): time and memory do not depend on the weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.run import TreeMemory, child_env, run_command

logger = logging.getLogger(__name__)

DEFAULT_WORKDIR = Path(".cache/mmer-bench/long")
DEFAULT_OUT = Path("metrics/bench-long.json")
LONG_S = 600.0
LONG_SIZE = "1280x720"
SIZES = ("1280x720", "3840x2160")
PADDED_FRAMES = 190
CLIPS_PER_WORKER = 3
MB = 1 << 20


def untrained_model(path: Path, *, padded_frames: int = PADDED_FRAMES) -> Path:
    """An av model (default params, random weights) whose ``model.json`` says T=``padded_frames``."""
    from mmer.bundle import model_metadata, save_model_bundle
    from mmer.config import AudioParams, FacesParams, ModelParams, SpanParams
    from mmer.networks import build_model

    if path.is_file():
        return path
    faces = FacesParams()
    params = ModelParams()
    model = build_model(
        n_classes=8,
        audio_features_shape=(padded_frames, AudioParams.n_mfcc),
        faces_shape=(faces.frames_per_clip, faces.size, faces.size, 3),
        **dataclasses.asdict(params),
    )
    span = dataclasses.asdict(SpanParams())
    audio = {**dataclasses.asdict(AudioParams()), "padded_frames": padded_frames, "sample_rate": SpanParams.sample_rate}
    video = {k: v for k, v in dataclasses.asdict(faces).items() if k not in ("jobs", "max_failed_share")}
    labels = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    meta = model_metadata(
        model,
        model_inputs="av",
        label_names=labels,
        feature_attrs={"audio": {**audio, "span": span}, "video": {**video, "span": span}},
        params={"model": dataclasses.asdict(params)},
    )
    save_model_bundle(model, meta, path)
    return path


def ffmpeg(*args: str) -> None:
    from mmer.media import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True, capture_output=True)


def source_clip(workdir: Path) -> Path:
    """One 3.5 s 1280x720 clip of the sample corpus."""
    out = workdir / "source"
    clips = sorted(out.glob("Actor_*/*.mp4"))
    if not clips:
        run_command(
            [sys.executable, "-m", "mmer", "-q", "synth", "--out", str(out), "--actors", "1", "--clips-per-actor", "1"]
            + ["--size", LONG_SIZE, "--no-progress"],
            what="mmer synth",
        )
        clips = sorted(out.glob("Actor_*/*.mp4"))
    return clips[0]


def looped(source: Path, out: Path, seconds: float) -> Path:
    """``source`` repeated to ``seconds`` without re-encoding."""
    if not out.is_file():
        ffmpeg("-stream_loop", "-1", "-i", str(source), "-t", f"{seconds:g}", "-c", "copy", str(out))
    return out


def scaled(source: Path, out: Path, size: str) -> Path:
    """``source`` scaled to ``size`` (x264 ultrafast, audio copied)."""
    if not out.is_file():
        width, height = size.split("x")
        ffmpeg(
            "-i", str(source), "-vf", f"scale={width}:{height}", "-c:v", "libx264", "-preset", "ultrafast",
            "-threads", "2", "-c:a", "copy", str(out),
        )  # fmt: skip
    return out


def measured(cmd: list[str]) -> dict[str, Any]:
    """Run a command; its wall time, CPU time, peak memory and stdout.

    ``cpu_s`` is the user + system time of the process and the children it waited for (what
    a busy machine does not inflate); ``peak_rss_mb`` the exact high-water mark of its largest
    process (``wait4``'s ``ru_maxrss``: the Python process); ``tree_peak_pss_mb`` the sampled
    peak of the tree's proportional set sizes (Python and its ffmpeg runs, shared pages split).
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=child_env(), text=True)
        with TreeMemory(proc.pid) as memory:
            _, status, usage = os.wait4(proc.pid, 0)
            peak = memory.take_peak()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read()[-2000:]}")
        return {
            "seconds": round(time.perf_counter() - started, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "load_average": round(os.getloadavg()[0], 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "tree_peak_pss_mb": round(peak["pss"] / MB),
            "stdout": out.read(),
        }


def predict(model: Path, clip: Path) -> dict[str, Any]:
    """``mmer predict CLIP --json`` as a new process: seconds, tree peak RSS, windows."""
    run = measured(
        [sys.executable, "-m", "mmer", "predict", str(clip), "--model", str(model), "--json", "--no-progress"]
    )
    answer = json.loads(run.pop("stdout").strip().splitlines()[-1])
    summary = answer.get("summary") or {}
    return {**run, "windows": summary.get("windows"), "method": summary.get("method"), "span_s": answer["span"]}


def face_worker(clips: list[str]) -> dict[str, Any]:
    """In the worker process: the stage's per-clip function on ``clips``; own peak RSS before and after."""
    from mmer import faces, media

    faces.init_worker()
    faces.worker_detector()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    for clip in clips:
        info = media.probe(clip)
        faces.clip_face_crops(clip, 0.0, float(info.duration_s))
    return {
        "worker_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "worker_rss_before_clips_mb": round(before / 1024),
        "seconds_per_clip": round((time.perf_counter() - started) / len(clips), 2),
    }


def faces_per_worker(clip: Path) -> dict[str, Any]:
    run = measured([sys.executable, "-m", "bench.long_input", "--face-worker", *[str(clip)] * CLIPS_PER_WORKER])
    return {**json.loads(run.pop("stdout").strip().splitlines()[-1]), **run}


def bench_long_input(workdir: Path, *, sizes: tuple[str, ...] = SIZES, long_s: float = LONG_S) -> dict[str, Any]:
    """Every figure of this module (see its docstring) as a dict."""
    workdir.mkdir(parents=True, exist_ok=True)
    model = untrained_model(workdir / "model" / "model.keras")
    source = source_clip(workdir)
    long_clip = looped(source, workdir / f"long-{long_s:g}s-{LONG_SIZE}.mp4", long_s)
    logger.info("long_input: mmer predict on %s (%g s, %s)", long_clip.name, long_s, LONG_SIZE)
    report: dict[str, Any] = {"long": {"seconds_of_media": long_s, "size": LONG_SIZE, **predict(model, long_clip)}}
    report["by_size"] = {}
    for size in sizes:
        clip = source if size == LONG_SIZE else scaled(source, workdir / f"clip-{size}.mp4", size)
        logger.info("long_input: face_crops worker and mmer predict at %s", size)
        report["by_size"][size] = {"face_crops": faces_per_worker(clip), "predict": predict(model, clip)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.long_input", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=str(DEFAULT_WORKDIR), help="generated media and the model (reused)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the JSON file written")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), help="frame sizes of the per-worker figures")
    parser.add_argument("--seconds", type=float, default=LONG_S, help="length of the long recording")
    parser.add_argument("--face-worker", nargs="+", metavar="CLIP", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.face_worker:
        print(json.dumps(face_worker(args.face_worker)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = bench_long_input(Path(args.workdir).resolve(), sizes=tuple(args.sizes), long_s=args.seconds)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``make bench``: speed and memory of mmer on a generated corpus -> ``metrics/bench.json``.

Run as ``python -m bench.run`` (``--quick`` for a tiny smoke run). On a RAVDESS-shaped corpus
written by ``mmer synth`` (1280x720 by default, kept in ``--workdir`` so reruns reuse it) it
measures:

- preprocessing: clips/s and peak memory of the ``trim``, ``audio_features`` and
  ``face_crops`` stage functions of :mod:`mmer.preprocess` (no per-clip cache, one worker per
  core), alone and together; the same for the usual approach of peer projects (decode every
  frame, detect on every frame, then subsample: :func:`bench.naive_faces.naive_face_crops`) on the
  same clips in the same run, and our speed as a ratio to it;
- training: seconds per epoch of the default model on the corpus's features, after the
  first epoch (which also traces the graph);
- prediction: warm latency of :class:`mmer.predictor.Predictor` (model loaded once) on a clip
  of about 4 s, and cold latency of ``mmer predict CLIP`` as a new process;
- serving: ``mmer serve`` started as a process of its own with the trained model: its start-up
  until ``/health`` answers, then ``POST /predict`` of the same clip, latency p50/p95 and
  throughput for one client at a time and for 4 clients at once (after one untimed request),
  and the serving process's memory (:func:`serve_latency`);
- face encoders: seconds per clip that each per-frame face encoder (``model.video_encoder``
  vgg, fer2013 frozen, fer2013 all layers trained) costs a video-only model in a training
  step and in a warm one-clip predict, and the zero-shot FER2013 ``face_expression`` of
  ``mmer predict`` (:func:`encoder_times`);
- DVC: a no-op ``dvc repro`` and a ``dvc repro`` after a ``train.*`` change (checked to
  rerun no preprocessing stage), in a temporary git + DVC repo over a small corpus;
- incremental preprocessing: a corpus processed with the per-clip cache, then the same
  corpus plus a few new clips (another seed, other actors): the time of the rerun against
  the full run, and a check that every earlier clip came from the cache.

Each stage, the training and the warm prediction run in a process of their own (as
``dvc repro`` runs stages). Peak memory is that process's and all its workers' together,
sampled by a thread (:class:`TreeMemory`): the sum of the proportional set sizes (shared
pages split between the processes sharing them; judged against the target) and the sum of
the resident set sizes (shared pages counted once per process, so it errs high).
Each figure is the median of ``--repeats`` runs; a section says when it has fewer.
The clips/s measured on the default corpus (120 clips) is extrapolated to the 1440-clip
target; ``--clips 1440`` measures the full size.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.before_faces import before_chunksize, before_face_crops, init_worker_before, trim_as_before
from bench.naive_faces import naive_face_crops
from mmer import __version__
from mmer.errors import ConfigError, MmerError
from mmer.predictor import DEFAULT_MODEL, Predictor

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]  # the source checkout (dvc.yaml, stages/)
BIN = Path(sys.executable).parent
DEFAULT_CLIPS = 120
DEFAULT_REPEATS = 3
DEFAULT_OUT = Path("metrics/bench.json")
DEFAULT_WORKDIR = Path(".cache/mmer-bench")
DEFAULT_PARAMS = Path("params.yaml")
BENCH_SIZE = "1280x720"
QUICK_SIZE = "320x180"
QUICK_CLIPS = 6
CORPUS_SEED = 0
ALL_ACTORS = tuple(range(1, 25))
# below 24 clips: four training actors, one validation (19) and one test actor (24) of the default split
SMALL_ACTORS = (1, 2, 3, 4, 19, 24)
# the added clips of the incremental run: other actors (new clip ids) and another seed (new bytes)
ADDED_ACTORS = (25, 26)
ADDED_SEED = 1
DEFAULT_ADDED = 10
DVC_CLIPS_PER_ACTOR = 2  # the small corpus of the DVC timings: SMALL_ACTORS x 2
DVC_TRAIN_EPOCHS = 2
TRAIN_EPOCHS_TIMED = 2  # epochs timed after the first (tracing) one, at least
PREDICT_CLIP_S = 4.0
SAMPLE_INTERVAL_S = 0.05  # resident set size
PSS_INTERVAL_S = 1.0  # proportional set size (costs ~15 ms per process to read)
MB = 1024 * 1024
SERVE_REQUESTS = 20  # timed POST /predict per load pattern (4 with --quick)
SERVE_CONCURRENCY = 4

# the target: a 1440-clip corpus preprocessed in under 5 minutes, in under 2 GB
TARGET_CLIPS = 1440
TARGET_SECONDS = 300.0
TARGET_CLIPS_PER_S = 5.0  # 1440 / 300 = 4.8, rounded up
TARGET_PEAK_MB = 2048.0

PARTS = ("preprocess", "train", "predict", "serve", "face_encoder", "dvc", "incremental", "long")
FACE_ENCODERS = (("vgg", "frozen"), ("fer2013", "frozen"), ("fer2013", "all"))  # model.video_encoder(_trainable)
FACE_ENCODER_CLIPS = 64
PREPROCESS_STAGES = ("unpack", "index", "trim", "audio_features", "face_crops", "samples")
FACE_STAGES = ("face_crops", "before_face_crops", "naive_face_crops")
TRIM_STAGES = ("trim", "before_trim")  # today's and the one before issue 15 (bench/before_faces.py)


# --------------------------------------------------------------------------- measuring


class TreeMemory:
    """Peak memory of a process and all its descendants, sampled by a thread.

    Two sums over the tree: the resident set sizes (cheap, sampled every ``interval_s``;
    pages shared between processes, such as the libraries every pool worker maps, count
    once per process, so it errs high) and the proportional set sizes (shared pages split
    between the processes sharing them: what the machine needs; reading it costs about
    15 ms per process, so it is sampled every ``pss_interval_s`` and may miss short peaks).

    Use as a context manager; :meth:`take_peak` returns the peaks since the last call (or
    the start) and starts a new window, so one sampler can report each stage of a run.

    Parameters
    ----------
    pid : int, optional
        The root process (default: this one).
    interval_s, pss_interval_s : float
        Seconds between samples of each kind.
    """

    def __init__(
        self, pid: int | None = None, *, interval_s: float = SAMPLE_INTERVAL_S, pss_interval_s: float = PSS_INTERVAL_S
    ) -> None:
        import psutil

        self._psutil = psutil
        self._root = psutil.Process(pid)
        self._interval_s = interval_s
        self._pss_every = max(1, round(pss_interval_s / interval_s))
        self._lock = threading.Lock()
        self._peak_rss = self._peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)

    def _tree(self) -> list[Any]:
        try:
            return [self._root, *self._root.children(recursive=True)]
        except self._psutil.Error:
            return []

    def sample(self, *, pss: bool = True) -> None:
        """Add the current sums to the peaks (processes that end meanwhile are skipped)."""
        rss = pss_total = 0
        for process in self._tree():
            try:
                if pss:
                    full = process.memory_full_info()
                    rss, pss_total = rss + full.rss, pss_total + full.pss
                else:
                    rss += process.memory_info().rss
            except self._psutil.Error:
                continue
        with self._lock:
            self._peak_rss = max(self._peak_rss, rss)
            if pss:
                self._peak_pss = max(self._peak_pss, pss_total)

    def take_peak(self) -> dict[str, int]:
        """The peaks (bytes: ``rss``, ``pss``) since the last call; a new window starts at the current usage."""
        self.sample()
        with self._lock:
            peak = {"rss": self._peak_rss, "pss": self._peak_pss}
            self._peak_rss = self._peak_pss = 0
        self.sample()
        return peak

    def _run(self) -> None:
        count = 0
        while not self._stop.wait(self._interval_s):
            count += 1
            self.sample(pss=count % self._pss_every == 0)

    def __enter__(self) -> TreeMemory:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def median(values: Sequence[float]) -> float:
    """The median of a non-empty list, as a float."""
    if not values:
        raise ConfigError("median of no values")
    return float(np.median(np.asarray(values, dtype=float)))


def rounded(value: float, digits: int = 3) -> float:
    return float(round(float(value), digits))


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, load average and versions of the machine running the bench."""
    import psutil

    from mmer.config import cpu_jobs

    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(errors="replace"), flags=re.MULTILINE)
        model = names[0].strip() if names else model
    return {
        "cores": cpu_jobs(0),
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu_model": model,
        "memory_total_mb": round(psutil.virtual_memory().total / MB),
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def code_version() -> dict[str, Any]:
    """mmer's version and, in a git checkout, the commit and whether the tree had changes."""
    info: dict[str, Any] = {"version": __version__, "commit": None, "dirty": None}
    try:
        info["commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "mmer", "stages", "dvc.yaml", "params.yaml"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        info["dirty"] = bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        logger.debug("no git checkout at %s", ROOT)
    return info


# --------------------------------------------------------------------------- corpora


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
    """A generated corpus: which actors, how many clips each, frame size and seed."""

    actors: tuple[int, ...]
    clips_per_actor: int
    size: str
    seed: int = CORPUS_SEED

    @property
    def n_clips(self) -> int:
        return len(self.actors) * self.clips_per_actor

    @property
    def name(self) -> str:
        actors = (
            f"{self.actors[0]}-{self.actors[-1]}"
            if self.actors == tuple(range(self.actors[0], self.actors[-1] + 1))
            else "_".join(map(str, self.actors))
        )
        return f"corpus-{self.size}-a{actors}-c{self.clips_per_actor}-s{self.seed}"

    @property
    def actors_arg(self) -> str:
        return ",".join(map(str, self.actors))


def corpus_for(n_clips: int, size: str) -> CorpusSpec:
    """The corpus of at least ``n_clips`` clips: 24 actors with an equal share each, or, below
    24 clips, six actors (train, validation and test speakers of the default split).

    Raises
    ------
    ConfigError
        ``n_clips`` is not in 1..1440.
    """
    if not 1 <= n_clips <= TARGET_CLIPS:
        raise ConfigError(f"--clips must be in 1-{TARGET_CLIPS} (24 actors x 60 clips), not {n_clips}")
    actors = ALL_ACTORS if n_clips >= len(ALL_ACTORS) else SMALL_ACTORS
    return CorpusSpec(actors=actors, clips_per_actor=math.ceil(n_clips / len(actors)), size=size)


def child_env() -> dict[str, str]:
    """Environment of the processes the bench starts: the venv first on PATH, quiet libraries."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("GLOG_minloglevel", "2")
    env.setdefault("PYTHONHASHSEED", "0")
    env["DVC_NO_ANALYTICS"] = "1"
    # bench/ is a folder of the source checkout, not an installed package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_command(cmd: Sequence[str], *, cwd: Path | None = None, what: str) -> tuple[float, str]:
    """Run a command; return its wall-clock seconds and its output (stdout + stderr).

    Raises
    ------
    MmerError
        The command failed; the message has the end of its output.
    """
    started = time.perf_counter()
    proc = subprocess.run(list(cmd), cwd=cwd, env=child_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise MmerError(f"bench: {what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n{output[-3000:]}")
    return seconds, output


def synth(spec: CorpusSpec, workdir: Path) -> tuple[Path, float]:
    """Write (or reuse) the corpus of ``spec`` under ``workdir``; returns its folder and the seconds spent."""
    out = workdir / spec.name
    cmd = [
        sys.executable,
        "-m",
        "mmer",
        "-q",
        "synth",
        "--out",
        str(out),
        "--seed",
        str(spec.seed),
        "--actors",
        spec.actors_arg,
        "--clips-per-actor",
        str(spec.clips_per_actor),
        "--size",
        spec.size,
        "--no-progress",
    ]
    n_there = len(list(out.glob("Actor_*/*.mp4"))) if out.is_dir() else 0
    if n_there < spec.n_clips:
        logger.info("synth: writing %d clips at %s into %s (%d there already)", spec.n_clips, spec.size, out, n_there)
    seconds, _ = run_command(cmd, what="mmer synth")
    return out, seconds if n_there < spec.n_clips else 0.0


def write_bench_index(roots: Sequence[Path], out_path: Path, params_path: Path | None) -> int:
    """The clip index of ``roots`` with the ``index`` params; returns the number of clips."""
    from mmer.config import IndexParams
    from mmer.corpus import build_index, write_index

    params = load_params(IndexParams, "index", params_path)
    index = build_index([str(r) for r in roots], **dataclasses.asdict(params))
    write_index(index, out_path)
    return len(index)


def load_params(cls: type, section: str, params_path: Path | None) -> Any:
    """One params section from ``params_path``, or the defaults when there is no such file."""
    from mmer.config import load_section

    if params_path is None or not Path(params_path).is_file():
        return cls()
    return load_section(cls, section, params_path)


# --------------------------------------------------------------------------- work in a child process


def run_worker(job: dict[str, Any], *, workdir: Path, name: str) -> dict[str, Any]:
    """Run one measured job in a new Python process (``python -m bench.run --worker``).

    The job's log goes to ``<workdir>/logs/<name>.log``.

    Raises
    ------
    MmerError
        The job failed; the message has the end of its log.
    """
    jobs_dir, logs_dir = workdir / "jobs", workdir / "logs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    logs_dir.mkdir(parents=True, exist_ok=True)
    job_path, result_path, log_path = (
        jobs_dir / f"{name}.json",
        jobs_dir / f"{name}.result.json",
        logs_dir / f"{name}.log",
    )
    result_path.unlink(missing_ok=True)
    job_path.write_text(json.dumps({**job, "result": str(result_path)}, indent=2))
    with log_path.open("w") as log:
        proc = subprocess.run(
            [sys.executable, "-m", "bench.run", "--worker", str(job_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
    if proc.returncode != 0 or not result_path.is_file():
        raise MmerError(
            f"bench: {name} failed (exit {proc.returncode}); log {log_path}:\n{log_path.read_text(errors='replace')[-3000:]}"
        )
    return json.loads(result_path.read_text())


REFERENCE_FACES = {  # stage name: (per-clip function, worker initializer or None for mmer.faces.init_worker)
    "naive_face_crops": (naive_face_crops, None),
    "before_face_crops": (before_face_crops, init_worker_before),
}


def reference_face_crops_stage(
    index_path: Path, spans_path: Path, *, out_path: Path, params: Any, jobs: int, method: str
) -> dict[str, int]:
    """The ``face_crops`` stage with a reference per-clip function of :data:`REFERENCE_FACES`.

    ``naive_face_crops`` (:func:`bench.naive_faces.naive_face_crops`: decode and detect every
    frame) or ``before_face_crops`` (:mod:`bench.before_faces`: mmer's method before issue 15).
    Same pool, detector per worker and cache file as :func:`mmer.preprocess.face_crops_stage`;
    for the comparison only. Returns the counts done and failed.
    """
    from mmer import faces
    from mmer.batch import map_clips
    from mmer.corpus import read_index
    from mmer.featurefile import write_cache
    from mmer.preprocess import VIDEO_MODALITIES, read_spans, star_call

    per_clip, initializer = REFERENCE_FACES[method]
    index, spans = read_index(index_path), read_spans(spans_path)
    clips = index[index["modality"].isin(VIDEO_MODALITIES)].merge(spans[["clip_id", "start_s", "end_s"]], on="clip_id")
    crop = functools.partial(per_clip, frames_per_clip=params.frames_per_clip, size=params.size, margin=params.margin)
    result = map_clips(
        functools.partial(star_call, crop),
        list(zip(clips["path"], clips["start_s"], clips["end_s"])),
        keys=list(clips["clip_id"]),
        paths=list(clips["path"]),
        stage=method,
        jobs=jobs,
        initializer=initializer or faces.init_worker,
        initargs=(params.model, params.min_confidence),
        progress=False,
        chunksize=before_chunksize(len(clips), jobs) if method == "before_face_crops" else None,
    )
    clip_ids = [c for c in clips["clip_id"] if c in result.results]
    crops = [result.results[c] for c in clip_ids]
    if crops:
        arrays = {
            "faces": np.stack([c.crops for c in crops]),
            "face_found": np.stack([c.found for c in crops]),
            "boxes": np.stack([c.boxes for c in crops]).astype(np.float32),
        }
        write_cache(out_path, arrays, clip_ids, {**dataclasses.asdict(params), "layout": "clip,frame,y,x,rgb"})
    return {"done": len(result.results), "failed": len(result.failures)}


def preprocess_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run preprocessing stages one after another; seconds and peak memory of each.

    The bench runs each stage in a process of its own (as ``dvc repro`` does), so that no
    stage finds modules (MediaPipe, TensorFlow) already imported by an earlier one.

    ``job``: ``index``, ``out_dir``, ``stages`` (of trim, audio_features, face_crops,
    before_face_crops, naive_face_crops), ``params`` (file or None), ``jobs`` and ``cache_dir`` (None: no
    per-clip cache).
    """
    from mmer import preprocess
    from mmer.config import AudioParams, FacesParams, SpanParams, TrimParams

    out = Path(job["out_dir"])
    params_path = Path(job["params"]) if job.get("params") else None
    trim_params = dataclasses.replace(load_params(TrimParams, "trim", params_path), jobs=job["jobs"])
    span_params = load_params(SpanParams, "span", params_path)
    audio_params = load_params(AudioParams, "audio", params_path)
    faces_params = dataclasses.replace(load_params(FacesParams, "faces", params_path), jobs=job["jobs"])
    index, spans, wav_dir, cache_dir = Path(job["index"]), out / "spans.csv", out / "audio", job.get("cache_dir")
    runners: dict[str, Callable[[], Any]] = {
        "trim": lambda: preprocess.trim_stage(
            index,
            wav_dir=wav_dir,
            spans_path=spans,
            failures_path=out / "failures_trim.csv",
            metrics_path=out / "trim.json",
            span=span_params,
            params=trim_params,
            progress=False,
            cache_dir=cache_dir,
        ),
        "audio_features": lambda: preprocess.audio_features_stage(
            index,
            spans,
            wav_dir=wav_dir,
            out_path=out / "audio.h5",
            failures_path=out / "failures_audio.csv",
            metrics_path=out / "audio_features.json",
            params=audio_params,
            span=span_params,
            max_failed_share=trim_params.max_failed_share,
            progress=False,
        ),
        "face_crops": lambda: preprocess.face_crops_stage(
            index,
            spans,
            out_path=out / "video.h5",
            failures_path=out / "failures_faces.csv",
            metrics_path=out / "face_crops.json",
            params=faces_params,
            span=span_params,
            progress=False,
            cache_dir=cache_dir,
        ),
    }

    def reference_faces(method: str) -> None:
        counts = reference_face_crops_stage(
            index, spans, out_path=out / f"video_{method}.h5", params=faces_params, jobs=job["jobs"], method=method
        )
        (out / f"{method}.json").write_text(json.dumps(counts))

    def before_trim() -> None:
        # trim as before issue 15 (bench/before_faces.py), into outputs of its own
        with trim_as_before():
            preprocess.trim_stage(
                index,
                wav_dir=out / "audio_before",
                spans_path=out / "spans_before.csv",
                failures_path=out / "failures_before_trim.csv",
                metrics_path=out / "before_trim.json",
                span=span_params,
                params=trim_params,
                progress=False,
                cache_dir=None,
            )

    runners.update({method: functools.partial(reference_faces, method) for method in REFERENCE_FACES})
    runners["before_trim"] = before_trim
    unknown = sorted(set(job["stages"]) - set(runners))
    if unknown:
        raise ConfigError(f"unknown stages {unknown}; known: {sorted(runners)}")
    results = {}
    with TreeMemory() as memory:
        idle = memory.take_peak()
        for stage in job["stages"]:
            started = time.perf_counter()
            runners[stage]()
            seconds = time.perf_counter() - started
            counts = json.loads((out / f"{stage}.json").read_text())
            results[stage] = {
                "seconds": seconds,
                "peak": memory.take_peak(),
                "done": counts["done"],
                "failed": counts["failed"],
            }
            logger.info(
                "%s: %.2f s, %d done, %d failed, peak %s",
                stage,
                seconds,
                counts["done"],
                counts["failed"],
                ", ".join(f"{k} {v / MB:.0f} MB" for k, v in results[stage]["peak"].items()),
            )
    return {"stages": results, "idle_peak": idle}


class EpochClock:
    """Stands in for the ``dvclive.Live`` of :func:`mmer.training.train_model`: notes when
    training starts (``log_params``) and when each epoch ends (``next_step``)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ends: list[float] = []

    def log_params(self, params: Any) -> None:
        self.started = time.perf_counter()

    def log_metric(self, name: str, value: float, **kwargs: Any) -> None:
        pass

    def next_step(self) -> None:
        self.ends.append(time.perf_counter())

    def epoch_seconds(self) -> list[float]:
        """Wall-clock seconds of each epoch (the first includes compiling)."""
        marks = [self.started, *self.ends]
        return [b - a for a, b in zip(marks, marks[1:])]


def train_job(job: dict[str, Any]) -> dict[str, Any]:
    """Train the default model for a few epochs on the bench features; save it for predict.

    ``job``: ``index``, ``audio``, ``video``, ``params``, ``epochs``, ``model``.
    """
    from mmer.bundle import save_model_bundle
    from mmer.clips import load_clip_data
    from mmer.config import AugmentParams, IndexParams, ModelParams, TrainParams
    from mmer.labels import label_names
    from mmer.training import train_model

    params_path = Path(job["params"]) if job.get("params") else None
    index_params = load_params(IndexParams, "index", params_path)
    train_params = load_params(TrainParams, "train", params_path)
    with TreeMemory() as memory:
        data = load_clip_data(job["index"], audio_path=job["audio"], video_path=job["video"])
        clock = EpochClock()
        result = train_model(
            data,
            label_names=label_names(index_params.classes, index_params.subset),
            model_params=load_params(ModelParams, "model", params_path),
            train_params=train_params,
            augment_params=load_params(AugmentParams, "augment", params_path),
            epochs=int(job["epochs"]),
            live=clock,
        )
        peak = memory.take_peak()
    save_model_bundle(result.model, result.metadata, job["model"])
    summary = result.summary
    return {
        "epoch_seconds": clock.epoch_seconds(),
        "library_seconds_per_epoch": summary["seconds_per_epoch"],
        "epochs_run": summary["epochs_run"],
        "n_train": summary["n_train"],
        "n_val": summary["n_val"],
        "n_parameters": summary["n_parameters"],
        "batch_size": train_params.batch_size,
        "threads": train_params.threads,
        "peak": peak,
    }


def predict_job(job: dict[str, Any]) -> dict[str, Any]:
    """Warm :class:`mmer.predictor.Predictor` latency (``job``: ``clip``, ``model``, ``repeats``)."""
    from bench.run import warm_latency

    if job.get("cwd"):  # the out-of-box path: a folder with no models/model.keras
        os.chdir(job["cwd"])
    with TreeMemory() as memory:
        result = warm_latency(job["clip"], job["model"], repeats=int(job["repeats"]), threads=job.get("threads", 2))
        result["peak"] = memory.take_peak()
    return result


def encoder_times(faces: np.ndarray, *, repeats: int = 3, batch_size: int = 32) -> dict[str, Any]:
    """Milliseconds per clip of each face encoder in a video-only model (issue 13).

    ``faces``: uint8 [n, frames, size, size, 3]. Per :data:`FACE_ENCODERS`: one training
    epoch over the clips (after an untimed one that traces the graph), and a warm one-clip
    ``predict_on_batch``; then the zero-shot ``face_expression`` of one clip. Medians of ``repeats``.
    """
    import keras

    from mmer.config import ModelParams
    from mmer.face_expression import crops_expression
    from mmer.networks import build_model

    labels = keras.utils.to_categorical(np.arange(len(faces)) % 7, 7)
    out: dict[str, Any] = {"clips": len(faces), "frames_per_clip": int(faces.shape[1]), "repeats": repeats}
    for encoder, trainable in FACE_ENCODERS:
        params = ModelParams(inputs="video", video_encoder=encoder, video_encoder_trainable=trainable)
        model = build_model(n_classes=7, faces_shape=faces.shape[1:], **dataclasses.asdict(params))
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        train, predict = [], []
        for repeat in range(repeats + 1):
            tick = time.perf_counter()
            model.fit({"faces": faces}, labels, batch_size=batch_size, epochs=1, verbose=0)
            if repeat:  # the first epoch traces the graph
                train.append((time.perf_counter() - tick) / len(faces))
            tick = time.perf_counter()
            model.predict_on_batch({"faces": faces[:1]})
            if repeat:
                predict.append(time.perf_counter() - tick)
        name = encoder if encoder == "vgg" else f"{encoder}_{trainable}"
        out[name] = {
            "train_ms_per_clip": rounded(1000 * median(train), 2),
            "predict_ms_per_clip": rounded(1000 * median(predict), 2),
        }
    found = np.ones(faces.shape[1], bool)
    zero_shot = []
    for repeat in range(repeats + 1):
        tick = time.perf_counter()
        crops_expression(faces[0], found)
        if repeat:
            zero_shot.append(time.perf_counter() - tick)
    out["fer2013_zero_shot"] = {"predict_ms_per_clip": rounded(1000 * median(zero_shot), 2)}
    return out


def face_encoder_job(job: dict[str, Any]) -> dict[str, Any]:
    """:func:`encoder_times` on the first clips of the bench's face cache (``job``: ``video``, ``repeats``)."""
    from mmer.featurefile import read_cache

    faces = read_cache(job["video"], ["faces"]).arrays["faces"][:FACE_ENCODER_CLIPS]
    return encoder_times(faces, repeats=int(job["repeats"]))


WORKER_JOBS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "preprocess": preprocess_job,
    "train": train_job,
    "predict": predict_job,
    "face_encoder": face_encoder_job,
}


def worker_main(job_path: str | Path) -> int:
    """Entry point of a child process: run the job in ``job_path``, write its result file."""
    from mmer.files import write_json
    from mmer.logs import setup_logging

    setup_logging()
    job = json.loads(Path(job_path).read_text())
    if job.get("kind") not in WORKER_JOBS:
        raise ConfigError(f"{job_path}: unknown job kind {job.get('kind')!r}; known: {sorted(WORKER_JOBS)}")
    write_json(WORKER_JOBS[job["kind"]](job), job["result"])
    return 0


# --------------------------------------------------------------------------- the measured parts


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """The resolved options of one bench run."""

    clips: int
    repeats: int
    out: Path
    workdir: Path
    params: Path | None
    size: str
    quick: bool
    added: int
    train_epochs_timed: int
    dvc_train_epochs: int
    skip: tuple[str, ...]
    jobs: int


def stage_figures(runs: list[dict[str, Any]], n_clips: int) -> dict[str, Any]:
    """Median seconds, clips/s and peak memory of one stage (or sum of stages) over runs."""
    seconds = [r["seconds"] for r in runs]
    middle = median(seconds)
    figures = {
        "clips": n_clips,
        "seconds": rounded(middle),
        "clips_per_s": rounded(n_clips / middle),
        "ms_per_clip": rounded(1000 * middle / n_clips, 1),
    }
    for kind in ("pss", "rss"):
        peaks = [r["peak"][kind] / MB for r in runs]
        figures[f"peak_{kind}_mb"] = rounded(median(peaks), 1)
        figures[f"peak_{kind}_mb_runs"] = [rounded(p, 1) for p in peaks]
    figures["seconds_runs"] = [rounded(s) for s in seconds]
    figures["failed"] = max(r.get("failed", 0) for r in runs)
    return figures


def combined(run: dict[str, dict[str, Any]], stages: Sequence[str]) -> dict[str, Any]:
    """Stages run one after another as one: summed seconds, largest peak."""
    return {
        "seconds": sum(run[s]["seconds"] for s in stages),
        "peak": {kind: max(run[s]["peak"][kind] for s in stages) for kind in ("rss", "pss")},
        "failed": max(run[s]["failed"] for s in stages),
    }


def run_stages(
    options: BenchOptions,
    index_path: Path,
    out_dir: Path,
    stages: Sequence[str],
    *,
    cache_dir: Path | None,
    name: str,
    one_process: bool = False,
) -> dict[str, Any]:
    """Run preprocessing stages one after another, each in a new process (or all in one); their figures by stage."""
    groups = [list(stages)] if one_process else [[stage] for stage in stages]
    results = {}
    for group in groups:
        job = {
            "kind": "preprocess",
            "index": str(index_path),
            "out_dir": str(out_dir),
            "params": str(options.params) if options.params else None,
            "jobs": options.jobs,
            "cache_dir": str(cache_dir) if cache_dir else None,
            "stages": group,
        }
        results.update(run_worker(job, workdir=options.workdir, name=f"{name}-{'-'.join(group)}")["stages"])
    return results


def bench_preprocess(options: BenchOptions, index_path: Path, n_clips: int) -> tuple[dict[str, Any], Path]:
    """Throughput and peak memory of trim, audio_features, face_crops and the reference face crops.

    Returns the section and the folder of the last run's outputs (features, spans).
    """
    runs: list[dict[str, Any]] = []
    out_dir = options.workdir / "preprocess"
    for repeat in range(options.repeats):
        # rotate which face approach runs first, so none always gets the warmer page cache
        faces_order = FACE_STAGES[repeat % len(FACE_STAGES) :] + FACE_STAGES[: repeat % len(FACE_STAGES)]
        trims = TRIM_STAGES[repeat % 2 :] + TRIM_STAGES[: repeat % 2]
        shutil.rmtree(out_dir, ignore_errors=True)
        logger.info(
            "preprocess: run %d of %d (%d clips, %d workers)", repeat + 1, options.repeats, n_clips, options.jobs
        )
        run = run_stages(
            options,
            index_path,
            out_dir,
            [*trims, "audio_features", *faces_order],
            cache_dir=None,
            name=f"preprocess-{repeat + 1}",
        )
        runs.append(run)
        logger.info(
            "preprocess: run %d: %s", repeat + 1, ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in run.items())
        )
    stages = {
        name: stage_figures([r[name] for r in runs], n_clips) for name in (*TRIM_STAGES, "audio_features", *FACE_STAGES)
    }
    stages["trim_audio_faces"] = stage_figures(
        [combined(r, ("trim", "audio_features", "face_crops")) for r in runs], n_clips
    )
    stages["trim_audio_naive"] = stage_figures(
        [combined(r, ("trim", "audio_features", "naive_face_crops")) for r in runs], n_clips
    )
    stages["trim_audio_before"] = stage_figures(
        [combined(r, ("before_trim", "audio_features", "before_face_crops")) for r in runs], n_clips
    )
    together = stages["trim_audio_faces"]
    extrapolated = n_clips < TARGET_CLIPS
    section = {
        "repeats": options.repeats,
        "jobs": options.jobs,
        "per_clip_cache": False,
        "stages": stages,
        "face_crops_speedup_vs_naive": rounded(
            stages["naive_face_crops"]["seconds"] / stages["face_crops"]["seconds"], 2
        ),
        "pipeline_speedup_vs_naive": rounded(stages["trim_audio_naive"]["seconds"] / together["seconds"], 2),
        # today's method against mmer's before issue 15, timed in the same runs (target: 10 clips/s from 6.39)
        "face_crops_speedup_vs_before": rounded(
            stages["before_face_crops"]["seconds"] / stages["face_crops"]["seconds"], 2
        ),
        "pipeline_speedup_vs_before": rounded(stages["trim_audio_before"]["seconds"] / together["seconds"], 2),
        "trim_speedup_vs_before": rounded(stages["before_trim"]["seconds"] / stages["trim"]["seconds"], 2),
        f"seconds_for_{TARGET_CLIPS}_clips": rounded(TARGET_CLIPS / together["clips_per_s"], 1),
        "extrapolated": extrapolated,
        "note": (
            f"clips/s measured on {n_clips} clips; {TARGET_CLIPS}-clip time extrapolated linearly (pool start-up included, so it errs high)"
            if extrapolated
            else f"measured on {n_clips} clips"
        ),
        "target": {
            "clips": TARGET_CLIPS,
            "seconds": TARGET_SECONDS,
            "clips_per_s": TARGET_CLIPS_PER_S,
            "peak_pss_mb": TARGET_PEAK_MB,
        },
        "memory_note": "peak_pss_mb: shared pages split between the processes sharing them (what the machine needs; judged against "
        "the target); peak_rss_mb: resident sizes summed over the process tree (shared pages counted once per process)",
        "meets_target": bool(
            together["clips_per_s"] >= TARGET_CLIPS_PER_S and together["peak_pss_mb"] < TARGET_PEAK_MB
        ),
    }
    return section, out_dir


def bench_train(options: BenchOptions, index_path: Path, features_dir: Path) -> tuple[dict[str, Any], Path]:
    """Seconds per epoch of the default model (after the first, tracing epoch); returns the model path too."""
    model_path = options.workdir / "model" / "model.keras"
    epochs = 1 + options.train_epochs_timed
    logger.info("train: %d epochs of the default model", epochs)
    result = run_worker(
        {
            "kind": "train",
            "index": str(index_path),
            "audio": str(features_dir / "audio.h5"),
            "video": str(features_dir / "video.h5"),
            "params": str(options.params) if options.params else None,
            "epochs": epochs,
            "model": str(model_path),
        },
        workdir=options.workdir,
        name="train",
    )
    steady = result["epoch_seconds"][1:]
    if not steady:
        raise MmerError(
            f"bench: training stopped after {result['epochs_run']} epoch(s); no epoch after the first to time"
        )
    section = {
        "repeats": len(steady),
        "note": f"median of {len(steady)} epochs after the first (tracing) epoch of one training run",
        "seconds_per_epoch": rounded(median(steady)),
        "epoch_seconds": [rounded(s) for s in result["epoch_seconds"]],
        "first_epoch_s": rounded(result["epoch_seconds"][0]),
        "n_train": result["n_train"],
        "n_val": result["n_val"],
        "n_parameters": result["n_parameters"],
        "batch_size": result["batch_size"],
        "threads": result["threads"],
        "peak_pss_mb": rounded(result["peak"]["pss"] / MB, 1),
        "peak_rss_mb": rounded(result["peak"]["rss"] / MB, 1),
    }
    return section, model_path


def pick_clip(spans_path: Path, index_path: Path, seconds: float = PREDICT_CLIP_S) -> tuple[Path, float]:
    """The clip whose duration is nearest ``seconds`` (from a spans table), and its duration."""
    import pandas as pd

    spans = pd.read_csv(spans_path, dtype={"clip_id": str})
    index = pd.read_csv(index_path, dtype={"clip_id": str})
    table = spans.merge(index[["clip_id", "path"]], on="clip_id")
    if table.empty:
        raise MmerError(f"bench: no clip in {spans_path} to time predict on")
    row = table.iloc[int(np.argmin(np.abs(table["duration_s"].to_numpy() - seconds)))]
    return Path(row["path"]), float(row["duration_s"])


def bench_predict(
    options: BenchOptions, model_path: Path | None, clip: Path, clip_s: float, *, name: str = "predict"
) -> dict[str, Any]:
    """Warm Predictor latency per clip and cold ``mmer predict CLIP`` latency (a new process).

    ``model_path`` None measures the out-of-box path: ``mmer predict CLIP`` with no ``--model``, in a folder
    with no ``models/model.keras``, so the shipped voice model and the FER2013 face answer (:mod:`mmer.shipped`).
    """
    logger.info("%s: warm latency on %s (%.2f s)", name, clip.name, clip_s)
    job: dict[str, Any] = {"kind": "predict", "clip": str(clip), "model": model_path and str(model_path)}
    cwd = None
    if model_path is None:
        cwd = options.workdir / "out-of-box"
        cwd.mkdir(parents=True, exist_ok=True)
        job["cwd"] = str(cwd)
    warm = run_worker({**job, "repeats": options.repeats}, workdir=options.workdir, name=f"{name}-warm")
    mmer_exe = BIN / "mmer"
    command = [str(mmer_exe)] if mmer_exe.is_file() else [sys.executable, "-m", "mmer"]
    command += ["-q", "predict", str(clip), "--no-progress"]
    if model_path is not None:
        command += ["--model", str(model_path)]
    if options.params:
        command += ["--params", str(options.params)]
    cold = []
    for repeat in range(options.repeats):
        logger.info("%s: cold run %d of %d", name, repeat + 1, options.repeats)
        seconds, _ = run_command(command, cwd=cwd, what="mmer predict")
        cold.append(seconds)
    return {
        "repeats": options.repeats,
        "clip": clip.name,
        "clip_duration_s": rounded(clip_s, 2),
        "frame_size": options.size,
        "warm_s": warm["median_s"],
        "warm_min_s": warm["min_s"],
        "warm_max_s": warm["max_s"],
        "warm_first_s": warm["first_s"],
        "model_load_s": warm["load_s"],
        "warm_peak_pss_mb": rounded(warm["peak"]["pss"] / MB, 1),
        "warm_peak_rss_mb": rounded(warm["peak"]["rss"] / MB, 1),
        "cold_s": rounded(median(cold)),
        "cold_runs_s": [rounded(s) for s in cold],
        "cold_command": "mmer -q predict CLIP"
        + (" --model MODEL" if model_path is not None else " (no model in the folder)"),
        "note": "warm: Predictor.predict with the model loaded once (after one untimed call); cold: a new process, imports and model load included",
    }


# issue 14's targets for mmer predict with the shipped voice model on 2 cores
SHIPPED_COLD_TARGET_S, SHIPPED_WARM_TARGET_S = 10.0, 0.5


def bench_predict_shipped(options: BenchOptions, features_dir: Path, index_path: Path) -> dict[str, Any] | None:
    """Warm and cold latency of ``mmer predict`` with the voice model shipped in the package
    (:mod:`mmer.pretrained`), on the same clip as :func:`bench_predict`; None when none is shipped."""
    from mmer.pretrained import shipped_voice_model

    shipped = shipped_voice_model()
    if shipped is None:
        logger.info("predict: no shipped voice model in this installation; skipped")
        return None
    clip, clip_s = pick_clip(features_dir / "spans.csv", index_path)
    figures = bench_predict(options, None, clip, clip_s, name="predict-shipped")
    figures.update(
        model="shipped voice model with the FER2013 face fused in (the out-of-box path)",
        cold_target_s=SHIPPED_COLD_TARGET_S,
        warm_target_s=SHIPPED_WARM_TARGET_S,
        cold_within_target=figures["cold_s"] <= SHIPPED_COLD_TARGET_S,
        warm_within_target=figures["warm_s"] <= SHIPPED_WARM_TARGET_S,
    )
    return figures


_RAN_RE = re.compile(r"Running stage '([^']+)'")
_RESTORED_RE = re.compile(r"Stage '([^']+)' is cached - skipping run")


def dvc_stages(output: str) -> tuple[set[str], set[str]]:
    """Stages a ``dvc repro`` ran (but ``unpack``, which runs every time: it lists the corpus
    folder), and those it restored from the run cache, from its output."""
    return set(_RAN_RE.findall(output)) - {"unpack"}, set(_RESTORED_RE.findall(output))


def set_params(repo: Path, **sections: dict[str, Any]) -> None:
    """Update sections of ``repo/params.yaml``."""
    import yaml

    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text()) or {}
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def bench_dvc(options: BenchOptions, corpus_dir: Path, n_clips: int) -> dict[str, Any]:
    """A no-op ``dvc repro`` and one after a ``train.*`` change, in a temporary git + DVC repo."""
    for needed in ("dvc.yaml", "params.yaml", "stages"):
        if not (ROOT / needed).exists():
            raise ConfigError(f"bench: the DVC timings need a source checkout; {ROOT / needed} not found")
    with tempfile.TemporaryDirectory(prefix="mmer-bench-dvc-") as tmp:
        return _bench_dvc_in(Path(tmp), options, corpus_dir, n_clips)


def _bench_dvc_in(repo: Path, options: BenchOptions, corpus_dir: Path, n_clips: int) -> dict[str, Any]:
    params_source = options.params if options.params and options.params.is_file() else ROOT / "params.yaml"
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    shutil.copy(params_source, repo / "params.yaml")
    for folder in ("stages", "mmer"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(corpus_dir, repo / "data" / "raw")
    (repo / ".gitignore").write_text("/data/raw\n")
    dvc = str(BIN / "dvc") if (BIN / "dvc").is_file() else "dvc"
    git = ["git", "-c", "user.email=bench@example.org", "-c", "user.name=mmer bench"]
    for cmd in (["git", "init", "-q"], [dvc, "init", "-q"]):
        run_command(cmd, cwd=repo, what="repo set-up")
    set_params(repo, train={"epochs": options.dvc_train_epochs})
    run_command([*git, "add", "-A"], cwd=repo, what="git add")
    run_command([*git, "commit", "-qm", "bench corpus"], cwd=repo, what="git commit")
    logger.info("dvc: first dvc repro of %d clips (set-up, not a figure)", n_clips)
    setup_s, _ = run_command([dvc, "repro"], cwd=repo, what="first dvc repro")
    run_command([*git, "add", "-A"], cwd=repo, what="git add")
    run_command([*git, "commit", "-qm", "bench results"], cwd=repo, what="git commit")
    noop, changed, reran = [], [], set()
    for _repeat in range(options.repeats):
        seconds, output = run_command([dvc, "repro"], cwd=repo, what="no-op dvc repro")
        ran, restored = dvc_stages(output)
        if ran or restored:
            raise MmerError(f"bench: a dvc repro with nothing changed ran {sorted(ran | restored)}:\n{output[-2000:]}")
        noop.append(seconds)
    for repeat in range(options.repeats):
        set_params(repo, train={"seed": 1000 + repeat})  # a value never used before: no run-cache hit
        logger.info("dvc: dvc repro after train.seed=%d (%d of %d)", 1000 + repeat, repeat + 1, options.repeats)
        seconds, output = run_command([dvc, "repro"], cwd=repo, what="dvc repro after a train change")
        ran, restored = dvc_stages(output)
        preprocessing = (ran | restored) & set(PREPROCESS_STAGES)
        if preprocessing or "train" not in ran:
            raise MmerError(
                f"bench: dvc repro after a train.* change ran {sorted(ran)} and restored {sorted(restored)}; "
                f"expected train and no preprocessing stage:\n{output[-2000:]}"
            )
        changed.append(seconds)
        reran |= ran
    return {
        "repeats": options.repeats,
        "corpus_clips": n_clips,
        "train_epochs": options.dvc_train_epochs,
        "first_repro_s": rounded(setup_s, 1),
        "noop_s": rounded(median(noop)),
        "noop_runs_s": [rounded(s) for s in noop],
        "train_change_s": rounded(median(changed)),
        "train_change_runs_s": [rounded(s) for s in changed],
        "train_change_stages": sorted(reran),
        "preprocessing_rerun": False,
        "note": f"temporary git + dvc repo; train.seed changed to a new value each time; train.epochs {options.dvc_train_epochs}",
    }


def cache_entries(cache_dir: Path) -> dict[str, tuple[int, int]]:
    """Every entry of a per-clip cache folder: relative path -> (inode, mtime in ns)."""
    entries = {}
    for path in cache_dir.rglob("*.pkl"):
        stat = path.stat()
        entries[str(path.relative_to(cache_dir))] = (stat.st_ino, stat.st_mtime_ns)
    return entries


def bench_incremental(
    options: BenchOptions, base_index: Path, plus_index: Path, n_base: int, n_added: int
) -> dict[str, Any]:
    """Process the corpus with the per-clip cache, add clips, rerun: the rerun's time, cache hits checked."""
    stages = ["trim", "audio_features", "face_crops"]
    cache_dir = options.workdir / "incremental" / "clipcache"
    out_dir = options.workdir / "incremental" / "out"
    shutil.rmtree(options.workdir / "incremental", ignore_errors=True)
    logger.info("incremental: full run of %d clips with the per-clip cache", n_base)
    full = run_stages(
        options, base_index, out_dir, stages, cache_dir=cache_dir, name="incremental-full", one_process=True
    )
    before = cache_entries(cache_dir)
    runs = []
    for repeat in range(options.repeats):
        for name in set(cache_entries(cache_dir)) - set(before):  # forget the added clips of the previous repeat
            (cache_dir / name).unlink()
        shutil.rmtree(out_dir, ignore_errors=True)
        logger.info("incremental: rerun with %d clips added (%d of %d)", n_added, repeat + 1, options.repeats)
        runs.append(
            run_stages(
                options,
                plus_index,
                out_dir,
                stages,
                cache_dir=cache_dir,
                name=f"incremental-added-{repeat + 1}",
                one_process=True,
            )
        )
        after = cache_entries(cache_dir)
        rewritten = sorted(name for name, stat in before.items() if after.get(name) != stat)
        new = len(set(after) - set(before))
        cached_stages = 2  # trim and face_crops keep per-clip entries; audio_features is recomputed (a few ms per clip)
        if rewritten or new != cached_stages * n_added:
            raise MmerError(
                f"bench: incremental rerun: {len(rewritten)} cached entries recomputed ({rewritten[:3]}), "
                f"{new} new entries for {n_added} added clips (expected {cached_stages * n_added})"
            )
    full_s = sum(full[s]["seconds"] for s in stages)
    added = [sum(r[s]["seconds"] for s in stages) for r in runs]
    return {
        "repeats": options.repeats,
        "note": "the three stages in one process; full run once, rerun with the added clips repeated (their cache entries removed in between)",
        "base_clips": n_base,
        "added_clips": n_added,
        "full_s": rounded(full_s),
        "full_stage_s": {s: rounded(full[s]["seconds"]) for s in stages},
        "added_s": rounded(median(added)),
        "added_runs_s": [rounded(s) for s in added],
        "added_stage_s": {s: rounded(median([r[s]["seconds"] for r in runs])) for s in stages},
        "added_to_full_ratio": rounded(median(added) / full_s, 3),
        "cached_entries_reused": len(before),
        "cache_hits_verified": True,
    }


# --------------------------------------------------------------------------- the whole run


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run every part not in ``options.skip`` and return the bench.json content."""
    started = time.perf_counter()
    workdir = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "schema": 1,
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "code": code_version(),
        "settings": {
            "clips": options.clips,
            "repeats": options.repeats,
            "quick": options.quick,
            "size": options.size,
            "jobs": options.jobs,
            "workdir": str(workdir),
            "params": str(options.params) if options.params else None,
            "skipped": list(options.skip),
        },
    }
    logger.info(
        "bench: %d cores (%s), load average %s",
        report["machine"]["cores"],
        report["machine"]["cpu_model"],
        report["machine"]["load_average_start"],
    )
    spec = corpus_for(options.clips, options.size)
    corpus_dir, synth_s = synth(spec, workdir)
    base_index = workdir / "index.csv"
    n_clips = write_bench_index([corpus_dir], base_index, options.params)
    report["corpus"] = {
        "dir": str(corpus_dir),
        "clips": n_clips,
        "actors": len(spec.actors),
        "clips_per_actor": spec.clips_per_actor,
        "size": spec.size,
        "seed": spec.seed,
        "synth_s": rounded(synth_s, 1),
    }
    features_dir = model_path = None
    if "preprocess" not in options.skip:
        report["preprocess"], features_dir = bench_preprocess(options, base_index, n_clips)
    if "train" not in options.skip and features_dir is not None:
        report["train"], model_path = bench_train(options, base_index, features_dir)
    if "predict" not in options.skip and model_path is not None and features_dir is not None:
        clip, clip_s = pick_clip(features_dir / "spans.csv", base_index)
        report["predict"] = bench_predict(options, model_path, clip, clip_s)
    if "serve" not in options.skip and model_path is not None and features_dir is not None:
        clip, clip_s = pick_clip(features_dir / "spans.csv", base_index)
        logger.info("serve: POST /predict of %s (%.2f s) against a warm mmer serve", clip.name, clip_s)
        report["serve"] = serve_latency(
            clip, model_path, requests=4 if options.quick else SERVE_REQUESTS, params=options.params
        )
        report["serve"].update(clip_duration_s=rounded(clip_s, 2), frame_size=options.size)
    if "predict" not in options.skip and features_dir is not None:
        report["predict_shipped"] = bench_predict_shipped(options, features_dir, base_index)
    if "face_encoder" not in options.skip and features_dir is not None:
        report["face_encoder"] = run_worker(
            {"kind": "face_encoder", "video": str(features_dir / "video.h5"), "repeats": options.repeats},
            workdir=options.workdir,
            name="face-encoder",
        )
    if "dvc" not in options.skip:
        small = spec if options.quick else CorpusSpec(SMALL_ACTORS, DVC_CLIPS_PER_ACTOR, options.size)
        small_dir, _ = synth(small, workdir)
        report["dvc"] = bench_dvc(options, small_dir, small.n_clips)
    if "incremental" not in options.skip:
        n_added = options.added
        added_spec = CorpusSpec(ADDED_ACTORS, math.ceil(n_added / len(ADDED_ACTORS)), options.size, seed=ADDED_SEED)
        added_dir, _ = synth(added_spec, workdir)
        # exactly n_added of the new clips: a folder of links to the first ones
        picked = workdir / f"added-{n_added}"
        shutil.rmtree(picked, ignore_errors=True)
        for clip in sorted(added_dir.glob("Actor_*/*.mp4"))[:n_added]:
            (picked / clip.parent.name).mkdir(parents=True, exist_ok=True)
            (picked / clip.parent.name / clip.name).symlink_to(clip.resolve())
        plus_index = workdir / "index-plus.csv"
        n_plus = write_bench_index([corpus_dir, picked], plus_index, options.params)
        report["incremental"] = bench_incremental(options, base_index, plus_index, n_clips, n_plus - n_clips)
    if "long" not in options.skip:  # a 10-minute recording, and memory per worker at 720p and 4K
        from bench.long_input import bench_long_input

        report["long_input"] = bench_long_input(workdir / "long", long_s=60.0 if options.quick else 600.0)
    report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report["seconds"] = rounded(time.perf_counter() - started, 1)
    return report


def resolve_options(args: argparse.Namespace) -> BenchOptions:
    """Apply ``--quick``'s defaults to the options not given and check them."""
    quick = bool(args.quick)
    repeats = args.repeats if args.repeats is not None else (1 if quick else DEFAULT_REPEATS)
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, not {repeats}")
    clips = args.clips if args.clips is not None else (QUICK_CLIPS if quick else DEFAULT_CLIPS)
    added = args.added if args.added is not None else (2 if quick else DEFAULT_ADDED)
    if added < 1:
        raise ConfigError(f"--added must be at least 1, not {added}")
    skip = list(dict.fromkeys(args.skip or ()))
    bad = sorted(set(skip) - set(PARTS))
    if bad:
        raise ConfigError(f"--skip {bad}: the parts are {list(PARTS)}")
    # training needs the preprocessing's features, prediction the trained model
    for part, needs in (("train", "preprocess"), ("predict", "train"), ("serve", "train")):
        if needs in skip and part not in skip:
            logger.info("--skip %s: %s is skipped too", needs, part)
            skip.append(part)
    size = args.size or (QUICK_SIZE if quick else BENCH_SIZE)
    from mmer.synth.cli import parse_size

    parse_size(size)
    corpus_for(clips, size)
    if args.jobs < 0:
        raise ConfigError(f"--jobs must be >= 0 (0: one per core), not {args.jobs}")
    from mmer.config import cpu_jobs

    params = Path(args.params) if args.params else None
    if params is not None and not params.is_file():
        logger.warning("%s not found: mmer's default params are used", params)
    return BenchOptions(
        clips=clips,
        repeats=repeats,
        out=Path(args.out),
        workdir=Path(args.workdir).resolve(),
        params=params.resolve() if params is not None and params.is_file() else None,
        size=size,
        quick=quick,
        added=added,
        train_epochs_timed=1 if quick else max(TRAIN_EPOCHS_TIMED, repeats),
        dvc_train_epochs=1 if quick else DVC_TRAIN_EPOCHS,
        skip=tuple(skip),
        jobs=cpu_jobs(args.jobs),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Speed and memory of mmer on a generated RAVDESS-shaped corpus -> a JSON file and a Markdown table.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--clips",
        type=int,
        default=None,
        help=f"corpus size, rounded up to equal clips per actor [{DEFAULT_CLIPS}; {QUICK_CLIPS} with --quick; {TARGET_CLIPS}: the full target]",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"runs per figure; the median is reported [{DEFAULT_REPEATS}; 1 with --quick]",
    )
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the JSON file written")
    parser.add_argument(
        "--workdir", default=str(DEFAULT_WORKDIR), help="generated corpora (kept for reruns) and scratch outputs"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_CLIPS} clips at {QUICK_SIZE}, 1 repeat, 1 timed epoch, 2 added clips",
    )
    parser.add_argument(
        "--size", default=None, help=f"frame size of the corpus [{BENCH_SIZE}; {QUICK_SIZE} with --quick]"
    )
    parser.add_argument(
        "--added", type=int, default=None, help=f"clips added for the incremental run [{DEFAULT_ADDED}; 2 with --quick]"
    )
    parser.add_argument(
        "--params",
        default=str(DEFAULT_PARAMS),
        help="params file of the stage, model and training params (the stages get --jobs workers)",
    )
    parser.add_argument(
        "--jobs", type=int, default=0, help="worker processes of the preprocessing stages (0: one per core)"
    )
    parser.add_argument(
        "--skip",
        action="append",
        choices=PARTS,
        metavar="PART",
        help=f"leave out a part (repeatable): {', '.join(PARTS)}",
    )
    parser.add_argument("--worker", metavar="JOB", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.run``."""
    from bench.report import render_markdown
    from mmer.files import write_json
    from mmer.logs import setup_logging

    args = build_parser().parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    setup_logging()
    try:
        options = resolve_options(args)
        report = run_bench(options)
    except MmerError as err:
        logger.error("%s", err)
        return 1
    write_json(report, options.out)
    logger.info("bench: wrote %s in %.0f s", options.out, report["seconds"])
    print(render_markdown(report))
    return 0


def warm_latency(
    clip: str | Path, model_path: str | Path = DEFAULT_MODEL, *, repeats: int = 5, threads: int | None = 2
) -> dict[str, Any]:
    """Seconds per :meth:`Predictor.predict` of one clip with the model already loaded.

    One untimed call first (TensorFlow traces the graph then). For ``make bench``.

    Returns
    -------
    dict
        ``load_s`` (model and detector), ``first_s`` (the untimed call), ``median_s``,
        ``min_s``, ``max_s`` over ``repeats`` calls, the clip and the model.
    """
    from mmer.predict_cli import make_predictor

    started = time.perf_counter()
    # model_path None: what `mmer predict` answers with in this folder (the shipped voice and face models when
    # there is no models/model.keras)
    loaded = (
        Predictor(model_path, threads=threads) if model_path else make_predictor(None, params=None, threads=threads)
    )
    with loaded as predictor:
        load_s = time.perf_counter() - started
        first = time.perf_counter()
        predictor.predict(clip)
        first_s = time.perf_counter() - first
        times = []
        for _ in range(max(1, repeats)):
            tick = time.perf_counter()
            predictor.predict(clip)
            times.append(time.perf_counter() - tick)
    return {
        "clip": str(clip),
        "model": str(model_path),
        "load_s": round(load_s, 3),
        "first_s": round(first_s, 3),
        "median_s": round(float(np.median(times)), 3),
        "min_s": round(min(times), 3),
        "max_s": round(max(times), 3),
        "repeats": len(times),
    }


def _post_clip(url: str, body: bytes) -> float:
    """Seconds for one ``POST /predict`` of ``body`` (raw bytes); raises unless the answer is 200."""
    import urllib.request

    request = urllib.request.Request(
        f"{url}/predict", data=body, method="POST", headers={"Content-Type": "application/octet-stream"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()
    return time.perf_counter() - started


def serve_load(url: str, body: bytes, *, requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` POST /predict from ``concurrency`` clients at once: latency p50/p95, requests per second."""
    import concurrent.futures

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as clients:
        latencies = list(clients.map(lambda _: _post_clip(url, body), range(requests)))
    wall_s = time.perf_counter() - started
    return {
        "requests": requests,
        "concurrency": concurrency,
        "p50_s": rounded(float(np.percentile(latencies, 50))),
        "p95_s": rounded(float(np.percentile(latencies, 95))),
        "max_s": rounded(max(latencies)),
        "requests_per_s": rounded(requests / wall_s),
        "wall_s": rounded(wall_s),
    }


def serve_latency(
    clip: str | Path,
    model_path: str | Path = DEFAULT_MODEL,
    *,
    requests: int = SERVE_REQUESTS,
    concurrency: int = SERVE_CONCURRENCY,
    params: Path | None = None,
) -> dict[str, Any]:
    """``mmer serve`` in a process of its own, loaded with ``POST /predict`` of one clip.

    The start-up (process start until ``/health`` answers), one untimed request, then
    ``requests`` requests one at a time and ``requests`` from ``concurrency`` clients at once.
    Memory is the serving process's and its ffmpeg children's (:class:`TreeMemory`): after the
    warm-up request (``warm_*``) and the peak under load (``peak_*``).
    """
    import socket
    import urllib.request

    with socket.socket() as sock:  # a free loopback port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mmer", "-q", "serve", "--model", str(model_path), "--port", str(port)]
    command += ["--queue", str(max(concurrency, 1))] + (["--params", str(params)] if params else [])
    body = Path(clip).read_bytes()
    started = time.perf_counter()
    server = subprocess.Popen(command, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        with TreeMemory(server.pid) as memory:
            while True:
                if server.poll() is not None:
                    raise MmerError(f"bench: mmer serve ended ({server.returncode}): {server.stderr.read()[-3000:]!r}")
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                        response.read()
                    break
                except OSError:
                    time.sleep(0.2)
            startup_s = time.perf_counter() - started
            first_s = _post_clip(url, body)
            warm = memory.take_peak()
            sequential = serve_load(url, body, requests=requests, concurrency=1)
            concurrent = serve_load(url, body, requests=requests, concurrency=concurrency)
            peak = memory.take_peak()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return {
        "clip": Path(clip).name,
        "startup_s": rounded(startup_s),
        "first_request_s": rounded(first_s),
        "sequential": sequential,
        "concurrent": concurrent,
        "warm_pss_mb": rounded(warm["pss"] / MB, 1),
        "warm_rss_mb": rounded(warm["rss"] / MB, 1),
        "peak_pss_mb": rounded(peak["pss"] / MB, 1),
        "peak_rss_mb": rounded(peak["rss"] / MB, 1),
        "note": "POST /predict of the clip's bytes; one worker thread answers, the other clients wait in its queue",
    }


if __name__ == "__main__":
    raise SystemExit(main())

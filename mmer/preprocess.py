"""The preprocessing stages as functions: read inputs, map the per-clip work, write outputs.

Each ``*_stage`` function is what one script in ``stages/`` calls. Outputs (tables, caches,
failures, counts) are written before the failed share is checked, so a stage that fails
because too many clips were bad still leaves everything it computed and the reasons.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmer import audio, faces, functionals, media, speech
from mmer.batch import BatchResult, check_failed_share, map_clips
from mmer.config import AudioParams, BatchParams, FacesParams, SpanParams, TrimParams, cpu_jobs
from mmer.corpus import read_index
from mmer.errors import NoAudioError
from mmer.featurefile import write_cache
from mmer.files import atomic_path, write_failures, write_json
from mmer.resultcache import DEFAULT_DIR as DEFAULT_CACHE_DIR
from mmer.resultcache import ClipCache, clip_key

logger = logging.getLogger(__name__)

SPAN_COLUMNS = ["clip_id", "start_s", "end_s", "duration_s", "has_audio"]
VIDEO_MODALITIES = ("av", "video")
AUDIO_MODALITIES = ("av", "audio")


def star_call(func: Callable[..., Any], item: tuple) -> Any:
    """Call ``func(*item)``: lets a pool map a keyword-configured function over tuples."""
    return func(*item)


def cached_trim(path: str, wav_out: str | Path, modality: str, *, cache: ClipCache | None, **params: Any) -> dict:
    """:func:`mmer.speech.trim_clip`, served from the per-clip cache when the clip was seen.

    A hit writes the cached span audio back to ``wav_out``. An audio-video or audio-only
    clip (by its RAVDESS modality) without sound is a failure, not a video-only clip. The
    span comes with the probe's :func:`mmer.media.video_facts` (for the ``face_crops`` stage).
    """
    hit = None if cache is None else cache.get(clip_key(path))
    if hit is not None:
        span = hit["span"]
        facts = hit.get("facts") or media.video_facts(media.probe(path))  # an entry from before they were kept
        if hit["wav"] is not None:
            with atomic_path(wav_out) as tmp:
                tmp.write_bytes(hit["wav"])
    else:
        span, info = speech.trim_clip_and_info(path, wav_out, **params)
        facts = media.video_facts(info)
        if cache is not None:
            wav = Path(wav_out).read_bytes() if span["has_audio"] else None
            cache.put(clip_key(path), {"span": span, "facts": facts, "wav": wav})
    if modality in AUDIO_MODALITIES and not span["has_audio"]:
        raise NoAudioError(
            f"{path}: no sound in a clip whose name says modality {modality!r} (audio stream missing or all zeros)"
        )
    return {**span, **facts}


def cached_face_crops(
    path: str,
    start_s: float,
    end_s: float,
    info: media.MediaInfo | None = None,
    *,
    cache: ClipCache | None,
    **params: Any,
) -> Any:
    """:func:`mmer.faces.clip_face_crops`, served from the per-clip cache when seen (same bytes, same span).

    ``info``: the clip's probe facts from the spans table (None: the clip is probed).
    """
    if cache is None:
        return faces.clip_face_crops(path, start_s, end_s, info=info, **params)
    key = clip_key(path, round(float(start_s), 4), round(float(end_s), 4))
    return cache.get_or_compute(key, lambda: faces.clip_face_crops(path, start_s, end_s, info=info, **params))


def _finish(
    result: BatchResult,
    *,
    stage: str,
    n_total: int,
    failures_path: str | Path,
    metrics_path: str | Path,
    max_failed_share: float,
    extra: dict | None = None,
) -> None:
    """Write the failures table and the stage counts, then check the failed share."""
    write_failures(result.failures, failures_path)
    counts = {
        "clips": n_total,
        "done": len(result.results),
        "failed": len(result.failures),
        "failed_by_kind": dict(result.reason_counts()),
        **(extra or {}),
    }
    write_json(counts, metrics_path)
    check_failed_share(len(result.failures), n_total, max_failed_share, stage=stage, failures_path=str(failures_path))


def read_spans(path: str | Path) -> pd.DataFrame:
    """Read ``data/interim/spans.csv`` (the probe facts, when there, as the exact strings written)."""
    return pd.read_csv(path, dtype={"clip_id": str, **{name: str for name in media.VIDEO_FACTS}})


def _fact_text(name: str, value: Any) -> str:
    """A probe fact as written to the spans table: exact (the float's repr), empty when unknown."""
    if value is None:
        return ""
    return str(int(value)) if name in ("frame_width", "frame_height") else repr(float(value))


def trim_stage(
    index_path: str | Path,
    *,
    wav_dir: str | Path,
    spans_path: str | Path,
    failures_path: str | Path,
    metrics_path: str | Path,
    span: SpanParams = SpanParams(),
    params: TrimParams = TrimParams(),
    progress: bool = True,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    batch: BatchParams = BatchParams(),
) -> pd.DataFrame:
    """Stage ``trim``: find each clip's speech span and write the span's audio as a wav.

    Clips seen before (same bytes, same params, same code) come from the per-clip cache in
    ``cache_dir`` (None: no cache). ``batch`` says where the clips are mapped (the outputs do
    not depend on it). Returns the spans table (also written to ``spans_path``).
    """
    index = read_index(index_path)
    wav_dir = Path(wav_dir)
    wav_dir.mkdir(parents=True, exist_ok=True)
    trim_params = dataclasses.asdict(span)
    cache = ClipCache.for_stage("trim", trim_params, modules=(media, speech), base=cache_dir) if cache_dir else None
    trim = functools.partial(cached_trim, cache=cache, **trim_params)
    items = [
        (path, wav_dir / f"{clip_id}.wav", modality)
        for clip_id, path, modality in zip(index["clip_id"], index["path"], index["modality"])
    ]
    result = map_clips(
        functools.partial(star_call, trim),
        items,
        keys=list(index["clip_id"]),
        paths=list(index["path"]),
        stage="trim",
        jobs=cpu_jobs(params.jobs),
        progress=progress,
        executor=batch.executor,
        address=batch.address,
    )
    rows = [{"clip_id": clip_id, **span} for clip_id, span in result.results.items()]
    spans = pd.DataFrame(rows, columns=[*SPAN_COLUMNS, *media.VIDEO_FACTS])
    for name in media.VIDEO_FACTS:
        spans[name] = [_fact_text(name, value) for value in spans[name]]
    with atomic_path(spans_path) as tmp:
        spans.to_csv(tmp, index=False, float_format="%.4f")
    voiced = spans.loc[spans["has_audio"].astype(bool), "end_s"] - spans.loc[spans["has_audio"].astype(bool), "start_s"]
    _finish(
        result,
        stage="trim",
        n_total=len(index),
        failures_path=failures_path,
        metrics_path=metrics_path,
        max_failed_share=params.max_failed_share,
        extra={"mean_span_s": round(float(voiced.mean()), 3) if len(voiced) else 0.0},
    )
    return spans


def audio_features_stage(
    index_path: str | Path,
    spans_path: str | Path,
    *,
    wav_dir: str | Path,
    out_path: str | Path,
    failures_path: str | Path,
    metrics_path: str | Path,
    params: AudioParams,
    span: SpanParams = SpanParams(),
    max_failed_share: float = TrimParams.max_failed_share,
    progress: bool = True,
    batch: BatchParams = BatchParams(),
) -> None:
    """Stage ``audio_features``: MFCCs of every span wav -> ``features/audio.h5``.

    T (``params.padded_frames``) is fixed, or the mean number of frames over the training
    split when 0; it is stored in the cache's attributes. ``span`` (the params that made
    the spans, and the sample rate of the span wavs) is recorded in the cache, so a trained
    model knows how to cut a new clip.

    With ``params.perturbations`` (e.g. ``speed0.9``), the features of each perturbed copy
    are stored too, as ``audio_features_perturbed`` [n, P, T, c] and ``speech_frames_perturbed`` [n, P],
    for every clip: which clips train depends on the fold, so the training code takes the
    copies of its training clips only (:func:`mmer.clips.with_perturbed_copies`).

    ``params.normalise='speaker'`` standardises every clip with the statistics of its
    actor's clips (:func:`mmer.audio.speaker_standardise`; no labels are read).
    """
    sample_rate = span.sample_rate
    index = read_index(index_path)
    spans = read_spans(spans_path)
    with_audio = index.merge(spans[spans["has_audio"].astype(bool)][["clip_id"]], on="clip_id")
    feature_params = {k: v for k, v in dataclasses.asdict(params).items() if k not in ("padded_frames", "functionals")}
    wav_dir = Path(wav_dir)
    result = map_clips(
        functools.partial(audio.wav_feature_set, **feature_params),
        [wav_dir / f"{clip_id}.wav" for clip_id in with_audio["clip_id"]],
        keys=list(with_audio["clip_id"]),
        paths=list(with_audio["path"]),
        stage="audio_features",
        # a few ms per clip: a local pool would cost more than it saves, unless perturbing
        jobs=cpu_jobs(0) if params.perturbations or batch.executor != "local" else 1,
        progress=progress,
        executor=batch.executor,
        address=batch.address,
    )
    if params.functionals:
        # about 0.2 s of pitch tracking per clip: worth the local pool, once numba's code is cached
        functionals.warm_up(sample_rate)
        done = with_audio[with_audio["clip_id"].isin(set(result.results))]
        pooled = map_clips(
            functools.partial(functionals.wav_functionals, groups=params.functionals),
            [wav_dir / f"{clip_id}.wav" for clip_id in done["clip_id"]],
            keys=list(done["clip_id"]),
            paths=list(done["path"]),
            stage="audio_features",
            jobs=cpu_jobs(0) if batch.executor == "local" else 1,
            progress=progress,
            executor=batch.executor,
            address=batch.address,
        )
        result.failures.extend(pooled.failures)
        result.results = {c: v for c, v in result.results.items() if c in pooled.results}
    clip_ids = [c for c in with_audio["clip_id"] if c in result.results]
    if params.normalise == "speaker" and clip_ids:
        # each perturbed copy is its own pseudo-speaker (as in Kaldi's speed perturbation)
        actor_of = dict(zip(with_audio["clip_id"], with_audio["actor"]))
        n_sets = 1 + len(params.perturbations)
        flat = audio.speaker_standardise(
            [result.results[c][k] for c in clip_ids for k in range(n_sets)],
            [(actor_of[c], k) for c in clip_ids for k in range(n_sets)],
        )
        result.results.update({c: flat[i * n_sets : (i + 1) * n_sets] for i, c in enumerate(clip_ids)})
    lengths = np.array([len(result.results[c][0]) for c in clip_ids], dtype=np.int32)
    train_ids = set(with_audio.loc[with_audio["split"] == "train", "clip_id"])
    padded_frames = params.padded_frames or audio.mean_frames(
        [n for c, n in zip(clip_ids, lengths) if c in train_ids] or list(lengths)
    )
    outliers = [clip_ids[i] for i in audio.long_clips(lengths)]
    if outliers:
        shown = ", ".join(f"{c} ({int(lengths[clip_ids.index(c)])} frames)" for c in outliers[:10])
        logger.warning(
            "audio_features: %d clips are over %g times the median length and are cut to T=%d frames "
            "(left out of T's mean): %s",
            len(outliers),
            audio.OUTLIER_LENGTH_RATIO,
            padded_frames,
            shown,
        )
    n_columns = audio.n_features(**feature_params)
    if clip_ids:
        mfcc = audio.stack_padded([result.results[c][0] for c in clip_ids], padded_frames)
    else:
        mfcc = np.zeros((0, padded_frames, n_columns), np.float32)
    arrays = {"audio_features": mfcc, "speech_frames": lengths}
    if params.functionals:
        width = len(functionals.functional_names(params.functionals))
        arrays["functionals"] = np.array([pooled.results[c] for c in clip_ids], np.float32).reshape(-1, width)
    if params.perturbations:
        n_copies = len(params.perturbations)
        arrays["audio_features_perturbed"] = np.zeros((len(clip_ids), n_copies, padded_frames, n_columns), np.float32)
        arrays["speech_frames_perturbed"] = np.zeros((len(clip_ids), n_copies), np.int32)
        for row, clip_id in enumerate(clip_ids):
            copies = result.results[clip_id][1:]
            arrays["audio_features_perturbed"][row] = audio.stack_padded(copies, padded_frames)
            arrays["speech_frames_perturbed"][row] = [len(c) for c in copies]
    attrs = {
        **dataclasses.asdict(params),
        "padded_frames": padded_frames,
        "sample_rate": sample_rate,
        "layout": "clip,time,coefficient",
    }
    attrs["span"] = dataclasses.asdict(span)
    write_cache(out_path, arrays, clip_ids, attrs)
    logger.info("audio_features: %d clips, T=%d frames, %d coefficients", len(clip_ids), padded_frames, mfcc.shape[-1])
    _finish(
        result,
        stage="audio_features",
        n_total=len(with_audio),
        failures_path=failures_path,
        metrics_path=metrics_path,
        max_failed_share=max_failed_share,
        extra={"padded_frames": padded_frames, "truncated": int((lengths > padded_frames).sum())},
    )


def face_crops_stage(
    index_path: str | Path,
    spans_path: str | Path,
    *,
    out_path: str | Path,
    failures_path: str | Path,
    metrics_path: str | Path,
    params: FacesParams,
    span: SpanParams = SpanParams(),
    progress: bool = True,
    cache_dir: str | Path | None = DEFAULT_CACHE_DIR,
    batch: BatchParams = BatchParams(),
) -> None:
    """Stage ``face_crops``: MediaPipe face crops of frames inside each span -> ``features/video.h5``.

    Clips seen before (same bytes, span, params and code) come from the per-clip cache.
    ``batch`` says where the clips are mapped (the outputs do not depend on it).
    """
    index = read_index(index_path)
    spans = read_spans(spans_path)
    # trim's probe facts stand for a probe per clip (none in a spans table from before they were recorded)
    facts = [name for name in media.VIDEO_FACTS if name in spans.columns]
    clips = index[index["modality"].isin(VIDEO_MODALITIES)].merge(
        spans[["clip_id", "start_s", "end_s", *facts]], on="clip_id"
    )
    infos = [media.info_from_facts(path, row) for path, row in zip(clips["path"], clips[facts].to_dict("records"))]
    crop_params = {"frames_per_clip": params.frames_per_clip, "size": params.size, "margin": params.margin}
    cache_params = {**crop_params, "model": params.model, "min_confidence": params.min_confidence}
    jobs = cpu_jobs(params.jobs)
    # a worker per core (or a cluster's single-thread workers) decodes with one thread: same frames, less CPU
    threads = 1 if jobs >= cpu_jobs(0) or batch.executor != "local" else 0
    cache = (
        ClipCache.for_stage("face_crops", cache_params, modules=(media, faces), base=cache_dir) if cache_dir else None
    )
    crop = functools.partial(cached_face_crops, cache=cache, threads=threads, **crop_params)
    result = map_clips(
        functools.partial(star_call, crop),
        list(zip(clips["path"], clips["start_s"], clips["end_s"], infos)),
        keys=list(clips["clip_id"]),
        paths=list(clips["path"]),
        stage="face_crops",
        jobs=jobs,
        initializer=faces.init_worker,
        initargs=(params.model, params.min_confidence),
        progress=progress,
        executor=batch.executor,
        address=batch.address,
    )
    clip_ids = [c for c in clips["clip_id"] if c in result.results]
    crops = [result.results[c] for c in clip_ids]
    shape = (params.frames_per_clip, params.size, params.size, 3)
    arrays = {
        "faces": np.stack([c.crops for c in crops]) if crops else np.zeros((0, *shape), np.uint8),
        "face_found": np.stack([c.found for c in crops]) if crops else np.zeros((0, params.frames_per_clip), bool),
        "boxes": np.stack([c.boxes for c in crops]).astype(np.float32)
        if crops
        else np.zeros((0, params.frames_per_clip, 4), np.float32),
    }
    # how many processes ran, or the failure share allowed, does not change the crops
    attrs = {k: v for k, v in dataclasses.asdict(params).items() if k not in ("jobs", "max_failed_share")}
    attrs["layout"] = "clip,frame,y,x,rgb"
    attrs["span"] = dataclasses.asdict(span)  # the span the frames were taken from
    write_cache(out_path, arrays, clip_ids, attrs)
    found_share = float(arrays["face_found"].mean()) if crops else 0.0
    _finish(
        result,
        stage="face_crops",
        n_total=len(clips),
        failures_path=failures_path,
        metrics_path=metrics_path,
        max_failed_share=params.max_failed_share,
        extra={"frames_with_face": round(found_share, 4)},
    )


def samples_stage(
    index_path: str | Path,
    audio_path: str | Path,
    video_path: str | Path,
    *,
    out_path: str | Path,
    n_samples: int = 3,
) -> None:
    """Stage ``samples``: the seed's figure of a few clips (face crops, MFCC image, emotion).

    On an audio-only corpus (an empty video cache) the figure shows the MFCC images alone.
    """
    from mmer.featurefile import read_cache
    from mmer.plots import pick_samples, sample_figure

    index = read_index(index_path).set_index("clip_id")
    audio_cache, video_cache = read_cache(audio_path, ("audio_features",)), read_cache(video_path, ("faces",))
    with_video = bool(video_cache.clip_ids)
    common = (
        [c for c in audio_cache.clip_ids if c in set(video_cache.clip_ids)]
        if with_video
        else list(audio_cache.clip_ids)
    )
    rows = pick_samples([index.at[c, "label"] for c in common], n_samples)
    chosen = [common[r] for r in rows]
    sample_figure(
        video_cache.select(chosen)["faces"] if with_video else None,
        audio_cache.select(chosen)["audio_features"],
        [f"{c}: {index.at[c, 'emotion']}" for c in chosen],
        out_path,
        hop_length=int(audio_cache.attrs.get("hop_length", AudioParams.hop_length)),
        sample_rate=int(audio_cache.attrs.get("sample_rate", SpanParams.sample_rate)),
    )

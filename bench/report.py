"""``metrics/bench.json`` (written by :mod:`bench.run`) as Markdown tables.

Run as ``python -m bench.report [metrics/bench.json]``; ``make bench`` prints the same
tables at the end of its run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmer.errors import ConfigError

PREPROCESS_ROWS = (
    ("trim", "trim"),
    ("audio_features", "audio_features"),
    ("face_crops", "face_crops"),
    ("**trim + audio_features + face_crops**", "trim_audio_faces"),
    ("trim before issue 15 (a probe, then the audio decode: two ffmpeg runs per clip)", "before_trim"),
    ("face crops before issue 15 (TensorFlow loaded per worker, ffmpeg's decoder threads)", "before_face_crops"),
    ("trim + audio_features + face crops before issue 15", "trim_audio_before"),
    ("naive face crops (decode and detect every frame)", "naive_face_crops"),
    ("trim + audio_features + naive face crops", "trim_audio_naive"),
)
PREPROCESS_STAGES = tuple(key for _, key in PREPROCESS_ROWS)

# every figure the tables show: a complete bench.json has each as a positive number
FIGURE_KEYS = (
    *(
        f"preprocess.stages.{stage}.{field}"
        for stage in PREPROCESS_STAGES
        for field in ("clips_per_s", "ms_per_clip", "peak_pss_mb", "peak_rss_mb")
    ),
    "preprocess.face_crops_speedup_vs_naive",
    "preprocess.pipeline_speedup_vs_naive",
    "preprocess.face_crops_speedup_vs_before",
    "preprocess.pipeline_speedup_vs_before",
    "preprocess.seconds_for_1440_clips",
    "train.seconds_per_epoch",
    "train.first_epoch_s",
    "train.n_train",
    "train.peak_pss_mb",
    "predict.warm_s",
    "predict.cold_s",
    "predict.clip_duration_s",
    *(
        f"serve.{load}.{field}"
        for load in ("sequential", "concurrent")
        for field in ("p50_s", "p95_s", "requests_per_s")
    ),
    "serve.peak_pss_mb",
    "serve.peak_rss_mb",
    "dvc.noop_s",
    "dvc.train_change_s",
    "dvc.corpus_clips",
    "incremental.full_s",
    "incremental.added_s",
    "incremental.added_to_full_ratio",
    "incremental.base_clips",
    "incremental.added_clips",
    "corpus.clips",
    "machine.cores",
    "seconds",
)


def figure(report: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key such as ``preprocess.stages.trim.clips_per_s`` (None when absent)."""
    value: Any = report
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _header(report: Mapping[str, Any]) -> list[str]:
    machine, corpus, settings = report.get("machine", {}), report.get("corpus", {}), report.get("settings", {})
    load = "/".join(f"{x:.2f}" for x in machine.get("load_average_start", [])) or "?"
    code = report.get("code", {})
    commit = (code.get("commit") or "?")[:10] + (" (with local changes)" if code.get("dirty") else "")
    lines = [
        f"mmer bench, {report.get('started', '?')}: {machine.get('cores', '?')} cores ({machine.get('cpu_model', '?')}), "
        f"{_num(machine.get('memory_total_mb'), 0)} MB, load average {load} at start; mmer {code.get('version', '?')} at {commit}.",
        f"Corpus: {corpus.get('clips', '?')} generated clips at {corpus.get('size', '?')}; each figure the median of "
        f"{settings.get('repeats', '?')} runs unless said otherwise; whole run {_num(report.get('seconds'), 0)} s."
        + (" Quick mode: the figures only show that the bench works." if settings.get("quick") else ""),
    ]
    return lines


def _preprocess(section: Mapping[str, Any]) -> list[str]:
    stages = section.get("stages", {})
    lines = [
        f"Preprocessing, {section.get('jobs', '?')} workers, no per-clip cache:",
        "",
        "| stage | clips/s | ms per clip | peak memory, PSS (MB) | peak memory, RSS sum (MB) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for label, key in PREPROCESS_ROWS:
        stage = stages.get(key, {})
        lines.append(
            f"| {label} | {_num(stage.get('clips_per_s'))} | {_num(stage.get('ms_per_clip'), 0)} "
            f"| {_num(stage.get('peak_pss_mb'), 0)} | {_num(stage.get('peak_rss_mb'), 0)} |"
        )
    target = section.get("target", {})
    together = stages.get("trim_audio_faces", {})
    met = "met" if section.get("meets_target") else "NOT met"
    lines += [
        "",
        f"face_crops is {_num(section.get('face_crops_speedup_vs_naive'), 1)}x as fast as decoding and detecting every frame; "
        f"trim + audio_features + face_crops {_num(section.get('pipeline_speedup_vs_naive'), 1)}x as fast as the same with it.",
        f"Against mmer's face crops before issue 15, timed in the same runs: face_crops "
        f"{_num(section.get('face_crops_speedup_vs_before'))}x, trim + audio_features + face_crops "
        f"{_num(section.get('pipeline_speedup_vs_before'))}x as fast.",
        f"{target.get('clips', 1440)} clips: {_num(section.get('seconds_for_1440_clips'), 0)} s"
        f"{' (extrapolated from ' + str(together.get('clips', '?')) + ' clips)' if section.get('extrapolated') else ''}; "
        f"target under {_num(target.get('seconds'), 0)} s (>= {_num(target.get('clips_per_s'), 1)} clips/s) in under "
        f"{_num(target.get('peak_pss_mb'), 0)} MB (PSS): {met}.",
        "Peak memory is of the stage's process and its workers: PSS splits shared pages (libraries, copy-on-write memory) "
        "between the processes that share them; the RSS sum counts them once per process.",
    ]
    return lines


def _others(report: Mapping[str, Any]) -> list[str]:
    rows = []
    train = report.get("train") or {}
    if train:
        rows.append(
            (
                "training, default model",
                f"{_num(train.get('seconds_per_epoch'))} s per epoch",
                f"{_num(train.get('n_train'))} training clips, batch {_num(train.get('batch_size'))}, {_num(train.get('threads'))} threads; "
                f"median of {_num(train.get('repeats'))} epochs after the first (tracing) one, which took {_num(train.get('first_epoch_s'))} s; "
                f"peak {_num(train.get('peak_pss_mb'), 0)} MB (PSS)",
            )
        )
    predict = report.get("predict") or {}
    if predict:
        clip = f"{_num(predict.get('clip_duration_s'))} s {predict.get('frame_size', '?')} clip"
        rows.append(("`Predictor.predict`, model loaded", f"{_num(predict.get('warm_s'))} s per clip", clip))
        rows.append(
            (
                "`mmer predict clip.mp4`, new process",
                f"{_num(predict.get('cold_s'))} s",
                f"{clip}; imports and model load included",
            )
        )
    serve = report.get("serve") or {}
    if serve:
        clip = f"{_num(serve.get('clip_duration_s'))} s {serve.get('frame_size', '?')} clip"
        for load in ("sequential", "concurrent"):
            figures = serve.get(load) or {}
            clients = (
                "one client at a time"
                if load == "sequential"
                else f"{_num(figures.get('concurrency'))} clients at once"
            )
            rows.append(
                (
                    f"`mmer serve`, POST /predict, {clients}",
                    f"p50 {_num(figures.get('p50_s'))} s, p95 {_num(figures.get('p95_s'))} s; "
                    f"{_num(figures.get('requests_per_s'))} requests/s",
                    f"{_num(figures.get('requests'))} requests of a {clip}",
                )
            )
        rows.append(
            (
                "`mmer serve` process memory",
                f"{_num(serve.get('peak_pss_mb'), 0)} MB (PSS) under load",
                f"RSS {_num(serve.get('peak_rss_mb'), 0)} MB; {_num(serve.get('warm_pss_mb'), 0)} MB PSS after the first request; "
                f"start-up until /health answers {_num(serve.get('startup_s'))} s",
            )
        )
    shipped = report.get("predict_shipped") or {}
    if shipped:
        rows.append(
            (
                "`mmer predict clip` with the shipped voice model",
                f"warm {_num(shipped.get('warm_s'))} s, cold {_num(shipped.get('cold_s'))} s",
                f"targets: warm {_num(shipped.get('warm_target_s'))} s, cold {_num(shipped.get('cold_target_s'))} s",
            )
        )
    encoders = report.get("face_encoder") or {}
    for name in ("vgg", "fer2013_frozen", "fer2013_all"):
        if name in encoders:
            times = encoders[name]
            rows.append(
                (
                    f"face encoder `{name}`, video-only model",
                    f"{_num(times.get('train_ms_per_clip'))} ms per clip training, {_num(times.get('predict_ms_per_clip'))} ms warm predict",
                    f"{_num(encoders.get('clips'))} clips of {_num(encoders.get('frames_per_clip'))} frames",
                )
            )
    if "fer2013_zero_shot" in encoders:
        zero_shot = encoders["fer2013_zero_shot"]["predict_ms_per_clip"]
        rows.append(
            ("`face_expression` (zero-shot FER2013)", f"{_num(zero_shot)} ms per clip", "added to `mmer predict`")
        )
    dvc = report.get("dvc") or {}
    if dvc:
        rows.append(
            (
                "`dvc repro`, nothing changed",
                f"{_num(dvc.get('noop_s'))} s",
                f"{_num(dvc.get('corpus_clips'))}-clip repo",
            )
        )
        rows.append(
            (
                "`dvc repro` after a `train.*` change",
                f"{_num(dvc.get('train_change_s'))} s",
                f"reran {', '.join(dvc.get('train_change_stages', [])) or '?'}; no preprocessing stage; train.epochs {_num(dvc.get('train_epochs'))}",
            )
        )
    incremental = report.get("incremental") or {}
    if incremental:
        rows.append(
            (
                f"{_num(incremental.get('added_clips'))} clips added to {_num(incremental.get('base_clips'))} processed (per-clip cache)",
                f"{_num(incremental.get('added_s'))} s",
                f"full run {_num(incremental.get('full_s'))} s (ratio {_num(incremental.get('added_to_full_ratio'), 3)}); "
                f"{_num(incremental.get('cached_entries_reused'))} cached results reused, none recomputed",
            )
        )
    if not rows:
        return []
    lines = ["| measure | figure | conditions |", "| --- | ---: | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """The bench figures as Markdown: a header line, the preprocessing table, the other figures.

    Parts the run skipped are left out.
    """
    lines = _header(report)
    if report.get("preprocess"):
        lines += ["", *_preprocess(report["preprocess"])]
    others = _others(report)
    if others:
        lines += ["", *others]
    return "\n".join(lines) + "\n"


def missing_figures(report: Mapping[str, Any]) -> list[str]:
    """The keys of :data:`FIGURE_KEYS` that are absent or not a positive number (parts the
    run was told to skip, ``settings.skipped``, are not expected)."""
    skipped = set(figure(report, "settings.skipped") or ())
    bad = []
    for key in FIGURE_KEYS:
        if key.split(".")[0] in skipped:
            continue
        value = figure(report, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            bad.append(key)
    return bad


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m bench.report``."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.report", description="Print metrics/bench.json as Markdown tables."
    )
    parser.add_argument("bench_json", nargs="?", default="metrics/bench.json")
    args = parser.parse_args(argv)
    path = Path(args.bench_json)
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        print(f"{path}: not found (run make bench first)", file=sys.stderr)
        return 1
    except ValueError as err:
        raise ConfigError(f"{path}: not valid JSON: {err}") from err
    sys.stdout.write(render_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

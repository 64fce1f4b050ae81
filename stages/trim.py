"""Stage trim: find each clip's speech span; write the span audio (16 kHz mono wav) and spans.csv."""

import argparse

from mmer.config import BatchParams, SpanParams, TrimParams, load_section
from mmer.logs import setup_logging
from mmer.preprocess import trim_stage

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", required=True)
    parser.add_argument("--wav-dir", required=True)
    parser.add_argument("--spans", required=True)
    parser.add_argument("--failures", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    setup_logging()
    trim_stage(
        args.index,
        wav_dir=args.wav_dir,
        spans_path=args.spans,
        failures_path=args.failures,
        metrics_path=args.metrics,
        span=load_section(SpanParams, "span"),
        params=load_section(TrimParams, "trim"),
        batch=load_section(BatchParams, "batch"),
    )

"""Stage audio_features: standardised, pre-padded MFCCs of every span -> features/audio.h5."""

import argparse

from mmer.config import AudioParams, BatchParams, SpanParams, TrimParams, load_section
from mmer.logs import setup_logging
from mmer.preprocess import audio_features_stage

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", required=True)
    parser.add_argument("--spans", required=True)
    parser.add_argument("--wav-dir", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--failures", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    setup_logging()
    audio_features_stage(
        args.index,
        args.spans,
        wav_dir=args.wav_dir,
        out_path=args.out,
        failures_path=args.failures,
        metrics_path=args.metrics,
        params=load_section(AudioParams, "audio"),
        span=load_section(SpanParams, "span"),
        max_failed_share=load_section(TrimParams, "trim").max_failed_share,
        batch=load_section(BatchParams, "batch"),
    )

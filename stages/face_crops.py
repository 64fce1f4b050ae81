"""Stage face_crops: MediaPipe face crops of frames evenly spaced in each span -> features/video.h5."""

import argparse

from mmer.config import BatchParams, FacesParams, SpanParams, load_section
from mmer.logs import setup_logging
from mmer.preprocess import face_crops_stage

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", required=True)
    parser.add_argument("--spans", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--failures", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args()
    setup_logging()
    face_crops_stage(
        args.index,
        args.spans,
        out_path=args.out,
        failures_path=args.failures,
        metrics_path=args.metrics,
        params=load_section(FacesParams, "faces"),
        span=load_section(SpanParams, "span"),
        batch=load_section(BatchParams, "batch"),
    )

"""Stage samples: the sample figure (6 face crops, MFCC image and emotion of 3 clips) for dvc plots."""

import argparse

from mmer.logs import setup_logging
from mmer.preprocess import samples_stage

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", required=True)
    parser.add_argument("--audio", required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup_logging()
    samples_stage(args.index, args.audio, args.video, out_path=args.out)

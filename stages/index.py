"""Stage index: corpus folder (+ unpacked archives) -> data/index.csv (corpus, labels, speakers, split, fold)."""

import argparse
import dataclasses

from mmer.config import DataParams, IndexParams, load_section
from mmer.corpus import build_index, write_index
from mmer.logs import setup_logging

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--unpacked", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup_logging()
    data = load_section(DataParams, "data")
    params = load_section(IndexParams, "index")
    index = build_index(
        [data.raw, args.unpacked], corpora=data.corpora, emotion_map=data.emotion_map, **dataclasses.asdict(params)
    )
    write_index(index, args.out)

"""Stage unpack: unpack the RAVDESS zips found in the corpus folder (nothing to do without zips)."""

import argparse

from mmer.archives import unpack_archives
from mmer.config import DataParams, load_section
from mmer.logs import setup_logging

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    setup_logging()
    unpack_archives(load_section(DataParams, "data").raw, args.out)

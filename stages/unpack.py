"""Stage unpack: list the corpus folder's files (data/interim/raw_files.csv) and unpack the RAVDESS zips in it."""

import argparse

from mmer.archives import unpack_archives
from mmer.config import DataParams, load_section
from mmer.files import file_listing, write_table
from mmer.logs import setup_logging

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    parser.add_argument("--files", required=True)
    args = parser.parse_args()
    setup_logging()
    raw = load_section(DataParams, "data").raw
    write_table(file_listing(raw), args.files)
    unpack_archives(raw, args.out)

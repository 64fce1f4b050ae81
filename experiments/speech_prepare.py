"""Index and trim the real RAVDESS speech folder once, for the experiments on real speech.

Writes, under --work (default .cache/speech, ignored by git): index_all8.csv,
index_merged7.csv (6 speaker folds of 3 actors), the span wavs and spans.csv. The trim
is mmer.pipeline.trim_stage with the params.yaml defaults (the per-clip cache makes a
second run, or a later `dvc repro` on the same files, nearly free).

    nice python experiments/speech_prepare.py --raw ../shared/data/ravdess-speech-dev
"""

import argparse
from pathlib import Path

from mmer.config import TrimParams, load_section
from mmer.dataset import build_index, write_index
from mmer.logs import setup_logging
from mmer.pipeline import trim_stage

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--raw", default="../shared/data/ravdess-speech-dev")
    parser.add_argument("--work", default=".cache/speech")
    args = parser.parse_args()
    setup_logging()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    # the fixed split must name actors of this corpus: 16-17 validate, 18 tests
    split = {"val_actors": (16, 17), "test_actors": (18,), "n_folds": 6, "modalities": ("audio",)}
    for classes in ("all8", "merged7"):
        write_index(build_index(args.raw, classes=classes, **split), work / f"index_{classes}.csv")
    trim_stage(
        work / "index_all8.csv",
        wav_dir=work / "audio",
        spans_path=work / "spans.csv",
        failures_path=work / "failures_trim.csv",
        metrics_path=work / "trim.json",
        params=load_section(TrimParams, "trim"),
    )

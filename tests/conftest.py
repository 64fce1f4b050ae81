"""Shared fixtures: a seeded rng, the optional real data under ../shared/data, quiet logs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GLOG_minloglevel", "2")

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Compile (or load) numba's pitch tracker once, before the tests (mmer.functionals.warm_up).

    In the main process only, before pytest-xdist starts its workers: processes compiling the
    same cached function at once can read each other's half-written cache files and crash.
    """
    import sys

    if not hasattr(config, "workerinput") and "tensorflow" not in sys.modules:
        from mmer.functionals import warm_up

        warm_up()


SHARED_DATA = ROOT.parent / "shared" / "data"
REAL_SPEECH = SHARED_DATA / "ravdess-speech-dev"
REAL_AV = SHARED_DATA / "ravdess-av-samples"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def real_speech_dir() -> Path:
    if not REAL_SPEECH.is_dir():
        pytest.skip(f"real RAVDESS speech not present at {REAL_SPEECH}")
    return REAL_SPEECH


@pytest.fixture
def real_av_dir() -> Path:
    if not REAL_AV.is_dir():
        pytest.skip(f"genuine RAVDESS videos not present at {REAL_AV}")
    return REAL_AV

"""``mmer synth``: write the RAVDESS-shaped sample corpus.

Examples::

    mmer synth --out data/raw --preset demo            # 24 actors x 16 clips, 1280x720
    mmer synth --out /tmp/tiny --preset tiny --jobs 1  # 6 actors x 8 clips, 320x180
    mmer synth --out data/raw --actors 1-4,23 --clips-per-actor 8 --size 640x360 --seed 7
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass

from mmer.errors import ConfigError

logger = logging.getLogger(__name__)

# preset -> defaults (explicit options win)
PRESETS: dict[str, dict] = {
    "full": {"actors": "1-24", "clips_per_actor": None, "size": "1280x720"},
    "demo": {"actors": "1-24", "clips_per_actor": 16, "size": "1280x720"},
    # actors 19 and 24 fall in the default validation (18-22) and test (23-24) speakers
    "tiny": {"actors": "1-4,19,24", "clips_per_actor": 8, "size": "320x180"},
}
DEFAULT_PRESET = "full"


@dataclass(frozen=True)
class SynthOptions:
    """The resolved options of one ``mmer synth`` run."""

    out: str
    seed: int
    actors: tuple[int, ...]
    clips_per_actor: int | None
    width: int
    height: int
    jobs: int
    progress: bool


def parse_actors(text: str) -> tuple[int, ...]:
    """Actor numbers from ``1-24``, ``1,2,5`` or ``1-4,19,24``.

    Raises
    ------
    ConfigError
        On bad syntax, a reversed range or a number outside 1-99.
    """
    from mmer.synth.corpus import MAX_ACTOR

    actors: set[int] = set()
    parts = [part.strip() for part in str(text).split(",")]
    for part in parts:
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not match:
            raise ConfigError(f"--actors {text!r}: {part!r} is not a number or a range like 1-24")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first:
            raise ConfigError(f"--actors {text!r}: range {part!r} runs backwards")
        if first < 1 or last > MAX_ACTOR:
            raise ConfigError(
                f"--actors {text!r}: actors are numbered 1-{MAX_ACTOR} (RAVDESS names have two digits), not {part!r}"
            )
        actors.update(range(first, last + 1))
    return tuple(sorted(actors))


def parse_size(text: str) -> tuple[int, int]:
    """``(width, height)`` from ``WxH`` such as ``1280x720``.

    Raises
    ------
    ConfigError
        When the text is not ``WxH`` or the size is odd, too small or too large.
    """
    from mmer.synth.corpus import check_size

    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not match:
        raise ConfigError(f"--size {text!r}: expected WIDTHxHEIGHT such as 1280x720")
    width, height = int(match.group(1)), int(match.group(2))
    check_size(width, height)
    return width, height


def resolve_options(args: argparse.Namespace) -> SynthOptions:
    """Apply the preset's defaults to the options not given, then check everything."""
    from mmer.config import cpu_jobs

    preset = PRESETS[args.preset or DEFAULT_PRESET]
    actors = parse_actors(args.actors if args.actors is not None else preset["actors"])
    clips = args.clips_per_actor if args.clips_per_actor is not None else preset["clips_per_actor"]
    if clips is not None and not 1 <= clips <= 60:
        raise ConfigError(f"--clips-per-actor must be in 1-60, not {clips}")
    width, height = parse_size(args.size if args.size is not None else preset["size"])
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, not {args.seed}")
    if args.jobs < 0:
        raise ConfigError(f"--jobs must be >= 0 (0: one per core), not {args.jobs}")
    return SynthOptions(
        out=args.out,
        seed=args.seed,
        actors=actors,
        clips_per_actor=clips,
        width=width,
        height=height,
        jobs=cpu_jobs(args.jobs),
        progress=args.progress,
    )


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``mmer synth``."""
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="corpus folder (gets Actor_XX/ folders); clips already there are kept",
    )
    parser.add_argument("--seed", type=int, default=0, help="corpus seed: the same seed gives the same files")
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="defaults for --actors/--clips-per-actor/--size: full = 24 actors x 60 clips at 1280x720 (used when no "
        "preset is given), demo = 24 x 16 at 1280x720, tiny = actors 1-4,19,24 x 8 at 320x180",
    )
    parser.add_argument(
        "--actors",
        default=None,
        metavar="LIST",
        help="actors to make, e.g. 1-24 or 1,2,5 (odd: male) [from the preset]",
    )
    parser.add_argument(
        "--clips-per-actor",
        type=int,
        default=None,
        metavar="N",
        help="a balanced selection of N of the 60 clips per actor [from the preset]",
    )
    parser.add_argument(
        "--size", default=None, metavar="WxH", help="frame size, e.g. 1280x720 or 640x360 [from the preset]"
    )
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (0: one per core)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show a progress bar")


def run(args: argparse.Namespace) -> int:
    """Run ``mmer synth``; returns the exit code."""
    from mmer.synth.corpus import synth_corpus

    options = resolve_options(args)
    summary = synth_corpus(
        options.out,
        seed=options.seed,
        actors=options.actors,
        clips_per_actor=options.clips_per_actor,
        width=options.width,
        height=options.height,
        jobs=options.jobs,
        progress=options.progress,
    )
    if summary.written == 0:
        logger.info("synth: all %d clips already in %s", summary.planned, summary.out_dir)
    return 0

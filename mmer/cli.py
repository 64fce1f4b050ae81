"""The ``mmer`` command: one subcommand per module, imported only when used.

Each module named in :data:`COMMANDS` provides ``configure_parser(parser)`` and
``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from mmer import __version__
from mmer.errors import MmerError
from mmer.logs import setup_logging

logger = logging.getLogger("mmer")

# subcommand -> (module, one-line help)
COMMANDS = {
    "synth": ("mmer.synth.cli", "write a RAVDESS-shaped sample corpus (faces + synthetic emotional speech)"),
    "predict": ("mmer.predict_cli", "recognise the emotion of new clips"),
    "serve": ("mmer.serve", "serve a warm model over HTTP: a JSON API and a web page (upload or record from camera)"),
    "preset": ("mmer.presets", "print a named params preset as dvc exp run -S arguments"),
    "summary": ("mmer.summary", "what the pipeline trained and how it scored, as a short table"),
    "report": ("mmer.report", "Markdown tables of the cross-validated experiments, from dvc exp show --json"),
    "release": ("mmer.release", "copy the trained release model into the package (mmer/pretrained/) with its record"),
}


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmer", description="Audio-visual emotion recognition (RAVDESS-shaped data).")
    parser.add_argument("--version", action="version", version=f"mmer {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-v: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        if name == load:
            importlib.import_module(module).configure_parser(sub_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mmer`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser(load=command)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    setup_logging(-1 if args.quiet else args.verbose)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except MmerError as err:
        logger.error("%s", err)
        return 1
    except KeyboardInterrupt:
        logger.error("interrupted")
        return 130

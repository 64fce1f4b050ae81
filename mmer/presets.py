"""Named params presets: ``presets/<name>.yaml`` -> ``-S key=value`` arguments for ``dvc exp run``.

A preset is a flat YAML mapping of dotted params keys to values::

    index.modalities: [audio]
    model.audio_frontend: conv1d

``mmer preset NAME [NAME ...]`` prints one ``-S key=value`` per line (later presets win),
values in compact JSON so they hold no spaces; pipe them into DVC::

    mmer preset ravdess-speech speech-best --set cv.enabled=true | xargs dvc exp run --queue -n speech-best

(``--set`` overrides are merged into the presets, one ``-S`` per key: ``dvc exp run`` takes
the last ``-S`` of a key, so an override appended after the preset's own would lose.) A relative ``data.raw`` is printed absolute,
since a queued experiment runs in a temporary copy of the repository.
params.yaml itself is not touched: an experiment records exactly what it changed.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from mmer.config import read_params
from mmer.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path("presets")


def load_preset(name: str, *, directory: str | Path = DEFAULT_DIR) -> dict[str, Any]:
    """The dotted-key mapping of preset ``name`` (``<directory>/<name>.yaml``).

    Raises
    ------
    ConfigError
        No such preset, not a flat mapping of ``section.key`` names, or not valid YAML.
    """
    path = Path(directory) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(directory).glob("*.yaml"))
        raise ConfigError(f"{path}: no preset {name!r}; known presets: {known}")
    try:
        preset = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(preset, dict) or not all(isinstance(k, str) and k.count(".") == 1 for k in preset):
        raise ConfigError(f"{path}: a preset is a mapping of section.key names to values")
    return preset


def check_preset(preset: Mapping[str, Any], params: Mapping[str, Any], *, name: str = "preset") -> None:
    """Every key of ``preset`` must exist in ``params`` (a typo must not pass silently)."""
    unknown = [key for key in preset if key.split(".")[1] not in (params.get(key.split(".")[0]) or {})]
    if unknown:
        raise ConfigError(f"{name}: keys {unknown} are not in params.yaml")


def dvc_set_args(presets: Sequence[Mapping[str, Any]]) -> list[str]:
    """``['-S', 'key=value', ...]`` of the merged presets (later ones win), values as compact JSON."""
    merged: dict[str, Any] = {}
    for preset in presets:
        merged.update(preset)
    args = []
    for key, value in merged.items():
        text = value if isinstance(value, str) and " " not in value else json.dumps(value, separators=(",", ":"))
        args += ["-S", f"{key}={text}"]
    return args


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="presets to merge, later ones win (presets/<name>.yaml)")
    parser.add_argument("--dir", default=str(DEFAULT_DIR), help="folder of the presets")
    parser.add_argument("--params", default="params.yaml", help="params file the keys must exist in")
    parser.add_argument("--list", action="store_true", help="list the presets and their first comment line")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="overrides after the presets (YAML values), e.g. train.ensemble=1 cv.enabled=true",
    )


def run(args: argparse.Namespace) -> int:
    if args.list or not args.names:
        for path in sorted(Path(args.dir).glob("*.yaml")):
            first = next(
                (line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#")), ""
            )
            print(f"{path.stem:20s} {first}")
        return 0
    params = read_params(args.params)
    presets = []
    for name in args.names:
        preset = load_preset(name, directory=args.dir)
        check_preset(preset, params, name=name)
        raw = preset.get("data.raw")
        if isinstance(raw, str) and not Path(raw).is_absolute():
            # a queued experiment (dvc exp run --queue) runs in a temporary copy of the
            # repository, where a relative corpus path no longer reaches the corpus
            preset["data.raw"] = str(Path(raw).resolve())
        presets.append(preset)
    if args.set:
        overrides = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.set)}
        check_preset(overrides, params, name="--set")
        presets.append(overrides)
    arguments = dvc_set_args(presets)
    for flag, value in zip(arguments[::2], arguments[1::2]):
        print(flag, value)
    return 0

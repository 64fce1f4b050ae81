import dataclasses

import pytest
import yaml

from mmer.config import (
    SECTIONS,
    SPAN_KEYS,
    AudioParams,
    FacesParams,
    IndexParams,
    SpanParams,
    load_section,
    read_params,
)
from mmer.errors import ConfigError

from conftest import ROOT

# params.yaml values that differ from the dataclass defaults on purpose: none today. A
# difference would go here with its reason, e.g. {("train", "epochs"): "the demo's budget"}.
INTENDED_DIFFERENCES: dict[tuple[str, str], str] = {}


def test_repo_params_load():
    params = read_params(ROOT / "params.yaml")
    for section, cls in SECTIONS.items():
        load_section(cls, section, ROOT / "params.yaml")
    assert params["audio"]["n_mfcc"] == 24
    assert params["faces"]["frames_per_clip"] == 6 and params["faces"]["size"] == 64


def test_params_yaml_equals_the_dataclass_defaults():
    """The dataclasses are the one source of defaults: params.yaml repeats them, key for key."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert sorted(params) == sorted(SECTIONS), "params.yaml sections and mmer.config.SECTIONS differ"
    differences = {}
    for section, cls in SECTIONS.items():
        defaults = dataclasses.asdict(cls())
        given = dataclasses.asdict(load_section(cls, section, ROOT / "params.yaml"))
        assert sorted(params[section]) == sorted(defaults), (
            f"{section}: params.yaml keys {sorted(params[section])} != {sorted(defaults)}"
        )
        differences.update({(section, k): (given[k], defaults[k]) for k in defaults if given[k] != defaults[k]})
    assert set(differences) == set(INTENDED_DIFFERENCES), f"params.yaml differs from the defaults at {differences}"


def test_defaults_test_would_catch_a_drift(tmp_path):
    """Known answer: a params file with one changed value is seen as different."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["audio"]["n_mfcc"] = 13
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert load_section(AudioParams, "audio", path) != AudioParams()


def test_one_list_of_span_params():
    assert SPAN_KEYS == tuple(f.name for f in dataclasses.fields(SpanParams))
    assert {"sample_rate", "threshold_db", "pad_s"} <= set(SPAN_KEYS) and "jobs" not in SPAN_KEYS


def test_unknown_key_and_bad_values(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("audio:\n  n_mfc: 24\n")
    with pytest.raises(ConfigError, match="unknown keys.*n_mfc"):
        load_section(AudioParams, "audio", path)
    path.write_text("index:\n  val_actors: [1]\n  test_actors: [1]\n")
    with pytest.raises(ConfigError, match="share speakers"):
        load_section(IndexParams, "index", path)
    path.write_text("index:\n  modalities: [av, both]\n")
    with pytest.raises(ConfigError, match="index.modalities"):
        load_section(IndexParams, "index", path)
    path.write_text("faces:\n  model: huge\n")
    with pytest.raises(ConfigError, match="faces.model must be one of"):
        load_section(FacesParams, "faces", path)
    path.write_text("span:\n  threshold_db: 3\n")
    with pytest.raises(ConfigError, match="span.threshold_db"):
        load_section(SpanParams, "span", path)
    path.write_text(": : :")
    with pytest.raises(ConfigError, match="YAML"):
        read_params(path)
    with pytest.raises(ConfigError, match="not found"):
        read_params(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "section, key, value, expected",
    [
        ("audio", "n_mfcc", "abc", "params audio.n_mfcc: expected int, got 'abc' (str)"),
        ("train", "deterministic", 1, "params train.deterministic: expected bool, got 1 (int)"),
        ("span", "pad_s", "0.1", "params span.pad_s: expected float, got '0.1' (str)"),
        (
            "audio",
            "perturbations",
            "speed0.9",
            "params audio.perturbations: expected a list of str, got 'speed0.9' (str)",
        ),
        ("index", "n_folds", 2.5, "params index.n_folds: expected int, got 2.5 (float)"),
    ],
)
def test_a_wrong_type_names_section_key_type_and_value(tmp_path, section, key, value, expected):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({section: {key: value}}))
    with pytest.raises(ConfigError) as err:
        load_section(SECTIONS[section], section, path)
    assert str(err.value) == expected


def test_an_int_is_taken_for_a_float(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("span:\n  threshold_db: -30\n")
    assert load_section(SpanParams, "span", path).threshold_db == -30.0


def test_an_unknown_section_is_warned_about(tmp_path, caplog):
    path = tmp_path / "params.yaml"
    path.write_text("audoi:\n  n_mfcc: 13\naudio:\n  n_mfcc: 13\n")
    with caplog.at_level("WARNING", logger="mmer.config"):
        read_params(path)
    assert "unknown params sections ['audoi']" in caplog.text


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"executor": "ray"}, r"batch.executor must be one of \['local', 'dask'\], not 'ray'"),
        ({"address": "tcp://head:8786"}, "batch.address .* is only read with batch.executor: dask"),
    ],
)
def test_batch_params_are_checked(tmp_path, values, match):
    from mmer.config import BatchParams

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"batch": values}))
    with pytest.raises(ConfigError, match=match):
        load_section(BatchParams, "batch", path)
    assert load_section(BatchParams, "batch", ROOT / "params.yaml") == BatchParams()  # the default: local

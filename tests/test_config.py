import pytest
from conftest import ROOT

from mmer.config import AudioParams, FacesParams, IndexParams, load_section, read_params
from mmer.errors import ConfigError


def test_repo_params_load():
    params = read_params(ROOT / "params.yaml")
    for cls, section in [(IndexParams, "index"), (AudioParams, "audio"), (FacesParams, "faces")]:
        load_section(cls, section, ROOT / "params.yaml")
    assert params["audio"]["n_mfcc"] == 24
    assert params["faces"]["n_frames"] == 6 and params["faces"]["size"] == 64


def test_unknown_key_and_bad_values(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("audio:\n  n_mfc: 24\n")
    with pytest.raises(ConfigError, match="unknown keys.*n_mfc"):
        load_section(AudioParams, "audio", path)
    path.write_text("index:\n  val_actors: [1]\n  test_actors: [1]\n")
    with pytest.raises(ConfigError, match="share speakers"):
        load_section(IndexParams, "index", path)
    path.write_text("faces:\n  model: huge\n")
    with pytest.raises(ConfigError, match="short or full"):
        load_section(FacesParams, "faces", path)
    path.write_text(": : :")
    with pytest.raises(ConfigError, match="YAML"):
        read_params(path)
    with pytest.raises(ConfigError, match="not found"):
        read_params(tmp_path / "nope.yaml")

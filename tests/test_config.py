"""Config: YAML into frozen dataclasses, unknown keys listed, overrides, written into runs."""

import dataclasses
import re

import pytest
import yaml

from cxrsal.config import Config, load_config, to_dict, write_config
from cxrsal.errors import ConfigError


def test_defaults_and_frozen():
    cfg = load_config()
    assert cfg == Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.data.size = 3


def test_file_options_and_set_precedence(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  dataset: siim\n  size: 128\n  seed: 4\npipeline:\n  batch_size: 8\n")
    cfg = load_config(path, ["data.seed=9", "pipeline.flip=true", "data.split=[0.5, 0.25, 0.25]"],
                      options={"data.size": 64, "data.root": None})
    assert cfg.data.dataset == "siim" and cfg.data.size == 64 and cfg.data.seed == 9
    assert cfg.pipeline.batch_size == 8 and cfg.pipeline.flip is True
    assert cfg.data.split == (0.5, 0.25, 0.25)


@pytest.mark.parametrize("override, message", [
    ("data.sise=3", "unknown key 'data.sise'; valid keys in section 'data': dataset, root, size"),
    ("nothing.x=1", "unknown key 'nothing'; valid keys in the top level: data, pipeline, model, train, baseline, saliency"),
    ("data.size=abc", "--set data.size=abc: data.size must be an integer from 8 to 8192, got 'abc'"),
    ("data.size=true", "data.size must be an integer from 8 to 8192, got True"),
    ("data.split=[1, 2]", "data.split must be a list of 3 values, each a number >= 0 (summing to more than 0), or "
                          "null, got [1, 2]"),
    ("data.size", "expected section.key=value"),
    ("data.size.x=1", "--set data.size.x=1: data.size must be an integer from 8 to 8192, got {'x': 1}"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(overrides=[override])


def test_unknown_key_in_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  datset: rsna\n")
    with pytest.raises(ConfigError, match=f"{path}: unknown key 'data.datset'"):
        load_config(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "missing.yaml")


def test_round_trip_through_run_dir(tmp_path):
    cfg = load_config(overrides=["data.split=[0.7, 0.2, 0.1]", "pipeline.balanced=true"])
    path = write_config(cfg, tmp_path)
    assert yaml.safe_load(path.read_text()) == to_dict(cfg)
    assert load_config(path) == cfg


def test_every_shipped_config_loads():
    from pathlib import Path

    from cxrsal.data.items import DATASETS
    from cxrsal.models import BACKBONES, HEADS

    from cxrsal.study import load_study
    from cxrsal.study.graph import build_jobs

    configs = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))
    studies = [p for p in configs if p.name.startswith("study_")]
    assert len(configs) - len(studies) >= 20 and {p.name for p in studies} == {
        "study_a.yaml", "study_b.yaml", "study_demo.yaml"}
    for path in configs:
        if path in studies:         # a study file: every job's settings load
            jobs = build_jobs(load_study(path), "/nonexistent/out")
            assert jobs[-1].name == "statistics and report" and len(jobs) > 10, path
            continue
        cfg = load_config(path)
        assert cfg.data.dataset in DATASETS and cfg.model.arch in BACKBONES and cfg.model.head in HEADS, path


def test_command_defaults_sit_under_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\n")
    base = {"train.epochs": 50, "train.patience": 8, "pipeline.balanced": True}
    cfg = load_config(path, ["train.patience=2"], base=base)
    # the file beats the command's default, --set beats both, untouched defaults stay
    assert (cfg.train.epochs, cfg.train.patience, cfg.pipeline.balanced) == (7, 2, True)
    assert load_config(base=base).train.epochs == 50 and load_config().train.epochs == 20


def test_defaults_and_the_a_configs():
    cfg = load_config()
    assert cfg.similarity.maps == "processed" and cfg.similarity.data_range == 1.0
    assert cfg.saliency.input_channels == 3 and cfg.ggcam.order == "processed"
    assert cfg.randomization.n_images == 0 and cfg.compare.n_images == 0          # all positives, as [A]
    assert cfg.pointwise.centres == "receptive-field"
    from pathlib import Path

    configs = Path(__file__).resolve().parents[1] / "configs"
    for name in ("a_rsna_inceptionv3", "a_rsna_densenet121", "a_siim_inceptionv3", "a_siim_densenet121",
                 "a_randomization", "a_repeatability"):
        a = load_config(configs / f"{name}.yaml")
        # [A]'s code: processed maps, data_range 2, the predicted class, 10 IG steps
        assert (a.similarity.maps, a.similarity.data_range, a.saliency.target, a.saliency.ig_steps) == \
            ("processed", 2.0, "predicted", 10), name
    for bad, match in (("similarity.maps=both", "similarity.maps must be one of processed, raw, got 'both'"),
                       ("saliency.input_channels=2", "saliency.input_channels must be one of 3, 1, got 2"),
                       ("pointwise.centres=middle", "pointwise.centres must be one of receptive-field, grid, got"),
                       ("similarity.data_range=0", "similarity.data_range must be a number > 0, got 0")):
        with pytest.raises(ConfigError, match=match):
            load_config(overrides=[bad])

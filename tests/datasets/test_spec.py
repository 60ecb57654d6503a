"""The dataset schemas and config files: every shipped config composes and validates; typos fail."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError

from andon.datasets.spec import load_pinned_test, query_text, spec_from_config
from andon.errors import BadInput
from andon.hydra_app import register_configs
from tests.conftest import REPO_ROOT

DATASET_CONFIGS = sorted(p.stem for p in (REPO_ROOT / "configs" / "dataset").glob("*.yaml"))


def _compose(overrides: list[str]):
    register_configs()
    with initialize_config_module(config_module="andon.configs", version_base="1.3"):
        return compose(config_name="dataset_build", overrides=overrides)


def test_every_dataset_config_is_shipped():
    assert set(DATASET_CONFIGS) >= {"detection_synthetic", "prediction_synthetic", "prediction_eth_ucy",
                                    "detection_real", "prediction_av2"}


@pytest.mark.parametrize("name", DATASET_CONFIGS)
def test_dataset_config_composes_into_a_valid_spec(name):
    cfg = _compose([f"dataset={name}"])
    spec = spec_from_config(cfg.dataset)
    assert spec.name == name
    assert spec.task in ("detection", "prediction")
    assert query_text(spec.query)  # every shipped config selects by source at least


def test_eth_ucy_config_is_the_standard_protocol():
    spec = spec_from_config(_compose(["dataset=prediction_eth_ucy"]).dataset)
    assert (spec.sampling.step_s, spec.sampling.history_steps, spec.sampling.horizon_steps) == (0.4, 8, 12)
    assert spec.query.sources == ["eth-ucy"]


def test_primary_config_defaults():
    cfg = _compose([])
    assert cfg.json is False
    assert cfg.dataset.name == "prediction_synthetic"
    assert cfg.workspace


@pytest.mark.parametrize("override", ["dataset.sampling.strid=2", "dataset.validaton.drift_k=2", "jsn=true"])
def test_a_typo_in_a_key_fails(override):
    with pytest.raises((ConfigCompositionException, ConfigKeyError)):
        _compose([override])


def test_a_wrong_type_fails():
    with pytest.raises(ConfigCompositionException):
        _compose(["dataset.sampling.stride=often"])


@pytest.mark.parametrize(("section", "value", "named"), [
    ("task", "segmentation", "segmentation"),
    ("split", {"train": 0.5}, "sum to"),
    ("sampling", {"stride": 0}, "stride"),
    ("sampling", {"voxel_size_m": [0.3, 0.3, 6.0]}, "whole number of voxels"),
    ("query", {"qa_min": 1.5}, "qa_min"),
    ("query", {"query": "colour:red"}, "colour:red"),
    ("validation", {"acknowledge": ["removed_thing:x"]}, "removed_thing:x"),
    ("validation", {"drift_metric": "kl"}, "kl"),
])
def test_bad_values_name_themselves(section, value, named):
    doc = {"name": "d", "task": "detection", section: value}
    with pytest.raises(BadInput, match=named):
        spec_from_config(doc)


def test_prediction_sampling_is_validated():
    with pytest.raises(BadInput, match="agent_classes"):
        spec_from_config({"name": "p", "task": "prediction", "sampling": {"agent_classes": ["truck"]}})
    with pytest.raises(BadInput, match="history_steps"):
        spec_from_config({"name": "p", "task": "prediction", "sampling": {"history_steps": 0}})


def test_unknown_key_in_a_plain_dict_is_bad_input():
    with pytest.raises(BadInput, match="strid"):
        spec_from_config({"name": "d", "task": "detection", "sampling": {"strid": 2}})


def test_query_text_joins_structured_terms():
    spec = spec_from_config({"name": "d", "task": "detection", "query": {
        "query": "duration>=2", "tags": ["night"], "exclude_tags": ["rain"], "sources": ["av2", "kitti"],
        "qa_min": 0.8}})
    assert query_text(spec.query) == "duration>=2 tag:night -tag:rain source:av2 source:kitti qa>=0.8"


def test_pinned_test_from_a_file(tmp_path: Path):
    path = tmp_path / "pinned.json"
    path.write_text('["abc", "def"]')
    assert load_pinned_test(str(path)) == ["abc", "def"]
    assert load_pinned_test("pinned.json", base_dir=tmp_path) == ["abc", "def"]
    with pytest.raises(BadInput, match="no file"):
        load_pinned_test(str(tmp_path / "missing.json"))
    path.write_text('{"a": 1}')
    with pytest.raises(BadInput, match="JSON list"):
        load_pinned_test(str(path))

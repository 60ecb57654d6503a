"""Every config of `andon train` composes (lightning-hydra-template style), typos fail, the app runs.

Each file of the model, trainer, optimizer and experiment groups is composed with Hydra's compose API
under the packaged configs, typed by the schemas, and (for models) built into its network on a small
grid; the detector smoke experiment runs through the real app on a real dataset version.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class
from omegaconf import OmegaConf

from andon.errors import EXIT_BAD_INPUT, EXIT_OK
from andon.hydra_app import run_hydra_app
from andon.models.train import instantiate_model, model_class
from andon.models.train_cli import TRAIN_CONFIG, TRAIN_PROG, main, train_task, translate_overrides
from andon.models.train_config import (
    DetectorConfig,
    OptimizerConfig,
    TrainConfig,
    TrainerConfig,
    train_config_from,
)
from tests.models.train_helpers import SAMPLING, compose_train

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
GROUPS = ("model", "trainer", "optimizer", "experiment")


def group_files(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIGS / group).glob("*.yaml"))


def every_config() -> list[tuple[str, str]]:
    return [(group, name) for group in GROUPS for name in group_files(group)]


def test_every_group_has_configs() -> None:
    assert {"detector", "detector_small", "detector_large"} <= set(group_files("model"))
    assert {"cpu", "gpu"} <= set(group_files("trainer")) and {"adam", "adamw"} <= set(group_files("optimizer"))
    assert {"detector_smoke", "detector_fleet"} <= set(group_files("experiment"))


@pytest.mark.parametrize(("group", "name"), every_config())
def test_every_config_composes_into_the_schema(group: str, name: str) -> None:
    override = f"+experiment={name}" if group == "experiment" else f"{group}={name}"
    cfg = compose_train([override, "workspace=/nowhere"])
    typed = train_config_from(cfg)
    assert isinstance(typed, TrainConfig)
    assert isinstance(typed.trainer, TrainerConfig) and isinstance(typed.optimizer, OptimizerConfig)
    model = OmegaConf.to_container(cfg.model)
    assert model["_target_"] and model["name"]
    try:
        cls = get_class(model["_target_"])
    except ValueError:  # a factory function (tracker, planner): composed, not trained here
        cls = None
    if getattr(cls, "task", None) == "detection":
        # A detector builds its network from the composed config (on a small grid).
        assert model_class(model["_target_"]) is cls  # the training app accepts the class
        built = instantiate_model(model, SAMPLING, OmegaConf.to_container(cfg.optimizer))
        assert sum(p.numel() for p in built.parameters()) > 0


def test_the_primary_config_types_the_detector() -> None:
    typed = train_config_from(compose_train([]))
    assert isinstance(typed.model, DetectorConfig) and typed.model.name == "detector"
    assert typed.dataset_ref == "detection_synthetic" and typed.trainer.accelerator == "cpu"
    assert typed.trainer.deterministic and typed.register and not typed.json


@pytest.mark.parametrize("override", ["model.pfn_chanels=3", "trainer.max_epoch=3", "optimizer.learning_rate=1",
                                      "seed=abc", "model=no_such_model", "+experiment=no_such_experiment"])
def test_typos_fail_at_composition(override: str) -> None:
    with pytest.raises(ConfigCompositionException):
        compose_train([override])


@pytest.mark.parametrize(("override", "named"), [("trainer.accelerator=tpu", "accelerator"),
                                                 ("optimizer.name=sgd", "optimizer.name"),
                                                 ("trainer.limit_val_batches=1.5", "limit_val_batches"),
                                                 ("dataset=", "dataset_ref")])
def test_bad_values_are_refused_naming_them(override: str, named: str) -> None:
    from andon.errors import BadInput

    with pytest.raises(BadInput, match=named):
        train_config_from(compose_train([override]))


def test_dataset_overrides_become_dataset_references() -> None:
    assert translate_overrides(["dataset=abc", "+dataset=x", "seed=1", "dataset_ref=y", "dataset.name=z"]) == [
        "dataset_ref=abc", "dataset_ref=x", "seed=1", "dataset_ref=y", "dataset.name=z"]
    assert compose_train(["dataset=detection_real"]).dataset_ref == "detection_real"


def test_help_and_cfg_job_exit_0(capsys) -> None:
    assert main(["--help"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "andon train" in out and "detector_large" in out and "experiment: detector_fleet, detector_smoke" in out
    assert main(["--cfg", "job", "model=detector_small", "dataset=abc"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "dataset_ref: abc" in out and "pfn_channels: 16" in out


def test_a_bad_override_exits_2(tmp_path, capsys) -> None:
    assert main([f"workspace={tmp_path}", "trainer.max_epoch=2"]) == EXIT_BAD_INPUT
    assert "max_epoch" in capsys.readouterr().err


def test_the_detector_smoke_experiment_runs_through_the_app(fleet, capsys) -> None:
    workspace, _, version = fleet
    capsys.readouterr()
    code = run_hydra_app(train_task, TRAIN_CONFIG, TRAIN_PROG,
                         translate_overrides([f"workspace={workspace.root}", "+experiment=detector_smoke",
                                              f"dataset={version.dataset_id}", "trainer.enable_progress_bar=false",
                                              "json=true"]))
    out = capsys.readouterr()
    assert code == EXIT_OK, out.err
    doc = json.loads(out.out)  # stdout holds the JSON document and nothing else
    assert {"model", "version", "run_id", "metrics", "dataset_id", "checkpoint", "resumed"} <= set(doc)
    assert doc["model"] == "detector" and doc["version"].isdigit() and doc["dataset_id"] == version.dataset_id
    assert doc["resumed"] is False and Path(doc["checkpoint"]).is_file()
    assert "val/mAP" in doc["metrics"] and doc["metrics"]["global_step"] == 2.0
    assert f"registered detector version {doc['version']} (alias candidate)" in out.err

"""Helpers of the training tests: a small synthetic fleet built into real dataset versions.

The fleet is the real generator (`andon.simulation.fleet`) with a coarse lidar and short logs; the
versions are built by the real pipeline in a real workspace (git + DVC), as `andon dataset build`
does. The pillar grid is small (64 x 64 pillars of 0.8 m) so a training step takes milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from andon.datasets.build import build_dataset
from andon.datasets.spec import DatasetSpec, QuerySpec, SamplingSpec, SplitSpec, ValidationSpec
from andon.datasets.split import split_of
from andon.datasets.versions import DatasetVersion, load_version
from andon.scenarios.catalog import Catalog
from andon.simulation.fleet import FleetConfig, synthesize_fleet
from andon.workspace import Workspace

SMALL_FLEET = FleetConfig(lidar_beams=16, lidar_azimuth_steps=360, lidar_every_n_frames=5, label_range_m=30.0)
SAMPLING: dict[str, Any] = {"stride": 1, "point_cloud_range_m": [-25.6, -25.6, -3.0, 25.6, 25.6, 3.0],
                            "voxel_size_m": [0.8, 0.8, 6.0]}
# The tiny detector of the tests: a few thousand parameters.
TINY_MODEL = ["model=detector_small", "model.backbone_channels=[8,8]", "model.pfn_channels=8",
              "model.upsample_channels=8", "model.head_channels=8", "model.out_stride=2"]
TINY_TRAINER = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
                "trainer.num_workers=0", "trainer.batch_size=2", "trainer.enable_progress_bar=false",
                "trainer.log_every_n_steps=1", "trainer.num_threads=1"]


def synthesize(workspace: Workspace, n_logs: int = 4, duration_s: float = 4.0, seed: int = 0,
               config: FleetConfig = SMALL_FLEET) -> list[str]:
    """Synthetic fleet logs in the workspace's catalog; their ids."""
    with Catalog(workspace) as catalog:
        return synthesize_fleet(catalog, n_logs, seed=seed, duration_s=duration_s, config=config)


def fleet_version(workspace: Workspace, log_ids: list[str], sampling: dict[str, Any] | None = None,
                  name: str = "detection-synthetic", fractions: tuple[float, float, float] = (0.5, 0.25, 0.25)
                  ) -> DatasetVersion:
    """An accepted detection version of the fleet logs, with a salt that puts a log in every split.

    Raises:
        RuntimeError: no salt fills every split, or the build was rejected.
    """
    for attempt in range(200):
        split = SplitSpec(*fractions, salt=f"s{attempt}")
        if {split_of(log_id, split) for log_id in log_ids} >= {"train", "val", "test"}:
            break
    else:
        raise RuntimeError(f"no salt puts {len(log_ids)} logs into every split: add logs")
    spec = DatasetSpec(name=name, task="detection", query=QuerySpec(sources=["synthetic"]),
                       sampling=SamplingSpec(**(sampling or SAMPLING)), split=split, seed=7)
    document = build_dataset(workspace, spec, progress=False)
    if document["status"] != "accepted":
        raise RuntimeError(f"the test dataset was rejected: {document['reasons']}")
    return load_version(workspace, document["dataset_id"])


def rejected_version(workspace: Workspace) -> DatasetVersion:
    """A rejected detection version: no box may lie outside the range, and some do."""
    spec = DatasetSpec(name="detection-rejected", task="detection", query=QuerySpec(sources=["synthetic"]),
                       sampling=SamplingSpec(**SAMPLING), split=SplitSpec(1.0, 0.0, 0.0),
                       validation=ValidationSpec(max_outside_range_share=0.0))
    document = build_dataset(workspace, spec, progress=False)
    if document["status"] != "rejected":
        raise RuntimeError("the test fleet has no box outside the range: the rejected version was accepted")
    return load_version(workspace, document["dataset_id"])


def compose_train(overrides: list[str]) -> DictConfig:
    """The `train` config composed as the app composes it (schemas registered, package configs)."""
    from hydra import compose, initialize_config_module

    from andon.hydra_app import register_configs
    from andon.models.train_cli import translate_overrides

    register_configs()
    with initialize_config_module(config_module="andon.configs", version_base="1.3"):
        return compose(config_name="train", overrides=translate_overrides(overrides))


def tiny_overrides(workspace: Workspace | Path, dataset: str, *extra: str) -> list[str]:
    root = workspace.root if isinstance(workspace, Workspace) else workspace
    return [f"workspace={root}", f"dataset={dataset}", *TINY_MODEL, *TINY_TRAINER, *extra]

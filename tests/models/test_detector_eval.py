"""evaluate_on_version: a trained detector scored on dataset versions (fleet splits, real AV2/KITTI/nuScenes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from andon.datasets.cli import BUILD_CONFIG, BUILD_PROG, build_task
from andon.datasets.versions import load_version
from andon.errors import BadInput
from andon.hydra_app import run_hydra_app
from andon.models.detector import PillarDetector
from andon.models.detector_eval import evaluate_on_version
from andon.models.train import run_training
from andon.scenarios.catalog import Catalog
from andon.scenarios.importers import importer
from tests.datasets.build_helpers import PROVENANCE
from tests.datasets.loading_helpers import copy_workspace
from tests.models.train_helpers import compose_train, fleet_version, synthesize, tiny_overrides

KEYS = {"model", "dataset_id", "split", "frames", "mAP", "ap", "ap_mean", "n_gt", "n_pred", "frames_per_s"}


def test_a_checkpoint_and_a_registered_version_score_alike(trained) -> None:
    workspace, version, result = trained
    by_checkpoint = evaluate_on_version(result.checkpoint, workspace, version.dataset_id, "val", device="cpu")
    by_registry = evaluate_on_version(f"detector@{result.version}", workspace, version.dataset_id, "val", device="cpu")
    assert set(by_checkpoint) >= KEYS and by_checkpoint["frames"] == len(version.samples("val"))
    assert by_registry["model"] == f"detector@{result.version}" and by_checkpoint["mAP"] == by_registry["mAP"]
    assert by_checkpoint["mAP"] is None or 0.0 <= by_checkpoint["mAP"] <= 1.0
    model = PillarDetector.load_from_checkpoint(result.checkpoint, map_location="cpu")
    in_hand = evaluate_on_version(model, workspace, version.dataset_id, "test", device="cpu")
    assert in_hand["split"] == "test" and in_hand["frames"] == len(version.samples("test"))


def test_another_pillar_grid_breaks_parity(trained) -> None:
    workspace, version, result = trained
    log_ids = sorted({scenario["log_id"] for scenario in version.scenarios()})
    finer = {"stride": 1, "point_cloud_range_m": [-25.6, -25.6, -3.0, 25.6, 25.6, 3.0], "voxel_size_m": [0.4, 0.4, 6.0]}
    other = fleet_version(workspace, log_ids, sampling=finer, name="detection-finer")
    with pytest.raises(BadInput, match="parity"):
        evaluate_on_version(result.checkpoint, workspace, other.dataset_id, "val", device="cpu")
    with pytest.raises(BadInput, match="no model version"):
        evaluate_on_version("detector@production", workspace, version.dataset_id, "val", device="cpu")


# ----- real data ---------------------------------------------------------------------------------
REAL = [("av2", "perception/av2_sensor"), ("kitti", "perception/kitti_000008"),
        ("nuscenes", "perception/nuscenes_mini_sample")]
FLEET_GRID = ["dataset.sampling.point_cloud_range_m=[-51.2,-51.2,-3.0,51.2,51.2,3.0]",
              "dataset.sampling.voxel_size_m=[0.4,0.4,6.0]"]


@pytest.mark.realdata
def test_the_fleet_detector_runs_on_real_frames(shared_data: Path, _workspace_template: Path, tmp_path: Path,
                                                capsys) -> None:
    workspace = copy_workspace(_workspace_template, tmp_path / "ws")
    # Train on the fleet with the synthetic fleet's grid (detection_synthetic's sampling).
    grid = {"stride": 1, "point_cloud_range_m": [-51.2, -51.2, -3.0, 51.2, 51.2, 3.0], "voxel_size_m": [0.4, 0.4, 6.0]}
    fleet = fleet_version(workspace, synthesize(workspace, n_logs=4, duration_s=3.0), sampling=grid,
                          name="detection-fleet-grid")
    result = run_training(compose_train(tiny_overrides(workspace, fleet.dataset_id)))
    # The real samples, built on the detector's grid (labels beyond 51.2 m are not targets: warn only).
    with Catalog(workspace) as catalog:
        for fmt, folder in REAL:
            for log in importer(fmt).read(shared_data / folder):
                catalog.add_log(log, PROVENANCE, origin=folder)
    capsys.readouterr()
    code = run_hydra_app(build_task, BUILD_CONFIG, BUILD_PROG, [
        f"workspace={workspace.root}", "dataset=detection_real", "dataset.name=detection_real_fleet_grid",
        *FLEET_GRID, "dataset.validation.blocking.point_cloud_range=false", "dataset.split.train=1.0",
        "dataset.split.val=0", "dataset.split.test=0"])
    assert code == 0, capsys.readouterr().err
    real = load_version(workspace, "detection_real_fleet_grid")
    metrics = evaluate_on_version(f"detector@{result.version}", workspace, real.dataset_id, "train", device="cpu")
    assert metrics["frames"] == len(real.samples("train")) >= 3  # AV2's sweep, KITTI's and nuScenes' frames
    assert metrics["mAP"] is not None and 0.0 <= metrics["mAP"] <= 1.0  # reported; the domain gap is expected
    assert metrics["n_gt"].get("vehicle", 0) > 0

"""`run_training` end to end on a real workspace: MLflow run, registry, determinism, refusals, resume.

One tiny detector run (two batches, one epoch) on a small synthetic fleet is shared by the tests that
inspect what it wrote; the others train their own tiny runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml
from mlflow import MlflowClient

from andon.errors import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, BadInput, CheckFailed
from andon.hydra_app import run_hydra_app
from andon.models.detector import PillarDetector
from andon.models.lineage import code_version
from andon.models.registry import CANDIDATE, Registry
from andon.models.train import LAST_CHECKPOINT, STATE_FILE, TrainResult, read_state, run_training
from andon.models.train_cli import TRAIN_CONFIG, TRAIN_PROG, train_task, translate_overrides
from tests.datasets.loading_helpers import PREDICTION_SAMPLING, build_version, copy_workspace
from tests.models.train_helpers import (
    compose_train,
    fleet_version,
    rejected_version,
    synthesize,
    tiny_overrides,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_run_is_tracked_in_mlflow(trained) -> None:
    workspace, version, result = trained
    assert isinstance(result, TrainResult) and result.model == "detector" and not result.resumed
    client = MlflowClient(tracking_uri=workspace.mlflow_tracking_uri)
    run = client.get_run(result.run_id)
    assert client.get_experiment(run.info.experiment_id).name == "andon/detector"
    params = run.data.params
    assert params["model.pfn_channels"] == "8" and params["trainer.max_epochs"] == "1"
    assert params["dataset_ref"] == version.dataset_id and params["seed"] == "0"
    assert {"val/mAP", "val/loss", "train/loss", "best/val/mAP"} <= set(run.data.metrics)
    tags = run.data.tags
    assert tags["dataset_id"] == version.dataset_id and tags["dataset_name"] == version.name
    assert tags["transform_code_hash"] == version.transform["code_hash"]
    assert tags["config_hash"] == result.config_hash and tags["code_version"] == code_version()
    assert tags["upstream_tracker"] == "2"
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "checkpoints"} <= artifacts
    (checkpoint,) = client.list_artifacts(result.run_id, "checkpoints")
    assert checkpoint.path.endswith(".ckpt")
    saved = yaml.safe_load(Path(client.download_artifacts(result.run_id, "config.yaml", str(workspace.tmp_dir)))
                           .read_text())
    assert saved["model"]["_target_"] == "andon.models.detector.PillarDetector" and saved["upstream"] == {"tracker": "2"}


def test_the_model_is_registered_as_candidate_with_its_lineage(trained) -> None:
    workspace, version, result = trained
    registry = Registry(workspace)
    aliases = registry.aliases("detector")
    assert set(aliases) == {CANDIDATE}  # training never sets production
    registered = registry.resolve(f"detector@{result.version}")
    assert registered.run_id == result.run_id
    # `candidate` is the newest version: this one, unless another test registered one since.
    newest = max(int(v.version) for v in registry.client.search_model_versions("name = 'detector'"))
    assert aliases[CANDIDATE] == str(newest) and newest >= int(result.version)
    assert registered.tags["dataset_id"] == version.dataset_id and registered.tags["config_hash"] == result.config_hash
    model = mlflow.pytorch.load_model(f"models:/detector/{result.version}")
    assert isinstance(model, PillarDetector)
    model_dir = Path(mlflow.artifacts.download_artifacts(f"models:/detector/{result.version}",
                                                         dst_path=str(workspace.tmp_dir)))
    requirements = (model_dir / "requirements.txt").read_text()
    assert "torch==" in requirements and "pytorch-lightning==" in requirements and "numpy==" in requirements
    example = json.loads((model_dir / "input_example.json").read_text())
    assert set(example) == {"pillars", "pillar_num_points", "pillar_coords"}
    # JSON keeps the values, not the dtypes: the loader's are float32 pillars and int64 counts and coords.
    batch = {key: torch.as_tensor(np.asarray(value, dtype=np.float32 if key == "pillars" else np.int64))
             for key, value in example.items()}
    assert model.eval()(batch)["heatmap"].ndim == 4
    assert read_state(Path(result.checkpoint).parent)["status"] == "finished"


def test_training_is_deterministic_on_cpu(trained) -> None:
    workspace, version, result = trained
    again = run_training(compose_train(tiny_overrides(workspace, version.dataset_id, "+upstream.tracker=2")),
                         register=False)
    assert again.version is None and again.run_id != result.run_id and again.config_hash == result.config_hash
    assert again.metrics == result.metrics
    other = run_training(compose_train(tiny_overrides(workspace, version.dataset_id, "seed=1")), register=False)
    assert other.metrics["train/loss"] != result.metrics["train/loss"]


def test_callbacks_see_the_validation_metrics(fleet) -> None:
    workspace, _, version = fleet

    class Reporter(pl.Callback):
        """What a Ray Tune reporter does: read the metrics after each validation."""

        def __init__(self) -> None:
            self.seen: list[float] = []

        def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            self.seen.append(float(trainer.callback_metrics["val/mAP"]))

    reporter = Reporter()
    result = run_training(compose_train(tiny_overrides(workspace, version.dataset_id, "seed=3")),
                          callbacks=[reporter], register=False)
    assert result.version is None and reporter.seen and reporter.seen[-1] == pytest.approx(result.metrics["val/mAP"],
                                                                                          nan_ok=True)


def _runs(workspace) -> int:
    client = MlflowClient(tracking_uri=workspace.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name("andon/detector")
    return len(client.search_runs([experiment.experiment_id])) if experiment else 0


def test_a_rejected_dataset_stops_training_with_exit_1(fleet, capsys) -> None:
    workspace, _, _ = fleet
    rejected = rejected_version(workspace)
    before = _runs(workspace)
    with pytest.raises(CheckFailed, match="rejected"):
        run_training(compose_train(tiny_overrides(workspace, rejected.dataset_id)))
    capsys.readouterr()
    code = run_hydra_app(train_task, TRAIN_CONFIG, TRAIN_PROG,
                         translate_overrides(tiny_overrides(workspace, rejected.dataset_id)))
    err = capsys.readouterr().err
    assert code == EXIT_CHECK_FAILED and rejected.dataset_id in err and "nothing is trained" in err
    assert _runs(workspace) == before  # no run was even started


def test_missing_or_wrong_datasets_are_bad_input_exit_2(fleet, capsys) -> None:
    workspace, log_ids, _ = fleet
    code = run_hydra_app(train_task, TRAIN_CONFIG, TRAIN_PROG,
                         translate_overrides(tiny_overrides(workspace, "no_such_dataset")))
    assert code == EXIT_BAD_INPUT and "no_such_dataset" in capsys.readouterr().err
    prediction = build_version(workspace, log_ids, "prediction", PREDICTION_SAMPLING, source="synthetic")
    with pytest.raises(BadInput, match="'prediction' dataset"):
        run_training(compose_train(tiny_overrides(workspace, prediction.dataset_id)))


def test_a_bad_override_exits_2(fleet, capsys) -> None:
    workspace, _, version = fleet
    code = run_hydra_app(train_task, TRAIN_CONFIG, TRAIN_PROG,
                         translate_overrides(tiny_overrides(workspace, version.dataset_id, "model.pfn_chanels=4")))
    assert code == EXIT_BAD_INPUT and "pfn_chanels" in capsys.readouterr().err


# ----- resume after a crash or a kill ------------------------------------------------------------
class _Start(pl.Callback):
    """Records where training started (after any restore)."""

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.step, self.epoch = trainer.global_step, trainer.current_epoch


def test_a_crashed_run_resumes_from_its_last_checkpoint(fleet) -> None:
    workspace, _, version = fleet

    class Crash(pl.Callback):
        # Lightning runs checkpoint callbacks last: epoch 2 dies before its own checkpoint is written.
        def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            if trainer.current_epoch == 2:
                raise RuntimeError("the machine died")

    overrides = tiny_overrides(workspace, version.dataset_id, "seed=4", "trainer.max_epochs=3")
    with pytest.raises(RuntimeError, match="machine died"):
        run_training(compose_train(overrides), callbacks=[Crash()], register=False)
    (directory,) = [p.parent for p in (workspace.root / "checkpoints" / "detector").glob(f"*/{STATE_FILE}")
                    if read_state(p.parent)["status"] == "running"]
    crashed_run = read_state(directory)["run_id"]
    assert _saved_step(directory / LAST_CHECKPOINT) == 4  # epochs 0 and 1 of two batches
    start = _Start()
    result = run_training(compose_train(overrides), callbacks=[start], register=False)
    assert result.resumed and result.resumed_from_step == 4 and (start.step, start.epoch) == (4, 2)
    assert result.metrics["global_step"] == 6.0 and result.run_id == crashed_run
    assert read_state(directory)["status"] == "finished"
    # Finished: the same config trains afresh next time (a new run, the same result).
    again = run_training(compose_train(overrides), register=False)
    assert not again.resumed and again.run_id != crashed_run



_CHILD = textwrap.dedent("""
    import sys, time
    import pytorch_lightning as pl
    from omegaconf import OmegaConf
    from andon.models.train import run_training

    class Slow(pl.Callback):
        # Slows training down so the parent can kill it between checkpoints.
        def on_train_batch_end(self, *args):
            time.sleep(0.3)

    run_training(OmegaConf.load(sys.argv[1]), callbacks=[Slow()])
""")


def _saved_step(path: Path) -> int | None:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])
    except Exception:  # not there yet, or being written
        return None


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(fleet, tmp_path: Path) -> None:
    """SIGKILL mid-training (a separate process: start-up alone takes seconds), then resume."""
    from omegaconf import OmegaConf

    workspace, _, version = fleet
    overrides = tiny_overrides(workspace, version.dataset_id, "seed=5", "trainer.max_epochs=6")
    config = tmp_path / "config.yaml"
    OmegaConf.save(compose_train(overrides), config)
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen([sys.executable, str(script), str(config)], cwd=tmp_path, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        directory = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            found = list((workspace.root / "checkpoints" / "detector").glob(f"*/{LAST_CHECKPOINT}"))
            fresh = [p for p in found if read_state(p.parent).get("status") == "running"]
            if fresh and (_saved_step(fresh[0]) or 0) >= 4:  # two of six epochs done
                directory = fresh[0].parent
                break
            time.sleep(0.1)
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        child.kill()  # SIGKILL: no clean-up runs, as when a machine dies
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    assert directory is not None
    state = json.loads((directory / STATE_FILE).read_text())
    assert state["status"] == "running"
    saved = _saved_step(directory / LAST_CHECKPOINT)
    assert saved is not None and 4 <= saved < 12

    start = _Start()
    result = run_training(compose_train(overrides), callbacks=[start], register=False)
    assert result.resumed and result.resumed_from_step == saved
    assert start.step == saved and start.epoch == saved // 2  # continued from the saved epoch and step
    assert result.metrics["global_step"] == 12.0  # six epochs of two batches, as an uninterrupted run
    assert result.run_id == state["run_id"]  # the same MLflow run carries on
    assert read_state(directory)["status"] == "finished"
    client = MlflowClient(tracking_uri=workspace.mlflow_tracking_uri)
    steps = [m.step for m in client.get_metric_history(result.run_id, "train/loss")]
    assert steps and max(steps) >= 10  # the curve runs on to the end in the same run


# ----- it really learns (slow) -------------------------------------------------------------------
@pytest.mark.slow
def test_the_detector_learns_on_the_fleet(_workspace_template: Path, tmp_path: Path) -> None:
    """Four epochs on 8 fleet logs of 20 s (~240 train frames, ~70 s) lift val mAP far above the untrained 0.

    Measured: untrained 0.0; epochs 0-3: 0.0, 0.27, 0.40, 0.42 (vehicle 0.62, pedestrian 0.64).
    """
    from andon.simulation.fleet import FleetConfig

    workspace = copy_workspace(_workspace_template, tmp_path / "ws")
    config = FleetConfig(lidar_beams=32, lidar_azimuth_steps=720, lidar_every_n_frames=5, label_range_m=30.0)
    log_ids = synthesize(workspace, n_logs=8, duration_s=20.0, config=config)
    sampling = {"stride": 1, "point_cloud_range_m": [-25.6, -25.6, -3.0, 25.6, 25.6, 3.0],
                "voxel_size_m": [0.4, 0.4, 6.0]}
    version = fleet_version(workspace, log_ids, sampling=sampling, fractions=(0.6, 0.2, 0.2))
    cfg = compose_train([f"workspace={workspace.root}", f"dataset={version.dataset_id}", "model=detector",
                         "trainer.max_epochs=4", "trainer.num_workers=0", "trainer.batch_size=4",
                         "trainer.num_threads=1", "trainer.enable_progress_bar=false", "baseline_validation=true",
                         "optimizer.lr=3e-3"])
    result = run_training(cfg, register=False)
    untrained = result.metrics["untrained/val/mAP"]
    assert result.metrics["best/val/mAP"] > max(0.25, 5 * untrained), result.metrics
    assert result.metrics["val/AP_vehicle"] > 0.3 and result.metrics["val/AP_pedestrian"] > 0.3, result.metrics

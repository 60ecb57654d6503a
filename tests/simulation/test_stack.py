"""The stack a replay runs: stand-ins, and registered models given their roles by their loaded types."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from andon.errors import BadInput
from andon.models.registry import Registry
from andon.models.tracker import Tracker
from andon.scenarios.records import Frame
from andon.simulation.stack import FALLBACK_PREDICTION_STEP_S, load_stack, stand_in_stack
from andon.workspace import Workspace

STAND_INS = {"detector": "oracle", "tracker": "default", "predictor": "constant_velocity", "planner": "default"}


def _register_config(workspace: Workspace, name: str, model: dict) -> str:
    """Register a config the way the model DAG's `fixed` runner does (node/config.json)."""
    registry = Registry(workspace)
    run = registry.client.create_run(registry.experiment_id("andon/dag"), run_name=name)
    registry.client.log_dict(run.info.run_id, {"model": model}, "node/config.json")
    return registry.register(name, run.info.run_id, "node", {})


def _register_torch(workspace: Workspace, name: str, model: object, tags: dict[str, str]) -> str:
    """Register a torch model the way training does (an MLflow model under the run's model/)."""
    import mlflow.pytorch

    registry = Registry(workspace)
    run = registry.client.create_run(registry.experiment_id(f"andon/{name}"))
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "model"
        mlflow.pytorch.save_model(model, str(local), serialization_format="pickle", pip_requirements=[])
        registry.client.log_artifacts(run.info.run_id, str(local), "model")
    return registry.register(name, run.info.run_id, "model", tags)


def _tiny_predictor() -> object:
    from andon.models.predictor import TrajectoryPredictor

    return TrajectoryPredictor(history_steps=4, horizon_steps=6, num_modes=2, hidden_size=8, neighbour_size=8)


def _feature_hash() -> str:
    from andon.datasets.features import module_code_hash

    return module_code_hash()


def test_the_stand_in_stack() -> None:
    stack = stand_in_stack(seed=1)
    assert stack.description == STAND_INS and stack.predictor is None and not stack.reads_points
    assert isinstance(stack.tracker, Tracker)
    assert stack.prediction_step_s * stack.prediction_horizon_steps == pytest.approx(stack.planner.config.horizon_s)
    frame = Frame(1, (0.0, 0.0, 0.0, 0.0), np.array([[10.0, 0, 0.8, 4.5, 1.9, 1.6, 0]]), ["vehicle"], ["a"])
    boxes, classes, scores = stack.detect(frame)
    assert boxes.shape[1] == 7 and len(classes) == len(scores)


def test_no_models_means_stand_ins_or_bad_input(workspace: Workspace) -> None:
    assert load_stack(workspace, []).description == STAND_INS
    with pytest.raises(BadInput, match="no model for detector, tracker, predictor, planner"):
        load_stack(workspace, [], allow_stand_ins=False)


@pytest.mark.parametrize(("ref", "named"), [("detector", "'detector'"), ("predictor@7", "predictor@7"),
                                            ("nothing@candidate", "nothing@candidate")])
def test_a_bad_reference_is_bad_input_naming_it(workspace: Workspace, ref: str, named: str) -> None:
    with pytest.raises(BadInput, match=named):
        load_stack(workspace, [ref])


def test_registered_tracker_and_planner_configs(workspace: Workspace) -> None:
    _register_config(workspace, "tracker", {"_target_": "andon.models.tracker.make_tracker", "name": "tracker",
                                            "min_hits": 3, "gating_distance_m": 4.0})
    _register_config(workspace, "planner", {"_target_": "andon.models.planner.make_planner", "name": "planner",
                                            "desired_speed_mps": 8.0, "horizon_s": 4.0})
    stack = load_stack(workspace, ["tracker@candidate", "planner@1"])
    assert stack.description == {**STAND_INS, "tracker": "tracker@1", "planner": "planner@1"}
    assert stack.tracker.config.min_hits == 3 and stack.tracker.config.gating_distance_m == 4.0
    assert stack.planner.config.desired_speed_mps == 8.0
    assert stack.prediction_step_s * stack.prediction_horizon_steps == pytest.approx(4.0)  # the planner's horizon
    with pytest.raises(BadInput, match="both a tracker"):
        _register_config(workspace, "tracker", {"_target_": "andon.models.tracker.make_tracker", "min_hits": 1})
        load_stack(workspace, ["tracker@1", "tracker@2"])


def test_a_config_the_simulator_cannot_run_is_bad_input(workspace: Workspace) -> None:
    _register_config(workspace, "classifier", {"_target_": "somewhere.make_classifier"})
    with pytest.raises(BadInput, match="classifier@1.*somewhere.make_classifier"):
        load_stack(workspace, ["classifier@1"])
    _register_config(workspace, "tracker", {"_target_": "andon.models.tracker.make_tracker", "min_hits": 0})
    with pytest.raises(BadInput, match="tracker@1.*min_hits"):
        load_stack(workspace, ["tracker@1"])
    registry = Registry(workspace)  # an autolabel link registers a link record, not a model
    run = registry.client.create_run(registry.experiment_id("andon/dag"))
    registry.client.log_dict(run.info.run_id, {"dataset_id": "x"}, "node/link.json")
    registry.register("prediction_autolabel", run.info.run_id, "node", {})
    with pytest.raises(BadInput, match="prediction_autolabel@1.*link.json.*not a model"):
        load_stack(workspace, ["prediction_autolabel@1"])


def test_a_registered_predictor_with_its_datasets_sampling(workspace: Workspace,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _register_torch(workspace, "predictor", _tiny_predictor(),
                    {"dataset_id": "ds-123", "transform_code_hash": _feature_hash()})
    # The dataset version is not in this workspace: the step falls back, and the description says so.
    stack = load_stack(workspace, ["predictor@candidate"])
    assert stack.predictor is not None and stack.prediction_step_s == FALLBACK_PREDICTION_STEP_S
    assert (stack.prediction_history_steps, stack.prediction_horizon_steps) == (4, 6)
    assert stack.description["predictor"].startswith("predictor@1 (step 0.5 s assumed")
    # With the version: its sampling's step and neighbour slots.
    import andon.datasets.versions as versions

    def fake_version(ws: object, ref: str) -> SimpleNamespace:
        assert ref == "ds-123"
        return SimpleNamespace(spec={"sampling": {"step_s": 0.4, "history_steps": 4, "horizon_steps": 6,
                                                  "max_agents_per_frame": 8}})

    monkeypatch.setattr(versions, "load_version", fake_version)
    stack = load_stack(workspace, ["predictor@1"])
    assert stack.prediction_step_s == 0.4 and stack.prediction_neighbour_slots == 8
    assert stack.description["predictor"] == "predictor@1"
    assert stack.prediction_sampling == {"step_s": 0.4, "history_steps": 4, "horizon_steps": 6,
                                         "max_agents_per_frame": 8}


def test_a_registered_detector_and_feature_code_parity(workspace: Workspace) -> None:
    from andon.models.detector import PillarDetector

    detector = PillarDetector({"point_cloud_range_m": [-25.6, -25.6, -3.0, 25.6, 25.6, 3.0],
                               "voxel_size_m": [0.4, 0.4, 6.0]}, pfn_channels=8, backbone_channels=[8, 8],
                              backbone_layers=[0, 1], backbone_strides=[2, 2], upsample_channels=8, out_stride=2,
                              head_channels=8)
    _register_torch(workspace, "detector", detector, {"transform_code_hash": _feature_hash()})
    stack = load_stack(workspace, ["detector@candidate"])
    assert stack.description["detector"] == "detector@1" and stack.reads_points
    assert stack.detect(Frame(1, (0.0, 0.0, 0.0, 0.0), np.zeros((0, 7)), [], [])) is None  # no sweep: cannot see
    points = np.random.default_rng(0).uniform(-20, 20, (500, 4)).astype(np.float32)
    boxes, classes, scores = stack.detect(Frame(1, (0.0, 0.0, 0.0, 0.0), np.zeros((0, 7)), [], [], points=points))
    assert boxes.shape[1] == 7 and len(classes) == len(scores)
    _register_torch(workspace, "detector", detector, {"transform_code_hash": "0" * 64})
    with pytest.raises(BadInput, match="detector@2.*feature code"):
        load_stack(workspace, ["detector@2"])
    with pytest.raises(BadInput, match="both a detector"):
        load_stack(workspace, ["detector@1", "detector@1"])


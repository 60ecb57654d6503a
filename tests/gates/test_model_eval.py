"""Model evaluations of the gates: per-frame and per-agent evidence grouped by scenario, cached as npz."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from andon.errors import BadInput
from andon.gates.model_eval import (
    CLASSES,
    DetectionEval,
    PredictionEval,
    assign_units,
    cache_path,
    load_eval,
    model_evaluation,
    per_agent_metrics,
    save_eval,
)
from andon.models.autolabel import oracle_detector
from andon.models.detection_metrics import DetectionSet, evaluate_detection
from andon.models.prediction_eval import evaluate_arrays
from tests.datasets.build_helpers import make_agents_log
from tests.datasets.loading_helpers import (
    DETECTION_SAMPLING,
    PREDICTION_SAMPLING,
    build_version,
    copy_workspace,
    store,
    walker_log,
)


@pytest.fixture(scope="module")
def detection_set(_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("gate_det") / "ws")
    logs = [make_agents_log(f"d{i}", n_frames=10, seed=i, classes=("vehicle", "vehicle", "pedestrian", "cyclist"),
                            spread_m=15.0) for i in range(6)]
    return workspace, build_version(workspace, store(workspace, logs), "detection", DETECTION_SAMPLING)


@pytest.fixture(scope="module")
def prediction_set(_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("gate_pred") / "ws")
    log_ids = store(workspace, [walker_log(f"w{i}", seed=i)[0] for i in range(6)])
    return workspace, build_version(workspace, log_ids, "prediction", PREDICTION_SAMPLING)


def detection_set_of(ev: DetectionEval) -> tuple[DetectionSet, DetectionSet]:
    gt = DetectionSet.from_arrays(ev.frame_ids, ev.gt_frame, ev.gt_boxes, ev.gt_class)
    pred = DetectionSet.from_arrays(ev.frame_ids, ev.pred_frame, ev.pred_boxes, ev.pred_class, scores=ev.pred_score)
    return gt, pred


# ----- units -----------------------------------------------------------------------------------------
def test_each_item_belongs_to_its_shortest_scenario_window_and_carries_every_tag() -> None:
    scenarios = [
        {"scenario_id": "whole", "log_id": "L1", "t_start_ns": 0, "t_end_ns": 100, "tags": ["synthetic"]},
        {"scenario_id": "cross", "log_id": "L1", "t_start_ns": 10, "t_end_ns": 40, "tags": ["pedestrian_crossing"]},
        {"scenario_id": "night", "log_id": "L1", "t_start_ns": 20, "t_end_ns": 30, "tags": ["night"]},
        {"scenario_id": "other", "log_id": "L9", "t_start_ns": 0, "t_end_ns": 100, "tags": ["x"]},
    ]
    units = assign_units(scenarios, ["L1", "L1", "L1", "L2"], [5, 15, 25, 5])
    assert units.log_ids == ("L1", "L2")
    assert [units.scenario_ids[i] for i in units.item_scenario] == ["whole", "cross", "night", "log:L2"]
    assert units.tag_names == ("night", "pedestrian_crossing", "synthetic")  # "x" is of a log not evaluated
    assert units.with_tags(["pedestrian_crossing"]).tolist() == [False, True, True, False]
    assert units.with_tags(["night", "synthetic"]).tolist() == [False, False, True, False]
    assert not units.with_tags(["rain"]).any()
    groups, names = units.groups("log")
    assert [names[g] for g in groups] == ["L1", "L1", "L1", "L2"]
    with pytest.raises(BadInput, match="unit"):
        units.groups("frame")


# ----- predictor metrics -----------------------------------------------------------------------------
def test_per_agent_metrics_average_to_the_contract_metrics() -> None:
    rng = np.random.default_rng(0)
    modes = rng.normal(0, 3, size=(20, 3, 6, 2))
    probs = rng.random((20, 3))
    future = rng.normal(0, 3, size=(20, 6, 2))
    mask = np.ones((20, 6), dtype=bool)
    mask[3, 4:] = False  # a shorter future
    mask[5, :] = False  # no observed step: dropped
    mask[7, 2] = False  # a gap: the future counts up to it
    keep, metrics = per_agent_metrics(modes, probs, future, mask)
    assert 5 not in keep and len(keep) == 19
    expected = evaluate_arrays(modes, probs, future, mask)
    for name, values in metrics.items():
        assert values.shape == (19,)
        assert np.mean(values) == pytest.approx(expected[name], rel=1e-12)


# ----- detector evaluation and its cache -------------------------------------------------------------
def test_detector_evaluation_groups_frames_and_caches_them(detection_set: tuple[Any, Any]) -> None:
    workspace, version = detection_set
    detect = oracle_detector(seed=3)
    ev = model_evaluation(workspace, "detection", "detector", "7", version, "test", detect=detect)
    assert isinstance(ev, DetectionEval) and ev.model == "detector@7" and ev.dataset_id == version.dataset_id
    test_logs = set(version.samples("test")["log_id"])
    assert len(ev.frame_ids) == len(version.samples("test")) and set(ev.units.log_ids) == test_logs
    # whole-log scenarios only: each log is one unit; the import tags its scenario with the source
    assert len(ev.units.scenario_ids) == len(test_logs) and "test" in ev.units.tag_names
    assert set(CLASSES[c] for c in ev.gt_class) == {"vehicle", "pedestrian", "cyclist"}
    gt, pred = detection_set_of(ev)
    metrics = evaluate_detection(gt, pred, classes=("vehicle", "pedestrian", "cyclist"))
    assert 0.3 < metrics["mAP"] <= 1.0  # the oracle detects most boxes
    path = cache_path(workspace, "detector", "7", version.dataset_id)
    assert path.name == f"detector-7-{version.dataset_id}.npz" and path.parent == workspace.root / "gates" / "evals"
    # cached: a second call reads the file, not the detector
    again = model_evaluation(workspace, "detection", "detector", "7", version, "test", detect=_never)
    assert again.frame_ids == ev.frame_ids and np.array_equal(again.pred_score, ev.pred_score)
    assert np.array_equal(again.units.item_tags, ev.units.item_tags)
    # rerun recomputes
    other = model_evaluation(workspace, "detection", "detector", "7", version, "test", rerun=True,
                             detect=oracle_detector(seed=4))
    assert not np.array_equal(other.pred_score, ev.pred_score)


def _never(frame: Any) -> Any:
    raise AssertionError("the cached evaluation must be read, not recomputed")


def test_a_corrupt_cache_is_refused_naming_the_file(detection_set: tuple[Any, Any]) -> None:
    workspace, version = detection_set
    path = cache_path(workspace, "detector", "8", version.dataset_id)
    ev = model_evaluation(workspace, "detection", "detector", "8", version, detect=oracle_detector())
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # truncated
    with pytest.raises(BadInput, match=f"evaluation cache {path} is unreadable.*rerun=true"):
        model_evaluation(workspace, "detection", "detector", "8", version, detect=_never)
    path.write_bytes(b"not a zip at all")
    with pytest.raises(BadInput, match="unreadable"):
        load_eval(path)
    # a consistent file of the wrong shape is refused too
    bad = DetectionEval(ev.model, ev.dataset_id, ev.split, ev.frame_ids, ev.units, ev.gt_frame, ev.gt_boxes,
                        ev.gt_class[:-1], ev.pred_frame, ev.pred_boxes, ev.pred_class, ev.pred_score)
    save_eval(bad, path)
    with pytest.raises(BadInput, match="disagree"):
        load_eval(path)
    # rerun heals it
    healed = model_evaluation(workspace, "detection", "detector", "8", version, rerun=True, detect=oracle_detector())
    assert np.array_equal(healed.gt_class, ev.gt_class)


def test_detector_output_is_checked(detection_set: tuple[Any, Any]) -> None:
    workspace, version = detection_set

    def nan_boxes(frame: Any) -> Any:
        return np.full((1, 7), np.nan), ["vehicle"], np.ones(1)

    with pytest.raises(BadInput, match="non-finite"):
        model_evaluation(workspace, "detection", "detector", "9", version, detect=nan_boxes)
    assert not cache_path(workspace, "detector", "9", version.dataset_id).exists()  # nothing half-written

    def blind(frame: Any) -> Any:
        return None

    ev = model_evaluation(workspace, "detection", "detector", "10", version, detect=blind)
    assert len(ev.pred_frame) == 0 and len(ev.gt_frame) > 0


def test_a_dataset_of_another_task_is_refused(detection_set: tuple[Any, Any],
                                              prediction_set: tuple[Any, Any]) -> None:
    workspace, version = detection_set
    with pytest.raises(BadInput, match="prediction dataset"):
        model_evaluation(workspace, "prediction", "predictor", "1", version, predictor=object())


# ----- predictor evaluation --------------------------------------------------------------------------
def test_predictor_evaluation_matches_the_contract_metrics(prediction_set: tuple[Any, Any]) -> None:
    import torch

    from andon.datasets.datamodules import PredictionDataModule
    from andon.models.predictor import TrajectoryPredictor

    workspace, version = prediction_set
    torch.manual_seed(0)
    model = TrajectoryPredictor(sampling=PREDICTION_SAMPLING, num_modes=3)
    ev = model_evaluation(workspace, "prediction", "predictor", "2", version, "test", predictor=model)
    assert isinstance(ev, PredictionEval) and ev.k == 3
    # the same agents, the same means as the contract's evaluation of the whole split
    datamodule = PredictionDataModule(workspace, version, batch_size=1024, num_workers=0)
    datamodule.setup("test")
    batch = next(iter(datamodule.loader("test", shuffle=False)))
    with torch.no_grad():
        modes, logits = model(batch["history"], batch["history_mask"], batch["neighbours"], batch["neighbours_mask"])
    expected = evaluate_arrays(modes.double().numpy(), torch.softmax(logits, -1).double().numpy(),
                               batch["future"].double().numpy(), batch["future_mask"].numpy())
    assert ev.n_items == expected["n_agents"]
    for name in ("ADE", "FDE", "minADE_k", "minFDE_k", "miss_rate"):
        assert np.mean(ev.metrics[name]) == pytest.approx(expected[name], rel=1e-9)
    # every agent's class and range at t0 come from its log
    assert set(CLASSES[c] for c in ev.agent_class) == {"pedestrian", "vehicle"}
    assert np.isfinite(ev.agent_range_m).all() and (ev.agent_range_m >= 0).all()
    again = load_eval(cache_path(workspace, "predictor", "2", version.dataset_id))
    assert isinstance(again, PredictionEval) and again.agent_keys == ev.agent_keys
    assert all(np.array_equal(again.metrics[k], ev.metrics[k]) for k in ev.metrics)


@pytest.mark.slow
def test_a_registered_detector_is_evaluated_like_andon_eval(_workspace_template: Path,
                                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    """A tiny detector trained and registered for real: its cached gate evaluation holds the frames,
    ground truth and detections `andon eval` scores (the same mAP), grouped by scenario."""
    from andon.models.detector_eval import evaluate_on_version
    from andon.models.train import run_training
    from tests.models.train_helpers import compose_train, fleet_version, synthesize, tiny_overrides

    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("gate_trained") / "ws")
    version = fleet_version(workspace, synthesize(workspace, n_logs=4, duration_s=3.0))
    trained = run_training(compose_train(tiny_overrides(workspace, version.dataset_id)))
    ev = model_evaluation(workspace, "detection", trained.model, str(trained.version), version, "test",
                          device="cpu")
    gt, pred = detection_set_of(ev)
    ours = evaluate_detection(gt, pred, classes=("vehicle", "pedestrian", "cyclist"))["mAP"]
    reference = evaluate_on_version(f"{trained.model}@{trained.version}", workspace, version.dataset_id, "test",
                                    device="cpu")["mAP"]
    assert ours == pytest.approx(reference, abs=1e-9)
    assert len(ev.frame_ids) == len(version.samples("test")) and len(ev.units.scenario_ids) >= 1

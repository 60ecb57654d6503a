"""The feature transform against simple references, and the train/serve parity record."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from andon.datasets import features
from andon.datasets.features import (
    DETECTION_CLASSES,
    POINT_FEATURES,
    agent_to_world,
    bev_grid_shape,
    check_parity,
    detection_features,
    detection_targets,
    intensity_max_for,
    prediction_features,
    prediction_features_batch,
    transform_record,
)
from andon.errors import BadInput

SMALL_GRID = {"point_cloud_range_m": [-4.0, -3.0, -2.0, 4.0, 3.0, 2.0], "voxel_size_m": [1.0, 1.0, 4.0],
              "max_points_per_pillar": 5, "max_pillars": 1000}
PREDICTION = {"step_s": 0.4, "history_steps": 8, "horizon_steps": 12, "max_agents_per_frame": 3}


def random_points(n: int, seed: int = 0, spread_m: float = 5.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(-spread_m, spread_m, (n, 3))
    return np.column_stack([xyz, rng.uniform(0, 1, n)]).astype(np.float32)


def reference_pillars(points: np.ndarray, sampling: dict) -> dict[int, list[int]]:
    """Plain loops: pillar key -> indices of its kept points, after both caps (the documented rules)."""
    x0, y0, z0, x1, y1, z1 = sampling["point_cloud_range_m"]
    vx, vy, _ = sampling["voxel_size_m"]
    nx = round((x1 - x0) / vx)
    members: dict[int, list[int]] = {}
    for i, (x, y, z, _) in enumerate(points.tolist()):
        if x0 <= x < x1 and y0 <= y < y1 and z0 <= z < z1:
            key = int((y - y0) // vy) * nx + int((x - x0) // vx)
            members.setdefault(key, []).append(i)
    ranked = sorted(members, key=lambda k: (-len(members[k]), k))[:sampling["max_pillars"]]
    return {k: members[k][:sampling["max_points_per_pillar"]] for k in sorted(ranked)}


@pytest.mark.parametrize("max_pillars", [1000, 20])
def test_pillars_match_a_loop_reference(max_pillars: int) -> None:
    sampling = {**SMALL_GRID, "max_pillars": max_pillars}
    points = random_points(600)
    out = detection_features(points, sampling, intensity_max=1.0)
    expected = reference_pillars(points, sampling)
    nx = bev_grid_shape(sampling)[1]
    keys = out["pillar_coords"][:, 0] * nx + out["pillar_coords"][:, 1]
    assert keys.tolist() == list(expected)
    assert out["pillar_num_points"].tolist() == [len(v) for v in expected.values()]
    assert out["pillars"].shape == (len(expected), sampling["max_points_per_pillar"], len(POINT_FEATURES))
    for p, members in enumerate(expected.values()):
        kept = points[members].astype(np.float64)
        got = out["pillars"][p]
        np.testing.assert_allclose(got[:len(members), :4], kept, rtol=0, atol=1e-6)
        np.testing.assert_allclose(got[:len(members), 4:7], kept[:, :3] - kept[:, :3].mean(0), atol=1e-5)
        iy, ix = out["pillar_coords"][p]
        centre = np.array([-4.0 + ix + 0.5, -3.0 + iy + 0.5, 0.0])
        np.testing.assert_allclose(got[:len(members), 7:10], kept[:, :3] - centre, atol=1e-5)
        assert not got[len(members):].any()  # padding slots are zero


def test_caps_are_respected_and_outside_points_dropped() -> None:
    sampling = {**SMALL_GRID, "max_points_per_pillar": 3, "max_pillars": 10}
    out = detection_features(random_points(2000, seed=1, spread_m=8.0), sampling, intensity_max=1.0)
    assert len(out["pillar_coords"]) == 10
    assert (out["pillar_num_points"] <= 3).all() and (out["pillar_num_points"] >= 1).all()
    xyz = out["pillars"][..., :3][np.arange(3)[None] < out["pillar_num_points"][:, None]]
    assert (xyz >= [-4, -3, -2]).all() and (xyz < [4, 3, 2]).all()


def test_points_outside_the_range_never_make_a_pillar() -> None:
    inside = np.array([[0.5, 0.5, 0.0, 0.5]], dtype=np.float32)
    outside = np.array([[4.0, 0.0, 0.0, 1], [0, -3.01, 0, 1], [0, 0, 2.0, 1], [np.nan, 0, 0, 1]], dtype=np.float32)
    out = detection_features(np.concatenate([outside, inside]), SMALL_GRID, intensity_max=1.0)
    assert out["pillar_coords"].tolist() == [[3, 4]]
    assert out["pillar_num_points"].tolist() == [1]
    empty = detection_features(outside, SMALL_GRID)
    assert empty["pillars"].shape == (0, 5, len(POINT_FEATURES)) and empty["pillar_coords"].shape == (0, 2)


def test_pillarisation_is_deterministic_and_order_free_without_point_caps() -> None:
    sampling = {**SMALL_GRID, "max_points_per_pillar": 600}
    points = random_points(500, seed=2)
    first, again = detection_features(points, sampling), detection_features(points.copy(), sampling)
    for name in first:
        assert first[name].tobytes() == again[name].tobytes()
    shuffled = detection_features(points[np.random.default_rng(0).permutation(len(points))], sampling)
    assert np.array_equal(first["pillar_coords"], shuffled["pillar_coords"])
    assert np.array_equal(first["pillar_num_points"], shuffled["pillar_num_points"])
    for p, n in enumerate(first["pillar_num_points"]):
        a = first["pillars"][p, :n]
        b = shuffled["pillars"][p, :n]
        np.testing.assert_allclose(a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])], atol=1e-5)


def test_intensity_is_normalised_by_the_documented_rule() -> None:
    assert intensity_max_for("kitti") == 1.0
    assert intensity_max_for("nuscenes") == 255.0
    assert intensity_max_for("av2", {"intensity": "0-255"}) == 255.0
    assert intensity_max_for("anything", {"intensity": "reflectance [0, 1]"}) == 1.0
    assert intensity_max_for("synthetic") is None
    raw = np.array([[0.1, 0.1, 0.0, 51.0], [1.1, 0.1, 0.0, 300.0]], dtype=np.float32)
    by_rule = detection_features(raw, SMALL_GRID)["pillars"][:, 0, 3]  # sweep max > 1: a 0-255 sweep
    np.testing.assert_allclose(by_rule, [0.2, 1.0])
    reflectance = raw.copy()
    reflectance[:, 3] = [0.25, 0.75]
    np.testing.assert_allclose(detection_features(reflectance, SMALL_GRID)["pillars"][:, 0, 3], [0.25, 0.75])
    np.testing.assert_allclose(detection_features(raw, SMALL_GRID, intensity_max=255.0)["pillars"][:, 0, 3],
                               [0.2, 1.0])


@pytest.mark.parametrize("sampling, message", [
    ({**SMALL_GRID, "point_cloud_range_m": [-4, -3, -2, 4.5, 3, 2]}, "whole number of pillars"),
    ({**SMALL_GRID, "voxel_size_m": [1, 0, 4]}, "positive"),
    ({"voxel_size_m": [1, 1, 4]}, "point_cloud_range_m is missing"),
    ({**SMALL_GRID, "max_pillars": 0}, "max_pillars"),
])
def test_bad_detection_sampling_is_refused(sampling: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        detection_features(random_points(10), sampling)


def test_points_of_the_wrong_shape_are_refused() -> None:
    with pytest.raises(BadInput, match=r"\(M, 4\)"):
        detection_features(np.zeros((5, 3), np.float32), SMALL_GRID)


def test_detection_targets_keep_known_classes_inside_the_range() -> None:
    boxes = np.array([[0, 0, 0, 4, 2, 1.5, 0.1], [3.9, 2.9, 0, 1, 1, 1, 0], [4.0, 0, 0, 4, 2, 1.5, 0],
                      [1, 1, 0, 1, 1, 1, 0], [-1, -2, 0, 0.6, 0.6, 1.7, 0]])
    classes = ["vehicle", "cyclist", "vehicle", "static", "pedestrian"]
    out = detection_targets(boxes, classes, SMALL_GRID)
    assert out["labels"].tolist() == [DETECTION_CLASSES.index(c) for c in ("vehicle", "cyclist", "pedestrian")]
    np.testing.assert_allclose(out["boxes"], boxes[[0, 1, 4]].astype(np.float32))
    assert detection_targets(np.zeros((0, 7)), [], SMALL_GRID)["boxes"].shape == (0, 7)
    with pytest.raises(BadInput, match="class names"):
        detection_targets(boxes, classes[:2], SMALL_GRID)


# ----- prediction ---------------------------------------------------------------------------------
def walker_north(start_xy: tuple[float, float] = (3.0, -2.0), speed_mps: float = 1.2) -> tuple[np.ndarray, np.ndarray]:
    step = np.arange(-7, 13)[:, None] * 0.4 * speed_mps
    track = np.asarray(start_xy) + step * np.array([0.0, 1.0])
    return track[:8], track[8:]


@pytest.mark.parametrize("heading", [np.pi / 2, None])
def test_a_walker_heading_north_walks_along_plus_x(heading: float | None) -> None:
    history, future = walker_north()
    out = prediction_features(history, heading, np.zeros((0, 8, 2)), np.zeros((0, 8), bool), PREDICTION, future)
    step_m = 0.4 * 1.2
    np.testing.assert_allclose(out["history"][:, 0], np.arange(-7, 1) * step_m, atol=1e-5)
    np.testing.assert_allclose(out["history"][:, 1], 0.0, atol=1e-5)
    np.testing.assert_allclose(out["history"][1:, 2], step_m, atol=1e-5)  # displacement dx
    assert out["history"][0, 2] == 0.0  # no step before the first
    np.testing.assert_allclose(out["future"][:, 0], np.arange(1, 13) * step_m, atol=1e-5)
    assert out["history_mask"].all() and out["future_mask"].all()
    np.testing.assert_allclose(out["origin"], [3.0, -2.0 + 0 * step_m, np.pi / 2], atol=1e-9)
    np.testing.assert_allclose(agent_to_world(out["future"], out["origin"]), future, atol=1e-5)


def scene(seed: int = 0) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    history = np.cumsum(rng.normal(0.4, 0.1, (8, 2)), axis=0) + [10.0, -5.0]
    future = history[-1] + np.cumsum(rng.normal(0.4, 0.1, (12, 2)), axis=0)
    neighbours = rng.uniform(-15, 25, (6, 8, 2))
    mask = rng.random((6, 8)) > 0.2
    return history, 0.7, neighbours, mask, future


def test_agent_frame_features_are_invariant_to_moving_the_world() -> None:
    history, heading, neighbours, mask, future = scene()
    angle, shift = 1.9, np.array([-300.0, 1200.0])
    c, s = np.cos(angle), np.sin(angle)

    def move(xy: np.ndarray) -> np.ndarray:
        return xy @ np.array([[c, s], [-s, c]]) + shift

    base = prediction_features(history, heading, neighbours, mask, PREDICTION, future)
    moved = prediction_features(move(history), heading + angle, move(neighbours), mask, PREDICTION, move(future))
    for name in ("history", "neighbours", "future"):
        np.testing.assert_allclose(base[name], moved[name], atol=2e-4)
    for name in ("history_mask", "neighbours_mask", "future_mask"):
        assert np.array_equal(base[name], moved[name])
    np.testing.assert_allclose(agent_to_world(moved["future"], moved["origin"]), move(future), atol=1e-3)


def test_neighbours_are_nearest_first_capped_and_padded() -> None:
    history, _, _, _, future = scene()
    t0 = history[-1]
    offsets = np.array([[9.0, 0], [2.0, 0], [0, 5.0], [30.0, 0], [1.0, 1.0]])
    neighbours = np.repeat((t0 + offsets)[:, None], 8, axis=1)
    mask = np.ones((5, 8), bool)
    mask[2, -1] = False  # absent at t0: ranked by its last observed position (5 m away)
    mask[4] = False  # never observed: not a neighbour at all
    out = prediction_features(history, 0.0, neighbours, mask, PREDICTION, future)
    assert out["neighbours"].shape == (3, 8, 4) and out["neighbours_mask"].shape == (3, 8)
    last = out["neighbours"][:, -2, :2]
    np.testing.assert_allclose(last, offsets[[1, 2, 0]], atol=1e-6)
    assert not out["neighbours_mask"][1, -1] and out["neighbours_mask"][1, :-1].all()
    assert not out["neighbours"][1, -1].any()
    few = prediction_features(history, 0.0, neighbours[:1], mask[:1], PREDICTION, future)
    assert few["neighbours_mask"][0].all() and not few["neighbours_mask"][1:].any()
    assert not few["neighbours"][1:].any()


def test_missing_history_steps_are_masked_and_break_displacements() -> None:
    history, future = walker_north()
    history[2] = np.nan
    future[-1] = np.nan
    out = prediction_features(history, np.pi / 2, np.zeros((0, 8, 2)), np.zeros((0, 8), bool), PREDICTION, future)
    assert out["history_mask"].tolist() == [True, True, False, True, True, True, True, True]
    assert not out["history"][2].any() and not out["history"][3, 2:].any()
    assert out["future_mask"][-1] == np.False_ and not out["future"][-1].any()


def test_batch_and_single_agent_transforms_agree() -> None:
    agents = [scene(seed) for seed in range(3)]
    batch = prediction_features_batch(np.stack([a[0] for a in agents]), np.array([a[1] for a in agents]),
                                      np.stack([a[2] for a in agents]), np.stack([a[3] for a in agents]),
                                      PREDICTION, np.stack([a[4] for a in agents]))
    for i, agent in enumerate(agents):
        single = prediction_features(*agent[:4], PREDICTION, agent[4])
        for name, value in single.items():
            assert np.array_equal(batch[name][i], value), name


def test_prediction_inputs_are_checked() -> None:
    history, heading, neighbours, mask, future = scene()
    unseen = history.copy()
    unseen[-1] = np.nan
    with pytest.raises(BadInput, match="not observed at t0"):
        prediction_features(unseen, heading, neighbours, mask, PREDICTION, future)
    with pytest.raises(BadInput, match="history_steps=8"):
        prediction_features(history[1:], heading, neighbours[:, 1:], mask[:, 1:], PREDICTION, future)
    with pytest.raises(BadInput, match="horizon_steps=12"):
        prediction_features(history, heading, neighbours, mask, PREDICTION, future[:3])
    with pytest.raises(BadInput, match="step_s"):
        prediction_features(history, heading, neighbours, mask, {**PREDICTION, "step_s": 0}, future)


def test_no_agent_cap_still_gives_fixed_neighbour_slots() -> None:
    history, heading, neighbours, mask, future = scene()
    out = prediction_features(history, heading, neighbours, mask, {**PREDICTION, "max_agents_per_frame": None})
    assert out["neighbours"].shape == (features.NEIGHBOUR_SLOTS, 8, 4) and "future" not in out


# ----- parity -------------------------------------------------------------------------------------
def test_the_transform_record_is_the_module_source_and_its_params() -> None:
    record = transform_record("detection", {**SMALL_GRID, "stride": 3})
    source = Path(features.__file__).read_text()
    assert record["name"] == "detection_features"
    assert record["code_hash"] == hashlib.sha256(source.encode()).hexdigest()
    assert record["params"] == {"point_cloud_range_m": [-4.0, -3.0, -2.0, 4.0, 3.0, 2.0],
                                "voxel_size_m": [1.0, 1.0, 4.0], "max_points_per_pillar": 5, "max_pillars": 1000}
    assert transform_record("prediction", PREDICTION)["params"] == {
        "step_s": 0.4, "history_steps": 8, "horizon_steps": 12, "max_agents_per_frame": 3}


def test_parity_passes_for_the_same_code_and_params() -> None:
    recorded = transform_record("prediction", PREDICTION)
    check_parity(recorded, "prediction", dict(PREDICTION))
    check_parity({**recorded, "params": {**recorded["params"], "step_s": 0.4}}, "prediction", PREDICTION)


def test_parity_fails_for_a_tampered_hash_naming_both_hashes() -> None:
    recorded = transform_record("detection", SMALL_GRID)
    tampered = {**recorded, "code_hash": "0" * 64}
    with pytest.raises(BadInput) as error:
        check_parity(tampered, "detection", SMALL_GRID)
    message = str(error.value)
    assert "0" * 64 in message and recorded["code_hash"] in message
    assert "rebuild the dataset" in message.lower() and "retrain" in message


def test_parity_fails_for_other_params_task_or_a_broken_record() -> None:
    recorded = transform_record("detection", SMALL_GRID)
    with pytest.raises(BadInput, match="params"):
        check_parity(recorded, "detection", {**SMALL_GRID, "voxel_size_m": [0.5, 0.5, 4.0]})
    with pytest.raises(BadInput, match="prediction"):
        check_parity(recorded, "prediction", PREDICTION)
    with pytest.raises(BadInput, match="code_hash"):
        check_parity({"name": "detection_features"}, "detection", SMALL_GRID)
    with pytest.raises(BadInput, match="unknown task"):
        transform_record("planning", {})

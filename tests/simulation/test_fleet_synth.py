"""Synthetic logs end to end: determinism, label errors, behaviours, meta, and the catalog round trip."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios import Catalog
from andon.scenarios.integrity import validate_catalog
from andon.scenarios.transforms import world_to_ego_xy
from andon.simulation.fleet import behaviours
from andon.simulation.fleet.config import FleetConfig
from andon.simulation.fleet.labels import FrameLabels
from andon.simulation.fleet.lidar import raycast_sweep
from andon.simulation.fleet.scene import StaticScene
from andon.simulation.fleet.synth import SOURCE, fleet_seeds, synthesize_fleet, synthesize_log
from andon.simulation.fleet.world import simulate, streams
from andon.simulation.ground_truth import BEHAVIOUR_TAGS, LABEL_ERROR_KINDS, FleetGroundTruth
from tests.simulation._fleet import NO_LIDAR, SMALL_LIDAR


def _frame_arrays(log):
    return [(f.timestamp_ns, f.ego_pose, f.boxes, f.classes, f.track_ids, f.points, f.velocities_mps) for f in log.frames]


def test_same_seed_gives_identical_logs_and_other_seeds_differ():
    first, second = synthesize_log(7, 1.5, SMALL_LIDAR), synthesize_log(7, 1.5, SMALL_LIDAR)
    assert first.name == second.name and first.source == SOURCE
    for a, b in zip(_frame_arrays(first), _frame_arrays(second), strict=True):
        assert a[0] == b[0] and a[1] == b[1] and a[3] == b[3] and a[4] == b[4]
        for x, y in ((a[2], b[2]), (a[5], b[5]), (a[6], b[6])):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    assert json.dumps(first.meta, sort_keys=True) == json.dumps(second.meta, sort_keys=True)
    other = synthesize_log(8, 1.5, SMALL_LIDAR)
    assert other.frames[0].ego_pose != first.frames[0].ego_pose
    assert other.frames[0].points.tobytes() != first.frames[0].points.tobytes()


def test_frames_follow_the_contract():
    log = synthesize_log(3, 2.0, SMALL_LIDAR)
    assert len(log.frames) == 20
    stamps = np.array([f.timestamp_ns for f in log.frames])
    assert np.all(np.diff(stamps) == 100_000_000)
    for frame in log.frames:
        assert frame.boxes.dtype == np.float64 and frame.boxes.shape == (len(frame.classes), 7)
        assert frame.points.dtype == np.float32 and frame.points.shape[1] == 4
        assert frame.velocities_mps.shape == (len(frame.classes), 2)
        assert set(frame.classes) <= {"vehicle", "pedestrian", "cyclist", "static"}
        assert np.all(np.abs(frame.boxes[:, 6]) <= np.pi)
        assert np.all(np.hypot(frame.boxes[:, 0], frame.boxes[:, 1]) <= 80.0 + 2.0)  # jitter may push past 80 m
        assert frame.ego_pose[2] == 0.0
        assert "ego" not in frame.track_ids


def test_lidar_every_n_frames_leaves_the_other_frames_without_points():
    every = synthesize_log(3, 1.0, replace(SMALL_LIDAR, lidar_every_n_frames=5))
    full = synthesize_log(3, 1.0, SMALL_LIDAR)
    assert [f.points is not None for f in every.frames] == [i % 5 == 0 for i in range(10)]
    assert every.frames[0].points.tobytes() == full.frames[0].points.tobytes()


def test_label_errors_are_exactly_what_differs_from_the_true_labels():
    truth = synthesize_log(11, 4.0, replace(NO_LIDAR, label_error_rate=0.0))
    noisy = synthesize_log(11, 4.0, replace(NO_LIDAR, label_error_rate=0.3))
    assert [f.ego_pose for f in truth.frames] == [f.ego_pose for f in noisy.frames]  # same drive
    recorded = {(e.frame_index, e.track_id): e for e in FleetGroundTruth.of(noisy.meta).label_errors}
    assert FleetGroundTruth.of(truth.meta).label_errors == ()
    assert {e.kind for e in recorded.values()} == set(LABEL_ERROR_KINDS)
    found = {}
    for index, (t, n) in enumerate(zip(truth.frames, noisy.frames, strict=True)):
        rows = {tid: k for k, tid in enumerate(n.track_ids)}
        for k, tid in enumerate(t.track_ids):
            if tid not in rows:
                found[(index, tid)] = "missing"
                continue
            j = rows[tid]
            if n.classes[j] != t.classes[k]:
                found[(index, tid)] = "class_swap"
            elif np.any(n.boxes[j, 3:6] != t.boxes[k, 3:6]):
                found[(index, tid)] = "size"
                ratio = n.boxes[j, 3:6] / t.boxes[k, 3:6]
                assert np.allclose(ratio, ratio[0]) and (1.3 <= ratio[0] <= 1.8 or 0.5 <= ratio[0] <= 0.75)
            elif np.any(n.boxes[j] != t.boxes[k]):
                found[(index, tid)] = "jitter"
                assert 0.5 - 1e-9 <= np.hypot(*(n.boxes[j, :2] - t.boxes[k, :2])) <= 2.0 + 1e-9
        assert set(n.track_ids) <= set(t.track_ids)
    assert found == {key: e.kind for key, e in recorded.items()}
    for (index, _), error in recorded.items():
        assert error.timestamp_ns == noisy.frames[index].timestamp_ns


def test_velocities_are_ground_velocities_in_ego_axes():
    drive = simulate(5, 2.0, NO_LIDAR)
    log = synthesize_log(5, 2.0, replace(NO_LIDAR, label_error_rate=0.0))
    ids = list(drive.population.track_ids)
    a, b = log.frames[5], log.frames[6]
    common = sorted(set(a.track_ids) & set(b.track_ids))
    assert len(common) > 5
    for tid in common:
        agent = ids.index(tid)
        step_world = drive.boxes_world[6, agent, :2] - drive.boxes_world[5, agent, :2]
        yaw = a.ego_pose[3]
        step_ego = world_to_ego_xy(step_world[None], np.zeros(2), yaw)[0]
        got = a.velocities_mps[a.track_ids.index(tid)]
        assert np.allclose(got * 0.1, step_ego, atol=0.05)


def test_every_behaviour_appears_in_a_ten_log_fleet_of_short_logs():
    counts: Counter[str] = Counter()
    for seed in fleet_seeds(0, 10):
        gt = FleetGroundTruth.of(synthesize_log(seed, 8.0, NO_LIDAR).meta)
        counts.update({b.tag for b in gt.behaviours})
        for event in gt.behaviours:
            assert event.tag in BEHAVIOUR_TAGS and event.t_start_ns <= event.t_end_ns
    assert set(counts) == set(BEHAVIOUR_TAGS), counts
    assert min(counts.values()) >= 2, counts


def test_behaviours_are_recovered_from_the_stored_labels_poses_and_map(workspace):
    catalog = Catalog(workspace)
    config = replace(NO_LIDAR, label_error_rate=0.0)
    ids = synthesize_fleet(catalog, 3, seed=4, duration_s=6.0, config=config)
    for log_id in ids:
        log = catalog.log(log_id)
        gt = FleetGroundTruth.of(log.meta)
        frames = list(log.frames)
        labels = [FrameLabels(f.boxes, f.velocities_mps, f.classes, f.track_ids) for f in frames]
        stamps = np.array([f.timestamp_ns for f in frames])
        poses = np.array([f.ego_pose for f in frames])
        recovered = behaviours.detect(stamps, poses, labels, log.road_map, (), log.meta["conditions"]["night"])
        assert recovered == tuple(b for b in gt.behaviours if b.tag != "cut_in")


def test_cut_in_window_shows_in_the_labels():
    # Fleet 0's logs 0 and 3 start on the open road (scripts.draw_script): both script a cut-in.
    log = synthesize_log(3, 8.0, replace(NO_LIDAR, label_error_rate=0.0))
    (event,) = [b for b in FleetGroundTruth.of(log.meta).behaviours if b.tag == "cut_in"]
    (track,) = event.track_ids
    lateral = {f.timestamp_ns: abs(f.boxes[f.track_ids.index(track), 1]) for f in log.frames if track in f.track_ids}
    assert lateral[event.t_start_ns] == pytest.approx(3.75, abs=0.01)
    assert lateral[event.t_end_ns] == pytest.approx(0.0, abs=0.01)
    inside = [v for t, v in lateral.items() if event.t_start_ns < t < event.t_end_ns]
    assert inside and all(0.0 < v < 3.75 for v in inside) and inside == sorted(inside, reverse=True)


def test_meta_records_scene_conditions_and_fleet():
    log = synthesize_log(2, 1.0, NO_LIDAR)
    meta = json.loads(json.dumps(log.meta))  # JSON-able as is
    scene = StaticScene.from_meta(meta["scene"])
    assert scene.boxes_m.shape[1] == 7 and len(scene.boxes_m) > 20
    assert meta["conditions"] == meta["ground_truth"]["conditions"]
    assert meta["fleet"]["seed"] == 2 and meta["fleet"]["config"] == NO_LIDAR.to_dict()
    assert log.road_map is not None and any(lane.is_intersection for lane in log.road_map.lanes)


def test_the_recorded_scene_re_ray_casts_the_logged_sweep():
    log = synthesize_log(6, 0.5, SMALL_LIDAR)
    drive = simulate(6, 0.5, SMALL_LIDAR)
    scene = StaticScene.from_meta(json.loads(json.dumps(log.meta["scene"])))
    agents = drive.boxes_world[0, 1:]
    points = raycast_sweep(scene.boxes_m, agents, np.array(log.frames[0].ego_pose), SMALL_LIDAR, streams(6)["lidar"],
                           scene_reflectivity=scene.reflectivity, agent_reflectivity=drive.population.reflectivity[1:],
                           **log.meta["conditions"])
    assert points.tobytes() == log.frames[0].points.tobytes()


def test_fleet_in_the_catalog_round_trips_and_validates(workspace):
    catalog = Catalog(workspace)
    ids = synthesize_fleet(catalog, 2, seed=9, duration_s=1.0, config=SMALL_LIDAR)
    assert len(set(ids)) == 2 and sorted(ids) == catalog.logs(source=SOURCE)
    assert synthesize_fleet(catalog, 2, seed=9, duration_s=1.0, config=SMALL_LIDAR) == ids
    stored = catalog.log(ids[0])
    original = synthesize_log(fleet_seeds(9, 1)[0], 1.0, SMALL_LIDAR)
    assert stored.name == original.name and stored.source == SOURCE
    for got, want in zip(stored.frames, original.frames, strict=True):
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.points, want.points)
        np.testing.assert_array_equal(got.velocities_mps, want.velocities_mps)
        assert got.ego_pose == want.ego_pose and got.track_ids == want.track_ids
    assert FleetGroundTruth.of(stored.meta) == FleetGroundTruth.of(original.meta)
    assert len(stored.road_map.lanes) == len(original.road_map.lanes)
    assert {s.log_id for s in catalog.search("source:synthetic")} == set(ids)
    assert validate_catalog(catalog)["problems"] == []


def test_bad_input_is_refused_with_the_value():
    with pytest.raises(BadInput, match="-1"):
        synthesize_log(-1, 1.0, NO_LIDAR)
    with pytest.raises(BadInput, match="duration"):
        synthesize_log(1, 0.0, NO_LIDAR)
    with pytest.raises(BadInput, match="dropout_rate=2"):
        FleetConfig(dropout_rate=2)
    with pytest.raises(BadInput, match="lidar_beams"):
        FleetConfig(lidar_beams=0)
    with pytest.raises(BadInput, match="red_light_start_probability"):
        FleetConfig(cut_in_probability=0.8, red_light_start_probability=0.5)
    with pytest.raises(BadInput, match="unknown fleet config keys"):
        FleetConfig.from_dict({"beams": 3})
    with pytest.raises(BadInput, match="number of logs 0"):
        synthesize_fleet(None, 0, seed=1)

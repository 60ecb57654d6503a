"""The fleet's world: roads and map, lights, agents' motion, scripts and behaviour definitions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from andon.scenarios.records import RoadMap
from andon.simulation.fleet.agents import (
    CYCLIST,
    PEDESTRIAN,
    VEHICLE,
    Population,
    initial_state,
    kinematics,
    step,
)
from andon.simulation.fleet.behaviours import detect, ego_speed_mps, junction_boxes, points_in_polygon, runs
from andon.simulation.fleet.config import FleetConfig
from andon.simulation.fleet.labels import FrameLabels
from andon.simulation.fleet.paths import build_paths, trace_route
from andon.simulation.fleet.roads import JUNCTION_HALF_M, LANE_OFFSETS_M, build_network
from andon.simulation.fleet.scripts import OPEN_ROAD, RED_LIGHT, draw_script
from andon.simulation.fleet.signals import GREEN, RED, YELLOW, draw_plan
from andon.simulation.fleet.synth import fleet_seeds
from andon.simulation.fleet.world import simulate
from tests.simulation._fleet import NO_LIDAR

NET = build_network(3, 120.0, 250.0, 19.0, 12.0)


def test_road_map_lanes_lights_and_crosswalks():
    road_map = NET.road_map()
    assert RoadMap.from_dict(road_map.to_dict()).to_dict() == road_map.to_dict()
    lanes = {lane.lane_id: lane for lane in road_map.lanes}
    assert sum(lane.is_intersection for lane in road_map.lanes) == 9 * 4 * 3  # 2 straight + 1 right per approach
    assert len(road_map.traffic_lights) == 9 * 4 and len(road_map.crosswalks) == 9 * 4
    nodes = NET.nodes_xy()
    for light in road_map.traffic_lights:
        assert len(light.lane_ids) == 2
        for lane_id in light.lane_ids:
            end = lanes[lane_id].centerline_m[-1]
            # Governed lanes end at a stop line: the edge of a junction box.
            assert np.isclose(np.min(np.max(np.abs(nodes - end), axis=1)), JUNCTION_HALF_M)
    boxes = junction_boxes(road_map)
    assert len(boxes) == 9 and np.allclose(boxes[:, 2:] - boxes[:, :2], 2 * JUNCTION_HALF_M)


def test_two_phase_lights_never_give_both_axes_green():
    plan = draw_plan(8.0, 16.0, np.zeros((9, 2), dtype=bool), 1.0, 3.0, 2.0, np.random.default_rng(0))
    states = np.array([plan.states(t) for t in np.arange(0.0, 120.0, 0.1)]).reshape(-1, 9, 2)
    assert not np.any((states[..., 0] != RED) & (states[..., 1] != RED))
    assert {GREEN, YELLOW, RED} <= set(np.unique(states))
    shifted = plan.turning_red_at(4, 1, 10.0)
    assert shifted.states(9.95)[9] == YELLOW and shifted.states(10.05)[9] == RED


def _one_lane_population(starts_m, kinds=(VEHICLE, VEHICLE)) -> Population:
    road = NET.row(1)
    routes = [trace_route(NET, road, 0, a, LANE_OFFSETS_M[0], 200.0, np.inf, 0.0, JUNCTION_HALF_M,
                          np.random.default_rng(0)) for a in starts_m]
    n = len(routes)
    ones = np.ones(n)
    stop_s = np.array([r.stop_s_m for r in routes])
    return Population(kind=np.asarray(kinds), size_m=np.tile([4.5, 1.9, 1.6], (n, 1)), reflectivity=ones * 0.5,
                      desired_mps=ones * 15.0, accel_mps2=ones * 1.5, brake_mps2=ones * 2.5, headway_s=ones * 1.2,
                      min_gap_m=ones * 2.0, paths=build_paths(routes), stop_s_m=stop_s,
                      stop_signal=np.array([r.stop_signal for r in routes]), track_ids=tuple(f"t{k}" for k in range(n)))


def test_vehicles_stop_at_red_go_on_green_and_keep_their_distance():
    population = _one_lane_population([40.0, 10.0])  # two vehicles heading east towards junction (1, 1)
    state = initial_state(population, np.zeros(2), np.array([12.0, 14.0]), 0.0, 3.0)
    signal = int(population.stop_signal[0, 0])
    stop_line = population.stop_s_m[0, 0]
    red = np.full(18, GREEN, dtype=np.int8)
    red[signal] = RED
    gaps = []
    for _ in range(300):  # 30 s of red
        state = step(population, state, red, 0.1)
        x = kinematics(population, state).xy_m[:, 0]  # both drive east on one lane
        gaps.append(x[0] - x[1] - 4.5)
    assert state.s_m[0] + 2.25 <= stop_line and state.v_mps[0] == pytest.approx(0.0, abs=1e-6)
    assert min(gaps) > 1.0  # the follower never reaches the leader
    green = np.full(18, GREEN, dtype=np.int8)
    for _ in range(100):
        state = step(population, state, green, 0.1)
    assert state.s_m[0] > stop_line + 20.0 and state.v_mps[0] > 5.0


def test_agents_kinematics_match_their_motion():
    drive = simulate(1, 3.0, NO_LIDAR)
    moving = np.isin(drive.population.kind, (VEHICLE, CYCLIST, PEDESTRIAN))
    step_m = np.linalg.norm(np.diff(drive.boxes_world[:, :, :2], axis=0), axis=2)  # (F - 1, N)
    speed = np.linalg.norm(drive.velocity_world_mps[:-1], axis=2)
    assert np.allclose(step_m[:, moving], 0.1 * speed[:, moving], atol=0.06)
    assert np.all(step_m[:, ~moving] == 0.0)
    assert np.all(drive.boxes_world[..., 2] == 0.5 * drive.boxes_world[..., 5])


def test_kinematics_of_a_lane_change_follow_a_raised_cosine():
    population = _one_lane_population([40.0], kinds=(VEHICLE,))
    state = initial_state(population, np.zeros(1), np.array([10.0]), 0.0, 3.0)
    state = replace(state, lane_change_start_s=np.zeros(1), lane_change_m=np.array([3.75]))  # to the left
    lateral = []
    for _ in range(31):
        lateral.append(kinematics(population, state).xy_m[0, 1] - (120.0 - LANE_OFFSETS_M[0]))
        state = step(population, state, np.full(18, GREEN, dtype=np.int8), 0.1)
    assert lateral[0] == pytest.approx(0.0) and lateral[-1] == pytest.approx(3.75)
    assert np.all(np.diff(lateral) >= 0) and lateral[15] == pytest.approx(3.75 / 2, abs=0.01)


def test_scripts_spread_over_consecutive_seeds():
    config = FleetConfig()
    scripts = [draw_script(seed, config) for seed in fleet_seeds(3, 100)]
    assert sum(s.start == OPEN_ROAD for s in scripts) / 100 == pytest.approx(config.cut_in_probability, abs=0.05)
    assert sum(s.start == RED_LIGHT for s in scripts) / 100 == pytest.approx(config.red_light_start_probability,
                                                                              abs=0.05)
    assert sum(s.night for s in scripts) / 100 == pytest.approx(config.night_probability, abs=0.05)
    assert sum(s.heavy_traffic for s in scripts) / 100 == pytest.approx(config.heavy_traffic_probability, abs=0.05)
    assert all(s.arterial for s in scripts if s.start == OPEN_ROAD)
    first_ten = [s.start for s in scripts[:10]]
    assert {OPEN_ROAD, RED_LIGHT} <= set(first_ten)


def test_a_red_light_start_waits_at_its_stop_line():
    seed = next(s for s in fleet_seeds(0, 20) if draw_script(s, NO_LIDAR).start == RED_LIGHT)
    drive = simulate(seed, 3.0, NO_LIDAR)
    speed = ego_speed_mps(drive.timestamps_ns, drive.ego_poses)
    assert np.all(speed < 0.5)


def test_definition_helpers():
    assert runs(np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=bool)) == [(1, 2), (4, 4), (7, 7)]
    assert runs(np.zeros(3, dtype=bool)) == []
    square = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0]])
    inside = points_in_polygon(np.array([[1.0, 0.5], [2.0, 0.5], [2.1, 0.5], [0.0, 0.0], [-1.0, 0.5]]), square)
    assert inside.tolist() == [True, True, False, True, False]
    stamps = np.arange(4) * 100_000_000
    poses = np.array([[0.0, 0, 0, 0], [1.0, 0, 0, 0], [3.0, 0, 0, 0], [6.0, 0, 0, 0]])
    assert np.allclose(ego_speed_mps(stamps, poses), [10.0, 15.0, 25.0, 30.0])


def test_detect_on_hand_made_labels():
    n = 25
    stamps = np.arange(n, dtype=np.int64) * 100_000_000
    poses = np.zeros((n, 4))  # standing still at the origin: stationary for 2.5 s
    frames = []
    for k in range(n):
        boxes = [[9.0, 0.0, 0.9, 0.6, 0.6, 1.8, 0.0]] if k < 3 else []  # a pedestrian within 10 m, then gone
        classes, ids = (["pedestrian"], ["p"]) if k < 3 else ([], [])
        if 5 <= k <= 9:  # eight vehicles within 30 m
            boxes += [[5.0 + 3 * i, 8.0, 0.8, 4.5, 1.9, 1.6, 0.0] for i in range(8)]
            classes += ["vehicle"] * 8
            ids += [f"v{i}" for i in range(8)]
        boxes = np.asarray(boxes, dtype=float).reshape(-1, 7)
        frames.append(FrameLabels(boxes, np.zeros((len(boxes), 2)), classes, ids))
    events = {(e.tag, e.t_start_ns, e.t_end_ns, e.track_ids) for e in detect(stamps, poses, frames, RoadMap(), (), True)}
    assert events == {("stationary", 0, int(stamps[-1]), ()), ("night", 0, int(stamps[-1]), ()),
                      ("vru_near", 0, int(stamps[2]), ("p",)), ("dense_traffic", int(stamps[5]), int(stamps[9]), ())}
    short = detect(stamps[:19], poses[:19], frames[:19], RoadMap(), (), False)
    assert "stationary" not in {e.tag for e in short}  # 19 frames: under 2 s

"""The planner in crafted situations, and the route geometry under it."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from andon.errors import BadInput
from andon.hydra_app import register_configs
from andon.models.planner import Planner, PlannerConfig, make_planner
from andon.models.route import Route, lanes_ahead, route_from_lanes, stop_lines
from andon.simulation.fleet.roads import LANE_WIDTH_M, build_network

STRAIGHT = Route.from_polyline(np.array([[0.0, 0.0], [1000.0, 0.0]]))
AGENT_STEP_S = 0.5


def prediction(start_xy: tuple[float, float], velocity_mps: tuple[float, float], horizon_s: float = 5.0) -> np.ndarray:
    """(1, S, 2) constant-velocity positions at 0, 0.5 s, ... horizon."""
    t = np.arange(int(horizon_s / AGENT_STEP_S) + 1) * AGENT_STEP_S
    return (np.asarray(start_xy) + t[:, None] * np.asarray(velocity_mps))[None]


def test_free_road_accelerates_to_the_target_speed() -> None:
    planner = Planner(PlannerConfig(desired_speed_mps=8.0, horizon_s=30.0))
    plan = planner.plan([0.0, 0.0], 0.0, 0.0, STRAIGHT)
    assert plan.speed_mps[0] == 0.0 and plan.speed_mps[-1] == pytest.approx(8.0, abs=0.05)
    assert np.all(np.diff(plan.speed_mps) >= -1e-9) and plan.accel_mps2.max() <= 1.5 + 1e-9
    assert plan.leader == -1 and not plan.stopping_for_light
    np.testing.assert_allclose(plan.xy_m[:, 1], 0.0, atol=1e-9)
    # Positions follow the speeds (trapezoid integration) along the route.
    np.testing.assert_allclose(np.diff(plan.xy_m[:, 0]), 0.05 * (plan.speed_mps[1:] + plan.speed_mps[:-1]), atol=1e-6)


def test_stopped_car_ahead_ego_stops_behind_it_with_the_min_gap() -> None:
    cfg = PlannerConfig(horizon_s=20.0)
    plan = Planner(cfg).plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, agents_xy_m=prediction((50.0, 0.2), (0.0, 0.0)),
                             agents_step_s=AGENT_STEP_S)
    gap = (50.0 - cfg.agent_length_m / 2) - (plan.station_m[-1] + cfg.ego_length_m / 2)
    assert plan.speed_mps[-1] < 0.05 and gap == pytest.approx(cfg.min_gap_m, abs=0.2)
    assert plan.leader == 0 and (plan.accel_mps2 >= -cfg.max_decel_mps2).all()


def test_slower_car_ahead_is_followed() -> None:
    plan = Planner(PlannerConfig(horizon_s=30.0)).plan(
        [0.0, 0.0], 0.0, 10.0, STRAIGHT, agents_xy_m=prediction((40.0, 0.0), (6.0, 0.0), horizon_s=30.0),
        agents_step_s=AGENT_STEP_S)
    assert plan.speed_mps[-1] == pytest.approx(6.0, abs=0.3)
    leader_x = 40.0 + 6.0 * plan.times_s
    assert np.all(leader_x - plan.station_m > 4.6)  # never closer than the two half lengths


def test_pedestrian_crossing_the_corridor_is_yielded_to() -> None:
    cfg = PlannerConfig()
    crossing = prediction((30.0, -6.0), (0.0, 1.4))  # inside the corridor from 2.2 s to 5 s, at x = 30 m
    planner = Planner(cfg)
    plan = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, agents_xy_m=crossing, agents_step_s=AGENT_STEP_S,
                        agents_length_m=0.5)
    free = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT)
    front = plan.station_m + cfg.ego_length_m / 2
    assert plan.leader == 0 and plan.speed_mps[-1] < free.speed_mps[-1] - 3.0
    assert front.max() < 30.0 - 0.25  # the ego never reaches the crossing point
    # Once the pedestrian has crossed, the road is free again.
    gone = prediction((30.0, 6.0), (0.0, 1.4))
    again = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, agents_xy_m=gone, agents_step_s=AGENT_STEP_S)
    np.testing.assert_allclose(again.speed_mps, free.speed_mps)


def test_car_in_the_adjacent_lane_does_not_brake_the_ego() -> None:
    planner = Planner()
    free = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT)
    beside = np.concatenate([prediction((20.0, LANE_WIDTH_M), (0.0, 0.0)),
                             prediction((5.0, -LANE_WIDTH_M), (3.0, 0.0))])
    plan = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, agents_xy_m=beside, agents_step_s=AGENT_STEP_S)
    np.testing.assert_allclose(plan.speed_mps, free.speed_mps)
    assert plan.leader == -1


def test_car_behind_and_unknown_positions_are_ignored() -> None:
    planner = Planner()
    free = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT)
    behind = prediction((-10.0, 0.0), (12.0, 0.0))[:, :2]  # behind the ego for the first steps
    unknown = np.full((1, 11, 2), np.nan)
    plan = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, agents_xy_m=np.concatenate([unknown, unknown]),
                        agents_step_s=AGENT_STEP_S)
    np.testing.assert_allclose(plan.speed_mps, free.speed_mps)
    assert planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, agents_xy_m=behind, agents_step_s=AGENT_STEP_S).leader == -1


def test_red_light_stops_at_the_line_and_yellow_only_when_comfortable() -> None:
    cfg = PlannerConfig(horizon_s=20.0)
    planner = Planner(cfg)
    plan = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, stop_lines_m=np.array([[60.0, 0.0]]))
    front = plan.station_m[-1] + cfg.ego_length_m / 2
    assert plan.stopping_for_light and plan.speed_mps[-1] < 0.05
    assert 60.0 - cfg.stop_line_margin_m - 0.5 < front <= 60.0 - cfg.stop_line_margin_m + 0.05
    # A yellow far enough ahead stops the ego; one too close to stop comfortably does not.
    assert planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, yellow_lines_m=np.array([[60.0, 0.0]])).stopping_for_light
    late = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, yellow_lines_m=np.array([[12.0, 0.0]]))
    assert not late.stopping_for_light and late.speed_mps.min() >= 10.0 - 1e-9
    # A stop line of another lane, or behind the ego, does not stop it.
    other = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, stop_lines_m=np.array([[60.0, 5.0], [-5.0, 0.0]]))
    assert not other.stopping_for_light


def test_the_plan_rejoins_the_route_from_an_offset() -> None:
    plan = Planner().plan([0.0, 1.0], 0.0, 5.0, STRAIGHT)
    assert plan.xy_m[0, 1] == pytest.approx(1.0) and abs(plan.xy_m[-1, 1]) < 0.01
    assert np.all(np.diff(plan.xy_m[:, 1]) < 0)


def test_plan_follows_a_map_route_through_junctions_and_stops_at_the_first_red() -> None:
    road_map = build_network(2, 120.0, 60.0, 15.0, 12.0).road_map()
    lane_ids = lanes_ahead(road_map, (-40.0, -5.625), 0.0, length_m=150.0)
    assert lane_ids[0].startswith("lane-") and lane_ids[1].startswith("int-")
    route = route_from_lanes(road_map, lane_ids)
    plan = Planner(PlannerConfig(horizon_s=5.0)).plan([-40.0, -5.625], 0.0, 10.0, route)
    assert np.abs(route.project(plan.xy_m).distance_m).max() < 1e-6
    light_states = {light.light_id: "red" for light in road_map.traffic_lights}
    lines = stop_lines(road_map, light_states, lane_ids)
    np.testing.assert_allclose(lines, [[-15.0, -5.625], [105.0, -5.625]])  # the stop lines of both junctions
    stop = Planner(PlannerConfig(horizon_s=15.0)).plan([-40.0, -5.625], 0.0, 10.0, route, stop_lines_m=lines)
    assert stop.speed_mps[-1] < 0.05 and stop.xy_m[-1, 0] + 2.3 < -15.0


def test_route_geometry() -> None:
    logged = np.column_stack([np.linspace(0, 100, 1001), np.zeros(1001)])
    route = Route.from_polyline(logged)
    assert len(route.points_m) == 2 and route.length_m == pytest.approx(100.0)  # merged: one segment
    bend = Route.from_polyline(np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]))
    projection = bend.project(np.array([[5.0, 1.0], [11.0, 5.0], [-3.0, -1.0], [10.0, 14.0]]))
    np.testing.assert_allclose(projection.station_m, [5.0, 15.0, -3.0, 24.0])
    np.testing.assert_allclose(projection.lateral_m, [1.0, -1.0, -1.0, 0.0])
    xy, direction = bend.at(np.array([5.0, 15.0, 25.0]))
    np.testing.assert_allclose(xy, [[5.0, 0.0], [10.0, 5.0], [10.0, 15.0]])
    np.testing.assert_allclose(direction[1], [0.0, 1.0])
    with pytest.raises(BadInput, match="two distinct points"):
        Route.from_polyline(np.array([[1.0, 1.0], [1.0, 1.0]]))


def test_route_shortcuts_agree_with_the_general_computation() -> None:
    """One point (the planner's ego) and one segment take Python floats; they give what the arrays give."""
    rng = np.random.default_rng(0)
    points = rng.uniform(-50, 50, (200, 2))
    for route in (STRAIGHT, Route.from_polyline(np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [30.0, 12.0]]))):
        whole = route.project(points)
        single = np.array([route.project_point(x, y) for x, y in points.tolist()])
        assert np.array_equal(single, np.column_stack([whole.station_m, whole.lateral_m, whole.distance_m]))
        stations = rng.uniform(-20, route.length_m + 20, 50)
        xy, direction, yaw = route.poses_at(stations)
        assert np.array_equal(yaw, np.arctan2(direction[:, 1], direction[:, 0]))
        assert all(np.array_equal(a, b) for a, b in zip(route.at(stations), (xy, direction), strict=True))


def test_a_window_past_the_end_of_a_short_route_projects_on_its_straight_continuation() -> None:
    bend = Route.from_polyline(np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]))
    projection = bend.project(np.array([[10.5, 40.0]]), 25.0, 60.0)  # beyond the last station (20 m)
    np.testing.assert_allclose([projection.station_m[0], projection.lateral_m[0]], [50.0, -0.5])
    plan = Planner().plan([10.0, 35.0], np.pi / 2, 5.0, bend)  # the ego 15 m past the route's end
    assert np.all(np.diff(plan.xy_m[:, 1]) > 0) and np.allclose(plan.xy_m[:, 0], 10.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ego_speed_mps": -1.0}, "ego_speed_mps"),
    ({"agents_xy_m": np.zeros((2, 3, 3))}, "agents_xy_m"),
    ({"agents_xy_m": np.zeros((2, 3, 2))}, "agents_step_s"),
])
def test_bad_input_names_the_value(kwargs: dict, message: str) -> None:
    args = {"ego_xy_m": [0.0, 0.0], "ego_yaw_rad": 0.0, "ego_speed_mps": 5.0, "route": STRAIGHT, **kwargs}
    with pytest.raises(BadInput, match=message):
        Planner().plan(**args)


def test_config_validation_and_yaml() -> None:
    with pytest.raises(BadInput, match="time_headway_s"):
        PlannerConfig(time_headway_s=0.0)
    with pytest.raises(BadInput, match="headway"):
        make_planner(headway=1.0)
    register_configs()
    with initialize_config_module(version_base="1.3", config_module="andon.configs"):
        cfg = compose(overrides=["+model=planner"])
    params = OmegaConf.to_container(cfg.model)
    params.pop("name")
    planner = instantiate(params)
    assert isinstance(planner, Planner) and planner.fingerprint_params() == PlannerConfig().__dict__


def test_a_faster_car_behind_in_the_lane_is_a_follower_not_an_obstacle() -> None:
    """Predicted to pass the ego's current spot, a car behind would otherwise make the ego brake for it."""
    planner = Planner(PlannerConfig(desired_speed_mps=10.0))
    behind = prediction((-8.0, 0.1), (15.0, 0.0))
    plan = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, agents_xy_m=behind, agents_step_s=AGENT_STEP_S)
    free = planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT)
    assert plan.leader == -1 and plan.accel_mps2.min() > -0.5
    np.testing.assert_allclose(plan.xy_m, free.xy_m)
    # The same car ahead of the ego's front is followed.
    ahead = prediction((12.0, 0.1), (3.0, 0.0))
    assert planner.plan([0.0, 0.0], 0.0, 10.0, STRAIGHT, agents_xy_m=ahead, agents_step_s=AGENT_STEP_S).leader == 0

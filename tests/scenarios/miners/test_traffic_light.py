"""traffic_light: a light's stop point ahead on the ego's lane within 40 m."""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners import traffic_light
from andon.scenarios.records import TrafficLight
from tests.scenarios.miners._logs import ego_from_speeds, make_log, ns, town_map

N = 101


def test_approaching_stopping_and_passing_a_light() -> None:
    # 5 m/s for 4 s (x 0 -> 20 m), waiting 3 s 40 m short of the stop line, then on through it at 20 m/s.
    speeds = np.r_[np.full(40, 5.0), np.zeros(30), np.full(31, 20.0)]
    log = make_log(ego_from_speeds(speeds), road_map=town_map())
    (window,) = traffic_light.mine(log)
    # The stop point is the approach lane's end (60, 0): 40 m ahead from x = 20 m (frame 40) until the ego
    # reaches it at frame 90; the last frame with it strictly ahead is 89 (x = 58 m).
    assert (window.t_start_ns, window.t_end_ns) == (ns(4.0), ns(8.9))
    assert traffic_light.stop_points(town_map())[0].tolist() == [[60.0, 0.0]]


def test_lights_of_other_directions_and_lanes_do_not_count() -> None:
    road_map = town_map()
    poses = ego_from_speeds(np.full(N, 5.0))
    opposite = ego_from_speeds(np.full(N, 5.0))
    opposite[:, 0], opposite[:, 3] = 100.0 - opposite[:, 0], np.pi  # the other way down the same road
    assert traffic_light.mine(make_log(opposite, road_map=road_map)) == []
    beside = ego_from_speeds(np.full(N, 5.0), y_m=-7.0)  # a parallel road two lanes to the right
    assert traffic_light.mine(make_log(beside, road_map=road_map)) == []
    assert traffic_light.mine(make_log(poses)) == []


def test_a_light_without_known_lanes_counts_by_its_pole() -> None:
    road_map = town_map()
    pole_only = type(road_map)(lanes=road_map.lanes, traffic_lights=(TrafficLight("pole", (60.5, -4.0)),))
    (window,) = traffic_light.mine(make_log(ego_from_speeds(np.full(N, 5.0)), road_map=pole_only))
    assert (window.t_start_ns, window.t_end_ns) == (ns(4.1), ns(10.0))  # 40 m from the pole at x = 20.5 m

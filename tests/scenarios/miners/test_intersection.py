"""intersection: the ego near the centerline of an intersection lane."""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners import intersection
from andon.scenarios.records import Lane, RoadMap
from tests.scenarios.miners._logs import ego_from_speeds, make_log, ns, town_map

N = 101  # 10 s at 10 m/s: x from 0 to 100 m


def test_driving_through_the_junction() -> None:
    log = make_log(ego_from_speeds(np.full(N, 10.0)), road_map=town_map())
    (window,) = intersection.mine(log)
    # The junction's lanes span x 60..80 m, stop line to exit (and a crossing lane at x = 70): inside from
    # x = 60 to 80 m, not before the stop line however close.
    assert (window.t_start_ns, window.t_end_ns) == (ns(6.0), ns(8.0))


def test_no_map_or_no_junction_lanes_never_fire() -> None:
    poses = ego_from_speeds(np.full(N, 10.0))
    assert intersection.mine(make_log(poses)) == []
    plain = RoadMap(lanes=(Lane("road", np.array([[0.0, 0.0], [200.0, 0.0]])),))
    assert intersection.mine(make_log(poses, road_map=plain)) == []


def test_passing_beside_a_junction_is_not_inside_it() -> None:
    poses = ego_from_speeds(np.full(N, 10.0), y_m=-15.0)  # a parallel road 15 m away
    assert intersection.mine(make_log(poses, road_map=town_map())) == []

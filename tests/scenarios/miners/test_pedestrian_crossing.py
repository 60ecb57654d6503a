"""pedestrian_crossing: a pedestrian inside a crosswalk polygon within 30 m of the ego."""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners import pedestrian_crossing
from andon.scenarios.records import Crosswalk, RoadMap
from tests.scenarios.miners._logs import agent, ego_from_speeds, make_log, ns, world_agent

N = 61  # 6 s
CROSSWALKS = RoadMap(crosswalks=(Crosswalk("near", np.array([[20.0, -6.0], [24.0, -6.0], [24.0, 6.0], [20.0, 6.0]])),
                                 Crosswalk("far", np.array([[60.0, -6.0], [64.0, -6.0], [64.0, 6.0], [60.0, 6.0]]))))


def test_pedestrian_walking_over_a_crosswalk_ahead() -> None:
    poses = np.zeros((N, 4))
    y = -9.05 + 0.3 * np.arange(N)  # 3 m/s across x = 22 m, never exactly on an edge
    log = make_log(poses, {"walker": agent("pedestrian", np.column_stack([np.full(N, 22.0), y])),
                           "far_walker": agent("pedestrian", np.column_stack([np.full(N, 62.0), y])),
                           "bike": agent("cyclist", np.column_stack([np.full(N, 21.0), y]))}, CROSSWALKS)
    (window,) = pedestrian_crossing.mine(log)
    # Inside while |y| <= 6 m: y = -5.75 m at frame 11 to 5.95 m at frame 50.
    assert (window.t_start_ns, window.t_end_ns) == (ns(1.1), ns(5.0))
    assert window.track_ids == ("walker",)


def test_the_crosswalk_is_in_the_world_frame_while_the_ego_moves() -> None:
    poses = ego_from_speeds(np.full(N, 10.0))  # the ego drives from x = 0 to 60 m
    log = make_log(poses, {"waiting": world_agent("pedestrian", np.tile([62.0, 0.0], (N, 1)), poses)}, CROSSWALKS)
    (window,) = pedestrian_crossing.mine(log)
    # 30 m from the pedestrian once the ego passes x = 32 m (frame 32).
    assert (window.t_start_ns, window.t_end_ns) == (ns(3.2), ns(6.0))


def test_no_crosswalks_no_crossings() -> None:
    log = make_log(np.zeros((N, 4)), {"walker": agent("pedestrian", np.tile([22.0, 0.0], (N, 1)))})
    assert pedestrian_crossing.mine(log) == []
    assert pedestrian_crossing.mine(make_log(np.zeros((N, 4)), {}, RoadMap())) == []

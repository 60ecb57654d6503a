"""cut_in: a vehicle moves from the adjacent lane into the ego's lane ahead, within 30 m."""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners import cut_in
from tests.scenarios.miners._logs import agent, ego_from_speeds, make_log, ns, world_agent

N = 51  # 5 s
FRAMES = np.arange(N)
EGO = ego_from_speeds(np.full(N, 10.0))
# Lateral offset: 3.5 m (the left lane) for 1 s, 2 s of lane change to 0, then in the ego's lane.
LANE_CHANGE_Y = np.interp(FRAMES, [10, 30], [3.5, 0.0])
LANE_CHANGE_YAW = np.where((FRAMES >= 10) & (FRAMES < 30), -0.17, 0.0)  # heading into the ego's lane


def _car(x_m: float | np.ndarray, y_m: np.ndarray, yaw: np.ndarray | float = 0.0) -> tuple[str, np.ndarray]:
    return agent("vehicle", np.column_stack([np.broadcast_to(x_m, N), y_m]), yaw)


def test_vehicle_cutting_in_fifteen_metres_ahead() -> None:
    log = make_log(EGO, {"cutter": _car(15.0, LANE_CHANGE_Y, LANE_CHANGE_YAW),
                         "leader": _car(25.0, np.zeros(N)), "neighbour": _car(5.0, np.full(N, -3.5))})
    (window,) = cut_in.mine(log)
    # Last frame in the adjacent band (|y| >= 2.5 m) is 15, first in the ego's lane (|y| <= 1.25 m) is 23;
    # padded by 0.5 s on each side.
    assert (window.t_start_ns, window.t_end_ns) == (ns(1.0), ns(2.8))
    assert window.track_ids == ("cutter",)


def test_cut_in_from_the_right_with_a_missing_label_mid_manoeuvre() -> None:
    xy = np.column_stack([np.full(N, 20.0), -LANE_CHANGE_Y])
    xy[19] = np.nan  # a dropped label does not break a track
    (window,) = cut_in.mine(make_log(EGO, {"cutter": agent("vehicle", xy, -LANE_CHANGE_YAW)}))
    assert window.track_ids == ("cutter",)


def test_a_box_jittered_back_into_the_adjacent_lane_does_not_hide_the_cut_in() -> None:
    y = LANE_CHANGE_Y.copy()
    y[19] = 3.0  # mid-manoeuvre (1.9 m) the label jumps back into the adjacent band for one frame
    (window,) = cut_in.mine(make_log(EGO, {"cutter": _car(15.0, y, LANE_CHANGE_YAW)}))
    assert (window.t_start_ns, window.t_end_ns, window.track_ids) == (ns(1.0), ns(2.8), ("cutter",))


def test_the_ego_changing_lanes_is_not_a_cut_in() -> None:
    ego = EGO.copy()
    ego[:, 1] = -LANE_CHANGE_Y  # the ego moves from y = -3.5 into the car's lane at y = 0
    car_world = np.column_stack([ego[:, 0] + 15.0, np.zeros(N)])
    log = make_log(ego, {"car": world_agent("vehicle", car_world, ego)})
    assert np.allclose(log.frames[0].boxes[0, :2], [15.0, 3.5])  # it does look like a car moving in
    assert cut_in.mine(log) == []


def test_other_lane_changes_and_label_noise_are_not_cut_ins() -> None:
    jitter_in = np.full(N, 3.5)
    jitter_in[20] = 0.3  # one frame in the ego's lane, then back
    jitter_out = np.zeros(N)
    jitter_out[20] = 3.0  # one frame in the adjacent lane
    log = make_log(EGO, {
        "stays_left": _car(15.0, np.full(N, 3.5)),
        "behind": _car(-10.0, LANE_CHANGE_Y, LANE_CHANGE_YAW),
        "too_far": _car(45.0, LANE_CHANGE_Y, LANE_CHANGE_YAW),
        "oncoming": _car(15.0, LANE_CHANGE_Y, np.pi),
        "jitter_in": _car(15.0, jitter_in),
        "jitter_out": _car(15.0, jitter_out),
        "pedestrian": agent("pedestrian", np.column_stack([np.full(N, 10.0), LANE_CHANGE_Y])),
    })
    assert cut_in.mine(log) == []

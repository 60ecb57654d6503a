"""Logged agents in a replay: padded world-frame arrays, and IDM reactions to a closed-loop ego."""

from __future__ import annotations

import numpy as np
import pytest

from andon.models.planner import Planner, PlannerConfig
from andon.scenarios.records import Frame, Log
from andon.simulation.reactive import LoggedAgents, ReactiveAgents
from andon.simulation.replay import ReplayConfig, replay_scenario
from andon.simulation.trace import COLLISION
from tests.simulation.replay_logs import (
    Agent,
    constant,
    crafted_log,
    ego_speed_profile,
    moving,
    perfect,
    stack_with,
    whole_log,
)


def _follower_log(duration_s: float = 12.0) -> Log:
    """Ego at 12 m/s; a car 20 m behind it in its lane at 12 m/s; a car in the next lane at 12 m/s."""
    return crafted_log(ego_speed_profile(lambda t: np.full(len(t), 12.0)),
                       [Agent("behind", "vehicle", moving(-20.0, 0.0, 12.0)),
                        Agent("beside", "vehicle", moving(-10.0, 3.75, 12.0))], duration_s=duration_s)


def test_logged_agents_are_padded_world_arrays() -> None:
    # The ego turns (yaw 0.3) and moves; boxes are in its frame; one agent is absent in the middle frames.
    frames = []
    for i in range(6):
        pose = (float(i), 2.0, 0.5, 0.3)
        world = np.array([10.0 + i, 5.0])
        c, s = np.cos(0.3), np.sin(0.3)
        d = world - pose[:2]
        local = [c * d[0] + s * d[1], -s * d[0] + c * d[1]]
        boxes = np.array([[*local, 0.3, 4.0, 2.0, 1.5, 0.1]]) if i not in (2, 3) else np.zeros((0, 7))
        ids = ["a"] if i not in (2, 3) else []
        velocity = np.full((len(ids), 2), np.nan)
        frames.append(Frame(1_000_000_000 + i * 100_000_000, pose, boxes, ["vehicle"] * len(ids), ids,
                            velocities_mps=velocity))
    agents = LoggedAgents.of(Log("l", "test", frames), np.arange(1, 6))
    assert agents.track_ids.tolist() == ["a"] and agents.present.tolist() == [[True, False, False, True, True]]
    np.testing.assert_allclose(agents.xy_m[0, 0], [11.0, 5.0], atol=1e-9)
    np.testing.assert_allclose(agents.xy_m[0, 1], [11.0, 5.0], atol=1e-9)  # carried while absent
    np.testing.assert_allclose(agents.yaw_rad[0, 0], 0.4) and np.testing.assert_allclose(agents.z_m[0, 0], 0.8)
    # NaN velocities come from consecutive logged positions: 1 m per 0.1 s along x.
    np.testing.assert_allclose(agents.velocity_mps[0, 3], [10.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(agents.velocity_mps[0, 4], [10.0, 0.0], atol=1e-6)
    assert np.isnan(agents.velocity_mps[0, 0]).all()  # seen once before the gap: nothing to difference
    assert np.all(np.diff(agents.station_m[0]) >= 0) and agents.station_m[0, -1] == pytest.approx(4.0)


def test_non_reactive_agents_replay_the_log() -> None:
    log = _follower_log()
    agents = LoggedAgents.of(log, np.arange(len(log.frames)))
    mover = ReactiveAgents(agents, reactive=False, ego_length_m=4.6, ego_width_m=1.9)
    for k in range(len(log.frames)):
        frame = mover.step(k, 0.1, np.array([0.0, 0.0]), 0.0, 0.0)  # an ego standing in everyone's way
        np.testing.assert_allclose(frame.boxes[:, :2], agents.xy_m[frame.rows, k])


def test_reactive_agent_behind_a_stopped_ego_stops_behind_it_and_catches_up_after() -> None:
    log = _follower_log(duration_s=30.0)
    agents = LoggedAgents.of(log, np.arange(len(log.frames)))
    mover = ReactiveAgents(agents, reactive=True, ego_length_m=4.6, ego_width_m=1.9)
    behind, beside = (int(np.flatnonzero(agents.track_ids == name)[0]) for name in ("behind", "beside"))
    lag, speed = [], []
    for k in range(len(log.frames)):
        ego = np.array([30.0, 0.0]) if k <= 80 else np.array([5000.0, 0.0])  # stands 8 s, then is gone
        frame = mover.step(k, 0.1, ego, 0.0, 0.0)
        front = frame.boxes[frame.rows == behind, 0][0] + 2.25
        if k <= 80:
            assert front <= 30.0 - 2.3 + 1e-9  # never into the ego's box
        if k == 80:
            assert front >= 30.0 - 2.3 - 2.0 - 0.5  # it waits close behind: the IDM's standstill gap, 2 m
        lag.append(agents.station_m[behind, k] - mover._station[behind])
        speed.append(np.hypot(*frame.velocity_mps[frame.rows == behind][0]))
        assert lag[-1] >= -1e-9  # never past its logged station
        # The car in the next lane is not in the way: exactly as logged.
        np.testing.assert_allclose(frame.boxes[frame.rows == beside, :2][0], agents.xy_m[beside, k])
    assert speed[80] < 0.1 and lag[80] > 40.0  # all but stopped (the IDM creeps to its gap)
    # Free again: faster than its log (12 m/s) by at most a quarter (max_catch_up_share), the lag shrinking.
    assert max(speed) == pytest.approx(15.0, abs=0.05) and lag[-1] < lag[200] < lag[150]
    assert mover.lagging[behind] and not mover.lagging[beside]


def test_a_briefly_held_agent_catches_up_and_is_the_logged_agent_again() -> None:
    log = _follower_log(duration_s=25.0)
    agents = LoggedAgents.of(log, np.arange(len(log.frames)))
    mover = ReactiveAgents(agents, reactive=True, ego_length_m=4.6, ego_width_m=1.9)
    behind = int(np.flatnonzero(agents.track_ids == "behind")[0])
    for k in range(len(log.frames)):
        ego = np.array([-20.0 + 1.2 * k + 15.0, 0.0]) if 10 <= k <= 20 else np.array([5000.0, 0.0])
        frame = mover.step(k, 0.1, ego, 0.0, 1.0)  # a slow ego 15 m ahead for 1 s
        if k == 20:
            assert mover.lagging[behind]
    assert not mover.lagging.any()
    np.testing.assert_allclose(frame.boxes[frame.rows == behind, :2][0], agents.xy_m[behind, -1])


def test_reactive_agents_in_a_replay_do_not_drive_through_a_slower_ego() -> None:
    # The replayed ego wants 5 m/s where the logged one drove 12: the logged follower would run into it.
    log = _follower_log()
    stack = stack_with(perfect)
    stack.planner = Planner(PlannerConfig(desired_speed_mps=5.0))
    reactive = replay_scenario(log, whole_log(log), stack, ReplayConfig(reactive=True))
    stack.tracker.reset()
    fixed = replay_scenario(log, whole_log(log), stack, ReplayConfig(reactive=False))
    assert fixed.collisions == 1 and fixed.events[0].cause == COLLISION and fixed.events[0].track_ids == ("behind",)
    assert reactive.collisions == 0 and not reactive.events
    assert reactive.reactive and not fixed.reactive
    # The follower ends behind the ego, where it was logged ahead of it.
    last = reactive.frames[-1]
    follower_x = float(last.gt_boxes[last.gt_track_ids == "behind", 0][0])
    assert follower_x < last.ego_pose[0] - 4.5


def test_a_pedestrian_about_to_step_in_front_of_the_ego_waits_for_it() -> None:
    # The pedestrian walks across the road (+y) at x = 20; the ego stands across its path at y = 0.
    log = crafted_log(ego_speed_profile(lambda t: np.zeros(len(t))),
                      [Agent("p", "pedestrian", moving(20.0, -6.0, 0.0, 1.4), yaw_rad=np.pi / 2,
                             size_m=(0.6, 0.6, 1.75))], duration_s=6.0)
    agents = LoggedAgents.of(log, np.arange(len(log.frames)))
    mover = ReactiveAgents(agents, reactive=True, ego_length_m=4.6, ego_width_m=1.9)
    tops = []
    for k in range(len(log.frames)):
        frame = mover.step(k, 0.1, np.array([20.0, 0.0]), 0.0, 0.0)
        tops.append(frame.boxes[0, 1] + 0.3)
    assert max(tops) <= -0.95 + 1e-9  # never steps into the ego's box
    assert tops[-1] > -2.0  # but comes close: it waits at the kerb of the ego's box, not far away
    still = ReactiveAgents(agents, reactive=True, ego_length_m=4.6, ego_width_m=1.9)
    for k in range(len(log.frames)):  # an ego beside its path does not stop it
        frame = still.step(k, 0.1, np.array([30.0, 0.0]), 0.0, 0.0)
    np.testing.assert_allclose(frame.boxes[0, :2], agents.xy_m[0, -1])


def test_a_standing_agent_is_unaffected() -> None:
    log = crafted_log(ego_speed_profile(lambda t: np.full(len(t), 5.0)), [Agent("s", "vehicle", constant(10.0, 0.0))])
    agents = LoggedAgents.of(log, np.arange(len(log.frames)))
    mover = ReactiveAgents(agents, reactive=True, ego_length_m=4.6, ego_width_m=1.9)
    for k in range(len(log.frames)):
        frame = mover.step(k, 0.1, np.array([20.0, 0.0]), np.pi, 3.0)
    np.testing.assert_allclose(frame.boxes[0, :2], [10.0, 0.0])

"""Log replay on hand-made logs with known answers: collisions, clean drives, km, stops, failures, sensors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from omegaconf import OmegaConf

from andon.errors import BadInput
from andon.models.planner import Planner, PlannerConfig
from andon.scenarios.records import Frame, Log
from andon.simulation.replay import LoggedEgo, ReplayConfig, logged_stops, replay_scenario
from andon.simulation.sensors import MOVED_SWEEP, move_sweep
from andon.simulation.trace import CLOSED_LOOP, COLLISION, OPEN_LOOP, PLANNER_FAILURE, TTC
from tests.simulation.replay_logs import (
    Agent,
    blind,
    constant,
    crafted_log,
    ego_speed_profile,
    moving,
    perfect,
    stack_with,
    whole_log,
)

CRUISE = ego_speed_profile(lambda t: np.full(len(t), 5.0))


def _standing_car_log() -> Log:
    """The logged ego drives at 5 m/s for 12 s (to x = 60); a car stands in its lane at x = 70 (the log ends short of it)."""
    return crafted_log(CRUISE, [Agent("car", "vehicle", constant(70.0, 0.0))], duration_s=12.0)


def _crossing(t0_s: float, x_m: float, y0_m: float = -3.0, speed_mps: float = 1.5) -> Agent:
    """A pedestrian standing at (x, y0) who starts walking across the road (+y) at t0."""
    def path(t: np.ndarray) -> np.ndarray:
        return np.column_stack([np.full(len(t), x_m), y0_m + speed_mps * np.clip(t - t0_s, 0.0, None)])
    return Agent("p", "pedestrian", path, yaw_rad=np.pi / 2, size_m=(0.6, 0.6, 1.75))


# ----- config -------------------------------------------------------------------------------------
def test_replay_config_is_a_hydra_schema_that_validates() -> None:
    merged = OmegaConf.merge(OmegaConf.structured(ReplayConfig), {"mode": "open_loop", "ttc_threshold_s": 2.0})
    config = OmegaConf.to_object(merged)
    assert isinstance(config, ReplayConfig) and config.mode == OPEN_LOOP and config.ttc_threshold_s == 2.0
    with pytest.raises(Exception, match="ttc_treshold_s"):
        OmegaConf.merge(OmegaConf.structured(ReplayConfig), {"ttc_treshold_s": 2.0})


@pytest.mark.parametrize(("change", "named"), [({"mode": "half_loop"}, "replay.mode"),
                                               ({"ttc_threshold_s": 0.0}, "replay.ttc_threshold_s"),
                                               ({"safety_margin_m": -1.0}, "replay.safety_margin_m"),
                                               ({"merge_window_s": float("nan")}, "replay.merge_window_s"),
                                               ({"seed": -1}, "replay.seed"), ({"reactive": "yes"}, "replay.reactive")])
def test_bad_replay_config_names_the_value(change: dict, named: str) -> None:
    with pytest.raises(BadInput, match=named):
        ReplayConfig(**change)


def test_a_scenario_without_frames_or_of_another_log_is_bad_input() -> None:
    log = _standing_car_log()
    empty = dataclasses.replace(whole_log(log), scenario_id="late", t_start_ns=log.t_end_ns + 1, t_end_ns=log.t_end_ns + 9)
    with pytest.raises(BadInput, match="scenario late has no frame"):
        replay_scenario(log, empty, stack_with(perfect), ReplayConfig())
    other = dataclasses.replace(whole_log(log), log_id="another")
    with pytest.raises(BadInput, match="belongs to log another"):
        replay_scenario(log, other, stack_with(perfect), ReplayConfig())


def test_a_malformed_detector_output_is_bad_input_naming_the_frame() -> None:
    log = _standing_car_log()
    with pytest.raises(BadInput, match="frame 0 of scenario crafted-all"):
        replay_scenario(log, whole_log(log), stack_with(lambda frame: (np.zeros((1, 5)), ["vehicle"], [1.0])),
                        ReplayConfig())
    with pytest.raises(BadInput, match="unknown classes"):
        replay_scenario(log, whole_log(log), stack_with(lambda frame: (np.zeros((1, 7)), ["truck"], [1.0])),
                        ReplayConfig())


# ----- known answers ------------------------------------------------------------------------------
def test_a_guaranteed_collision_is_one_disengagement_with_the_right_cause() -> None:
    # Perception blind: the ego accelerates toward its desired 12 m/s into the standing car.
    log = _standing_car_log()
    trace = replay_scenario(log, whole_log(log), stack_with(blind), ReplayConfig())
    assert trace.mode == CLOSED_LOOP and trace.collisions == 1
    (event,) = trace.events
    assert event.cause == COLLISION and event.track_ids == ("car",)
    assert set(event.causes) == {COLLISION, TTC, "perception_miss"}  # the warnings before it merged into it
    first_contact = next(f for f in trace.frames if f.ego_pose[0] + 2.3 >= 70.0 - 2.25)
    assert event.time_ns < first_contact.timestamp_ns  # it began when perception first failed, before impact


def test_the_same_drive_with_perception_stops_behind_the_car() -> None:
    log = _standing_car_log()
    trace = replay_scenario(log, whole_log(log), stack_with(perfect), ReplayConfig())
    assert trace.collisions == 0 and trace.events == ()
    front = trace.frames[-1].ego_pose[0] + 2.3
    assert 70.0 - 2.25 - 4.0 <= front <= 70.0 - 2.25 - 1.0 and trace.frames[-1].ego_speed_mps < 0.5
    assert all(f.plan_leader_track >= 0 for f in trace.frames[5:])  # it follows the car's track


def test_a_clean_drive_on_an_empty_road_has_no_event() -> None:
    log = crafted_log(ego_speed_profile(lambda t: np.full(len(t), 10.0)), duration_s=10.0)
    for mode in (OPEN_LOOP, CLOSED_LOOP):
        trace = replay_scenario(log, whole_log(log), stack_with(blind), ReplayConfig(mode=mode))
        assert trace.events == () and trace.collisions == 0 and all(f.plan_ok for f in trace.frames)


def test_km_on_a_known_straight_path() -> None:
    log = crafted_log(ego_speed_profile(lambda t: np.full(len(t), 10.0)), duration_s=10.0)  # 0 .. 100 m
    trace = replay_scenario(log, whole_log(log), stack_with(perfect), ReplayConfig(mode=OPEN_LOOP))
    assert trace.km == pytest.approx(0.1) and trace.logged_km == pytest.approx(0.1) and len(trace.frames) == 101
    np.testing.assert_allclose([f.ego_pose[0] for f in trace.frames], np.arange(101) * 1.0, atol=1e-9)
    assert all(f.ego_speed_mps == pytest.approx(10.0) for f in trace.frames)
    # A window of it: 2 s .. 5 s is 30 m.
    window = dataclasses.replace(whole_log(log), t_start_ns=log.t_start_ns + 2_000_000_000,
                                 t_end_ns=log.t_start_ns + 5_000_000_000)
    assert replay_scenario(log, window, stack_with(perfect), ReplayConfig(mode=OPEN_LOOP)).km == pytest.approx(0.03)
    # Closed loop: the ego drives at its own desired speed (12 m/s from 10), farther than logged.
    closed = replay_scenario(log, whole_log(log), stack_with(perfect), ReplayConfig())
    assert 0.1 < closed.km < 0.12 and closed.logged_km == pytest.approx(0.1)


def test_a_pedestrian_stepping_out_close_ahead_is_a_ttc_disengagement_without_collision() -> None:
    # The ego at ~10-11 m/s is about 9 m short of the crossing when the pedestrian steps out: it brakes in
    # time, but its plan comes within the safety margin of the pedestrian's constant-velocity future.
    log = crafted_log(ego_speed_profile(lambda t: np.full(len(t), 10.0)), [_crossing(3.0, 40.0)])
    trace = replay_scenario(log, whole_log(log), stack_with(perfect), ReplayConfig())
    (event,) = trace.events
    assert event.cause == TTC and event.track_ids == ("p",) and trace.collisions == 0
    # Stepping out a second earlier leaves room to yield comfortably: nothing happens.
    calm = crafted_log(ego_speed_profile(lambda t: np.full(len(t), 10.0)), [_crossing(2.0, 40.0)])
    assert replay_scenario(calm, whole_log(calm), stack_with(perfect), ReplayConfig()).events == ()


def test_a_reactive_pedestrian_waits_for_a_blind_ego_where_a_logged_one_walks_into_it() -> None:
    # Where the blind ego drives is known in advance (it sees nothing): time the crossing so that the
    # pedestrian's near side is 0.5 m from the ego's path when the ego enters its corridor.
    empty = crafted_log(CRUISE, duration_s=8.0)
    x = np.array([f.ego_pose[0] for f in replay_scenario(empty, whole_log(empty), stack_with(blind),
                                                           ReplayConfig()).frames])
    crossing_x = 30.0
    enters_s = np.argmax(x >= crossing_x - (0.3 + 2.3 + 0.5)) * 0.1
    y0, speed = -5.0, 1.4
    t0 = enters_s - ((-0.95 - 0.5 - 0.3) - y0) / speed
    log = crafted_log(CRUISE, [_crossing(t0, crossing_x, y0, speed)], duration_s=8.0)
    walks = replay_scenario(log, whole_log(log), stack_with(blind), ReplayConfig(reactive=False))
    waits = replay_scenario(log, whole_log(log), stack_with(blind), ReplayConfig(reactive=True))
    assert walks.collisions == 1 and walks.events[0].cause == COLLISION and walks.events[0].track_ids == ("p",)
    assert waits.collisions == 0 and all(e.cause != COLLISION for e in waits.events)
    # It waited: for a while it was well behind where it was logged.
    held = [f.gt_boxes[0, 1] - (y0 + speed * max(k * 0.1 - t0, 0.0)) for k, f in enumerate(waits.frames)]
    assert min(held) < -0.3


def test_a_failing_planner_is_a_disengagement_and_the_replay_goes_on() -> None:
    class Failing(Planner):
        def plan(self, *args: object, **kwargs: object) -> object:
            raise RuntimeError("no route")

    log = crafted_log(CRUISE, duration_s=4.0)
    stack = stack_with(perfect)
    stack.planner = Failing()
    trace = replay_scenario(log, whole_log(log), stack, ReplayConfig())
    (event,) = trace.events  # failing on every frame: one event, the failures chained
    assert event.cause == PLANNER_FAILURE and "RuntimeError: no route" in event.detail and event.frame_index == 0
    assert not any(f.plan_ok for f in trace.frames) and all(len(f.plan_xy_m) == 0 for f in trace.frames)
    speeds = [f.ego_speed_mps for f in trace.frames]
    assert speeds[0] == pytest.approx(5.0) and speeds[-1] == 0.0 and np.all(np.diff(speeds) <= 0)  # brakes


def test_a_non_finite_plan_is_a_planner_failure() -> None:
    class Broken(Planner):
        def plan(self, *args: object, **kwargs: object) -> object:
            plan = super().plan(*args, **kwargs)
            plan.speed_mps[3] = np.nan
            return plan

    log = crafted_log(CRUISE, duration_s=1.0)
    stack = stack_with(perfect)
    stack.planner = Broken()
    trace = replay_scenario(log, whole_log(log), stack, ReplayConfig(mode=OPEN_LOOP))
    assert trace.events[0].cause == PLANNER_FAILURE and "NaN" in trace.frames[0].plan_error


def test_the_logged_drivers_stops_stand_in_for_lights() -> None:
    # The logged ego drives 8 m/s, stops 4 s at x = 40 (a red light the log cannot show), drives on.
    def speed(t: np.ndarray) -> np.ndarray:
        return np.where(t < 4.0, 8.0, np.where(t < 5.0, 8.0 * (5.0 - t), np.where(t < 9.0, 0.0, 8.0)))

    log = crafted_log(ego_speed_profile(speed), duration_s=14.0)
    stop_x = next(f.ego_pose[0] for f in log.frames if f.timestamp_ns >= log.t_start_ns + 6_000_000_000)
    points, until = logged_stops(LoggedEgo.of(log), 0.5, 1.0, 2.3 + 1.0)
    assert points.shape == (1, 2) and points[0, 0] == pytest.approx(stop_x + 3.3, abs=0.1)
    trace = replay_scenario(log, whole_log(log), stack_with(blind), ReplayConfig())
    x = np.array([f.ego_pose[0] for f in trace.frames])
    t = (np.array([f.timestamp_ns for f in trace.frames]) - log.t_start_ns) * 1e-9
    assert x[t <= 9.0].max() <= stop_x + 1e-6  # never past where the logged ego stood, until it drove off
    assert stop_x - x[90] < 1.0 and trace.frames[90].ego_speed_mps < 1.0  # at 9 s (the IDM creeps up to it)
    assert trace.frames[-1].ego_speed_mps > 3.0 and trace.events == ()  # released when the logged ego drove off


def test_replays_are_deterministic() -> None:
    log = crafted_log(CRUISE, [Agent("car", "vehicle", moving(20.0, 0.0, 3.0)),
                               Agent("p", "pedestrian", moving(30.0, -6.0, 0.0, 1.0), size_m=(0.6, 0.6, 1.8))])
    from andon.simulation.stack import stand_in_stack

    first = replay_scenario(log, whole_log(log), stand_in_stack(seed=3), ReplayConfig())
    second = replay_scenario(log, whole_log(log), stand_in_stack(seed=3), ReplayConfig())
    assert [f.to_dict() for f in first.frames] == [f.to_dict() for f in second.frames]
    assert first.events == second.events and first.km == second.km


def test_a_stack_reused_across_scenarios_replays_each_the_same() -> None:
    """A stack is loaded once and replays many scenarios: nothing of one replay may leak into the next."""
    from andon.simulation.stack import stand_in_stack

    busy = crafted_log(CRUISE, [Agent("car", "vehicle", moving(20.0, 0.0, 3.0)), Agent("p", "pedestrian",
                                moving(30.0, -6.0, 0.0, 1.0), size_m=(0.6, 0.6, 1.8))], log_id="busy")
    stack = stand_in_stack(seed=3)
    first = replay_scenario(busy, whole_log(busy), stack, ReplayConfig())
    replay_scenario(_standing_car_log(), whole_log(_standing_car_log()), stack, ReplayConfig(mode=OPEN_LOOP))
    again = replay_scenario(busy, whole_log(busy), stack, ReplayConfig())
    for a, b in zip(first.frames, again.frames, strict=True):
        for name in a.__slots__:
            x, y = getattr(a, name), getattr(b, name)
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x == y, name
    assert first.events == again.events and first.km == again.km


def test_frames_the_detector_cannot_see_are_no_tracker_step() -> None:
    log = crafted_log(CRUISE, [Agent("car", "vehicle", moving(20.0, 0.0, 3.0))], duration_s=3.0)

    def every_fifth(frame: Frame) -> tuple[np.ndarray, list[str], np.ndarray] | None:
        return perfect(frame) if (frame.timestamp_ns // 100_000_000) % 5 == 0 else None

    trace = replay_scenario(log, whole_log(log), stack_with(every_fifth), ReplayConfig(mode=OPEN_LOOP))
    seen = [f.has_sweep for f in trace.frames]
    assert seen == [i % 5 == 0 for i in range(len(trace.frames))]
    assert all(len(f.det_boxes) == 0 for f in trace.frames if not f.has_sweep)
    # Confirmed after two sweeps, the track coasts in between at its velocity (about 3 m/s).
    coasting = [f for f in trace.frames[6:] if not f.has_sweep]
    assert coasting and all(len(f.track_ids) == 1 for f in coasting)
    truth = np.array([f.gt_boxes[0, 0] for f in coasting])
    assert np.abs(np.array([f.track_xy_m[0, 0] for f in coasting]) - truth).max() < 1.0


def test_the_trace_records_what_the_stack_did() -> None:
    log = _standing_car_log()
    trace = replay_scenario(log, whole_log(log, frozenset({"t"})), stack_with(perfect), ReplayConfig())
    assert trace.stack == {"detector": "oracle", "tracker": "default", "predictor": "constant_velocity",
                           "planner": "default"}
    assert trace.tags == frozenset({"t"}) and trace.source == "test" and trace.sensor_approximation == ""
    frame = trace.frames[10]
    assert frame.gt_track_ids.tolist() == ["car"] and frame.gt_classes.tolist() == ["vehicle"]
    np.testing.assert_allclose(frame.gt_boxes[0, :2], [70.0, 0.0], atol=1e-9)  # world frame
    np.testing.assert_allclose(frame.det_boxes[0, :2], [70.0, 0.0], atol=1e-9)
    assert frame.pred_modes_m.shape == (1, 1, 10, 2) and frame.pred_probs.tolist() == [[1.0]]
    assert frame.plan_xy_m.shape == (51, 2) and frame.plan_step_s == 0.1 and frame.pred_step_s == 0.5
    assert np.isfinite(frame.ego_accel_mps2)


# ----- sensors ------------------------------------------------------------------------------------
def test_a_real_logs_sweep_moves_with_the_closed_loop_ego() -> None:
    # A fixed world point cloud (a wall 60 m ahead), logged at each logged pose; a detector that records it.
    wall_world = np.column_stack([np.full(50, 60.0), np.linspace(-5, 5, 50), np.ones(50), np.full(50, 7.0)])
    base = crafted_log(CRUISE, [Agent("car", "vehicle", moving(20.0, 3.75, 3.0))], duration_s=3.0)
    frames = [dataclasses.replace(f, points=move_sweep(wall_world, (0.0, 0.0, 0.0, 0.0), np.array(f.ego_pose)))
              for f in base.frames]
    log = Log(log_id="real", source="av2", frames=frames)
    seen: list[Frame] = []

    def recording(frame: Frame) -> tuple[np.ndarray, list[str], np.ndarray]:
        seen.append(frame)
        return perfect(frame)

    stack = stack_with(recording)
    stack.reads_points = True
    trace = replay_scenario(log, whole_log(log), stack, ReplayConfig())
    assert trace.sensor_approximation == MOVED_SWEEP
    last = seen[-1]
    assert abs(last.ego_pose[0] - log.frames[-1].ego_pose[0]) > 1.0  # the ego left its logged pose ...
    np.testing.assert_allclose(last.points[:, 0] + last.ego_pose[0], 60.0, atol=1e-4)  # ... the wall stayed
    np.testing.assert_allclose(last.boxes[0, 0] + last.ego_pose[0], trace.frames[-1].gt_boxes[0, 0], atol=1e-9)
    # Open loop feeds the logged frames themselves.
    seen.clear()
    open_trace = replay_scenario(log, whole_log(log), stack, ReplayConfig(mode=OPEN_LOOP))
    assert open_trace.sensor_approximation == "" and all(a is b for a, b in zip(seen, log.frames, strict=True))


def test_a_synthetic_log_is_ray_cast_again_at_the_closed_loop_pose() -> None:
    from andon.simulation.fleet import FleetConfig, synthesize_log

    imported = synthesize_log(3, duration_s=2.0, config=FleetConfig(lidar_beams=8, lidar_azimuth_steps=120))
    log = Log(log_id="synth", source=imported.source, frames=imported.frames, road_map=imported.road_map,
              meta=imported.meta)
    seen: list[Frame] = []

    def recording(frame: Frame) -> tuple[np.ndarray, list[str], np.ndarray]:
        seen.append(frame)
        return perfect(frame)

    stack = stack_with(recording)
    stack.reads_points = True
    trace = replay_scenario(log, whole_log(log), stack, ReplayConfig())
    assert trace.sensor_approximation == "" and all(f.has_sweep for f in trace.frames)
    assert all(f.points is not None and len(f.points) > 100 for f in seen)
    assert not np.array_equal(seen[0].points, log.frames[0].points)  # cast again (its own noise), not copied
    again: list[Frame] = []
    stack.detect = lambda frame: again.append(frame) or perfect(frame)
    replay_scenario(log, whole_log(log), stack, ReplayConfig())
    assert all(np.array_equal(a.points, b.points) for a, b in zip(seen, again, strict=True))  # seeded


# ----- prediction ---------------------------------------------------------------------------------
def test_a_trained_predictor_runs_on_the_track_histories() -> None:
    from andon.models.predictor import TrajectoryPredictor

    log = crafted_log(CRUISE, [Agent("car", "vehicle", moving(20.0, 0.0, 3.0)),
                               Agent("van", "vehicle", moving(30.0, 3.75, 4.0))], duration_s=4.0)
    stack = stack_with(perfect)
    stack.predictor = TrajectoryPredictor(history_steps=4, horizon_steps=6, num_modes=3, hidden_size=8,
                                          neighbour_size=8).eval()
    stack.prediction_step_s, stack.prediction_history_steps, stack.prediction_horizon_steps = 0.5, 4, 6
    trace = replay_scenario(log, whole_log(log), stack, ReplayConfig())
    frame = trace.frames[-1]
    assert frame.pred_modes_m.shape == (2, 3, 6, 2) and np.allclose(frame.pred_probs.sum(axis=1), 1.0)
    # Untrained, it is the constant-velocity baseline: 3 s ahead, the car is about 9 m further on.
    car = int(np.flatnonzero(frame.track_xy_m[:, 1] < 1.0)[0])
    assert frame.pred_modes_m[car, 0, -1, 0] - frame.track_xy_m[car, 0] == pytest.approx(9.0, abs=1.5)
    assert trace.collisions == 0


def test_planner_config_changes_reach_the_replay() -> None:
    log = crafted_log(CRUISE, duration_s=6.0)
    stack = stack_with(blind)
    stack.planner = Planner(PlannerConfig(desired_speed_mps=5.0))
    trace = replay_scenario(log, whole_log(log), stack, ReplayConfig())
    assert trace.km == pytest.approx(trace.logged_km, rel=1e-3)  # at its logged speed, it drives the logged path

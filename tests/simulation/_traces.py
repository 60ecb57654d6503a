"""Hand-made replay traces for the simulation's metric, result and picture tests (no replay needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from andon.simulation.trace import CLOSED_LOOP, COLLISION, TTC, Event, FrameTrace, ScenarioTrace

FRAME_STEP_NS = 100_000_000  # 10 Hz


def frame_trace(index: int, ego_x_m: float, speed_mps: float = 10.0, accel_mps2: float = 0.0,
                t0_ns: int = 1_000_000_000) -> FrameTrace:
    """One frame: the ego at (ego_x_m, 0) heading +x, a vehicle 20 m ahead (track "7"), a pedestrian
    (track "9"), one detection of the vehicle, one confirmed track with two predicted modes, a plan."""
    gt = np.array([[ego_x_m + 20.0, 0.0, 0.8, 4.5, 1.9, 1.6, 0.0], [ego_x_m + 10.0, 6.0, 0.9, 0.6, 0.6, 1.8, 1.2]])
    modes = np.stack([np.stack([ego_x_m + 20.0 + 0.5 * np.arange(1, 7), np.zeros(6)], axis=1),
                      np.stack([ego_x_m + 20.0 + 0.5 * np.arange(1, 7), 0.3 * np.arange(1, 7)], axis=1)])[None]
    plan_x = ego_x_m + speed_mps * 0.1 * np.arange(20)
    return FrameTrace(
        index=index, timestamp_ns=t0_ns + index * FRAME_STEP_NS, ego_pose=np.array([ego_x_m, 0.0, 0.0, 0.0]),
        ego_speed_mps=speed_mps, ego_accel_mps2=accel_mps2, gt_boxes=gt,
        gt_classes=np.array(["vehicle", "pedestrian"]), gt_track_ids=np.array(["7", "9"]),
        gt_velocities_mps=np.array([[8.0, 0.0], [0.0, 1.0]]), has_sweep=True,
        det_boxes=gt[:1] + np.array([0.3, -0.2, 0, 0, 0, 0, 0.05]), det_classes=np.array(["vehicle"]),
        det_scores=np.array([0.9]), track_ids=np.array([1], dtype=np.int64), track_xy_m=gt[:1, :2].copy(),
        track_velocities_mps=np.array([[8.0, 0.0]]), track_classes=np.array(["vehicle"]),
        pred_modes_m=modes, pred_probs=np.array([[0.7, 0.3]]), pred_step_s=0.5,
        plan_xy_m=np.stack([plan_x, np.zeros(20)], axis=1), plan_speed_mps=np.full(20, speed_mps),
        plan_accel_mps2=np.zeros(20), plan_step_s=0.1)


def make_trace(scenario_id: str = "scn-a", accel_mps2: Sequence[float] = (0.0, 0.0, 1.0, 1.0, -1.0),
               events: Sequence[tuple[int, str]] = ((2, TTC),), km: float = 0.004, logged_km: float = 0.005,
               collisions: int = 0, tags: Sequence[str] = ("cut_in", "synthetic"), log_id: str = "log-a",
               t0_ns: int = 1_000_000_000) -> ScenarioTrace:
    """A closed-loop trace with one frame per acceleration and an event per (frame index, cause)."""
    frames = tuple(frame_trace(i, 1.0 * i, accel_mps2=a, t0_ns=t0_ns) for i, a in enumerate(accel_mps2))
    evs = tuple(Event(scenario_id, frames[i].timestamp_ns, cause, (cause,), ("7",), i,
                      f"{cause} with vehicle 7" + (" (collided)" if cause == COLLISION else ""))
                for i, cause in events)
    return ScenarioTrace(scenario_id=scenario_id, log_id=log_id, source="synthetic", tags=frozenset(tags),
                         mode=CLOSED_LOOP, reactive=True, frames=frames, events=evs, km=km, logged_km=logged_km,
                         collisions=collisions, sensor_approximation="",
                         stack={"detector": "oracle", "tracker": "default", "predictor": "constant_velocity",
                                "planner": "default"})

"""What a log replay records: per frame, what the stack saw, believed and planned, beside the truth.

A replay (andon.simulation.replay) runs the stack — detector → tracker → predictor → planner — over a
scenario's frames and returns a `ScenarioTrace`. Test suites compute their metrics on traces (detection
recall, minFDE of an agent, phantom braking, a lost lead vehicle); the simulation counts kilometres and
disengagements on them; pictures are drawn from them. Everything is in the log's world frame, so
open-loop and closed-loop traces read the same way:

- open loop: the ego drives exactly as logged; the plan is what the stack would have done;
- closed loop: the ego follows its own plan; ground-truth agents are the logged ones, moved back
  along their logged paths where they react to the new ego (reactive mode).

Arrays are numpy; `to_dict` writes plain JSON (lists of floats), which is what result files keep.
Units: metres, seconds, radians, nanoseconds; boxes (x, y, z_centre, length, width, height, yaw).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

OPEN_LOOP = "open_loop"
CLOSED_LOOP = "closed_loop"
MODES = (OPEN_LOOP, CLOSED_LOOP)

# Disengagement causes, most severe first (a merged event takes the most severe cause of its parts).
COLLISION = "collision"
TTC = "ttc"
PLANNER_FAILURE = "planner_failure"
PERCEPTION_MISS = "perception_miss"
CAUSES = (COLLISION, TTC, PLANNER_FAILURE, PERCEPTION_MISS)


@dataclass(frozen=True, slots=True, eq=False)
class FrameTrace:
    """One replayed frame (index into the scenario's frames, in time order).

    Attributes:
        index: frame index within the scenario window (0 = first replayed frame).
        timestamp_ns: the logged frame's time.
        ego_pose: (4,) x, y, z, yaw of the ego as driven in this replay (closed loop: simulated).
        ego_speed_mps: the ego's speed [m/s].
        ego_accel_mps2: the ego's acceleration from this frame to the next [m/s²] (open loop: logged).
        gt_boxes: (N, 7) ground-truth boxes of the other agents, world frame (closed loop: reactive positions).
        gt_classes: (N,) str classes.
        gt_track_ids: (N,) str track ids (the log's).
        gt_velocities_mps: (N, 2) world-frame velocities, NaN where unknown.
        has_sweep: whether the detector ran on this frame (a lidar sweep existed).
        det_boxes: (D, 7) detections, world frame (empty without a sweep).
        det_classes: (D,) str.
        det_scores: (D,) float.
        track_ids: (T,) int64 ids of the tracker's confirmed tracks after this frame.
        track_xy_m: (T, 2) their filtered world positions [m].
        track_velocities_mps: (T, 2) their filtered world velocities [m/s].
        track_classes: (T,) str.
        pred_modes_m: (T, K, F, 2) predicted world positions of each confirmed track at pred_step_s, 2 *
            pred_step_s, ... (F steps after now).
        pred_probs: (T, K) mode probabilities (rows sum to 1).
        pred_step_s: time between predicted positions [s].
        plan_xy_m: (P, 2) the planned ego positions from now (index 0) at plan_step_s.
        plan_speed_mps: (P,) planned speeds.
        plan_accel_mps2: (P,) planned accelerations.
        plan_step_s: time between plan states [s].
        plan_ok: False when the planner failed (exception or non-finite plan); the plan arrays are then
            empty and `plan_error` says why.
        plan_error: the failure's message, "" when plan_ok.
        plan_leader_track: the confirmed track id the plan follows or yields to (-1 for none).
    """

    index: int
    timestamp_ns: int
    ego_pose: np.ndarray
    ego_speed_mps: float
    ego_accel_mps2: float
    gt_boxes: np.ndarray
    gt_classes: np.ndarray
    gt_track_ids: np.ndarray
    gt_velocities_mps: np.ndarray
    has_sweep: bool
    det_boxes: np.ndarray
    det_classes: np.ndarray
    det_scores: np.ndarray
    track_ids: np.ndarray
    track_xy_m: np.ndarray
    track_velocities_mps: np.ndarray
    track_classes: np.ndarray
    pred_modes_m: np.ndarray
    pred_probs: np.ndarray
    pred_step_s: float
    plan_xy_m: np.ndarray
    plan_speed_mps: np.ndarray
    plan_accel_mps2: np.ndarray
    plan_step_s: float
    plan_ok: bool = True
    plan_error: str = ""
    plan_leader_track: int = -1

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:  # type: ignore[attr-defined]
            value = getattr(self, name)
            out[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out


@dataclass(frozen=True, slots=True)
class Event:
    """A disengagement: where a safety driver would have taken over.

    Attributes:
        scenario_id: the scenario replayed.
        time_ns: when it began (the first merged part's frame time).
        cause: the most severe cause of its parts (CAUSES order).
        causes: every cause merged into it, most severe first, without repeats.
        track_ids: the ground-truth track ids involved (the log's ids), sorted.
        frame_index: the FrameTrace index where it began.
        detail: one line for people, with the numbers (e.g. "TTC 0.8 s to vehicle 12 (threshold 1.5 s)").
    """

    scenario_id: str
    time_ns: int
    cause: str
    causes: tuple[str, ...]
    track_ids: tuple[str, ...]
    frame_index: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"scenario_id": self.scenario_id, "time_ns": self.time_ns, "cause": self.cause,
                "causes": list(self.causes), "track_ids": list(self.track_ids), "frame_index": self.frame_index,
                "detail": self.detail}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Event:
        return cls(str(doc["scenario_id"]), int(doc["time_ns"]), str(doc["cause"]), tuple(doc.get("causes", ())),
                   tuple(doc.get("track_ids", ())), int(doc.get("frame_index", 0)), str(doc.get("detail", "")))


@dataclass(frozen=True, slots=True, eq=False)
class ScenarioTrace:
    """One scenario replayed through the stack.

    Attributes:
        scenario_id, log_id, source: what was replayed.
        tags: the scenario's tags.
        mode: OPEN_LOOP or CLOSED_LOOP.
        reactive: closed loop with agents that react to the ego.
        frames: the replayed frames, in time order.
        events: disengagements, merged, in time order.
        km: distance the ego drove in this replay [km].
        logged_km: distance the logged ego drove over the same frames [km] (progress = km / logged_km).
        collisions: number of distinct agents the ego's box overlapped (closed loop; 0 in open loop).
        sensor_approximation: "" for exact sensing; otherwise how the sensors were approximated in closed
            loop, e.g. "logged sweep moved to the simulated pose" (real logs) — the report says so.
        stack: what ran: {"detector": "detector@3" | "oracle", "tracker": ..., "predictor": "predictor@2" |
            "constant_velocity", "planner": ...}.
    """

    scenario_id: str
    log_id: str
    source: str
    tags: frozenset[str]
    mode: str
    reactive: bool
    frames: tuple[FrameTrace, ...]
    events: tuple[Event, ...]
    km: float
    logged_km: float
    collisions: int
    sensor_approximation: str = ""
    stack: dict[str, str] = field(default_factory=dict)

"""Hand-made traces and suite documents for the suite tests (no replay needed).

`frame(...)` builds a FrameTrace from readable tuples: ground truth (track id, class, x, y),
detections (class, x, y[, score]), confirmed tracks (id, x, y) with their predicted modes. Frames are
10 Hz from T0_NS; positions are world-frame metres; the ego heads +x unless a yaw is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from andon.simulation.trace import CLOSED_LOOP, OPEN_LOOP, Event, FrameTrace, ScenarioTrace

T0_NS = 1_000_000_000
STEP_NS = 100_000_000
SIZES = {"vehicle": (4.5, 1.9, 1.6), "pedestrian": (0.6, 0.6, 1.8), "cyclist": (1.8, 0.6, 1.7), "static": (1, 1, 1)}


def _boxes(items: Sequence[tuple[Any, ...]], cls_at: int, x_at: int) -> np.ndarray:
    rows = [[it[x_at], it[x_at + 1], 0.8, *SIZES[it[cls_at]], 0.0] for it in items]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 7)


def frame(index: int, *, ego: tuple[float, float, float] = (0.0, 0.0, 0.0), speed_mps: float = 10.0,
          gt: Sequence[tuple[str, str, float, float]] = (), dets: Sequence[tuple[Any, ...]] = (),
          sweep: bool = True, tracks: Sequence[tuple[int, float, float]] = (), modes: Any = None,
          probs: Any = None, pred_step_s: float = 0.5, plan_accel_mps2: float = 0.0, plan_ok: bool = True,
          leader: int = -1) -> FrameTrace:
    """One replayed frame (module docstring); `modes` (T, K, F, 2) for the tracks, default none."""
    n_tracks = len(tracks)
    modes_m = np.zeros((n_tracks, 0, 0, 2)) if modes is None else np.asarray(modes, dtype=np.float64)
    probs_ = np.full(modes_m.shape[:2], 1.0 / max(modes_m.shape[1], 1)) if probs is None else np.asarray(probs, float)
    plan = np.array([plan_accel_mps2] * 10) if plan_ok else np.zeros(0)
    return FrameTrace(
        index=index, timestamp_ns=T0_NS + index * STEP_NS, ego_pose=np.array([ego[0], ego[1], 0.0, ego[2]]),
        ego_speed_mps=speed_mps, ego_accel_mps2=plan_accel_mps2, gt_boxes=_boxes(gt, 1, 2),
        gt_classes=np.array([g[1] for g in gt], dtype=str), gt_track_ids=np.array([g[0] for g in gt], dtype=str),
        gt_velocities_mps=np.full((len(gt), 2), np.nan), has_sweep=sweep,
        det_boxes=_boxes(dets, 0, 1) if sweep else np.zeros((0, 7)),
        det_classes=np.array([d[0] for d in dets] if sweep else [], dtype=str),
        det_scores=np.array([d[3] if len(d) > 3 else 0.9 for d in dets] if sweep else [], dtype=np.float64),
        track_ids=np.array([t[0] for t in tracks], dtype=np.int64),
        track_xy_m=np.array([[t[1], t[2]] for t in tracks], dtype=np.float64).reshape(-1, 2),
        track_velocities_mps=np.zeros((n_tracks, 2)), track_classes=np.array(["vehicle"] * n_tracks, dtype=str),
        pred_modes_m=modes_m, pred_probs=probs_, pred_step_s=pred_step_s,
        plan_xy_m=np.zeros((len(plan), 2)), plan_speed_mps=np.full(len(plan), speed_mps), plan_accel_mps2=plan,
        plan_step_s=0.1, plan_ok=plan_ok, plan_error="" if plan_ok else "failed", plan_leader_track=leader)


def trace(frames: Sequence[FrameTrace], *, scenario_id: str = "scn-a", tags: Sequence[str] = ("synthetic",),
          mode: str = OPEN_LOOP, events: Sequence[Event] = (), collisions: int = 0, km: float = 0.01) -> ScenarioTrace:
    return ScenarioTrace(scenario_id=scenario_id, log_id="log-a", source="synthetic", tags=frozenset(tags), mode=mode,
                         reactive=mode == CLOSED_LOOP, frames=tuple(frames), events=tuple(events), km=km,
                         logged_km=km, collisions=collisions,
                         stack={"detector": "oracle", "tracker": "default", "predictor": "constant_velocity",
                                "planner": "default"})


def meta_with(behaviours: Sequence[tuple[str, int, int, Sequence[str]]]) -> dict[str, Any]:
    """A log meta holding fleet ground truth with these (tag, first frame, last frame, track ids) events."""
    from andon.simulation.ground_truth import META_KEY, BehaviourEvent, FleetGroundTruth

    events = tuple(BehaviourEvent(tag, T0_NS + a * STEP_NS, T0_NS + b * STEP_NS, tuple(ids))
                   for tag, a, b, ids in behaviours)
    return {META_KEY: FleetGroundTruth(seed=0, behaviours=events).to_dict()}


def suite_doc(**changes: Any) -> dict[str, Any]:
    """A valid suite document; keyword arguments replace top-level keys."""
    doc: dict[str, Any] = {
        "name": "unit", "owner": "tests", "description": "a unit-test suite",
        "selector": {"query": "tag:synthetic"},
        "checks": [{"name": "recall", "metric": "detection_recall", "scope": "per_scenario",
                    "filters": {"classes": ["vehicle"], "max_range_m": 50.0}, "comparator": ">=", "threshold": 0.8,
                    "severity": "blocking"}],
    }
    doc.update(changes)
    return doc

"""Driving metrics of suites: phantom braking, a lost lead vehicle, and the replay's events and kilometres.

- phantom_braking [sum]: hard-braking onsets with nothing to brake for. An onset is a frame whose
  plan commands `plan_accel_mps2[0] < -decel_threshold_mps2` (3 m/s²) at ego speed >=
  `min_speed_mps` (1 m/s) when the previous frame's did not. Seen from the onset's pose, the ego's
  corridor is 0 < x <= stopping distance v²/(2 `comfortable_decel_mps2`) + v `reaction_s` + `gap_m`
  and |y| <= `corridor_half_width_m` (the planner's lane half width plus margin, 2.875 m). The onset
  is justified when (a) some GT agent of any class, at any frame within `lookahead_s` (3 s) after it,
  has its centre in the corridor, or (b) a logged stop lies in the corridor and has not ended yet: a
  run of logged frames with speed < `stop_speed_mps` (0.5 m/s) lasting >= `stop_min_s` (1 s), at the
  logged ego's position (the replay's stop lines: logs carry no light states, the logged driver's
  stops stand for lights and yields). The corridor follows the route (the logged ego path, extended
  straight), as the replay's planner does. With `clear_radius_m` > 0 only onsets on an empty road
  count: no GT agent within that distance of the ego at the onset (ghost objects, not nervousness
  about real ones). Value: the unjustified onsets.
- lead_lost_s [max]: the lead vehicle at a frame is the nearest GT object (classes, default vehicle)
  in the ego's lane ahead: 0 < x <= max_range_m (60 m), |y| <= `corridor_half_width_m` (1.875 m) in
  the ego frame. It is lost while no confirmed track lies within `match_distance_m` of its centre.
  Value: the longest run of consecutive frames with the same lead lost, in seconds (frames x the
  frame period); 0 when it was always tracked; not applicable when no frame has a lead.
- disengagements, collisions, ttc_events, km [sum]: the replay's events, collided agents, events with
  a TTC cause, and driven kilometres (closed loop by default).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from andon.simulation.trace import TTC, ScenarioTrace
from andon.test_suites.log_context import LogContext
from andon.test_suites.metric_records import MAX_EVIDENCE, MetricValue, not_applicable, unscored
from andon.test_suites.route import Route
from andon.test_suites.schema import Filters
from andon.test_suites.selection import as_boxes, as_strings, class_mask


# ----- planning -----------------------------------------------------------------------------------------
def logged_stops(context: LogContext, stop_speed_mps: float, stop_min_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Where and until when the logged ego stood: (S, 2) world positions and (S,) end times [ns].

    A stop is a run of logged frames with speed (central differences of the poses) below
    `stop_speed_mps` lasting at least `stop_min_s`; its position is the ego's at the run's last frame.
    """
    stamps, poses = context.timestamps_ns, context.ego_poses
    if len(stamps) < 2:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    velocity = np.gradient(poses[:, :2], stamps.astype(np.float64) * 1e-9, axis=0)
    slow = np.hypot(velocity[:, 0], velocity[:, 1]) < stop_speed_mps
    edges = np.diff(np.concatenate([[0], slow.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    long_enough = (stamps[ends] - stamps[starts]) >= int(round(stop_min_s * 1e9))
    ends = ends[long_enough]
    return poses[ends, :2].reshape(-1, 2), stamps[ends].astype(np.int64)


def phantom_braking(trace: ScenarioTrace, context: LogContext, filters: Filters,
                    params: Mapping[str, float]) -> MetricValue:
    """Hard-braking onsets with no agent in the corridor ahead and no stop line (module docstring)."""
    frames = trace.frames
    if not frames:
        return not_applicable("the replay has no frame")
    accel = np.array([float(f.plan_accel_mps2[0]) if f.plan_ok and len(f.plan_accel_mps2) else np.nan for f in frames])
    speed = np.array([f.ego_speed_mps for f in frames], dtype=np.float64)
    hard = (accel < -params["decel_threshold_mps2"]) & (speed >= params["min_speed_mps"])
    onsets = np.flatnonzero(hard & ~np.concatenate([[False], hard[:-1]]))
    stamps = np.array([f.timestamp_ns for f in frames], dtype=np.int64)
    counts = np.array([len(as_boxes(f.gt_boxes)) for f in frames], dtype=np.int64)
    all_xy = np.concatenate([as_boxes(f.gt_boxes)[:, :2] for f in frames])
    all_frame = np.repeat(np.arange(len(frames)), counts)
    stop_xy, stop_until_ns = logged_stops(context, params["stop_speed_mps"], params["stop_min_s"])
    lookahead_ns = int(round(params["lookahead_s"] * 1e9))
    route = Route.of(trace, context) if len(onsets) else None
    listed: list[dict[str, Any]] = []
    phantom: list[int] = []
    for i in onsets.tolist():
        frame = frames[i]
        v = float(speed[i])
        stop_m = v * v / (2.0 * params["comfortable_decel_mps2"]) + v * params["reaction_s"] + params["gap_m"]
        window = (stamps[all_frame] >= stamps[i]) & (stamps[all_frame] <= stamps[i] + lookahead_ns)
        ego_xy = np.asarray(frame.ego_pose, dtype=np.float64)[:2]
        if params["clear_radius_m"] > 0:  # only braking on an empty road counts
            near = all_xy[all_frame == i]
            if (np.hypot(near[:, 0] - ego_xy[0], near[:, 1] - ego_xy[1]) <= params["clear_radius_m"]).any():
                listed.append({"frame_index": frame.index, "accel_mps2": round(float(accel[i]), 3),
                               "speed_mps": round(v, 3), "stopping_distance_m": round(stop_m, 2),
                               "leader_track": int(frame.plan_leader_track), "justified_by": "road not empty"})
                continue
        half_width = params["corridor_half_width_m"]
        in_corridor, _ = route.ahead(ego_xy, all_xy[window], half_width, stop_m)
        at_stop, _ = route.ahead(ego_xy, stop_xy[stop_until_ns >= stamps[i]], half_width, stop_m)
        reason = "agent in corridor" if in_corridor.any() else ("logged stop" if at_stop.any() else "")
        if not reason:
            phantom.append(i)
        listed.append({"frame_index": frame.index, "accel_mps2": round(float(accel[i]), 3), "speed_mps": round(v, 3),
                       "stopping_distance_m": round(stop_m, 2), "leader_track": int(frame.plan_leader_track),
                       "justified_by": reason or None})
    n_planned = int(np.isfinite(accel).sum())
    if n_planned == 0:
        return unscored("the planner produced no plan in any frame", {"n_frames": len(frames)}, frames[0].index)
    worst = min(phantom, key=lambda i: accel[i]) if phantom else None
    evidence = {"n_phantom": len(phantom), "n_hard_braking": len(onsets), "onsets": listed[:MAX_EVIDENCE],
                "phantom_frames": [frames[i].index for i in phantom][:MAX_EVIDENCE], "n_planned_frames": n_planned}
    return MetricValue(float(len(phantom)), 1.0, evidence, None if worst is None else frames[worst].index)


# ----- tracking -----------------------------------------------------------------------------------------
def _frame_period_s(trace: ScenarioTrace) -> float:
    stamps = np.array([f.timestamp_ns for f in trace.frames], dtype=np.int64)
    return float(np.median(np.diff(stamps))) / 1e9 if len(stamps) > 1 else 0.1


def lead_lost_s(trace: ScenarioTrace, context: LogContext, filters: Filters,
                params: Mapping[str, float]) -> MetricValue:
    """The longest time [s] the same lead vehicle had no confirmed track near it (module docstring)."""
    classes = filters.classes or ("vehicle",)
    max_range_m = filters.max_range_m if filters.max_range_m is not None else params["max_range_m"]
    min_range_m = filters.min_range_m or 0.0
    lead_ids: list[str | None] = []
    lost: list[bool] = []
    route = Route.of(trace, context)
    for frame in trace.frames:
        boxes = as_boxes(frame.gt_boxes)
        inside, distance = route.ahead(np.asarray(frame.ego_pose, dtype=np.float64)[:2], boxes[:, :2],
                                       params["corridor_half_width_m"], max_range_m)
        ahead = class_mask(as_strings(frame.gt_classes), classes) & inside & (distance >= min_range_m)
        if not ahead.any():
            lead_ids.append(None)
            lost.append(False)
            continue
        lead = int(np.flatnonzero(ahead)[np.argmin(distance[ahead])])
        tracks = np.asarray(frame.track_xy_m, dtype=np.float64).reshape(-1, 2)
        near = np.hypot(tracks[:, 0] - boxes[lead, 0], tracks[:, 1] - boxes[lead, 1]) <= params["match_distance_m"]
        lead_ids.append(str(as_strings(frame.gt_track_ids)[lead]))
        lost.append(not bool(near.any()))
    n_lead = sum(i is not None for i in lead_ids)
    if n_lead == 0:
        return not_applicable("no lead vehicle in the corridor ahead in any frame")
    period_s = _frame_period_s(trace)
    runs: list[tuple[int, int, str]] = []  # (first, last) frame positions and the lead's track id
    start = None
    for i, (lead_id, is_lost) in enumerate(zip(lead_ids, lost, strict=True)):
        continues = start is not None and is_lost and lead_id == lead_ids[i - 1]
        if start is not None and not continues:
            runs.append((start, i - 1, str(lead_ids[start])))
            start = None
        if is_lost and start is None:
            start = i
    if start is not None:
        runs.append((start, len(lead_ids) - 1, str(lead_ids[start])))
    if not runs:
        return MetricValue(0.0, float(n_lead), {"n_lead_frames": n_lead, "n_lost_frames": 0, "runs": []})
    durations = [(last - first + 1) * period_s for first, last, _ in runs]
    longest = int(np.argmax(durations))
    first, last, track = runs[longest]
    frames = trace.frames
    evidence = {"n_lead_frames": n_lead, "n_lost_frames": int(sum(lost)), "frame_period_s": round(period_s, 6),
                "longest": {"track_id": track, "first_frame_index": frames[first].index,
                            "last_frame_index": frames[last].index, "duration_s": round(durations[longest], 6)},
                "runs": [[t, frames[a].index, frames[b].index, round(d, 6)]
                         for (a, b, t), d in sorted(zip(runs, durations, strict=True), key=lambda r: -r[1])][:MAX_EVIDENCE],
                "run_fields": ["track_id", "first_frame_index", "last_frame_index", "duration_s"]}
    return MetricValue(float(durations[longest]), float(n_lead), evidence, frames[first].index, (track,))


# ----- system -------------------------------------------------------------------------------------------
def _events_evidence(trace: ScenarioTrace, wanted: Callable[[Any], bool]) -> tuple[list[Any], dict[str, Any]]:
    events = [e for e in trace.events if wanted(e)]
    evidence = {"events": [{"frame_index": e.frame_index, "time_ns": e.time_ns, "cause": e.cause,
                            "track_ids": list(e.track_ids), "detail": e.detail} for e in events[:MAX_EVIDENCE]]}
    return events, evidence


def disengagements(trace: ScenarioTrace, context: LogContext, filters: Filters,
                   params: Mapping[str, float]) -> MetricValue:
    """Number of disengagements (merged events) of the replay."""
    events, evidence = _events_evidence(trace, lambda e: True)
    first = events[0] if events else None
    return MetricValue(float(len(events)), 1.0, evidence, None if first is None else first.frame_index,
                       () if first is None else tuple(first.track_ids))


def collisions(trace: ScenarioTrace, context: LogContext, filters: Filters,
               params: Mapping[str, float]) -> MetricValue:
    """Number of distinct agents the ego's box overlapped (closed loop)."""
    events, evidence = _events_evidence(trace, lambda e: "collision" in (e.cause, *e.causes))
    first = events[0] if events else None
    return MetricValue(float(trace.collisions), 1.0, evidence, None if first is None else first.frame_index,
                       () if first is None else tuple(first.track_ids))


def ttc_events(trace: ScenarioTrace, context: LogContext, filters: Filters,
               params: Mapping[str, float]) -> MetricValue:
    """Number of disengagements with a time-to-collision cause."""
    events, evidence = _events_evidence(trace, lambda e: TTC in (e.cause, *e.causes))
    first = events[0] if events else None
    return MetricValue(float(len(events)), 1.0, evidence, None if first is None else first.frame_index,
                       () if first is None else tuple(first.track_ids))


def km(trace: ScenarioTrace, context: LogContext, filters: Filters, params: Mapping[str, float]) -> MetricValue:
    """Kilometres the ego drove in the replay."""
    return MetricValue(float(trace.km), 1.0, {"km": float(trace.km), "logged_km": float(trace.logged_km)})

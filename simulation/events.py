"""Disengagements: where a safety driver would have taken over, found on a replay's frames.

Pure functions over `FrameTrace`s (the frames are padded into (F, N) arrays once; every check is
vectorised over frames and agents). Four checks, each giving "parts" (one per frame where it holds):

- collision (closed loop only): the ego's box (`ego_length_m` x `ego_width_m` at its pose) overlaps a
  ground-truth box in the bird's-eye view (separating axis test, simulation.box_geometry).
- ttc: the plan comes within `safety_margin_m` of a ground-truth agent within `ttc_threshold_s`. Each
  agent moves at constant velocity (its ground-truth velocity; NaN counts as standing) keeping its
  heading; the ego follows its plan, headed along the plan's direction of motion. "Within the margin"
  is box to box: the ego's box grown by the margin on every side overlaps the agent's box (exact but
  for the grown box's square corners, conservative by at most 0.41 x margin). The time to collision
  is the first plan time where that holds. In the spirit of nuPlan's at-fault rules, the check is
  skipped while the ego stands (speed below `stopped_speed_mps`: a standing ego causes nothing) and
  for agents whose centre is behind the ego's rear bumper (closing in from behind is theirs to avoid).
- planner_failure: the planner raised or returned a non-finite plan (FrameTrace.plan_ok False).
- perception_miss: a vehicle, pedestrian or cyclist lies in the ego's corridor ahead (its box reaches
  within `ego_width_m / 2 + corridor_margin_m` of the ego's centre line, and its near side within the
  stopping distance v² / (2 `stopping_decel_mps2`) + `perception_margin_m` of the ego's front) while no
  detection of the frame and no confirmed track lies within `match_distance_m` of it, for longer than
  `perception_miss_s` without a break. One part when that duration is first exceeded.

Merging: parts in time order join the current event while they come at most `merge_window_s` after
its latest part (so a condition that lasts is one event however long it lasts); an event takes the
time and frame of its first part, the most severe cause of its parts (trace.CAUSES order), all their
causes, and the union of their track ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from andon.simulation.box_geometry import rectangles_overlap, support_extents, to_frame
from andon.simulation.trace import (
    CAUSES,
    CLOSED_LOOP,
    COLLISION,
    PERCEPTION_MISS,
    PLANNER_FAILURE,
    TTC,
    Event,
    FrameTrace,
)

ROAD_USERS = ("vehicle", "pedestrian", "cyclist")  # the classes a perception miss counts for


class EventSettings(Protocol):
    """The thresholds the checks read (ReplayConfig has them all)."""

    ttc_threshold_s: float
    safety_margin_m: float
    perception_miss_s: float
    stopping_decel_mps2: float
    merge_window_s: float
    match_distance_m: float
    ego_length_m: float
    ego_width_m: float
    perception_margin_m: float
    corridor_margin_m: float
    stopped_speed_mps: float


@dataclass(frozen=True, slots=True)
class EventPart:
    """One frame where one check holds."""

    frame_index: int
    time_ns: int
    cause: str
    track_ids: tuple[str, ...]
    detail: str


@dataclass(frozen=True, slots=True, eq=False)
class FrameArrays:
    """The frames padded for vectorised checks: F frames, N ground-truth slots, D detections, T tracks, P plan states."""

    index: np.ndarray  # (F,) FrameTrace.index
    time_ns: np.ndarray  # (F,) int64
    ego_xy_m: np.ndarray  # (F, 2)
    ego_yaw_rad: np.ndarray  # (F,)
    ego_speed_mps: np.ndarray  # (F,)
    gt_boxes: np.ndarray  # (F, N, 7), NaN padding
    gt_classes: np.ndarray  # (F, N) str, "" padding
    gt_ids: np.ndarray  # (F, N) str, "" padding
    gt_velocity_mps: np.ndarray  # (F, N, 2)
    det_xy_m: np.ndarray  # (F, D, 2), NaN padding (and NaN on frames without a sweep)
    track_xy_m: np.ndarray  # (F, T, 2), NaN padding
    plan_xy_m: np.ndarray  # (F, P, 2), NaN where the plan failed or is shorter
    plan_step_s: np.ndarray  # (F,) NaN where the plan failed
    plan_ok: np.ndarray  # (F,) bool

    @classmethod
    def of(cls, frames: Sequence[FrameTrace]) -> FrameArrays:
        poses = np.array([f.ego_pose for f in frames], dtype=np.float64).reshape(-1, 4)
        ok = np.array([f.plan_ok for f in frames], dtype=bool)
        return cls(
            index=np.array([f.index for f in frames], dtype=np.int64),
            time_ns=np.array([f.timestamp_ns for f in frames], dtype=np.int64),
            ego_xy_m=poses[:, :2], ego_yaw_rad=poses[:, 3],
            ego_speed_mps=np.array([f.ego_speed_mps for f in frames], dtype=np.float64),
            gt_boxes=pad([f.gt_boxes for f in frames], (7,), np.nan),
            gt_classes=pad([f.gt_classes for f in frames], (), "", dtype=None),
            gt_ids=pad([f.gt_track_ids for f in frames], (), "", dtype=None),
            gt_velocity_mps=pad([f.gt_velocities_mps for f in frames], (2,), np.nan),
            det_xy_m=pad([f.det_boxes[:, :2] for f in frames], (2,), np.nan),
            track_xy_m=pad([f.track_xy_m for f in frames], (2,), np.nan),
            plan_xy_m=pad([f.plan_xy_m for f in frames], (2,), np.nan),
            plan_step_s=np.where(ok, np.array([f.plan_step_s for f in frames], dtype=np.float64), np.nan),
            plan_ok=ok)


def pad(rows: Sequence[np.ndarray], tail: tuple[int, ...], fill: object, dtype: type | None = np.float64
        ) -> np.ndarray:
    """Stack ragged per-frame arrays (n_f, *tail) into (F, max n_f, *tail), padded with `fill`, without a loop
    over their rows (dtype None: the rows' own, e.g. strings as wide as the widest)."""
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    width = int(counts.max()) if len(counts) else 0
    if width == 0:
        return np.full((len(rows), 0, *tail), fill, dtype=dtype)
    try:
        joined = np.concatenate(rows)
    except ValueError:  # an empty row without the tail's shape
        joined = np.concatenate([np.asarray(r).reshape(-1, *tail) for r in rows])
    dtype = joined.dtype if dtype is None else dtype
    if len(joined) == len(rows) * width:  # every row full (the same agents every frame): nothing to pad
        return joined.astype(dtype, copy=False).reshape(len(rows), width, *tail)
    out = np.full((len(rows), width, *tail), fill, dtype=dtype)
    out[np.arange(width) < counts[:, None]] = joined  # row-major: frame by frame, slot by slot, as joined
    return out


def detect_events(scenario_id: str, frames: Sequence[FrameTrace], mode: str,
                  settings: EventSettings) -> tuple[tuple[Event, ...], int]:
    """The merged disengagements of a replay and its number of collisions (distinct agents overlapped).

    Args:
        scenario_id: the scenario replayed (copied into each Event).
        frames: the replay's frames, in time order.
        mode: OPEN_LOOP or CLOSED_LOOP (collisions count in closed loop only).
        settings: the thresholds (module docstring).
    """
    if not frames:
        return (), 0
    arrays = FrameArrays.of(frames)
    parts: list[EventPart] = []
    collisions = 0
    if mode == CLOSED_LOOP:
        collision, collisions = collision_parts(arrays, settings)
        parts += collision
    parts += ttc_parts(arrays, settings)
    parts += planner_failure_parts(frames)
    parts += perception_miss_parts(arrays, settings)
    return merge_parts(scenario_id, parts, settings.merge_window_s), collisions


def _ego_half(settings: EventSettings) -> np.ndarray:
    return np.array([0.5 * settings.ego_length_m, 0.5 * settings.ego_width_m])


def collision_parts(arrays: FrameArrays, settings: EventSettings) -> tuple[list[EventPart], int]:
    """Frames where the ego's box overlaps ground-truth boxes; and the number of distinct agents overlapped."""
    boxes = arrays.gt_boxes
    hit = rectangles_overlap(arrays.ego_xy_m[:, None], arrays.ego_yaw_rad[:, None], _ego_half(settings),
                             boxes[..., :2], boxes[..., 6], 0.5 * boxes[..., 3:5])
    parts = []
    for f in np.flatnonzero(hit.any(axis=1)):
        slots = np.flatnonzero(hit[f])
        ids = tuple(sorted(arrays.gt_ids[f, slots].tolist()))
        named = ", ".join(f"{c} {i}" for c, i in zip(arrays.gt_classes[f, slots].tolist(), arrays.gt_ids[f, slots].tolist(),
                                                    strict=True))
        parts.append(EventPart(int(arrays.index[f]), int(arrays.time_ns[f]), COLLISION, ids,
                               f"collision with {named} at {arrays.ego_speed_mps[f]:.1f} m/s"))
    return parts, len(set(arrays.gt_ids[hit].tolist()))


def ttc_parts(arrays: FrameArrays, settings: EventSettings) -> list[EventPart]:
    """Frames where the plan comes within the safety margin of an agent within the TTC threshold."""
    ok = arrays.plan_ok & (arrays.ego_speed_mps >= settings.stopped_speed_mps) & np.isfinite(arrays.plan_step_s)
    if not ok.any() or arrays.gt_boxes.shape[1] == 0 or arrays.plan_xy_m.shape[1] == 0:
        return []
    step_s = float(np.nanmin(arrays.plan_step_s[ok]))
    n_steps = min(int(np.floor(settings.ttc_threshold_s / step_s + 1e-9)) + 1, arrays.plan_xy_m.shape[1])
    times_s = np.arange(n_steps) * step_s  # (K,)
    plan = arrays.plan_xy_m[:, :n_steps]  # (F, K, 2)
    plan_yaw = _headings(arrays.plan_xy_m[:, :n_steps + 1], arrays.ego_yaw_rad)[:, :n_steps]
    boxes = arrays.gt_boxes
    velocity = np.where(np.isfinite(arrays.gt_velocity_mps), arrays.gt_velocity_mps, 0.0)
    ego_half = _ego_half(settings)
    # Cheap screen on (F, N): could they meet at all within the threshold? Then the exact test on pairs.
    ahead_m, _ = to_frame(boxes[..., :2], arrays.ego_xy_m[:, None], arrays.ego_yaw_rad[:, None])
    plan_reach = np.nanmax(np.hypot(*(plan - plan[:, :1]).transpose(2, 0, 1)), axis=1, initial=0.0)  # (F,)
    agent_reach = np.hypot(velocity[..., 0], velocity[..., 1]) * times_s[-1] + 0.5 * np.hypot(boxes[..., 3], boxes[..., 4])
    distance = np.hypot(*(boxes[..., :2] - arrays.ego_xy_m[:, None]).transpose(2, 0, 1))
    with np.errstate(invalid="ignore"):
        candidate = ok[:, None] & (ahead_m >= -ego_half[0]) & \
            (distance <= plan_reach[:, None] + agent_reach + np.hypot(*ego_half) + settings.safety_margin_m)
    frame, slot = np.nonzero(candidate)
    if len(frame) == 0:
        return []
    agent_xy = boxes[frame, slot, None, :2] + velocity[frame, slot, None, :] * times_s[None, :, None]  # (C, K, 2)
    ego_xy = plan[frame]
    # Second screen per plan step: centres closer than the two circumradii plus the margin; then the exact test.
    reach = np.hypot(*ego_half) + settings.safety_margin_m + 0.5 * np.hypot(boxes[frame, slot, 3], boxes[frame, slot, 4])
    with np.errstate(invalid="ignore"):
        close = np.hypot(*(ego_xy - agent_xy).transpose(2, 0, 1)) <= reach[:, None]  # (C, K); NaN plan: False
    pair, step = np.nonzero(close)
    hit = np.zeros(close.shape, dtype=bool)
    hit[pair, step] = rectangles_overlap(ego_xy[pair, step], plan_yaw[frame[pair], step], ego_half, agent_xy[pair, step],
                                         boxes[frame[pair], slot[pair], 6], 0.5 * boxes[frame[pair], slot[pair], 3:5],
                                         margin_m=settings.safety_margin_m)
    found = hit.any(axis=1)
    if not found.any():
        return []
    ttc_s = np.where(found, times_s[np.argmax(hit, axis=1)], np.inf)
    parts = []
    for f in np.unique(frame[found]):
        mine = np.flatnonzero((frame == f) & found)
        first = mine[np.argmin(ttc_s[mine])]
        ids = tuple(sorted(arrays.gt_ids[f, slot[mine]].tolist()))
        parts.append(EventPart(int(arrays.index[f]), int(arrays.time_ns[f]), TTC, ids,
                               f"TTC {ttc_s[first]:.1f} s to {arrays.gt_classes[f, slot[first]]} "
                               f"{arrays.gt_ids[f, slot[first]]} (threshold {settings.ttc_threshold_s:g} s, "
                               f"margin {settings.safety_margin_m:g} m)"))
    return parts


def _headings(path_xy: np.ndarray, fallback_yaw: np.ndarray) -> np.ndarray:
    """(F, K) heading at each point of paths (F, K, 2): toward the next point (the last: from the previous);
    where the path does not move, the fallback yaw (F,)."""
    if path_xy.shape[1] < 2:
        return np.broadcast_to(fallback_yaw[:, None], path_xy.shape[:2]).copy()
    delta = np.diff(path_xy, axis=1)
    delta = np.concatenate([delta, delta[:, -1:]], axis=1)
    moving = np.hypot(delta[..., 0], delta[..., 1]) > 1e-3
    return np.where(moving, np.arctan2(delta[..., 1], delta[..., 0]), fallback_yaw[:, None])


def planner_failure_parts(frames: Sequence[FrameTrace]) -> list[EventPart]:
    """Frames where the planner failed."""
    return [EventPart(f.index, f.timestamp_ns, PLANNER_FAILURE, (), f"planner failed: {f.plan_error or 'no plan'}")
            for f in frames if not f.plan_ok]


def perception_miss_parts(arrays: FrameArrays, settings: EventSettings) -> list[EventPart]:
    """Frames where a road user in the ego's stopping corridor has gone unperceived for longer than the threshold."""
    boxes = arrays.gt_boxes
    if boxes.shape[1] == 0:
        return []
    ego_half = _ego_half(settings)
    ahead_m, left_m = to_frame(boxes[..., :2], arrays.ego_xy_m[:, None], arrays.ego_yaw_rad[:, None])
    along_m, across_m = support_extents(0.5 * boxes[..., 3:5], boxes[..., 6], arrays.ego_yaw_rad[:, None])
    stopping_m = arrays.ego_speed_mps ** 2 / (2.0 * settings.stopping_decel_mps2) + settings.perception_margin_m
    road_user = np.isin(arrays.gt_classes, ROAD_USERS)
    with np.errstate(invalid="ignore"):
        inside = road_user & (ahead_m > 0.0) & (ahead_m - ego_half[0] - along_m <= stopping_m[:, None]) & \
            (np.abs(left_m) <= ego_half[1] + settings.corridor_margin_m + across_m)
    frame, slot = np.nonzero(inside)
    if len(frame) == 0:
        return []
    centre = boxes[frame, slot, None, :2]
    near = np.full(len(frame), np.inf)
    for seen in (arrays.det_xy_m, arrays.track_xy_m):
        if seen.shape[1]:
            gap = np.hypot(*(seen[frame] - centre).transpose(2, 0, 1))
            near = np.minimum(near, np.min(np.where(np.isfinite(gap), gap, np.inf), axis=1))
    missed_pair = near > settings.match_distance_m
    # Per agent over time: (F, U) missed, then how long each run of misses has lasted.
    ids, column = np.unique(arrays.gt_ids[frame, slot], return_inverse=True)
    missed = np.zeros((len(arrays.time_ns), len(ids)), dtype=bool)
    missed[frame[missed_pair], column[missed_pair]] = True
    rows = np.arange(len(arrays.time_ns))[:, None]
    last_seen = np.maximum.accumulate(np.where(missed, -1, rows), axis=0)
    start = np.minimum(last_seen + 1, len(arrays.time_ns) - 1)
    lasted_ns = np.where(missed, arrays.time_ns[:, None] - arrays.time_ns[start], -1)
    over = lasted_ns > int(round(settings.perception_miss_s * 1e9))
    onset = over & ~np.vstack([np.zeros((1, len(ids)), dtype=bool), over[:-1]])
    where = {(int(f), int(c)): i for i, (f, c) in enumerate(zip(frame, column, strict=True))}
    parts = []
    for f, c in zip(*np.nonzero(onset), strict=True):
        pair = where[(int(f), int(c))]
        parts.append(EventPart(int(arrays.index[f]), int(arrays.time_ns[f]), PERCEPTION_MISS, (str(ids[c]),),
                               f"perception missed {arrays.gt_classes[f, slot[pair]]} {ids[c]} for "
                               f"{lasted_ns[f, c] / 1e9:.1f} s, {ahead_m[f, slot[pair]]:.1f} m ahead (stopping "
                               f"distance {stopping_m[f]:.1f} m, threshold {settings.perception_miss_s:g} s)"))
    return parts


def merge_parts(scenario_id: str, parts: Sequence[EventPart], merge_window_s: float) -> tuple[Event, ...]:
    """Merge parts into events (module docstring): chains with gaps of at most `merge_window_s`."""
    severity = {cause: rank for rank, cause in enumerate(CAUSES)}
    ordered = sorted(parts, key=lambda p: (p.time_ns, severity[p.cause], p.track_ids, p.detail))
    window_ns = int(round(merge_window_s * 1e9))
    groups: list[list[EventPart]] = []
    for part in ordered:
        if groups and part.time_ns - groups[-1][-1].time_ns <= window_ns:
            groups[-1].append(part)
        else:
            groups.append([part])
    events = []
    for group in groups:
        causes = tuple(sorted({p.cause for p in group}, key=severity.__getitem__))
        worst = next(p for p in group if p.cause == causes[0])
        detail = worst.detail if len(group) == 1 else \
            f"{worst.detail} (+{len(group) - 1} more: {', '.join(causes)})"
        events.append(Event(scenario_id=scenario_id, time_ns=group[0].time_ns, cause=causes[0], causes=causes,
                            track_ids=tuple(sorted({t for p in group for t in p.track_ids})),
                            frame_index=group[0].frame_index, detail=detail))
    return tuple(events)


__all__ = ["EventPart", "EventSettings", "FrameArrays", "collision_parts", "detect_events", "merge_parts",
           "pad", "perception_miss_parts", "planner_failure_parts", "ttc_parts"]

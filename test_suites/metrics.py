"""The metrics suites check, computed on one replayed scenario (a `ScenarioTrace`) and its log.

`METRICS` is a plain dict, name -> Metric: the set of metrics is visible here and nowhere else. A metric
is `fn(trace, context, filters, params) -> MetricValue`, where `context` (a `LogContext`) holds what
it reads of the scenario's log besides the trace: the meta (the fleet's ground-truth behaviour
events), the logged ego poses and the logged agents' world positions from the scenario's start to
FUTURE_S after its end. `value` None with `applicable` False means "not applicable" (the filters
select nothing in this scenario: skipped); None with `applicable` True means the stack gave nothing
to score where there was something to judge (fails). `weight` is how much the scenario counts when
pooled over a suite (objects, samples); `evidence` says which objects and frames made the value;
`worst_frame_index` is the frame a picture of a failure shows. Every metric takes the `tags` filter
(applied before it runs, see `evaluate_metric`); the others are listed per metric and refused at load
when a metric does not take them. Units: metres, seconds, m/s, m/s²; positions are world-frame BEV.

The selected ground truth ("GT") of a frame: its ground-truth agents whose class is in `classes` (all
when empty), whose BEV distance from the ego is within [min_range_m, max_range_m], and, with
`involved_tag`, whose track id a ground-truth behaviour event of that tag names while the frame lies
in the event's window (logs without behaviour ground truth make such a check not applicable).

- detection_recall [pooled by sightings]: over frames with a lidar sweep, the share of selected GT
  objects matched by a detection. Matching is one-to-one per frame, same class, BEV centre distance
  <= `match_distance_m` (2 m), the most pairs then the least total distance (Hungarian), over every
  box of the filtered classes (a detection just outside the range may match an object just inside).
  Evidence: the missed (track id, frame index) pairs; the worst frame has the most misses.
- object_recall [pooled by objects]: the share of selected GT objects (track ids) detected on at
  least `min_hit_share` (0.5) of the sweep frames where they are selected (same matching): "each
  pedestrian at the crossing is seen", robust to a detector that drops single frames at random.
- detection_precision [pooled by detections]: over the same frames, the share of the filtered classes'
  detections within range that match a GT object (same matching). Not applicable without detections.
- min_fde / min_ade / fde / miss_rate [pooled by samples]: a sample is (frame, selected GT agent)
  where a confirmed track lies within `match_distance_m` of the agent (one-to-one, Hungarian) and
  has predictions, and the agent's future is known over the horizon: its positions at t0 + step_s,
  ..., t0 + H step_s, linearly interpolated in time from the trace's later frames and, past the
  trace's end, the log's (open loop or non-reactive closed loop; a reactive replay's future is its
  own). H is the predictor's horizon, or `horizon_s` / step_s. minFDE_k / minADE_k: the smallest
  final / mean displacement over the k most probable modes (`k` 0: all); fde: the final displacement
  of the most probable mode; miss_rate: the share of samples whose minFDE_k exceeds
  `miss_threshold_m` (2 m). The value is the mean over samples, the worst sample the evidence. An
  agent with a known future that no track ever predicted fails the scenario (unscored).
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

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from andon.errors import BadInput
from andon.simulation.ground_truth import FleetGroundTruth
from andon.simulation.trace import CLOSED_LOOP, OPEN_LOOP, TTC, FrameTrace, ScenarioTrace
from andon.test_suites.schema import Check, Filters

POOLED = "pooled"
MAX = "max"
SUM = "sum"
MEAN = "mean"
AGGREGATES = (POOLED, MAX, SUM, MEAN)
MAX_EVIDENCE = 50  # listed objects/frames per scenario and check; counts are always complete
_UNMATCHABLE = 1e6  # cost of a pair farther than the match distance (> any sum of real distances)
FUTURE_S = 10.0  # the log context reaches this far past the scenario's end (prediction futures, stops) [s]


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One metric on one scenario.

    Attributes:
        value: the metric, or None when not applicable (`reason` says why).
        weight: how much this scenario counts when pooled (objects, samples); 0 when not applicable.
        evidence: JSON-able: which objects and frames made the value.
        worst_frame_index: the trace frame a picture of a failure shows (None: no particular frame).
        track_ids: ground-truth track ids to highlight in that picture.
        reason: why the value is None ("" otherwise).
        applicable: False when the filters select nothing in the scenario (the check skips it); a value
            of None that IS applicable means the stack gave nothing to score (e.g. the selected agent was
            never tracked), which fails the check: a suite never passes on missing evidence.
    """

    value: float | None
    weight: float = 1.0
    evidence: dict[str, Any] = field(default_factory=dict)
    worst_frame_index: int | None = None
    track_ids: tuple[str, ...] = ()
    reason: str = ""
    applicable: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "weight": self.weight, "evidence": self.evidence,
                "worst_frame_index": self.worst_frame_index, "track_ids": list(self.track_ids), "reason": self.reason,
                "applicable": self.applicable}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> MetricValue:
        value = doc.get("value")
        frame = doc.get("worst_frame_index")
        return cls(None if value is None else float(value), float(doc.get("weight", 1.0)), dict(doc.get("evidence") or {}),
                   None if frame is None else int(frame), tuple(doc.get("track_ids") or ()), str(doc.get("reason", "")),
                   bool(doc.get("applicable", True)))


def not_applicable(reason: str) -> MetricValue:
    """The filters select nothing here: the check skips this scenario."""
    return MetricValue(None, 0.0, {}, None, (), reason, applicable=False)


def unscored(reason: str, evidence: dict[str, Any] | None = None, frame_index: int | None = None,
             track_ids: tuple[str, ...] = ()) -> MetricValue:
    """There was something to judge but the stack gave nothing to score: the check fails here."""
    return MetricValue(None, 0.0, evidence or {}, frame_index, track_ids, reason, applicable=True)


MetricFn = Callable[[ScenarioTrace, "LogContext", Filters, Mapping[str, float]], MetricValue]


@dataclass(frozen=True, slots=True)
class Metric:
    """A metric: its function, how scenarios pool, its default mode, and the filters and parameters it takes.

    Attributes:
        name: the name suites use.
        fn: (trace, context, filters, params) -> MetricValue; params hold every default.
        aggregate: how an aggregate check combines scenarios: "pooled" (weighted mean), "max", "sum", "mean".
        mode: the replay it needs by default (open_loop or closed_loop).
        unit: of the value, for people.
        description: one line.
        filters: the filters it takes besides `tags` (which every metric takes).
        params: its parameters and their defaults.
    """

    name: str
    fn: MetricFn
    aggregate: str
    mode: str
    unit: str
    description: str
    filters: frozenset[str] = frozenset()
    params: tuple[tuple[str, float], ...] = ()


# ----- the log beside the trace ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, eq=False)
class LogContext:
    """What metrics read of the scenario's log besides its trace (module docstring).

    Attributes:
        meta: the log's meta (andon.simulation.ground_truth: behaviour events of synthetic logs).
        timestamps_ns: (F,) the logged frames' times, from the scenario's start to FUTURE_S after its end.
        ego_poses: (F, 4) the logged ego's world poses at those times.
        box_timestamps_ns: (M,) the time of each logged agent box in that span.
        box_track_ids: (M,) their track ids.
        box_xy_m: (M, 2) their world-frame centres [m].
    """

    meta: Mapping[str, Any] = field(default_factory=dict)
    timestamps_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ego_poses: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    box_timestamps_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    box_track_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))
    box_xy_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @classmethod
    def of(cls, log: Any, t_start_ns: int, t_end_ns: int, future_s: float = FUTURE_S) -> LogContext:
        """The context of a log's window [t_start_ns, t_end_ns + future_s] (annotations only, no lidar)."""
        from andon.scenarios.logstore import boxes_table, ego_poses
        from andon.scenarios.transforms import ego_to_world_xy

        stamps, poses = ego_poses(log)
        stamps = np.asarray(stamps, dtype=np.int64)
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4)
        end_ns = int(t_end_ns) + int(round(future_s * 1e9))
        keep = (stamps >= int(t_start_ns)) & (stamps <= end_ns)
        table = boxes_table(log)
        frame = np.asarray(table["frame_index"], dtype=np.int64)
        rows = np.flatnonzero(keep[frame]) if len(frame) else np.zeros(0, dtype=np.int64)
        xy = np.zeros((len(rows), 2))
        boxes = np.asarray(table["boxes"], dtype=np.float64).reshape(-1, 7)
        for index in np.unique(frame[rows]):  # one rigid transform per frame
            members = rows[frame[rows] == index]
            xy[np.searchsorted(rows, members)] = ego_to_world_xy(boxes[members, :2], poses[index, :2],
                                                                 float(poses[index, 3]))
        return cls(dict(log.meta), stamps[keep], poses[keep], stamps[frame[rows]],
                   np.asarray(table["track_ids"], dtype=str)[rows], xy)


# ----- shared geometry --------------------------------------------------------------------------------
def _boxes(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float64).reshape(-1, 7)


def _strings(array: Any) -> np.ndarray:
    return np.asarray(array, dtype=str).reshape(-1)


def _bev_distance(a_xy: np.ndarray, b_xy: np.ndarray) -> np.ndarray:
    """(A, B) BEV distances [m] between (A, 2) and (B, 2) positions."""
    dx = a_xy[:, None, 0] - b_xy[None, :, 0]
    dy = a_xy[:, None, 1] - b_xy[None, :, 1]
    return np.sqrt(dx * dx + dy * dy)


def assign(distance_m: np.ndarray, max_distance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching: the most pairs within `max_distance_m`, then the least total distance.

    Args:
        distance_m: (A, B) distances; inf (or anything above the bound) forbids a pair.
        max_distance_m: a pair matches only at a distance <= this.

    Returns:
        (rows, cols) of the matched pairs, int64, sorted by row.
    """
    empty = np.zeros(0, dtype=np.int64)
    if distance_m.size == 0:
        return empty, empty
    ok = distance_m <= max_distance_m
    if not ok.any():
        return empty, empty
    rows_any, cols_any = np.flatnonzero(ok.any(axis=1)), np.flatnonzero(ok.any(axis=0))
    sub_ok = ok[np.ix_(rows_any, cols_any)]
    cost = np.where(sub_ok, distance_m[np.ix_(rows_any, cols_any)], _UNMATCHABLE)
    r, c = linear_sum_assignment(cost)
    keep = sub_ok[r, c]
    return rows_any[r[keep]].astype(np.int64), cols_any[c[keep]].astype(np.int64)


def _range_mask(xy_world: np.ndarray, ego_pose: np.ndarray, filters: Filters) -> np.ndarray:
    distance = np.hypot(xy_world[:, 0] - ego_pose[0], xy_world[:, 1] - ego_pose[1])
    keep = np.ones(len(xy_world), dtype=bool)
    if filters.min_range_m is not None:
        keep &= distance >= filters.min_range_m
    if filters.max_range_m is not None:
        keep &= distance <= filters.max_range_m
    return keep


def _class_mask(classes: np.ndarray, wanted: Sequence[str]) -> np.ndarray:
    return np.isin(classes, list(wanted)) if wanted else np.ones(len(classes), dtype=bool)


def _frame_period_s(trace: ScenarioTrace) -> float:
    stamps = np.array([f.timestamp_ns for f in trace.frames], dtype=np.int64)
    return float(np.median(np.diff(stamps))) / 1e9 if len(stamps) > 1 else 0.1


class _Involvement:
    """Which ground-truth agents a behaviour tag names, and when (from the log's FleetGroundTruth)."""

    def __init__(self, meta: Mapping[str, Any], tag: str | None) -> None:
        self.tag = tag
        self.windows: list[tuple[int, int, frozenset[str]]] = []
        self.available = True
        if tag is None:
            return
        truth = FleetGroundTruth.of(dict(meta))
        if truth is None:
            self.available = False
            return
        self.windows = [(b.t_start_ns, b.t_end_ns, frozenset(b.track_ids)) for b in truth.behaviours if b.tag == tag]

    def mask(self, track_ids: np.ndarray, timestamp_ns: int) -> np.ndarray:
        if self.tag is None:
            return np.ones(len(track_ids), dtype=bool)
        named = set().union(*[ids for start, end, ids in self.windows if start <= timestamp_ns <= end])
        return np.isin(track_ids, sorted(named)) if named else np.zeros(len(track_ids), dtype=bool)


def _gt_selection(frame: FrameTrace, filters: Filters, involved: _Involvement) -> np.ndarray:
    boxes = _boxes(frame.gt_boxes)
    return (_class_mask(_strings(frame.gt_classes), filters.classes)
            & _range_mask(boxes[:, :2], np.asarray(frame.ego_pose, dtype=np.float64), filters)
            & involved.mask(_strings(frame.gt_track_ids), frame.timestamp_ns))


def _involvement(context: LogContext, filters: Filters) -> _Involvement | MetricValue:
    involved = _Involvement(context.meta, filters.involved_tag)
    if not involved.available:
        return not_applicable(f"involved_tag {filters.involved_tag!r} needs behaviour ground truth; this log has none")
    if filters.involved_tag is not None and not involved.windows:
        return not_applicable(f"no {filters.involved_tag} behaviour event in this log")
    return involved


# ----- detection ----------------------------------------------------------------------------------------
def _detection_matches(frame: FrameTrace, filters: Filters, match_m: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(gt in class, gt matched, det in class, det matched) masks of one frame (same-class, one-to-one)."""
    gt, det = _boxes(frame.gt_boxes), _boxes(frame.det_boxes)
    gt_cls, det_cls = _strings(frame.gt_classes), _strings(frame.det_classes)
    gt_in, det_in = _class_mask(gt_cls, filters.classes), _class_mask(det_cls, filters.classes)
    gi, di = np.flatnonzero(gt_in), np.flatnonzero(det_in)
    distance = _bev_distance(gt[gi, :2], det[di, :2])
    distance[gt_cls[gi][:, None] != det_cls[di][None, :]] = np.inf
    rows, cols = assign(distance, match_m)
    gt_matched, det_matched = np.zeros(len(gt), dtype=bool), np.zeros(len(det), dtype=bool)
    gt_matched[gi[rows]] = True
    det_matched[di[cols]] = True
    return gt_in, gt_matched, det_in, det_matched


@dataclass(frozen=True, slots=True)
class _Sightings:
    """Selected GT objects on frames with a sweep: one row per (frame, object)."""

    frame_index: np.ndarray  # (S,) trace frame index
    track_ids: np.ndarray  # (S,) str
    matched: np.ndarray  # (S,) bool


def _sightings(trace: ScenarioTrace, context: LogContext, filters: Filters,
               params: Mapping[str, float]) -> _Sightings | MetricValue:
    involved = _involvement(context, filters)
    if isinstance(involved, MetricValue):
        return involved
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for frame in trace.frames:
        if not frame.has_sweep:
            continue
        selected = _gt_selection(frame, filters, involved)
        if not selected.any():
            continue
        _, gt_matched, _, _ = _detection_matches(frame, filters, params["match_distance_m"])
        parts.append((np.full(int(selected.sum()), frame.index), _strings(frame.gt_track_ids)[selected],
                      gt_matched[selected]))
    if not parts:
        return not_applicable("no selected ground-truth object on a frame with a sweep")
    frame_index, track_ids, matched = (np.concatenate(c) for c in zip(*parts, strict=True))
    return _Sightings(frame_index.astype(np.int64), track_ids, matched.astype(bool))


def detection_recall(trace: ScenarioTrace, context: LogContext, filters: Filters,
                     params: Mapping[str, float]) -> MetricValue:
    """Share of the selected GT sightings on frames with a sweep that a detection matches (module docstring)."""
    seen = _sightings(trace, context, filters, params)
    if isinstance(seen, MetricValue):
        return seen
    n = len(seen.matched)
    n_matched = int(seen.matched.sum())
    missed = ~seen.matched
    evidence: dict[str, Any] = {
        "n_objects": n, "n_matched": n_matched, "n_missed": n - n_matched,
        "missed": [[t, int(f)] for t, f in zip(seen.track_ids[missed][:MAX_EVIDENCE].tolist(),
                                               seen.frame_index[missed][:MAX_EVIDENCE].tolist(), strict=True)],
        "missed_fields": ["track_id", "frame_index"]}
    worst_frame, worst_ids = None, ()
    if missed.any():
        frames, counts = np.unique(seen.frame_index[missed], return_counts=True)
        worst_frame = int(frames[np.argmax(counts)])  # the first of the frames with the most misses
        worst_ids = tuple(seen.track_ids[missed & (seen.frame_index == worst_frame)].tolist())
        evidence.update(worst_frame_index=worst_frame, worst_frame_missed=list(worst_ids))
    return MetricValue(n_matched / n, float(n), evidence, worst_frame, worst_ids)


def object_recall(trace: ScenarioTrace, context: LogContext, filters: Filters,
                  params: Mapping[str, float]) -> MetricValue:
    """Share of the selected GT objects detected on at least min_hit_share of their sweep frames."""
    seen = _sightings(trace, context, filters, params)
    if isinstance(seen, MetricValue):
        return seen
    objects, inverse = np.unique(seen.track_ids, return_inverse=True)
    frames = np.bincount(inverse, minlength=len(objects))
    hits = np.bincount(inverse, weights=seen.matched.astype(np.float64), minlength=len(objects))
    share = hits / frames
    detected = share >= params["min_hit_share"]
    order = np.argsort(share, kind="stable")
    undetected = [[str(objects[i]), round(float(share[i]), 4), int(frames[i])] for i in order if not detected[i]]
    evidence: dict[str, Any] = {"n_objects": len(objects), "n_detected": int(detected.sum()),
                                "min_hit_share": float(params["min_hit_share"]),
                                "undetected": undetected[:MAX_EVIDENCE],
                                "undetected_fields": ["track_id", "hit_share", "n_frames"]}
    worst_frame, worst_ids = None, ()
    if undetected:
        worst = int(order[0])
        misses = np.flatnonzero((inverse == worst) & ~seen.matched)
        worst_frame = int(seen.frame_index[misses[0]])
        worst_ids = tuple(u[0] for u in undetected[:MAX_EVIDENCE])
    return MetricValue(float(detected.mean()), float(len(objects)), evidence, worst_frame, worst_ids)


def detection_precision(trace: ScenarioTrace, context: LogContext, filters: Filters,
                        params: Mapping[str, float]) -> MetricValue:
    """Share of the filtered classes' detections within range that match a GT object (module docstring)."""
    n_detections = n_matched = 0
    false: list[list[Any]] = []
    worst: tuple[int, int] = (0, -1)
    for frame in trace.frames:
        if not frame.has_sweep:
            continue
        _, _, det_in, det_matched = _detection_matches(frame, filters, params["match_distance_m"])
        det = _boxes(frame.det_boxes)
        counted = det_in & _range_mask(det[:, :2], np.asarray(frame.ego_pose, dtype=np.float64), filters)
        if not counted.any():
            continue
        fp = counted & ~det_matched
        n_detections += int(counted.sum())
        n_matched += int((counted & det_matched).sum())
        if fp.any():
            classes, scores = _strings(frame.det_classes)[fp], np.asarray(frame.det_scores, dtype=np.float64)[fp]
            false.extend([frame.index, c, round(float(x), 2), round(float(y), 2), round(float(s), 3)]
                         for c, (x, y), s in zip(classes.tolist(), det[fp, :2].tolist(), scores.tolist(), strict=True))
            if int(fp.sum()) > worst[0]:
                worst = (int(fp.sum()), frame.index)
    if n_detections == 0:
        return not_applicable("no detection of the filtered classes within range")
    evidence = {"n_detections": n_detections, "n_matched": n_matched, "n_false": n_detections - n_matched,
                "false_positives": false[:MAX_EVIDENCE], "false_positive_fields": ["frame_index", "class", "x", "y", "score"]}
    worst_frame = worst[1] if worst[1] >= 0 else None
    return MetricValue(n_matched / n_detections, float(n_detections), evidence, worst_frame)


# ----- prediction ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Samples:
    """Prediction samples of a trace: one row per (frame, matched GT agent) with a known future."""

    frame_index: np.ndarray  # (S,) trace frame index of t0
    track_ids: np.ndarray  # (S,) GT track ids
    min_ade_m: np.ndarray
    min_fde_m: np.ndarray
    ade_m: np.ndarray  # most probable mode
    fde_m: np.ndarray
    k: int
    horizon_s: float
    n_candidates: int  # (frame, selected agent) pairs with a known future, tracked or not


def _position_table(trace: ScenarioTrace, context: LogContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(timestamps_ns (F,), sorted GT track ids (I,), world positions (F, I, 2), NaN where absent).

    The trace's frames, then the log's frames after the trace's end (module docstring: not for a
    reactive closed-loop replay, whose agents' future is its own).
    """
    stamps = [f.timestamp_ns for f in trace.frames]
    ids_per = [_strings(f.gt_track_ids) for f in trace.frames]
    xy_per = [_boxes(f.gt_boxes)[:, :2] for f in trace.frames]
    last_ns = stamps[-1] if stamps else -1
    later = np.unique(context.timestamps_ns[context.timestamps_ns > last_ns])
    if not (trace.mode == CLOSED_LOOP and trace.reactive) and len(later):
        rows = np.flatnonzero(context.box_timestamps_ns > last_ns)
        rows = rows[np.argsort(context.box_timestamps_ns[rows], kind="stable")]
        cuts = np.searchsorted(context.box_timestamps_ns[rows], later[1:])
        for stamp, part in zip(later.tolist(), np.split(rows, cuts), strict=True):
            stamps.append(int(stamp))
            ids_per.append(context.box_track_ids[part])
            xy_per.append(context.box_xy_m[part])
    ids = np.unique(np.concatenate(ids_per)) if ids_per else np.zeros(0, dtype=str)
    table = np.full((len(stamps), len(ids), 2), np.nan)
    for i, (frame_ids, xy) in enumerate(zip(ids_per, xy_per, strict=True)):
        if len(frame_ids):
            table[i, np.searchsorted(ids, frame_ids)] = xy
    return np.asarray(stamps, dtype=np.int64), ids, table


def _interpolate(stamps: np.ndarray, table: np.ndarray, columns: np.ndarray, targets_ns: np.ndarray) -> np.ndarray:
    """(A, H, 2) positions of track columns (A,) at times (H,), linear in time; NaN outside the trace."""
    if len(stamps) < 2:
        out = np.full((len(columns), len(targets_ns), 2), np.nan)
        exact = np.flatnonzero(targets_ns == stamps[0]) if len(stamps) else np.zeros(0, dtype=np.int64)
        out[:, exact] = table[0, columns][:, None]
        return out
    hi = np.clip(np.searchsorted(stamps, targets_ns, side="left"), 1, len(stamps) - 1)
    lo = hi - 1
    weight = (targets_ns - stamps[lo]) / (stamps[hi] - stamps[lo])
    inside = (targets_ns >= stamps[0]) & (targets_ns <= stamps[-1])
    a, b = table[lo][:, columns], table[hi][:, columns]  # (H, A, 2)
    out = a + (b - a) * weight[:, None, None]
    out[~inside] = np.nan
    return np.transpose(out, (1, 0, 2))


def _horizon(trace: ScenarioTrace, params: Mapping[str, float]) -> tuple[float, int | None]:
    """(step_s, steps) the samples are scored over: the predictor's own horizon, or `horizon_s` of it.

    Steps is None when no frame has predictions and no horizon_s is given.
    """
    with_modes = [f for f in trace.frames if np.asarray(f.pred_modes_m).ndim == 4 and np.asarray(f.pred_modes_m).shape[0]]
    step_s = float(with_modes[0].pred_step_s if with_modes else (trace.frames[0].pred_step_s if trace.frames else 0.0))
    n_steps = int(np.asarray(with_modes[0].pred_modes_m).shape[2]) if with_modes else None
    wanted_s = float(params["horizon_s"])
    if wanted_s <= 0:
        return step_s, n_steps
    if not step_s > 0:
        return step_s, None
    wanted = int(math.floor(wanted_s / step_s + 1e-9))
    if wanted < 1 or (n_steps is not None and wanted > n_steps):
        raise BadInput(f"params.horizon_s {wanted_s} s: the predictions reach {n_steps} steps of {step_s} s; "
                       f"choose a horizon between {step_s} and {(n_steps or 0) * step_s:g} s")
    return step_s, wanted


def prediction_samples(trace: ScenarioTrace, context: LogContext, filters: Filters,
                       params: Mapping[str, float]) -> _Samples | MetricValue:
    """The samples the prediction metrics average (module docstring), or why there are none.

    Not applicable when no selected agent has a known future over the horizon; unscored (fails) when
    some has but none was tracked with predictions.
    """
    involved = _involvement(context, filters)
    if isinstance(involved, MetricValue):
        return involved
    step_s, n_steps = _horizon(trace, params)
    if n_steps is None:
        if any(_gt_selection(f, filters, involved).any() for f in trace.frames):
            return unscored("the stack predicted nothing: no confirmed track had predictions in any frame")
        return not_applicable("no selected ground-truth agent in any frame")
    stamps, ids, table = _position_table(trace, context)
    k_wanted = int(params["k"])
    offsets_ns = np.round(np.arange(1, n_steps + 1) * step_s * 1e9).astype(np.int64)
    rows: list[tuple[np.ndarray, ...]] = []
    n_candidates, k_used = 0, 0
    unscored_ids: dict[str, int] = {}
    for frame in trace.frames:
        selected = np.flatnonzero(_gt_selection(frame, filters, involved))
        if not len(selected):
            continue
        agent_ids = _strings(frame.gt_track_ids)[selected]
        future = _interpolate(stamps, table, np.searchsorted(ids, agent_ids), frame.timestamp_ns + offsets_ns)
        known = np.isfinite(future).all(axis=(1, 2))  # (A,)
        n_candidates += int(known.sum())
        if not known.any():
            continue
        modes = np.asarray(frame.pred_modes_m, dtype=np.float64)
        scored = np.zeros(len(selected), dtype=bool)
        if modes.ndim == 4 and modes.shape[0] and modes.shape[2] >= n_steps:
            track_xy = np.asarray(frame.track_xy_m, dtype=np.float64).reshape(-1, 2)
            gt_rows, track_rows = assign(_bev_distance(_boxes(frame.gt_boxes)[selected, :2], track_xy),
                                         params["match_distance_m"])
            keep = known[gt_rows]
            gt_rows, track_rows = gt_rows[keep], track_rows[keep]
            if len(gt_rows):
                scored[gt_rows] = True
                probs = np.asarray(frame.pred_probs, dtype=np.float64).reshape(modes.shape[0], -1)[track_rows]
                order = np.argsort(-probs, axis=1, kind="stable")
                k = order.shape[1] if k_wanted <= 0 else min(k_wanted, order.shape[1])
                ranked = np.take_along_axis(modes[track_rows, :, :n_steps], order[:, :, None, None], axis=1)
                delta = ranked - future[gt_rows][:, None]  # (A, K, H, 2)
                displacement = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)  # (A, K, H) [m]
                ade, final = displacement.mean(axis=2), displacement[..., -1]
                rows.append((np.full(len(gt_rows), frame.index), agent_ids[gt_rows], ade[:, :k].min(axis=1),
                             final[:, :k].min(axis=1), ade[:, 0], final[:, 0]))
                k_used = max(k_used, k)
        for track_id in agent_ids[known & ~scored].tolist():
            unscored_ids.setdefault(track_id, frame.index)
    if n_candidates == 0:
        return not_applicable("no selected agent has a known future over the horizon")
    if not rows:
        first = min(unscored_ids.items(), key=lambda item: item[1])
        return unscored(f"{len(unscored_ids)} selected agent(s) with a known future were never tracked with "
                        f"predictions", {"n_candidates": n_candidates, "unscored_track_ids": sorted(unscored_ids)},
                        first[1], (first[0],))
    columns = [np.concatenate(c) for c in zip(*rows, strict=True)]
    return _Samples(*columns, k=k_used, horizon_s=n_steps * step_s, n_candidates=n_candidates)


def _prediction_value(samples: _Samples | MetricValue, values: np.ndarray | None, name: str,
                      per_sample: np.ndarray | None = None, value: float | None = None) -> MetricValue:
    if isinstance(samples, MetricValue):
        return samples
    per_sample = values if per_sample is None else per_sample
    worst = int(np.argmax(per_sample))
    order = np.argsort(-per_sample, kind="stable")[:MAX_EVIDENCE]
    evidence = {"n_samples": len(per_sample), "n_candidates": samples.n_candidates,
                "coverage": round(len(per_sample) / samples.n_candidates, 4), "k": samples.k,
                "horizon_s": round(samples.horizon_s, 6),
                "n_agents": len(set(samples.track_ids.tolist())),
                "worst": {"track_id": str(samples.track_ids[worst]), "frame_index": int(samples.frame_index[worst]),
                          name: round(float(per_sample[worst]), 4)},
                "samples": [[str(samples.track_ids[i]), int(samples.frame_index[i]), round(float(per_sample[i]), 4)]
                            for i in order],
                "sample_fields": ["track_id", "frame_index", name]}
    result = float(np.mean(values)) if value is None else value
    return MetricValue(result, float(len(per_sample)), evidence, int(samples.frame_index[worst]),
                       (str(samples.track_ids[worst]),))


def min_fde(trace: ScenarioTrace, context: LogContext, filters: Filters, params: Mapping[str, float]) -> MetricValue:
    """Mean minFDE_k [m] over samples (module docstring)."""
    samples = prediction_samples(trace, context, filters, params)
    return _prediction_value(samples, None if isinstance(samples, MetricValue) else samples.min_fde_m, "min_fde_m")


def min_ade(trace: ScenarioTrace, context: LogContext, filters: Filters, params: Mapping[str, float]) -> MetricValue:
    """Mean minADE_k [m] over samples (module docstring)."""
    samples = prediction_samples(trace, context, filters, params)
    return _prediction_value(samples, None if isinstance(samples, MetricValue) else samples.min_ade_m, "min_ade_m")


def fde(trace: ScenarioTrace, context: LogContext, filters: Filters, params: Mapping[str, float]) -> MetricValue:
    """Mean FDE [m] of the most probable mode over samples (module docstring)."""
    samples = prediction_samples(trace, context, filters, params)
    return _prediction_value(samples, None if isinstance(samples, MetricValue) else samples.fde_m, "fde_m")


def miss_rate(trace: ScenarioTrace, context: LogContext, filters: Filters,
              params: Mapping[str, float]) -> MetricValue:
    """Share of samples whose minFDE_k exceeds miss_threshold_m (module docstring)."""
    samples = prediction_samples(trace, context, filters, params)
    if isinstance(samples, MetricValue):
        return samples
    missed = samples.min_fde_m > params["miss_threshold_m"]
    result = _prediction_value(samples, missed.astype(np.float64), "min_fde_m", per_sample=samples.min_fde_m)
    result.evidence.update(n_missed=int(missed.sum()), miss_threshold_m=float(params["miss_threshold_m"]))
    return result


# ----- the ego's route: the corridor ahead ------------------------------------------------------------
ROUTE_EXTENSION_M = 200.0  # the route runs on straight past the last known pose (as the replay's does) [m]
_MIN_SPACING_M = 0.05  # route vertices closer than this (a standing ego) are merged


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """A polyline the ego drives along: the logged ego path (the replay's route), extended straight.

    Positions are measured along it (station [m]) and across it (lateral distance [m]), so "in the
    corridor ahead" follows curves and turns.
    """

    start_m: np.ndarray  # (S, 2) segment starts
    direction: np.ndarray  # (S, 2) unit vectors
    length_m: np.ndarray  # (S,)
    station_m: np.ndarray  # (S,) station of each segment's start

    @classmethod
    def of(cls, trace: ScenarioTrace, context: LogContext) -> Route:
        """The logged path of the context (or, without one, the trace's ego path), extended straight."""
        poses = context.ego_poses if len(context.ego_poses) else np.array([f.ego_pose for f in trace.frames],
                                                                          dtype=np.float64).reshape(-1, 4)
        return cls.from_poses(poses)

    @classmethod
    def from_poses(cls, poses: np.ndarray) -> Route:
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4)
        if not len(poses):
            poses = np.zeros((1, 4))
        xy = poses[:, :2]
        step = np.linalg.norm(np.diff(xy, axis=0), axis=1)
        keep = np.concatenate([[True], step >= _MIN_SPACING_M])
        xy = xy[keep]
        if len(xy) >= 2:
            heading = xy[-1] - xy[-2]
            heading = heading / np.linalg.norm(heading)
        else:
            heading = np.array([np.cos(poses[-1, 3]), np.sin(poses[-1, 3])])
        points = np.concatenate([xy, xy[-1:] + ROUTE_EXTENSION_M * heading[None]])
        delta = np.diff(points, axis=0)
        length = np.linalg.norm(delta, axis=1)
        return cls(points[:-1], delta / length[:, None], length, np.concatenate([[0.0], np.cumsum(length)[:-1]]))

    def project(self, xy_m: np.ndarray, segments: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """(station [m], lateral distance [m]) of (N, 2) world positions on their nearest segment (of `segments`)."""
        xy = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
        start, direction, length = self.start_m[segments], self.direction[segments], self.length_m[segments]
        offset = xy[:, None, :] - start[None]  # (N, S, 2)
        along = np.clip((offset * direction[None]).sum(axis=2), 0.0, length[None])  # (N, S)
        gap = offset - along[..., None] * direction[None]
        lateral = np.sqrt((gap * gap).sum(axis=2))
        nearest = np.argmin(lateral, axis=1) if len(xy) and len(length) else np.zeros(len(xy), dtype=np.int64)
        rows = np.arange(len(xy))
        if not len(length):
            return np.full(len(xy), np.nan), np.full(len(xy), np.inf)
        return self.station_m[segments][nearest] + along[rows, nearest], lateral[rows, nearest]

    def ahead(self, ego_xy: np.ndarray, xy_m: np.ndarray, half_width_m: float, reach_m: float
              ) -> tuple[np.ndarray, np.ndarray]:
        """(in the corridor, distance ahead along the route [m]) of positions, seen from the ego at `ego_xy`.

        Only the route from `half_width_m` behind the ego to `reach_m` ahead is searched (positions
        farther along are not in the corridor), so the cost does not grow with the route's length.
        """
        ego_station = float(self.project(np.asarray(ego_xy, dtype=np.float64)[None, :2])[0][0])
        first = max(int(np.searchsorted(self.station_m, ego_station - half_width_m, side="right")) - 1, 0)
        last = int(np.searchsorted(self.station_m, ego_station + reach_m, side="right"))
        station, lateral = self.project(xy_m, slice(first, max(last, first + 1)))
        distance = station - ego_station
        return (lateral <= half_width_m) & (distance > 0) & (distance <= reach_m), distance


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
    counts = np.array([len(_boxes(f.gt_boxes)) for f in frames], dtype=np.int64)
    all_xy = np.concatenate([_boxes(f.gt_boxes)[:, :2] for f in frames])
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
        boxes = _boxes(frame.gt_boxes)
        inside, distance = route.ahead(np.asarray(frame.ego_pose, dtype=np.float64)[:2], boxes[:, :2],
                                       params["corridor_half_width_m"], max_range_m)
        ahead = _class_mask(_strings(frame.gt_classes), classes) & inside & (distance >= min_range_m)
        if not ahead.any():
            lead_ids.append(None)
            lost.append(False)
            continue
        lead = int(np.flatnonzero(ahead)[np.argmin(distance[ahead])])
        tracks = np.asarray(frame.track_xy_m, dtype=np.float64).reshape(-1, 2)
        near = np.hypot(tracks[:, 0] - boxes[lead, 0], tracks[:, 1] - boxes[lead, 1]) <= params["match_distance_m"]
        lead_ids.append(str(_strings(frame.gt_track_ids)[lead]))
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


# ----- the registry ---------------------------------------------------------------------------------------
_RANGE = frozenset({"classes", "min_range_m", "max_range_m"})
_MATCH = (("match_distance_m", 2.0),)
_PREDICTION = (("horizon_s", 0.0), ("k", 0.0), ("match_distance_m", 2.0), ("miss_threshold_m", 2.0))
_CORRIDOR_HALF_WIDTH_M = 1.875 + 1.0  # the planner's lane_half_width_m + corridor_margin_m

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("detection_recall", detection_recall, POOLED, OPEN_LOOP, "share",
           "share of selected GT objects matched by a same-class detection within 2 m", _RANGE | {"involved_tag"}, _MATCH),
    Metric("object_recall", object_recall, POOLED, OPEN_LOOP, "share",
           "share of selected GT objects detected on at least half of their frames", _RANGE | {"involved_tag"},
           (("match_distance_m", 2.0), ("min_hit_share", 0.5))),
    Metric("detection_precision", detection_precision, POOLED, OPEN_LOOP, "share",
           "share of detections within range matched to a same-class GT object within 2 m", _RANGE, _MATCH),
    Metric("min_fde", min_fde, POOLED, OPEN_LOOP, "m", "mean minFDE_k of tracked agents' predictions",
           _RANGE | {"involved_tag"}, _PREDICTION),
    Metric("min_ade", min_ade, POOLED, OPEN_LOOP, "m", "mean minADE_k of tracked agents' predictions",
           _RANGE | {"involved_tag"}, _PREDICTION),
    Metric("fde", fde, POOLED, OPEN_LOOP, "m", "mean FDE of the most probable mode", _RANGE | {"involved_tag"},
           _PREDICTION),
    Metric("miss_rate", miss_rate, POOLED, OPEN_LOOP, "share", "share of samples with minFDE_k above the miss threshold",
           _RANGE | {"involved_tag"}, _PREDICTION),
    Metric("phantom_braking", phantom_braking, SUM, CLOSED_LOOP, "count",
           "hard-braking onsets with no agent in the corridor ahead and no stop line", frozenset(),
           (("clear_radius_m", 0.0), ("comfortable_decel_mps2", 2.0), ("corridor_half_width_m", _CORRIDOR_HALF_WIDTH_M),
            ("decel_threshold_mps2", 3.0), ("gap_m", 10.0), ("lookahead_s", 3.0), ("min_speed_mps", 1.0),
            ("reaction_s", 1.0), ("stop_min_s", 1.0), ("stop_speed_mps", 0.5))),
    Metric("lead_lost_s", lead_lost_s, MAX, OPEN_LOOP, "s",
           "longest time the lead vehicle had no confirmed track within 2 m", _RANGE,
           (("corridor_half_width_m", 1.875), ("match_distance_m", 2.0), ("max_range_m", 60.0))),
    Metric("disengagements", disengagements, SUM, CLOSED_LOOP, "count", "disengagements of the replay"),
    Metric("collisions", collisions, SUM, CLOSED_LOOP, "count", "agents the ego collided with"),
    Metric("ttc_events", ttc_events, SUM, CLOSED_LOOP, "count", "disengagements with a TTC cause"),
    Metric("km", km, SUM, CLOSED_LOOP, "km", "kilometres driven"),
)}


def check_options(metric: Metric, check: Check) -> str:
    """Why a check's filters or parameters do not fit its metric ("" when they do)."""
    extra = [name for name in check.filters.given() if name != "tags" and name not in metric.filters]
    if extra:
        takes = ", ".join(sorted(metric.filters | {"tags"}))
        return f"metric {metric.name} takes no filter {extra[0]!r} (it takes: {takes})"
    known = dict(metric.params)
    unknown = [name for name, _ in check.params if name not in known]
    if unknown:
        takes = ", ".join(known) or "none"
        return f"metric {metric.name} has no parameter {unknown[0]!r} (it has: {takes})"
    return ""


def resolved_params(metric: Metric, check: Check) -> dict[str, float]:
    """The metric's defaults with the check's parameters applied."""
    return {**dict(metric.params), **dict(check.params)}


def evaluate_metric(metric: Metric, check: Check, trace: ScenarioTrace, context: LogContext | None = None
                    ) -> MetricValue:
    """A check's metric on one scenario: not applicable when the scenario lacks one of the check's tags.

    `context` None: an empty one (no meta, no log beyond the trace).
    """
    context = LogContext() if context is None else context
    missing = [t for t in check.filters.tags if t not in trace.tags]
    if missing:
        return not_applicable(f"the scenario lacks tag {missing[0]!r}")
    return metric.fn(trace, context, check.filters, resolved_params(metric, check))


def aggregate(values: Sequence[float], weights: Sequence[float], kind: str) -> float | None:
    """Combine per-scenario values over a suite: pooled (weighted mean), max, sum or mean; None when empty."""
    if kind not in AGGREGATES:
        raise BadInput(f"aggregate {kind!r} is not one of {', '.join(AGGREGATES)}")
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if len(v) == 0:
        return None
    if kind == POOLED:
        total = float(w.sum())
        return float((v * w).sum() / total) if total > 0 else float(v.mean())
    if kind == MAX:
        return float(v.max())
    if kind == SUM:
        return float(v.sum())
    return float(v.mean())

"""Detection metrics of suites: the stack's detections against the selected ground truth.

The selected ground truth ("GT") is defined in andon.test_suites.selection.

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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from andon.simulation.trace import FrameTrace, ScenarioTrace
from andon.test_suites.log_context import LogContext
from andon.test_suites.matching import assign, bev_distance
from andon.test_suites.metric_records import MAX_EVIDENCE, MetricValue, not_applicable
from andon.test_suites.schema import Filters
from andon.test_suites.selection import (
    as_boxes,
    as_strings,
    class_mask,
    gt_selection,
    involvement,
    range_mask,
)


def _detection_matches(frame: FrameTrace, filters: Filters, match_m: float
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(gt in class, gt matched, det in class, det matched) masks of one frame (same-class, one-to-one)."""
    gt, det = as_boxes(frame.gt_boxes), as_boxes(frame.det_boxes)
    gt_cls, det_cls = as_strings(frame.gt_classes), as_strings(frame.det_classes)
    gt_in, det_in = class_mask(gt_cls, filters.classes), class_mask(det_cls, filters.classes)
    gi, di = np.flatnonzero(gt_in), np.flatnonzero(det_in)
    distance = bev_distance(gt[gi, :2], det[di, :2])
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
    involved = involvement(context, filters)
    if isinstance(involved, MetricValue):
        return involved
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for frame in trace.frames:
        if not frame.has_sweep:
            continue
        selected = gt_selection(frame, filters, involved)
        if not selected.any():
            continue
        _, gt_matched, _, _ = _detection_matches(frame, filters, params["match_distance_m"])
        parts.append((np.full(int(selected.sum()), frame.index), as_strings(frame.gt_track_ids)[selected],
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
        det = as_boxes(frame.det_boxes)
        counted = det_in & range_mask(det[:, :2], np.asarray(frame.ego_pose, dtype=np.float64), filters)
        if not counted.any():
            continue
        fp = counted & ~det_matched
        n_detections += int(counted.sum())
        n_matched += int((counted & det_matched).sum())
        if fp.any():
            classes, scores = as_strings(frame.det_classes)[fp], np.asarray(frame.det_scores, dtype=np.float64)[fp]
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

"""The ground truth a suite metric judges on a frame, chosen by a check's filters.

The selected ground truth ("GT") of a frame: its ground-truth agents whose class is in `classes` (all
when empty), whose BEV distance from the ego is within [min_range_m, max_range_m], and, with
`involved_tag`, whose track id a ground-truth behaviour event of that tag names while the frame lies
in the event's window (logs without behaviour ground truth make such a check not applicable).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from andon.simulation.ground_truth import FleetGroundTruth
from andon.simulation.trace import FrameTrace
from andon.test_suites.log_context import LogContext
from andon.test_suites.metric_records import MetricValue, not_applicable
from andon.test_suites.schema import Filters


def as_boxes(array: np.ndarray) -> np.ndarray:
    """A frame's boxes as (N, 7) float64."""
    return np.asarray(array, dtype=np.float64).reshape(-1, 7)


def as_strings(array: Any) -> np.ndarray:
    """A frame's classes or track ids as a flat str array."""
    return np.asarray(array, dtype=str).reshape(-1)


def range_mask(xy_world: np.ndarray, ego_pose: np.ndarray, filters: Filters) -> np.ndarray:
    """(N,) bool: world positions within [min_range_m, max_range_m] of the ego (BEV)."""
    distance = np.hypot(xy_world[:, 0] - ego_pose[0], xy_world[:, 1] - ego_pose[1])
    keep = np.ones(len(xy_world), dtype=bool)
    if filters.min_range_m is not None:
        keep &= distance >= filters.min_range_m
    if filters.max_range_m is not None:
        keep &= distance <= filters.max_range_m
    return keep


def class_mask(classes: np.ndarray, wanted: Sequence[str]) -> np.ndarray:
    """(N,) bool: classes in `wanted` (all when empty)."""
    return np.isin(classes, list(wanted)) if wanted else np.ones(len(classes), dtype=bool)


class Involvement:
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
        """(N,) bool: track ids an event of the tag names at `timestamp_ns` (all without a tag)."""
        if self.tag is None:
            return np.ones(len(track_ids), dtype=bool)
        named = set().union(*[ids for start, end, ids in self.windows if start <= timestamp_ns <= end])
        return np.isin(track_ids, sorted(named)) if named else np.zeros(len(track_ids), dtype=bool)


def gt_selection(frame: FrameTrace, filters: Filters, involved: Involvement) -> np.ndarray:
    """(N,) bool: the frame's selected ground truth (module docstring)."""
    boxes = as_boxes(frame.gt_boxes)
    return (class_mask(as_strings(frame.gt_classes), filters.classes)
            & range_mask(boxes[:, :2], np.asarray(frame.ego_pose, dtype=np.float64), filters)
            & involved.mask(as_strings(frame.gt_track_ids), frame.timestamp_ns))


def involvement(context: LogContext, filters: Filters) -> Involvement | MetricValue:
    """The involvement of the filters' involved_tag, or why the check is not applicable in this log."""
    involved = Involvement(context.meta, filters.involved_tag)
    if not involved.available:
        return not_applicable(f"involved_tag {filters.involved_tag!r} needs behaviour ground truth; this log has none")
    if filters.involved_tag is not None and not involved.windows:
        return not_applicable(f"no {filters.involved_tag} behaviour event in this log")
    return involved

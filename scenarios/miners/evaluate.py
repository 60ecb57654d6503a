"""Event-level precision and recall of the miners against the synthetic fleet's ground truth.

Matching: a mined window and a ground-truth event of the same tag match when their closed time
intervals [t_start_ns, t_end_ns] intersect, i.e. share at least one instant. Both are inclusive runs
of frames (behaviours.py and mask_to_windows agree on that), so for frame-aligned intervals this
means "at least one frame in common", and a one-frame event (t_start_ns == t_end_ns) is matched by a
window containing its frame. No minimum overlap (temporal IoU or e.g. 0.5 s) is required, because
events differ in length by three orders of magnitude (one frame of a pedestrian 10 m away vs a whole
night log), and a window that shares a frame with an event has found it.

- tp: mined windows that match at least one event; fp: mined windows that match none.
- fn: events that no mined window matches; recalled = events - fn.
- precision = tp / (tp + fp), recall = recalled / events; None when undefined (nothing mined, no
  events).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from andon.scenarios.miners import mine_windows, resolve
from andon.scenarios.miners.arrays import AnyLog
from andon.scenarios.miners.windows import Window
from andon.simulation.ground_truth import BEHAVIOUR_TAGS, BehaviourEvent, FleetGroundTruth

COUNT_KEYS = ("tp", "fp", "fn", "windows", "events")


def overlaps(a_start_ns: np.ndarray, a_end_ns: np.ndarray, b_start_ns: np.ndarray, b_end_ns: np.ndarray) -> np.ndarray:
    """(A, B) bool: closed interval a shares at least one instant with closed interval b."""
    lo = np.maximum(a_start_ns[:, None], b_start_ns[None, :])
    hi = np.minimum(a_end_ns[:, None], b_end_ns[None, :])
    return hi >= lo


def _counts(windows: Sequence[Window], events: Sequence[BehaviourEvent]) -> dict[str, int]:
    w_start = np.array([w.t_start_ns for w in windows], dtype=np.int64)
    w_end = np.array([w.t_end_ns for w in windows], dtype=np.int64)
    e_start = np.array([e.t_start_ns for e in events], dtype=np.int64)
    e_end = np.array([e.t_end_ns for e in events], dtype=np.int64)
    match = overlaps(w_start, w_end, e_start, e_end)
    tp = int(match.any(axis=1).sum())
    recalled = int(match.any(axis=0).sum())
    return {"tp": tp, "fp": len(windows) - tp, "fn": len(events) - recalled, "windows": len(windows),
            "events": len(events)}


def _rates(counts: dict[str, int]) -> dict[str, Any]:
    precision = counts["tp"] / counts["windows"] if counts["windows"] else None
    recall = (counts["events"] - counts["fn"]) / counts["events"] if counts["events"] else None
    return {"precision": precision, "recall": recall, **counts}


def precision_recall(mined: dict[str, Sequence[Window]], truth: Iterable[BehaviourEvent],
                     tags: Iterable[str] = BEHAVIOUR_TAGS) -> dict[str, dict[str, Any]]:
    """Per tag: {"precision", "recall", "tp", "fp", "fn", "windows", "events"} of one log.

    Args:
        mined: windows per tag (a missing tag means nothing was mined for it).
        truth: the log's ground-truth events (any tags; only `tags` are scored).
        tags: the tags to score.
    """
    events = list(truth)
    return {tag: _rates(_counts(mined.get(tag, ()), [e for e in events if e.tag == tag])) for tag in tags}


@dataclass(frozen=True, slots=True)
class FleetEvaluation:
    """Precision and recall per tag over `logs` logs with ground truth (counts summed, then rates)."""

    logs: int
    rows: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"logs": self.logs, "tags": {tag: dict(row) for tag, row in self.rows.items()}}

    def markdown(self) -> str:
        """A Markdown table, one row per tag, for reports and logs."""
        def rate(value: float | None) -> str:
            return "-" if value is None else f"{value:.3f}"

        lines = [f"{self.logs} logs", "", "| tag | precision | recall | tp | fp | fn | events |",
                 "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {tag} | {rate(r['precision'])} | {rate(r['recall'])} | {r['tp']} | {r['fp']} | {r['fn']} | "
                  f"{r['events']} |" for tag, r in self.rows.items()]
        return "\n".join(lines)


def evaluate_fleet(logs: Iterable[AnyLog], tags: Iterable[str] | None = None) -> FleetEvaluation:
    """Precision and recall per tag over every log that carries ground truth; other logs are skipped.

    Counts are summed over logs before the rates are taken (micro-average), so a tag rare in the
    fleet is not swamped by logs where it never occurs.

    Raises:
        BadInput: a tag is not a miner's name.
    """
    scored = resolve(tags)
    totals = {tag: dict.fromkeys(COUNT_KEYS, 0) for tag in scored}
    evaluated = 0
    for log in logs:
        truth = FleetGroundTruth.of(dict(log.meta or {}))
        if truth is None:
            continue
        evaluated += 1
        per_log = precision_recall(mine_windows(log, scored), truth.behaviours, scored)
        for tag, row in per_log.items():
            for key in COUNT_KEYS:
                totals[tag][key] += row[key]
    return FleetEvaluation(evaluated, {tag: _rates(counts) for tag, counts in totals.items()})

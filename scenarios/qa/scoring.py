"""The label-QA score of a window: exp(-SCALE * weighted flags per box), with the findings behind it.

    score = exp(-SCORE_SCALE * sum_c WEIGHTS[c] * n_flags_c / max(n_boxes, 1))

over the boxes whose timestamp lies in the window (both ends included). A window with no flags scores
1; one weighted flag per SCORE_SCALE boxes costs a factor e. Normalising by the boxes makes scores of
busy and quiet windows comparable (a 1% flag rate is as bad in either), and the exponential keeps the
score in (0, 1] with no cliff.

Weights are each check's precision on clean data (how sure a flag is a label error), not how bad the
error is: WEIGHTS documents each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.qa.checks import CHECK_NAMES, LogFlags, run_checks
from andon.scenarios.qa.config import QAConfig
from andon.scenarios.records import Log

QA_VERSION = "1"
SCORE_SCALE = 50.0
MAX_ITEMS = 20  # findings listed per check and window; counts are always complete
WEIGHTS: dict[str, float] = {
    # Physically impossible or self-contradictory labels: a flag is an error. None fired on the clean
    # synthetic logs (seeds 0-9, labels and lidar) nor on any real sample (AV2 sensor and forecasting,
    # KITTI, nuScenes, ETH/UCY, CommonRoad); all their flags on corrupted logs matched injected errors.
    "teleport": 1.0,
    "jitter": 1.0,
    "dimension_change": 1.0,
    "class_flip": 1.0,
    "size_implausible": 1.0,
    # A track blinking out well inside the labelled range: a missing box, unless a real tracker or
    # annotator lost it behind an occluder; as precise as the above on every sample seen.
    "track_gap": 1.0,
    # Usually an error, but a U-turn or a skid (heading) and a steep road (ground) can trip them.
    "heading_velocity": 0.5,
    "below_ground": 0.5,
    # An empty box the lidar sees through: a ghost or misplaced label, or a dark car that returns
    # nothing, or an occluder outside the obstacle band; before overlapping labels were excluded it was
    # the only check with false alarms on the synthetic fleet (agents walking through each other).
    "empty_box": 0.5,
}


def score_window(flags: LogFlags, window: tuple[int, int], weights: Mapping[str, float] | None = None,
                 max_items: int = MAX_ITEMS) -> tuple[float, dict[str, Any]]:
    """The score of one window [t_start_ns, t_end_ns] of a checked log, and its details.

    Returns:
        (score in [0, 1], details): details hold "qa_version", "n_boxes" and, per check, its "count"
        (all findings in the window), "weight", "reason" and "items" (the first `max_items` findings
        as frame_index, timestamp_ns, track_id and the measured value).

    Raises:
        BadInput: the window ends before it starts, or a weight is unknown or negative.
    """
    (score, details), = score_windows(flags, np.array([window[0]]), np.array([window[1]]),
                                      resolve_weights(weights), max_items)
    return score, details


def score_log(log: Log | ImportedLog, windows: Sequence[tuple[str, int, int]], config: QAConfig | None = None,
              weights: Mapping[str, float] | None = None) -> dict[str, tuple[float, dict[str, Any]]]:
    """Scores of many windows of one log: the checks run once, each window is a slice by time.

    Args:
        log: the log (stored or imported).
        windows: (scenario_id, t_start_ns, t_end_ns) per window.
        config: check thresholds (defaults: QAConfig()).
        weights: overrides of WEIGHTS.

    Returns:
        {scenario_id: (score, details)} (see score_window).
    """
    resolved = resolve_weights(weights)
    if not windows:
        return {}
    flags = run_checks(log, config)
    ids = [sid for sid, _, _ in windows]
    starts = np.array([int(w[1]) for w in windows], dtype=np.int64)
    ends = np.array([int(w[2]) for w in windows], dtype=np.int64)
    return dict(zip(ids, score_windows(flags, starts, ends, resolved, MAX_ITEMS), strict=True))


def _finite(value: float) -> float | None:
    """A JSON-safe measured value (the catalog stores details as strict JSON)."""
    return round(float(value), 3) if np.isfinite(value) else None


def resolve_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """WEIGHTS with `weights`' overrides; BadInput for an unknown check or a negative weight."""
    resolved = dict(WEIGHTS)
    for name, value in (weights or {}).items():
        if name not in WEIGHTS:
            raise BadInput(f"unknown QA check {name!r} in weights; checks are {', '.join(CHECK_NAMES)}")
        if not (np.isfinite(value) and value >= 0):
            raise BadInput(f"QA weight of {name} must be a finite number >= 0, got {value!r}")
        resolved[name] = float(value)
    return resolved


def score_windows(flags: LogFlags, starts: np.ndarray, ends: np.ndarray, weights: dict[str, float],
                  max_items: int = MAX_ITEMS) -> list[tuple[float, dict[str, Any]]]:
    """Scores and details of windows [starts[i], ends[i]] (ns, both included) of one checked log.

    Counts come from binary searches on the time-sorted boxes and findings, for all windows at once.
    """
    if np.any(ends < starts):
        bad = int(np.argmax(ends < starts))
        raise BadInput(f"QA window ends ({ends[bad]} ns) before it starts ({starts[bad]} ns)")
    n_boxes = (np.searchsorted(flags.box_timestamps_ns, ends, side="right")
               - np.searchsorted(flags.box_timestamps_ns, starts, side="left"))
    spans = {r.name: (np.searchsorted(r.timestamp_ns, starts, side="left"),
                      np.searchsorted(r.timestamp_ns, ends, side="right")) for r in flags.results}
    weighted = sum(weights[r.name] * (spans[r.name][1] - spans[r.name][0]) for r in flags.results)
    rate = np.asarray(weighted, dtype=np.float64) / np.maximum(n_boxes, 1)
    scores = np.exp(-SCORE_SCALE * rate)
    out = []
    for w in range(len(starts)):  # details are per window; the arithmetic above covered all at once
        details: dict[str, Any] = {"qa_version": QA_VERSION, "n_boxes": int(n_boxes[w])}
        for r in flags.results:
            lo, hi = int(spans[r.name][0][w]), int(spans[r.name][1][w])
            shown = slice(lo, min(hi, lo + max_items))
            details[r.name] = {
                "count": hi - lo, "weight": weights[r.name], "reason": r.reason, "unit": r.unit,
                "items": [{"frame_index": int(f), "timestamp_ns": int(t), "track_id": str(k), "value": _finite(v)}
                          for f, t, k, v in zip(r.frame_index[shown], r.timestamp_ns[shown], r.track_ids[shown],
                                                r.value[shown], strict=True)],
            }
        out.append((float(np.clip(scores[w], 0.0, 1.0)), details))
    return out

"""Schema and label sanity: counted log by log during materialisation, judged by two checks.

`schema`: box values finite, box sizes positive, yaw in (-pi, pi], classes andon's own, ego poses
finite, frame timestamps strictly increasing, and every sample pointing at a real frame. Any
violation fails it: such data breaks training silently.
`point_cloud_range` (detection): the share of sampled boxes whose centre lies outside the
point-cloud range the loader crops to. Some are normal (labels reach further than the crop); most
means a wrong frame, a wrong unit or a wrong range, and fails it above `max_outside_range_share`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from andon.scenarios.records import CLASSES

MAX_EXAMPLES = 3


class SanityAccumulator:
    """Counts of problems across logs, with a few example log ids per problem."""

    PROBLEMS = ("nonfinite_boxes", "nonpositive_sizes", "yaw_out_of_range", "unknown_classes",
                "nonfinite_poses", "nonincreasing_timestamps", "bad_sample_frames")

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {name: [] for name in self.PROBLEMS}
        self.unknown_class_names: Counter[str] = Counter()
        self.boxes_checked = 0
        self.frames_checked = 0
        self.range_boxes = 0
        self.range_outside = 0

    def _count(self, problem: str, n: int, log_id: str) -> None:
        if n:
            self.counts[problem] += int(n)
            if len(self.examples[problem]) < MAX_EXAMPLES:
                self.examples[problem].append(log_id)

    def add_log(self, log_id: str, timestamps_ns: np.ndarray, poses: np.ndarray, boxes: np.ndarray,
                classes: np.ndarray) -> None:
        """Check one log's frames (all of them) and the boxes of its frames inside the dataset's windows."""
        self.frames_checked += len(timestamps_ns)
        self.boxes_checked += len(boxes)
        self._count("nonincreasing_timestamps", int(np.count_nonzero(np.diff(timestamps_ns) <= 0)), log_id)
        self._count("nonfinite_poses", int(np.count_nonzero(~np.isfinite(poses).all(axis=1))), log_id)
        finite = np.isfinite(boxes).all(axis=1)
        self._count("nonfinite_boxes", int(np.count_nonzero(~finite)), log_id)
        with np.errstate(invalid="ignore"):
            self._count("nonpositive_sizes", int(np.count_nonzero(finite & (boxes[:, 3:6] <= 0).any(axis=1))), log_id)
            yaw = boxes[:, 6]
            self._count("yaw_out_of_range", int(np.count_nonzero(finite & ((yaw <= -np.pi) | (yaw > np.pi)))), log_id)
        unknown = ~np.isin(classes, np.array(CLASSES))
        if unknown.any():
            self.unknown_class_names.update(np.asarray(classes)[unknown].tolist())
            self._count("unknown_classes", int(np.count_nonzero(unknown)), log_id)

    def add_sample_frames(self, log_id: str, frame_index: np.ndarray, n_frames: int) -> None:
        bad = (frame_index < 0) | (frame_index >= n_frames)
        self._count("bad_sample_frames", int(np.count_nonzero(bad)), log_id)

    def add_range(self, boxes: np.ndarray, point_cloud_range_m: list[float]) -> None:
        """Sampled detection boxes against the crop [x0, y0, z0, x1, y1, z1] (centres)."""
        lo = np.asarray(point_cloud_range_m[:3], dtype=np.float64)
        hi = np.asarray(point_cloud_range_m[3:], dtype=np.float64)
        centres = boxes[:, :3]
        with np.errstate(invalid="ignore"):
            inside = ((centres >= lo) & (centres <= hi)).all(axis=1)
        self.range_boxes += len(boxes)
        self.range_outside += int(np.count_nonzero(~inside))

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames_checked": self.frames_checked,
            "boxes_checked": self.boxes_checked,
            "problems": {name: int(self.counts.get(name, 0)) for name in self.PROBLEMS},
            "examples": {name: logs for name, logs in self.examples.items() if logs},
            "unknown_class_names": dict(sorted(self.unknown_class_names.items())),
            "range_boxes": self.range_boxes,
            "range_outside": self.range_outside,
        }


def check_schema(sanity: dict[str, Any], blocking: bool) -> dict[str, Any]:
    """Passes when no problem was counted; the detail names each problem, its count and example logs."""
    problems = {name: n for name, n in sanity["problems"].items() if n}
    if not problems:
        detail = (f"{sanity['boxes_checked']} boxes in {sanity['frames_checked']} frames: values finite, sizes "
                  f"positive, yaw in (-pi, pi], classes known, timestamps increasing")
    else:
        parts = []
        for name, n in problems.items():
            where = ", ".join(sanity["examples"].get(name, []))
            extra = f" {sorted(sanity['unknown_class_names'])}" if name == "unknown_classes" else ""
            parts.append(f"{name}: {n}{extra} (e.g. log {where})")
        detail = "; ".join(parts) + ": fix or retire these logs' scenarios"
    return {"name": "schema", "passed": not problems, "blocking": blocking, "detail": detail,
            "boxes_checked": sanity["boxes_checked"], "frames_checked": sanity["frames_checked"],
            "problems": sanity["problems"]}


def check_point_cloud_range(sanity: dict[str, Any], point_cloud_range_m: list[float], max_share: float,
                            blocking: bool) -> dict[str, Any]:
    """Share of sampled boxes centred outside the point-cloud range, against `max_share`."""
    total, outside = sanity["range_boxes"], sanity["range_outside"]
    share = outside / total if total else 0.0
    passed = share <= max_share
    detail = (f"{outside} of {total} sampled boxes ({share:.1%}) lie outside point_cloud_range_m "
              f"{list(point_cloud_range_m)}; allowed {max_share:.0%}")
    if not passed:
        detail += ": check the range, the boxes' frame and units"
    return {"name": "point_cloud_range", "passed": passed, "blocking": blocking, "detail": detail,
            "share_outside": share, "max_share": max_share, "boxes": total}

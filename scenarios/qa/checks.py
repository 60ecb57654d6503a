"""Runs every label-QA check over one log, once; scoring then slices the findings by window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from andon.scenarios.logstore import ImportedLog
from andon.scenarios.qa.config import QAConfig
from andon.scenarios.qa.findings import CheckResult
from andon.scenarios.qa.lidar_check import empty_box
from andon.scenarios.qa.shape_checks import below_ground, class_flip, dimension_change, size_implausible
from andon.scenarios.qa.table import QATable, build_table
from andon.scenarios.qa.track_checks import heading_velocity, jitter, teleport, track_gap
from andon.scenarios.records import Log

# The checks that need only the boxes, in report order; "empty_box" (points) runs after them.
BOX_CHECKS: tuple[tuple[str, Callable[[QATable, QAConfig], CheckResult]], ...] = (
    ("teleport", teleport),
    ("jitter", jitter),
    ("track_gap", track_gap),
    ("heading_velocity", heading_velocity),
    ("dimension_change", dimension_change),
    ("class_flip", class_flip),
    ("size_implausible", size_implausible),
    ("below_ground", below_ground),
)
CHECK_NAMES: tuple[str, ...] = (*(name for name, _ in BOX_CHECKS), "empty_box")


@dataclass(frozen=True, slots=True, eq=False)
class LogFlags:
    """Every check's findings on one log, with the boxes' timestamps (the denominator of a score).

    Attributes:
        box_timestamps_ns: (K,) int64 timestamp of every box of the log, ascending.
        results: one CheckResult per check, in CHECK_NAMES order (findings sorted by time).
    """

    box_timestamps_ns: np.ndarray
    results: tuple[CheckResult, ...]

    def result(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r}; checks are {', '.join(CHECK_NAMES)}")


def run_checks(log: Log | ImportedLog, config: QAConfig | None = None, lidar: bool = True) -> LogFlags:
    """All checks on `log`; with `lidar`, the point check streams its sweeps (see lidar_check).

    Raises:
        BadInput: the log has no frames or holds a class outside andon's.
    """
    config = config or QAConfig()
    table = build_table(log)
    results = [check(table, config) for _, check in BOX_CHECKS]
    results.append(empty_box(log.frames if lidar else None, table, config))
    return LogFlags(box_timestamps_ns=table.timestamp_ns, results=tuple(results))

"""What a check reports: one finding per flagged box, columnar, with the measured value behind it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from andon.scenarios.qa.table import NO_ROW, QATable


@dataclass(frozen=True, slots=True, eq=False)
class CheckResult:
    """The boxes one check flags in a log, sorted by time.

    A finding is usually a box of the log (`box_row` >= 0). The track-gap check reports boxes that are
    absent: those findings have `box_row` = -1 and the frame and track where the box should be.

    Attributes:
        name: the check's name, e.g. "teleport".
        reason: what a finding means, with its threshold; `unit` names the unit of `value`.
        frame_index, timestamp_ns, box_row: (n,) int64.
        track_ids: (n,) str.
        value: (n,) float64, the measured quantity that broke the threshold (a speed, a ratio, ...).
    """

    name: str
    reason: str
    unit: str
    frame_index: np.ndarray
    timestamp_ns: np.ndarray
    track_ids: np.ndarray
    box_row: np.ndarray
    value: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_index)

    def box_flags(self, n_boxes: int) -> np.ndarray:
        """(n_boxes,) bool: the log's boxes this check flags (absent boxes have no row)."""
        flags = np.zeros(n_boxes, dtype=bool)
        flags[self.box_row[self.box_row != NO_ROW]] = True
        return flags


def from_rows(name: str, reason: str, unit: str, table: QATable, flagged: np.ndarray,
              value: np.ndarray) -> CheckResult:
    """A result from per-box flags (K,) bool and per-box values (K,)."""
    rows = np.flatnonzero(flagged)  # table rows are in time order already
    return CheckResult(name=name, reason=reason, unit=unit, frame_index=table.frame_index[rows],
                       timestamp_ns=table.timestamp_ns[rows], track_ids=table.track_ids[rows],
                       box_row=rows.astype(np.int64), value=np.asarray(value, dtype=np.float64)[rows])

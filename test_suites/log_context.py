"""The log beside a replayed scenario's trace: what suite metrics read of the scenario's log.

`LogContext` holds the log's meta (the fleet's ground-truth behaviour events), the logged ego poses and
the logged agents' world positions from the scenario's start to FUTURE_S after its end: prediction
metrics take agents' futures past the trace's end from it, planning metrics the logged route and stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FUTURE_S = 10.0  # the log context reaches this far past the scenario's end (prediction futures, stops) [s]


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

"""Every box of a log as columns, in the ego and the world frame, with its track's neighbours.

The checks work on this table only (plus the lidar sweeps for the point check), so each one is a few
array expressions over all boxes of a log at once. Rows are in the log's order: frame by frame, the
boxes of a frame contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.scenarios.logstore import ImportedLog, boxes_table, ego_poses
from andon.scenarios.qa.config import GROUND_Z_M
from andon.scenarios.records import CLASSES, Log, wrap_angle

NO_ROW = -1


@dataclass(frozen=True, slots=True, eq=False)
class QATable:
    """Columnar boxes of one log. K boxes, F frames, T tracks.

    Attributes:
        source: the log's source ("synthetic", "av2", "kitti", ...).
        ground_z_m: height of the ground in the ego frame [m] (0 unless the origin is a sensor).
        frame_timestamps_ns: (F,) int64.
        frame_poses: (F, 4) ego poses (x, y, z [m], yaw [rad]) in the world frame.
        frame_index: (K,) int64 frame of each box.
        timestamp_ns: (K,) int64.
        boxes: (K, 7) ego-frame boxes (x, y, z_centre, l, w, h, yaw) [m, rad].
        classes: (K,) str; class_code: (K,) int64 index into records.CLASSES.
        track_ids: (K,) str; track: (K,) int64 code of the track id, 0..T-1.
        velocities_mps: (K, 2) ego-frame ground velocities, NaN where unknown.
        world_xyz: (K, 3) box centres in the world frame [m] (planar poses: z adds the pose's z).
        range_m: (K,) BEV distance of the box centre from the ego origin.
        prev_row, next_row: (K,) int64 row of the same track's previous / next observation, or -1.
    """

    source: str
    ground_z_m: float
    frame_timestamps_ns: np.ndarray
    frame_poses: np.ndarray
    frame_index: np.ndarray
    timestamp_ns: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    class_code: np.ndarray
    track_ids: np.ndarray
    track: np.ndarray
    velocities_mps: np.ndarray
    world_xyz: np.ndarray
    range_m: np.ndarray
    prev_row: np.ndarray
    next_row: np.ndarray

    @property
    def n_boxes(self) -> int:
        return len(self.frame_index)

    @property
    def n_frames(self) -> int:
        return len(self.frame_timestamps_ns)

    @property
    def n_tracks(self) -> int:
        return int(self.track.max()) + 1 if self.n_boxes else 0

    def frame_rows(self) -> np.ndarray:
        """(F + 1,) offsets: the rows of frame f are frame_rows[f]:frame_rows[f + 1]."""
        return np.searchsorted(self.frame_index, np.arange(self.n_frames + 1), side="left")


def ground_z_for(source: str, meta: dict[str, Any]) -> float:
    """Ground height in the ego frame [m]: the log's meta "ground_z_m", else the source's convention."""
    value = meta.get("ground_z_m", GROUND_Z_M.get(source, 0.0))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadInput(f"log meta ground_z_m must be a number of metres, got {value!r}") from None


def build_table(log: Log | ImportedLog) -> QATable:
    """Columns of every box of `log` (no lidar points are read).

    Raises:
        BadInput: the log has no frames, its timestamps do not increase, or a box has a class outside
            andon's classes.
    """
    if len(log.frames) == 0:
        raise BadInput("label QA needs a log with at least one frame")
    table = boxes_table(log)  # type: ignore[arg-type]  # an ImportedLog has the same frames
    stamps, poses = ego_poses(log)  # type: ignore[arg-type]
    if np.any(np.diff(stamps) <= 0):  # windows are cut by binary search on time
        bad = int(np.argmax(np.diff(stamps) <= 0)) + 1
        raise BadInput(f"label QA needs strictly increasing frame timestamps; frame {bad} ({stamps[bad]} ns) "
                       f"does not follow frame {bad - 1} ({stamps[bad - 1]} ns)")
    frame_index = np.asarray(table["frame_index"], dtype=np.int64)
    boxes = np.asarray(table["boxes"], dtype=np.float64).reshape(-1, 7)
    classes = np.asarray(table["classes"]).astype(np.str_)
    track_ids = np.asarray(table["track_ids"]).astype(np.str_)
    names, inverse = np.unique(classes, return_inverse=True)  # a handful of names: the loop is over names
    unknown = [str(n) for n in names if n not in CLASSES]
    if unknown:
        raise BadInput(f"unknown classes {unknown[:5]}: andon's classes are {list(CLASSES)}; "
                       f"import the log through an importer")
    class_code = np.array([CLASSES.index(str(n)) for n in names], dtype=np.int64)[inverse.reshape(-1)]

    pose = poses[frame_index]
    cos, sin = np.cos(pose[:, 3]), np.sin(pose[:, 3])
    world_xyz = np.column_stack([pose[:, 0] + cos * boxes[:, 0] - sin * boxes[:, 1],
                                 pose[:, 1] + sin * boxes[:, 0] + cos * boxes[:, 1],
                                 pose[:, 2] + boxes[:, 2]])
    _, track = np.unique(track_ids, return_inverse=True)
    track = track.astype(np.int64).reshape(-1)
    prev_row, next_row = _track_neighbours(track, frame_index)
    velocities = np.asarray(table["velocities_mps"], dtype=np.float64).reshape(-1, 2)
    return QATable(
        source=log.source, ground_z_m=ground_z_for(log.source, dict(log.meta)),
        frame_timestamps_ns=np.asarray(stamps, dtype=np.int64), frame_poses=np.asarray(poses, dtype=np.float64),
        frame_index=frame_index, timestamp_ns=np.asarray(table["timestamp_ns"], dtype=np.int64), boxes=boxes,
        classes=classes, class_code=class_code, track_ids=track_ids, track=track, velocities_mps=velocities,
        world_xyz=world_xyz, range_m=np.hypot(boxes[:, 0], boxes[:, 1]), prev_row=prev_row, next_row=next_row,
    )


def world_yaw(table: QATable) -> np.ndarray:
    """(K,) box headings in the world frame [rad]."""
    return np.asarray(wrap_angle(table.boxes[:, 6] + table.frame_poses[table.frame_index, 3]))


def _track_neighbours(track: np.ndarray, frame_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of each box's previous and next observation in its own track (-1 at the track's ends)."""
    order = np.lexsort((frame_index, track))
    prev_row = np.full(len(track), NO_ROW, dtype=np.int64)
    next_row = np.full(len(track), NO_ROW, dtype=np.int64)
    same = track[order[1:]] == track[order[:-1]]
    prev_row[order[1:][same]] = order[:-1][same]
    next_row[order[:-1][same]] = order[1:][same]
    return prev_row, next_row


def group_median(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """(n_groups,) median of `values` within each group (NaN for an empty group), without a loop."""
    order = np.lexsort((values, group))
    counts = np.bincount(group, minlength=n_groups)
    starts = np.cumsum(counts) - counts
    ordered = values[order]
    safe = np.maximum(counts, 1)
    low = ordered[np.minimum(starts + (safe - 1) // 2, len(values) - 1)] if len(values) else np.zeros(n_groups)
    high = ordered[np.minimum(starts + safe // 2, len(values) - 1)] if len(values) else np.zeros(n_groups)
    return np.where(counts > 0, 0.5 * (low + high), np.nan)

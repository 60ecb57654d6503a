"""The columnar arrays every miner reads, computed once per log without touching lidar points.

`LogArrays.of(log)` takes a catalog `Log` (streaming `LazyFrames`) or an `ImportedLog` (in-memory
frames): both give `boxes_table` and `ego_poses`. Miners accept an optional precomputed `LogArrays`
so that `mine_log` builds it once for all miners.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from andon.scenarios.logstore import ImportedLog, boxes_table, ego_poses
from andon.scenarios.records import Log, RoadMap

# Below this ego speed the heading change says nothing about the path's curvature [m/s].
CURVATURE_MIN_SPEED_MPS = 2.0

AnyLog = Log | ImportedLog


@dataclass(frozen=True, slots=True, eq=False)
class LogArrays:
    """Per-frame ego signals and per-box columns of one log.

    Frames: F = number of frames; boxes: N = boxes over all frames, in frame order.
    """

    timestamps_ns: np.ndarray  # (F,) int64
    ego_xy_m: np.ndarray  # (F, 2) world frame
    ego_yaw_rad: np.ndarray  # (F,) world frame
    ego_speed_mps: np.ndarray  # (F,) from finite differences of the poses
    ego_curvature_per_m: np.ndarray  # (F,) signed yaw rate / speed [1/m]; 0 when slow
    frame_index: np.ndarray  # (N,) int64
    box_timestamps_ns: np.ndarray  # (N,) int64
    boxes: np.ndarray  # (N, 7) ego frame
    classes: np.ndarray  # (N,) str
    track_ids: np.ndarray  # (N,) str
    box_world_xy_m: np.ndarray  # (N, 2) box centres in the world frame
    road_map: RoadMap | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.timestamps_ns)

    @property
    def box_range_m(self) -> np.ndarray:
        """(N,) distance of each box centre from the ego origin on the ground plane [m]."""
        return np.hypot(self.boxes[:, 0], self.boxes[:, 1])

    def frame_any(self, hit: np.ndarray) -> np.ndarray:
        """(F,) True for frames with at least one box flagged in `hit` (N,)."""
        return np.bincount(self.frame_index[hit], minlength=self.n_frames) > 0

    def frame_count(self, hit: np.ndarray) -> np.ndarray:
        """(F,) number of boxes flagged in `hit` (N,) per frame."""
        return np.bincount(self.frame_index[hit], minlength=self.n_frames)

    @classmethod
    def of(cls, log: AnyLog) -> LogArrays:
        """Build the arrays of a log (boxes_table + ego_poses; no lidar is read)."""
        stamps, poses = ego_poses(log)  # type: ignore[arg-type]  # ImportedLog has the same frames
        stamps = np.asarray(stamps, dtype=np.int64)
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4)
        table = boxes_table(log)  # type: ignore[arg-type]
        frame_index = np.asarray(table["frame_index"], dtype=np.int64)
        boxes = np.asarray(table["boxes"], dtype=np.float64).reshape(-1, 7)
        ego_xy, ego_yaw = poses[:, :2], poses[:, 3]
        speed, curvature = _ego_motion(stamps, ego_xy, ego_yaw)
        cos, sin = np.cos(ego_yaw)[frame_index], np.sin(ego_yaw)[frame_index]
        bx, by = boxes[:, 0], boxes[:, 1]
        world = np.column_stack([cos * bx - sin * by, sin * bx + cos * by]) + ego_xy[frame_index]
        return cls(timestamps_ns=stamps, ego_xy_m=ego_xy, ego_yaw_rad=ego_yaw, ego_speed_mps=speed,
                   ego_curvature_per_m=curvature, frame_index=frame_index,
                   box_timestamps_ns=stamps[frame_index], boxes=boxes,
                   classes=np.asarray(table["classes"]).astype(str), track_ids=np.asarray(table["track_ids"]).astype(str),
                   box_world_xy_m=world, road_map=log.road_map, meta=dict(log.meta or {}))


def _ego_motion(stamps_ns: np.ndarray, xy_m: np.ndarray, yaw_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(speed [m/s], curvature [1/m]) per frame from poses: central differences, one-sided at the ends."""
    n = len(stamps_ns)
    if n < 2:
        return np.zeros(n), np.zeros(n)
    t_s = (stamps_ns - stamps_ns[0]) / 1e9
    vx, vy = np.gradient(xy_m[:, 0], t_s), np.gradient(xy_m[:, 1], t_s)
    speed = np.hypot(vx, vy)
    yaw_rate = np.gradient(np.unwrap(yaw_rad), t_s)
    moving = speed >= CURVATURE_MIN_SPEED_MPS
    curvature = np.where(moving, yaw_rate / np.where(moving, speed, 1.0), 0.0)
    return speed, curvature

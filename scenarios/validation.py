"""Checks an imported log before anything is written: bad input is refused, naming file and problem."""

from __future__ import annotations

import numpy as np

from andon.errors import BadInput
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import BOX_DIM, CLASSES


def validate_imported(log: ImportedLog, origin: str) -> None:
    """Raise BadInput naming `origin` (a file or log name) and the first problem found."""
    if not log.frames:
        raise BadInput(f"{origin}: the log has no frames; nothing to import")
    stamps = np.array([f.timestamp_ns for f in log.frames], dtype=np.int64)
    if len(stamps) > 1 and np.any(np.diff(stamps) <= 0):
        bad = int(np.argmax(np.diff(stamps) <= 0)) + 1
        raise BadInput(f"{origin}: timestamps must strictly increase; frame {bad} ({stamps[bad]} ns) "
                       f"does not follow frame {bad - 1} ({stamps[bad - 1]} ns)")
    known = set(CLASSES)
    for index, frame in enumerate(log.frames):
        where = f"{origin}: frame {index} (t={frame.timestamp_ns} ns)"
        pose = np.asarray(frame.ego_pose, dtype=np.float64)
        if pose.shape != (4,) or not np.all(np.isfinite(pose)):
            raise BadInput(f"{where}: ego pose must be 4 finite numbers (x, y, z, yaw), got {frame.ego_pose!r}")
        boxes = np.asarray(frame.boxes)
        if boxes.ndim != 2 or boxes.shape[1] != BOX_DIM:
            raise BadInput(f"{where}: boxes must have shape (N, 7), got {boxes.shape}")
        if not np.all(np.isfinite(boxes)):
            raise BadInput(f"{where}: boxes hold NaN or infinite values (rows {_bad_rows(boxes)})")
        if np.any(boxes[:, 3:6] <= 0):
            raise BadInput(f"{where}: box sizes must be positive (rows {_bad_rows(boxes[:, 3:6] > 0)})")
        if len(frame.classes) != len(boxes) or len(frame.track_ids) != len(boxes):
            raise BadInput(f"{where}: {len(boxes)} boxes but {len(frame.classes)} classes and "
                           f"{len(frame.track_ids)} track ids")
        unknown = sorted(set(frame.classes) - known)
        if unknown:
            raise BadInput(f"{where}: unknown classes {unknown}; andon's classes are {list(CLASSES)}")
        if len(set(frame.track_ids)) != len(frame.track_ids):
            raise BadInput(f"{where}: duplicate track ids within one frame")
        if frame.velocities_mps is not None and np.asarray(frame.velocities_mps).shape != (len(boxes), 2):
            raise BadInput(f"{where}: velocities must have shape ({len(boxes)}, 2)")
        if frame.points is not None:
            points = np.asarray(frame.points)
            if points.ndim != 2 or points.shape[1] != 4:
                raise BadInput(f"{where}: points must have shape (M, 4) (x, y, z, intensity), got {points.shape}")
            if not np.all(np.isfinite(points)):
                raise BadInput(f"{where}: points hold NaN or infinite values")


def _bad_rows(values: np.ndarray) -> list[int]:
    ok = np.isfinite(values) if values.dtype.kind == "f" else values
    return np.flatnonzero(~np.all(ok, axis=1))[:5].tolist()

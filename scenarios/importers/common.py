"""Small helpers shared by the importers: refusing bad files and frame conversions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from andon.errors import BadInput
from andon.scenarios.records import wrap_angle


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise BadInput(f"{path}: missing {what}; check the path points at the dataset's files")
    return path


def require_finite(path: Path, name: str, values: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise BadInput(f"{path}: {name} holds NaN or infinite values")
    return values


def yaw_from_quaternion(qw: np.ndarray, qx: np.ndarray, qy: np.ndarray, qz: np.ndarray) -> np.ndarray:
    """Heading (rotation about +z) of unit quaternions, wrapped into (-pi, pi]."""
    return wrap_angle(np.arctan2(2.0 * (qw * qz + qx * qy), 1.0 - 2.0 * (qy * qy + qz * qz)))


def world_to_ego_xy(xy: np.ndarray, ego_xy: np.ndarray, ego_yaw: float) -> np.ndarray:
    """Move world-frame (K, 2) positions into the ego frame of a pose (x, y, yaw)."""
    c, s = np.cos(ego_yaw), np.sin(ego_yaw)
    d = np.asarray(xy, dtype=np.float64) - np.asarray(ego_xy, dtype=np.float64)
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)

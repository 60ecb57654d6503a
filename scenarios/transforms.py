"""Planar rigid transforms between a log's world frame and the ego frame of a pose (x, y, z, yaw)."""

from __future__ import annotations

import numpy as np


def world_to_ego_xy(xy: np.ndarray, ego_xy: np.ndarray, ego_yaw: float) -> np.ndarray:
    """Move world-frame (K, 2) positions into the ego frame of a pose."""
    c, s = np.cos(ego_yaw), np.sin(ego_yaw)
    d = np.asarray(xy, dtype=np.float64).reshape(-1, 2) - np.asarray(ego_xy, dtype=np.float64)
    return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], axis=1)


def ego_to_world_xy(xy: np.ndarray, ego_xy: np.ndarray, ego_yaw: float) -> np.ndarray:
    """Move ego-frame (K, 2) positions into the world frame."""
    c, s = np.cos(ego_yaw), np.sin(ego_yaw)
    p = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], axis=1) + np.asarray(ego_xy)

"""One-to-one matching of ground truth to detections or tracks by BEV centre distance (Hungarian)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

_UNMATCHABLE = 1e6  # cost of a pair farther than the match distance (> any sum of real distances)


def bev_distance(a_xy: np.ndarray, b_xy: np.ndarray) -> np.ndarray:
    """(A, B) BEV distances [m] between (A, 2) and (B, 2) positions."""
    dx = a_xy[:, None, 0] - b_xy[None, :, 0]
    dy = a_xy[:, None, 1] - b_xy[None, :, 1]
    return np.sqrt(dx * dx + dy * dy)


def assign(distance_m: np.ndarray, max_distance_m: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching: the most pairs within `max_distance_m`, then the least total distance.

    Args:
        distance_m: (A, B) distances; inf (or anything above the bound) forbids a pair.
        max_distance_m: a pair matches only at a distance <= this.

    Returns:
        (rows, cols) of the matched pairs, int64, sorted by row.
    """
    empty = np.zeros(0, dtype=np.int64)
    if distance_m.size == 0:
        return empty, empty
    ok = distance_m <= max_distance_m
    if not ok.any():
        return empty, empty
    rows_any, cols_any = np.flatnonzero(ok.any(axis=1)), np.flatnonzero(ok.any(axis=0))
    sub_ok = ok[np.ix_(rows_any, cols_any)]
    cost = np.where(sub_ok, distance_m[np.ix_(rows_any, cols_any)], _UNMATCHABLE)
    r, c = linear_sum_assignment(cost)
    keep = sub_ok[r, c]
    return rows_any[r[keep]].astype(np.int64), cols_any[c[keep]].astype(np.int64)

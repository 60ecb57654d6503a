"""Point-in-box geometry for 3D boxes (x, y, z_centre, length, width, height, yaw), vectorised.

`points_in_boxes` cuts the x axis into strips about half a box wide and sorts the points once by
(strip, y). Each box then covers a few strips, and in each strip the points whose y lies within the
box's BEV circumradius of its centre form one contiguous run found by two binary searches. The exact
test runs only on those candidates, so the cost is O(M log M + candidates) rather than O(M * N):
120k points x 150 boxes take a few milliseconds instead of the dense test's hundreds.

A point is inside a box when, rotated into the box frame, |dx| <= l/2, |dy| <= w/2 and |dz| <= h/2
(boundaries count as inside). Arithmetic is float64.
"""

from __future__ import annotations

import numpy as np

from andon.errors import BadInput
from andon.scenarios.records import BOX_DIM

# Widens the search window a hair beyond the circumradius so rounding in the coarse search can never
# drop a point that the exact test accepts (a point exactly on a corner).
_SEARCH_MARGIN_M = 1e-6
# At most this many x-strips, whatever the boxes' sizes: bounds the (box, strip) pairs.
_MAX_STRIPS = 4096


def _as_points(points_xyz: np.ndarray) -> np.ndarray:
    points = np.asarray(points_xyz)
    if points.ndim != 2 or points.shape[1] < 3:
        raise BadInput(f"points must have shape (M, 3) (x, y, z; extra columns are ignored), got {points.shape}")
    xyz = np.asarray(points[:, :3], dtype=np.float64)
    if not np.all(np.isfinite(xyz)):
        raise BadInput("points hold NaN or infinite coordinates: drop those points first")
    return xyz


def _as_boxes(boxes: np.ndarray) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != BOX_DIM:
        raise BadInput(f"boxes must have shape (N, 7) (x, y, z_centre, l, w, h, yaw), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise BadInput(f"boxes hold NaN or infinite values (rows {np.flatnonzero(~np.isfinite(array).all(1))[:5].tolist()})")
    return array


def points_in_boxes(points_xyz: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (point, box) pair with the point inside the box.

    Args:
        points_xyz: (M, 3) positions [m]; columns past the third (e.g. intensity) are ignored.
        boxes: (N, 7) boxes (x, y, z_centre, l, w, h, yaw) [m, rad] in the points' frame.

    Returns:
        (point_idx, box_idx), two int64 arrays of equal length, grouped by box.

    Raises:
        BadInput: a shape is wrong, or a value is NaN or infinite.
    """
    points = _as_points(points_xyz)
    boxes = _as_boxes(boxes)
    empty = np.zeros(0, dtype=np.int64)
    if len(points) == 0 or len(boxes) == 0:
        return empty, empty
    xyz = points
    cx, cy, cz, length, width, height, yaw = boxes.T
    radius = 0.5 * np.hypot(length, width) + _SEARCH_MARGIN_M  # [m] circumradius of the BEV footprint
    x_min, y_min = xyz[:, 0].min(), xyz[:, 1].min()
    x_span, y_span = xyz[:, 0].max() - x_min, xyz[:, 1].max() - y_min
    # Strips about half a typical box wide: candidates then cover ~3r x 2r per box rather than a whole
    # x-slab; the floor on the width bounds the strip count (and so the work) for tiny boxes.
    strip_m = max(float(np.median(radius)), x_span / _MAX_STRIPS)
    n_strips = int(x_span // strip_m) + 1
    # One sort by (strip, y): the points of a strip with y in a range are one contiguous run. The key
    # spacing y_span + 1 keeps strips apart; y is clipped below so a query never reaches the next strip.
    pitch_m = y_span + 1.0
    strip = np.floor((xyz[:, 0] - x_min) / strip_m)
    key = strip * pitch_m + (xyz[:, 1] - y_min)
    order = np.argsort(key)
    key = key[order]
    # Expand each box into its (box, strip) pairs, then each pair into its candidate points, without loops.
    first = np.clip(np.floor((cx - radius - x_min) / strip_m), 0, n_strips - 1).astype(np.int64)
    last = np.clip(np.floor((cx + radius - x_min) / strip_m), -1, n_strips - 1).astype(np.int64)
    n_pairs = np.maximum(last - first + 1, 0)
    pair_box = np.repeat(np.arange(len(boxes), dtype=np.int64), n_pairs)
    pair_strip = _ranges(first, n_pairs).astype(np.float64)
    y_lo = np.clip(cy - radius - y_min, 0.0, y_span)[pair_box]
    y_hi = np.clip(cy + radius - y_min, 0.0, y_span)[pair_box]
    lo = np.searchsorted(key, pair_strip * pitch_m + y_lo, side="left")
    hi = np.searchsorted(key, pair_strip * pitch_m + y_hi, side="right")
    n_candidates = np.maximum(hi - lo, 0)
    if int(n_candidates.sum()) == 0:
        return empty, empty
    box_idx = np.repeat(pair_box, n_candidates)
    point_idx = order[_ranges(lo, n_candidates)]
    candidate = xyz[point_idx]
    dx = candidate[:, 0] - cx[box_idx]
    dy = candidate[:, 1] - cy[box_idx]
    cos, sin = np.cos(yaw)[box_idx], np.sin(yaw)[box_idx]
    inside = np.abs(candidate[:, 2] - cz[box_idx]) <= 0.5 * height[box_idx]
    inside &= np.abs(cos * dx + sin * dy) <= 0.5 * length[box_idx]
    inside &= np.abs(cos * dy - sin * dx) <= 0.5 * width[box_idx]
    return point_idx[inside].astype(np.int64, copy=False), box_idx[inside]


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, start + count) for each pair, without a Python loop."""
    offsets = np.cumsum(counts) - counts
    return np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(starts - offsets, counts)


def count_points_in_boxes(points_xyz: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Number of points inside each box: (N,) int64 (see `points_in_boxes`)."""
    boxes = _as_boxes(boxes)
    _, box_idx = points_in_boxes(points_xyz, boxes)
    return np.bincount(box_idx, minlength=len(boxes)).astype(np.int64, copy=False)


def box_corners_bev(boxes: np.ndarray) -> np.ndarray:
    """Footprint corners of each box: (N, 4, 2) [m], counter-clockwise from front-left.

    Raises:
        BadInput: `boxes` is not (N, 7).
    """
    boxes = _as_boxes(boxes)
    half_l, half_w = 0.5 * boxes[:, 3:4], 0.5 * boxes[:, 4:5]
    local_x = np.array([1.0, -1.0, -1.0, 1.0]) * half_l  # front-left, rear-left, rear-right, front-right
    local_y = np.array([1.0, 1.0, -1.0, -1.0]) * half_w
    cos, sin = np.cos(boxes[:, 6:7]), np.sin(boxes[:, 6:7])
    x = boxes[:, 0:1] + cos * local_x - sin * local_y
    y = boxes[:, 1:2] + sin * local_x + cos * local_y
    return np.stack([x, y], axis=-1)

"""Vectorised geometry against a road map: distances to polylines and points in polygons.

Loops here run over map elements (a few dozen polygons), never over frames or boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Bounds the (points x segments) block held at once: ~16 MB of float64 per temporary.
_MAX_PAIRS = 2_000_000


def polyline_segments(lines: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every segment of the polylines: (starts (S, 2), ends (S, 2), owner (S,) index into `lines`)."""
    parts = [np.asarray(line, dtype=np.float64).reshape(-1, 2) for line in lines]
    counts = np.array([max(len(p) - 1, 0) for p in parts], dtype=np.int64)
    if not counts.sum():
        empty = np.zeros((0, 2))
        return empty, empty, np.zeros(0, dtype=np.int64)
    starts = np.concatenate([p[:-1] for p in parts if len(p) > 1])
    ends = np.concatenate([p[1:] for p in parts if len(p) > 1])
    owner = np.repeat(np.arange(len(parts)), counts)
    return starts, ends, owner


def distance_to_segments(points_m: np.ndarray, starts_m: np.ndarray, ends_m: np.ndarray,
                         max_distance_m: float = np.inf, beside_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Distance from each point to its nearest segment, and that segment's index.

    Segments farther than `max_distance_m` from the points' bounding box are skipped; points with no
    segment within reach get distance inf and index -1.

    Args:
        points_m: (P, 2) positions [m].
        starts_m: (S, 2) segment starts [m]; ends_m: (S, 2) segment ends [m].
        max_distance_m: distances beyond this need not be exact [m].
        beside_only: count only segments the point projects onto (between their ends), so the
            distance is the perpendicular one; a point before a polyline's start or past its end is
            not near it however close it is.

    Returns:
        (distance (P,) [m], segment index (P,) int64).
    """
    points = np.asarray(points_m, dtype=np.float64).reshape(-1, 2)
    distance = np.full(len(points), np.inf)
    nearest = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or len(starts_m) == 0:
        return distance, nearest
    lo, hi = points.min(axis=0) - max_distance_m, points.max(axis=0) + max_distance_m
    seg_lo, seg_hi = np.minimum(starts_m, ends_m), np.maximum(starts_m, ends_m)
    near = np.flatnonzero(np.all(seg_hi >= lo, axis=1) & np.all(seg_lo <= hi, axis=1))
    if len(near) == 0:
        return distance, nearest
    a, b = starts_m[near], ends_m[near]
    d = b - a
    length2 = np.maximum(np.einsum("ij,ij->i", d, d), 1e-12)  # a zero-length segment is its start point
    step = max(1, _MAX_PAIRS // len(near))
    for lo_i in range(0, len(points), step):  # chunks bound memory; a handful for any real log
        p = points[lo_i:lo_i + step, None, :]
        raw = np.einsum("psk,sk->ps", p - a[None], d) / length2
        t = np.clip(raw, 0.0, 1.0)
        gap = p - (a[None] + t[..., None] * d[None])
        dist2 = np.einsum("psk,psk->ps", gap, gap)
        if beside_only:
            dist2[raw != t] = np.inf
        best = np.argmin(dist2, axis=1)
        found = dist2[np.arange(len(best)), best]
        distance[lo_i:lo_i + step] = np.sqrt(found)
        nearest[lo_i:lo_i + step] = np.where(np.isfinite(found), near[best], -1)
    return distance, nearest


def polygon_containing(points_m: np.ndarray, polygons_m: Sequence[np.ndarray]) -> np.ndarray:
    """Index of the first polygon containing each point, or -1: (P,) int64.

    An even-odd crossing test of every point against every edge at once (points on a boundary may
    fall either side). Only polygons whose bounding box meets the points' bounding box take part, so a
    town-sized map costs little more than the few crosswalks near the ego.
    """
    points = np.asarray(points_m, dtype=np.float64).reshape(-1, 2)
    owner = np.full(len(points), -1, dtype=np.int64)
    shapes = [np.asarray(p, dtype=np.float64).reshape(-1, 2) for p in polygons_m]
    shapes = [(k, v) for k, v in enumerate(shapes) if len(v) >= 3]
    if len(points) == 0 or not shapes:
        return owner
    ids = np.array([k for k, _ in shapes], dtype=np.int64)
    counts = np.array([len(v) for _, v in shapes], dtype=np.int64)
    vertices = np.concatenate([v for _, v in shapes])
    first = np.cumsum(counts) - counts
    lo, hi = np.minimum.reduceat(vertices, first), np.maximum.reduceat(vertices, first)
    keep = np.all(hi >= points.min(axis=0), axis=1) & np.all(lo <= points.max(axis=0), axis=1)
    if not keep.any():
        return owner
    # Edges of the kept polygons: each vertex to the next, the last back to the first.
    vertex_owner = np.repeat(np.arange(len(shapes)), counts)
    following = np.arange(len(vertices)) + 1
    following[first + counts - 1] = first
    edge = np.flatnonzero(keep[vertex_owner])
    a, b = vertices[edge], vertices[following[edge]]
    edge_owner = vertex_owner[edge]
    group = np.flatnonzero(np.r_[True, edge_owner[1:] != edge_owner[:-1]])  # edges are grouped by polygon
    kept_ids = ids[edge_owner[group]]
    # x where each edge crosses the point's horizontal line; edges parallel to it never cross.
    dy = b[:, 1] - a[:, 1]
    slope = np.divide(b[:, 0] - a[:, 0], dy, out=np.zeros_like(dy), where=dy != 0)
    step = max(1, _MAX_PAIRS // len(edge))
    for lo_i in range(0, len(points), step):  # chunks bound memory
        p = points[lo_i:lo_i + step]
        px, py = p[:, 0:1], p[:, 1:2]
        straddles = (a[None, :, 1] > py) != (b[None, :, 1] > py)
        crosses = straddles & (px < a[None, :, 0] + (py - a[None, :, 1]) * slope[None, :])
        inside = (np.add.reduceat(crosses.astype(np.int32), group, axis=1) % 2) == 1
        found = inside.any(axis=1)
        owner[lo_i:lo_i + step] = np.where(found, kept_ids[inside.argmax(axis=1)], -1)
    return owner


def segment_heading_rad(starts_m: np.ndarray, ends_m: np.ndarray) -> np.ndarray:
    """(S,) heading of each segment, from +x towards +y [rad]."""
    d = np.asarray(ends_m) - np.asarray(starts_m)
    return np.arctan2(d[:, 1], d[:, 0])

"""Oriented rectangles in the bird's-eye view: overlap (separating axes) and support extents, vectorised.

A rectangle is its centre (x, y) [m], heading yaw [rad] and half sizes (half length along the heading,
half width across it) [m]. Every function broadcasts over leading axes, so one call tests an ego box
against every agent of every frame (or of every plan step) without a Python loop.

Overlap uses the separating axis theorem: two convex polygons are disjoint exactly when their
projections on one of the edge normals are disjoint; a rectangle pair has four candidate axes (the
two headings of each). Touching boxes (projections that meet at one point) count as overlapping.
"""

from __future__ import annotations

import numpy as np


def rectangles_overlap(centre_a_m: np.ndarray, yaw_a_rad: np.ndarray, half_a_m: np.ndarray,
                       centre_b_m: np.ndarray, yaw_b_rad: np.ndarray, half_b_m: np.ndarray,
                       margin_m: float = 0.0) -> np.ndarray:
    """Whether rectangle A, grown by `margin_m` on every side, overlaps rectangle B (BEV).

    Growing a rectangle by a margin keeps it a rectangle (its corners stay square), so the test is
    conservative at the corners by at most margin * (sqrt(2) - 1).

    Args:
        centre_a_m: (..., 2) centres of A [m].
        yaw_a_rad: (...) headings of A [rad].
        half_a_m: (..., 2) half length and half width of A [m].
        centre_b_m, yaw_b_rad, half_b_m: the same for B; all arguments broadcast together.
        margin_m: added to A's half sizes [m].

    Returns:
        (...) bool, True where they overlap (NaN inputs give False).
    """
    dx = centre_b_m[..., 0] - centre_a_m[..., 0]
    dy = centre_b_m[..., 1] - centre_a_m[..., 1]
    ca, sa = np.cos(yaw_a_rad), np.sin(yaw_a_rad)
    cb, sb = np.cos(yaw_b_rad), np.sin(yaw_b_rad)
    cos_rel = np.abs(ca * cb + sa * sb)  # |cos(yaw_b - yaw_a)|
    sin_rel = np.abs(ca * sb - sa * cb)
    la, wa = half_a_m[..., 0] + margin_m, half_a_m[..., 1] + margin_m
    lb, wb = half_b_m[..., 0], half_b_m[..., 1]
    with np.errstate(invalid="ignore"):  # NaN boxes (padding) compare False: no overlap
        overlap = np.abs(ca * dx + sa * dy) <= la + lb * cos_rel + wb * sin_rel  # A's heading
        overlap &= np.abs(ca * dy - sa * dx) <= wa + lb * sin_rel + wb * cos_rel  # across A
        overlap &= np.abs(cb * dx + sb * dy) <= lb + la * cos_rel + wa * sin_rel  # B's heading
        overlap &= np.abs(cb * dy - sb * dx) <= wb + la * sin_rel + wa * cos_rel  # across B
    return overlap


def support_extents(half_m: np.ndarray, yaw_rad: np.ndarray, axis_yaw_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far a rectangle reaches from its centre along an axis and across it [m].

    Args:
        half_m: (..., 2) half length and half width [m].
        yaw_rad: (...) the rectangle's heading [rad].
        axis_yaw_rad: (...) the axis' heading [rad].

    Returns:
        (along, across): (...) half extents of the rectangle's projection on the axis and on its normal.
    """
    rel = yaw_rad - axis_yaw_rad
    c, s = np.abs(np.cos(rel)), np.abs(np.sin(rel))
    return half_m[..., 0] * c + half_m[..., 1] * s, half_m[..., 0] * s + half_m[..., 1] * c


def to_frame(xy_m: np.ndarray, origin_xy_m: np.ndarray, origin_yaw_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of points in the frame of a pose: (along its heading, to its left) [m], broadcast."""
    dx = xy_m[..., 0] - origin_xy_m[..., 0]
    dy = xy_m[..., 1] - origin_xy_m[..., 1]
    c, s = np.cos(origin_yaw_rad), np.sin(origin_yaw_rad)
    return c * dx + s * dy, c * dy - s * dx

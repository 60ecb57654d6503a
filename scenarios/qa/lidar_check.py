"""The point check: a nearby box that the lidar plainly sees through holds no points.

Streams the log's sweeps one at a time (a stored log reads each sweep's blob only when asked) and
runs on one sweep per `lidar_period_s` (default 1 s). A 100k-point sweep costs ~2 ms here (candidate
cut and exact count) plus ~2 ms to read from the blob store, so all 200 sweeps of a 20 s, 10 Hz log
would cost ~0.7 s, many times the box checks' ~25 ms for the whole log; a box labelled on nothing
persists over frames, so a 1 Hz sample still finds it (20 sweeps, ~0.1 s with reading). Frames
without points are skipped.

An empty box is not yet an error: an occluded agent has no points either, nor does a label nested in
another (the outer box takes the returns), which is not judged. A box counts as visible
when, in most of a few azimuths across it, (a) no obstacle return lies nearer than its near face and
(b) some return lies at or beyond its near face (the beams reached it and went on). Only visible
empty boxes are flagged.

Speed: points are first cut to the BEV cells (2 m) that some nearby box touches, so the exact count
(geometry.count_points_in_boxes) sorts a few thousand candidates instead of the whole sweep.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from andon.errors import BadInput
from andon.scenarios.geometry import box_corners_bev, count_points_in_boxes
from andon.scenarios.qa.config import QAConfig
from andon.scenarios.qa.findings import CheckResult, from_rows
from andon.scenarios.qa.table import QATable
from andon.scenarios.records import Frame, wrap_angle

AZIMUTH_BINS = 720  # 0.5 deg: coarser than a lidar's resolution, finer than a pedestrian at 40 m
CELL_M = 2.0  # BEV cell of the candidate cut
# Widens each box's square so float32 rounding of a point on its edge cannot drop an insider.
_CELL_MARGIN_M = 0.01
# Obstacle returns: above kerbs and road paint, below overhanging trees and gantries [m over ground].
OBSTACLE_BAND_M = (0.3, 3.0)
# Azimuths sampled across each box, as fractions of its angular half-width; most must be visible.
SAMPLES = np.array([-0.6, 0.0, 0.6])


def empty_box(frames: Sequence[Frame] | None, table: QATable, config: QAConfig) -> CheckResult:
    """Flag visible boxes within `near_range_m` holding fewer than `empty_min_points` points.

    `frames` None reads no sweep (the check then flags nothing).
    """
    flagged = np.zeros(table.n_boxes, dtype=bool)
    counts = np.zeros(table.n_boxes, dtype=np.float64)
    rows = table.frame_rows()
    stamps = table.frame_timestamps_ns
    period_ns = int(round(config.lidar_period_s * 1e9))
    index = 0 if frames is not None else table.n_frames
    while index < table.n_frames:
        points = frames[index].points  # type: ignore[index]  # None never gets here
        if points is None or len(points) == 0:
            index += 1
            continue
        lo, hi = int(rows[index]), int(rows[index + 1])
        near = lo + np.flatnonzero(table.range_m[lo:hi] < config.near_range_m)
        if len(near):
            xyz = np.asarray(points)[:, :3]
            n_inside = count_points_in_boxes(_candidates(xyz, table.boxes[near]), table.boxes[near])
            counts[near] = n_inside
            empty = near[n_inside < config.empty_min_points]
            if len(empty):
                judged = empty[~_overlapped(table.boxes[lo:hi], empty - lo)]
                flagged[judged] = _visible(xyz, table.boxes[judged], table.ground_z_m, config)
        # Next sweep due one period on; at least the next frame.
        index = max(index + 1, int(np.searchsorted(stamps, stamps[index] + period_ns, side="left")))
    need = "a point" if config.empty_min_points == 1 else f"{config.empty_min_points} points"
    return from_rows("empty_box", f"box within {config.near_range_m:g} m that the lidar sees through, without "
                     f"{need} inside (checked on one sweep per {config.lidar_period_s:g} s; value: points inside)",
                     "points",
                     table, flagged, counts)


def _candidates(xyz: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The points in BEV cells that some box's circumscribed square touches (a superset of the insiders).

    Raises:
        BadInput: a point's x or y is NaN.
    """
    radius = 0.5 * np.hypot(boxes[:, 3], boxes[:, 4]) + _CELL_MARGIN_M
    # The grid spans the boxes plus one uncovered cell on each side; points beyond it are clipped into
    # that border, so a stray far return costs nothing and needs no bounds test.
    low = (boxes[:, :2] - radius[:, None]).min(axis=0) - CELL_M
    high = (boxes[:, :2] + radius[:, None]).max(axis=0) + CELL_M
    nx, ny = (np.floor((high - low) / CELL_M).astype(np.int64) + 1).tolist()
    first = np.floor((boxes[:, :2] - radius[:, None] - low) / CELL_M).astype(np.int64)
    last = np.floor((boxes[:, :2] + radius[:, None] - low) / CELL_M).astype(np.int64) + 1
    # Mark each box's rectangle of cells with a 2D difference array, then integrate: no loop over boxes.
    marks = np.zeros((nx + 1, ny + 1), dtype=np.int64)
    np.add.at(marks, (first[:, 0], first[:, 1]), 1)
    np.add.at(marks, (last[:, 0], first[:, 1]), -1)
    np.add.at(marks, (first[:, 0], last[:, 1]), -1)
    np.add.at(marks, (last[:, 0], last[:, 1]), 1)
    covered = (np.cumsum(np.cumsum(marks, axis=0), axis=1)[:-1, :-1] > 0).ravel()
    # A few passes of 1-D float32 arithmetic: this runs on ~100k points per checked sweep.
    scale = np.float32(1.0 / CELL_M)
    fx = np.clip((xyz[:, 0] - np.float32(low[0])) * scale, 0, nx - 1)
    fy = np.clip((xyz[:, 1] - np.float32(low[1])) * scale, 0, ny - 1)
    with np.errstate(invalid="ignore"):  # NaN casts with a warning; it is refused just below
        cell = fx.astype(np.int32) * np.int32(ny)
        cell += fy.astype(np.int32)
    if len(cell) and cell.min() < 0:  # NaN survives the clip and casts to a negative integer
        raise BadInput("lidar points hold NaN coordinates: drop those points (the importers refuse them)")
    return xyz[covered[cell]]


def _visible(xyz: np.ndarray, boxes: np.ndarray, ground_z_m: float, config: QAConfig) -> np.ndarray:
    """(N,) bool: the sweep saw through most of each box's azimuths up to its near face."""
    azimuth = np.arctan2(xyz[:, 1], xyz[:, 0])
    ranges = np.hypot(xyz[:, 0], xyz[:, 1])
    bins = _bin(azimuth)
    height = xyz[:, 2] - ground_z_m
    obstacle = (height > OBSTACLE_BAND_M[0]) & (height < OBSTACLE_BAND_M[1])
    nearest = np.full(AZIMUTH_BINS, np.inf)
    np.minimum.at(nearest, bins[obstacle], ranges[obstacle])
    farthest = np.zeros(AZIMUTH_BINS)
    np.maximum.at(farthest, bins, ranges)

    centre = np.arctan2(boxes[:, 1], boxes[:, 0])
    corners = box_corners_bev(boxes)  # (N, 4, 2)
    spread = np.abs(wrap_angle(np.arctan2(corners[..., 1], corners[..., 0]) - centre[:, None]))
    half_width = spread.max(axis=1)
    sample_bins = _bin(centre[:, None] + SAMPLES[None, :] * half_width[:, None])  # (N, S)
    face_m = _distance_to_footprint(boxes)[:, None]
    clear = nearest[sample_bins] >= face_m - config.occlusion_margin_m
    reached = farthest[sample_bins] >= face_m
    return (clear & reached).sum(axis=1) * 2 > len(SAMPLES)


def _overlapped(frame_boxes: np.ndarray, which: np.ndarray) -> np.ndarray:
    """(len(which),) bool: another box of the frame has its centre in box `which`'s footprint, or the reverse.

    Two labels sharing space split the returns: the outer one takes them all, so the inner one's
    emptiness says nothing about the lidar.
    """
    def inside(centres: np.ndarray, footprints: np.ndarray) -> np.ndarray:  # (len(centres), len(footprints))
        dx = centres[:, None, 0] - footprints[None, :, 0]
        dy = centres[:, None, 1] - footprints[None, :, 1]
        cos, sin = np.cos(footprints[None, :, 6]), np.sin(footprints[None, :, 6])
        return ((np.abs(cos * dx + sin * dy) <= 0.5 * footprints[None, :, 3])
                & (np.abs(cos * dy - sin * dx) <= 0.5 * footprints[None, :, 4]))

    boxes = frame_boxes[which]
    shared = inside(boxes, frame_boxes) | inside(frame_boxes, boxes).T
    shared[np.arange(len(which)), which] = False  # a box always shares space with itself
    return shared.any(axis=1)


def _bin(azimuth: np.ndarray) -> np.ndarray:
    return np.floor((np.asarray(azimuth) + np.pi) * (AZIMUTH_BINS / (2 * np.pi))).astype(np.int64) % AZIMUTH_BINS


def _distance_to_footprint(boxes: np.ndarray) -> np.ndarray:
    """(N,) BEV distance from the ego origin to each box's footprint rectangle [m] (0 inside it)."""
    cos, sin = np.cos(boxes[:, 6]), np.sin(boxes[:, 6])
    along = np.abs(-cos * boxes[:, 0] - sin * boxes[:, 1])  # the origin in each box's frame
    across = np.abs(sin * boxes[:, 0] - cos * boxes[:, 1])
    return np.hypot(np.maximum(along - 0.5 * boxes[:, 3], 0.0), np.maximum(across - 0.5 * boxes[:, 4], 0.0))

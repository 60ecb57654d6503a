"""Thresholds of the label-QA checks, in one place, with the reasoning behind each.

Per-class tables are indexed by andon's classes (records.CLASSES order: vehicle, pedestrian, cyclist,
static). The numbers are physical limits with a margin, not fitted to any data set, so a check that
fires means "impossible or very unlikely", not "unusual".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from andon.errors import BadInput
from andon.scenarios.records import CLASSES

# Top speed over the ground [m/s]: a car on a motorway (~250 km/h); a motorcycle counts as a cyclist;
# a sprinting person; static objects only move by label noise.
MAX_SPEED_MPS: dict[str, float] = {"vehicle": 70.0, "pedestrian": 12.0, "cyclist": 45.0, "static": 5.0}
# Largest plausible acceleration [m/s^2]: hard braking is ~10 m/s^2; people and bikes change pace slowly.
MAX_ACCEL_MPS2: dict[str, float] = {"vehicle": 10.0, "pedestrian": 4.0, "cyclist": 6.0, "static": 1.0}
# Possible sizes (length, width, height) [m], (min, max) per class. Vehicles run from a city car to an
# articulated bus or tram; "pedestrian" holds strollers, wheelchairs and dogs (AV2's walking-pace
# categories); "cyclist" holds scooters and motorcycles; "static" holds cones up to road-works trailers.
SIZE_LIMITS_M: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "vehicle": ((2.0, 1.0, 0.8), (30.0, 4.5, 5.5)),
    "pedestrian": ((0.1, 0.1, 0.3), (2.0, 1.6, 2.6)),
    "cyclist": ((0.4, 0.2, 0.5), (3.5, 1.8, 2.6)),
    "static": ((0.03, 0.03, 0.05), (25.0, 25.0, 8.0)),
}
# Height of the ground below the ego frame's origin [m], per source, where the origin is not on the
# ground. KITTI's ego frame is its velodyne (1.73 m up); AV2's egovehicle origin is the rear-axle centre,
# about a wheel radius up (its sweep's road points sit at z ~ -0.35 m). Others (synthetic, nuScenes,
# the trajectory formats) put z = 0 on the ground. A log's meta may override with "ground_z_m".
GROUND_Z_M: dict[str, float] = {"kitti": -1.73, "av2": -0.35}
# Classes whose yaw must follow their motion (pedestrians turn on the spot; static objects do not move).
HEADING_CLASSES: tuple[str, ...] = ("vehicle", "cyclist")


def per_class(table: dict[str, float]) -> np.ndarray:
    """A per-class table as an array indexed by class code (records.CLASSES order)."""
    return np.array([table[c] for c in CLASSES], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class QAConfig:
    """Scalar thresholds of the checks; per-class limits are the module tables above.

    Attributes:
        near_range_m: boxes closer than this (BEV, from the ego origin) must be seen by the lidar and
            must not vanish from their track; beyond it, sparse points are normal.
        empty_min_points: a visible box within `near_range_m` needs at least this many points. One:
            a sparse 32-beam sweep (nuScenes) gives a real cone at 16 m a single point, so only a box
            with no point at all is evidence.
        lidar_period_s: the point check runs on one sweep per period (every sweep when 0): it is the
            expensive check (~2 ms per 100k-point sweep, the box checks ~25 ms per log), and a box
            labelled on nothing persists over frames, so a 1 Hz sample finds it.
        occlusion_margin_m: an obstacle return this much nearer than a box's near face occludes it:
            range noise, no more (a pedestrian half a metre behind another stands in its shadow).
        jitter_floor_m: smallest off-trajectory offset flagged; label noise of good data stays below.
        jitter_noise_k: the offset must also exceed this many times the log's median offset.
        jitter_range_slope: the floor grows by this fraction of the range (far labels are noisier:
            AV2's worst offset is 0.23 m sideways at 200 m).
        dimension_rel_tol: a size more than this fraction off its track's median is flagged...
        dimension_abs_tol_m: ...when it is also this far off (a pedestrian's 5 cm is not a change).
        gap_max_frames: a track absent for at most this many frames, then back, has lost its box;
            longer absences are occlusions.
        gap_horizon_margin_m: gaps count within the log's labelling horizon (its farthest box) less
            this margin, or within `near_range_m`, whichever is farther; the margin covers a path's
            bend away from the straight line over a gap's fraction of a second.
        heading_min_speed_mps: yaw is compared with motion only above this speed.
        heading_max_rad: the largest yaw-to-motion angle of a vehicle driving forwards.
        reverse_max_speed_mps: backwards motion (angle > pi - heading_max_rad) below this speed is a
            vehicle reversing, not a flipped box.
        ground_tol_m: how far a box's bottom may sink below the ground at the ego...
        ground_slope: ...plus this fraction of its range (hills: the ground plane is the ego's own).
        min_track_obs: track statistics (median size, majority class) need this many observations.
    """

    near_range_m: float = 40.0
    empty_min_points: int = 1
    lidar_period_s: float = 1.0
    occlusion_margin_m: float = 0.1
    jitter_floor_m: float = 0.3
    jitter_noise_k: float = 6.0
    jitter_range_slope: float = 0.002
    dimension_rel_tol: float = 0.15
    dimension_abs_tol_m: float = 0.15
    gap_max_frames: int = 5
    gap_horizon_margin_m: float = 2.0
    heading_min_speed_mps: float = 3.0
    heading_max_rad: float = float(np.deg2rad(60.0))
    reverse_max_speed_mps: float = 6.0
    ground_tol_m: float = 0.5
    ground_slope: float = 0.08
    min_track_obs: int = 3

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise BadInput(f"QA config {f.name}={value!r} must be a finite number >= 0")
        for name in ("near_range_m", "gap_max_frames", "min_track_obs", "heading_max_rad"):
            if getattr(self, name) <= 0:
                raise BadInput(f"QA config {name}={getattr(self, name)!r} must be positive")
        if self.heading_max_rad > np.pi / 2:
            raise BadInput(f"QA config heading_max_rad={self.heading_max_rad!r} must be at most pi/2: beyond it "
                           "a box driving forwards could not be told from one reversing")

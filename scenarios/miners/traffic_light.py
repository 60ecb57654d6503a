"""Miner `traffic_light`: the ego approaches, or waits at, a traffic light on its own lane.

Definition: frames where some traffic light's stop point lies ahead of the ego, 0 < x <= AHEAD_M in
the ego frame, on the ego's path:
- A light that names the lanes it controls (`lane_ids` found in the map) has one stop point per such
  lane: the point of the lane's centerline nearest to the light. It counts when the lane there runs
  within ALIGN_RAD of the ego's heading and the stop point lies within LANE_LATERAL_M of the ego's
  path (the ego-frame lateral offset minus the arc the ego's current curvature predicts,
  kappa * x^2 / 2, with kappa clipped to +-MAX_CURVATURE_PER_M).
- A light without known lanes counts when its own position lies within POLE_LATERAL_M of the path
  (it stands beside the road, not on the lane).
Stopped or moving does not matter; once the ego has passed the stop point it is behind and the
signal ends. Runs closer than MERGE_GAP_S merge, windows shorter than MIN_DURATION_S are dropped.
"""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners.arrays import AnyLog, LogArrays
from andon.scenarios.miners.mapgeom import polyline_segments, segment_heading_rad
from andon.scenarios.miners.windows import Window, mask_to_windows
from andon.scenarios.records import RoadMap, wrap_angle

NAME = "traffic_light"
VERSION = "1"
AHEAD_M = 40.0  # [m] inclusive
LANE_LATERAL_M = 2.0  # [m] half a lane plus a little
POLE_LATERAL_M = 8.0  # [m] a pole at the kerb of a two-lane approach
ALIGN_RAD = 0.6  # [rad] ~35 degrees
POLE_TO_LANE_M = 30.0  # [m] farthest a pole may stand from the stop point it guards
MAX_CURVATURE_PER_M = 0.02  # [1/m] radius >= 50 m: beyond that (a turn) the arc model is not the path
MIN_DURATION_S = 0.0  # [s] poses and maps carry no label noise
MERGE_GAP_S = 0.2  # [s]


def stop_points(road_map: RoadMap, near_xy_m: np.ndarray | None = None,
                reach_m: float = np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xy (K, 2) [m], lane heading (K,) [rad] or NaN, on_lane (K,) bool) of the lights' stop points.

    Only lights within `reach_m` of the bounding box of `near_xy_m` (the ego's positions) are
    considered, so a town-sized map costs little more than the lights along the drive.
    """
    lights = road_map.traffic_lights
    positions = np.array([light.position_m for light in lights], dtype=np.float64).reshape(-1, 2)
    chosen = np.arange(len(lights))
    if near_xy_m is not None and len(near_xy_m):
        lo, hi = near_xy_m.min(axis=0) - reach_m, near_xy_m.max(axis=0) + reach_m
        chosen = np.flatnonzero(np.all((positions >= lo) & (positions <= hi), axis=1))
    centerlines = {lane.lane_id: lane.centerline_m for lane in road_map.lanes if len(lane.centerline_m) > 1}
    pairs = [(k, centerlines[lid]) for k in chosen.tolist() for lid in lights[k].lane_ids if lid in centerlines]
    with_lanes = np.zeros(len(lights), dtype=bool)
    with_lanes[[k for k, _ in pairs]] = True
    poles = chosen[~with_lanes[chosen]]
    xy, heading = [positions[poles]], [np.full(len(poles), np.nan)]
    if pairs:
        # Every controlled lane's segments at once; the foot of its light's position on each segment.
        starts, ends, pair = polyline_segments([line for _, line in pairs])
        light_xy = positions[np.array([k for k, _ in pairs])[pair]]
        d = ends - starts
        t = np.clip(np.einsum("sk,sk->s", light_xy - starts, d) / np.maximum(np.einsum("sk,sk->s", d, d), 1e-12),
                    0.0, 1.0)
        foot = starts + t[:, None] * d
        gap = np.hypot(*(foot - light_xy).T)
        # The nearest segment of each (light, lane) pair: sort by (pair, gap), take each pair's first.
        order = np.lexsort((gap, pair))
        first = order[np.r_[True, pair[order][1:] != pair[order][:-1]]]
        xy.append(foot[first])
        heading.append(segment_heading_rad(starts[first], ends[first]))
    on_lane = np.r_[np.zeros(len(poles), dtype=bool), np.ones(len(xy[1]) if pairs else 0, dtype=bool)]
    return np.concatenate(xy).reshape(-1, 2), np.concatenate(heading), on_lane


def mine(log: AnyLog, arrays: LogArrays | None = None) -> list[Window]:
    """Windows where a traffic light's stop point lies ahead on the ego's path within AHEAD_M."""
    a = LogArrays.of(log) if arrays is None else arrays
    if a.road_map is None or not a.road_map.traffic_lights:
        return []
    # A light's stop point lies on its lane, a few metres from its pole: reach past AHEAD_M for it.
    xy, heading, on_lane = stop_points(a.road_map, a.ego_xy_m, AHEAD_M + POLE_TO_LANE_M)
    if len(xy) == 0:
        return []
    # (F, K): every stop point in the ego frame of every frame.
    cos, sin = np.cos(a.ego_yaw_rad)[:, None], np.sin(a.ego_yaw_rad)[:, None]
    dx = xy[None, :, 0] - a.ego_xy_m[:, 0:1]
    dy = xy[None, :, 1] - a.ego_xy_m[:, 1:2]
    x, y = cos * dx + sin * dy, -sin * dx + cos * dy
    kappa = np.clip(a.ego_curvature_per_m, -MAX_CURVATURE_PER_M, MAX_CURVATURE_PER_M)[:, None]
    lateral = np.abs(y - 0.5 * kappa * x * x)
    aligned = ~on_lane[None, :] | (np.abs(wrap_angle(heading[None, :] - a.ego_yaw_rad[:, None])) <= ALIGN_RAD)
    tolerance = np.where(on_lane, LANE_LATERAL_M, POLE_LATERAL_M)[None, :]
    ahead = (x > 0.0) & (x <= AHEAD_M) & aligned & (lateral <= tolerance)
    return mask_to_windows(a.timestamps_ns, ahead.any(axis=1), MIN_DURATION_S, MERGE_GAP_S)

"""Miner `intersection`: the ego is inside an intersection.

Definition: frames where the ego origin lies beside a lane marked `is_intersection` in the log's
road map (it projects onto one of the centerline's segments, between its ends) at most
INSIDE_DISTANCE_M from it (half a lane and a little): the lanes inside a junction cover its drivable
area from stop line to exit, so this is being in the junction, from its stop line on. Runs closer
than MERGE_GAP_S merge (a frame lost at the outside of a bend between two segments), windows shorter
than MIN_DURATION_S are dropped. Logs without intersection lanes never fire.
"""

from __future__ import annotations

from andon.scenarios.miners.arrays import AnyLog, LogArrays
from andon.scenarios.miners.mapgeom import distance_to_segments, polyline_segments
from andon.scenarios.miners.windows import Window, mask_to_windows

NAME = "intersection"
VERSION = "1"
INSIDE_DISTANCE_M = 2.0  # [m] inclusive
MIN_DURATION_S = 0.0  # [s] poses and maps carry no label noise: every frame inside counts
MERGE_GAP_S = 0.2  # [s]


def mine(log: AnyLog, arrays: LogArrays | None = None) -> list[Window]:
    """Windows where the ego is beside an intersection lane, within INSIDE_DISTANCE_M of its centerline."""
    a = LogArrays.of(log) if arrays is None else arrays
    if a.road_map is None:
        return []
    lanes = [lane.centerline_m for lane in a.road_map.lanes if lane.is_intersection]
    starts, ends, _ = polyline_segments(lanes)
    distance, _ = distance_to_segments(a.ego_xy_m, starts, ends, INSIDE_DISTANCE_M, beside_only=True)
    return mask_to_windows(a.timestamps_ns, distance <= INSIDE_DISTANCE_M, MIN_DURATION_S, MERGE_GAP_S)

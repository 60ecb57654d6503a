"""Miner `pedestrian_crossing`: a pedestrian inside a crosswalk within 30 m of the ego.

Definition: frames with at least one `pedestrian` box whose centre, moved into the world frame, lies
inside a crosswalk polygon of the log's road map, and lies within CROSSING_RANGE_M of the ego origin
(ego frame, sqrt(x^2 + y^2)); runs closer than MERGE_GAP_S merge (one missing label does not split
a crossing), and windows shorter than MIN_DURATION_S are dropped (a cyclist mislabelled as a
pedestrian for one frame on a crosswalk is no crossing) unless they touch the log's first or last
frame (the log cut them short). Logs without crosswalks never fire. `track_ids` are the crossing
pedestrians.
"""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners.arrays import AnyLog, LogArrays
from andon.scenarios.miners.mapgeom import polygon_containing
from andon.scenarios.miners.windows import Window, attach_tracks, mask_to_windows

NAME = "pedestrian_crossing"
VERSION = "1"
CROSSING_RANGE_M = 30.0  # [m] inclusive
MIN_DURATION_S = 0.1  # [s] two frames at 10 Hz: a one-frame class swap is not a crossing
MERGE_GAP_S = 0.2  # [s] bridges one missing label


def mine(log: AnyLog, arrays: LogArrays | None = None) -> list[Window]:
    """Windows with a pedestrian on a crosswalk within CROSSING_RANGE_M of the ego."""
    a = LogArrays.of(log) if arrays is None else arrays
    if a.road_map is None or not a.road_map.crosswalks:
        return []
    candidate = np.flatnonzero((a.classes == "pedestrian") & (a.box_range_m <= CROSSING_RANGE_M))
    hit = np.zeros(len(a.classes), dtype=bool)
    polygons = [c.polygon_m for c in a.road_map.crosswalks]
    hit[candidate] = polygon_containing(a.box_world_xy_m[candidate], polygons) >= 0
    windows = mask_to_windows(a.timestamps_ns, a.frame_any(hit), MIN_DURATION_S, MERGE_GAP_S, keep_cut_short=True)
    return attach_tracks(windows, a.box_timestamps_ns, a.track_ids, hit)

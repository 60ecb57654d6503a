"""Miner `dense_traffic`: at least 8 vehicles within 30 m of the ego.

Definition: frames where the number of `vehicle` boxes whose centre lies within DENSE_RANGE_M of the
ego origin (ego frame, sqrt(x^2 + y^2)) is at least MIN_VEHICLES; runs closer than MERGE_GAP_S merge
(one missing label must not split a jam in two), and windows shorter than MIN_DURATION_S are dropped
(one frame of a class swap is not a jam) unless they touch the log's first or last frame (the log
cut them short). `track_ids` are the vehicles counted inside the window.
"""

from __future__ import annotations

from andon.scenarios.miners.arrays import AnyLog, LogArrays
from andon.scenarios.miners.windows import Window, attach_tracks, mask_to_windows

NAME = "dense_traffic"
VERSION = "1"
MIN_VEHICLES = 8
DENSE_RANGE_M = 30.0  # [m] inclusive
MIN_DURATION_S = 0.1  # [s] two frames at 10 Hz: one mislabelled frame is not a jam
MERGE_GAP_S = 0.2  # [s]


def mine(log: AnyLog, arrays: LogArrays | None = None) -> list[Window]:
    """Windows with at least MIN_VEHICLES vehicles within DENSE_RANGE_M of the ego."""
    a = LogArrays.of(log) if arrays is None else arrays
    near = (a.classes == "vehicle") & (a.box_range_m <= DENSE_RANGE_M)
    dense = a.frame_count(near) >= MIN_VEHICLES
    windows = mask_to_windows(a.timestamps_ns, dense, MIN_DURATION_S, MERGE_GAP_S, keep_cut_short=True)
    return attach_tracks(windows, a.box_timestamps_ns, a.track_ids, near & dense[a.frame_index])

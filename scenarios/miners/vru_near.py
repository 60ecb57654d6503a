"""Miner `vru_near`: a pedestrian or cyclist within 10 m of the ego.

Definition: frames with at least one `pedestrian` or `cyclist` box whose centre lies within
NEAR_RANGE_M of the ego origin on the ground plane (ego frame, sqrt(x^2 + y^2)); runs closer than
MERGE_GAP_S merge (a dropped label does not split a window), and windows shorter than MIN_DURATION_S
are dropped (one frame of a class swap or a jittered box is not an encounter) unless they touch the
log's first or last frame (the log cut them short). `track_ids` are the VRUs near inside the window.

Logs with a fixed virtual ego (ETH/UCY) fire whenever a pedestrian walks within 10 m of that origin.
"""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners.arrays import AnyLog, LogArrays
from andon.scenarios.miners.windows import Window, attach_tracks, mask_to_windows

NAME = "vru_near"
VERSION = "1"
VRU_CLASSES = ("pedestrian", "cyclist")
NEAR_RANGE_M = 10.0  # [m] inclusive
MIN_DURATION_S = 0.1  # [s] two frames at 10 Hz: one mislabelled frame is not an encounter
MERGE_GAP_S = 0.2  # [s] bridges one missing label


def mine(log: AnyLog, arrays: LogArrays | None = None) -> list[Window]:
    """Windows with a VRU within NEAR_RANGE_M of the ego."""
    a = LogArrays.of(log) if arrays is None else arrays
    hit = np.isin(a.classes, VRU_CLASSES) & (a.box_range_m <= NEAR_RANGE_M)
    windows = mask_to_windows(a.timestamps_ns, a.frame_any(hit), MIN_DURATION_S, MERGE_GAP_S, keep_cut_short=True)
    return attach_tracks(windows, a.box_timestamps_ns, a.track_ids, hit)

"""Miner `stationary`: the ego stands still for at least 2 s.

Definition: frames where the ego's speed over ground (central finite differences of the world-frame
poses) is below STATIONARY_SPEED_MPS, in runs of consecutive frames that cover at least MIN_DURATION_S
when each frame stands for one frame period (the median gap between timestamps): at 10 Hz, 20 frames,
so the window from the first to the last such frame lasts at least 1.9 s.

Logs with a fixed virtual ego (ETH/UCY's origin, CommonRoad's obstacle centroid) are stationary from
start to end: the miner reports that truthfully, and curators can exclude those sources in queries.
"""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners.arrays import AnyLog, LogArrays
from andon.scenarios.miners.windows import Window, mask_to_windows

NAME = "stationary"
VERSION = "1"
STATIONARY_SPEED_MPS = 0.5  # [m/s] strictly below this
MIN_DURATION_S = 2.0  # [s]


def mine(log: AnyLog, arrays: LogArrays | None = None) -> list[Window]:
    """Windows where the ego stays below STATIONARY_SPEED_MPS for at least MIN_DURATION_S."""
    a = LogArrays.of(log) if arrays is None else arrays
    period_s = float(np.median(np.diff(a.timestamps_ns))) / 1e9 if a.n_frames > 1 else 0.0
    # First to last frame of a run spans one period less than the run covers.
    span_s = max(MIN_DURATION_S - period_s, 0.0)
    return mask_to_windows(a.timestamps_ns, a.ego_speed_mps < STATIONARY_SPEED_MPS, span_s)

"""Miner `high_speed`: the ego drives faster than 15 m/s.

Definition: frames where the ego's speed over ground (central finite differences of the world-frame
poses) exceeds HIGH_SPEED_MPS; runs closer than MERGE_GAP_S merge (one frame of noise at the
threshold does not split a window). A single fast frame is a (zero-length) window.
"""

from __future__ import annotations

from andon.scenarios.miners.arrays import AnyLog, LogArrays
from andon.scenarios.miners.windows import Window, mask_to_windows

NAME = "high_speed"
VERSION = "1"
HIGH_SPEED_MPS = 15.0  # [m/s] strictly above this
MIN_DURATION_S = 0.0  # [s] poses carry no label noise: every fast frame counts
MERGE_GAP_S = 0.2  # [s]


def mine(log: AnyLog, arrays: LogArrays | None = None) -> list[Window]:
    """Windows where the ego drives faster than HIGH_SPEED_MPS."""
    a = LogArrays.of(log) if arrays is None else arrays
    return mask_to_windows(a.timestamps_ns, a.ego_speed_mps > HIGH_SPEED_MPS, MIN_DURATION_S, MERGE_GAP_S)

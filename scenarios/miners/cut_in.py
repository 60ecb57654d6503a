"""Miner `cut_in`: a vehicle moves from an adjacent lane into the ego's lane ahead, within 30 m.

Lanes are judged in the ego frame against the ego's path: a box's lateral offset is its ego-frame
y minus the arc the ego's current curvature predicts (kappa * x^2 / 2, kappa clipped to
+-MAX_CURVATURE_PER_M), so a car ahead on a gentle bend stays in the ego's lane. A `vehicle` box
heading within ALIGN_RAD of the ego (same direction of travel) is
- in the adjacent lane when ADJACENT_MIN_M <= |offset| <= ADJACENT_MAX_M and -BEHIND_M <= x;
- in the ego's lane when |offset| <= EGO_LANE_M.

Definition: a cut-in is a track's entry into the ego's lane (first row of a run of ego-lane rows)
- ahead of the ego: x > 0 at entry, and x <= AHEAD_M at entry or at the start of the manoeuvre, so
  at some moment of it the car is ahead within AHEAD_M (a faster car that starts its move 25 m ahead
  may enter the lane a little beyond 30 m);
- whose latest adjacent-lane row is at most MAX_MANOEUVRE_S earlier, counting only runs of adjacent
  rows that lasted at least MIN_DWELL_S (a box jittered into the adjacent band is not in that lane);
- after which it stays in the ego's lane at least MIN_DWELL_S (or until its track ends);
- made by the vehicle and not by the ego: in the world frame, across the ego's heading at the start,
  the vehicle moved at least MIN_LATERAL_MOVE_M towards the ego's lane and more than the ego moved
  (when the ego changes lanes, the cars of its new lane enter its lane without moving);
- while the ego is not turning: |kappa| <= MAX_CURVATURE_PER_M at entry, and its heading changed by
  at most MAX_EGO_TURN_RAD from the start (through a turn, cars of the new road sweep across the
  ego's lanes without changing theirs).
The window runs from the latest adjacent row to the entry, padded by PAD_S each side; overlapping
windows merge. `track_ids` are the vehicles that cut in.

Everything is vectorised: vehicle rows are sorted once by (track, time) and per-track quantities
(latest adjacent row, run starts and ends) come from running maxima and minima.
"""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners.arrays import AnyLog, LogArrays
from andon.scenarios.miners.windows import Window, attach_tracks, mask_to_windows
from andon.scenarios.records import wrap_angle

NAME = "cut_in"
VERSION = "1"
EGO_LANE_M = 1.25  # [m] |lateral offset| inside the ego's lane (settled near its centre)
ADJACENT_MIN_M = 2.5  # [m] lanes 3.5 - 3.75 m wide: the next lane's centre within about 1 m
ADJACENT_MAX_M = 5.5  # [m]
AHEAD_M = 30.0  # [m] inclusive, at entry or at the start
BEHIND_M = 15.0  # [m] an overtaking car may start its move beside or behind the ego
ALIGN_RAD = 0.6  # [rad]
MAX_MANOEUVRE_S = 5.0  # [s] adjacent lane to ego lane
MIN_DWELL_S = 0.3  # [s]
MIN_LATERAL_MOVE_M = 1.0  # [m]
MAX_CURVATURE_PER_M = 0.02  # [1/m]
MAX_EGO_TURN_RAD = 0.2  # [rad] an ego lane change turns it ~0.1 rad; a junction turn pi/2
PAD_S = 0.5  # [s]


def _run_bounds(flag: np.ndarray, new_track: np.ndarray, last_of_track: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every row, the first and last row of the run of `flag` rows (within one track) it belongs to.

    Meaningful only where `flag` is True.
    """
    n = len(flag)
    index = np.arange(n)
    opens = flag & (new_track | ~np.r_[False, flag[:-1]])
    closes = flag & (last_of_track | ~np.r_[flag[1:], False])
    first = np.maximum.accumulate(np.where(opens, index, 0))
    last = np.minimum.accumulate(np.where(closes, index, n - 1)[::-1])[::-1]
    return first, last


def mine(log: AnyLog, arrays: LogArrays | None = None) -> list[Window]:
    """Windows where a vehicle cuts into the ego's lane ahead (see the module docstring)."""
    a = LogArrays.of(log) if arrays is None else arrays
    vehicle_rows = np.flatnonzero(a.classes == "vehicle")
    if len(vehicle_rows) < 2:
        return []
    order = np.lexsort((a.frame_index[vehicle_rows], a.track_ids[vehicle_rows]))
    rows = vehicle_rows[order]
    track, frame = a.track_ids[rows], a.frame_index[rows]
    stamps = a.timestamps_ns[frame]
    x, y, yaw = a.boxes[rows, 0], a.boxes[rows, 1], a.boxes[rows, 6]
    kappa = a.ego_curvature_per_m[frame]
    offset = y - 0.5 * np.clip(kappa, -MAX_CURVATURE_PER_M, MAX_CURVATURE_PER_M) * x * x
    aligned = np.abs(yaw) <= ALIGN_RAD  # box yaw is relative to the ego's heading
    adjacent = aligned & (np.abs(offset) >= ADJACENT_MIN_M) & (np.abs(offset) <= ADJACENT_MAX_M) & (x >= -BEHIND_M)
    in_lane = aligned & (np.abs(offset) <= EGO_LANE_M)

    n = len(rows)
    index = np.arange(n)
    new_track = np.r_[True, track[1:] != track[:-1]]
    last_of_track = np.r_[new_track[1:], True]
    track_first = np.maximum.accumulate(np.where(new_track, index, 0))
    track_last = np.minimum.accumulate(np.where(last_of_track, index, n - 1)[::-1])[::-1]
    # Only runs of adjacent rows lasting MIN_DWELL_S are a lane: a jittered box is not.
    adjacent_first, adjacent_last = _run_bounds(adjacent, new_track, last_of_track)
    adjacent &= (stamps[adjacent_last] - stamps[adjacent_first]) >= int(MIN_DWELL_S * 1e9)
    # Latest such row at or before each row, within the same track.
    latest_adjacent = np.maximum.accumulate(np.where(adjacent, index, -1))
    has_adjacent = latest_adjacent >= track_first
    latest_adjacent = np.where(has_adjacent, latest_adjacent, 0)
    _, lane_last = _run_bounds(in_lane, new_track, last_of_track)

    entry = in_lane & (new_track | ~np.r_[False, in_lane[:-1]]) & has_adjacent
    entry &= (x > 0.0) & ((x <= AHEAD_M) | (x[latest_adjacent] <= AHEAD_M)) & (np.abs(kappa) <= MAX_CURVATURE_PER_M)
    entry &= (stamps - stamps[latest_adjacent]) <= int(MAX_MANOEUVRE_S * 1e9)
    entry &= ((stamps[lane_last] - stamps) >= int(MIN_DWELL_S * 1e9)) | (lane_last == track_last)
    candidates = np.flatnonzero(entry)
    if len(candidates) == 0:
        return []
    start = latest_adjacent[candidates]
    # Who moved? Lateral displacements across the ego's heading at the start of the manoeuvre.
    f0, f1 = frame[start], frame[candidates]
    normal = np.column_stack([-np.sin(a.ego_yaw_rad[f0]), np.cos(a.ego_yaw_rad[f0])])
    vehicle_move = np.einsum("ij,ij->i", a.box_world_xy_m[rows[candidates]] - a.box_world_xy_m[rows[start]], normal)
    ego_move = np.einsum("ij,ij->i", a.ego_xy_m[f1] - a.ego_xy_m[f0], normal)
    towards = -np.sign(offset[start]) * vehicle_move  # positive when the vehicle moved towards the ego's lane
    real = (towards >= MIN_LATERAL_MOVE_M) & (np.abs(vehicle_move) > np.abs(ego_move))
    real &= np.abs(wrap_angle(a.ego_yaw_rad[f1] - a.ego_yaw_rad[f0])) <= MAX_EGO_TURN_RAD
    start, end = start[real], candidates[real]
    if len(start) == 0:
        return []
    # Frames covered by each manoeuvre, as a difference array over frames.
    delta = np.zeros(a.n_frames + 1, dtype=np.int64)
    np.add.at(delta, frame[start], 1)
    np.add.at(delta, frame[end] + 1, -1)
    mask = np.cumsum(delta[:-1]) > 0
    windows = mask_to_windows(a.timestamps_ns, mask, 0.0, 0.0, PAD_S)
    hit = np.zeros(len(a.classes), dtype=bool)
    hit[rows[start]] = hit[rows[end]] = True
    return attach_tracks(windows, a.box_timestamps_ns, a.track_ids, hit)

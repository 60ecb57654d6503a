"""Checks on how a box moves along its track, in the world frame: teleport, jitter, gap, heading.

Each compares a box with its track's previous and next observations (QATable.prev_row/next_row), so
one expression covers every box of the log.
"""

from __future__ import annotations

import numpy as np

from andon.scenarios.qa.config import HEADING_CLASSES, MAX_ACCEL_MPS2, MAX_SPEED_MPS, QAConfig, per_class
from andon.scenarios.qa.findings import CheckResult, from_rows
from andon.scenarios.qa.table import NO_ROW, QATable, world_yaw
from andon.scenarios.records import CLASSES, wrap_angle


def _step(table: QATable, other: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(has, dt_s, BEV distance [m]) from each box to another row of its track (`other`, -1 = none)."""
    has = other != NO_ROW
    safe = np.where(has, other, 0)
    dt_s = np.abs(table.timestamp_ns - table.timestamp_ns[safe]) / 1e9
    dist_m = np.hypot(*(table.world_xyz[:, :2] - table.world_xyz[safe, :2]).T)
    has &= dt_s > 0
    return has, np.where(has, dt_s, np.nan), np.where(has, dist_m, np.nan)


def teleport(table: QATable, config: QAConfig) -> CheckResult:
    """A track moves farther between consecutive observations than its class's top speed allows.

    The displacement must beat limit * dt by more than the jitter floor (label noise over 0.1 s would
    otherwise read as speed). A box jumped off its track makes two impossible steps, in and out; only
    the first step of each run is flagged, so the finding names the jumped box, not its successor.
    """
    has, dt_s, dist_m = _step(table, table.prev_row)
    limit_mps = per_class(MAX_SPEED_MPS)[table.class_code]
    with np.errstate(invalid="ignore"):
        bad_step = has & (dist_m > limit_mps * dt_s + config.jitter_floor_m)
    after_bad = bad_step[np.where(has, table.prev_row, 0)] & has
    flagged = bad_step & ~after_bad
    speed_mps = np.where(has, dist_m / np.where(has, dt_s, 1.0), 0.0)
    return from_rows("teleport", "implied speed from the track's previous box beyond the class's top speed "
                     f"({', '.join(f'{c} {MAX_SPEED_MPS[c]:g}' for c in CLASSES)} m/s)", "m/s",
                     table, flagged, speed_mps)


def jitter(table: QATable, config: QAConfig) -> CheckResult:
    """A box lies off the path between its track's neighbours by more than motion can explain.

    Between two observations at t0 and t1, a path whose acceleration stays below A deviates from the
    straight chord by at most A/2 (t - t0)(t1 - t); the rest of the offset is label error. The offset
    counts vertical error at half weight: planar poses ignore the ego's pitch, which moves far boxes
    up and down. The floor is the larger of `jitter_floor_m` (plus a little per metre of range) and
    `jitter_noise_k` times this log's median offset, so a noisily labelled source is judged against its
    own noise. A jumped box also pulls its neighbours' offsets (by half), so only a local maximum along
    the track counts.
    """
    prev, nxt = table.prev_row, table.next_row
    both = (prev != NO_ROW) & (nxt != NO_ROW)
    p, n = np.where(both, prev, 0), np.where(both, nxt, 0)
    t = table.timestamp_ns.astype(np.float64) / 1e9
    t0, t1 = t[p], t[n]
    span = np.where(both, t1 - t0, 1.0)
    frac = np.where(both & (span > 0), (t - t0) / np.where(span > 0, span, 1.0), 0.5)
    error = table.world_xyz - (table.world_xyz[p] + frac[:, None] * (table.world_xyz[n] - table.world_xyz[p]))
    offset_m = np.where(both, np.hypot(np.hypot(error[:, 0], error[:, 1]), 0.5 * error[:, 2]), 0.0)
    allowance_m = np.where(both, 0.5 * per_class(MAX_ACCEL_MPS2)[table.class_code] * (t - t0) * (t1 - t), 0.0)
    typical_m = float(np.median(offset_m[both])) if both.any() else 0.0
    floor_m = np.maximum(config.jitter_floor_m + config.jitter_range_slope * table.range_m,
                         config.jitter_noise_k * typical_m)
    over = both & (offset_m > floor_m + allowance_m)
    local_max = (offset_m >= offset_m[p]) & (offset_m >= offset_m[n])
    return from_rows("jitter", "box off the straight path between its track's neighbours by more than "
                     "bounded acceleration and label noise explain (value: offset [m])", "m", table,
                     over & local_max, offset_m)


def track_gap(table: QATable, config: QAConfig) -> CheckResult:
    """A track vanishes for a few frames well inside the labelled range and comes back: a missing box.

    "Well inside": both observations around the gap lie within `gap_range_m` of the ego, the larger of
    `near_range_m` (where any agent is plainly visible) and the log's own labelling horizon (its
    farthest box) less `gap_horizon_margin_m`. Range is convex: on the straight path between two
    observations inside the horizon the agent stayed inside it, so only tracks flickering right at the
    horizon are excused. At most `gap_max_frames` frames (longer absences are occlusions). One finding
    per absent frame, with no box row.
    """
    prev = table.prev_row
    has = prev != NO_ROW
    p = np.where(has, prev, 0)
    skipped = np.where(has, table.frame_index - table.frame_index[p] - 1, 0)
    reach_m = gap_range_m(table, config)
    near = (table.range_m < reach_m) & (table.range_m[p] < reach_m)
    gap_rows = np.flatnonzero(has & near & (skipped >= 1) & (skipped <= config.gap_max_frames))
    counts = skipped[gap_rows]
    owner = np.repeat(gap_rows, counts)  # the box that ends each gap, once per absent frame
    first_missing = table.frame_index[p[gap_rows]] + 1
    offsets = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    frames = np.repeat(first_missing, counts) + offsets
    order = np.argsort(frames, kind="stable")
    frames, owner = frames[order], owner[order]
    return CheckResult(
        name="track_gap",
        reason=f"track within {reach_m:.0f} m (well inside the labelled range) absent for at most "
               f"{config.gap_max_frames} frames between two of its boxes: the box is missing "
               "(value: frames absent)",
        unit="frames", frame_index=frames, timestamp_ns=table.frame_timestamps_ns[frames],
        track_ids=table.track_ids[owner], box_row=np.full(len(frames), NO_ROW, dtype=np.int64),
        value=skipped[owner].astype(np.float64))


def gap_range_m(table: QATable, config: QAConfig) -> float:
    """How far from the ego a vanishing track counts as a missing box (see track_gap) [m]."""
    if table.n_boxes == 0:
        return config.near_range_m
    return max(config.near_range_m, float(table.range_m.max()) - config.gap_horizon_margin_m)


def heading_velocity(table: QATable, config: QAConfig) -> CheckResult:
    """A moving vehicle or cyclist whose box points away from its motion (reversing slowly is fine).

    Motion is the log's velocity where known, else the track's central difference (neighbours only,
    so a jumped box does not tilt its own motion).
    """
    yaw = world_yaw(table)
    pose_yaw = table.frame_poses[table.frame_index, 3]
    vx, vy = table.velocities_mps.T
    cos, sin = np.cos(pose_yaw), np.sin(pose_yaw)
    velocity = np.column_stack([cos * vx - sin * vy, sin * vx + cos * vy])  # ego axes -> world axes
    prev, nxt = table.prev_row, table.next_row
    a = np.where(prev != NO_ROW, prev, np.arange(table.n_boxes))
    b = np.where(nxt != NO_ROW, nxt, np.arange(table.n_boxes))
    dt_s = (table.timestamp_ns[b] - table.timestamp_ns[a]) / 1e9
    with np.errstate(invalid="ignore", divide="ignore"):
        differenced = (table.world_xyz[b, :2] - table.world_xyz[a, :2]) / dt_s[:, None]
    known = np.all(np.isfinite(velocity), axis=1)
    velocity = np.where(known[:, None], velocity, differenced)
    speed_mps = np.hypot(velocity[:, 0], velocity[:, 1])
    angle = np.abs(np.asarray(wrap_angle(yaw - np.arctan2(velocity[:, 1], velocity[:, 0]))))
    applies = np.isin(table.class_code, [CLASSES.index(c) for c in HEADING_CLASSES])
    with np.errstate(invalid="ignore"):
        moving = applies & np.isfinite(speed_mps) & (speed_mps >= config.heading_min_speed_mps)
        reversing = (angle > np.pi - config.heading_max_rad) & (speed_mps < config.reverse_max_speed_mps)
        flagged = moving & (angle > config.heading_max_rad) & ~reversing
    return from_rows("heading_velocity", f"moving at >= {config.heading_min_speed_mps:g} m/s with the box's "
                     f"yaw more than {np.rad2deg(config.heading_max_rad):.0f} deg off the motion "
                     "(value: angle in deg)", "deg", table, flagged, np.rad2deg(np.nan_to_num(angle)))

"""Checks on a box's size, class and height: against its own track, its class and the ground."""

from __future__ import annotations

import numpy as np

from andon.scenarios.qa.config import SIZE_LIMITS_M, QAConfig
from andon.scenarios.qa.findings import CheckResult, from_rows
from andon.scenarios.qa.table import QATable, group_median
from andon.scenarios.records import CLASSES


def dimension_change(table: QATable, config: QAConfig) -> CheckResult:
    """A box's length, width or height differs from its track's median (a rigid object keeps its size).

    Needs `min_track_obs` observations so the median is the track's size, not the odd box's.
    """
    n_tracks = table.n_tracks
    dims = table.boxes[:, 3:6]
    median = np.column_stack([group_median(dims[:, k], table.track, n_tracks) for k in range(3)])[table.track]
    deviation_m = np.abs(dims - median)
    ratio = deviation_m / np.maximum(median, 1e-6)
    off = (ratio > config.dimension_rel_tol) & (deviation_m > config.dimension_abs_tol_m)
    observed = np.bincount(table.track, minlength=n_tracks)[table.track] >= config.min_track_obs
    flagged = observed & off.any(axis=1)
    return from_rows("dimension_change", f"length, width or height more than {config.dimension_rel_tol:.0%} "
                     f"and {config.dimension_abs_tol_m:g} m off the track's median (value: relative change)",
                     "ratio", table, flagged, ratio.max(axis=1) if len(ratio) else ratio[:, 0])


def class_flip(table: QATable, config: QAConfig) -> CheckResult:
    """A box whose class differs from its track's majority class (an agent does not change kind)."""
    n_tracks, n_classes = table.n_tracks, len(CLASSES)
    counts = np.bincount(table.track * n_classes + table.class_code,
                         minlength=n_tracks * n_classes).reshape(n_tracks, n_classes)
    majority = counts.argmax(axis=1)
    total = counts.sum(axis=1)
    share = counts.max(axis=1) / np.maximum(total, 1)
    flagged = (table.class_code != majority[table.track]) & (total[table.track] >= config.min_track_obs)
    return from_rows("class_flip", "class differs from the track's majority class (value: the majority's "
                     "share of the track)", "share", table, flagged, share[table.track])


def size_implausible(table: QATable, config: QAConfig) -> CheckResult:
    """Dimensions no object of the class has (a 4 m pedestrian, a 0.5 m car).

    Value: how far outside the class's range the worst dimension is, as a factor (> 1).
    """
    low = np.array([SIZE_LIMITS_M[c][0] for c in CLASSES])[table.class_code]
    high = np.array([SIZE_LIMITS_M[c][1] for c in CLASSES])[table.class_code]
    dims = table.boxes[:, 3:6]
    factor = np.maximum(low / dims, dims / high).max(axis=1) if len(dims) else np.zeros(0)
    limits = "; ".join(f"{c} {SIZE_LIMITS_M[c][0]}-{SIZE_LIMITS_M[c][1]}" for c in CLASSES)
    return from_rows("size_implausible", f"(l, w, h) outside the class's possible range [m] ({limits})",
                     "factor", table, factor > 1.0, factor)


def below_ground(table: QATable, config: QAConfig) -> CheckResult:
    """A box's bottom sunk well below the ground.

    The ground is the plane z = ground_z_m of the ego frame (the source's convention), which holds near
    the ego; farther away the road may slope, so the tolerance grows with range (`ground_slope`).
    """
    bottom_m = table.boxes[:, 2] - 0.5 * table.boxes[:, 5] - table.ground_z_m
    allowed_m = config.ground_tol_m + config.ground_slope * table.range_m
    return from_rows("below_ground", f"bottom more than {config.ground_tol_m:g} m + {config.ground_slope:.0%} "
                     "of the range below the ground plane (value: bottom above the ground [m])", "m",
                     table, bottom_m < -allowed_m, bottom_m)

"""Labels of a synthetic frame: the true boxes of the agents near the ego, then realistic label errors.

True labels are every agent's box (the ego excepted) whose centre lies within `label_range_m` (BEV) of
the ego, in the ego frame, with its velocity over the ground rotated into the ego frame. Then each
label is corrupted with probability `label_error_rate`, by one of simulation.ground_truth's
LABEL_ERROR_KINDS, drawn uniformly:

- missing: the box is dropped (and its velocity with it);
- jitter: its centre moves 0.5 - 2 m in a random BEV direction;
- class_swap: vehicle -> cyclist, cyclist -> pedestrian, pedestrian -> cyclist;
- size: length, width and height all scaled by 1.3 - 1.8 or by 0.5 - 0.75; the box still stands on
  the ground (z_centre = height / 2).

Each corruption is recorded as a LabelError (frame index, timestamp, track id, kind). The random
draws per label do not depend on the rate, so the same seed at another rate corrupts a superset or
subset of the same labels in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from andon.scenarios.records import wrap_angle
from andon.scenarios.transforms import world_to_ego_xy
from andon.simulation.ground_truth import LABEL_ERROR_KINDS, LabelError

JITTER_M = (0.5, 2.0)
SIZE_UP = (1.3, 1.8)
SIZE_DOWN = (0.5, 0.75)
CLASS_SWAP = {"vehicle": "cyclist", "cyclist": "pedestrian", "pedestrian": "cyclist", "static": "vehicle"}


@dataclass(frozen=True, slots=True, eq=False)
class FrameLabels:
    boxes: np.ndarray  # (n, 7) ego frame
    velocities_mps: np.ndarray  # (n, 2) ego axes, over the ground
    classes: list[str]
    track_ids: list[str]


def true_labels(boxes_world: np.ndarray, velocity_world_mps: np.ndarray, classes: np.ndarray, track_ids: np.ndarray,
                ego_pose: np.ndarray, range_m: float) -> FrameLabels:
    """Agents whose centre is within `range_m` (BEV) of the ego, moved into the ego frame."""
    ego_xy, ego_yaw = ego_pose[:2], float(ego_pose[3])
    xy = world_to_ego_xy(boxes_world[:, :2], ego_xy, ego_yaw)
    keep = np.hypot(xy[:, 0], xy[:, 1]) <= range_m
    boxes = np.column_stack([xy, boxes_world[:, 2] - ego_pose[2], boxes_world[:, 3:6],
                             wrap_angle(boxes_world[:, 6] - ego_yaw)])[keep]
    c, s = np.cos(ego_yaw), np.sin(ego_yaw)
    v = velocity_world_mps[keep]
    velocities = np.column_stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1]])
    return FrameLabels(boxes, velocities, classes[keep].tolist(), track_ids[keep].tolist())


def corrupt(labels: FrameLabels, rate: float, frame_index: int, timestamp_ns: int, rng: np.random.Generator
            ) -> tuple[FrameLabels, list[LabelError]]:
    """Labels with errors at `rate`, and the record of each error (see the module docstring)."""
    n = len(labels.classes)
    # Every draw is made for every label whatever the rate, so the rate changes only which apply.
    hit = rng.random(n) < rate
    kind = rng.integers(len(LABEL_ERROR_KINDS), size=n)
    angle = rng.uniform(-np.pi, np.pi, n)
    shift = rng.uniform(*JITTER_M, n)
    grow = rng.random(n) < 0.5
    scale = np.where(grow, rng.uniform(*SIZE_UP, n), rng.uniform(*SIZE_DOWN, n))
    kinds = np.asarray(LABEL_ERROR_KINDS)[kind]
    boxes = labels.boxes.copy()
    jitter = hit & (kinds == "jitter")
    boxes[jitter, 0] += shift[jitter] * np.cos(angle[jitter])
    boxes[jitter, 1] += shift[jitter] * np.sin(angle[jitter])
    size = hit & (kinds == "size")
    boxes[size, 3:6] *= scale[size, None]
    boxes[size, 2] = 0.5 * boxes[size, 5]
    swap = hit & (kinds == "class_swap")
    true_classes = np.asarray(labels.classes, dtype=object)
    classes = true_classes.copy()
    for source, target in CLASS_SWAP.items():  # a loop over classes, not over labels
        classes[swap & (true_classes == source)] = target
    keep = ~(hit & (kinds == "missing"))
    track_ids = np.asarray(labels.track_ids, dtype=object)
    errors = [LabelError(frame_index, int(timestamp_ns), str(track_ids[i]), str(kinds[i])) for i in np.flatnonzero(hit)]
    corrupted = FrameLabels(boxes[keep], labels.velocities_mps[keep], classes[keep].tolist(), track_ids[keep].tolist())
    return corrupted, errors

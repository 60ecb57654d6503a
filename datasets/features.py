"""The feature transform: one function per task, the same code at training, evaluation and simulation.

Train/serve parity rests on this module. A dataset version records `transform_record(task, sampling)`
(the SHA-256 of this module's source and the parameters it uses), a model inherits it from the
version it was trained on, and whoever feeds the model later calls `check_parity` first: any edit to
this file, even a comment, is a new transform, and a model is never fed features it was not trained on.

Detection (PointPillars, Lang et al. 2019). Points (M, 4) x, y, z [m], intensity, in the ego frame:
- Points outside `point_cloud_range_m` [x0, y0, z0, x1, y1, z1] (half-open, [lo, hi)) are dropped.
- A pillar is a BEV cell of `voxel_size_m` [vx, vy] spanning the whole z range, at integer coords
  (iy, ix) = floor((y - y0) / vy), floor((x - x0) / vx); the grid is (ny, nx) (`bev_grid_shape`).
  `voxel_size_m[2]` is recorded but unused: pillars are one cell tall.
- A pillar keeps its first `max_points_per_pillar` points in the sweep's order. When more than
  `max_pillars` pillars are occupied, the densest are kept (ties: lower row-major key iy * nx + ix),
  so the choice depends only on the sweep, never on a random draw. Pillars come out in key order.
- Each kept point has the features `POINT_FEATURES`: x, y, z, intensity in [0, 1], its offset to the
  mean of its pillar's kept points, and its offset to the pillar's centre (cell centre in x, y; the
  middle of the z range in z). Padding slots are zero.
- Intensity rule: divided by the top of the source's scale and clipped to [0, 1]. The scale is the
  last number of the importer's `log.meta["intensity"]` note ("0-255" -> 255, "reflectance [0, 1]"
  -> 1), else `INTENSITY_MAX_BY_SOURCE` (KITTI reflectance is 0-1; AV2 and nuScenes are 0-255),
  else per sweep: a sweep (before cropping) whose intensities all lie in [0, 1] is taken as 0-1,
  otherwise as 0-255.
  `intensity_max_for(source, meta)` applies the first two; callers pass its answer on.
Targets: boxes (N, 7) whose BEV centre lies in the range and whose class is one of
`DETECTION_CLASSES` (label = its index); the heatmap encoding belongs to the model.

Prediction. Positions are world-frame (x, y) [m] at `step_s` steps; the last of `history_steps`
history steps is t0, then `horizon_steps` future steps. Everything is moved into the agent frame at
t0: origin at the agent's t0 position, +x along its heading (its box yaw at t0; when no heading is
given, the direction of its last history displacement, or 0 rad for an agent that has not moved).
Missing steps are NaN in the inputs and masked (and zero) in the outputs. A history step is
(x, y, dx, dy): position and displacement from the previous step (zero where either is missing).
Neighbours take the same layout, sorted by distance from the agent at t0 (a neighbour absent at t0
counts from its last observed position; ties keep input order), capped and padded to
`max_agents_per_frame` slots (`NEIGHBOUR_SLOTS` when it is None: a frame then has no agent cap,
but a batch needs a fixed width). `origin` (x, y, heading) maps outputs back with `agent_to_world`.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.ids import canonical_json, sha256_text

TASKS: tuple[str, ...] = ("detection", "prediction")
DETECTION_CLASSES: tuple[str, ...] = ("vehicle", "pedestrian", "cyclist")
POINT_FEATURES: tuple[str, ...] = ("x_m", "y_m", "z_m", "intensity", "dx_mean_m", "dy_mean_m", "dz_mean_m",
                                   "dx_centre_m", "dy_centre_m", "dz_centre_m")
AGENT_STEP_FEATURES: tuple[str, ...] = ("x_m", "y_m", "dx_m", "dy_m")
MAX_POINTS_PER_PILLAR = 32  # PointPillars' KITTI setting; `sampling["max_points_per_pillar"]` overrides
MAX_PILLARS = 12_000  # PointPillars' KITTI setting; `sampling["max_pillars"]` overrides
INTENSITY_MAX_BY_SOURCE: dict[str, float] = {"kitti": 1.0, "av2": 255.0, "nuscenes": 255.0}
# Neighbour slots when sampling.max_agents_per_frame is None ("all agents"): batches need a fixed size.
NEIGHBOUR_SLOTS = 32
# Below this last displacement [m] an agent without a given heading counts as standing still.
STATIONARY_DISPLACEMENT_M = 0.05
# A pillar count per frame beyond this is a configuration error, not a workload (int64 keys are safe).
_MAX_GRID_CELLS = 1 << 31


# ----- records and parity -------------------------------------------------------------------------
@cache
def module_code_hash() -> str:
    """SHA-256 of this module's source: the code is the transform's version."""
    return sha256_text(inspect.getsource(sys.modules[__name__]))


def transform_params(task: str, sampling: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling parameters the task's transform uses, normalised to plain JSON values."""
    if task == "detection":
        grid = pillar_grid(sampling)
        return {"point_cloud_range_m": list(grid.range_m), "voxel_size_m": list(grid.voxel_m),
                "max_points_per_pillar": grid.max_points_per_pillar, "max_pillars": grid.max_pillars}
    if task == "prediction":
        steps = agent_steps(sampling)
        capped = sampling.get("max_agents_per_frame") is not None
        return {"step_s": steps.step_s, "history_steps": steps.history_steps, "horizon_steps": steps.horizon_steps,
                "max_agents_per_frame": steps.max_agents if capped else None}
    raise BadInput(f"unknown task {task!r}: choose one of {', '.join(TASKS)}")


def transform_record(task: str, sampling: dict) -> dict:
    """What a dataset version (and every model trained on it) records about its feature transform.

    Returns:
        {"name": "<task>_features", "code_hash": SHA-256 of this module's source, "params": the
        sampling parameters the transform uses}.
    """
    return {"name": f"{task}_features", "code_hash": module_code_hash(), "params": transform_params(task, sampling)}


def check_parity(recorded: dict, task: str, sampling: dict) -> None:
    """Refuse to feed a model (or read a dataset) whose recorded transform is not the one in use.

    Raises:
        BadInput: naming the recorded and current code hashes (and parameters when those differ) and
            what to do: rebuild the dataset version with this code, or retrain the model.
    """
    current = transform_record(task, sampling)
    if not isinstance(recorded, Mapping) or not {"name", "code_hash", "params"} <= set(recorded):
        raise BadInput(f"no usable feature-transform record ({recorded!r}); expected the keys name, code_hash "
                       f"and params (current code hash {current['code_hash']}): rebuild the dataset version "
                       f"with `andon dataset build`, then retrain the model on it")
    if recorded["name"] != current["name"]:
        raise BadInput(f"the recorded transform is {recorded['name']!r} but this is a {task} pipeline using "
                       f"{current['name']!r}: use a {task} dataset version and a {task} model")
    same_code = recorded["code_hash"] == current["code_hash"]
    same_params = canonical_json(recorded["params"]) == canonical_json(current["params"])
    if same_code and same_params:
        return
    what = []
    if not same_code:
        what.append(f"code {recorded['code_hash']} was recorded but the code in use is {current['code_hash']}")
    if not same_params:
        what.append(f"params {canonical_json(recorded['params'])} were recorded but the sampling in use gives "
                    f"{canonical_json(current['params'])}")
    raise BadInput(f"{current['name']} train/serve parity broken: {'; '.join(what)}. Rebuild the dataset "
                   f"version with the current code (`andon dataset build`) and retrain the model on it, or run "
                   f"the code revision whose hash was recorded")


# ----- detection ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PillarGrid:
    """The BEV pillar grid a detection sampling spec describes."""

    range_m: tuple[float, float, float, float, float, float]  # x0, y0, z0, x1, y1, z1 [m]
    voxel_m: tuple[float, float, float]  # vx, vy, vz [m]
    nx: int
    ny: int
    max_points_per_pillar: int
    max_pillars: int


def pillar_grid(sampling: Mapping[str, Any]) -> PillarGrid:
    """Validate a detection sampling spec into its pillar grid.

    Raises:
        BadInput: a missing key, a bad range or pillar size, or a range that is not a whole number of
            pillars wide.
    """
    range_m = _floats(sampling, "point_cloud_range_m", 6)
    voxel_m = _floats(sampling, "voxel_size_m", 3)
    lo, hi = np.array(range_m[:3]), np.array(range_m[3:])
    if np.any(hi <= lo):
        raise BadInput(f"sampling.point_cloud_range_m {list(range_m)} must be [x0, y0, z0, x1, y1, z1] with "
                       f"each upper bound above its lower bound")
    if any(v <= 0 for v in voxel_m):
        raise BadInput(f"sampling.voxel_size_m {list(voxel_m)} must be three positive sizes [m]")
    cells = (hi[:2] - lo[:2]) / np.array(voxel_m[:2])
    whole = np.round(cells)
    if np.any(np.abs(cells - whole) > 1e-3 * np.maximum(whole, 1.0)):
        raise BadInput(f"sampling.point_cloud_range_m {list(range_m)} is not a whole number of pillars of "
                       f"{list(voxel_m[:2])} m: choose a range whose x and y extents are multiples of the pillar size")
    nx, ny = int(whole[0]), int(whole[1])
    if nx * ny > _MAX_GRID_CELLS:
        raise BadInput(f"a {ny} x {nx} pillar grid is too large: use larger sampling.voxel_size_m")
    max_points = _positive_int(sampling, "max_points_per_pillar", MAX_POINTS_PER_PILLAR)
    max_pillars = _positive_int(sampling, "max_pillars", MAX_PILLARS)
    return PillarGrid(range_m=range_m, voxel_m=voxel_m, nx=nx, ny=ny, max_points_per_pillar=max_points,
                      max_pillars=max_pillars)


def bev_grid_shape(sampling: Mapping[str, Any]) -> tuple[int, int]:
    """(ny, nx): the BEV canvas a model scatters pillars onto; pillar_coords index it as (iy, ix)."""
    grid = pillar_grid(sampling)
    return grid.ny, grid.nx


def intensity_max_for(source: str, meta: Mapping[str, Any] | None = None) -> float | None:
    """Top of a log's intensity scale: from the importer's meta note, else the source's convention.

    Returns None when neither says; `detection_features` then decides per sweep (module docstring).
    """
    note = str((meta or {}).get("intensity", ""))
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", note)]
    if numbers and numbers[-1] > 0:
        return numbers[-1]
    return INTENSITY_MAX_BY_SOURCE.get(source)


def detection_features(points: np.ndarray, sampling: Mapping[str, Any],
                       intensity_max: float | None = None) -> dict[str, np.ndarray]:
    """Pillarise one lidar sweep (PointPillars; the rules are in the module docstring).

    Args:
        points: (M, 4) x, y, z [m], intensity in the ego frame.
        sampling: the dataset spec's sampling (point_cloud_range_m, voxel_size_m; optional caps
            max_points_per_pillar, max_pillars).
        intensity_max: top of the sweep's intensity scale (`intensity_max_for`); None decides per sweep.

    Returns:
        pillars: (P, T, D) float32, D = len(POINT_FEATURES), T = max_points_per_pillar, zero padded;
        pillar_num_points: (P,) int32 points kept per pillar (1..T);
        pillar_coords: (P, 2) int32 (iy, ix), in increasing row-major order.

    Raises:
        BadInput: points are not (M, 4), or the sampling spec is bad.
    """
    grid = pillar_grid(sampling)
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 4:
        raise BadInput(f"points must have shape (M, 4) (x, y, z, intensity), got {pts.shape}")
    pts = pts.astype(np.float32, copy=False)
    scale = _intensity_scale(pts[:, 3], intensity_max)
    lo = np.array(grid.range_m[:3], dtype=np.float32)
    hi = np.array(grid.range_m[3:], dtype=np.float32)
    # NaN compares False, so non-finite points fall out with the out-of-range ones.
    pts = pts[np.all((pts[:, :3] >= lo) & (pts[:, :3] < hi), axis=1)]
    width = len(POINT_FEATURES)
    if len(pts) == 0:
        return {"pillars": np.zeros((0, grid.max_points_per_pillar, width), np.float32),
                "pillar_num_points": np.zeros(0, np.int32), "pillar_coords": np.zeros((0, 2), np.int32)}

    voxel_xy = np.array(grid.voxel_m[:2], dtype=np.float64)
    cell = np.floor((pts[:, :2] - lo[:2]) / voxel_xy).astype(np.int64)
    np.minimum(cell, [grid.nx - 1, grid.ny - 1], out=cell)  # float rounding just below x1 / y1
    key = cell[:, 1] * grid.nx + cell[:, 0]

    # Group points by pillar; a stable sort keeps each pillar's points in sweep order.
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    starts = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
    counts = np.diff(np.r_[starts, len(key_sorted)])
    pillar_keys = key_sorted[starts]
    pillar_of_sorted = np.repeat(np.arange(len(starts)), counts)
    rank = np.arange(len(key_sorted)) - starts[pillar_of_sorted]

    keep_pillar = np.ones(len(starts), dtype=bool)
    if len(starts) > grid.max_pillars:
        densest = np.lexsort((pillar_keys, -counts))[:grid.max_pillars]
        keep_pillar[:] = False
        keep_pillar[densest] = True
    new_index = np.cumsum(keep_pillar) - 1
    kept = keep_pillar[pillar_of_sorted] & (rank < grid.max_points_per_pillar)
    pid = new_index[pillar_of_sorted[kept]]
    slot = rank[kept]
    chosen = pts[order[kept]]
    keys = pillar_keys[keep_pillar]
    n_pillars = len(keys)
    num_points = np.minimum(counts[keep_pillar], grid.max_points_per_pillar)

    xyz = chosen[:, :3].astype(np.float64)
    mean = np.stack([np.bincount(pid, weights=xyz[:, d], minlength=n_pillars) for d in range(3)], axis=1)
    mean /= num_points[:, None]
    coords = np.stack([keys // grid.nx, keys % grid.nx], axis=1)
    centre_xy = (coords[:, ::-1] + 0.5) * voxel_xy + lo[:2]
    centre_z = 0.5 * (grid.range_m[2] + grid.range_m[5])

    features = np.empty((len(chosen), width), dtype=np.float32)
    features[:, :3] = chosen[:, :3]
    features[:, 3] = np.clip(chosen[:, 3] / scale, 0.0, 1.0)
    features[:, 4:7] = xyz - mean[pid]
    features[:, 7:9] = xyz[:, :2] - centre_xy[pid]
    features[:, 9] = xyz[:, 2] - centre_z
    pillars = np.zeros((n_pillars, grid.max_points_per_pillar, width), dtype=np.float32)
    pillars[pid, slot] = features
    return {"pillars": pillars, "pillar_num_points": num_points.astype(np.int32),
            "pillar_coords": coords.astype(np.int32)}


def _intensity_scale(intensity: np.ndarray, intensity_max: float | None) -> np.float32:
    """Top of the sweep's intensity scale; decided on the whole sweep so its points share one scale."""
    if intensity_max is None:
        return np.float32(1.0 if float(np.nanmax(intensity, initial=0.0)) <= 1.0 else 255.0)
    if not intensity_max > 0:
        raise BadInput(f"intensity_max must be a positive scale top (1 or 255), got {intensity_max!r}")
    return np.float32(intensity_max)


def detection_targets(boxes: np.ndarray, classes: Sequence[str], sampling: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Boxes a detector learns: BEV centre inside the range, class one of DETECTION_CLASSES.

    Args:
        boxes: (N, 7) x, y, z_centre, l, w, h, yaw [m, rad] in the ego frame.
        classes: N andon class names.
        sampling: the dataset spec's sampling (point_cloud_range_m).

    Returns:
        boxes: (K, 7) float32; labels: (K,) int64 indices into DETECTION_CLASSES.

    Raises:
        BadInput: boxes are not (N, 7) or the class list has another length.
    """
    grid = pillar_grid(sampling)
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        array = array.reshape(0, 7)
    if array.ndim != 2 or array.shape[1] != 7:
        raise BadInput(f"boxes must have shape (N, 7) (x, y, z_centre, l, w, h, yaw), got {array.shape}")
    names = np.asarray(list(classes), dtype=np.str_)
    if len(names) != len(array):
        raise BadInput(f"{len(array)} boxes but {len(names)} class names: give one class per box")
    labels = np.full(len(array), -1, dtype=np.int64)
    for index, name in enumerate(DETECTION_CLASSES):
        labels[names == name] = index
    x0, y0, _, x1, y1, _ = grid.range_m
    inside = (array[:, 0] >= x0) & (array[:, 0] < x1) & (array[:, 1] >= y0) & (array[:, 1] < y1)
    keep = inside & (labels >= 0)
    return {"boxes": array[keep].astype(np.float32), "labels": labels[keep]}


# ----- prediction ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AgentSteps:
    """The time grid and capacity a prediction sampling spec describes."""

    step_s: float
    history_steps: int  # including t0
    horizon_steps: int
    max_agents: int  # neighbour slots per agent

    @property
    def offsets(self) -> np.ndarray:
        """(H + F,) step offsets from t0: -(H-1) .. 0 .. F."""
        return np.arange(-(self.history_steps - 1), self.horizon_steps + 1, dtype=np.int64)


def agent_steps(sampling: Mapping[str, Any]) -> AgentSteps:
    """Validate a prediction sampling spec.

    Raises:
        BadInput: a missing key, a non-positive step or a step count below 1.
    """
    if "step_s" not in sampling:
        raise BadInput("sampling.step_s is missing: give the prediction step in seconds (e.g. 0.4 for ETH/UCY)")
    step_s = sampling["step_s"]
    if isinstance(step_s, bool) or not isinstance(step_s, int | float) or not step_s > 0:
        raise BadInput(f"sampling.step_s must be a positive number of seconds, got {step_s!r}")
    return AgentSteps(step_s=float(step_s), history_steps=_positive_int(sampling, "history_steps"),
                      horizon_steps=_positive_int(sampling, "horizon_steps"),
                      max_agents=_positive_int(sampling, "max_agents_per_frame", NEIGHBOUR_SLOTS))


def prediction_features(history_xy: np.ndarray, heading_rad: float | None, neighbours_xy: np.ndarray,
                        neighbours_mask: np.ndarray, sampling: Mapping[str, Any],
                        future_xy: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One agent's features in its frame at t0; `prediction_features_batch` with a batch of one.

    Args:
        history_xy: (H, 2) world positions [m], t0 last, NaN where unobserved; t0 must be observed.
        heading_rad: the agent's world heading at t0, or None to use its last displacement.
        neighbours_xy: (K, H, 2) other agents' world positions [m] at the history steps.
        neighbours_mask: (K, H) bool, True where a neighbour position is observed.
        sampling: the dataset spec's sampling (step_s, history_steps, horizon_steps, max_agents_per_frame).
        future_xy: (F, 2) world positions [m] after t0 (training and evaluation), or None (serving).

    Returns:
        The batch arrays of `prediction_features_batch` without their leading batch axis.
    """
    heading = np.array([np.nan if heading_rad is None else heading_rad], dtype=np.float64)
    future = None if future_xy is None else np.asarray(future_xy, dtype=np.float64)[None]
    batch = prediction_features_batch(np.asarray(history_xy, dtype=np.float64)[None], heading,
                                      np.asarray(neighbours_xy, dtype=np.float64)[None],
                                      np.asarray(neighbours_mask, dtype=bool)[None], sampling, future)
    return {name: value[0] for name, value in batch.items()}


def prediction_features_batch(history_xy: np.ndarray, heading_rad: np.ndarray, neighbours_xy: np.ndarray,
                              neighbours_mask: np.ndarray, sampling: Mapping[str, Any],
                              future_xy: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """B agents' features in their own frames at t0 (rules in the module docstring).

    Args:
        history_xy: (B, H, 2) world positions [m], t0 last, NaN where unobserved.
        heading_rad: (B,) world headings at t0 [rad]; NaN uses the last history displacement.
        neighbours_xy: (B, K, H, 2) world positions [m] of up to K other agents per agent.
        neighbours_mask: (B, K, H) bool, True where observed (NaN positions count as unobserved).
        sampling: the dataset spec's sampling.
        future_xy: (B, F, 2) world positions [m] after t0, or None.

    Returns:
        history: (B, H, 4) float32 AGENT_STEP_FEATURES; history_mask: (B, H) bool;
        neighbours: (B, A, H, 4) float32, A = max_agents_per_frame, nearest first;
        neighbours_mask: (B, A, H) bool; origin: (B, 3) float64 world (x, y, heading) of each frame;
        and with a future: future: (B, F, 2) float32 positions; future_mask: (B, F) bool.

    Raises:
        BadInput: a shape disagrees with the sampling spec, or an agent is unobserved at t0.
    """
    steps = agent_steps(sampling)
    n_hist, n_future = steps.history_steps, steps.horizon_steps
    history = np.asarray(history_xy, dtype=np.float64)
    if history.ndim != 3 or history.shape[1:] != (n_hist, 2):
        raise BadInput(f"history_xy must have shape (B, {n_hist}, 2) (sampling.history_steps={n_hist}), "
                       f"got {history.shape}")
    batch = len(history)
    neighbours = np.asarray(neighbours_xy, dtype=np.float64)
    if neighbours.size == 0:
        neighbours = neighbours.reshape(batch, 0, n_hist, 2)
    if neighbours.shape[:1] + neighbours.shape[2:] != (batch, n_hist, 2) or neighbours.ndim != 4:
        raise BadInput(f"neighbours_xy must have shape (B, K, {n_hist}, 2), got {neighbours.shape}")
    given_mask = np.asarray(neighbours_mask, dtype=bool)
    if given_mask.shape != neighbours.shape[:3]:
        raise BadInput(f"neighbours_mask must have shape {neighbours.shape[:3]}, got {given_mask.shape}")
    heading = np.broadcast_to(np.asarray(heading_rad, dtype=np.float64), (batch,))

    history_mask = np.all(np.isfinite(history), axis=-1)
    if not history_mask[:, -1].all():
        bad = int(np.flatnonzero(~history_mask[:, -1])[0])
        raise BadInput(f"agent {bad} of the batch is not observed at t0 (the last history step): "
                       f"samples must be taken where their agent is present")
    origin_xy = history[:, -1]
    heading = np.where(np.isfinite(heading), heading, _heading_from_motion(history, history_mask))

    out: dict[str, np.ndarray] = {}
    out["history"], out["history_mask"] = _agent_tracks(history, history_mask, origin_xy, heading)
    neighbour_mask = given_mask & np.all(np.isfinite(neighbours), axis=-1)
    nearest, nearest_mask = _nearest(neighbours, neighbour_mask, origin_xy, steps.max_agents)
    out["neighbours"], out["neighbours_mask"] = _agent_tracks(nearest, nearest_mask, origin_xy, heading)
    out["origin"] = np.column_stack([origin_xy, heading])
    if future_xy is not None:
        future = np.asarray(future_xy, dtype=np.float64)
        if future.shape != (batch, n_future, 2):
            raise BadInput(f"future_xy must have shape ({batch}, {n_future}, 2) "
                           f"(sampling.horizon_steps={n_future}), got {future.shape}")
        future_mask = np.all(np.isfinite(future), axis=-1)
        positions = _to_agent(future, origin_xy, heading)
        out["future"] = np.where(future_mask[..., None], positions, 0.0).astype(np.float32)
        out["future_mask"] = future_mask
    return out


def agent_to_world(xy_agent: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Move agent-frame positions (..., 2) back to the world frame of `origin` (x, y, heading)."""
    xy = np.asarray(xy_agent, dtype=np.float64)
    origin = np.asarray(origin, dtype=np.float64)
    c, s = np.cos(origin[..., 2]), np.sin(origin[..., 2])
    extra = (None,) * (xy.ndim - origin.ndim)  # broadcast one origin over steps (and modes)
    c, s = c[(..., *extra)], s[(..., *extra)]
    x, y = xy[..., 0], xy[..., 1]
    ox, oy = origin[..., 0][(..., *extra)], origin[..., 1][(..., *extra)]
    return np.stack([c * x - s * y + ox, s * x + c * y + oy], axis=-1)


def _heading_from_motion(history: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Direction of each agent's last displacement into t0; 0 rad where it has not moved."""
    steps = history.shape[1]
    if steps < 2:
        return np.zeros(len(history))
    earlier = mask[:, :-1]
    has_previous = earlier.any(axis=1)
    last = steps - 2 - np.argmax(earlier[:, ::-1], axis=1)  # latest observed step before t0
    previous = history[np.arange(len(history)), last]
    delta = np.where(has_previous[:, None], history[:, -1] - previous, 0.0)
    moved = np.hypot(delta[:, 0], delta[:, 1]) >= STATIONARY_DISPLACEMENT_M
    return np.where(moved, np.arctan2(delta[:, 1], delta[:, 0]), 0.0)


def _to_agent(xy: np.ndarray, origin_xy: np.ndarray, heading: np.ndarray) -> np.ndarray:
    """World (B, ..., 2) positions into each batch item's agent frame: shift to its origin, rotate by -heading."""
    shape = (len(xy),) + (1,) * (xy.ndim - 2)
    c, s = np.cos(heading).reshape(shape), np.sin(heading).reshape(shape)
    dx = xy[..., 0] - origin_xy[:, 0].reshape(shape)
    dy = xy[..., 1] - origin_xy[:, 1].reshape(shape)
    return np.stack([c * dx + s * dy, c * dy - s * dx], axis=-1)


def _agent_tracks(xy: np.ndarray, mask: np.ndarray, origin_xy: np.ndarray,
                  heading: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, ..., T, 2) world tracks -> (B, ..., T, 4) agent-frame (x, y, dx, dy), zero where masked."""
    out = np.zeros((*xy.shape[:-1], 4), dtype=np.float32)
    # Unobserved steps are NaN here; the mask zeroes them (NaN arithmetic is silent).
    local = np.where(mask[..., None], _to_agent(xy, origin_xy, heading), 0.0)
    out[..., :2] = local
    both = mask[..., 1:] & mask[..., :-1]
    out[..., 1:, 2:] = np.where(both[..., None], local[..., 1:, :] - local[..., :-1, :], 0.0)
    return out, mask


def _nearest(xy: np.ndarray, mask: np.ndarray, origin_xy: np.ndarray, slots: int) -> tuple[np.ndarray, np.ndarray]:
    """Each agent's `slots` nearest neighbours (B, slots, H, 2) and masks, NaN and False where padded.

    Distance is taken at a neighbour's last observed step (rotation keeps it, so it is measured in
    the world frame before the nearest are moved into the agent frame); ties keep input order.
    """
    batch, count, steps = mask.shape
    last = steps - 1 - np.argmax(mask[..., ::-1], axis=-1)
    at_last = np.take_along_axis(xy, last[..., None, None], axis=2)[:, :, 0]
    gap = at_last - origin_xy[:, None]
    distance = np.where(mask.any(axis=-1), np.hypot(gap[..., 0], gap[..., 1]), np.inf)
    order = np.argsort(distance, axis=1, kind="stable")[:, :slots]
    rows = np.arange(batch)[:, None]
    out = np.full((batch, slots, steps, 2), np.nan)
    out_mask = np.zeros((batch, slots, steps), dtype=bool)
    out[:, :order.shape[1]] = xy[rows, order]
    out_mask[:, :order.shape[1]] = mask[rows, order]
    return out, out_mask


# ----- sampling helpers ---------------------------------------------------------------------------
def _floats(sampling: Mapping[str, Any], key: str, size: int) -> tuple[float, ...]:
    if key not in sampling:
        raise BadInput(f"sampling.{key} is missing: give {size} numbers [m]")
    try:
        values = np.asarray(sampling[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"sampling.{key} must be {size} numbers [m], got {sampling[key]!r}") from exc
    if values.shape != (size,) or not np.all(np.isfinite(values)):
        raise BadInput(f"sampling.{key} must be {size} finite numbers [m], got {sampling[key]!r}")
    return tuple(float(v) for v in values)


def _positive_int(sampling: Mapping[str, Any], key: str, default: int | None = None) -> int:
    if key not in sampling or sampling[key] is None:
        if default is None:
            raise BadInput(f"sampling.{key} is missing: give a positive whole number")
        return default
    value = sampling[key]
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise BadInput(f"sampling.{key} must be a positive whole number, got {value!r}")
    return int(value)

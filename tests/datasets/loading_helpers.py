"""Helpers for the loader tests and benchmarks: logs with long tracks, big sweeps, real versions.

Versions are built by the real pipeline (`andon.datasets.build.build_dataset`) in a real workspace;
`build_version` picks a split salt that gives every split at least one log, since logs split whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from andon.datasets.build import build_dataset
from andon.datasets.spec import DatasetSpec, QuerySpec, SamplingSpec, SplitSpec
from andon.datasets.split import split_of
from andon.datasets.versions import DatasetVersion, load_version
from andon.scenarios.catalog import Catalog
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame, Provenance, wrap_angle
from andon.scenarios.transforms import world_to_ego_xy
from andon.workspace import Workspace, run_tool

IMPORT = Provenance(kind="import", name="test", version="1")
DETECTION_SAMPLING: dict[str, Any] = {"stride": 1, "point_cloud_range_m": [-25.6, -25.6, -3.0, 25.6, 25.6, 3.0],
                                      "voxel_size_m": [0.8, 0.8, 6.0]}
PREDICTION_SAMPLING: dict[str, Any] = {"stride": 1, "step_s": 0.2, "history_steps": 4, "horizon_steps": 6,
                                       "max_agents_per_frame": 5}
FRAME_PERIOD_NS = 100_000_000


def walker_log(name: str = "walkers", n_frames: int = 40, n_walkers: int = 6, seed: int = 0,
               with_points: bool = False) -> tuple[ImportedLog, dict[str, np.ndarray]]:
    """A 10 Hz log of straight-line walkers and two cars seen from a turning, moving ego.

    Returns the log and each track's world positions (n_frames, 2), NaN where it is absent: walker
    k appears at frame 3 * k, so early frames miss some tracks and masks get exercised.
    """
    rng = np.random.default_rng(seed)
    t_s = np.arange(n_frames) * 0.1
    ego_yaw = 0.3 + 0.02 * np.arange(n_frames)
    ego_xy = np.column_stack([5.0 * t_s * np.cos(ego_yaw), 5.0 * t_s * np.sin(ego_yaw)])
    truth: dict[str, np.ndarray] = {}
    heading: dict[str, float] = {}
    sizes: dict[str, tuple[float, float, float]] = {}
    classes: dict[str, str] = {}
    for k in range(n_walkers + 2):
        walker = k < n_walkers
        track = f"ped{k}" if walker else f"car{k - n_walkers}"
        start = rng.uniform(-12, 12, 2)
        yaw = rng.uniform(-np.pi, np.pi)
        speed = rng.uniform(0.8, 1.6) if walker else rng.uniform(4.0, 8.0)
        xy = start + speed * t_s[:, None] * np.array([np.cos(yaw), np.sin(yaw)])
        xy[: 3 * k if walker else 0] = np.nan
        truth[track], heading[track], classes[track] = xy, yaw, "pedestrian" if walker else "vehicle"
        sizes[track] = (0.5, 0.5, 1.7) if walker else (4.5, 1.9, 1.6)
    frames = []
    for i in range(n_frames):
        present = [t for t in truth if np.isfinite(truth[t][i, 0])]
        world = np.array([truth[t][i] for t in present]).reshape(-1, 2)
        local = world_to_ego_xy(world, ego_xy[i], ego_yaw[i])
        boxes = np.array([[x, y, sizes[t][2] / 2, *sizes[t], wrap_angle(heading[t] - ego_yaw[i])]
                          for (x, y), t in zip(local, present, strict=True)]).reshape(-1, 7)
        points = rng.normal(0, 8, size=(300, 4)).astype(np.float32) if with_points else None
        frames.append(Frame(timestamp_ns=2_000_000_000 + i * FRAME_PERIOD_NS,
                            ego_pose=(float(ego_xy[i, 0]), float(ego_xy[i, 1]), 0.0, float(ego_yaw[i])),
                            boxes=boxes, classes=[classes[t] for t in present], track_ids=present, points=points))
    return ImportedLog(source="test", name=name, frames=frames), truth


def sweep_log(name: str = "sweeps", n_frames: int = 8, n_points: int = 100_000, seed: int = 0) -> ImportedLog:
    """Lidar-like sweeps: points denser near the sensor, a ground plane, 0-255 intensity; a few cars."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_frames):
        range_m = 2.0 + rng.exponential(18.0, n_points)
        azimuth = rng.uniform(-np.pi, np.pi, n_points)
        z = np.where(rng.random(n_points) < 0.6, -1.7 + rng.normal(0, 0.03, n_points), rng.uniform(-1.7, 2.0, n_points))
        points = np.column_stack([range_m * np.cos(azimuth), range_m * np.sin(azimuth), z,
                                  rng.integers(0, 256, n_points)]).astype(np.float32)
        boxes = np.column_stack([rng.uniform(0, 60, 12), rng.uniform(-30, 30, 12), np.full(12, -0.9),
                                 np.full(12, 4.5), np.full(12, 1.9), np.full(12, 1.6), rng.uniform(-3, 3, 12)])
        frames.append(Frame(timestamp_ns=1_000_000_000 + i * FRAME_PERIOD_NS, ego_pose=(float(i), 0.0, 0.0, 0.0),
                            boxes=boxes, classes=["vehicle"] * 12, track_ids=[f"c{k}" for k in range(12)],
                            points=points))
    return ImportedLog(source="test", name=name, frames=frames, meta={"intensity": "0-255"})


def store(workspace: Workspace, logs: list[ImportedLog]) -> list[str]:
    """Import logs into the workspace's real catalog; their ids."""
    with Catalog(workspace) as catalog:
        return [catalog.add_log(log, IMPORT, log.name)[0] for log in logs]


def copy_workspace(template: Path, root: Path) -> Workspace:
    """A fresh workspace copied from the session's template (as the `workspace` fixture does)."""
    shutil.copytree(template, root, symlinks=True)
    run_tool(["dvc", "remote", "modify", "local", "url", str(root / "dvc-remote")], root, "dvc remote modify")
    return Workspace.open(root)


def build_version(workspace: Workspace, log_ids: list[str], task: str, sampling: dict[str, Any],
                  source: str = "test", fractions: tuple[float, float, float] = (0.5, 0.25, 0.25),
                  seed: int = 7) -> DatasetVersion:
    """Build an accepted version of the logs with the real pipeline.

    Raises:
        RuntimeError: no salt puts a log in every split of positive fraction, or the build was rejected.
    """
    wanted = {name for name, fraction in zip(("train", "val", "test"), fractions, strict=True) if fraction > 0}
    for attempt in range(200):
        split = SplitSpec(*fractions, salt=f"s{attempt}")
        if {split_of(log_id, split) for log_id in log_ids} >= wanted:
            break
    else:
        raise RuntimeError(f"no salt puts {len(log_ids)} logs into every split {sorted(wanted)}: add logs")
    spec = DatasetSpec(name=f"{task}-{source}", task=task, query=QuerySpec(sources=[source]),
                       sampling=SamplingSpec(**sampling), split=split, seed=seed)
    document = build_dataset(workspace, spec, progress=False)
    if document["status"] != "accepted":
        raise RuntimeError(f"the test dataset was rejected: {document['reasons']}")
    return load_version(workspace, document["dataset_id"])

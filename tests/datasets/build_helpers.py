"""Helpers of the dataset tests: hand-made logs, a catalog filler and a spec builder.

The logs have tracks as long as the log, of several classes, with lidar on every n-th frame or none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from andon.datasets.spec import DatasetSpec, spec_from_config
from andon.scenarios.catalog import Catalog
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame, Provenance, wrap_angle
from andon.workspace import Workspace

PROVENANCE = Provenance("import", "test", "1")


def add_logs(workspace: Workspace, logs: Iterable[ImportedLog]) -> list[str]:
    """Import hand-made logs into the workspace's real catalog; returns their log ids."""
    with Catalog(workspace) as catalog:
        return [catalog.add_log(log, PROVENANCE, origin=log.name)[0] for log in logs]


def whole_scenario(workspace: Workspace, log_id: str) -> str:
    """The id of the scenario spanning a log (created by the import)."""
    with Catalog(workspace) as catalog:
        found = catalog.search(f"log:{log_id}")
    return min(found, key=lambda s: s.t_start_ns - s.t_end_ns).scenario_id


def make_spec(name: str = "ds", task: str = "detection", **sections: Any) -> DatasetSpec:
    """A validated spec over the test logs (source `test`), every split in train unless `split` says otherwise."""
    doc: dict[str, Any] = {"name": name, "task": task, "query": {"sources": ["test"]},
                           "split": {"train": 1.0, "val": 0.0, "test": 0.0}}
    for key, value in sections.items():
        doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
    return spec_from_config(doc)


SIZES_M = {"vehicle": (4.5, 1.9, 1.6), "pedestrian": (0.6, 0.6, 1.75), "cyclist": (1.8, 0.6, 1.7),
           "static": (0.4, 0.4, 1.0)}


def make_agents_log(name: str = "drive", n_frames: int = 60, classes: Sequence[str] = ("vehicle", "pedestrian"),
                    seed: int = 0, period_s: float = 0.1, points_every: int | None = 1, source: str = "test",
                    tags: frozenset[str] = frozenset(), speed_mps: float = 5.0, spread_m: float = 30.0,
                    size_scale: float = 1.0, n_points: int = 300) -> ImportedLog:
    """A log whose agents (one per class entry) are seen in every frame, moving straight.

    Args:
        points_every: lidar points on every n-th frame (None: no lidar at all).
        speed_mps, spread_m, size_scale: shape the statistics (speeds, ranges, sizes), for drift tests.
    """
    rng = np.random.default_rng(seed)
    n = len(classes)
    start = rng.uniform(-spread_m, spread_m, size=(n, 2))
    heading = rng.uniform(-np.pi, np.pi, size=n)
    velocity = speed_mps * rng.uniform(0.5, 1.5, size=(n, 1)) * np.column_stack([np.cos(heading), np.sin(heading)])
    sizes = np.array([SIZES_M[c] for c in classes]) * size_scale * rng.uniform(0.9, 1.1, size=(n, 1))
    frames = []
    for i in range(n_frames):
        t_s = i * period_s
        xy = start + velocity * t_s
        boxes = np.column_stack([xy, sizes[:, 2] / 2, sizes, wrap_angle(heading)])
        points = None
        if points_every is not None and i % points_every == 0:
            points = rng.normal(0, 10, size=(n_points, 4)).astype(np.float32)
        frames.append(Frame(timestamp_ns=1_000_000_000 + int(round(t_s * 1e9)), ego_pose=(0.0, 0.0, 0.0, 0.0),
                            boxes=boxes, classes=list(classes), track_ids=[f"a{k}" for k in range(n)],
                            points=points, velocities_mps=velocity.copy()))
    return ImportedLog(source=source, name=name, frames=frames, tags=tags)

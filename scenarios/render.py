"""Bird's-eye-view pictures of a scenario: lidar points, boxes and the tracks around one frame."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection, PolyCollection  # noqa: E402

from andon.errors import BadInput  # noqa: E402
from andon.scenarios.geometry import box_corners_bev  # noqa: E402
from andon.scenarios.logstore import boxes_table, ego_poses  # noqa: E402
from andon.scenarios.records import CLASSES, Log, Scenario  # noqa: E402
from andon.scenarios.transforms import ego_to_world_xy, world_to_ego_xy  # noqa: E402

CLASS_COLOURS = {"vehicle": "tab:blue", "pedestrian": "tab:red", "cyclist": "tab:orange", "static": "tab:gray"}
MAX_POINTS = 60_000
VIEW_RANGE_M = 60.0


def render_scenario(log: Log, scenario: Scenario, out: Path, at_s: float | None = None) -> Path:
    """Write a PNG of the frame at `at_s` seconds into the window (default: its middle)."""
    stamps, poses = ego_poses(log)
    offset_ns = (scenario.t_end_ns - scenario.t_start_ns) // 2 if at_s is None else int(round(at_s * 1e9))
    target = scenario.t_start_ns + offset_ns
    if not scenario.t_start_ns <= target <= scenario.t_end_ns:
        raise BadInput(f"--at-s {at_s} lies outside the scenario's {scenario.duration_s:.2f} s window")
    index = int(np.argmin(np.abs(stamps - target)))
    frame = log.frames[index]
    pose = poses[index]

    fig, ax = plt.subplots(figsize=(8, 8), dpi=100)
    if frame.points is not None and len(frame.points):
        pts = frame.points[:: max(1, len(frame.points) // MAX_POINTS)]
        ax.scatter(pts[:, 0], pts[:, 1], s=0.2, c=pts[:, 2], cmap="viridis", vmin=-2, vmax=3, linewidths=0)
    _draw_tracks(ax, log, scenario, pose)
    if len(frame.boxes):
        corners = box_corners_bev(np.asarray(frame.boxes))
        colours = [CLASS_COLOURS.get(c, "black") for c in frame.classes]
        ax.add_collection(PolyCollection(corners, facecolors="none", edgecolors=colours, linewidths=1.2))
    ax.plot([0, 2.5, 0, 0], [1.0, 0, -1.0, 1.0], color="black", linewidth=1.5)  # the ego, pointing +x
    for name in CLASSES:
        ax.plot([], [], color=CLASS_COLOURS[name], label=name)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_xlim(-VIEW_RANGE_M, VIEW_RANGE_M)
    ax.set_ylim(-VIEW_RANGE_M, VIEW_RANGE_M)
    ax.set_aspect("equal")
    ax.set_xlabel("x forward [m]")
    ax.set_ylabel("y left [m]")
    ax.set_title(f"{scenario.scenario_id}  {log.name or log.log_id}\n"
                 f"t = {(frame.timestamp_ns - scenario.t_start_ns) / 1e9:.2f} s  tags: {', '.join(sorted(scenario.tags))}",
                 fontsize=9)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return out


def _draw_tracks(ax: plt.Axes, log: Log, scenario: Scenario, pose: np.ndarray) -> None:
    """Each track's centre over the window, moved into the rendered frame's ego frame."""
    table = boxes_table(log)
    stamps, poses = ego_poses(log)
    keep = (table["timestamp_ns"] >= scenario.t_start_ns) & (table["timestamp_ns"] <= scenario.t_end_ns)
    if not keep.any():
        return
    frame_index, xy, tracks = table["frame_index"][keep], table["boxes"][keep, :2], table["track_ids"][keep]
    world = np.empty_like(xy)
    for f in np.unique(frame_index):  # one transform per frame, vectorised over its boxes
        rows = frame_index == f
        world[rows] = ego_to_world_xy(xy[rows], poses[f, :2], poses[f, 3])
    local = world_to_ego_xy(world, pose[:2], pose[3])
    order = np.lexsort((frame_index, tracks))
    local, tracks = local[order], tracks[order]
    splits = np.flatnonzero(tracks[1:] != tracks[:-1]) + 1
    segments = [seg for seg in np.split(local, splits) if len(seg) > 1]
    ax.add_collection(LineCollection(segments, colors="0.4", linewidths=0.6, alpha=0.7))

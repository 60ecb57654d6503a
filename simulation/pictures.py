"""Bird's-eye-view pictures of one replayed moment: what the stack saw, believed and planned, beside the truth.

Drawn headless (matplotlib's Agg canvas, no pyplot state, so Ray workers can draw) in the ego frame of
the replayed ego at that frame, ±50 m around it: lidar points grey; ground-truth boxes outlined in
their class colour (the highlighted tracks thick red); detections dashed; each confirmed track's
predicted modes (the most probable solid, the others faint); the ego's box and its plan in blue.

The same inputs give the same bytes (fixed size and dpi, no software or date metadata), so reports
that embed pictures stay byte-identical. Files are written to a temp name and renamed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from andon.errors import BadInput
from andon.scenarios.geometry import box_corners_bev
from andon.scenarios.records import CLASSES, wrap_angle
from andon.scenarios.transforms import world_to_ego_xy
from andon.simulation.trace import ScenarioTrace

CLASS_COLOURS = {"vehicle": "tab:green", "pedestrian": "tab:purple", "cyclist": "tab:orange", "static": "tab:gray"}
HIGHLIGHT_COLOUR = "red"
EGO_COLOUR = "tab:blue"
VIEW_HALF_M = 50.0
FIGSIZE_IN = (7.0, 7.0)
DPI = 100
MAX_POINTS = 40_000
FAINT_MODE_ALPHA = 0.3
EGO_SIZE_M = (4.6, 1.9)  # the replay's default ego box (ReplayConfig.ego_length_m, ego_width_m) [m]


def boxes_to_ego(boxes_world: np.ndarray, ego_pose: np.ndarray) -> np.ndarray:
    """World-frame (N, 7) boxes in the ego frame of `ego_pose` (x, y, z, yaw)."""
    boxes = np.asarray(boxes_world, dtype=np.float64).reshape(-1, 7).copy()
    if len(boxes):
        boxes[:, :2] = world_to_ego_xy(boxes[:, :2], ego_pose[:2], float(ego_pose[3]))
        boxes[:, 6] = wrap_angle(boxes[:, 6] - float(ego_pose[3]))
    return boxes


def _outline(ax: Axes, boxes: np.ndarray, colours: list[str], **style: object) -> None:
    if len(boxes):
        ax.add_collection(PolyCollection(box_corners_bev(boxes), closed=True, facecolors="none", edgecolors=colours,
                                         **style))


def render_moment(trace: ScenarioTrace, frame_index: int, points_ego: np.ndarray | None, out: Path, title: str,
                  highlight_track_ids: Iterable[str] = ()) -> Path:
    """Write a PNG of one replayed frame and return its path.

    Args:
        trace: the replay.
        frame_index: index into `trace.frames`.
        points_ego: (M, ≥2) lidar points in the ego frame of the replayed ego at that frame (closed loop:
            the logged sweep moved to the simulated pose), or None to draw no points.
        out: the PNG's path (its folder is created).
        title: the picture's first title line (e.g. the cause and detail); time and scenario follow.
        highlight_track_ids: ground-truth track ids (the log's) drawn thick red.

    Raises:
        BadInput: `frame_index` is outside the trace.
    """
    if not 0 <= frame_index < len(trace.frames):
        raise BadInput(f"frame {frame_index} is outside the replay of {trace.scenario_id} "
                       f"({len(trace.frames)} frames)")
    frame = trace.frames[frame_index]
    pose = np.asarray(frame.ego_pose, dtype=np.float64)
    highlight = {str(t) for t in highlight_track_ids}

    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if points_ego is not None and len(points_ego):
        pts = np.asarray(points_ego)[:: max(1, len(points_ego) // MAX_POINTS)]
        near = (np.abs(pts[:, 0]) <= VIEW_HALF_M) & (np.abs(pts[:, 1]) <= VIEW_HALF_M)
        ax.scatter(pts[near, 0], pts[near, 1], s=0.3, c="0.6", linewidths=0, rasterized=True)

    gt = boxes_to_ego(frame.gt_boxes, pose)
    is_hit = np.array([str(t) in highlight for t in frame.gt_track_ids], dtype=bool)
    _outline(ax, gt[~is_hit], [CLASS_COLOURS.get(str(c), "black") for c in np.asarray(frame.gt_classes)[~is_hit]],
             linewidths=1.2)
    _outline(ax, gt[is_hit], [HIGHLIGHT_COLOUR] * int(is_hit.sum()), linewidths=3.0)
    det = boxes_to_ego(frame.det_boxes, pose)
    _outline(ax, det, [CLASS_COLOURS.get(str(c), "black") for c in frame.det_classes], linewidths=1.0,
             linestyles="dashed")
    _draw_predictions(ax, frame.track_xy_m, frame.pred_modes_m, frame.pred_probs, pose)

    ego_box = np.array([[0.0, 0.0, 0.0, EGO_SIZE_M[0], EGO_SIZE_M[1], 1.5, 0.0]])
    ax.add_collection(PolyCollection(box_corners_bev(ego_box), facecolors=EGO_COLOUR, edgecolors=EGO_COLOUR,
                                     alpha=0.8))
    if frame.plan_ok and len(frame.plan_xy_m):
        plan = world_to_ego_xy(frame.plan_xy_m, pose[:2], float(pose[3]))
        ax.plot(plan[:, 0], plan[:, 1], color=EGO_COLOUR, linewidth=2.0)

    legend = [Line2D([], [], color=CLASS_COLOURS[c], label=c) for c in CLASSES]
    legend += [Line2D([], [], color="black", linestyle="dashed", label="detection"),
               Line2D([], [], color="black", linewidth=0.8, label="prediction"),
               Line2D([], [], color=EGO_COLOUR, linewidth=2.0, label="ego plan"),
               Line2D([], [], color=HIGHLIGHT_COLOUR, linewidth=3.0, label="involved")]
    ax.legend(handles=legend, loc="upper right", fontsize=7)
    ax.set_xlim(-VIEW_HALF_M, VIEW_HALF_M)
    ax.set_ylim(-VIEW_HALF_M, VIEW_HALF_M)
    ax.set_aspect("equal")
    ax.set_xlabel("x forward [m]")
    ax.set_ylabel("y left [m]")
    t_s = (frame.timestamp_ns - trace.frames[0].timestamp_ns) / 1e9
    ax.set_title(f"{title}\n{trace.scenario_id[:16]}  {trace.mode}  t = {t_s:.2f} s  "
                 f"v = {frame.ego_speed_mps:.1f} m/s", fontsize=8)
    fig.tight_layout()
    return _save(fig, out)


def _draw_predictions(ax: Axes, track_xy_m: np.ndarray, modes_m: np.ndarray, probs: np.ndarray,
                      pose: np.ndarray) -> None:
    """Each confirmed track's modes from its current position: the most probable solid, the others faint."""
    modes = np.asarray(modes_m, dtype=np.float64)
    if modes.ndim != 4 or not modes.size:
        return
    n_tracks, n_modes, n_steps, _ = modes.shape
    start = np.asarray(track_xy_m, dtype=np.float64).reshape(n_tracks, 1, 1, 2)
    lines = np.concatenate([np.broadcast_to(start, (n_tracks, n_modes, 1, 2)), modes], axis=2)
    local = world_to_ego_xy(lines.reshape(-1, 2), pose[:2], float(pose[3])).reshape(n_tracks, n_modes, n_steps + 1, 2)
    best = np.zeros((n_tracks, n_modes), dtype=bool)
    if n_modes:
        best[np.arange(n_tracks), np.argmax(np.asarray(probs).reshape(n_tracks, n_modes), axis=1)] = True
    ax.add_collection(LineCollection(list(local[~best]), colors="0.2", linewidths=0.6,
                                     alpha=FAINT_MODE_ALPHA))
    ax.add_collection(LineCollection(list(local[best]), colors="0.1", linewidths=1.2))


def _save(fig: Figure, out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out

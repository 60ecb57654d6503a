"""The Argoverse 2 vector map (shared by the sensor and the motion-forecasting importers).

Lanes come from "lane_segments" (the centerline where given, else the midline of the two lane
boundaries resampled by arc length, as av2-api does) with their `is_intersection` flag; crosswalks
from "pedestrian_crossings" (edge1 followed by edge2 reversed). Coordinates stay in the city frame.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.scenarios.records import Crosswalk, Lane, RoadMap

MIN_CENTERLINE_POINTS = 10  # av2-api's NUM_CENTERLINE_INTERP_PTS


def read_av2_map(path: Path) -> RoadMap:
    """Read an AV2 map archive; BadInput names the file when it is not one or holds non-finite values."""
    try:
        data = json.loads(Path(path).read_text())
        lanes = tuple(_lane(segment) for segment in data["lane_segments"].values())
        crosswalks = tuple(Crosswalk(str(c["id"]), np.concatenate([_xy(c["edge1"]), _xy(c["edge2"])[::-1]]))
                           for c in data["pedestrian_crossings"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise BadInput(f"{path}: not an AV2 map archive ({type(exc).__name__}: {exc}); expected lane_segments "
                       f"and pedestrian_crossings") from exc
    return RoadMap(lanes=lanes, crosswalks=crosswalks)


def _xy(points: list[dict[str, Any]]) -> np.ndarray:
    """(K, 2) x, y of a list of {"x", "y", "z"} points, refusing non-finite values."""
    xy = np.array([[p["x"], p["y"]] for p in points], dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(xy)):
        raise ValueError("a map point holds NaN or infinite coordinates")
    return xy


def _lane(segment: dict[str, Any]) -> Lane:
    if "centerline" in segment:
        centerline = _xy(segment["centerline"])
    else:
        left, right = _xy(segment["left_lane_boundary"]), _xy(segment["right_lane_boundary"])
        n_points = max(len(left), len(right), MIN_CENTERLINE_POINTS)
        centerline = 0.5 * (_resample(left, n_points) + _resample(right, n_points))
    return Lane(str(segment["id"]), centerline, bool(segment["is_intersection"]))


def _resample(polyline: np.ndarray, n_points: int) -> np.ndarray:
    """`n_points` points evenly spaced by arc length along a (K, 2) polyline."""
    if len(polyline) == 0:
        raise ValueError("a lane boundary has no points")
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(polyline, axis=0), axis=1))])
    if arc[-1] == 0:
        return np.repeat(polyline[:1], n_points, axis=0)
    target = np.linspace(0.0, arc[-1], n_points)
    return np.column_stack([np.interp(target, arc, polyline[:, 0]), np.interp(target, arc, polyline[:, 1])])

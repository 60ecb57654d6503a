"""The static scene a synthetic log's lidar sees: buildings along the roads and poles, as boxes.

Boxes are (x, y, z_centre, length, width, height, yaw) in the world frame, standing on the ground
(z = 0), rounded to the millimetre so that what a log records in meta["scene"] is exactly what was
ray-cast. Closed-loop simulation re-ray-casts the same scene at a new ego pose (lidar.raycast_sweep).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.scenarios.records import RoadMap
from andon.simulation.fleet.roads import BUILDING_OFFSET_M, POLE_OFFSET_M, RoadNetwork

SCENE_VERSION = 1
GROUND_REFLECTIVITY = 0.12  # asphalt
BUILDING_LENGTH_M = (8.0, 28.0)
BUILDING_GAP_M = (1.5, 7.0)
BUILDING_DEPTH_M = (8.0, 18.0)
BUILDING_HEIGHT_M = (5.0, 28.0)
BUILDING_SETBACK_M = 2.0  # fronts stand up to this much further back than BUILDING_OFFSET_M
BUILDING_REFLECTIVITY = (0.25, 0.5)
STREETLIGHT_SPACING_M = 30.0
STREETLIGHT_SIZE_M = (0.25, 0.25, 7.0)
SIGNAL_POLE_SIZE_M = (0.3, 0.3, 5.0)
POLE_REFLECTIVITY = 0.6  # painted metal
CORNER_CLEARANCE_M = BUILDING_OFFSET_M + 1.0  # buildings keep off the crossing road's sidewalk


@dataclass(frozen=True, slots=True, eq=False)
class StaticScene:
    boxes_m: np.ndarray  # (S, 7) world frame
    reflectivity: np.ndarray  # (S,) in [0, 1]

    def to_meta(self) -> dict[str, Any]:
        """JSON-able form kept in a log's meta["scene"]."""
        return {"version": SCENE_VERSION, "frame": "world", "ground_z_m": 0.0,
                "ground_reflectivity": GROUND_REFLECTIVITY,
                "box_columns": ["x", "y", "z_centre", "length", "width", "height", "yaw"],
                "boxes": self.boxes_m.tolist(), "reflectivity": self.reflectivity.tolist()}

    @classmethod
    def from_meta(cls, data: dict[str, Any]) -> StaticScene:
        """The scene recorded in a log's meta["scene"].

        Raises:
            BadInput: the record is not a scene of a known version.
        """
        if not isinstance(data, dict) or data.get("version") != SCENE_VERSION:
            raise BadInput(f"meta['scene'] is not a version-{SCENE_VERSION} fleet scene: re-synthesise the log")
        boxes = np.asarray(data["boxes"], dtype=np.float64).reshape(-1, 7)
        return cls(boxes_m=boxes, reflectivity=np.asarray(data["reflectivity"], dtype=np.float64))

    def near(self, path_xy_m: np.ndarray, radius_m: float) -> StaticScene:
        """The boxes within `radius_m` (BEV, to the box's footprint circle) of any point of a path."""
        reach = radius_m + 0.5 * np.hypot(self.boxes_m[:, 3], self.boxes_m[:, 4])
        d = np.linalg.norm(self.boxes_m[None, :, :2] - np.asarray(path_xy_m)[:, None, :], axis=2)
        keep = np.any(d <= reach[None, :], axis=0)
        return StaticScene(self.boxes_m[keep], self.reflectivity[keep])


def build_scene(net: RoadNetwork, road_map: RoadMap, rng: np.random.Generator) -> StaticScene:
    """Buildings in rows along both sides of every road, streetlights, and a pole under each traffic light."""
    boxes, refl = [], []
    stations = net.node_stations()
    n_bounds = len(stations) + 2  # road start, the junctions, road end
    for road in net.roads:
        bounds = np.concatenate([[road.start_m], stations, [road.end_m]])
        for side in (-1.0, 1.0):
            for k in range(n_bounds - 1):
                lo = bounds[k] + (CORNER_CLEARANCE_M if k > 0 else 0.0)
                hi = bounds[k + 1] - (CORNER_CLEARANCE_M if k + 1 < n_bounds - 1 else 0.0)
                row = _building_row(lo, hi, rng)
                poles = _streetlights(lo, hi)
                boxes.append(_road_boxes(road.axis, road.coord_m, row["along"], side * row["across"], row["size"]))
                boxes.append(_road_boxes(road.axis, road.coord_m, poles, np.full(len(poles), side * POLE_OFFSET_M),
                                         np.tile(STREETLIGHT_SIZE_M, (len(poles), 1))))
                refl.extend([row["reflectivity"], np.full(len(poles), POLE_REFLECTIVITY)])
    lights = np.array([t.position_m for t in road_map.traffic_lights], dtype=np.float64).reshape(-1, 2)
    size = np.tile(SIGNAL_POLE_SIZE_M, (len(lights), 1))
    boxes.append(np.column_stack([lights, 0.5 * size[:, 2], size, np.zeros(len(lights))]))
    refl.append(np.full(len(lights), POLE_REFLECTIVITY))
    return StaticScene(boxes_m=np.round(np.concatenate(boxes), 3), reflectivity=np.round(np.concatenate(refl), 3))


def _building_row(lo: float, hi: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Buildings along [lo, hi] of one side of a road: lengths and gaps drawn at once, then cut at hi."""
    n = int((hi - lo) / (BUILDING_LENGTH_M[0] + BUILDING_GAP_M[0])) + 1
    length = rng.uniform(*BUILDING_LENGTH_M, n)
    gap = rng.uniform(*BUILDING_GAP_M, n)
    depth = rng.uniform(*BUILDING_DEPTH_M, n)
    height = rng.uniform(*BUILDING_HEIGHT_M, n)
    setback = rng.uniform(0.0, BUILDING_SETBACK_M, n)
    reflectivity = rng.uniform(*BUILDING_REFLECTIVITY, n)
    end = lo + np.cumsum(gap + length)
    keep = end <= hi
    return {"along": (end - 0.5 * length)[keep],
            "across": (BUILDING_OFFSET_M + setback + 0.5 * depth)[keep],
            "size": np.column_stack([length, depth, height])[keep],
            "reflectivity": reflectivity[keep]}


def _streetlights(lo: float, hi: float) -> np.ndarray:
    first = lo + 0.5 * STREETLIGHT_SPACING_M
    return np.arange(first, hi, STREETLIGHT_SPACING_M) if hi > first else np.zeros(0)


def _road_boxes(axis: int, coord_m: float, along: np.ndarray, across: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Boxes placed in road coordinates (along, across) with their length along the road."""
    if axis == 0:
        x, y, yaw = along, coord_m + across, 0.0
    else:
        x, y, yaw = coord_m + across, along, np.pi / 2
    return np.column_stack([x, y, 0.5 * size[:, 2], size, np.full(len(along), yaw)])


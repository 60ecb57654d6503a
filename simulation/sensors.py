"""What the detector sees in closed loop, where the ego has left its logged pose.

Open loop feeds the logged frame as it is. In closed loop the sensors follow the simulated ego, on
the frames that had a lidar sweep in the log (the others stay without one):

- synthetic logs (meta["scene"] and meta["fleet"]["lidar"] present): the sweep is ray-cast again at
  the simulated pose (`raycast_sweep`) from the log's static scene and the replay's ground-truth
  agent boxes (reactive positions), with the fleet's lidar settings and the log's night/rain
  conditions; the random stream is seeded from (replay seed, scenario id, frame index), so a replay
  is deterministic and independent of the frames before it. Exact: `approximation` is "".
- real logs: there is no scene to ray-cast, so the logged points are moved rigidly from the logged
  pose to the simulated one (the world stays fixed: a building is where it was, seen from the new
  pose). Occlusion, point density and the logged agents' positions in the sweep stay as logged;
  `approximation` says so, and the trace carries it to the report.

Either way the detector gets a Frame at the simulated pose whose labels are the ground-truth boxes in
the simulated ego frame (what the oracle detector reads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.ids import sha256_text
from andon.scenarios.records import Frame, Log
from andon.scenarios.transforms import world_to_ego_xy

MOVED_SWEEP = "logged sweep moved to the simulated pose (real log: no scene geometry to re-ray-cast)"
SCENE_SEARCH_MARGIN_M = 20.0
_TWO_PI = 2.0 * np.pi  # scene boxes this far beyond the lidar's range of the logged path are kept


@dataclass(frozen=True, slots=True, eq=False)
class SensorModel:
    """Re-renders a logged frame at a simulated pose (module docstring); one per replayed scenario."""

    scenario_seed: int
    approximation: str
    scene_boxes: np.ndarray | None = None  # (S, 7) world; None: a real log (move the sweep)
    scene_reflectivity: np.ndarray | None = None
    lidar: Any = None  # FleetConfig of a synthetic log
    night: bool = False
    rain: bool = False

    @classmethod
    def for_log(cls, log: Log, scenario_id: str, seed: int, path_xy_m: np.ndarray) -> SensorModel:
        """The sensor model of `log`'s closed-loop replay of scenario `scenario_id`.

        Args:
            log: the log replayed.
            scenario_id: the scenario (it seeds the ray-casting noise).
            seed: the replay's seed.
            path_xy_m: (K, 2) the logged ego path of the replayed frames: static boxes far from it are culled.

        Raises:
            BadInput: a synthetic log whose recorded scene or lidar settings cannot be read.
        """
        scenario_seed = int(sha256_text(f"{seed}:{scenario_id}")[:15], 16)
        meta = log.meta or {}
        fleet = meta.get("fleet") if isinstance(meta.get("fleet"), dict) else None
        if "scene" not in meta or fleet is None or "lidar" not in fleet:
            return cls(scenario_seed=scenario_seed, approximation=MOVED_SWEEP)
        from andon.simulation.fleet.config import FleetConfig
        from andon.simulation.fleet.scene import StaticScene

        try:
            known = {f.name for f in fields(FleetConfig)}
            lidar = fleet["lidar"]
            config = replace(FleetConfig(**{k: v for k, v in dict(fleet.get("config") or {}).items() if k in known}),
                             lidar_height_m=float(lidar["height_m"]), lidar_beams=int(lidar["beams"]),
                             lidar_azimuth_steps=int(lidar["azimuth_steps"]), max_range_m=float(lidar["max_range_m"]),
                             lidar_elevation_min_deg=float(lidar["elevation_deg"][0]),
                             lidar_elevation_max_deg=float(lidar["elevation_deg"][1]))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise BadInput(f"log {log.log_id}: meta['fleet']['lidar'] cannot be read ({exc}): re-synthesise the log") \
                from None
        scene = StaticScene.from_meta(meta["scene"])
        if len(scene.boxes_m) and len(path_xy_m):
            scene = scene.near(np.asarray(path_xy_m, dtype=np.float64), config.max_range_m + SCENE_SEARCH_MARGIN_M)
        conditions = meta.get("conditions") or {}
        return cls(scenario_seed=scenario_seed, approximation="", scene_boxes=scene.boxes_m,
                   scene_reflectivity=scene.reflectivity, lidar=config, night=bool(conditions.get("night")),
                   rain=bool(conditions.get("rain")))

    def points(self, logged: Frame, frame_index: int, pose: np.ndarray, agent_boxes_world: np.ndarray
               ) -> np.ndarray | None:
        """The sweep at the simulated `pose` (x, y, z, yaw), or None where the log had none.

        Args:
            logged: the logged frame (its points, its pose).
            frame_index: the replayed frame's index (seeds the ray-casting).
            pose: (4,) the simulated ego pose in the world frame.
            agent_boxes_world: (N, 7) ground-truth agent boxes now (world frame; not the ego's).
        """
        if logged.points is None:
            return None
        if self.scene_boxes is None:
            return move_sweep(np.asarray(logged.points), logged.ego_pose, pose)
        from andon.simulation.fleet.lidar import raycast_sweep

        rng = np.random.default_rng([self.scenario_seed, int(frame_index)])
        return raycast_sweep(self.scene_boxes, agent_boxes_world, pose, self.lidar, rng,
                             scene_reflectivity=self.scene_reflectivity, night=self.night, rain=self.rain)


def move_sweep(points: np.ndarray, logged_pose: tuple | np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Points (M, 4+) in the ego frame of `logged_pose`, expressed in the ego frame of `pose` (both world (x, y, z, yaw)).

    The move is rigid: into the world frame by the logged pose, out of it by the simulated one.
    """
    logged = np.asarray(logged_pose, dtype=np.float64)
    c, s = np.cos(logged[3]), np.sin(logged[3])
    p = np.asarray(points)
    world = np.column_stack([c * p[:, 0] - s * p[:, 1] + logged[0], s * p[:, 0] + c * p[:, 1] + logged[1]])
    moved = np.array(p, dtype=np.float32, copy=True)
    moved[:, :2] = world_to_ego_xy(world, pose[:2], float(pose[3]))
    moved[:, 2] += np.float32(logged[2] - pose[2])
    return moved


def frame_at_pose(timestamp_ns: int, pose: np.ndarray, boxes_world: np.ndarray, classes: list[str],
                  track_ids: list[str], velocities_world_mps: np.ndarray, points: np.ndarray | None) -> Frame:
    """A Frame seen from the simulated `pose`: ground-truth boxes and velocities in its ego frame, and `points`.

    Args:
        timestamp_ns: the frame's time.
        pose: (4,) x, y, z, yaw of the ego in the world frame.
        boxes_world: (N, 7) float64 world boxes.
        classes, track_ids: N each.
        velocities_world_mps: (N, 2) world velocities.
        points: the sweep in the ego frame of `pose`, or None.
    """
    x, y, z, yaw = np.asarray(pose, dtype=np.float64).tolist()
    c, s = math.cos(yaw), math.sin(yaw)
    to_ego = np.array([[c, -s], [s, c]])  # row vectors @ to_ego: turned by -yaw
    boxes = np.array(boxes_world, dtype=np.float64)
    boxes[:, 0] -= x
    boxes[:, 1] -= y
    boxes[:, :2] = boxes[:, :2] @ to_ego
    boxes[:, 2] -= z
    headings = boxes[:, 6]  # wrapped into (-pi, pi] in place
    headings -= yaw + np.pi
    np.mod(headings, -_TWO_PI, out=headings)
    headings += np.pi
    return Frame(timestamp_ns=int(timestamp_ns), ego_pose=(x, y, z, yaw), boxes=boxes, classes=classes,
                 track_ids=track_ids, points=points, velocities_mps=np.asarray(velocities_world_mps) @ to_ego)

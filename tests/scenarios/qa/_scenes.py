"""Hand-made drives for the label-QA tests: true agents, their labels, and a lidar sweep of the truth.

The road runs along a heading of ROAD_YAW in the world; the ego drives along it at 10 m/s. Points come
from the true agents (never from the labels), so a corrupted label is judged against what the lidar
saw. `Scene.labels` may be corrupted in place before `Scene.log()` writes the frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame, wrap_angle

DT_S = 0.1
T0_NS = 1_000_000_000
ROAD_YAW = 0.3  # [rad] the road's heading in the world frame, so world and ego axes differ
EGO_SPEED_MPS = 10.0
POINTS_PER_AGENT = 400  # dense enough that every 0.5 deg of an occluder holds a return
GROUND_POINTS = 3000


@dataclass
class Agent:
    """One agent along the road: road-frame start (x, y) [m], velocity (vx, vy) [m/s], size (l, w, h) [m]."""

    track_id: str
    cls: str
    start: tuple[float, float]
    velocity: tuple[float, float]
    size: tuple[float, float, float]
    seen: bool = True  # False: an agent hidden from the lidar (its label is true, it has no points)


AGENTS = (
    Agent("car", "vehicle", (10.0, 3.5), (12.0, 0.0), (4.5, 1.9, 1.6)),
    Agent("walker", "pedestrian", (25.0, -6.0), (0.0, 1.4), (0.6, 0.6, 1.75)),
    Agent("cone", "static", (15.0, -4.0), (0.0, 0.0), (0.4, 0.4, 0.7)),
    Agent("bike", "cyclist", (5.0, -2.0), (6.0, 0.0), (1.8, 0.7, 1.7)),
    # Ten metres behind the car, inside its shadow as the ego sees it: a true label without points.
    Agent("hidden", "cyclist", (22.0, 5.0), (12.0, 0.0), (1.8, 0.7, 1.7), seen=False),
)


@dataclass
class Scene:
    """True boxes and labels of every agent at every frame, in the world frame.

    Attributes:
        world: (F, A, 7) true boxes (x, y, z_centre, l, w, h, yaw) in the world frame.
        labels: (F, A, 7) labelled boxes, a copy of `world` to corrupt.
        classes: (F, A) labelled classes; present: (F, A) whether the agent is labelled in the frame.
        ego: (F, 4) ego poses (x, y, z, yaw).
    """

    agents: tuple[Agent, ...]
    world: np.ndarray
    labels: np.ndarray
    classes: np.ndarray
    present: np.ndarray
    ego: np.ndarray
    extra: list[tuple[int, str, str, np.ndarray]] = field(default_factory=list)  # (frame, track, class, ego box)

    def log(self, with_points: bool = True, source: str = "synthetic", seed: int = 0,
            meta: dict | None = None) -> ImportedLog:
        rng = np.random.default_rng(seed)
        frames = []
        for f in range(len(self.ego)):
            keep = np.flatnonzero(self.present[f])
            boxes = to_ego(self.labels[f, keep], self.ego[f])
            classes = [str(c) for c in self.classes[f, keep]]
            tracks = [self.agents[a].track_id for a in keep]
            velocities = to_ego_velocity(np.array([_road_velocity(self.agents[a]) for a in keep]).reshape(-1, 2),
                                         self.ego[f])
            for frame, track, cls, box in self.extra:
                if frame == f:
                    boxes = np.vstack([boxes, box[None]])
                    classes.append(cls)
                    tracks.append(track)
                    velocities = np.vstack([velocities, [[np.nan, np.nan]]])
            points = self._sweep(f, rng) if with_points else None
            frames.append(Frame(timestamp_ns=T0_NS + int(round(f * DT_S * 1e9)), ego_pose=tuple(self.ego[f]),
                                boxes=boxes, classes=classes, track_ids=tracks, points=points,
                                velocities_mps=velocities))
        return ImportedLog(source=source, name=f"scene-{seed}", frames=frames, meta=dict(meta or {}))

    def _sweep(self, f: int, rng: np.random.Generator) -> np.ndarray:
        """Points inside every seen agent's true box, plus the ground around the ego, in the ego frame."""
        seen = [a for a, agent in enumerate(self.agents) if agent.seen]
        truth = to_ego(self.world[f, seen], self.ego[f])
        local = rng.uniform(-0.45, 0.45, size=(len(seen), POINTS_PER_AGENT, 3)) * truth[:, None, 3:6]
        cos, sin = np.cos(truth[:, 6])[:, None], np.sin(truth[:, 6])[:, None]
        on_agents = np.stack([truth[:, 0:1] + cos * local[..., 0] - sin * local[..., 1],
                              truth[:, 1:2] + sin * local[..., 0] + cos * local[..., 1],
                              truth[:, 2:3] + local[..., 2]], axis=-1).reshape(-1, 3)
        radius = 60.0 * np.sqrt(rng.uniform(0.0, 1.0, GROUND_POINTS))
        angle = rng.uniform(-np.pi, np.pi, GROUND_POINTS)
        ground = np.column_stack([radius * np.cos(angle), radius * np.sin(angle),
                                  -np.abs(rng.normal(0.0, 0.02, GROUND_POINTS))])  # just under the labels
        xyz = np.vstack([on_agents, ground])
        return np.column_stack([xyz, rng.uniform(0, 255, len(xyz))]).astype(np.float32)


def _road_velocity(agent: Agent) -> np.ndarray:
    c, s = np.cos(ROAD_YAW), np.sin(ROAD_YAW)
    vx, vy = agent.velocity
    return np.array([c * vx - s * vy, s * vx + c * vy])


def make_scene(n_frames: int = 30, agents: tuple[Agent, ...] = AGENTS) -> Scene:
    """A clean drive: the ego and every agent move smoothly along the road."""
    t = np.arange(n_frames) * DT_S
    c, s = np.cos(ROAD_YAW), np.sin(ROAD_YAW)

    def to_world(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return c * x - s * y, s * x + c * y

    ego_x, ego_y = to_world(EGO_SPEED_MPS * t, np.zeros_like(t))
    ego = np.column_stack([ego_x, ego_y, np.full_like(t, 2.0), np.full_like(t, ROAD_YAW)])
    world = np.zeros((n_frames, len(agents), 7))
    for a, agent in enumerate(agents):
        x, y = to_world(agent.start[0] + agent.velocity[0] * t, agent.start[1] + agent.velocity[1] * t)
        heading = np.arctan2(agent.velocity[1], agent.velocity[0]) if any(agent.velocity) else 0.0
        world[:, a] = np.column_stack([x, y, np.full_like(t, 2.0 + agent.size[2] / 2),
                                       np.tile(agent.size, (n_frames, 1)),
                                       np.full_like(t, wrap_angle(ROAD_YAW + heading))])
    classes = np.array([[agent.cls for agent in agents]] * n_frames, dtype=object)
    return Scene(agents=agents, world=world, labels=world.copy(), classes=classes,
                 present=np.ones((n_frames, len(agents)), dtype=bool), ego=ego)


def to_ego(world_boxes: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """World-frame boxes (N, 7) into the ego frame of `pose` (x, y, z, yaw)."""
    c, s = np.cos(pose[3]), np.sin(pose[3])
    dx, dy = world_boxes[:, 0] - pose[0], world_boxes[:, 1] - pose[1]
    out = world_boxes.copy()
    out[:, 0], out[:, 1] = c * dx + s * dy, -s * dx + c * dy
    out[:, 2] = world_boxes[:, 2] - pose[2]
    out[:, 6] = wrap_angle(world_boxes[:, 6] - pose[3])
    return out


def to_ego_velocity(world_velocity: np.ndarray, pose: np.ndarray) -> np.ndarray:
    c, s = np.cos(pose[3]), np.sin(pose[3])
    return np.column_stack([c * world_velocity[:, 0] + s * world_velocity[:, 1],
                            -s * world_velocity[:, 0] + c * world_velocity[:, 1]])


def index_of(scene: Scene, track_id: str) -> int:
    return [agent.track_id for agent in scene.agents].index(track_id)


def shift_along_road(scene: Scene, frame: int, track_id: str, forward_m: float, left_m: float) -> None:
    """Move one label in the road's own axes (forward, left) [m]."""
    a = index_of(scene, track_id)
    c, s = np.cos(ROAD_YAW), np.sin(ROAD_YAW)
    scene.labels[frame, a, 0] += c * forward_m - s * left_m
    scene.labels[frame, a, 1] += s * forward_m + c * left_m

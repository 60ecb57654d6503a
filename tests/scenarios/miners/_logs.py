"""Hand-made logs with known answers for the miner tests and the miner benchmark."""

from __future__ import annotations

import numpy as np

from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Crosswalk, Frame, Lane, Log, RoadMap, TrafficLight

DT_S = 0.1
T0_NS = 1_000_000_000
STEP_NS = 100_000_000
VEHICLE_SIZE_M = (4.5, 2.0, 1.6)
PEDESTRIAN_SIZE_M = (0.6, 0.6, 1.75)
CYCLIST_SIZE_M = (1.8, 0.7, 1.7)
SIZES = {"vehicle": VEHICLE_SIZE_M, "pedestrian": PEDESTRIAN_SIZE_M, "cyclist": CYCLIST_SIZE_M,
         "static": (1.0, 1.0, 1.0)}


def t_s(index: int | np.ndarray) -> np.ndarray:
    """Time since the log's start [s] of frame `index` (10 Hz)."""
    return np.asarray(index) * DT_S


def ns(seconds: float) -> int:
    """Absolute timestamp [ns] of `seconds` after the log's start."""
    return T0_NS + int(round(seconds * 1e9))


def ego_from_speeds(speeds_mps: np.ndarray, y_m: np.ndarray | float = 0.0) -> np.ndarray:
    """(F, 4) world poses of an ego driving along +x with the given speed per frame (yaw 0)."""
    speeds = np.asarray(speeds_mps, dtype=np.float64)
    x = np.r_[0.0, np.cumsum(speeds[:-1] * DT_S)]
    poses = np.zeros((len(speeds), 4))
    poses[:, 0], poses[:, 1] = x, y_m
    return poses


def agent(cls: str, xy_m: np.ndarray, yaw_rad: np.ndarray | float = 0.0) -> tuple[str, np.ndarray]:
    """(class, (F, 7) boxes) for a track at ego-frame positions `xy_m` (F, 2); NaN rows = absent."""
    xy = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
    length, width, height = SIZES[cls]
    boxes = np.column_stack([xy, np.full(len(xy), height / 2), np.full(len(xy), length), np.full(len(xy), width),
                             np.full(len(xy), height), np.broadcast_to(yaw_rad, len(xy))])
    return cls, boxes


def world_agent(cls: str, world_xy_m: np.ndarray, poses: np.ndarray, yaw_rad: float = 0.0) -> tuple[str, np.ndarray]:
    """An agent given in world coordinates, moved into the ego frame of each pose (world yaw `yaw_rad`)."""
    world = np.asarray(world_xy_m, dtype=np.float64).reshape(-1, 2)
    c, s = np.cos(poses[:, 3]), np.sin(poses[:, 3])
    d = world - poses[:, :2]
    ego = np.column_stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]])
    return agent(cls, ego, np.angle(np.exp(1j * (yaw_rad - poses[:, 3]))))


def make_log(poses: np.ndarray, agents: dict[str, tuple[str, np.ndarray]] | None = None,
             road_map: RoadMap | None = None, meta: dict | None = None, log_id: str = "crafted",
             source: str = "test") -> Log:
    """A Log of len(poses) frames at 10 Hz; each agent's box is present where its row is finite."""
    agents = agents or {}
    frames = []
    for i, pose in enumerate(np.asarray(poses, dtype=np.float64)):
        present = [(tid, cls, boxes[i]) for tid, (cls, boxes) in agents.items() if np.all(np.isfinite(boxes[i]))]
        frames.append(Frame(
            timestamp_ns=T0_NS + i * STEP_NS, ego_pose=tuple(float(v) for v in pose),
            boxes=np.array([b for _, _, b in present], dtype=np.float64).reshape(-1, 7),
            classes=[cls for _, cls, _ in present], track_ids=[tid for tid, _, _ in present]))
    return Log(log_id=log_id, source=source, frames=frames, road_map=road_map, meta=dict(meta or {}))


def imported(log: Log) -> ImportedLog:
    """The same log as an importer would hand it to the catalog."""
    return ImportedLog(source=log.source, name=log.log_id, frames=list(log.frames), road_map=log.road_map,
                       meta=dict(log.meta))


def town_map() -> RoadMap:
    """A straight road along +x (lane "approach", x 0..60) into a junction (x 60..80) with a light and a crosswalk."""
    x = np.linspace(0.0, 60.0, 13)
    approach = Lane("approach", np.column_stack([x, np.zeros_like(x)]))
    left = Lane("left", np.column_stack([x, np.full_like(x, 3.5)]))
    junction = Lane("junction", np.array([[60.0, 0.0], [70.0, 0.0], [80.0, 0.0]]), is_intersection=True)
    crossing = Lane("crossing", np.array([[70.0, -10.0], [70.0, 10.0]]), is_intersection=True)
    exit_lane = Lane("exit", np.array([[80.0, 0.0], [200.0, 0.0]]))
    crosswalk = Crosswalk("cw", np.array([[56.0, -6.0], [59.0, -6.0], [59.0, 8.0], [56.0, 8.0]]))
    light = TrafficLight("tl", (60.5, -2.5), ("approach",))
    return RoadMap(lanes=(approach, left, junction, crossing, exit_lane), crosswalks=(crosswalk,),
                   traffic_lights=(light,))


def grid_map(n_blocks: int = 10, block_m: float = 100.0, junction_m: float = 20.0) -> RoadMap:
    """A town of (n_blocks + 1)^2 junctions: two-way roads on a grid, a light and a crosswalk per approach.

    Right-hand traffic: the lane heading +x lies at y = road - 1.75 m. Each junction has four straight
    intersection lanes; each approach lane ends at its junction's edge, where its light stands.
    """
    half, offset = junction_m / 2, 1.75
    lanes, crosswalks, lights = [], [], []
    corners = np.arange(n_blocks + 1) * block_m
    for i, a in enumerate(corners):
        for j, b in enumerate(corners):
            for axis in (0, 1):
                for sign in (1.0, -1.0):  # direction of travel along `axis`
                    lateral = -sign * offset
                    def xy(along: np.ndarray, across: float, axis: int = axis) -> np.ndarray:
                        return np.column_stack([along, np.full_like(along, across)])[:, [axis, 1 - axis]]
                    centre_along, centre_across = (a, b) if axis == 0 else (b, a)
                    through = centre_along + sign * np.arange(-half, half + 0.1, 2.0)
                    lanes.append(Lane(f"j{i}_{j}_{axis}_{sign:+.0f}", xy(through, centre_across + lateral), True))
                    if (centre_along - sign * block_m) in corners:
                        approach = centre_along - sign * np.arange(block_m - half, half - 0.1, -5.0)
                        lane_id = f"r{i}_{j}_{axis}_{sign:+.0f}"
                        lanes.append(Lane(lane_id, xy(approach, centre_across + lateral)))
                        stop = centre_along - sign * half
                        pole = xy(np.array([stop]), centre_across + 2.5 * lateral)[0]
                        lights.append(TrafficLight(f"tl_{lane_id}", (float(pole[0]), float(pole[1])), (lane_id,)))
                        walk = xy(np.array([stop - sign * 4.0, stop - sign * 1.0, stop - sign * 1.0,
                                            stop - sign * 4.0]), 0.0)
                        across = np.array([-6.0, -6.0, 6.0, 6.0]) + centre_across
                        walk[:, 1 - axis] = across
                        crosswalks.append(Crosswalk(f"cw_{lane_id}", walk))
    return RoadMap(lanes=tuple(lanes), crosswalks=tuple(crosswalks), traffic_lights=tuple(lights))


def busy_log(n_frames: int = 200, n_agents: int = 100, seed: int = 0) -> Log:
    """A 10 Hz drive along a `grid_map` road through two junctions, with `n_agents` agents around it.

    Vehicles follow the ego's road in both lanes at random offsets and speeds (some drifting across
    lanes); pedestrians and cyclists wander near the road; one more vehicle cuts in.
    """
    rng = np.random.default_rng(seed)
    poses = ego_from_speeds(np.full(n_frames, 10.0), y_m=-1.75)
    poses[:, 0] += 20.0
    t = t_s(np.arange(n_frames))
    classes = rng.choice(["vehicle", "pedestrian", "cyclist"], size=n_agents, p=[0.6, 0.3, 0.1])
    agents = {}
    for k, cls in enumerate(classes):
        if cls == "vehicle":
            direction = rng.choice([1.0, -1.0], p=[0.7, 0.3])
            lane_y = -1.75 * direction + rng.choice([0.0, -3.5 * direction], p=[0.7, 0.3])
            x0, speed = rng.uniform(-20.0, 260.0), direction * rng.uniform(5.0, 14.0)
            drift = rng.choice([0.0, rng.normal(0.0, 0.6)], p=[0.8, 0.2])  # [m/s] lane changes
            world = np.column_stack([x0 + speed * t, lane_y + drift * t])
            heading = 0.0 if direction > 0 else np.pi
        else:
            start = rng.uniform([0.0, -15.0], [240.0, 15.0])
            velocity = rng.normal(0.0, 1.5 if cls == "pedestrian" else 4.0, size=2)
            world = start + t[:, None] * velocity
            heading = float(np.arctan2(velocity[1], velocity[0]))
        agents[f"a{k}"] = world_agent(str(cls), world, poses, heading)
    # And one scripted cut-in: from the lane to the ego's left into its lane, 15 m ahead, at 5 - 7 s.
    cutter = np.column_stack([poses[:, 0] + 15.0, np.interp(t, [5.0, 7.0], [1.75, -1.75])])
    agents["cutter"] = world_agent("vehicle", cutter, poses)
    return make_log(poses, agents, grid_map(), log_id="busy")

"""One synthetic drive: the world a seed gives (roads, lights, scene, agents) and its simulation at 10 Hz.

What the log is built around comes from scripts.draw_script; every random choice draws from its own
stream of the seed (np.random.SeedSequence(seed).spawn), so a knob that only changes labels, lidar or
conditions leaves the traffic exactly as it was: the same seed with another label-error rate gives the
same drive with other label errors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from andon.errors import BadInput
from andon.scenarios.records import RoadMap
from andon.simulation.fleet import ego as ego_script
from andon.simulation.fleet.agents import EGO, AgentState, Population, initial_state, kinematics, step
from andon.simulation.fleet.config import FRAME_PERIOD_NS, FRAME_RATE_HZ, MAX_DURATION_S, FleetConfig
from andon.simulation.fleet.roads import RoadNetwork, build_network
from andon.simulation.fleet.scene import StaticScene, build_scene
from andon.simulation.fleet.scripts import draw_script
from andon.simulation.fleet.signals import SignalPlan, draw_plan
from andon.simulation.fleet.spawn import populate

T0_NS = 1_600_000_000 * 10**9  # the first log's first frame; each seed starts a minute later than the last
SEED_SPACING_NS = 60 * 10**9
SEED_WRAP = 1_000_000  # keeps timestamps well inside int64 for any seed
STREAMS = ("network", "scene", "ego", "agents", "labels", "lidar")
RED_LIGHT_LEAD_S = 1.0  # red-light starts: the light turned red this long before the warm-up began
SCENE_MARGIN_M = 50.0  # scene boxes kept beyond the lidar's range of the logged path


@dataclass(frozen=True, slots=True, eq=False)
class CutIn:
    track_id: str
    t_start_ns: int  # the lane change starts (the vehicle is still in the adjacent lane)
    t_end_ns: int  # and ends (it is in the ego's lane)


@dataclass(frozen=True, slots=True, eq=False)
class Drive:
    """The true world of a log, frame by frame: what labels, lidar and ground truth are made from."""

    seed: int
    timestamps_ns: np.ndarray  # (F,) int64
    ego_poses: np.ndarray  # (F, 4) x, y, z, yaw in the world frame
    boxes_world: np.ndarray  # (F, N, 7) every agent, ego (index 0) included
    velocity_world_mps: np.ndarray  # (F, N, 2)
    population: Population
    network: RoadNetwork
    road_map: RoadMap
    scene: StaticScene  # cropped to the logged path's surroundings
    conditions: dict[str, bool]  # {"night", "rain"}
    heavy_traffic: bool
    cut_ins: tuple[CutIn, ...]


def streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per concern, all from the log's seed."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)}


def n_frames(duration_s: float) -> int:
    return max(2, int(round(duration_s * FRAME_RATE_HZ)))


def check_seed_and_duration(seed: int, duration_s: float) -> None:
    """Raises BadInput for a negative or non-integer seed or a duration outside (0, MAX_DURATION_S]."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise BadInput(f"seed {seed!r} must be a non-negative integer")
    if not (isinstance(duration_s, int | float) and 0 < duration_s <= MAX_DURATION_S):
        raise BadInput(f"duration {duration_s!r} s must be a number in (0, {MAX_DURATION_S:g}]")


def simulate(seed: int, duration_s: float, config: FleetConfig) -> Drive:
    """Build the world of `seed` and run it for `duration_s` after `config.warmup_s` of warm-up."""
    check_seed_and_duration(seed, duration_s)
    rng = streams(int(seed))
    net = build_network(config.grid_size, config.block_m, config.stub_m, config.arterial_speed_mps,
                        config.local_speed_mps)
    road_map = net.road_map()
    script = draw_script(seed, config)
    plan = _signal_plan(net, config, rng["network"])
    scene = build_scene(net, road_map, rng["scene"])
    conditions = {"night": script.night, "rain": script.rain}
    script_rng = rng["ego"]
    start = ego_script.choose_start(net, script, script_rng)
    if start.waiting_at is not None:
        plan = plan.turning_red_at(start.waiting_at, start.d % 2, -config.warmup_s - RED_LIGHT_LEAD_S)
    frames = n_frames(duration_s)
    dt_s = 1.0 / FRAME_RATE_HZ
    warmup_steps = int(round(config.warmup_s * FRAME_RATE_HZ))
    horizon_s = (warmup_steps + frames) * dt_s
    population, speed0, cutter = populate(net, start, config, horizon_s, script.heavy_traffic, script.cut_in,
                                          rng["agents"])
    latest_s = (frames - 1) * dt_s - config.cut_in_duration_s
    # A random earliest time, so that cut-ins do not all start with the log.
    earliest_s = round(float(script_rng.uniform(0.0, min(2.0, max(latest_s, 0.0)))), 1)
    cut_in = None if cutter is None else ego_script.CutInScript(agent=cutter, earliest_s=earliest_s, latest_s=latest_s)
    state = initial_state(population, np.zeros(population.n), speed0, -warmup_steps * dt_s, config.cut_in_duration_s)
    state, boxes, velocity = _run(population, state, plan, cut_in, net.nodes_xy(), warmup_steps, frames, dt_s)
    t0_ns = T0_NS + (int(seed) % SEED_WRAP) * SEED_SPACING_NS
    timestamps = t0_ns + np.arange(frames, dtype=np.int64) * FRAME_PERIOD_NS
    ego_poses = np.column_stack([boxes[:, EGO, 0], boxes[:, EGO, 1], np.zeros(frames), boxes[:, EGO, 6]])
    cut_ins = ()
    if cutter is not None and np.isfinite(state.lane_change_start_s[cutter]):
        start_frame = int(round(state.lane_change_start_s[cutter] * FRAME_RATE_HZ))
        end_frame = start_frame + int(round(config.cut_in_duration_s * FRAME_RATE_HZ))
        cut_ins = (CutIn(population.track_ids[cutter], int(timestamps[start_frame]), int(timestamps[end_frame])),)
    reach = max(config.max_range_m, config.label_range_m) + SCENE_MARGIN_M
    return Drive(seed=int(seed), timestamps_ns=timestamps, ego_poses=ego_poses, boxes_world=boxes,
                 velocity_world_mps=velocity, population=population, network=net, road_map=road_map,
                 scene=scene.near(ego_poses[::5, :2], reach), conditions=conditions, heavy_traffic=script.heavy_traffic,
                 cut_ins=cut_ins)


def _signal_plan(net: RoadNetwork, config: FleetConfig, rng: np.random.Generator) -> SignalPlan:
    i, j = np.divmod(np.arange(net.n_nodes), net.grid_size)
    # Travel along the arterial row (axis 0) or column (axis 1) gets the long greens where it crosses
    # a local road; where the arterials cross, neither is favoured.
    long_green = np.column_stack([(j == net.arterial) & (i != net.arterial), (i == net.arterial) & (j != net.arterial)])
    return draw_plan(config.green_min_s, config.green_max_s, long_green, config.arterial_green_scale,
                     config.yellow_s, config.all_red_s, rng)


def _run(population: Population, state: AgentState, plan: SignalPlan, cut_in: ego_script.CutInScript | None,
         nodes_xy_m: np.ndarray, warmup_steps: int, frames: int, dt_s: float
         ) -> tuple[AgentState, np.ndarray, np.ndarray]:
    """Step the world through the warm-up and the log; returns (final state, boxes (F, N, 7), velocities (F, N, 2))."""
    boxes = np.empty((frames, population.n, 7))
    velocity = np.empty((frames, population.n, 2))
    for k in range(warmup_steps + frames):  # the loop is over time; every step moves all agents at once
        kin = kinematics(population, state)
        frame = k - warmup_steps
        if frame >= 0:
            boxes[frame] = kin.boxes(population.size_m)
            velocity[frame] = kin.velocity_mps
            state = ego_script.maybe_cut_in(cut_in, population, state, kin, nodes_xy_m)
        # Time from the step count, not by summing dt, so frame times are exact multiples of the period.
        state = replace(step(population, state, plan.states(state.t_s), dt_s), t_s=(k + 1 - warmup_steps) * dt_s)
    return state, boxes, velocity

"""Agents and their motion: every agent is updated at once per step, with numpy, no per-agent loop.

Every agent follows its own path (paths.PathSet) with an arc length s and a speed v, and controls its
speed with the Intelligent Driver Model (IDM) against the nearest obstacle in its corridor: the
closest agent ahead whose footprint overlaps the strip its own width in front of it (pedestrians on a
crosswalk and vehicles on it included, oncoming traffic excluded), or the stop line (for pedestrians
the kerb) of a signal that is not green. Two agents each in the other's way (crossing paths) do not
both wait: the nearer goes first. Parked vehicles never move. Yellow: an agent that can still stop comfortably stops, one that cannot goes on,
and that decision holds until green (no dithering). A lane change (the scripted cut-in) shifts an
agent sideways from its path by a raised cosine over its duration.

Agent 0 is the ego.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from andon.simulation.fleet.paths import PathSet
from andon.simulation.fleet.signals import GREEN

VEHICLE, PEDESTRIAN, CYCLIST, PARKED = 0, 1, 2, 3
KIND_CLASSES = ("vehicle", "pedestrian", "cyclist", "vehicle")  # andon class of each kind
EGO = 0
MAX_DECEL_MPS2 = 9.0  # the hardest braking IDM may ask for (an emergency stop)
CORRIDOR_MARGIN_M = 0.05  # lateral clearance below which an agent ahead is in the way
LOOKAHEAD_M = 80.0
STOP_SHORT_M = 1.0  # agents stop this far before a stop line or kerb
ONCOMING_COS = -0.7  # agents heading against us (cos of heading difference below this) are not followed
CROSSING_COS = 0.7  # agents whose heading differs more than ~45 degrees from ours cross our path
CROSSING_LOOKAHEAD_S = 2.0  # crossing agents are obstacles where they are and where they will be
STILL_MPS = 0.1  # slower than this counts as standing still


@dataclass(frozen=True, slots=True, eq=False)
class Population:
    """What stays fixed about the agents of a log: kinds, sizes, driver parameters, paths and stop lines."""

    kind: np.ndarray  # (N,) VEHICLE | PEDESTRIAN | CYCLIST | PARKED
    size_m: np.ndarray  # (N, 3) length, width, height
    reflectivity: np.ndarray  # (N,)
    desired_mps: np.ndarray  # (N,) speed wanted on a free road (capped by the path's allowed speed)
    accel_mps2: np.ndarray  # (N,) IDM maximum acceleration
    brake_mps2: np.ndarray  # (N,) IDM comfortable deceleration
    headway_s: np.ndarray  # (N,) IDM time headway
    min_gap_m: np.ndarray  # (N,) IDM standstill gap
    paths: PathSet
    stop_s_m: np.ndarray  # (N, P) stop lines along each path, +inf padded
    stop_signal: np.ndarray  # (N, P) their signal groups, -1 padded
    track_ids: tuple[str, ...]

    @property
    def n(self) -> int:
        return len(self.kind)

    @property
    def classes(self) -> np.ndarray:
        return np.asarray(KIND_CLASSES)[self.kind]


@dataclass(frozen=True, slots=True, eq=False)
class AgentState:
    t_s: float
    s_m: np.ndarray  # (N,) arc length along the path
    v_mps: np.ndarray  # (N,) speed along the path
    committed: np.ndarray  # (N, P) bool: decided to stop at this stop line during this red/yellow
    lane_change_start_s: np.ndarray  # (N,) +inf where no lane change was triggered
    lane_change_m: np.ndarray  # (N,) lateral shift of the lane change (+ left)
    lane_change_s: float  # duration of every lane change


@dataclass(frozen=True, slots=True, eq=False)
class Kinematics:
    """World-frame pose and motion of every agent at one instant."""

    xy_m: np.ndarray  # (N, 2) centre
    yaw_rad: np.ndarray  # (N,)
    velocity_mps: np.ndarray  # (N, 2) over the ground
    direction: np.ndarray  # (N, 2) unit heading of the path (not of the body during a lane change)

    def boxes(self, size_m: np.ndarray) -> np.ndarray:
        """(N, 7) world boxes standing on the ground."""
        return np.column_stack([self.xy_m, 0.5 * size_m[:, 2], size_m, self.yaw_rad])


def initial_state(population: Population, s_m: np.ndarray, v_mps: np.ndarray, t_s: float,
                  lane_change_s: float) -> AgentState:
    n = population.n
    return AgentState(t_s=t_s, s_m=np.asarray(s_m, dtype=np.float64), v_mps=np.asarray(v_mps, dtype=np.float64),
                      committed=np.zeros(population.stop_s_m.shape, dtype=bool),
                      lane_change_start_s=np.full(n, np.inf), lane_change_m=np.zeros(n),
                      lane_change_s=lane_change_s)


def lateral_offset(state: AgentState) -> tuple[np.ndarray, np.ndarray]:
    """(offset [m], offset rate [m/s]) of each agent from its path: a raised cosine over the lane change."""
    phase = np.clip((state.t_s - state.lane_change_start_s) / state.lane_change_s, 0.0, 1.0)
    offset = state.lane_change_m * 0.5 * (1.0 - np.cos(np.pi * phase))
    changing = (phase > 0.0) & (phase < 1.0)
    rate = np.where(changing, state.lane_change_m * 0.5 * np.pi / state.lane_change_s * np.sin(np.pi * phase), 0.0)
    return offset, rate


def kinematics(population: Population, state: AgentState) -> Kinematics:
    """Every agent's pose and velocity: its path's point at s, shifted sideways by any lane change."""
    xy, direction, _ = population.paths.sample(state.s_m)
    left = np.column_stack([-direction[:, 1], direction[:, 0]])
    offset, rate = lateral_offset(state)
    yaw = np.arctan2(direction[:, 1], direction[:, 0]) + np.arctan2(rate, np.maximum(state.v_mps, 1.0))
    yaw = np.pi - np.mod(np.pi - yaw, 2 * np.pi)  # into (-pi, pi]
    velocity = state.v_mps[:, None] * direction + rate[:, None] * left
    return Kinematics(xy_m=xy + offset[:, None] * left, yaw_rad=yaw, velocity_mps=velocity, direction=direction)


def step(population: Population, state: AgentState, signal_states: np.ndarray, dt_s: float) -> AgentState:
    """Advance every agent by dt_s: IDM against the nearest obstacle ahead, ballistic update."""
    kin = kinematics(population, state)
    _, _, allowed = population.paths.sample(state.s_m)
    v = state.v_mps
    length = population.size_m[:, 0]
    # Stop lines whose light is not green: a barrier unless the agent is too close to stop (then it goes).
    dist = population.stop_s_m - (state.s_m + 0.5 * length)[:, None]
    valid = population.stop_signal >= 0
    not_green = valid & (signal_states[np.maximum(population.stop_signal, 0)] != GREEN)
    can_stop = dist >= (v**2 / (2.0 * population.brake_mps2))[:, None]
    barrier = not_green & (dist > -STOP_SHORT_M) & (state.committed | can_stop)
    stop_gap = np.min(np.where(barrier, dist - STOP_SHORT_M + population.min_gap_m[:, None], np.inf), axis=1)
    lead_gap, lead_v = _leaders(population, kin, v)
    use_stop = stop_gap < lead_gap
    gap = np.maximum(np.where(use_stop, stop_gap, lead_gap), 0.1)
    v_lead = np.where(use_stop, 0.0, lead_v)
    v0 = np.maximum(np.minimum(population.desired_mps, allowed), 0.1)
    a, b = population.accel_mps2, population.brake_mps2
    s_star = population.min_gap_m + np.maximum(0.0, v * population.headway_s + v * (v - v_lead) / (2 * np.sqrt(a * b)))
    accel = a * (1.0 - (v / v0) ** 4 - np.where(np.isfinite(gap), (s_star / gap) ** 2, 0.0))
    accel = np.clip(accel, -MAX_DECEL_MPS2, a)
    moving = population.kind != PARKED
    v_new = np.maximum(v + accel * dt_s, 0.0)
    # Ballistic update; an agent that stops within the step travels only its stopping distance.
    advance = np.where(v + accel * dt_s >= 0.0, v * dt_s + 0.5 * accel * dt_s**2, v**2 / (2.0 * np.maximum(-accel, 1e-9)))
    return replace(state, t_s=state.t_s + dt_s,
                   s_m=np.where(moving, state.s_m + np.maximum(advance, 0.0), state.s_m),
                   v_mps=np.where(moving, v_new, 0.0),
                   committed=barrier)


def _leaders(population: Population, kin: Kinematics, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gap to and speed of the nearest agent in each moving agent's corridor: (N,), (N,)."""
    d = kin.xy_m[None, :, :] - kin.xy_m[:, None, :]  # [i, j] = j - i
    hx, hy = kin.direction[:, 0], kin.direction[:, 1]
    along = d[..., 0] * hx[:, None] + d[..., 1] * hy[:, None]
    across = d[..., 1] * hx[:, None] - d[..., 0] * hy[:, None]
    yaw = kin.yaw_rad
    cos = np.cos(yaw[None, :] - np.arctan2(hy, hx)[:, None])
    sin = np.sqrt(np.maximum(1.0 - cos**2, 0.0))  # |sin| of the heading difference
    l_j, w_j = population.size_m[:, 0][None, :], population.size_m[:, 1][None, :]
    half_along_j = 0.5 * (l_j * np.abs(cos) + w_j * sin)
    half_across_j = 0.5 * (l_j * sin + w_j * np.abs(cos))
    follows = population.kind != PARKED
    reach_across = 0.5 * population.size_m[:, 1][:, None] + half_across_j + CORRIDOR_MARGIN_M
    in_way = (np.abs(across) < reach_across) & (along > 0.0)
    now = in_way.copy()
    # Crossing traffic is seen where it will be in a moment too, so that nobody noses into the path of
    # an agent still clearing a junction or stepping onto a crosswalk.
    ahead_xy = kin.xy_m + CROSSING_LOOKAHEAD_S * kin.velocity_mps
    d_soon = ahead_xy[None, :, :] - kin.xy_m[:, None, :]
    along_soon = d_soon[..., 0] * hx[:, None] + d_soon[..., 1] * hy[:, None]
    across_soon = d_soon[..., 1] * hx[:, None] - d_soon[..., 0] * hy[:, None]
    crossing = np.abs(cos) < CROSSING_COS
    in_way |= crossing & (along > 0.0) & (along_soon > 0.0) & (np.sign(across) != np.sign(across_soon))
    in_way |= crossing & (along_soon > 0.0) & (np.abs(across_soon) < reach_across)
    along = np.where(crossing & in_way, np.minimum(np.maximum(along, 0.0), np.maximum(along_soon, 0.0)), along)
    in_way &= (cos > ONCOMING_COS) & follows[:, None]
    np.fill_diagonal(in_way, False)
    # Two agents each in the other's way would wait for each other forever. One that stands still goes
    # first (its yielding would change nothing), then the one already in the other's path, then the
    # one nearer the other.
    mutual = in_way & in_way.T
    index = np.arange(population.n)
    nearer = (along < along.T) | ((along == along.T) & (index[:, None] < index[None, :]))
    blocking = now.T & ~now  # i stands in j's path, j not (yet) in i's
    still = v < STILL_MPS
    outranks = still[:, None] & ~still[None, :]
    first = outranks | (~outranks.T & (blocking | (nearer & ~blocking.T)))
    in_way &= ~(mutual & first)
    gap = along - 0.5 * population.size_m[:, 0][:, None] - half_along_j
    gap = np.where(in_way & (gap < LOOKAHEAD_M), gap, np.inf)
    leader = np.argmin(gap, axis=1)
    rows = np.arange(population.n)
    lead_v = v[leader] * cos[rows, leader]
    return gap[rows, leader], lead_v

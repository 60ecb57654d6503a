"""Rule-based planner of the simulator: follow the route, keep an IDM gap, yield, stop at red lights.

Given the ego's pose and speed, its route (andon.models.route.Route), the stop lines of red (and
yellow) lights and the predicted positions of other agents, `Planner.plan` returns the ego's
trajectory over `horizon_s` at `step_s`: positions along the route, speeds, accelerations, headings.

Speed follows the Intelligent Driver Model (Treiber, Hennecke & Helbing 2000):

    a = a_max * [1 - (v / v_desired)^delta - (s* / gap)^2],  s* = s0 + v * T + v * dv / (2 sqrt(a_max * b))

with s0 = `min_gap_m`, T = `time_headway_s`, b = `comfortable_decel_mps2`; braking is capped at
`max_decel_mps2`. The leader is the nearest obstacle ahead on the route:

- an agent occupies the ego's corridor at a predicted step when its centre lies within
  `lane_half_width_m + corridor_margin_m` of the route and ahead of the ego's centre. An agent that is in
  the corridor now at or behind the ego's front follows the ego and is never an obstacle (it yields). At each step,
  an agent is an obstacle at the nearest station it occupies from that step to the end of its
  prediction: a car ahead is followed where it is, a pedestrian who will cross is yielded to where
  it will cross, from now until it has left the corridor. Its speed along the route is the rate of
  change of that station (zero while it is still to come). Vectorised over agents and steps.
- a red light's stop line is a standing obstacle with gap s0 = `stop_line_margin_m`; a yellow one
  only when the ego can still stop at comfortable deceleration.
The rollout integrates the IDM over the horizon (a loop over time steps on Python floats, which is
faster than numpy for scalars). A lateral offset from the route decays exponentially with
`lateral_time_constant_s`, so the plan rejoins the lane smoothly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.models.route import Route

LOOKAHEAD_EXTRA_M = 40.0  # beyond the farthest the ego can drive in the horizon, obstacles still count


@dataclass
class PlannerConfig:
    """The planner's parameters (Hydra schema of configs/model/planner.yaml; not frozen).

    Attributes:
        desired_speed_mps: target speed on a free road [m/s].
        time_headway_s: IDM time gap to the leader [s].
        min_gap_m: IDM gap to a standing leader [m] (bumper to bumper).
        max_accel_mps2: IDM maximum acceleration [m/s²].
        comfortable_decel_mps2: IDM comfortable deceleration [m/s²].
        max_decel_mps2: hardest braking [m/s²].
        accel_exponent: IDM delta.
        lane_half_width_m: half the lane width [m].
        corridor_margin_m: added to the half width: how close to the route an agent's centre blocks it [m].
        ego_length_m: the ego's length [m].
        agent_length_m: length of a predicted agent whose size is not given [m].
        stop_line_margin_m: how far before a stop line the ego's front stops [m].
        horizon_s: plan length [s].
        step_s: plan step [s].
        lateral_time_constant_s: time constant of the decay of an offset from the route [s].
    """

    desired_speed_mps: float = 12.0
    time_headway_s: float = 1.5
    min_gap_m: float = 2.0
    max_accel_mps2: float = 1.5
    comfortable_decel_mps2: float = 2.0
    max_decel_mps2: float = 8.0
    accel_exponent: float = 4.0
    lane_half_width_m: float = 1.875
    corridor_margin_m: float = 1.0
    ego_length_m: float = 4.6
    agent_length_m: float = 4.5
    stop_line_margin_m: float = 1.0
    horizon_s: float = 5.0
    step_s: float = 0.1
    lateral_time_constant_s: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise BadInput(f"planner.{f.name}={value!r} must be a finite number")
            if f.name not in ("corridor_margin_m", "stop_line_margin_m") and value <= 0:
                raise BadInput(f"planner.{f.name}={value!r} must be positive")
            if value < 0:
                raise BadInput(f"planner.{f.name}={value!r} must be 0 or more")
        if self.step_s > self.horizon_s:
            raise BadInput(f"planner.step_s={self.step_s} must not exceed planner.horizon_s={self.horizon_s}")


@dataclass(frozen=True, slots=True, eq=False)
class PlannedTrajectory:
    """The plan: T + 1 states from now (index 0) to the horizon.

    Attributes:
        times_s: (T+1,) [s] from now.
        xy_m: (T+1, 2) world positions [m].
        yaw_rad: (T+1,) headings [rad].
        speed_mps: (T+1,) speeds [m/s].
        accel_mps2: (T+1,) accelerations [m/s²] applied from each state to the next (last repeats).
        station_m: (T+1,) stations along the route [m].
        leader: index of the agent followed or yielded to at the start (-1 for none).
        stopping_for_light: whether a red (or yellow) stop line constrains the plan.
    """

    times_s: np.ndarray
    xy_m: np.ndarray
    yaw_rad: np.ndarray
    speed_mps: np.ndarray
    accel_mps2: np.ndarray
    station_m: np.ndarray
    leader: int
    stopping_for_light: bool


class Planner:
    """IDM lane follower with yielding and red-light stops (module docstring)."""

    def __init__(self, config: PlannerConfig | None = None) -> None:
        self.config = config if config is not None else PlannerConfig()
        if not isinstance(self.config, PlannerConfig):
            raise BadInput(f"Planner needs a PlannerConfig, got {type(self.config).__name__}")
        cfg = self.config
        self._steps = int(math.floor(cfg.horizon_s / cfg.step_s + 1e-9))
        self._times = np.arange(self._steps + 1) * cfg.step_s
        self._decay = np.exp(-self._times / cfg.lateral_time_constant_s)
        self._index_cache: dict[tuple[float | None, int], np.ndarray] = {}
        # No leader: rears at inf, speeds 0 (read only by the rollout, so one pair serves every plan).
        self._no_leader = (np.full(self._steps + 1, np.inf), np.zeros(self._steps + 1), -1)

    def fingerprint_params(self) -> dict[str, Any]:
        """The config as plain JSON values."""
        return dataclasses.asdict(self.config)

    def plan(self, ego_xy_m: np.ndarray, ego_yaw_rad: float, ego_speed_mps: float, route: Route | np.ndarray,
             agents_xy_m: np.ndarray | None = None, agents_step_s: float | None = None,
             agents_length_m: np.ndarray | float | None = None, stop_lines_m: np.ndarray | None = None,
             yellow_lines_m: np.ndarray | None = None, desired_speed_mps: float | None = None) -> PlannedTrajectory:
        """Plan the ego's next `horizon_s`.

        Args:
            ego_xy_m: (2,) the ego's world position [m] (the centre of its box).
            ego_yaw_rad: its heading [rad] (the plan follows the route; kept for the caller's checks).
            ego_speed_mps: its speed [m/s].
            route: a Route, or (K, 2) world points to follow.
            agents_xy_m: (A, S, 2) predicted world positions of other agents at 0, agents_step_s, 2 * agents_step_s,
                ... (index 0 is now); NaN where unknown.
            agents_step_s: time between predicted positions [s] (needed with agents_xy_m when S > 1).
            agents_length_m: (A,) or one length [m] of the agents along the route (default agent_length_m).
            stop_lines_m: (L, 2) world points of stop lines of red lights on the route.
            yellow_lines_m: (L, 2) stop lines of yellow lights: the ego stops only if it can do so comfortably.
            desired_speed_mps: overrides the config's target speed (e.g. the lane's speed limit).

        Raises:
            BadInput: for a bad shape, a negative speed or a missing agents_step_s.
        """
        cfg = self.config
        route = route if isinstance(route, Route) else Route.from_polyline(route)
        ego = np.asarray(ego_xy_m, dtype=np.float64).reshape(-1)
        x, y = ego.tolist() if ego.shape == (2,) else (math.nan, math.nan)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise BadInput(f"ego_xy_m must be 2 finite numbers (x, y) [m], got {ego_xy_m!r}")
        if not (math.isfinite(ego_speed_mps) and ego_speed_mps >= 0):
            raise BadInput(f"ego_speed_mps={ego_speed_mps!r} must be a finite speed >= 0")
        v_desired = cfg.desired_speed_mps if desired_speed_mps is None else float(desired_speed_mps)
        if not v_desired > 0:
            raise BadInput(f"desired_speed_mps={desired_speed_mps!r} must be positive")
        s0, d0, _ = route.project_point(x, y)
        reach_m = max(ego_speed_mps, v_desired) * cfg.horizon_s + LOOKAHEAD_EXTRA_M
        window = (s0 - cfg.ego_length_m, s0 + reach_m)

        rear, lead_speed, leader = self._agent_obstacles(route, s0, window, agents_xy_m, agents_step_s,
                                                         agents_length_m)
        stop_m = self._stop_station(route, s0, ego_speed_mps, window, stop_lines_m, yellow_lines_m)
        station, speed, accel = self._rollout(s0, float(ego_speed_mps), v_desired, rear, lead_speed, stop_m)

        xy, direction, yaw = route.poses_at(station)
        if d0 != 0.0:
            offset = d0 * self._decay
            xy = xy + offset[:, None] * np.column_stack([-direction[:, 1], direction[:, 0]])
        return PlannedTrajectory(times_s=self._times.copy(), xy_m=xy, yaw_rad=yaw, speed_mps=speed,
                                 accel_mps2=accel, station_m=station, leader=leader,
                                 stopping_for_light=math.isfinite(stop_m))

    # ----- obstacles ------------------------------------------------------------------------------
    def _agent_obstacles(self, route: Route, s0: float, window: tuple[float, float], agents_xy_m: np.ndarray | None,
                         agents_step_s: float | None, agents_length_m: np.ndarray | float | None
                         ) -> tuple[np.ndarray, np.ndarray, int]:
        """Per plan step: the station of the leader's rear [m] (inf: none), its speed along the route, and
        the leader's index at the start (-1: none). Vectorised over agents and predicted steps."""
        cfg = self.config
        if agents_xy_m is None:
            return self._no_leader
        agents = np.asarray(agents_xy_m, dtype=np.float64)
        if agents.ndim == 2 and agents.shape[-1] == 2:
            agents = agents[:, None, :]  # positions now only: standing obstacles
        if agents.ndim != 3 or agents.shape[-1] != 2:
            raise BadInput(f"agents_xy_m must be (A, S, 2) predicted positions, got {agents.shape}")
        n_agents, n_pred = agents.shape[:2]
        if n_agents == 0:
            return self._no_leader
        if n_pred > 1 and not (agents_step_s is not None and agents_step_s > 0):
            raise BadInput(f"agents_step_s={agents_step_s!r}: give the time between predicted positions [s]")
        if agents_length_m is None:
            lengths = np.full(n_agents, cfg.agent_length_m)
        else:
            lengths = np.asarray(agents_length_m, dtype=np.float64)
            if lengths.shape != (n_agents,):
                lengths = np.broadcast_to(lengths, (n_agents,))

        corridor_m = cfg.lane_half_width_m + cfg.corridor_margin_m
        projection = route.project(agents.reshape(-1, 2), *window)  # NaN positions compare False below
        station = projection.station_m.reshape(n_agents, n_pred)
        distance = projection.distance_m.reshape(n_agents, n_pred)
        inside = (distance < corridor_m) & (station > s0) & (station < window[1])
        # An agent in the ego's corridor now, at or behind the ego's front, follows the ego: it must yield to
        # the ego, not the other way round, so its predicted advance along the lane is no obstacle.
        inside &= ~((distance[:, :1] < corridor_m) & (station[:, :1] <= s0 + 0.5 * cfg.ego_length_m))
        # Only agents ever inside can lead (the others' rears stay at inf); a length that is not finite
        # keeps its agent too, so that the arg-min below sees exactly what it would over every agent.
        relevant = inside.any(axis=1)
        finite = np.isfinite(lengths)
        if not finite.all():
            relevant |= ~finite
        rows = relevant.nonzero()[0]
        if len(rows) == 0:
            return self._no_leader
        occupied = np.where(inside[rows], station[rows], np.inf)
        # From each step on, the nearest station the agent will still occupy (reverse running minimum).
        ahead = np.minimum.accumulate(occupied[:, ::-1], axis=1)[:, ::-1]
        speed = np.zeros(ahead.shape)
        if n_pred > 1:
            # The rate of change of `ahead`, where it stays finite (`ahead` never decreases along a row, so
            # the change is >= 0; where the agent is no longer ahead the speed stays 0).
            np.subtract(ahead[:, 1:], ahead[:, :-1], out=speed[:, :-1], where=ahead[:, 1:] < np.inf)
            speed[:, :-1] /= agents_step_s
            speed[:, -1] = speed[:, -2]
        index = self._prediction_index(agents_step_s, n_pred)
        rears = ahead - 0.5 * lengths[rows, None]  # (R, S) station of each agent's rear
        leader = rears.argmin(axis=0)[index]  # (T+1,) the leader at each plan step
        rear = rears[leader, index]
        return rear, speed[leader, index], int(rows[leader[0]]) if math.isfinite(rear[0]) else -1

    def _prediction_index(self, agents_step_s: float | None, n_pred: int) -> np.ndarray:
        """Predicted step in force at each plan step: the latest at or before it (cached per grid)."""
        key = (agents_step_s, n_pred)
        if key not in self._index_cache:
            index = np.zeros(self._steps + 1, dtype=np.int64) if n_pred == 1 else \
                np.minimum((self._times / agents_step_s + 1e-9).astype(np.int64), n_pred - 1)
            self._index_cache[key] = index
        return self._index_cache[key]

    def _stop_station(self, route: Route, s0: float, speed_mps: float, window: tuple[float, float],
                      red: np.ndarray | None, yellow: np.ndarray | None) -> float:
        """Station of the nearest stop line ahead of the ego's front that binds (inf: none)."""
        cfg = self.config
        front = s0 + 0.5 * cfg.ego_length_m
        corridor_m = cfg.lane_half_width_m + cfg.corridor_margin_m
        best = math.inf
        for lines, optional in ((red, False), (yellow, True)):
            if lines is None:
                continue
            points = np.asarray(lines, dtype=np.float64).reshape(-1, 2)
            if len(points) == 0:
                continue
            projection = route.project(points, *window)
            on_route = (projection.distance_m < corridor_m) & (projection.station_m > front)
            if not on_route.any():
                continue
            station = float(projection.station_m[on_route].min())
            gap = station - front - cfg.stop_line_margin_m
            if optional and (gap <= 0 or speed_mps * speed_mps / (2 * gap) > cfg.comfortable_decel_mps2):
                continue  # too late to stop comfortably for a yellow: go through
            best = min(best, station)
        return best

    # ----- IDM rollout ----------------------------------------------------------------------------
    def _rollout(self, s0: float, v0: float, v_desired: float, rear: np.ndarray, lead_speed: np.ndarray,
                 stop_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Integrate the IDM over the horizon; stations, speeds and accelerations (T+1,)."""
        cfg = self.config
        dt, a_max, b_max = cfg.step_s, cfg.max_accel_mps2, cfg.max_decel_mps2
        delta, headway, s_min = cfg.accel_exponent, cfg.time_headway_s, cfg.min_gap_m
        two_sqrt_ab = 2.0 * math.sqrt(cfg.max_accel_mps2 * cfg.comfortable_decel_mps2)
        half = 0.5 * cfg.ego_length_m
        stop_line = stop_m - cfg.stop_line_margin_m  # where the ego's front stops, with zero extra gap
        n = self._steps + 1
        stations, speeds, accels = [0.0] * n, [0.0] * n, [0.0] * n
        rears, leads = rear.tolist(), lead_speed.tolist()
        inf = math.inf
        s, v = s0, v0
        for j in range(n):  # Python floats: ~1 us a step, where numpy scalars cost several
            front = s + half
            free = a_max * (1.0 - (v / v_desired) ** delta)
            a = free
            if rears[j] < inf:
                gap = rears[j] - front
                extra = v * headway + v * (v - leads[j]) / two_sqrt_ab
                desired = s_min + (extra if extra > 0.0 else 0.0)
                a = free - a_max * (desired / (gap if gap > 0.01 else 0.01)) ** 2
            if stop_line < inf:
                gap = stop_line - front
                if gap > 0.0:
                    desired = v * headway + v * v / two_sqrt_ab + 0.01
                    a_stop = free - a_max * (desired / (gap if gap > 0.01 else 0.01)) ** 2
                    a = a_stop if a_stop < a else a
                else:
                    a = -b_max
            if a < -b_max:
                a = -b_max
            stations[j], speeds[j], accels[j] = s, v, a
            v_next = v + a * dt
            if v_next < 0.0:  # stops within the step
                s += v * v / (-2.0 * a)
                v_next = 0.0
            else:
                s += 0.5 * (v + v_next) * dt
            v = v_next
        return np.array(stations), np.array(speeds), np.array(accels)


def make_planner(**params: Any) -> Planner:
    """A Planner from config values (the `_target_` of configs/model/planner.yaml).

    Raises:
        BadInput: an unknown key (naming it and the known ones) or a bad value.
    """
    known = {f.name for f in dataclasses.fields(PlannerConfig)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise BadInput(f"unknown planner settings {unknown}: the planner takes {sorted(known)}")
    return Planner(PlannerConfig(**params))

"""Routes through the road network and the arc-length paths agents follow along them.

A Route is a polyline with a speed limit per piece and the stop lines (with their signal group) met
on the way. A PathSet resamples every route at the same spacing into one padded (N, K, 2) array, so
finding every agent's position at its arc length is one indexing operation, with no per-agent loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from andon.simulation.fleet.roads import (
    JUNCTION_HALF_M,
    RIGHT_TURN_ARC_POINTS,
    Road,
    RoadNetwork,
    right_turn_arc,
    sign,
)

PATH_STEP_M = 0.5  # resampling step: small enough that headings are smooth through 9 m radius turns
LATERAL_ACCEL_MPS2 = 2.0  # comfortable lateral acceleration: sets the speed through turns
ANTICIPATION_DECEL_MPS2 = 1.5  # agents slow for a turn ahead at this rate


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    points_m: np.ndarray  # (V, 2) world frame
    limit_mps: np.ndarray  # (V - 1,) speed limit on each polyline piece
    stop_s_m: np.ndarray  # (P,) arc length of each stop line (or kerb, for pedestrians) along the route
    stop_signal: np.ndarray  # (P,) signal group governing each stop line


def trace_route(net: RoadNetwork, road: Road, d: int, along_m: float, offset_m: float, length_m: float,
                speed_mps: float, right_turn_probability: float, stop_back_m: float,
                rng: np.random.Generator) -> Route:
    """Follow the road from `along_m` in direction d, `offset_m` right of the centre line, for `length_m`.

    At each junction the route goes straight on, or turns right with `right_turn_probability` (only
    for routes in the outer lane: the turn's radius is measured from that lane). Its stop line lies
    `stop_back_m` before the junction's centre: the box edge for vehicles, the kerb for pedestrians.
    `speed_mps` caps each piece's limit (a cyclist's or a pedestrian's own speed); roads cap the rest.
    """
    points = [road.point(d, along_m, offset_m)[0]]
    limits: list[float] = []
    stops: list[float] = []
    signals: list[int] = []
    stations = net.node_stations()
    s, a = 0.0, along_m
    while s < length_m:
        sg = sign(d)
        ahead = stations[(stations - a) * sg > stop_back_m + 1e-9]
        limit = min(road.speed_limit_mps, speed_mps)
        if len(ahead) == 0:  # past the last junction: straight on, as far as needed
            a += sg * (length_m - s + 1.0)
            points.append(road.point(d, a, offset_m)[0])
            limits.append(limit)
            break
        station_m = ahead[0] if sg > 0 else ahead[-1]
        station = int(round(station_m / net.block_m))
        node = net.node_on(road, station)
        stop_a = station_m - sg * stop_back_m
        s += abs(stop_a - a)
        points.append(road.point(d, stop_a, offset_m)[0])
        limits.append(limit)
        stops.append(s)
        signals.append(net.signal_index(node, d))
        if rng.random() < right_turn_probability:
            arc = right_turn_arc(net.node_xy(node), d, offset_m, RIGHT_TURN_ARC_POINTS)
            new_road = net.crossing_road(road, station)
            points.extend(arc[1:])
            limits.extend([min(new_road.speed_limit_mps, speed_mps)] * (len(arc) - 1))
            s += float(np.sum(np.hypot(*np.diff(arc, axis=0).T)))
            # The turn ends on the crossing road, at the far edge of the junction box.
            road, d = new_road, (d - 1) % 4
            a = float(net.node_xy(node)[road.axis]) + sign(d) * JUNCTION_HALF_M
        else:
            a = station_m + sg * stop_back_m
            s += 2 * stop_back_m
            points.append(road.point(d, a, offset_m)[0])
            limits.append(limit)
    return Route(points_m=np.asarray(points, dtype=np.float64), limit_mps=np.asarray(limits, dtype=np.float64),
                 stop_s_m=np.asarray(stops, dtype=np.float64), stop_signal=np.asarray(signals, dtype=np.int64))


def stationary_route(xy: np.ndarray, yaw_rad: float) -> Route:
    """A two-point route for an agent that never moves (a parked car): it stands at its start."""
    direction = np.array([np.cos(yaw_rad), np.sin(yaw_rad)])
    return Route(points_m=np.stack([xy, xy + direction]), limit_mps=np.zeros(1),
                 stop_s_m=np.zeros(0), stop_signal=np.zeros(0, dtype=np.int64))


@dataclass(frozen=True, slots=True, eq=False)
class PathSet:
    """Every agent's route resampled every `step_m` metres; rows are padded by extending straight on."""

    xy_m: np.ndarray  # (N, K, 2)
    direction: np.ndarray  # (N, K, 2) unit tangent
    allowed_mps: np.ndarray  # (N, K): speed limit, slowed for turns and for turns ahead
    step_m: float

    def sample(self, s_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(xy (N, 2), unit direction (N, 2), allowed speed (N,)) of each agent at its arc length s_m (N,)."""
        n, k = self.allowed_mps.shape
        pos = np.clip(s_m / self.step_m, 0.0, k - 1.000001)
        index = pos.astype(np.int64)
        frac = (pos - index)[:, None]
        rows = np.arange(n)
        xy = self.xy_m[rows, index] * (1 - frac) + self.xy_m[rows, index + 1] * frac
        direction = self.direction[rows, index] * (1 - frac) + self.direction[rows, index + 1] * frac
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        return xy, direction, self.allowed_mps[rows, index]

    @property
    def length_m(self) -> float:
        return (self.allowed_mps.shape[1] - 1) * self.step_m


def build_paths(routes: list[Route], step_m: float = PATH_STEP_M) -> PathSet:
    """Resample routes at `step_m` into one PathSet; speed limits fall before turns (see module docstring)."""
    lengths = [float(np.sum(np.hypot(*np.diff(r.points_m, axis=0).T))) for r in routes]
    k = int(np.ceil(max(lengths) / step_m)) + 2
    s = np.arange(k) * step_m
    xy = np.empty((len(routes), k, 2))
    limit = np.empty((len(routes), k))
    for row, (route, length) in enumerate(zip(routes, lengths, strict=True)):
        vertex_s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(route.points_m, axis=0).T))])
        end_dir = route.points_m[-1] - route.points_m[-2]
        end_dir /= max(np.linalg.norm(end_dir), 1e-9)
        inside = s <= length
        xy[row, inside, 0] = np.interp(s[inside], vertex_s, route.points_m[:, 0])
        xy[row, inside, 1] = np.interp(s[inside], vertex_s, route.points_m[:, 1])
        # Past its end a route runs straight on, so a padded row never leaves an agent stuck.
        xy[row, ~inside] = route.points_m[-1] + (s[~inside] - length)[:, None] * end_dir
        piece = np.clip(np.searchsorted(vertex_s, s, side="right") - 1, 0, len(route.limit_mps) - 1)
        limit[row] = route.limit_mps[piece]
    delta = np.diff(xy, axis=1)
    direction = delta / np.maximum(np.linalg.norm(delta, axis=2, keepdims=True), 1e-12)
    direction = np.concatenate([direction, direction[:, -1:]], axis=1)
    # Curvature from the turn between consecutive tangents; the speed that keeps lateral acceleration comfortable.
    cross = direction[:, :-1, 0] * direction[:, 1:, 1] - direction[:, :-1, 1] * direction[:, 1:, 0]
    dot = np.sum(direction[:, :-1] * direction[:, 1:], axis=2)
    curvature = np.abs(np.arctan2(cross, dot)) / step_m
    curvature = np.concatenate([curvature, curvature[:, -1:]], axis=1)
    allowed = np.minimum(limit, np.sqrt(LATERAL_ACCEL_MPS2 / np.maximum(curvature, 1e-9)))
    # Slow down in time: allowed(s) = min over s' >= s of sqrt(allowed(s')^2 + 2 b (s' - s)).
    budget = allowed**2 + 2 * ANTICIPATION_DECEL_MPS2 * s
    ahead_min = np.minimum.accumulate(budget[:, ::-1], axis=1)[:, ::-1]
    allowed = np.sqrt(np.maximum(ahead_min - 2 * ANTICIPATION_DECEL_MPS2 * s, 0.0))
    return PathSet(xy_m=xy, direction=direction, allowed_mps=allowed, step_m=step_m)

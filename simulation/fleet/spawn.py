"""Placing a log's agents: the ego, the cut-in vehicle, traffic, parked cars, cyclists and pedestrians.

Agents are placed near the ego's route (where they can be seen), never overlapping one another (with
room to brake) nor inside a junction box. A share of the traffic and of the parked cars is put on the
ego's own road so that queues and dense traffic form around it (in heavy traffic that share starts
standing, as in a jam), and half the pedestrians start a few metres before a kerb of a junction the
ego will cross, so that they are on its crosswalks while the ego is there. Setup runs once per log,
so it places agents one at a time; the simulation itself (agents.step) is vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from andon.simulation.fleet import ego as ego_script
from andon.simulation.fleet.agents import CYCLIST, PARKED, PEDESTRIAN, VEHICLE, Population
from andon.simulation.fleet.config import FleetConfig
from andon.simulation.fleet.paths import Route, build_paths, stationary_route, trace_route
from andon.simulation.fleet.roads import (
    CYCLIST_OFFSET_M,
    JUNCTION_HALF_M,
    KERB_OFFSET_M,
    LANE_OFFSETS_M,
    PARKED_OFFSET_M,
    WALKWAY_OFFSET_M,
    Road,
    RoadNetwork,
    sign,
    unit,
)

NEAR_EGO_SHARE = 0.5  # of the traffic, placed on the ego's own road
NEAR_EGO_M = 70.0
REGION_MARGIN_M = 100.0  # agents are placed within this distance of the ego route's bounding box
CROSSING_PEDESTRIAN_SHARE = 0.5
PARKED_CLEAR_M = JUNCTION_HALF_M + 10.0  # no parking near junctions
VEHICLE_RIGHT_TURN_PROBABILITY = 0.3
MAX_TRIES = 60  # per agent; an agent that finds no free place is left out
SPAWN_BRAKE_MPS2 = 4.0  # placement keeps room for braking at this rate
ROUTE_MARGIN_M = 40.0
CUT_IN_CLEAR_M = 150.0  # in logs with a cut-in, no traffic starts this close ahead of the ego on its side


@dataclass(frozen=True, slots=True)
class Kind:
    """Ranges each agent of a kind draws its size and driving parameters from."""

    size_lo: tuple[float, float, float]
    size_hi: tuple[float, float, float]
    speed_mps: tuple[float, float]  # desired speed; for vehicles, a factor of each road's limit
    accel_mps2: tuple[float, float]
    brake_mps2: tuple[float, float]
    headway_s: tuple[float, float]
    min_gap_m: tuple[float, float]
    reflectivity: tuple[float, float]


CAR = Kind((4.2, 1.8, 1.45), (5.0, 2.0, 1.75), (0.9, 1.1), (1.2, 2.0), (2.0, 3.0), (1.0, 1.6), (1.5, 2.5), (0.2, 0.8))
TRUCK = Kind((5.5, 2.1, 2.3), (8.5, 2.3, 3.2), (0.85, 1.0), (0.8, 1.2), (1.8, 2.5), (1.4, 2.0), (2.0, 3.0), (0.3, 0.7))
BIKE = Kind((1.6, 0.5, 1.6), (1.9, 0.7, 1.9), (4.0, 6.5), (0.8, 1.2), (1.5, 2.5), (0.8, 1.2), (1.0, 2.0), (0.25, 0.4))
WALKER = Kind((0.4, 0.5, 1.5), (0.7, 0.8, 1.9), (1.1, 1.6), (0.6, 1.0), (1.5, 2.5), (0.4, 0.6), (0.2, 0.4), (0.2, 0.35))
TRUCK_SHARE = 0.15
EGO_KIND = Kind(ego_script.EGO_SIZE_M, ego_script.EGO_SIZE_M, (1.0, 1.0), (1.6, 1.6), (2.5, 2.5), (1.3, 1.3),
                (2.0, 2.0), (0.5, 0.5))


@dataclass(slots=True)
class _Placed:
    """Agents placed so far (grown during setup, then frozen into a Population)."""

    kind: list[int]
    params: list[np.ndarray]  # per agent: l, w, h, reflectivity, desired, accel, brake, headway, min_gap
    routes: list[Route]
    xy: list[np.ndarray]
    speed0: list[float]


def populate(net: RoadNetwork, start: ego_script.EgoStart, config: FleetConfig, horizon_s: float,
             heavy: bool, with_cut_in: bool, rng: np.random.Generator) -> tuple[Population, np.ndarray, int | None]:
    """Place every agent; returns (population, initial speeds (N,), index of the cut-in vehicle or None).

    `horizon_s` (warm-up plus log) sets how long each route must be.
    """
    placed = _Placed([], [], [], [], [])
    ego_route, cut_in = _place_ego(placed, net, start, horizon_s, with_cut_in, rng)
    region = _region(ego_route.points_m)
    n_vehicles = int(round(config.n_vehicles * (config.heavy_traffic_scale if heavy else 1.0)))
    for index in range(n_vehicles):
        near = index < NEAR_EGO_SHARE * n_vehicles
        # Heavy traffic is congested: the traffic around the ego starts standing.
        _place_vehicle(placed, net, start, region, near, horizon_s, CUT_IN_CLEAR_M if cut_in is not None else 0.0,
                       heavy and near, rng)
    n_parked = int(round(config.n_parked * (config.heavy_traffic_scale if heavy else 1.0)))
    for index in range(n_parked):
        _place_parked(placed, net, start if index < NEAR_EGO_SHARE * n_parked else None, region, rng)
    for _ in range(config.n_cyclists):
        _place_mover(placed, net, region, CYCLIST, BIKE, CYCLIST_OFFSET_M, JUNCTION_HALF_M, horizon_s, None, rng)
    crossing = [int(s) // 2 for s in ego_route.stop_signal[:3]]  # junctions the ego meets first
    for index in range(config.n_pedestrians):
        junction = crossing[index % len(crossing)] if crossing and index < CROSSING_PEDESTRIAN_SHARE * config.n_pedestrians else None
        _place_mover(placed, net, region, PEDESTRIAN, WALKER, WALKWAY_OFFSET_M, KERB_OFFSET_M, horizon_s, junction, rng)
    return _population(placed, rng), np.asarray(placed.speed0), cut_in


def _place_ego(placed: _Placed, net: RoadNetwork, start: ego_script.EgoStart, horizon_s: float, with_cut_in: bool,
               rng: np.random.Generator) -> tuple[Route, int | None]:
    """The ego (agent 0) and, if asked, the cut-in vehicle beside it; returns (ego route, cut-in index or None)."""
    # Vehicles (the ego included) drive at their own factor of each road's limit: the factor scales the
    # route's limits, and their desired speed is left unbounded.
    ego_speed = start.road.speed_limit_mps * start.speed_factor
    top_mps = _top_mps(net)  # routes must be long enough for the fastest road
    ego_route = _scaled(trace_route(net, start.road, start.d, start.along_m, LANE_OFFSETS_M[start.lane],
                                    top_mps * start.speed_factor * horizon_s + ROUTE_MARGIN_M, np.inf,
                                    ego_script.RIGHT_TURN_PROBABILITY if start.lane == 0 else 0.0, JUNCTION_HALF_M,
                                    rng), start.speed_factor)
    params = _draw(EGO_KIND, rng)
    params[4] = np.inf
    _add(placed, VEHICLE, params, ego_route, 0.0 if start.waiting_at is not None else ego_speed * 0.8)
    if not with_cut_in:
        return ego_route, None
    along, lane = ego_script.cut_in_start(start, rng)
    params = _draw(CAR, rng)
    factor = start.speed_factor * ego_script.CUT_IN_SPEED_GAIN
    route = _scaled(trace_route(net, start.road, start.d, along, LANE_OFFSETS_M[lane],
                                top_mps * factor * horizon_s + ROUTE_MARGIN_M, np.inf, 0.0, JUNCTION_HALF_M, rng), factor)
    params[4] = np.inf
    if not _free(placed, route.points_m[0], unit(start.d), params[:2], ego_speed * 0.8):
        return ego_route, None
    _add(placed, VEHICLE, params, route, ego_speed * 0.8)
    return ego_route, len(placed.kind) - 1


def _draw(kind: Kind, rng: np.random.Generator) -> np.ndarray:
    size = rng.uniform(kind.size_lo, kind.size_hi)
    rest = [rng.uniform(*r) for r in (kind.reflectivity, kind.speed_mps, kind.accel_mps2, kind.brake_mps2,
                                      kind.headway_s, kind.min_gap_m)]
    return np.concatenate([size, rest])


def _add(placed: _Placed, kind: int, params: np.ndarray, route: Route, speed0: float) -> None:
    placed.kind.append(kind)
    placed.params.append(params)
    placed.routes.append(route)
    placed.xy.append(route.points_m[0])
    placed.speed0.append(speed0)


def _free(placed: _Placed, xy: np.ndarray, direction: np.ndarray, size: np.ndarray, speed_mps: float = 0.0) -> bool:
    """No placed agent comes within a safe margin of a new one at xy (vectorised over the placed agents).

    Along the road the margin includes both agents' braking distances, so that a moving agent never
    starts too close behind a standing one.
    """
    if not placed.xy:
        return True
    others = np.asarray(placed.xy)
    sizes = np.asarray(placed.params)[:, :2]
    rel = others - xy
    along = np.abs(rel @ direction)
    across = np.abs(rel[:, 1] * direction[0] - rel[:, 0] * direction[1])
    braking = (speed_mps**2 + np.asarray(placed.speed0) ** 2) / (2.0 * SPAWN_BRAKE_MPS2)
    # Lengths and widths are swapped for agents crossing at right angles; take the larger of the two.
    reach_along = 0.5 * (size[0] + sizes.max(axis=1)) + 3.0 + braking
    reach_across = 0.5 * (size[1] + sizes.max(axis=1)) + 0.3
    return not np.any((along < reach_along) & (across < reach_across))


def _region(route_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return route_xy.min(axis=0) - REGION_MARGIN_M, route_xy.max(axis=0) + REGION_MARGIN_M


def _random_spot(net: RoadNetwork, region: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
                 ) -> tuple[Road, int, float] | None:
    """A road crossing the region, a direction on it and a place along it within the region."""
    lo, hi = region
    roads = [r for r in net.roads if lo[1 - r.axis] <= r.coord_m <= hi[1 - r.axis]]
    if not roads:
        return None
    road = roads[int(rng.integers(len(roads)))]
    a_lo, a_hi = max(lo[road.axis], road.start_m), min(hi[road.axis], road.end_m)
    return road, road.directions()[int(rng.integers(2))], float(rng.uniform(a_lo, a_hi))


def _clear_of_junctions(net: RoadNetwork, along: float, clear_m: float) -> bool:
    return bool(np.min(np.abs(net.node_stations() - along)) > clear_m)


def _place_vehicle(placed: _Placed, net: RoadNetwork, start: ego_script.EgoStart, region: tuple[np.ndarray, np.ndarray],
                   near_ego: bool, horizon_s: float, clear_ahead_m: float, standing: bool,
                   rng: np.random.Generator) -> None:
    """A car or truck: on the ego's road near it, or anywhere in the region; none `clear_ahead_m` ahead of the ego."""
    kind = TRUCK if rng.random() < TRUCK_SHARE else CAR
    params = _draw(kind, rng)
    lane = int(rng.integers(2))
    for _ in range(MAX_TRIES):
        if near_ego:
            road, d = start.road, start.road.directions()[int(rng.integers(2))]
            along = start.along_m + float(rng.uniform(-NEAR_EGO_M, NEAR_EGO_M))
        else:
            spot = _random_spot(net, region, rng)
            if spot is None:
                return
            road, d, along = spot
        xy = road.point(d, along, LANE_OFFSETS_M[lane])[0]
        ahead_of_ego = road is start.road and d == start.d and 0.0 < (along - start.along_m) * sign(d) < clear_ahead_m
        factor = params[4]
        speed0 = 0.0 if standing else road.speed_limit_mps * factor * float(rng.uniform(0.3, 1.0))
        if (not ahead_of_ego and _clear_of_junctions(net, along, JUNCTION_HALF_M + 0.5 * params[0])
                and _free(placed, xy, unit(d), params[:2], speed0)):
            route = trace_route(net, road, d, along, LANE_OFFSETS_M[lane],
                                _top_mps(net) * factor * horizon_s + ROUTE_MARGIN_M,
                                np.inf, VEHICLE_RIGHT_TURN_PROBABILITY if lane == 0 else 0.0, JUNCTION_HALF_M, rng)
            params[4] = np.inf
            _add(placed, VEHICLE, params, _scaled(route, factor), speed0)
            return


def _top_mps(net: RoadNetwork) -> float:
    return max(r.speed_limit_mps for r in net.roads)


def _scaled(route: Route, factor: float) -> Route:
    """The route with every speed limit multiplied by a driver's factor."""
    return Route(route.points_m, route.limit_mps * factor, route.stop_s_m, route.stop_signal)


def _place_parked(placed: _Placed, net: RoadNetwork, near: ego_script.EgoStart | None,
                  region: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> None:
    """A parked car in a parking strip: along the ego's road near its start (`near`), or anywhere in the region."""
    params = _draw(CAR, rng)
    for _ in range(MAX_TRIES):
        if near is not None:
            road, d = near.road, near.road.directions()[int(rng.integers(2))]
            along = near.along_m + float(rng.uniform(-NEAR_EGO_M, NEAR_EGO_M))
        else:
            spot = _random_spot(net, region, rng)
            if spot is None:
                return
            road, d, along = spot
        xy = road.point(d, along, PARKED_OFFSET_M)[0]
        if _clear_of_junctions(net, along, PARKED_CLEAR_M) and _free(placed, xy, unit(d), params[:2]):
            params[4] = 0.0
            _add(placed, PARKED, params, stationary_route(xy, d * np.pi / 2), 0.0)
            return


def _place_mover(placed: _Placed, net: RoadNetwork, region: tuple[np.ndarray, np.ndarray], kind_id: int, kind: Kind,
                 offset_m: float, stop_back_m: float, horizon_s: float, junction: int | None,
                 rng: np.random.Generator) -> None:
    """A cyclist or a pedestrian; a pedestrian given a junction starts a few metres before one of its kerbs."""
    params = _draw(kind, rng)
    # Pedestrians walk on either sidewalk; cyclists keep right.
    side = 1.0 if kind_id == CYCLIST or rng.random() < 0.5 else -1.0
    for _ in range(MAX_TRIES):
        if junction is not None:
            i, j = divmod(junction, net.grid_size)
            road = net.row(j) if rng.random() < 0.5 else net.column(i)
            d = road.directions()[int(rng.integers(2))]
            station = float(net.node_xy(junction)[road.axis])
            along = station - sign(d) * (stop_back_m + float(rng.uniform(0.5, 12.0)))
        else:
            spot = _random_spot(net, region, rng)
            if spot is None:
                return
            road, d, along = spot
        xy = road.point(d, along, side * offset_m)[0]
        speed0 = params[4] * float(rng.uniform(0.0, 1.0))
        if _clear_of_junctions(net, along, stop_back_m + 0.5) and _free(placed, xy, unit(d), params[:2], speed0):
            route = trace_route(net, road, d, along, side * offset_m, params[4] * horizon_s + ROUTE_MARGIN_M,
                                params[4], 0.0, stop_back_m, rng)
            _add(placed, kind_id, params, route, speed0)
            return


def _population(placed: _Placed, rng: np.random.Generator) -> Population:
    params = np.asarray(placed.params)
    n_stops = max(1, max(len(r.stop_s_m) for r in placed.routes))
    stop_s = np.full((len(placed.routes), n_stops), np.inf)
    stop_signal = np.full((len(placed.routes), n_stops), -1, dtype=np.int64)
    for row, route in enumerate(placed.routes):
        stop_s[row, :len(route.stop_s_m)] = route.stop_s_m
        stop_signal[row, :len(route.stop_signal)] = route.stop_signal
    # Track ids say nothing about the kind or the order of placement.
    order = rng.permutation(len(placed.kind) - 1)
    track_ids = ("ego", *(f"trk-{k:04d}" for k in order))
    return Population(kind=np.asarray(placed.kind, dtype=np.int64), size_m=params[:, 0:3], reflectivity=params[:, 3],
                      desired_mps=params[:, 4], accel_mps2=params[:, 5], brake_mps2=params[:, 6],
                      headway_s=params[:, 7], min_gap_m=params[:, 8], paths=build_paths(placed.routes),
                      stop_s_m=stop_s, stop_signal=stop_signal, track_ids=track_ids)

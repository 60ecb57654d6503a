"""The road network of a synthetic log: a grid of straight roads, two lanes each way, 4-way junctions.

World frame, metres. Rows run along x at y = j * block_m, columns along y at x = i * block_m; junction
(i, j) sits at (i * block_m, j * block_m). Directions of travel are E, N, W, S (d = 0..3, heading
d * pi/2). Right-hand traffic. Offsets below are measured to the right of the direction of travel,
from the road's centre line:

    0 - 3.75 m    inner lane (k = 1), centre 1.875 m
    3.75 - 7.5 m  outer lane (k = 0), centre 5.625 m; cyclists ride at 7.1 m, at its kerb side
    7.5 - 10 m    parking strip: parked cars at 8.75 m
    10 m          kerb; sidewalk 10 - 15 m; pedestrians walk at 12.5 m; poles at 10.5 m
    16 m +        buildings

A junction's box is the square of half-size JUNCTION_HALF_M (15 m) about its node: its edges are the
stop lines. Inside it, intersection lanes join the approaches: straight on from both lanes, right turns
from the outer lane into the outer lane (a quarter circle of radius 15 - 5.625 = 9.375 m). There are no
left turns, so the two-phase lights (E-W, then N-S) never let two vehicle paths cross. Crosswalks cross
each arm 11 - 14 m from the node, kerb to kerb; pedestrians cross with the parallel traffic's green.
Each approach has one traffic light, on a pole at its stop line, 10.5 m to the right.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from andon.scenarios.records import Crosswalk, Lane, RoadMap, TrafficLight

LANE_WIDTH_M = 3.75
LANE_OFFSETS_M = (5.625, 1.875)  # lane k = 0 (outer), 1 (inner)
CYCLIST_OFFSET_M = 7.1
PARKED_OFFSET_M = 8.75
KERB_OFFSET_M = 10.0
WALKWAY_OFFSET_M = 12.5
POLE_OFFSET_M = 10.5
BUILDING_OFFSET_M = 16.0
JUNCTION_HALF_M = 15.0
CROSSWALK_NEAR_M, CROSSWALK_FAR_M = 11.0, 14.0
DIRECTION_NAMES = ("E", "N", "W", "S")
RIGHT_TURN_ARC_POINTS = 13


def unit(d: int) -> np.ndarray:
    """Unit vector of direction of travel d (0 E, 1 N, 2 W, 3 S)."""
    return np.array([(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)][d % 4])


def right_of(d: int) -> np.ndarray:
    """Unit vector to the right of direction d (which is also the direction after a right turn)."""
    return unit(d - 1)


def sign(d: int) -> float:
    """+1 when d runs up its road's coordinate (E, N), -1 when it runs down (W, S)."""
    return 1.0 if d % 4 in (0, 1) else -1.0


@dataclass(frozen=True, slots=True)
class Road:
    """A straight road: a row (axis 0, along x, at y = coord_m) or a column (axis 1, along y, at x = coord_m)."""

    axis: int
    index: int
    coord_m: float
    start_m: float  # extent along the road
    end_m: float
    speed_limit_mps: float

    @property
    def name(self) -> str:
        return f"{'xy'[self.axis]}{self.index}"

    def directions(self) -> tuple[int, int]:
        return (0, 2) if self.axis == 0 else (1, 3)

    def point(self, d: int, along_m: np.ndarray | float, offset_m: float) -> np.ndarray:
        """World points at `along_m` on this road, `offset_m` to the right of travel direction d: (K, 2)."""
        along = np.atleast_1d(np.asarray(along_m, dtype=np.float64))
        across = self.coord_m + offset_m * float(right_of(d)[1 - self.axis])
        if self.axis == 0:
            return np.column_stack([along, np.full_like(along, across)])
        return np.column_stack([np.full_like(along, across), along])


@dataclass(frozen=True, slots=True, eq=False)
class RoadNetwork:
    """The grid: roads, junction nodes and what the map and the agents need from them."""

    grid_size: int
    block_m: float
    roads: tuple[Road, ...]  # rows 0..n-1, then columns 0..n-1
    arterial: int  # index of the row and the column with the higher speed limit

    @property
    def n_nodes(self) -> int:
        return self.grid_size * self.grid_size

    def node_index(self, i: int, j: int) -> int:
        return i * self.grid_size + j

    def node_xy(self, node: int) -> np.ndarray:
        i, j = divmod(node, self.grid_size)
        return np.array([i * self.block_m, j * self.block_m])

    def nodes_xy(self) -> np.ndarray:
        """(n_nodes, 2) node positions, indexed by node_index."""
        i, j = np.divmod(np.arange(self.n_nodes), self.grid_size)
        return np.column_stack([i * self.block_m, j * self.block_m]).astype(np.float64)

    def row(self, j: int) -> Road:
        return self.roads[j]

    def column(self, i: int) -> Road:
        return self.roads[self.grid_size + i]

    def node_stations(self) -> np.ndarray:
        """Along-road coordinates of the junctions on any road: (grid_size,)."""
        return np.arange(self.grid_size) * self.block_m

    def node_on(self, road: Road, station: int) -> int:
        """Node index of the `station`-th junction along `road`."""
        return self.node_index(station, road.index) if road.axis == 0 else self.node_index(road.index, station)

    def crossing_road(self, road: Road, station: int) -> Road:
        """The road that crosses `road` at its `station`-th junction."""
        return self.column(station) if road.axis == 0 else self.row(station)

    def signal_index(self, node: int, d: int) -> int:
        """Index of the signal group that governs travel in direction d at a junction: node * 2 + axis."""
        return 2 * node + d % 2

    def road_map(self) -> RoadMap:
        """The vector map: lanes (segments and intersection lanes), crosswalks and traffic lights."""
        lanes: list[Lane] = []
        lights: list[TrafficLight] = []
        crosswalks: list[Crosswalk] = []
        stations = self.node_stations()
        for road in self.roads:
            bounds = np.concatenate([[road.start_m], stations, [road.end_m]])
            for d in road.directions():
                order = range(len(bounds) - 1) if sign(d) > 0 else range(len(bounds) - 2, -1, -1)
                for seg in order:
                    lo, hi = bounds[seg], bounds[seg + 1]
                    lo += JUNCTION_HALF_M if seg > 0 else 0.0
                    hi -= JUNCTION_HALF_M if seg < len(bounds) - 2 else 0.0
                    start, end = (lo, hi) if sign(d) > 0 else (hi, lo)
                    ids = []
                    for k, offset in enumerate(LANE_OFFSETS_M):
                        lane_id = f"lane-{road.name}-{seg}-{DIRECTION_NAMES[d]}{k}"
                        lanes.append(Lane(lane_id, road.point(d, np.array([start, end]), offset)))
                        ids.append(lane_id)
                    # Segments that end at a junction end at its stop line, where the light stands.
                    # bounds[k] is junction k - 1 for 1 <= k <= grid_size.
                    ends_at_station = seg if sign(d) > 0 else seg - 1
                    if 0 <= ends_at_station < self.grid_size:
                        node = self.node_on(road, ends_at_station)
                        i, j = divmod(node, self.grid_size)
                        pole = road.point(d, end, POLE_OFFSET_M)[0]
                        lights.append(TrafficLight(f"tl-{i}_{j}-{DIRECTION_NAMES[d]}",
                                                   (float(pole[0]), float(pole[1])), tuple(ids)))
        for node in range(self.n_nodes):
            lanes.extend(self._intersection_lanes(node))
            crosswalks.extend(self._crosswalks(node))
        return RoadMap(lanes=tuple(lanes), crosswalks=tuple(crosswalks), traffic_lights=tuple(lights))

    def _intersection_lanes(self, node: int) -> list[Lane]:
        centre = self.node_xy(node)
        i, j = divmod(node, self.grid_size)
        lanes = []
        for d in range(4):
            u, r = unit(d), right_of(d)
            for k, offset in enumerate(LANE_OFFSETS_M):
                line = np.stack([centre - JUNCTION_HALF_M * u + offset * r, centre + JUNCTION_HALF_M * u + offset * r])
                lanes.append(Lane(f"int-{i}_{j}-{DIRECTION_NAMES[d]}-S{k}", line, is_intersection=True))
            arc = right_turn_arc(centre, d, LANE_OFFSETS_M[0], RIGHT_TURN_ARC_POINTS)
            lanes.append(Lane(f"int-{i}_{j}-{DIRECTION_NAMES[d]}-R0", arc, is_intersection=True))
        return lanes

    def _crosswalks(self, node: int) -> list[Crosswalk]:
        centre = self.node_xy(node)
        i, j = divmod(node, self.grid_size)
        found = []
        for arm in range(4):  # the arm leaving the node in direction `arm`
            u, n = unit(arm), unit(arm + 1)
            corners = np.stack([centre + CROSSWALK_NEAR_M * u - KERB_OFFSET_M * n,
                                centre + CROSSWALK_FAR_M * u - KERB_OFFSET_M * n,
                                centre + CROSSWALK_FAR_M * u + KERB_OFFSET_M * n,
                                centre + CROSSWALK_NEAR_M * u + KERB_OFFSET_M * n])
            found.append(Crosswalk(f"cw-{i}_{j}-{DIRECTION_NAMES[arm]}", corners))
        return found


def right_turn_arc(centre: np.ndarray, d: int, offset_m: float, n_points: int) -> np.ndarray:
    """Points of a right turn through the junction at `centre`, from direction d, `offset_m` right of the centre line.

    The arc runs from the stop line of approach d to the far edge of the box on exit d - 1, about the
    box corner between them; its radius is JUNCTION_HALF_M - offset_m.
    """
    u, r = unit(d), right_of(d)
    corner = centre - JUNCTION_HALF_M * u + JUNCTION_HALF_M * r
    radius = JUNCTION_HALF_M - offset_m
    theta = d * np.pi / 2
    phi = np.linspace(theta + np.pi / 2, theta, n_points)
    return corner + radius * np.column_stack([np.cos(phi), np.sin(phi)])


def build_network(grid_size: int, block_m: float, stub_m: float, arterial_speed_mps: float,
                  local_speed_mps: float) -> RoadNetwork:
    """A grid of `grid_size` x `grid_size` junctions; the middle row and column are arterials."""
    arterial = grid_size // 2
    start, end = -stub_m, (grid_size - 1) * block_m + stub_m
    roads = tuple(
        Road(axis, index, index * block_m, start, end,
             arterial_speed_mps if index == arterial else local_speed_mps)
        for axis in (0, 1) for index in range(grid_size))
    return RoadNetwork(grid_size=grid_size, block_m=block_m, roads=roads, arterial=arterial)

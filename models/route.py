"""A route for the planner: a polyline in the world frame with arc length, projection and interpolation.

A route is what the ego means to follow: a lane centerline (or several, joined) from the RoadMap, or the
path the ego drove in a log. Stations are arc lengths along it [m]; the lateral offset of a point is
positive to the left of the direction of travel. Beyond its ends the route continues straight, along
its first and last segments, so a plan may run past a short route.

Building a Route once (`Route.from_polyline`) drops repeated points and merges nearly collinear
segments, so a densely logged path costs what a lane does; projecting is then vectorised over points
and segments, optionally restricted to a window of stations (the planner's look-ahead).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from andon.errors import BadInput
from andon.scenarios.records import RoadMap

MIN_SPACING_M = 0.05  # points closer than this to the previous one are repeats
MERGE_TURN_RAD = 0.01  # segments turning less than this in total are merged (chord error <= L * 0.01 / 8)
STOP_STATES: frozenset[str] = frozenset({"red"})
CAUTION_STATES: frozenset[str] = frozenset({"yellow"})


@dataclass(frozen=True, slots=True, eq=False)
class Projection:
    """Where points lie relative to a route: stations [m], signed lateral offsets [m] (left +),
    distances to the route [m] (beyond the window's end segments, past their ends)."""

    station_m: np.ndarray
    lateral_m: np.ndarray
    distance_m: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """A simplified polyline: points (K, 2), stations (K,), unit directions and lengths of its K-1 segments.

    `along_low_m` / `along_high_m` (K-1,) bound where a point's foot may lie along each segment: 0 and
    its length, except -inf before the first segment and +inf after the last (the route runs on).
    `headings_rad` (K-1,) is each segment's direction of travel as an angle (derived).
    """

    points_m: np.ndarray
    stations_m: np.ndarray
    directions: np.ndarray
    lengths_m: np.ndarray
    along_low_m: np.ndarray
    along_high_m: np.ndarray
    headings_rad: np.ndarray = field(init=False, repr=False)
    # Per segment as Python floats (start x, y, direction x, y, along low, high, station): the planner
    # projects one point or one segment's window every step, where numpy's per-call overhead dominates.
    _segments: tuple[tuple[float, ...], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        directions = self.directions
        object.__setattr__(self, "headings_rad", np.arctan2(directions[:, 1], directions[:, 0]))
        columns = (self.points_m[:-1, 0], self.points_m[:-1, 1], directions[:, 0], directions[:, 1],
                   self.along_low_m, self.along_high_m, self.stations_m[:-1])
        object.__setattr__(self, "_segments", tuple(zip(*(c.tolist() for c in columns), strict=True)))

    @classmethod
    def from_polyline(cls, points_m: np.ndarray, merge_turn_rad: float = MERGE_TURN_RAD) -> Route:
        """A route through `points_m` (K, 2) world positions, in order of travel.

        Raises:
            BadInput: fewer than two distinct points, or non-finite points.
        """
        points = np.asarray(points_m, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
            raise BadInput(f"a route needs (K, 2) finite world points, got shape {points.shape}")
        keep = np.r_[True, np.hypot(*np.diff(points, axis=0).T) >= MIN_SPACING_M]
        points = points[keep]
        if len(points) < 2:
            raise BadInput("a route needs at least two distinct points (more than 5 cm apart): give the lane "
                           "centerline or the path to follow")
        points = _merge_collinear(points, merge_turn_rad)
        delta = np.diff(points, axis=0)
        lengths = np.hypot(delta[:, 0], delta[:, 1])
        low, high = np.zeros(len(lengths)), lengths.copy()
        low[0], high[-1] = -np.inf, np.inf
        return cls(points, np.r_[0.0, np.cumsum(lengths)], delta / lengths[:, None], lengths, low, high)

    @property
    def length_m(self) -> float:
        return float(self.stations_m[-1])

    def project(self, xy_m: np.ndarray, lo_m: float = -np.inf, hi_m: float = np.inf) -> Projection:
        """Project points (P, 2) on the segments overlapping stations [lo_m, hi_m] (the whole route by default).

        A point goes to its nearest segment; beyond the route's ends it continues straight. NaN points
        give NaN. Vectorised over points and segments; a one-segment window skips the arg-min.
        """
        xy = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
        first, last = self._window(lo_m, hi_m)
        if last - first == 1:  # the usual window of a plan: the same arithmetic on one segment's scalars
            x0, y0, dx, dy, low, high, station = self._segments[first]
            east, north = xy[:, 0] - x0, xy[:, 1] - y0
            along = east * dx + north * dy
            across = north * dx - east * dy
            over = along - np.minimum(np.maximum(along, low), high)
            return Projection(station + along - over, across, np.sqrt(over * over + across * across))
        start, direction = self.points_m[first:last], self.directions[first:last]
        delta = xy[:, None, :] - start[None]  # (P, S, 2)
        along = delta[..., 0] * direction[:, 0] + delta[..., 1] * direction[:, 1]
        across = delta[..., 1] * direction[:, 0] - delta[..., 0] * direction[:, 1]
        # np.minimum/np.maximum, not np.clip: its Python wrapper costs more than the whole projection.
        over = along - np.minimum(np.maximum(along, self.along_low_m[first:last]), self.along_high_m[first:last])
        distance_sq = over * over + across * across
        nearest = np.argmin(distance_sq, axis=1)[:, None]
        pick = np.take_along_axis
        return Projection(self.stations_m[first:last][nearest[:, 0]] + pick(along - over, nearest, 1)[:, 0],
                          pick(across, nearest, 1)[:, 0], np.sqrt(pick(distance_sq, nearest, 1)[:, 0]))

    def project_point(self, x_m: float, y_m: float) -> tuple[float, float, float]:
        """`project` of one point on the whole route: (station, lateral offset, distance) [m] as floats."""
        if len(self._segments) > 1:
            projection = self.project(np.array([[x_m, y_m]]))
            return float(projection.station_m[0]), float(projection.lateral_m[0]), float(projection.distance_m[0])
        # One segment: project's arithmetic on Python floats (max/min keep NaN like np.maximum/np.minimum).
        x0, y0, dx, dy, low, high, station = self._segments[0]
        east, north = x_m - x0, y_m - y0
        along = east * dx + north * dy
        across = north * dx - east * dy
        over = along - min(max(along, low), high)
        return station + along - over, across, math.sqrt(over * over + across * across)

    def at(self, station_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(T, 2) world points and (T, 2) unit directions of travel at stations, straight beyond the ends."""
        xy, direction, _ = self.poses_at(station_m)
        return xy, direction

    def poses_at(self, station_m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`at`, and the (T,) headings [rad] of those directions."""
        station = np.asarray(station_m, dtype=np.float64).reshape(-1)
        if len(self._segments) == 1:
            segment = np.zeros(len(station), dtype=np.intp)
        else:
            segment = self.stations_m.searchsorted(station, side="right") - 1
            segment = np.minimum(np.maximum(segment, 0), len(self.lengths_m) - 1)
        direction = self.directions[segment]
        xy = self.points_m[segment] + (station - self.stations_m[segment])[:, None] * direction
        return xy, direction, self.headings_rad[segment]

    def _window(self, lo_m: float, hi_m: float) -> tuple[int, int]:
        """Segments [first, last) overlapping stations [lo_m, hi_m] (at least one; beyond the end, the last)."""
        n_segments = len(self.lengths_m)
        first = min(max(int(self.stations_m.searchsorted(lo_m, side="right")) - 1, 0), n_segments - 1) \
            if lo_m > 0 else 0
        last = min(int(self.stations_m.searchsorted(hi_m, side="left")), n_segments) \
            if hi_m < self.stations_m[-1] else n_segments
        return first, max(last, first + 1)


def _merge_collinear(points: np.ndarray, merge_turn_rad: float) -> np.ndarray:
    """Drop interior points while the heading has turned less than `merge_turn_rad` since the last kept one.

    One pass when the route is built (not per plan): a 10 Hz logged path of a straight drive becomes
    one segment.
    """
    delta = np.diff(points, axis=0)
    heading = np.unwrap(np.arctan2(delta[:, 1], delta[:, 0]))
    keep = [0]
    reference = heading[0]
    for i in range(1, len(heading)):
        if abs(heading[i] - reference) >= merge_turn_rad:
            keep.append(i)
            reference = heading[i]
    keep.append(len(points) - 1)
    return points[np.unique(keep)]


def route_from_lanes(road_map: RoadMap, lane_ids: Sequence[str]) -> Route:
    """The route along lanes of a map, joined in the given order.

    Raises:
        BadInput: naming a lane the map does not hold.
    """
    lanes = {lane.lane_id: lane for lane in road_map.lanes}
    missing = [lane_id for lane_id in lane_ids if lane_id not in lanes]
    if missing or not lane_ids:
        raise BadInput(f"lanes {missing or list(lane_ids)} are not in the road map: give lane ids of its lanes")
    return Route.from_polyline(np.concatenate([lanes[lane_id].centerline_m for lane_id in lane_ids]))


def stop_lines(road_map: RoadMap, light_states: Mapping[str, str], lane_ids: Sequence[str] | None = None,
               states: frozenset[str] = STOP_STATES) -> np.ndarray:
    """(L, 2) world stop-line points of the lanes governed by lights in `states`.

    A traffic light governs the lanes it names; their stop line is where their centerline ends.

    Args:
        road_map: the log's map.
        light_states: light id -> "red" | "yellow" | "green" (lights not named are unknown: no stop).
        lane_ids: only these lanes (e.g. the route's); None for all.
        states: which states stop (STOP_STATES; CAUTION_STATES gives the yellow ones).
    """
    wanted = None if lane_ids is None else set(lane_ids)
    lanes = {lane.lane_id: lane for lane in road_map.lanes}
    points = [lanes[lane_id].centerline_m[-1]
              for light in road_map.traffic_lights if light_states.get(light.light_id) in states
              for lane_id in light.lane_ids if lane_id in lanes and (wanted is None or lane_id in wanted)]
    return np.array(points, dtype=np.float64).reshape(-1, 2)


def lanes_ahead(road_map: RoadMap, xy_m: Sequence[float], yaw_rad: float, length_m: float = 200.0,
                join_tolerance_m: float = 0.5) -> list[str]:
    """Lane ids from the lane under a pose onward, going straight where lanes branch, for `length_m`.

    The start lane is the nearest whose direction is within 45 degrees of `yaw_rad`; a lane follows
    another when it starts within `join_tolerance_m` of its end; of several, the one turning least.

    Raises:
        BadInput: when no lane runs within 45 degrees of the heading.
    """
    lanes = list(road_map.lanes)
    if not lanes:
        raise BadInput("the road map has no lanes: give a route (the logged path) instead")
    starts = np.array([lane.centerline_m[0] for lane in lanes])
    ends = np.array([lane.centerline_m[-1] for lane in lanes])
    start_dir = np.array([_direction(lane.centerline_m[:2]) for lane in lanes])
    end_dir = np.array([_direction(lane.centerline_m[-2:]) for lane in lanes])
    xy = np.asarray(xy_m, dtype=np.float64).reshape(1, 2)
    aligned = np.array([np.cos(yaw_rad), np.sin(yaw_rad)])
    routes = [Route.from_polyline(lane.centerline_m) for lane in lanes]  # once per call, not per plan
    distance = np.array([route.project(xy).distance_m[0] for route in routes])
    heading_ok = np.array([(route.directions @ aligned).max() for route in routes]) > np.cos(np.pi / 4)
    if not heading_ok.any():
        raise BadInput(f"no lane of the map runs within 45 degrees of heading {yaw_rad:.2f} rad: give a route")
    current = int(np.argmin(np.where(heading_ok, distance, np.inf)))
    chosen = [current]
    travelled = routes[current].length_m
    while travelled < length_m:
        follows = np.flatnonzero(np.hypot(*(starts - ends[current]).T) < join_tolerance_m)
        follows = [i for i in follows if i not in chosen]
        if not follows:
            break
        current = max(follows, key=lambda i: float(start_dir[i] @ end_dir[current]))
        chosen.append(current)
        travelled += routes[current].length_m
    return [lanes[i].lane_id for i in chosen]


def _direction(segment: np.ndarray) -> np.ndarray:
    delta = segment[-1] - segment[0]
    return delta / max(float(np.hypot(*delta)), 1e-9)

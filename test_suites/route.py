"""The ego's route: the corridor ahead, measured along the logged ego path rather than straight ahead."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from andon.simulation.trace import ScenarioTrace
from andon.test_suites.log_context import LogContext

ROUTE_EXTENSION_M = 200.0  # the route runs on straight past the last known pose (as the replay's does) [m]
_MIN_SPACING_M = 0.05  # route vertices closer than this (a standing ego) are merged


@dataclass(frozen=True, slots=True, eq=False)
class Route:
    """A polyline the ego drives along: the logged ego path (the replay's route), extended straight.

    Positions are measured along it (station [m]) and across it (lateral distance [m]), so "in the
    corridor ahead" follows curves and turns.
    """

    start_m: np.ndarray  # (S, 2) segment starts
    direction: np.ndarray  # (S, 2) unit vectors
    length_m: np.ndarray  # (S,)
    station_m: np.ndarray  # (S,) station of each segment's start

    @classmethod
    def of(cls, trace: ScenarioTrace, context: LogContext) -> Route:
        """The logged path of the context (or, without one, the trace's ego path), extended straight."""
        poses = context.ego_poses if len(context.ego_poses) else np.array([f.ego_pose for f in trace.frames],
                                                                          dtype=np.float64).reshape(-1, 4)
        return cls.from_poses(poses)

    @classmethod
    def from_poses(cls, poses: np.ndarray) -> Route:
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4)
        if not len(poses):
            poses = np.zeros((1, 4))
        xy = poses[:, :2]
        step = np.linalg.norm(np.diff(xy, axis=0), axis=1)
        keep = np.concatenate([[True], step >= _MIN_SPACING_M])
        xy = xy[keep]
        if len(xy) >= 2:
            heading = xy[-1] - xy[-2]
            heading = heading / np.linalg.norm(heading)
        else:
            heading = np.array([np.cos(poses[-1, 3]), np.sin(poses[-1, 3])])
        points = np.concatenate([xy, xy[-1:] + ROUTE_EXTENSION_M * heading[None]])
        delta = np.diff(points, axis=0)
        length = np.linalg.norm(delta, axis=1)
        return cls(points[:-1], delta / length[:, None], length, np.concatenate([[0.0], np.cumsum(length)[:-1]]))

    def project(self, xy_m: np.ndarray, segments: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """(station [m], lateral distance [m]) of (N, 2) world positions on their nearest segment (of `segments`)."""
        xy = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
        start, direction, length = self.start_m[segments], self.direction[segments], self.length_m[segments]
        offset = xy[:, None, :] - start[None]  # (N, S, 2)
        along = np.clip((offset * direction[None]).sum(axis=2), 0.0, length[None])  # (N, S)
        gap = offset - along[..., None] * direction[None]
        lateral = np.sqrt((gap * gap).sum(axis=2))
        nearest = np.argmin(lateral, axis=1) if len(xy) and len(length) else np.zeros(len(xy), dtype=np.int64)
        rows = np.arange(len(xy))
        if not len(length):
            return np.full(len(xy), np.nan), np.full(len(xy), np.inf)
        return self.station_m[segments][nearest] + along[rows, nearest], lateral[rows, nearest]

    def ahead(self, ego_xy: np.ndarray, xy_m: np.ndarray, half_width_m: float, reach_m: float
              ) -> tuple[np.ndarray, np.ndarray]:
        """(in the corridor, distance ahead along the route [m]) of positions, seen from the ego at `ego_xy`.

        Only the route from `half_width_m` behind the ego to `reach_m` ahead is searched (positions
        farther along are not in the corridor), so the cost does not grow with the route's length.
        """
        ego_station = float(self.project(np.asarray(ego_xy, dtype=np.float64)[None, :2])[0][0])
        first = max(int(np.searchsorted(self.station_m, ego_station - half_width_m, side="right")) - 1, 0)
        last = int(np.searchsorted(self.station_m, ego_station + reach_m, side="right"))
        station, lateral = self.project(xy_m, slice(first, max(last, first + 1)))
        distance = station - ego_station
        return (lateral <= half_width_m) & (distance > 0) & (distance <= reach_m), distance

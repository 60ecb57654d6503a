"""The logged agents of a replay: exactly as logged, or reacting to a closed-loop ego (IDM).

`LoggedAgents.of(log, frame_indices)` turns a log's boxes over the replayed frames into padded
(A, F) arrays in the world frame, one row per track id (sorted) and one column per frame: presence,
positions, headings, sizes, classes, velocities over the ground and the arc length ("station") each
agent has driven along its own logged path. Where an agent is absent its values are carried from the
nearest frame where it was seen (so rows stay sorted by station and interpolation never meets NaN).
Velocities the log does not give (NaN) come from the agent's consecutive logged positions.

`ReactiveAgents` moves them frame by frame. Open loop and non-reactive closed loop replay the log.
In reactive closed loop (nuPlan's reactive agents, in spirit: Caesar et al. 2021), an agent reacts
when the ego occupies its path ahead: the ego's box lies in the agent's corridor (a strip along the
agent's heading, as wide as the agent plus the ego's extent across it plus `lateral_margin_m`) and
its rear-most point is less than `lookahead_m` ahead of the agent's front. Such an agent follows
the Intelligent Driver Model with the ego as leader (gap: bumper to bumper along the agent's
heading; leader speed: the ego's along that heading), and never advances past the ego's bumper. An
agent that has been held back keeps following its OWN logged path: its station lags the logged
station and never passes it; once free it catches up (IDM toward the logged speed plus
lag / `catch_up_s`, at least `min_catch_up_mps`, at most `max_catch_up_share` of the logged speed),
and once it has caught up it is exactly the
logged agent again. Everything is vectorised over agents; the IDM runs only on agents that are held
back or blocked; positions of lagging agents come from one `searchsorted` over every row at once
(row r's stations offset by r times more than any station).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from andon.scenarios.logstore import boxes_table, ego_poses
from andon.scenarios.records import CLASSES, Log, wrap_angle
from andon.simulation.box_geometry import support_extents

CLASS_NAMES = np.asarray(CLASSES)
# IDM standstill gap of an agent behind the ego, per class (CLASSES order: vehicle, pedestrian, cyclist, static) [m]
MIN_GAP_BY_CLASS_M = np.array([2.0, 0.5, 1.5, 0.0])
_NO_ROWS, _NO_GAPS = np.zeros(0, dtype=np.int64), np.zeros(0)  # read, never written


@dataclass(frozen=True, slots=True)
class ReactiveParams:
    """How reactive agents drive (module docstring).

    Attributes:
        lookahead_m: an ego farther than this ahead of an agent's front does not constrain it [m].
        lateral_margin_m: added to the agent's half width plus the ego's extent across it [m].
        time_headway_s: IDM time gap to the ego [s].
        max_accel_mps2: IDM maximum acceleration [m/s²].
        comfortable_decel_mps2: IDM comfortable deceleration [m/s²].
        max_decel_mps2: hardest braking of an agent [m/s²].
        catch_up_s: a lagging agent's target speed is the logged speed plus lag / catch_up_s ...
        min_catch_up_mps: ... at least this much (so the lag closes in finite time) [m/s] ...
        max_catch_up_share: ... and at most this share of the logged speed (or min_catch_up_mps if more).
        min_target_speed_mps: floor of the IDM target speed (keeps the free-road term finite) [m/s].
    """

    lookahead_m: float = 40.0
    lateral_margin_m: float = 0.5
    time_headway_s: float = 1.0
    max_accel_mps2: float = 1.5
    comfortable_decel_mps2: float = 2.0
    max_decel_mps2: float = 8.0
    catch_up_s: float = 3.0
    min_catch_up_mps: float = 0.5
    max_catch_up_share: float = 0.25
    min_target_speed_mps: float = 1.0


@dataclass(frozen=True, slots=True, eq=False)
class LoggedAgents:
    """The logged agents of the replayed frames, padded to (A, F) (module docstring).

    Attributes:
        track_ids: (A,) str, sorted.
        timestamps_ns: (F,) frame times.
        present: (A, F) bool, True where the log has the agent's box.
        xy_m: (A, F, 2) world positions [m] (carried over where absent).
        z_m: (A, F) box centre heights in the world frame [m].
        yaw_rad: (A, F) world headings [rad].
        size_m: (A, F, 3) length, width, height [m].
        class_codes: (A, F) index into CLASSES.
        velocity_mps: (A, F, 2) world velocities [m/s]; the log's, else from consecutive positions; NaN
            where neither exists (an agent seen once).
        speed_mps: (A, F) |velocity| (0 where unknown) [m/s].
        station_m: (A, F) arc length along the agent's logged path from its first position [m], non-decreasing.
    """

    track_ids: np.ndarray
    timestamps_ns: np.ndarray
    present: np.ndarray
    xy_m: np.ndarray
    z_m: np.ndarray
    yaw_rad: np.ndarray
    size_m: np.ndarray
    class_codes: np.ndarray
    velocity_mps: np.ndarray
    speed_mps: np.ndarray
    station_m: np.ndarray

    @property
    def n_agents(self) -> int:
        return len(self.track_ids)

    @classmethod
    def of(cls, log: Log, frame_indices: np.ndarray) -> LoggedAgents:
        """The agents of `log` over its frames `frame_indices` (increasing), without reading lidar points."""
        frames = np.asarray(frame_indices, dtype=np.int64)
        stamps_all, poses_all = ego_poses(log)
        table = boxes_table(log)
        column = np.full(len(stamps_all), -1, dtype=np.int64)
        column[frames] = np.arange(len(frames))
        rows = np.flatnonzero(column[table["frame_index"]] >= 0)
        f_index = column[table["frame_index"][rows]]
        ids, agent = np.unique(np.asarray(table["track_ids"])[rows], return_inverse=True)
        ids = ids.astype(str)
        n_agents, n_frames = len(ids), len(frames)
        boxes = np.asarray(table["boxes"], dtype=np.float64)[rows].reshape(-1, 7)
        pose = np.asarray(poses_all, dtype=np.float64)[table["frame_index"][rows]].reshape(-1, 4)
        c, s = np.cos(pose[:, 3]), np.sin(pose[:, 3])
        world_xy = np.column_stack([c * boxes[:, 0] - s * boxes[:, 1] + pose[:, 0],
                                    s * boxes[:, 0] + c * boxes[:, 1] + pose[:, 1]])
        velocity = np.asarray(table["velocities_mps"], dtype=np.float64)[rows].reshape(-1, 2)
        world_velocity = np.column_stack([c * velocity[:, 0] - s * velocity[:, 1],
                                          s * velocity[:, 0] + c * velocity[:, 1]])
        classes = np.asarray(table["classes"])[rows]
        codes = np.full(len(rows), len(CLASSES) - 1, dtype=np.int64)  # a class andon does not know counts as static
        for code, name in enumerate(CLASSES[:-1]):
            codes[classes == name] = code

        present = np.zeros((n_agents, n_frames), dtype=bool)
        present[agent, f_index] = True
        dense = {"xy": (world_xy, 2), "z": (boxes[:, 2] + pose[:, 2], 0), "yaw": (wrap_angle(boxes[:, 6] + pose[:, 3]), 0),
                 "size": (boxes[:, 3:6], 3), "code": (codes.astype(np.float64), 0), "vel": (world_velocity, 2)}
        out = {}
        for key, (values, width) in dense.items():
            shape = (n_agents, n_frames) if width == 0 else (n_agents, n_frames, width)
            grid = np.full(shape, np.nan)
            grid[agent, f_index] = values
            out[key] = grid
        source = _nearest_present(present)  # (A, F) column to carry each value from
        take = np.arange(n_agents)[:, None], source
        xy, z, yaw, size = out["xy"][take], out["z"][take], out["yaw"][take], out["size"][take]
        stamps = np.asarray(stamps_all, dtype=np.int64)[frames]
        vel = _fill_velocity(out["vel"], out["xy"], present, stamps)
        step = np.hypot(*np.diff(xy, axis=1).transpose(2, 0, 1)) if n_frames > 1 else np.zeros((n_agents, 0))
        station = np.concatenate([np.zeros((n_agents, 1)), np.cumsum(step, axis=1)], axis=1)
        speed = np.hypot(vel[..., 0], vel[..., 1])
        return cls(track_ids=ids, timestamps_ns=stamps, present=present, xy_m=xy, z_m=z, yaw_rad=yaw, size_m=size,
                   class_codes=out["code"][take].astype(np.int64), velocity_mps=vel,
                   speed_mps=np.where(np.isfinite(speed), speed, 0.0), station_m=station)


def _nearest_present(present: np.ndarray) -> np.ndarray:
    """(A, F) the column each cell takes its values from: the last present one at or before it, else the first."""
    n_agents, n_frames = present.shape
    columns = np.arange(n_frames)
    last = np.maximum.accumulate(np.where(present, columns, -1), axis=1)
    first = np.argmax(present, axis=1) if n_frames else np.zeros(n_agents, dtype=np.int64)
    return np.where(last >= 0, last, first[:, None])


def _fill_velocity(velocity: np.ndarray, xy: np.ndarray, present: np.ndarray, stamps_ns: np.ndarray) -> np.ndarray:
    """The logged velocities, with NaN replaced by the difference to the previous (else next) logged position."""
    out = velocity.copy()
    if present.shape[1] < 2:
        return out
    dt_s = np.diff(stamps_ns).astype(np.float64) * 1e-9  # (F-1,)
    both = present[:, 1:] & present[:, :-1]
    diff = np.diff(xy, axis=1) / dt_s[None, :, None]  # (A, F-1, 2); NaN where either is absent
    backward = np.full_like(out, np.nan)
    backward[:, 1:] = np.where(both[..., None], diff, np.nan)
    forward = np.full_like(out, np.nan)
    forward[:, :-1] = np.where(both[..., None], diff, np.nan)
    out = np.where(np.isfinite(out), out, backward)
    out = np.where(np.isfinite(out), out, forward)
    return np.where(present[..., None], out, np.nan)


@dataclass(frozen=True, slots=True, eq=False)
class AgentFrame:
    """The ground-truth agents present at one frame, as the replay moved them (world frame).

    Attributes:
        rows: (N,) their rows in LoggedAgents.
        boxes: (N, 7) world boxes (x, y, z_centre, length, width, height, yaw).
        class_codes: (N,) index into CLASSES.
        velocity_mps: (N, 2) world velocities [m/s], NaN where unknown.
    """

    rows: np.ndarray
    boxes: np.ndarray
    class_codes: np.ndarray
    velocity_mps: np.ndarray


class ReactiveAgents:
    """Moves the logged agents through a replay, reacting to the ego when `reactive` (module docstring)."""

    def __init__(self, agents: LoggedAgents, reactive: bool, ego_length_m: float, ego_width_m: float,
                 params: ReactiveParams | None = None) -> None:
        self.agents = agents
        self.reactive = reactive
        self.params = params or ReactiveParams()
        self._ego_half = np.array([0.5 * ego_length_m, 0.5 * ego_width_m])
        ego_reach_m = float(np.hypot(*self._ego_half))  # the ego's box lies within this of its centre
        agent_reach_m = float(np.nanmax(np.hypot(agents.size_m[..., 0], agents.size_m[..., 1]), initial=0.0)) / 2
        # |ahead| + |across| bounds the distance: look-ahead + both reaches along, both reaches + margin across.
        self._screen_m2 = (self.params.lookahead_m + 2 * (ego_reach_m + agent_reach_m) + self.params.lateral_margin_m) ** 2
        n_agents, n_frames = agents.present.shape
        self._n_frames = n_frames
        # Everything a frame needs, precomputed for all frames at once and stored frame-major (F, A, ...), so
        # that one frame's values are one contiguous block.
        boxes = np.concatenate([agents.xy_m, agents.z_m[..., None], agents.size_m, agents.yaw_rad[..., None]], axis=-1)
        self._boxes_f = np.ascontiguousarray(boxes.transpose(1, 0, 2))  # (F, A, 7)
        self._velocity_f = np.ascontiguousarray(agents.velocity_mps.transpose(1, 0, 2))  # (F, A, 2)
        self._codes_f = np.ascontiguousarray(agents.class_codes.T)  # (F, A)
        self._present_f = np.ascontiguousarray(agents.present.T)  # (F, A)
        self._cos_f, self._sin_f = np.cos(self._boxes_f[..., 6]), np.sin(self._boxes_f[..., 6])  # (F, A)
        self._min_gap = MIN_GAP_BY_CLASS_M[agents.class_codes]
        # One sorted key over every row: row r's stations shifted by r * offset (rows never interleave).
        self._offset = float(agents.station_m.max()) + 1.0 if agents.station_m.size else 1.0
        self._key = (agents.station_m + self._offset * np.arange(n_agents)[:, None]).ravel()
        self._flat_xy = agents.xy_m.reshape(-1, 2)
        self._flat_yaw = agents.yaw_rad.ravel()
        # State: station and speed along each agent's own path, and the agents behind their logged station.
        self._station = agents.station_m[:, 0].copy()
        self._speed = agents.speed_mps[:, 0].copy()
        self._lagging = np.zeros(0, dtype=np.int64)
        self._previous = 0
        self._lag_xy = np.zeros((0, 2))
        self._lag_yaw = np.zeros(0)

    @property
    def lagging(self) -> np.ndarray:
        """(A,) bool: agents currently behind their logged station."""
        out = np.zeros(self.agents.n_agents, dtype=bool)
        out[self._lagging] = True
        return out

    def step(self, frame: int, dt_s: float, ego_xy_m: np.ndarray, ego_yaw_rad: float,
             ego_speed_mps: float) -> AgentFrame:
        """Move every agent to replayed frame `frame`, reacting to the ego as it was at the previous frame.

        Args:
            frame: column of LoggedAgents (0 = the first replayed frame: the agents start as logged).
            dt_s: time since the previous frame [s].
            ego_xy_m: (2,) the ego's world position at the previous frame [m].
            ego_yaw_rad: its heading then [rad].
            ego_speed_mps: its speed then [m/s].
        """
        ag = self.agents
        s_log, v_log = ag.station_m[:, frame], ag.speed_mps[:, frame]
        blocked_rows, gap_m = _NO_ROWS, _NO_GAPS
        self._previous = max(frame - 1, 0)
        if self.reactive and frame > 0 and dt_s > 0.0:
            blocked_rows, gap_m = self._blocked(frame, ego_xy_m, ego_yaw_rad)
        active = np.union1d(blocked_rows, self._lagging) if len(self._lagging) else blocked_rows
        if len(active) == 0:  # every agent as logged
            self._station, self._speed, self._lagging = s_log, v_log, active
            return self._frame(frame)
        blocked = np.isin(active, blocked_rows, assume_unique=True)
        gaps = np.full(len(active), np.inf)
        gaps[blocked] = gap_m[np.searchsorted(blocked_rows, active[blocked])]
        yaw_now = self._current_yaw(active)
        s_new, v_new = self._idm(active, blocked, gaps, s_log[active], v_log[active], dt_s,
                                 float(ego_speed_mps) * np.cos(ego_yaw_rad - yaw_now), frame)
        behind = s_new < s_log[active] - 1e-6
        station, speed = s_log.copy(), v_log.copy()
        lagging = active[behind]
        station[lagging], speed[lagging] = s_new[behind], v_new[behind]
        self._station, self._speed, self._lagging = station, speed, lagging
        self._lag_xy, self._lag_yaw = self._interpolate(lagging, station[lagging])
        return self._frame(frame)

    def _current_yaw(self, rows: np.ndarray) -> np.ndarray:
        """Headings of agents `rows` as the previous step left them."""
        yaw = self.agents.yaw_rad[rows, self._previous]
        if len(self._lagging):
            mine = np.searchsorted(self._lagging, rows)
            hit = (mine < len(self._lagging)) & (self._lagging[np.minimum(mine, len(self._lagging) - 1)] == rows)
            yaw[hit] = self._lag_yaw[mine[hit]]
        return yaw

    def _blocked(self, frame: int, ego_xy_m: np.ndarray, ego_yaw_rad: float) -> tuple[np.ndarray, np.ndarray]:
        """(rows, bumper gaps [m]) of the agents present now whose corridor ahead the ego occupies (module docstring).

        Positions and headings are the agents' at the previous frame; a coarse screen by distance first
        (it bounds the along and across reach of any blocking pair), then the exact extents of the ego's
        box along and across each agent's heading.
        """
        p = self.params
        previous = self._previous
        xy, cos, sin = self._boxes_f[previous, :, :2], self._cos_f[previous], self._sin_f[previous]
        if len(self._lagging):
            xy, cos, sin = xy.copy(), cos.copy(), sin.copy()
            xy[self._lagging] = self._lag_xy
            cos[self._lagging], sin[self._lagging] = np.cos(self._lag_yaw), np.sin(self._lag_yaw)
        dx, dy = ego_xy_m[0] - xy[:, 0], ego_xy_m[1] - xy[:, 1]
        rows = ((dx * dx + dy * dy < self._screen_m2) & self._present_f[frame]).nonzero()[0]  # within reach at all
        if len(rows) == 0:
            return rows, _NO_GAPS
        cos, sin, dx, dy = cos[rows], sin[rows], dx[rows], dy[rows]
        ahead, left = cos * dx + sin * dy, cos * dy - sin * dx
        size = self._boxes_f[frame, rows, 3:5]
        along, across = support_extents(self._ego_half, np.float64(ego_yaw_rad), np.arctan2(sin, cos))
        gap = ahead - 0.5 * size[:, 0] - along
        keep = (ahead > 0.0) & (gap < p.lookahead_m) & (np.abs(left) < 0.5 * size[:, 1] + across + p.lateral_margin_m)
        return rows[keep], gap[keep]

    def _idm(self, rows: np.ndarray, blocked: np.ndarray, gap_m: np.ndarray, s_log: np.ndarray, v_log: np.ndarray,
             dt_s: float, lead_speed_mps: np.ndarray, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """IDM step of agents `rows`: toward their (caught-up) logged speed, behind the ego where blocked."""
        p = self.params
        s, v = self._station[rows], self._speed[rows]
        lag = np.maximum(s_log - s, 0.0)
        most = np.maximum(p.max_catch_up_share * v_log, p.min_catch_up_mps)
        catch_up = np.where(lag > 0.0, np.clip(lag / p.catch_up_s, p.min_catch_up_mps, most), 0.0)
        target = np.maximum(v_log + catch_up, p.min_target_speed_mps)
        accel = p.max_accel_mps2 * (1.0 - (v / target) ** 4)
        two_sqrt_ab = 2.0 * math.sqrt(p.max_accel_mps2 * p.comfortable_decel_mps2)
        desired = self._min_gap[rows, frame] + np.maximum(v * p.time_headway_s + v * (v - lead_speed_mps) / two_sqrt_ab,
                                                          0.0)
        accel = accel - np.where(blocked, p.max_accel_mps2 * (desired / np.maximum(gap_m, 0.01)) ** 2, 0.0)
        accel = np.clip(accel, -p.max_decel_mps2, p.max_accel_mps2)
        v_next = np.maximum(v + accel * dt_s, 0.0)
        s_next = s + 0.5 * (v + v_next) * dt_s
        s_next = np.where(blocked, np.minimum(s_next, s + np.maximum(gap_m, 0.0)), s_next)  # never into the ego
        s_next = np.maximum(np.minimum(s_next, s_log), s)  # never past the log, never backwards
        return s_next, v_next

    def _interpolate(self, rows: np.ndarray, station_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions and headings of agents `rows` at stations along their own logged paths."""
        n_frames = self._n_frames
        if n_frames < 2 or len(rows) == 0:
            return self.agents.xy_m[rows, 0], self.agents.yaw_rad[rows, 0]
        shift = rows * self._offset
        j = np.searchsorted(self._key, station_m + shift, side="right") - 1
        j = np.clip(j, rows * n_frames, rows * n_frames + n_frames - 2)
        s0, s1 = self._key[j] - shift, self._key[j + 1] - shift
        span = s1 - s0
        t = np.clip(np.divide(station_m - s0, span, out=np.zeros_like(span), where=span > 0), 0.0, 1.0)
        xy = self._flat_xy[j] + t[:, None] * (self._flat_xy[j + 1] - self._flat_xy[j])
        yaw = np.where(t < 0.5, self._flat_yaw[j], self._flat_yaw[j + 1])
        return xy, yaw

    def _frame(self, frame: int) -> AgentFrame:
        """The agents present at `frame`: logged boxes, lagging ones moved back along their paths."""
        rows = self._present_f[frame].nonzero()[0]
        boxes = self._boxes_f[frame][rows]
        velocity = self._velocity_f[frame][rows]
        if len(self._lagging):
            mine = np.searchsorted(rows, self._lagging)
            shown = (mine < len(rows)) & (rows[np.minimum(mine, len(rows) - 1)] == self._lagging)
            at, yaw = mine[shown], self._lag_yaw[shown]
            boxes[at, :2], boxes[at, 6] = self._lag_xy[shown], yaw
            velocity = velocity.copy()
            velocity[at] = self._speed[self._lagging[shown], None] * np.column_stack([np.cos(yaw), np.sin(yaw)])
        return AgentFrame(rows=rows, boxes=boxes, class_codes=self._codes_f[frame][rows], velocity_mps=velocity)

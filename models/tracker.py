"""Multi-object tracker: constant-velocity Kalman filters and Hungarian assignment, all tracks at once.

Each track's state is (x, y, vx, vy) in the log's world frame [m, m/s] with a 4 x 4 covariance. Per
frame: every track is predicted `dt` ahead (white-noise acceleration of std `process_noise_mps2`),
detections are assigned to tracks by the Hungarian algorithm (scipy's `linear_sum_assignment`) on the
BEV distance between a detection's centre and a track's predicted centre, only within one class and
only below the track's gate: `gating_distance_m`, or `gating_sigmas` standard deviations of its
predicted position when that is wider (so a new track, whose velocity is unknown, still finds a fast
object at the detector's next sweep, even half a second later); matched tracks take a Kalman update (measurement noise
`measurement_noise_m` on x and y), unmatched detections start new tracks (at rest, with velocity std
`initial_speed_std_mps`), and tracks unmatched for more than `max_age_frames` frames are dropped. A
track is confirmed once it has been matched in `min_hits` frames, and stays so.

Predict and update run on one stacked array of every track; the only Python loop is over frames. The
motion model, the process noise, the measurement noise and a new track's covariance are the same
along x and along y and never couple them, so the 4 x 4 covariance is two equal 2 x 2 blocks (position,
velocity) with zeros between them: each track keeps one block, (pp, pv, vp, vv), and the filter does
the 4 x 4 filter's arithmetic on it, operation for operation, so the results are bit for bit those of
the full matrices (pv and vp are kept apart: the update's rounding makes them differ in the last bit).
A track's row packs its state and its block as a position half and a velocity half, (x, y, pp, pv, vx,
vy, vp, vv), so that F (position += dt x velocity) acts on both in one operation. Tracking costs well
under a tenth of a millisecond per frame of 50 detections, so it fits the simulator's per-frame budget.

The tracker is a node of the model DAG although it is not trained: `fingerprint_params()` is its
config, which is all that fixes its output besides the code and the detections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from andon.errors import BadInput
from andon.scenarios.records import CLASSES

CLASS_CODES: dict[str, int] = {name: code for code, name in enumerate(CLASSES)}
# Cost of a forbidden pair (other class, or beyond the gate): larger than any sum of allowed costs, so
# the assignment first maximises the number of allowed pairs, then minimises their distances.
_FORBIDDEN = 1e9
_CLASS_SEPARATION_M = 1e6
# Columns of Tracker._state (module docstring): the state (x, y, vx, vy) and the covariance block (pp, pv, vp, vv).
_X, _Y, _PP, _PV, _VX, _VY, _VP, _VV = range(8)
_STATE = np.array([_X, _Y, _VX, _VY])


@dataclass
class TrackerConfig:
    """What fixes the tracker's behaviour (Hydra schema of configs/model/tracker.yaml; not frozen).

    Attributes:
        process_noise_mps2: std of the white-noise acceleration of the constant-velocity model [m/s²].
        measurement_noise_m: std of a detection's BEV centre along x and along y [m].
        initial_speed_std_mps: std of a new track's unknown velocity [m/s] (it starts at rest).
        gating_distance_m: a detection farther than this from a track's predicted centre never
            matches it [m], ...
        gating_sigmas: ... unless the track's gate is wider: this many standard deviations of its
            predicted position (a new track whose velocity is unknown, a long gap between frames).
        max_age_frames: a track unmatched for more than this many consecutive frames is dropped.
        min_hits: frames a track must be matched in before it is confirmed.
        min_score: detections scoring below this are ignored (track id -1).
    """

    process_noise_mps2: float = 2.0
    measurement_noise_m: float = 0.3
    initial_speed_std_mps: float = 8.0
    gating_distance_m: float = 2.5
    gating_sigmas: float = 3.0
    max_age_frames: int = 3
    min_hits: int = 2
    min_score: float = 0.3

    def __post_init__(self) -> None:
        for name in ("process_noise_mps2", "measurement_noise_m", "initial_speed_std_mps", "gating_distance_m",
                     "gating_sigmas"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value) or value <= 0:
                raise BadInput(f"tracker.{name}={value!r} must be a positive number")
        for name, lowest in (("max_age_frames", 0), ("min_hits", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lowest:
                raise BadInput(f"tracker.{name}={value!r} must be a whole number >= {lowest}")
        if not (isinstance(self.min_score, int | float) and np.isfinite(self.min_score)):
            raise BadInput(f"tracker.min_score={self.min_score!r} must be a finite number (0 keeps every detection)")


@dataclass(frozen=True, slots=True, eq=False)
class FrameTracks:
    """The tracker's answer for one frame's detections, in their input order.

    Attributes:
        track_ids: (N,) int64 track of each detection; -1 where it was ignored (score below min_score).
        states: (N, 4) float64 filtered (x, y, vx, vy) in the world frame [m, m/s]; NaN where ignored.
        confirmed: (N,) bool, True where the detection's track is confirmed (min_hits reached).
    """

    track_ids: np.ndarray
    states: np.ndarray
    confirmed: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class TrackTable:
    """Every live track after a frame: ids (T,), states (T, 4) world, confirmed (T,), class codes (T,)."""

    track_ids: np.ndarray
    states: np.ndarray
    confirmed: np.ndarray
    class_codes: np.ndarray
    frames_since_update: np.ndarray


def class_codes(classes: Sequence[str] | np.ndarray) -> np.ndarray:
    """Integer codes of class names (index into andon's CLASSES); integer input passes through.

    Raises:
        BadInput: naming a class that is not one of andon's.
    """
    array = np.asarray(classes)
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    try:
        return np.array([CLASS_CODES[name] for name in array.tolist()], dtype=np.int64)
    except KeyError as exc:
        raise BadInput(f"unknown detection class {exc.args[0]!r}: use one of {list(CLASSES)}") from None


class Tracker:
    """Constant-velocity Kalman tracker with per-class Hungarian assignment (module docstring).

    Use `track(...)` for a whole log (it starts afresh), or `reset()` then `step(...)` frame by frame
    (the simulator); `tracks()` gives the live tracks between steps.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        if not isinstance(self.config, TrackerConfig):
            raise BadInput(f"Tracker needs a TrackerConfig, got {type(self.config).__name__}")
        sigma = self.config.measurement_noise_m
        self._r = sigma * sigma  # measurement variance along x and along y [m²]
        # A new track's row after its position: (pp, pv, vx, vy, vp, vv), at rest, its velocity unknown.
        self._birth_row = np.array([sigma * sigma, 0.0, 0.0, 0.0, 0.0, self.config.initial_speed_std_mps ** 2])
        self.reset()

    def fingerprint_params(self) -> dict[str, Any]:
        """The config as plain JSON values: what the model DAG hashes for this node."""
        return dataclasses.asdict(self.config)

    def reset(self) -> None:
        """Forget every track; ids start again at 0."""
        self._ids = _read_only(np.zeros(0, dtype=np.int64))
        self._state = np.zeros((0, 8))  # per track: x, y, pp, pv, vx, vy, vp, vv (module docstring)
        self._cls = _read_only(np.zeros(0, dtype=np.int64))
        self._cls_m = np.zeros(0)  # class code x _CLASS_SEPARATION_M: the third coordinate of the assignment
        self._hits = np.zeros(0, dtype=np.int64)
        self._misses = np.zeros(0, dtype=np.int64)
        self._next_id = 0
        self._last_ns: int | None = None
        self._q_dt_s = -1.0
        self._q = np.zeros(8)

    def tracks(self) -> TrackTable:
        """The live tracks (after the last step), confirmed or not.

        Ids and class codes are shared with the tracker (read-only arrays: it replaces them, never writes
        into them); states and ages are copies.
        """
        return TrackTable(self._ids, self._state[:, _STATE], self._hits >= self.config.min_hits, self._cls,
                          self._misses.copy())

    def step(self, xy_m: np.ndarray, classes: Sequence[str] | np.ndarray, timestamp_ns: int,
             scores: np.ndarray | None = None, ego_pose: Sequence[float] | None = None) -> FrameTracks:
        """Advance every track to `timestamp_ns`, then assign and absorb this frame's detections.

        Args:
            xy_m: (N, 2) detection centres in the world frame [m] (in the ego frame with `ego_pose`).
            classes: N class names (or their CLASS_CODES).
            timestamp_ns: the frame's time; must increase from step to step.
            scores: (N,) detection scores, or None (every detection counts).
            ego_pose: (x, y, z, yaw) of the ego in the world frame when `xy_m` is in the ego frame.
                States are always in the world frame (`world_velocity_to_ego` turns velocities back).

        Raises:
            BadInput: for mismatched lengths, non-finite centres or a timestamp that does not increase.
        """
        cfg = self.config
        xy = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
        if ego_pose is not None:
            xy = ego_to_world(xy, ego_pose)
        codes = class_codes(classes)
        n = len(xy)
        if len(codes) != n or (scores is not None and len(scores) != n):
            raise BadInput(f"{n} detection centres but {len(codes)} classes"
                           + ("" if scores is None else f" and {len(scores)} scores") + ": give one per detection")
        if not np.isfinite(xy).all():
            raise BadInput(f"detection centres at {timestamp_ns} ns hold NaN or infinite values: drop those detections")
        if self._last_ns is not None and timestamp_ns <= self._last_ns:
            raise BadInput(f"frame time {timestamp_ns} ns does not follow the previous frame ({self._last_ns} ns): "
                           f"feed frames in time order, or reset() the tracker between logs")
        dt_s = 0.0 if self._last_ns is None else (timestamp_ns - self._last_ns) * 1e-9
        self._last_ns = int(timestamp_ns)
        self._predict(dt_s)

        used = None if scores is None else np.flatnonzero(np.asarray(scores, dtype=np.float64) >= cfg.min_score)
        if used is not None:
            xy, codes = xy[used], codes[used]
        rows, cols = self._assign(xy, codes)
        if len(rows):
            self._update(rows, xy[cols])
        self._misses += 1
        self._misses[rows] = 0
        self._hits[rows] += 1

        # Row of each detection's track; unmatched detections start tracks at rest, appended at the end.
        n_tracks = len(self._ids)
        slot = np.empty(len(xy), dtype=np.int64)
        slot[cols] = rows
        if len(cols) < len(xy):
            born = np.ones(len(xy), dtype=bool)
            born[cols] = False
            new = born.nonzero()[0]
            slot[new] = n_tracks + np.arange(len(new))
            self._birth(xy[new], codes[new])
        confirmed = self._hits[slot] >= cfg.min_hits
        ids, states = self._ids[slot], self._state[slot[:, None], _STATE]
        if used is not None:  # ignored detections get id -1, NaN state, unconfirmed
            ids, states, confirmed = _scatter(n, used, ids, -1), _scatter(n, used, states, np.nan), \
                _scatter(n, used, confirmed, False)

        alive = self._misses <= cfg.max_age_frames if len(rows) < n_tracks else None  # None: every track matched
        if alive is not None and not alive.all():
            self._ids, self._state = _read_only(self._ids[alive]), self._state[alive]
            self._cls, self._cls_m = _read_only(self._cls[alive]), self._cls_m[alive]
            self._hits, self._misses = self._hits[alive], self._misses[alive]
        return FrameTracks(ids, states, confirmed)

    def track(self, frames: Iterable[tuple[int, np.ndarray, Sequence[str] | np.ndarray, np.ndarray | None]]
              ) -> list[FrameTracks]:
        """Track a whole log from scratch: frames of (timestamp_ns, xy_m (N, 2) world, classes, scores | None)."""
        self.reset()
        return [self.step(xy, classes, stamp, scores) for stamp, xy, classes, scores in frames]

    def _birth(self, xy: np.ndarray, codes: np.ndarray) -> None:
        """Start tracks at rest at `xy` (K, 2), matched once."""
        k = len(xy)
        self._ids = _read_only(np.concatenate([self._ids, self._next_id + np.arange(k)]))
        self._next_id += k
        born = np.empty((k, 8))
        born[:, :2], born[:, 2:] = xy, self._birth_row
        self._state = np.concatenate([self._state, born])
        self._cls = _read_only(np.concatenate([self._cls, codes]))
        self._cls_m = self._cls * _CLASS_SEPARATION_M
        self._hits = np.concatenate([self._hits, np.ones(k, dtype=np.int64)])
        self._misses = np.concatenate([self._misses, np.zeros(k, dtype=np.int64)])

    # ----- filter ---------------------------------------------------------------------------------
    # The comments name the 4 x 4 filter's operation that each line repeats on the packed rows (P its
    # covariance, F = [[I, dt I], [0, I]], H = [I 0], gain K = P H^T S^-1).
    def _predict(self, dt_s: float) -> None:
        """x <- F x, P <- F P F^T + Q for every track at once (constant velocity, white acceleration)."""
        if dt_s <= 0.0 or len(self._ids) == 0:
            return
        state = self._state
        state[:, :4] += dt_s * state[:, 4:]  # F x, and F P (rows): x, y, pp, pv += dt (vx, vy, vp, vv)
        state[:, _PP::4] += dt_s * state[:, _PV::4]  # (F P) F^T (columns): pp, vp += dt (pv, vv)
        state += self._process_noise(dt_s)

    def _process_noise(self, dt_s: float) -> np.ndarray:
        """Q's block as a row of the state (zero on x, y, vx, vy) for white-noise acceleration over dt (cached:
        frames of one log share their period)."""
        if dt_s != self._q_dt_s:
            q = self.config.process_noise_mps2 ** 2
            a, b, c = q * dt_s ** 4 / 4, q * dt_s ** 3 / 2, q * dt_s ** 2
            self._q = np.array([0.0, 0.0, a, b, 0.0, 0.0, b, c])
            self._q_dt_s = dt_s
        return self._q

    def _update(self, rows: np.ndarray, z: np.ndarray) -> None:
        """Kalman update of tracks `rows` with measurements z (M, 2), batched."""
        state = self._state[rows]  # (M, 8)
        s = state[:, _PP] + self._r  # S = P_pos + R: the same along x and y, nothing between them
        s_inv = s / (s * s)  # as the 2 x 2 inverse computes it: S11 / (S00 S11 - S01 S01), with S01 = 0
        gain = state[:, _PP::4] * s_inv[:, None]  # (M, 2): K's position and velocity gains, (pp, vp) / S
        # x += K (z - H x) and P -= K H P at once: the gains times (dx, dy, -pp, -pv) add to either half.
        terms = np.concatenate([z - state[:, :2], -state[:, _PP:_VX]], axis=1)
        state += (gain[:, :, None] * terms[:, None, :]).reshape(-1, 8)
        self._state[rows] = state

    def _assign(self, xy: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(track rows, detection rows) of the allowed Hungarian matches: same class, within the gate."""
        if len(xy) == 0 or len(self._ids) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        # A third coordinate of class code x 1e6 m puts other classes far beyond any gate: one C-level
        # distance matrix gives both the BEV distance and the class test.
        tracks = np.empty((len(self._ids), 3))
        tracks[:, :2], tracks[:, 2] = self._state[:, :2], self._cls_m
        detections = np.empty((len(xy), 3))
        detections[:, :2], detections[:, 2] = xy, codes * _CLASS_SEPARATION_M
        distance = cdist(tracks, detections)  # (T, N) [m]
        gate = np.maximum(self.config.gating_distance_m, self.config.gating_sigmas * np.sqrt(self._state[:, _PP]))
        allowed = distance < gate[:, None]
        if not allowed.any():
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        distance[~allowed] = _FORBIDDEN
        rows, cols = linear_sum_assignment(distance)
        keep = allowed[rows, cols]
        return rows[keep].astype(np.int64, copy=False), cols[keep].astype(np.int64, copy=False)


def _read_only(array: np.ndarray) -> np.ndarray:
    """`array`, no longer writeable: track ids and classes are shared with callers of `tracks()`."""
    array.flags.writeable = False
    return array


def _scatter(n: int, at: np.ndarray, values: np.ndarray, fill: Any) -> np.ndarray:
    out = np.full((n, *values.shape[1:]), fill, dtype=values.dtype)
    out[at] = values
    return out


def make_tracker(**params: Any) -> Tracker:
    """A Tracker from config values (the `_target_` of configs/model/tracker.yaml).

    Raises:
        BadInput: an unknown key (naming it and the known ones) or a bad value.
    """
    known = {f.name for f in dataclasses.fields(TrackerConfig)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise BadInput(f"unknown tracker settings {unknown}: the tracker takes {sorted(known)}")
    return Tracker(TrackerConfig(**params))


def ego_to_world(xy_ego_m: np.ndarray, ego_pose: Sequence[float]) -> np.ndarray:
    """(N, 2) ego-frame centres -> world frame of the pose (x, y, z, yaw)."""
    c, s = np.cos(ego_pose[3]), np.sin(ego_pose[3])
    p = np.asarray(xy_ego_m, dtype=np.float64).reshape(-1, 2)
    return np.column_stack([c * p[:, 0] - s * p[:, 1] + ego_pose[0], s * p[:, 0] + c * p[:, 1] + ego_pose[1]])


def world_velocity_to_ego(v_world_mps: np.ndarray, ego_yaw_rad: float) -> np.ndarray:
    """(N, 2) velocities over the ground, world axes -> ego axes (as Frame.velocities_mps holds them)."""
    c, s = np.cos(ego_yaw_rad), np.sin(ego_yaw_rad)
    v = np.asarray(v_world_mps, dtype=np.float64).reshape(-1, 2)
    return np.column_stack([c * v[:, 0] + s * v[:, 1], -s * v[:, 0] + c * v[:, 1]])

"""Log replay: one scenario through the whole stack, frame by frame, in open or closed loop.

`replay_scenario(log, scenario, stack, config)` takes the log's frames within the scenario's window
and, for each frame in time order:

1. ground truth: the logged agents (simulation.reactive): as logged in open loop and non-reactive
   closed loop; in reactive closed loop, held back along their own logged paths by an ego in their way.
2. sensing: open loop feeds the logged frame; closed loop renders it at the simulated ego pose
   (simulation.sensors: a synthetic log's scene is ray-cast again, a real log's sweep is moved).
   A stack whose detector reads ground truth only (the oracle, `Stack.reads_points` False) gets the
   ground-truth boxes at the ego's pose without any lidar work.
3. detection (ego frame → world), then one tracker step (the tracker is reset per scenario; a frame
   the detector cannot see, without a sweep, is no tracker step: tracks coast at their velocity).
4. prediction for the confirmed tracks: the stack's predictor on the tracks' histories, kept at its
   step in a short buffer (prediction_features_batch, the training transform), or constant velocity
   from the tracker's states (the rule of andon.models.baselines.constant_velocity_rollout).
   The planner gets each track's most probable mode.
5. planning along the route = the logged ego path of the whole log, continued straight for
   `route_extension_m` past its end, at the planner's default desired speed. Logs carry no light
   states, so the logged driver's stops stand in for lights and yields: wherever the LOGGED ego stood
   (speed below `stop_speed_mps` for at least `stop_min_s`), its front at the stop (plus the
   planner's stop-line margin) is a stop line, in force until the logged ego drove off. Tracks whose
   centre is behind the ego's rear are not given to the planner: closing in from behind is the
   follower's to avoid (a car predicted to drive through the ego must not become an obstacle ahead
   of it, to wait for forever); the TTC check leaves them out too. A planner
   that raises or returns a non-finite plan is recorded (plan_ok False, a planner_failure event);
   the replay goes on.
6. the ego: open loop, as logged; closed loop, along its plan for one frame period (the plan
   interpolated at the next frame's time); after a planner failure it brakes comfortably along the route.

Then the disengagements (simulation.events) and the distances: `km` is the path the replayed ego
drove over the frames, `logged_km` the logged ego's over the same frames. Logged speeds are central
differences of the logged positions. No wall clock and no unseeded randomness: the same inputs give
the same trace.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from andon.errors import BadInput
from andon.models.planner import PlannedTrajectory
from andon.models.route import Route
from andon.scenarios.logstore import ego_poses
from andon.scenarios.records import CLASSES, Log, Scenario
from andon.simulation.events import detect_events
from andon.simulation.reactive import AgentFrame, LoggedAgents, ReactiveAgents
from andon.simulation.sensors import SensorModel, frame_at_pose
from andon.simulation.stack import Stack
from andon.simulation.trace import CLOSED_LOOP, MODES, FrameTrace, ScenarioTrace

CLASS_NAMES = np.asarray(CLASSES)
# Length of a tracked agent along the route by class (CLASSES order), for the planner's gaps [m].
AGENT_LENGTH_BY_CLASS_M = np.array([4.5, 0.6, 1.8, 1.0])
_EMPTY2 = np.zeros((0, 2))
_EMPTY7 = np.zeros((0, 7))
_NO_NAMES = np.zeros(0, dtype=CLASS_NAMES.dtype)
_SORTED_CODES = np.argsort(CLASS_NAMES)
_SORTED_NAMES = CLASS_NAMES[_SORTED_CODES]
_CODE_OF = {name: code for code, name in enumerate(CLASSES)}


@dataclass
class ReplayConfig:
    """How a scenario is replayed (the `replay` group of `andon sim run`; not frozen: Hydra merges into it).

    Attributes:
        mode: "closed_loop" (the ego follows its plan) or "open_loop" (the ego drives as logged).
        reactive: in closed loop, logged agents react to the ego (simulation.reactive).
        ttc_threshold_s: a plan within the safety margin of an agent sooner than this is a disengagement [s].
        safety_margin_m: the margin around the ego's box for the TTC check [m].
        perception_miss_s: an unperceived road user in the stopping corridor for longer than this is one [s].
        stopping_decel_mps2: braking that defines the stopping distance v² / (2 a) [m/s²].
        merge_window_s: parts at most this far apart merge into one event [s].
        match_distance_m: a detection or confirmed track this close to an object perceives it [m].
        seed: seeds the closed-loop sensors.
        ego_length_m, ego_width_m: the ego's box [m].
        perception_margin_m: added to the stopping distance of the perception check [m].
        corridor_margin_m: added to the ego's half width for the perception corridor [m].
        stopped_speed_mps: below this the ego stands and the TTC check is skipped [m/s].
        stop_speed_mps: a logged ego slower than this stands (logged stops become stop lines) [m/s] ...
        stop_min_s: ... when it stands at least this long [s].
        route_extension_m: the route runs on straight this far past the logged path's end [m].
    """

    mode: str = CLOSED_LOOP
    reactive: bool = True
    ttc_threshold_s: float = 1.5
    safety_margin_m: float = 0.3
    perception_miss_s: float = 0.5
    stopping_decel_mps2: float = 4.0
    merge_window_s: float = 3.0
    match_distance_m: float = 2.0
    seed: int = 0
    ego_length_m: float = 4.6
    ego_width_m: float = 1.9
    perception_margin_m: float = 5.0
    corridor_margin_m: float = 0.5
    stopped_speed_mps: float = 0.1
    stop_speed_mps: float = 0.5
    stop_min_s: float = 1.0
    route_extension_m: float = 200.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BadInput(f"replay.mode={self.mode!r}: choose one of {', '.join(MODES)}")
        if not isinstance(self.reactive, bool):
            raise BadInput(f"replay.reactive={self.reactive!r} must be true or false")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise BadInput(f"replay.seed={self.seed!r} must be a whole number >= 0")
        for f in fields(self):
            if f.name in ("mode", "reactive", "seed"):
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise BadInput(f"replay.{f.name}={value!r} must be a finite number")
            positive = f.name not in ("safety_margin_m", "perception_miss_s", "merge_window_s", "perception_margin_m",
                                      "corridor_margin_m", "stopped_speed_mps", "stop_min_s", "route_extension_m")
            if value < 0 or (positive and value == 0):
                raise BadInput(f"replay.{f.name}={value!r} must be {'positive' if positive else '0 or more'}")


@dataclass(frozen=True, slots=True, eq=False)
class LoggedEgo:
    """The logged ego over the whole log: times (F,), poses (F, 4), speeds (F,) [m/s] (central differences)."""

    timestamps_ns: np.ndarray
    poses: np.ndarray
    speed_mps: np.ndarray

    @classmethod
    def of(cls, log: Log) -> LoggedEgo:
        stamps, poses = ego_poses(log)
        stamps = np.asarray(stamps, dtype=np.int64)
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4)
        if len(stamps) > 1:
            velocity = np.gradient(poses[:, :2], stamps.astype(np.float64) * 1e-9, axis=0)
            speed = np.hypot(velocity[:, 0], velocity[:, 1])
        else:
            speed = np.zeros(len(stamps))
        return cls(stamps, poses, speed)


def logged_route(ego: LoggedEgo, extension_m: float) -> Route:
    """The logged ego path, continued straight along the last logged heading for `extension_m`."""
    xy = ego.poses[:, :2]
    yaw = ego.poses[-1, 3]
    ahead = xy[-1] + max(extension_m, 1.0) * np.array([np.cos(yaw), np.sin(yaw)])
    return Route.from_polyline(np.vstack([xy, ahead]))


def logged_stops(ego: LoggedEgo, stop_speed_mps: float, stop_min_s: float, front_offset_m: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Stop lines where the logged ego stood (module docstring, 5.).

    Args:
        ego: the logged ego.
        stop_speed_mps: slower than this counts as standing [m/s].
        stop_min_s: a stop lasts at least this long [s].
        front_offset_m: from the ego's centre to the stop line along its heading [m] (half its length plus
            the planner's stop-line margin, so that the planner stops the ego where the logged one stood).

    Returns:
        (L, 2) stop-line points (world) and (L,) int64 times [ns] when each is lifted (the stop's last frame).
    """
    slow = ego.speed_mps < stop_speed_mps
    edges = np.diff(np.r_[0, slow.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    stamps = ego.timestamps_ns
    long_enough = (stamps[ends] - stamps[starts]) >= int(round(stop_min_s * 1e9))
    starts, ends = starts[long_enough], ends[long_enough]
    where = ego.poses[ends]
    points = where[:, :2] + front_offset_m * np.column_stack([np.cos(where[:, 3]), np.sin(where[:, 3])])
    return points.reshape(-1, 2), stamps[ends].astype(np.int64)


@dataclass(frozen=True, slots=True, eq=False)
class Detections:
    """One frame's detections in the world frame: boxes (D, 7), class names (D,), their codes (D,), scores (D,)."""

    boxes: np.ndarray
    names: np.ndarray
    codes: np.ndarray
    scores: np.ndarray


_NO_DETECTIONS = Detections(_EMPTY7, _NO_NAMES, np.zeros(0, dtype=np.int64), np.zeros(0))


class TrackHistory:
    """Recent positions of the live tracks, to build the predictor's history at its own step."""

    def __init__(self, step_s: float, history_steps: int) -> None:
        self._step_ns = int(round(step_s * 1e9))
        self._steps = history_steps
        self._keep_ns = self._step_ns * history_steps + self._step_ns
        self._snapshots: deque[tuple[int, np.ndarray, np.ndarray]] = deque()

    def record(self, timestamp_ns: int, ids: np.ndarray, xy_m: np.ndarray) -> None:
        order = np.argsort(ids, kind="stable")
        self._snapshots.append((int(timestamp_ns), ids[order], xy_m[order]))
        while self._snapshots and self._snapshots[0][0] < timestamp_ns - self._keep_ns:
            self._snapshots.popleft()

    def history(self, timestamp_ns: int, ids: np.ndarray) -> np.ndarray:
        """(T, H, 2) positions of tracks `ids` at timestamp_ns - (H-1) step ... timestamp_ns; NaN where unknown."""
        out = np.full((len(ids), self._steps, 2), np.nan)
        if not self._snapshots:
            return out
        times = np.array([s[0] for s in self._snapshots], dtype=np.int64)
        for k in range(self._steps):
            target = timestamp_ns - (self._steps - 1 - k) * self._step_ns
            nearest = int(np.argmin(np.abs(times - target)))
            if abs(int(times[nearest]) - target) > self._step_ns // 2:
                continue
            _, known, xy = self._snapshots[nearest]
            if len(known) == 0:
                continue
            slot = np.minimum(np.searchsorted(known, ids), len(known) - 1)
            hit = known[slot] == ids
            out[hit, k] = xy[slot[hit]]
        return out


def replay_scenario(log: Log, scenario: Scenario, stack: Stack, config: ReplayConfig) -> ScenarioTrace:
    """Replay `scenario` of `log` through `stack` (module docstring).

    Raises:
        BadInput: the scenario belongs to another log, has no frame in its window, or its frames are not
            in increasing time order; or the detector answers with a malformed output.
    """
    if scenario.log_id != log.log_id:
        raise BadInput(f"scenario {scenario.scenario_id} belongs to log {scenario.log_id}, not {log.log_id}: "
                       f"pass the scenario's own log (Catalog.log(scenario.log_id))")
    ego = LoggedEgo.of(log)
    chosen = np.flatnonzero((ego.timestamps_ns >= scenario.t_start_ns) & (ego.timestamps_ns <= scenario.t_end_ns))
    if len(chosen) == 0:
        raise BadInput(f"scenario {scenario.scenario_id} has no frame of log {log.log_id} in its window "
                       f"[{scenario.t_start_ns}, {scenario.t_end_ns}] ns: retire it or fix its window")
    if np.any(np.diff(ego.timestamps_ns[chosen]) <= 0):
        raise BadInput(f"log {log.log_id} has frames out of time order in scenario {scenario.scenario_id}: "
                       f"re-import the log")
    return _Replay(log, scenario, stack, config, ego, chosen).run()


class _Replay:
    """One replay's state; `run()` steps through the frames (module docstring)."""

    def __init__(self, log: Log, scenario: Scenario, stack: Stack, config: ReplayConfig, ego: LoggedEgo,
                 chosen: np.ndarray) -> None:
        self.log, self.scenario, self.stack, self.config = log, scenario, stack, config
        self.ego, self.chosen = ego, chosen
        self.closed = config.mode == CLOSED_LOOP
        planner = stack.planner.config
        self.route = logged_route(ego, config.route_extension_m)
        self.stop_points, self.stop_until_ns = logged_stops(ego, config.stop_speed_mps, config.stop_min_s,
                                                            0.5 * planner.ego_length_m + planner.stop_line_margin_m)
        self.agents = LoggedAgents.of(log, chosen)
        self.mover = ReactiveAgents(self.agents, self.closed and config.reactive, config.ego_length_m,
                                    config.ego_width_m)
        self.sensor = SensorModel.for_log(log, scenario.scenario_id, config.seed, ego.poses[chosen, :2]) \
            if self.closed and stack.reads_points else None
        self.history = TrackHistory(stack.prediction_step_s, stack.prediction_history_steps) \
            if stack.predictor is not None else None
        self.moved_sweep = False
        self.cv_times_s = np.arange(stack.prediction_horizon_steps + 1) * stack.prediction_step_s
        self.track_id_list = self.agents.track_ids.tolist()  # the detector's Frame takes lists of str
        self.last_step_ns: int | None = None

    def run(self) -> ScenarioTrace:
        stack, ego, chosen = self.stack, self.ego, self.chosen
        stack.tracker.reset()
        stamps = ego.timestamps_ns.tolist()  # Python ints: per-frame arithmetic on numpy scalars costs more
        last = len(stamps) - 1
        first = int(chosen[0])
        pose = ego.poses[first].copy()
        speed = float(ego.speed_mps[first])
        previous = (pose[:2].copy(), float(pose[3]), speed)
        frames: list[FrameTrace] = []
        stamp = stamps[first]
        for k, i in enumerate(chosen.tolist()):
            dt_s = 0.0 if k == 0 else (stamps[i] - stamp) * 1e-9
            stamp = stamps[i]
            if not self.closed:
                pose, speed = ego.poses[i].copy(), float(ego.speed_mps[i])
            truth = self.mover.step(k, dt_s, *previous)
            detections, has_sweep = self._detect(i, k, stamp, pose, truth)
            tracks = self._track(stamp, detections, has_sweep)
            modes, probs, planner_agents = self._predict(stamp, tracks)
            plan, leader, error = self._plan(stamp, pose, speed, tracks, planner_agents)
            if i < last:
                next_dt_s = (stamps[i + 1] - stamp) * 1e-9
            else:
                next_dt_s = dt_s if dt_s > 0 else stack.planner.config.step_s
            if self.closed:
                next_pose, next_speed = self._advance(pose, speed, plan, next_dt_s)
                next_pose[2] = ego.poses[min(i + 1, last), 2]  # the ground under the log
            else:
                j = min(i + 1, last)
                next_pose, next_speed = ego.poses[j], float(ego.speed_mps[j])
            accel = (next_speed - speed) / next_dt_s if (i < last or self.closed) else 0.0
            frames.append(self._frame_trace(k, stamp, pose, speed, accel, truth, has_sweep, detections, tracks, modes,
                                            probs, plan, leader, error))
            previous = (pose[:2].copy(), float(pose[3]), speed)
            if self.closed:
                pose, speed = next_pose, next_speed
        return self._trace(tuple(frames))

    # ----- per frame ----------------------------------------------------------------------------
    def _detect(self, i: int, k: int, stamp: int, pose: np.ndarray, truth: AgentFrame) -> tuple[Detections, bool]:
        """The frame's detections in the world frame, and whether the detector saw the frame."""
        stack = self.stack
        if stack.reads_points and self.sensor is None:  # open loop: the logged frame as it is
            seen = self.log.frames[i]
        else:
            points = None
            if stack.reads_points:
                points = self.sensor.points(self.log.frames[i], k, pose, truth.boxes)
                self.moved_sweep |= points is not None and self.sensor.approximation != ""
            seen = frame_at_pose(stamp, pose, truth.boxes, [CLASSES[c] for c in truth.class_codes.tolist()],
                                 [self.track_id_list[r] for r in truth.rows.tolist()], truth.velocity_mps, points)
        output = stack.detect(seen)
        if output is None:
            return _NO_DETECTIONS, False
        boxes, names, codes, scores = _checked(output, self.scenario.scenario_id, k)
        yaw = float(pose[3])
        c, s = math.cos(yaw), math.sin(yaw)
        world = boxes.copy()
        world[:, :2] = boxes[:, :2] @ np.array([[c, s], [-s, c]]) + pose[:2]
        world[:, 2] += pose[2]
        world[:, 6] = np.pi - np.mod(np.pi - (boxes[:, 6] + yaw), 2 * np.pi)
        return Detections(world, names, codes, scores), True

    def _track(self, stamp: int, detections: Detections, has_sweep: bool) -> dict[str, np.ndarray]:
        """The confirmed tracks now: ids, positions (coasting since the last step), velocities, class codes."""
        tracker = self.stack.tracker
        if has_sweep:
            scores = detections.scores
            # Scores all above the tracker's floor filter nothing: the tracker's quicker path without them.
            if len(scores) and np.minimum.reduce(scores) < tracker.config.min_score:
                tracker.step(detections.boxes[:, :2], detections.codes, stamp, scores)
            else:
                tracker.step(detections.boxes[:, :2], detections.codes, stamp)
            self.last_step_ns = stamp
        table = tracker.tracks()
        states = table.states  # the table's own copy
        if self.last_step_ns is not None and stamp != self.last_step_ns:  # coasting since the last step
            states[:, :2] += states[:, 2:] * ((stamp - self.last_step_ns) * 1e-9)
        if self.history is not None:
            self.history.record(stamp, table.track_ids, states[:, :2])
        keep = table.confirmed
        confirmed = states[keep]  # one gather: positions and velocities are views of it
        return {"ids": table.track_ids[keep], "xy": confirmed[:, :2], "velocity": confirmed[:, 2:],
                "codes": table.class_codes[keep]}

    def _predict(self, stamp: int, tracks: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predicted modes (T, K, F, 2) after now, their probabilities (T, K), and the planner's agents (T, F+1, 2)."""
        stack = self.stack
        n = len(tracks["ids"])
        if stack.predictor is None or n == 0:
            # constant_velocity_rollout's rule (tracker velocities are finite), on a time grid built once; computed
            # as (T, 2, F+1), time innermost (a last axis of 2 makes numpy loop slowly), and seen as (T, F+1, 2)
            rollout = (tracks["xy"][:, :, None] + tracks["velocity"][:, :, None] * self.cv_times_s).transpose(0, 2, 1)
            return rollout[:, None, 1:], np.ones((n, 1)), rollout
        from andon.datasets.features import prediction_features_batch

        history = self.history.history(stamp, tracks["ids"])
        history[:, -1] = tracks["xy"]  # t0 is now, where the tracker has the track
        others = np.broadcast_to(history[None], (n, *history.shape))
        mask = ~np.eye(n, dtype=bool)[..., None] & np.isfinite(others).all(axis=-1)
        features = prediction_features_batch(history, np.full(n, np.nan), others, mask, stack.prediction_sampling)
        out = stack.predictor.forecast(features)
        modes, probs = np.asarray(out["modes_m"], dtype=np.float64), np.asarray(out["probs"], dtype=np.float64)
        top = modes[np.arange(n), np.argmax(probs, axis=1)]  # (T, F, 2)
        return modes, probs, np.concatenate([tracks["xy"][:, None], top], axis=1)

    def _plan(self, stamp: int, pose: np.ndarray, speed: float, tracks: dict[str, np.ndarray],
              agents_xy: np.ndarray) -> tuple[PlannedTrajectory | None, int, str]:
        """The plan and the track id it follows (-1: none), or (None, -1, why) when the planner raised or
        returned a non-finite plan."""
        lines = self.stop_points[self.stop_until_ns > stamp] if len(self.stop_points) else None
        lengths = AGENT_LENGTH_BY_CLASS_M[tracks["codes"]]
        ids = tracks["ids"]
        if len(agents_xy):  # agents behind the ego's rear are its followers' to avoid (module docstring, 5.)
            c, s = math.cos(pose[3]), math.sin(pose[3])
            ahead = c * (agents_xy[:, 0, 0] - pose[0]) + s * (agents_xy[:, 0, 1] - pose[1])
            keep = ahead >= -0.5 * self.stack.planner.config.ego_length_m
            if not keep.all():
                agents_xy, lengths, ids = agents_xy[keep], lengths[keep], ids[keep]
        try:
            plan = self.stack.planner.plan(
                pose[:2], float(pose[3]), speed, self.route, agents_xy_m=agents_xy if len(agents_xy) else None,
                agents_step_s=self.stack.prediction_step_s, agents_length_m=lengths,
                stop_lines_m=lines if lines is not None and len(lines) else None)
        except Exception as exc:  # fail closed: a planner failure is a disengagement, never a crashed replay
            return None, -1, f"{type(exc).__name__}: {exc}"
        # A sum is finite exactly when every term is (plan values are far from overflowing); np.add.reduce is
        # ndarray.sum without its Python wrapper.
        total = np.add.reduce(plan.xy_m, axis=None) + np.add.reduce(plan.speed_mps) + np.add.reduce(plan.accel_mps2)
        if not math.isfinite(total):
            return None, -1, "the plan holds NaN or infinite values"
        leader = int(ids[plan.leader]) if 0 <= plan.leader < len(ids) else -1
        return plan, leader, ""

    def _advance(self, pose: np.ndarray, speed: float, plan: PlannedTrajectory | None,
                 dt_s: float) -> tuple[np.ndarray, float]:
        """The closed-loop ego one frame period later: along the plan, or braking along the route without one."""
        if plan is not None:
            times = plan.times_s
            t = min(dt_s, float(times[-1]))
            step = float(times[1]) if len(times) > 1 else 0.0
            k = int(round(t / step)) if step > 0 else 0
            if step > 0 and abs(k * step - t) < 1e-9:  # the next frame falls on a plan state (the usual case)
                x, y, v = float(plan.xy_m[k, 0]), float(plan.xy_m[k, 1]), float(plan.speed_mps[k])
            else:
                x = float(np.interp(t, times, plan.xy_m[:, 0]))
                y = float(np.interp(t, times, plan.xy_m[:, 1]))
                v = float(np.interp(t, times, plan.speed_mps))
            yaw = float(plan.yaw_rad[min(k, len(times) - 1)])
            if t < dt_s:  # a gap longer than the plan: coast at its last speed
                x += v * (dt_s - t) * math.cos(yaw)
                y += v * (dt_s - t) * math.sin(yaw)
            return np.array([x, y, pose[2], yaw]), v
        decel = self.stack.planner.config.comfortable_decel_mps2
        v = max(speed - decel * dt_s, 0.0)
        travelled = (speed * speed - v * v) / (2 * decel)
        station = float(self.route.project(pose[None, :2]).station_m[0]) + travelled
        xy, direction = self.route.at(np.array([station]))
        return np.array([xy[0, 0], xy[0, 1], pose[2], math.atan2(direction[0, 1], direction[0, 0])]), v

    def _frame_trace(self, k: int, stamp: int, pose: np.ndarray, speed: float, accel: float, truth: AgentFrame,
                     has_sweep: bool, detections: Detections,
                     tracks: dict[str, np.ndarray], modes: np.ndarray, probs: np.ndarray,
                     plan: PlannedTrajectory | None, leader: int, error: str) -> FrameTrace:
        planner = self.stack.planner.config
        if plan is None:
            plan_xy, plan_speed, plan_accel = _EMPTY2, np.zeros(0), np.zeros(0)
        else:
            plan_xy, plan_speed, plan_accel = plan.xy_m, plan.speed_mps, plan.accel_mps2
        return FrameTrace(
            index=k, timestamp_ns=stamp, ego_pose=pose.copy(), ego_speed_mps=float(speed),
            ego_accel_mps2=float(accel), gt_boxes=truth.boxes, gt_classes=CLASS_NAMES[truth.class_codes],
            gt_track_ids=self.agents.track_ids[truth.rows], gt_velocities_mps=truth.velocity_mps, has_sweep=has_sweep,
            det_boxes=detections.boxes, det_classes=detections.names, det_scores=detections.scores,
            track_ids=tracks["ids"],
            track_xy_m=tracks["xy"], track_velocities_mps=tracks["velocity"], track_classes=CLASS_NAMES[tracks["codes"]],
            pred_modes_m=modes, pred_probs=probs, pred_step_s=float(self.stack.prediction_step_s), plan_xy_m=plan_xy,
            plan_speed_mps=plan_speed, plan_accel_mps2=plan_accel, plan_step_s=float(planner.step_s),
            plan_ok=plan is not None, plan_error=error, plan_leader_track=int(leader))

    def _trace(self, frames: tuple[FrameTrace, ...]) -> ScenarioTrace:
        config, scenario = self.config, self.scenario
        events, collisions = detect_events(scenario.scenario_id, frames, config.mode, config)
        driven = np.array([f.ego_pose[:2] for f in frames])
        logged = self.ego.poses[self.chosen, :2]
        return ScenarioTrace(
            scenario_id=scenario.scenario_id, log_id=self.log.log_id, source=self.log.source or scenario.source,
            tags=frozenset(scenario.tags), mode=config.mode, reactive=bool(self.closed and config.reactive),
            frames=frames, events=events, km=_path_km(driven), logged_km=_path_km(logged), collisions=collisions,
            sensor_approximation=self.sensor.approximation if self.sensor is not None and self.moved_sweep else "",
            stack=dict(self.stack.description))


def _path_km(xy_m: np.ndarray) -> float:
    if len(xy_m) < 2:
        return 0.0
    return float(np.hypot(*np.diff(xy_m, axis=0).T).sum()) / 1000.0


def _checked(output: Any, scenario_id: str, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A detector's answer validated: boxes (D, 7) finite, D known class names (and their codes), D finite scores.

    Raises:
        BadInput: naming the scenario and frame.
    """
    def where() -> str:  # the message is built only for a bad output (this runs every frame)
        return f"the detector's output for frame {index} of scenario {scenario_id}"

    try:
        boxes, classes, scores = output
    except (TypeError, ValueError):
        raise BadInput(f"{where()} must be (boxes (D, 7), classes (D,), scores (D,)), got {type(output).__name__}") \
            from None
    boxes = np.asarray(boxes, dtype=np.float64)
    boxes = boxes.reshape(0, 7) if boxes.size == 0 else boxes
    names = np.asarray(classes) if len(classes) else _NO_NAMES
    if names.dtype.kind != "U":
        names = names.astype(str)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if boxes.ndim != 2 or boxes.shape[1] != 7 or names.shape != (len(boxes),) or len(scores) != len(boxes):
        raise BadInput(f"{where()}: boxes {boxes.shape}, {len(names)} classes and {len(scores)} scores; give (D, 7) "
                       f"boxes with one class and one score each")
    if not math.isfinite(np.add.reduce(boxes, axis=None) + np.add.reduce(scores)):  # finite when every term is
        raise BadInput(f"{where()}: boxes and scores must be finite")
    if isinstance(classes, list):  # what detectors return: one dict look-up per name
        try:
            return boxes, names, np.fromiter(map(_CODE_OF.__getitem__, classes), np.int64, len(classes)), scores
        except (KeyError, TypeError):
            pass  # not a class name: the sorted search below names the unknown ones
    slot = np.minimum(_SORTED_NAMES.searchsorted(names), len(_SORTED_NAMES) - 1)
    known = _SORTED_NAMES[slot] == names
    if not known.all():
        raise BadInput(f"{where()}: unknown classes {sorted(set(names[~known].tolist()))}; map them to {list(CLASSES)}")
    return boxes, names, _SORTED_CODES[slot], scores

"""Hand-made logs with known answers for the replay tests: a straight road, an ego and scripted agents."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from andon.scenarios.records import Frame, Log, Provenance, Scenario
from andon.simulation.stack import Stack, stand_in_stack
from andon.simulation.trace import FrameTrace

PERIOD_NS = 100_000_000
T0_NS = 1_000_000_000
Path = Callable[[np.ndarray], np.ndarray]  # times [s] (F,) -> world positions (F, 2) [m]


@dataclass(frozen=True)
class Agent:
    """A scripted agent: world positions over time, a fixed heading and size; present where `present(t)`."""

    track_id: str
    cls: str
    path: Path
    yaw_rad: float = 0.0
    size_m: tuple[float, float, float] = (4.5, 1.9, 1.6)
    present: Callable[[np.ndarray], np.ndarray] | None = None


def constant(x_m: float, y_m: float) -> Path:
    return lambda t: np.column_stack([np.full(len(t), x_m), np.full(len(t), y_m)])


def moving(x0_m: float, y0_m: float, vx_mps: float, vy_mps: float = 0.0) -> Path:
    return lambda t: np.column_stack([x0_m + vx_mps * t, y0_m + vy_mps * t])


def ego_speed_profile(speeds_mps: Sequence[float] | Callable[[np.ndarray], np.ndarray]) -> Path:
    """An ego driving along +x with speed(t): positions by integrating the speed."""
    def path(t: np.ndarray) -> np.ndarray:
        v = speeds_mps(t) if callable(speeds_mps) else np.asarray(speeds_mps, dtype=np.float64)
        x = np.concatenate([[0.0], np.cumsum(0.5 * (v[1:] + v[:-1]) * np.diff(t))])
        return np.column_stack([x, np.zeros(len(t))])
    return path


def crafted_log(ego: Path, agents: Sequence[Agent] = (), duration_s: float = 8.0, log_id: str = "crafted",
                source: str = "test", with_points: bool = False) -> Log:
    """A 10 Hz log: ego along `ego` heading +x, agents in the ego frame of each frame, velocities given."""
    n = int(round(duration_s * 1e9 / PERIOD_NS)) + 1
    t = np.arange(n) * PERIOD_NS * 1e-9
    ego_xy = ego(t)
    tracks = []
    for agent in agents:
        xy = agent.path(t)
        velocity = np.gradient(xy, t, axis=0) if n > 1 else np.zeros_like(xy)
        here = np.ones(n, dtype=bool) if agent.present is None else np.asarray(agent.present(t), dtype=bool)
        tracks.append((agent, xy, velocity, here))
    frames = []
    rng = np.random.default_rng(0)
    for i in range(n):
        rows = [(a, xy[i], v[i]) for a, xy, v, here in tracks if here[i]]
        boxes = np.array([[p[0] - ego_xy[i, 0], p[1] - ego_xy[i, 1], 0.5 * a.size_m[2], *a.size_m, a.yaw_rad]
                          for a, p, _ in rows], dtype=np.float64).reshape(-1, 7)
        velocities = np.array([v for _, _, v in rows], dtype=np.float64).reshape(-1, 2)
        points = rng.normal(0, 10, (100, 4)).astype(np.float32) if with_points else None
        frames.append(Frame(timestamp_ns=T0_NS + i * PERIOD_NS, ego_pose=(float(ego_xy[i, 0]), float(ego_xy[i, 1]), 0.0,
                                                                          0.0),
                            boxes=boxes, classes=[a.cls for a, _, _ in rows], track_ids=[a.track_id for a, _, _ in rows],
                            points=points, velocities_mps=velocities))
    return Log(log_id=log_id, source=source, frames=frames)


def whole_log(log: Log, tags: frozenset[str] = frozenset()) -> Scenario:
    return Scenario(scenario_id=f"{log.log_id}-all", log_id=log.log_id, t_start_ns=log.t_start_ns, t_end_ns=log.t_end_ns,
                    tags=tags, qa_score=float("nan"), provenance=Provenance("import", "test"), source=log.source)


def blind(frame: Frame) -> tuple[np.ndarray, list[str], np.ndarray]:
    """A detector that sees nothing (but runs: every frame counts as seen)."""
    return np.zeros((0, 7)), [], np.zeros(0)


def perfect(frame: Frame) -> tuple[np.ndarray, list[str], np.ndarray]:
    """A detector that returns the frame's ground-truth boxes exactly."""
    return np.asarray(frame.boxes, dtype=np.float64).reshape(-1, 7), list(frame.classes), np.ones(len(frame.classes))


def stack_with(detect: Callable[[Frame], object]) -> Stack:
    stack = stand_in_stack()
    stack.detect = detect
    return stack


def frame_trace(index: int, ego_xy: Sequence[float] = (0.0, 0.0), ego_yaw_rad: float = 0.0, speed_mps: float = 10.0,
                gt_boxes: np.ndarray | None = None, gt_ids: Sequence[str] = (), gt_classes: Sequence[str] | None = None,
                gt_velocities: np.ndarray | None = None, det_xy: np.ndarray | None = None,
                track_xy: np.ndarray | None = None, plan_xy: np.ndarray | None = None, plan_ok: bool = True,
                plan_error: str = "", period_ns: int = PERIOD_NS) -> FrameTrace:
    """A FrameTrace for the event checks, with whatever the test does not give left empty.

    The default plan drives straight ahead along the ego's heading at `speed_mps` for 5 s at 0.1 s.
    """
    boxes = np.zeros((0, 7)) if gt_boxes is None else np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 7)
    n = len(boxes)
    classes = np.array(["vehicle"] * n if gt_classes is None else list(gt_classes), dtype=str).reshape(n)
    if plan_xy is None and plan_ok:
        times = np.arange(51) * 0.1
        direction = np.array([np.cos(ego_yaw_rad), np.sin(ego_yaw_rad)])
        plan_xy = np.asarray(ego_xy, dtype=np.float64) + (speed_mps * times)[:, None] * direction
    plan = np.zeros((0, 2)) if plan_xy is None or not plan_ok else np.asarray(plan_xy, dtype=np.float64)
    det = np.zeros((0, 2)) if det_xy is None else np.asarray(det_xy, dtype=np.float64).reshape(-1, 2)
    tracks = np.zeros((0, 2)) if track_xy is None else np.asarray(track_xy, dtype=np.float64).reshape(-1, 2)
    return FrameTrace(
        index=index, timestamp_ns=T0_NS + index * period_ns,
        ego_pose=np.array([ego_xy[0], ego_xy[1], 0.0, ego_yaw_rad]), ego_speed_mps=speed_mps, ego_accel_mps2=0.0,
        gt_boxes=boxes, gt_classes=classes, gt_track_ids=np.array(list(gt_ids), dtype=str).reshape(n),
        gt_velocities_mps=np.zeros((n, 2)) if gt_velocities is None else np.asarray(gt_velocities, dtype=np.float64),
        has_sweep=True, det_boxes=np.column_stack([det, np.zeros((len(det), 5))]), det_classes=np.array(["vehicle"] * len(det)),
        det_scores=np.ones(len(det)), track_ids=np.arange(len(tracks)), track_xy_m=tracks,
        track_velocities_mps=np.zeros_like(tracks), track_classes=np.array(["vehicle"] * len(tracks)),
        pred_modes_m=np.zeros((len(tracks), 1, 10, 2)), pred_probs=np.ones((len(tracks), 1)), pred_step_s=0.5,
        plan_xy_m=plan, plan_speed_mps=np.full(len(plan), speed_mps), plan_accel_mps2=np.zeros(len(plan)),
        plan_step_s=0.1, plan_ok=plan_ok, plan_error=plan_error)

"""Suite metrics on one long replay: 3,000 frames (5 min at 10 Hz) x 60 agents, every metric of METRICS.

The trace: the ego drives along x at 10 m/s; 60 agents around it (vehicles ahead and beside, pedestrians)
move at constant velocity; every frame has a sweep with the agents detected (0.3 m noise, 10 % dropped,
a few false positives), a confirmed track per detected agent with 6 predicted modes of 6 steps (0.5 s),
and a plan that brakes hard now and then. Records the seconds per metric and the process's peak RSS.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from andon.simulation.trace import OPEN_LOOP, FrameTrace, ScenarioTrace
from andon.test_suites.metrics import METRICS, LogContext, evaluate_metric
from andon.test_suites.schema import Check, Filters
from tests.benchmarks.measure import peak_rss_mb

N_AGENTS, K_MODES, STEPS, STEP_S = 60, 6, 6, 0.5


def long_trace(n_frames: int, seed: int = 0) -> ScenarioTrace:
    rng = np.random.default_rng(seed)
    start = np.column_stack([rng.uniform(-40, 80, N_AGENTS), rng.choice([0.0, 3.75, -3.75, 8.0], N_AGENTS)])
    classes = np.where(start[:, 1] == 8.0, "pedestrian", "vehicle")
    velocity = np.column_stack([np.where(classes == "vehicle", rng.uniform(9.0, 11.0, N_AGENTS), 10.0),
                                np.zeros(N_AGENTS)])  # drifting slowly relative to the ego
    ids = np.array([f"a{i}" for i in range(N_AGENTS)])
    size = np.where(classes[:, None] == "vehicle", [4.5, 1.9, 1.6], [0.6, 0.6, 1.8])
    frames = []
    for i in range(n_frames):
        t = 0.1 * i
        xy = start + velocity * t
        gt = np.column_stack([xy, np.full(N_AGENTS, 0.8), size, np.zeros(N_AGENTS)])
        seen = rng.random(N_AGENTS) > 0.1
        det = gt[seen].copy()
        det[:, :2] += rng.normal(0, 0.3, (len(det), 2))
        future = xy[seen][:, None, None, :] + velocity[seen][:, None, None, :] * STEP_S * np.arange(1, STEPS + 1)[
            None, None, :, None] + rng.normal(0, 0.5, (int(seen.sum()), K_MODES, STEPS, 2))
        probs = rng.dirichlet(np.ones(K_MODES), int(seen.sum()))
        accel = -5.0 if i % 200 == 0 else 0.0
        frames.append(FrameTrace(
            index=i, timestamp_ns=1_000_000_000 + i * 100_000_000, ego_pose=np.array([10.0 * t, 0.0, 0.0, 0.0]),
            ego_speed_mps=10.0, ego_accel_mps2=accel, gt_boxes=gt, gt_classes=classes, gt_track_ids=ids,
            gt_velocities_mps=velocity, has_sweep=True, det_boxes=det, det_classes=classes[seen],
            det_scores=rng.uniform(0.5, 1.0, len(det)), track_ids=np.flatnonzero(seen).astype(np.int64),
            track_xy_m=det[:, :2], track_velocities_mps=velocity[seen], track_classes=classes[seen],
            pred_modes_m=future, pred_probs=probs, pred_step_s=STEP_S, plan_xy_m=np.zeros((50, 2)),
            plan_speed_mps=np.full(50, 10.0), plan_accel_mps2=np.full(50, accel), plan_step_s=0.1))
    return ScenarioTrace("bench", "log", "synthetic", frozenset({"synthetic"}), OPEN_LOOP, False, tuple(frames), (),
                         km=0.1 * n_frames * 10.0 / 1000.0, logged_km=0.1 * n_frames * 10.0 / 1000.0, collisions=0)


@pytest.mark.parametrize("n_frames", [600, pytest.param(3_000, marks=pytest.mark.slow)])
def test_bench_every_metric_on_a_long_trace(benchmark: BenchmarkFixture, n_frames: int) -> None:
    tr = long_trace(n_frames)
    context = LogContext()
    seconds: dict[str, float] = {}

    def every_metric() -> dict[str, float | None]:
        values = {}
        for name, metric in METRICS.items():
            check = Check("c", name, "per_scenario", ">=", 0.0, "blocking", Filters(max_range_m=50.0)
                          if "max_range_m" in metric.filters else Filters())
            start = time.perf_counter()
            values[name] = evaluate_metric(metric, check, tr, context).value
            seconds[name] = round(time.perf_counter() - start, 4)
        return values

    values = benchmark.pedantic(every_metric, rounds=1, iterations=1)
    benchmark.extra_info.update(frames=n_frames, agents=N_AGENTS, seconds=seconds,
                                frames_per_s=round(n_frames / max(sum(seconds.values()), 1e-9), 1),
                                peak_rss_mb=peak_rss_mb())
    assert 0.8 < values["detection_recall"] < 0.95 and values["min_fde"] is not None
    assert values["phantom_braking"] is not None

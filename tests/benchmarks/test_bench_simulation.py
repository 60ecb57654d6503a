"""The simulation layer's budget: one 15 s, 10 Hz scenario with 50 agents replayed in under 50 ms on one core.

Everything but neural-network inference: the crafted log's detections are given (a detect function
returning each frame's ground-truth boxes with precomputed noise), then tracker, constant-velocity
prediction, planner, reactive agents, the closed-loop ego and every disengagement check and metric
(`replay_scenario` end to end, closed loop, reactive). The road: an ego at 10 m/s on a straight
four-lane road, 30 vehicles in both directions (some ahead of it in its lane) and 20 pedestrians walking along the sidewalks.

The benchmark records the best time of several replays, the best time of each stage (tracker, planner,
and the rest: the replay layer's ground truth, sensing, prediction, events and trace) and the process's
peak RSS (getrusage; monotonic over the session); only a gross regression fails the assertion (shared
CI cores are slow).
An optional slow test gives scenarios per second end to end with a tiny trained detector on the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from andon.scenarios.records import Frame
from andon.simulation.replay import ReplayConfig, replay_scenario
from andon.simulation.stack import Stack
from tests.benchmarks.measure import best_of, peak_rss_mb
from tests.simulation.replay_logs import Agent, crafted_log, ego_speed_profile, moving, stack_with, whole_log

DURATION_S, N_VEHICLES, N_PEDESTRIANS = 15.0, 30, 20
TARGET_S = 0.05


def _scene(seed: int = 0) -> list[Agent]:
    rng = np.random.default_rng(seed)
    agents = []
    # Four 3.75 m lanes: the ego's (y = 0) and one more its way, two oncoming; sidewalks at |y| = 9.5 m.
    lanes_y = np.array([0.0, 3.75, -3.75, -7.5])
    for k in range(N_VEHICLES):
        lane = lanes_y[k % 4]
        direction = 1.0 if lane >= 0 else -1.0
        start = rng.uniform(25.0, 250.0) if lane == 0 else rng.uniform(-60.0, 250.0)
        agents.append(Agent(f"v{k}", "vehicle", moving(start, lane, direction * rng.uniform(7.0, 13.0)),
                            yaw_rad=0.0 if direction > 0 else np.pi))
    for k in range(N_PEDESTRIANS):
        side = 9.5 if k % 2 else -9.5
        agents.append(Agent(f"p{k}", "pedestrian", moving(rng.uniform(-40.0, 200.0), side, rng.choice([-1.3, 1.3])),
                            size_m=(0.6, 0.6, 1.75)))
    return agents


def _noisy_detector(seed: int = 1) -> Callable[[Frame], tuple[np.ndarray, list[str], np.ndarray]]:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 0.15, (N_VEHICLES + N_PEDESTRIANS, 7)) * np.array([1, 1, 0, 0, 0, 0, 0.3])

    def detect(frame: Frame) -> tuple[np.ndarray, list[str], np.ndarray]:
        boxes = np.asarray(frame.boxes) + noise[: len(frame.boxes)]
        return boxes, frame.classes, np.full(len(boxes), 0.9)

    return detect


def _stage_ms(run: Callable[[], object], stack: Stack, repeats: int) -> dict[str, float]:
    """Best time of each stage over `repeats` replays [ms]: the stack's tracker (step + tracks) and planner, timed
    by wrapping them on their instances, and the rest of the replay."""
    spent = {"tracker": 0.0, "planner": 0.0}
    wrapped = [(stack.tracker, "step", "tracker"), (stack.tracker, "tracks", "tracker"), (stack.planner, "plan", "planner")]

    def timed(method: Callable[..., object], stage: str) -> Callable[..., object]:
        def call(*args: object, **kwargs: object) -> object:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                spent[stage] += time.perf_counter() - start
        return call

    for owner, name, stage in wrapped:
        setattr(owner, name, timed(getattr(owner, name), stage))  # an instance attribute shadows the method
    best = {"tracker": float("inf"), "planner": float("inf"), "rest": float("inf")}
    try:
        for _ in range(repeats):
            spent.update(tracker=0.0, planner=0.0)
            start = time.perf_counter()
            run()
            total = time.perf_counter() - start
            for stage, seconds in (*spent.items(), ("rest", total - spent["tracker"] - spent["planner"])):
                best[stage] = min(best[stage], seconds)
    finally:
        for owner, name, _ in wrapped:
            delattr(owner, name)
    return {stage: round(seconds * 1e3, 2) for stage, seconds in best.items()}


def test_bench_replay_15s_10hz_50_agents_closed_loop(benchmark: BenchmarkFixture) -> None:
    log = crafted_log(ego_speed_profile(lambda t: np.full(len(t), 10.0)), _scene(), duration_s=DURATION_S)
    scenario = whole_log(log)
    stack = stack_with(_noisy_detector())
    config = ReplayConfig(mode="closed_loop", reactive=True)

    def run() -> object:
        return replay_scenario(log, scenario, stack, config)

    trace = benchmark.pedantic(run, rounds=3, iterations=1)
    seconds = best_of(run, 5)
    frames = len(trace.frames)
    benchmark.extra_info.update(frames=frames, agents=N_VEHICLES + N_PEDESTRIANS, seconds=round(seconds, 4),
                                per_frame_us=round(seconds / frames * 1e6, 1), target_s=TARGET_S,
                                scenarios_per_s=round(1.0 / seconds, 1), stage_ms=_stage_ms(run, stack, 5),
                                peak_rss_mb=peak_rss_mb())
    assert frames == 151 and trace.km > 0.1 and len(trace.frames[-1].track_ids) >= 30
    assert seconds < 1.0  # the target is TARGET_S on an idle core; only a gross regression fails


@pytest.mark.slow
def test_bench_replay_end_to_end_with_a_tiny_detector(benchmark: BenchmarkFixture) -> None:
    """Scenarios per second end to end on the CPU: a tiny PillarDetector (untrained: inference costs the same)
    on sweeps ray-cast again at the closed-loop ego's pose (the fleet's default 64-beam lidar), a 15 s
    synthetic log with a sweep every frame."""
    import torch

    from andon.models.autolabel import detector_fn
    from andon.models.detector import PillarDetector
    from andon.scenarios.records import Log
    from andon.simulation.fleet import FleetConfig, synthesize_log
    from andon.simulation.stack import stand_in_stack

    torch.manual_seed(0)
    torch.set_num_threads(1)
    imported = synthesize_log(7, duration_s=DURATION_S, config=FleetConfig())
    log = Log(log_id="bench-synth", source=imported.source, frames=imported.frames, road_map=imported.road_map,
              meta=imported.meta)
    model = PillarDetector({"point_cloud_range_m": [-51.2, -51.2, -3.0, 51.2, 51.2, 3.0], "voxel_size_m": [0.4, 0.4, 6.0]},
                           pfn_channels=8, backbone_channels=[8, 8], backbone_layers=[0, 1], backbone_strides=[2, 2],
                           upsample_channels=8, out_stride=2, head_channels=8).eval()
    stack = stand_in_stack()
    stack.detect, stack.reads_points = detector_fn(model), True
    scenario = whole_log(log)

    def run() -> object:
        return replay_scenario(log, scenario, stack, ReplayConfig())

    trace = benchmark.pedantic(run, rounds=1, iterations=1)
    seconds = best_of(run, 2)
    benchmark.extra_info.update(frames=len(trace.frames), seconds=round(seconds, 3),
                                scenarios_per_s=round(1.0 / seconds, 3), peak_rss_mb=peak_rss_mb(),
                                sensor_model="ray-cast again (64 x 1800 rays)")
    assert len(trace.frames) == len(log.frames) and all(f.has_sweep for f in trace.frames)
    assert trace.sensor_approximation == ""

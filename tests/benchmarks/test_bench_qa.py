"""Label QA of one 20 s, 10 Hz log with 100 agents and a ~100k-point lidar sweep in every frame.

The target: mining plus QA of such a log under 0.5 s, so QA under ~0.3 s. The box checks cost ~25 ms
over the log's 20k boxes; the point check dominates: ~2 ms per 100k-point sweep (plus ~2 ms to read
it from the blob store), so it samples one sweep per `lidar_period_s` (1 Hz: 20 of the 200 sweeps).
Timed: the default QA, the point check over every sweep (for the ratio), and QA of the same log
streamed from the catalog's blob store. Peak RSS (getrusage; the process's peak so far) beside time.
"""

from __future__ import annotations

import resource

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from andon.scenarios import Catalog, Provenance
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.qa import QAConfig, score_log
from andon.scenarios.records import Frame
from andon.workspace import Workspace

N_FRAMES, N_AGENTS, N_POINTS = 200, 100, 100_000
AGENT_POINTS = 150  # returns per agent in range (a car at 20 m gets hundreds, a pedestrian at 60 m a few)
BUDGET_S = 0.3


def busy_sweep_log(seed: int = 0) -> ImportedLog:
    """Agents driving, walking and parked around an ego at 10 m/s; sweeps of ground and agent points."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["vehicle", "pedestrian", "cyclist", "static"], N_AGENTS, p=[0.55, 0.25, 0.1, 0.1])
    sizes = {"vehicle": (4.6, 1.9, 1.6), "pedestrian": (0.6, 0.6, 1.75), "cyclist": (1.8, 0.7, 1.7),
             "static": (0.5, 0.5, 1.0)}
    speeds = {"vehicle": 12.0, "pedestrian": 1.4, "cyclist": 5.0, "static": 0.0}
    size = np.array([sizes[k] for k in kinds])
    start = rng.uniform([-60.0, -60.0], [260.0, 60.0], (N_AGENTS, 2))
    heading = rng.uniform(-np.pi, np.pi, N_AGENTS)
    speed = np.array([speeds[k] for k in kinds]) * rng.uniform(0.5, 1.5, N_AGENTS)
    ground_r = 70.0 * rng.uniform(0.02, 1.0, N_POINTS) ** 1.5  # denser near the sensor, as rings are
    ground_a = rng.uniform(-np.pi, np.pi, N_POINTS)
    ground = np.column_stack([ground_r * np.cos(ground_a), ground_r * np.sin(ground_a),
                              rng.normal(0.0, 0.03, N_POINTS), rng.uniform(0, 255, N_POINTS)]).astype(np.float32)
    frames = []
    for f in range(N_FRAMES):
        t = f * 0.1
        ego = np.array([10.0 * t, 0.0])
        xy = start + speed[:, None] * t * np.column_stack([np.cos(heading), np.sin(heading)]) - ego
        boxes = np.column_stack([xy, 0.5 * size[:, 2], size, heading])
        in_range = np.hypot(xy[:, 0], xy[:, 1]) < 70.0
        # Agent returns replace as many ground returns, so every sweep holds N_POINTS points.
        shown = boxes[in_range]
        local = rng.uniform(-0.45, 0.45, (len(shown), AGENT_POINTS, 3)) * shown[:, None, 3:6]
        cos, sin = np.cos(shown[:, 6])[:, None], np.sin(shown[:, 6])[:, None]
        agent_xyz = np.stack([shown[:, 0:1] + cos * local[..., 0] - sin * local[..., 1],
                              shown[:, 1:2] + sin * local[..., 0] + cos * local[..., 1],
                              shown[:, 2:3] + local[..., 2]], axis=-1).reshape(-1, 3)
        points = ground.copy()
        points[:len(agent_xyz), :3] = agent_xyz
        frames.append(Frame(timestamp_ns=f * 100_000_000, ego_pose=(float(ego[0]), 0.0, 0.0, 0.0), boxes=boxes,
                            classes=kinds.tolist(), track_ids=[f"a{k}" for k in range(N_AGENTS)], points=points,
                            velocities_mps=speed[:, None] * np.column_stack([np.cos(heading), np.sin(heading)])))
    return ImportedLog(source="synthetic", name="busy-sweeps", frames=frames)


@pytest.fixture(scope="module")
def log() -> ImportedLog:
    return busy_sweep_log()


def _windows(log: ImportedLog) -> list[tuple[str, int, int]]:
    """The whole log and four 5 s windows, as the miners and import would give."""
    t0, t1 = log.frames[0].timestamp_ns, log.frames[-1].timestamp_ns
    return [("whole", t0, t1)] + [(f"w{k}", t0 + k * 5_000_000_000, t0 + (k + 1) * 5_000_000_000 - 1) for k in range(4)]


def _report(benchmark: BenchmarkFixture, scores: dict) -> None:
    whole, details = scores["whole"]
    benchmark.extra_info.update(frames=N_FRAMES, agents=N_AGENTS, points_per_frame=N_POINTS,
                                boxes=details["n_boxes"], score=round(whole, 4),
                                flags={k: v["count"] for k, v in details.items() if isinstance(v, dict)},
                                peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    assert details["n_boxes"] == N_FRAMES * N_AGENTS
    assert whole > 0.99  # a clean log: (almost) nothing flagged


def test_bench_qa_in_memory_log(benchmark: BenchmarkFixture, log: ImportedLog) -> None:
    scores = benchmark(score_log, log, _windows(log))
    _report(benchmark, scores)
    if benchmark.stats:  # only when benchmarking is enabled (`make bench`)
        assert benchmark.stats.stats.median < BUDGET_S


def test_bench_qa_every_sweep(benchmark: BenchmarkFixture, log: ImportedLog) -> None:
    """The point check on all 200 sweeps: why the default samples them."""
    scores = benchmark.pedantic(score_log, args=(log, _windows(log), QAConfig(lidar_period_s=0.0)),
                                rounds=3, iterations=1)
    _report(benchmark, scores)


def test_bench_qa_stored_log(benchmark: BenchmarkFixture, log: ImportedLog, workspace: Workspace) -> None:
    with Catalog(workspace) as catalog:
        log_id, _ = catalog.add_log(log, Provenance("import", "test", "1"), "busy-sweeps")
        stored = catalog.log(log_id)
        scores = benchmark(score_log, stored, _windows(log))
    _report(benchmark, scores)
    assert scores == score_log(log, _windows(log))
    if benchmark.stats:
        assert benchmark.stats.stats.median < BUDGET_S

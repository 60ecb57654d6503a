"""The simulation's bookkeeping budget: per-tag pooling of 100,000 scenario summaries and one BEV picture.

Pooling is a (scenarios x tags) 0/1 matrix product, so a fleet-scale run's metrics take well under a
second; a picture of a disengagement (20,000 lidar points, boxes, predictions, plan) takes a fraction
of one. Each records its time and the process's peak RSS (getrusage; monotonic over the session).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from pytest_benchmark.fixture import BenchmarkFixture

from andon.simulation.pictures import render_moment
from andon.simulation.system_metrics import aggregate, aggregate_per_tag
from tests.benchmarks.measure import peak_rss_mb
from tests.simulation._traces import make_trace

N_SCENARIOS, N_TAGS = 100_000, 20


@dataclass(frozen=True, slots=True)
class Row:
    tags: tuple[str, ...]
    km: float
    logged_km: float
    disengagements: int
    collisions: int
    jerk_sq_sum_mps6: float
    jerk_samples: int


def _rows() -> list[Row]:
    rng = np.random.default_rng(0)
    km = rng.uniform(0.05, 0.3, N_SCENARIOS)
    counts = rng.poisson(0.05, N_SCENARIOS)
    tag_sets = rng.random((N_SCENARIOS, N_TAGS)) < 0.15
    names = [f"tag{j:02d}" for j in range(N_TAGS)]
    return [Row(tuple(n for n, on in zip(names, tag_sets[i], strict=True) if on), float(km[i]), float(km[i]),
                int(counts[i]), 0, 4.0 * 150, 150) for i in range(N_SCENARIOS)]


def test_bench_per_tag_pooling_of_100k_scenarios(benchmark: BenchmarkFixture) -> None:
    rows = _rows()
    started = time.perf_counter()
    per_tag = benchmark.pedantic(lambda: (aggregate(rows), aggregate_per_tag(rows)), rounds=3, iterations=1)[1]
    seconds = (time.perf_counter() - started) / 3
    benchmark.extra_info.update(scenarios=N_SCENARIOS, tags=N_TAGS, seconds=round(seconds, 3), peak_rss_mb=peak_rss_mb())
    assert len(per_tag) == N_TAGS and seconds < 5.0


def test_bench_one_disengagement_picture(benchmark: BenchmarkFixture, tmp_path) -> None:
    trace = make_trace()
    points = np.random.default_rng(0).uniform(-60, 60, (20_000, 4)).astype(np.float32)
    times: list[float] = []

    def draw() -> None:
        started = time.perf_counter()
        render_moment(trace, 2, points, tmp_path / "p.png", "ttc", ["7"])
        times.append(time.perf_counter() - started)

    benchmark.pedantic(draw, rounds=5, iterations=1)
    benchmark.extra_info.update(best_s=round(min(times), 4), peak_rss_mb=peak_rss_mb())
    assert min(times) < 0.3

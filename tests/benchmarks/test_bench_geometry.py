"""Points in boxes at lidar scale: 120k points x 150 boxes, against a dense (M, N) brute force.

The scene is a sweep's worth of points spread over +-60 m with 100 car-sized and 50 pedestrian-sized
boxes. Each benchmark records its answer's size and the peak memory: the process's peak RSS so far
(getrusage; monotonic, so the brute force runs last) and the peak of numpy's allocations during one
call (tracemalloc), which isolates each method. The brute force is marked slow (about 0.6 s and 600 MB),
so `make test` skips it and `make bench` runs both.
"""

from __future__ import annotations

import resource
import tracemalloc
from collections.abc import Callable

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from andon.scenarios.geometry import count_points_in_boxes

N_POINTS = 120_000
N_CARS, N_PEDESTRIANS = 100, 50
SPREAD_M = 60.0


def lidar_scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = np.column_stack([rng.uniform(-SPREAD_M, SPREAD_M, (N_POINTS, 2)), rng.uniform(-2.0, 3.0, N_POINTS),
                              rng.uniform(0.0, 255.0, N_POINTS)]).astype(np.float32)
    sizes = np.concatenate([rng.uniform([3.8, 1.7, 1.4], [5.2, 2.1, 1.9], (N_CARS, 3)),
                            rng.uniform([0.4, 0.4, 1.5], [0.9, 0.9, 1.9], (N_PEDESTRIANS, 3))])
    n = len(sizes)
    boxes = np.column_stack([rng.uniform(-SPREAD_M + 5, SPREAD_M - 5, (n, 2)), 0.5 * sizes[:, 2] - 1.0,
                             sizes, rng.uniform(-np.pi, np.pi, n)])
    return points, boxes


def dense_count(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Brute force: every point against every box at once by broadcasting (M, N)."""
    p = points[:, None, :3].astype(np.float64)
    b = boxes[None]
    dx, dy = p[..., 0] - b[..., 0], p[..., 1] - b[..., 1]
    cos, sin = np.cos(b[..., 6]), np.sin(b[..., 6])
    inside = np.abs(p[..., 2] - b[..., 2]) <= 0.5 * b[..., 5]
    inside &= np.abs(cos * dx + sin * dy) <= 0.5 * b[..., 3]
    inside &= np.abs(cos * dy - sin * dx) <= 0.5 * b[..., 4]
    return inside.sum(axis=0)


def _peak_alloc_mb(fn: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray]:
    return lidar_scene()


def test_bench_points_in_boxes(benchmark: BenchmarkFixture, scene: tuple[np.ndarray, np.ndarray]) -> None:
    points, boxes = scene
    counts = benchmark(count_points_in_boxes, points, boxes)
    benchmark.extra_info.update(points=N_POINTS, boxes=len(boxes), inside=int(counts.sum()),
                                peak_alloc_mb=round(_peak_alloc_mb(lambda: count_points_in_boxes(points, boxes)), 1),
                                peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    assert counts.sum() > 0


@pytest.mark.slow  # ~0.6 s and ~600 MB: `make bench` runs it for the ratio; `make test` skips it
def test_bench_dense_brute_force(benchmark: BenchmarkFixture, scene: tuple[np.ndarray, np.ndarray]) -> None:
    points, boxes = scene
    counts = benchmark.pedantic(dense_count, args=(points, boxes), rounds=3, iterations=1)
    benchmark.extra_info.update(points=N_POINTS, boxes=len(boxes), inside=int(counts.sum()),
                                peak_alloc_mb=round(_peak_alloc_mb(lambda: dense_count(points, boxes)), 1),
                                peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    np.testing.assert_array_equal(counts, count_points_in_boxes(points, boxes))

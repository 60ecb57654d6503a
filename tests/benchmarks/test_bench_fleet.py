"""The synthetic fleet's cost: one lidar sweep, and a whole 20 s log at 10 Hz with lidar.

The sweep is 64 beams x 1800 azimuths (115,200 rays) against the ground and 100 boxes (60 buildings,
40 cars) around the ego; target < 20 ms. The log is the default config's 200 frames (simulation,
labels, one sweep per frame, behaviours); target < 5 s. Each runs with open3d's automatic threading
and with one thread (RaycastingScene and cast_rays take `nthreads`; FleetConfig.lidar_threads). Each
records the sweep's size and the process's peak RSS so far (getrusage; monotonic, so later benchmarks
report at least the earlier peaks). The log benchmarks are marked slow: `make bench` runs them.
"""

from __future__ import annotations

import resource
from dataclasses import replace

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from andon.simulation.fleet.config import FleetConfig
from andon.simulation.fleet.lidar import raycast_sweep
from andon.simulation.fleet.synth import synthesize_log

N_BUILDINGS, N_CARS = 60, 40
DEFAULT = FleetConfig()
ONE_THREAD = replace(DEFAULT, lidar_threads=1)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(60 buildings, 40 cars) as world boxes within 70 m of the origin, cars on the ground near the ego."""
    rng = np.random.default_rng(seed)
    size = rng.uniform([8.0, 8.0, 5.0], [25.0, 18.0, 25.0], (N_BUILDINGS, 3))
    angle = rng.uniform(-np.pi, np.pi, N_BUILDINGS)
    radius = rng.uniform(25.0, 70.0, N_BUILDINGS)
    buildings = np.column_stack([radius * np.cos(angle), radius * np.sin(angle), size[:, 2] / 2, size,
                                 np.round(angle / (np.pi / 2)) * np.pi / 2])
    cars = np.column_stack([rng.uniform(-50.0, 50.0, (N_CARS, 2)), np.full(N_CARS, 0.8),
                            np.tile([4.5, 1.9, 1.6], (N_CARS, 1)), rng.uniform(-np.pi, np.pi, N_CARS)])
    cars = cars[np.hypot(cars[:, 0], cars[:, 1]) > 4.0]
    return buildings, cars


@pytest.mark.parametrize("config", [DEFAULT, ONE_THREAD], ids=["auto-threads", "one-thread"])
def test_bench_sweep(benchmark: BenchmarkFixture, config: FleetConfig) -> None:
    buildings, cars = scene()
    pose = np.array([0.0, 0.0, 0.0, 0.3])
    points = benchmark(lambda: raycast_sweep(buildings, cars, pose, config, np.random.default_rng(0)))
    benchmark.extra_info.update(rays=config.lidar_beams * config.lidar_azimuth_steps, objects=len(buildings) + len(cars),
                                points=len(points), threads=config.lidar_threads or "auto",
                                peak_rss_mb=_peak_rss_mb())
    assert len(points) > 50_000


@pytest.mark.slow  # several seconds per round: `make bench` runs it
@pytest.mark.parametrize("config", [DEFAULT, ONE_THREAD], ids=["auto-threads", "one-thread"])
def test_bench_log_20s(benchmark: BenchmarkFixture, config: FleetConfig) -> None:
    log = benchmark.pedantic(synthesize_log, args=(0, 20.0, config), rounds=2, iterations=1)
    counts = [len(f.points) for f in log.frames]
    benchmark.extra_info.update(frames=len(log.frames), mean_points_per_sweep=round(float(np.mean(counts))),
                                points_mb=round(sum(counts) * 16 / 2**20, 1), threads=config.lidar_threads or "auto",
                                peak_rss_mb=_peak_rss_mb())
    assert len(log.frames) == 200

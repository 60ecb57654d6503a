"""Detector training throughput on the CPU: frames per second of real optimiser steps.

A small synthetic fleet (16-beam lidar) is built into a dataset version with the synthetic fleet's
grid (102.4 m square, 0.4 m pillars, as `detection_synthetic`); `measure_training_throughput` runs
the tiny detector through Lightning (the same DataModule, model and Trainer as `andon train`) and
times the steps after a warm-up. The benchmark times the whole measurement; extra_info carries
frames/s, the GPU utilisation (None on a CPU) and the peak RSS of the process [MB]. The default
detector's frames/s on the same data is reported beside it.

On a GPU machine the lead runs the same function with `trainer_cfg={"accelerator": "gpu", ...}`.
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from andon.models.throughput import measure_training_throughput
from andon.models.train_config import DetectorConfig
from tests.datasets.loading_helpers import copy_workspace
from tests.models.train_helpers import fleet_version, synthesize

SAMPLING = {"stride": 1, "point_cloud_range_m": [-51.2, -51.2, -3.0, 51.2, 51.2, 3.0], "voxel_size_m": [0.4, 0.4, 6.0]}
TINY = DetectorConfig(pfn_channels=16, backbone_channels=[16, 16], backbone_layers=[0, 1], upsample_channels=8,
                      out_stride=4, head_channels=16)
TRAINER = {"accelerator": "cpu", "batch_size": 2, "num_workers": 0, "deterministic": True, "num_threads": 1}


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def fleet_dataset(_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory):
    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("bench_detector") / "ws")
    version = fleet_version(workspace, synthesize(workspace, n_logs=4, duration_s=3.0), sampling=SAMPLING)
    return workspace, version


def test_bench_detector_training_frames_per_second(benchmark: BenchmarkFixture, fleet_dataset) -> None:
    workspace, version = fleet_dataset
    result = benchmark.pedantic(measure_training_throughput, args=(workspace, version.dataset_id, TINY, TRAINER),
                                kwargs={"steps": 4, "warmup_steps": 1}, rounds=1, iterations=1)
    assert result["steps"] == 4 and result["frames"] > 0 and result["frames_per_s"] > 0
    assert result["gpu_util_percent"] is None and result["device"] == "cpu"
    benchmark.extra_info.update({"tiny_frames_per_s": round(result["frames_per_s"], 2),
                                 "gpu_util_percent": result["gpu_util_percent"], "peak_rss_mb": round(rss_mb(), 1)})


@pytest.mark.slow
def test_bench_default_detector_frames_per_second(benchmark: BenchmarkFixture, fleet_dataset) -> None:
    workspace, version = fleet_dataset
    trainer = {**TRAINER, "batch_size": 4}
    result = benchmark.pedantic(measure_training_throughput,
                                args=(workspace, version.dataset_id, DetectorConfig(), trainer),
                                kwargs={"steps": 5, "warmup_steps": 1}, rounds=1, iterations=1)
    assert result["steps"] == 5 and result["frames"] > 0 and result["frames_per_s"] > 0
    benchmark.extra_info.update({"default_frames_per_s": round(result["frames_per_s"], 2),
                                 "peak_rss_mb": round(rss_mb(), 1)})

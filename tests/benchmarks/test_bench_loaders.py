"""Loader throughput against a tiny training step: the loader must not be what training waits for.

Detection reads ~110k-point sweeps of the synthetic fleet (crafted 100k-point sweeps when the fleet
is not importable) through DetectionDataModule with 2 workers; prediction reads agents of crafted
walker logs through PredictionDataModule with 2 workers. Each test times full passes over the train
loader (persistent workers already started and their log caches warm), then training steps of a
tiny model (detection: pillar MLP, scatter to a BEV canvas, three 3x3 convs and a heatmap and box
head; prediction: a GRU over the history and a max-pooled neighbour MLP) on batches already in
memory, with torch's default threads and with one (the faster counts). extra_info reports the
throughputs, their ratio (loader / fastest training; > 1 means the loader keeps up) and peak RSS of
the test process and of a loader worker (VmHWM), in MB.

Both run at scale (several seconds), so they are marked slow: `make bench` runs them.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from pytest_benchmark.fixture import BenchmarkFixture
from torch import nn

from andon.datasets.datamodules import DetectionDataModule, PredictionDataModule
from andon.datasets.features import DETECTION_CLASSES, POINT_FEATURES
from andon.scenarios.logstore import ImportedLog
from tests.datasets.loading_helpers import build_version, copy_workspace, store, sweep_log, walker_log

DETECTION_SAMPLING = {"stride": 1, "point_cloud_range_m": [-51.2, -51.2, -1.0, 51.2, 51.2, 5.0],
                      "voxel_size_m": [0.2, 0.2, 6.0]}
PREDICTION_SAMPLING = {"stride": 1, "step_s": 0.2, "history_steps": 8, "horizon_steps": 12,
                       "max_agents_per_frame": 32}
DETECTION_LOGS, DETECTION_LOG_S = 2, 2.0
PREDICTION_LOGS = 3
WORKERS = 2
PREDICTION_BATCH = 64


def sweeps() -> tuple[list[ImportedLog], str]:
    try:
        from andon.simulation.fleet.synth import synthesize_log
    except ImportError:
        return [sweep_log(f"sweeps{i}", n_frames=20, seed=i) for i in range(DETECTION_LOGS)], "crafted"
    return [synthesize_log(seed, duration_s=DETECTION_LOG_S) for seed in range(DETECTION_LOGS)], "synthetic fleet"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_peak_rss_mb(loader: torch.utils.data.DataLoader) -> float | None:
    """Largest VmHWM of the loader's live worker processes (Linux), in MB."""
    workers = getattr(getattr(loader, "_iterator", None), "_workers", [])
    peaks = []
    for worker in workers:
        try:
            status = Path(f"/proc/{worker.pid}/status").read_text()
        except OSError:
            continue
        peaks += [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    return round(max(peaks), 1) if peaks else None


def time_steps(step: Callable[[dict[str, torch.Tensor]], torch.Tensor], batches: list[dict[str, torch.Tensor]],
               count: Callable[[Any], int], steps: int) -> dict[int, float]:
    """Items per second of training steps (forward, backward, optimiser) on in-memory batches, by thread count.

    Measured with torch's default threads and with one: on a small, shared machine OpenMP threads
    that wait on each other can make the default many times slower, and the ratio must be judged
    against the fastest training, not a handicapped one.
    """
    default = torch.get_num_threads()
    rates = {}
    try:
        for threads in sorted({default, 1}):
            torch.set_num_threads(threads)
            step(batches[0])  # warm-up: allocator and kernels
            start = time.perf_counter()
            n = 0
            for i in range(steps):
                batch = batches[i % len(batches)]
                step(batch)
                n += count(batch)
            rates[threads] = n / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(default)
    return rates


def loader_against_training(benchmark: BenchmarkFixture, loader: torch.utils.data.DataLoader,
                            count: Callable[[Any], int], step: Callable[[dict[str, torch.Tensor]], torch.Tensor],
                            train_steps: int, rounds: int = 3) -> dict[str, Any]:
    """Rounds of (training steps, then one full loader pass), so both see the machine's same moment.

    The benchmark times the loader passes; the training steps run in its untimed set-up. Returns
    the medians of the loader's rate, of each training rate and of the per-round ratios of the
    loader's rate to the fastest training rate.
    """
    loader_rates: list[float] = []
    train_rates: list[dict[int, float]] = []
    batches = [batch for _, batch in zip(range(4), loader, strict=False)]
    sum(count(batch) for batch in loader)  # warm-up pass: the workers have started and cached their logs

    def train() -> None:
        train_rates.append(time_steps(step, batches, count, train_steps))

    def one_pass() -> int:
        start = time.perf_counter()
        n = sum(count(batch) for batch in loader)
        loader_rates.append(n / (time.perf_counter() - start))
        return n

    benchmark.pedantic(one_pass, setup=train, rounds=rounds, iterations=1)
    fastest = [max(rates.values()) for rates in train_rates]
    return {"loader_per_s": statistics.median(loader_rates),
            "train_per_s": {f"{t}_threads": statistics.median(r[t] for r in train_rates) for t in train_rates[0]},
            "ratio": statistics.median(lr / tr for lr, tr in zip(loader_rates, fastest, strict=True))}


# ----- detection ----------------------------------------------------------------------------------
class TinyPillarNet(nn.Module):
    """PointPillars in miniature: pillar MLP + max, scatter to BEV, 3 convs, heatmap and box heads."""

    def __init__(self, bev_shape: tuple[int, int], channels: int = 32) -> None:
        super().__init__()
        self.ny, self.nx = bev_shape
        self.channels = channels
        self.pillar = nn.Sequential(nn.Linear(len(POINT_FEATURES), channels), nn.ReLU())
        self.backbone = nn.Sequential(
            nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())
        self.heatmap = nn.Conv2d(channels, len(DETECTION_CLASSES), 1)
        self.box = nn.Conv2d(channels, 7, 1)

    def forward(self, batch: dict[str, torch.Tensor], batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        points = self.pillar(batch["pillars"])
        slots = torch.arange(points.shape[1])[None, :, None] < batch["pillar_num_points"][:, None, None]
        pillars = points.masked_fill(~slots, 0.0).amax(dim=1)
        b, iy, ix = batch["pillar_coords"].unbind(1)
        canvas = points.new_zeros(batch_size * self.ny * self.nx, self.channels)
        canvas[(b * self.ny + iy) * self.nx + ix] = pillars
        canvas = canvas.view(batch_size, self.ny, self.nx, self.channels).permute(0, 3, 1, 2)
        features = self.backbone(canvas)
        return self.heatmap(features), self.box(features)


def detection_step(model: TinyPillarNet,
                   sampling: dict[str, Any]) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    x0, y0 = sampling["point_cloud_range_m"][:2]
    cell_m = 2 * sampling["voxel_size_m"][0]  # the backbone halves the resolution

    def step(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        batch_size = batch["boxes"].shape[0]
        heatmap, box = model(batch, batch_size)
        mask = batch["box_mask"]
        sample, slot = mask.nonzero(as_tuple=True)
        boxes = batch["boxes"][sample, slot]
        ix = ((boxes[:, 0] - x0) / cell_m).long().clamp(0, heatmap.shape[3] - 1)
        iy = ((boxes[:, 1] - y0) / cell_m).long().clamp(0, heatmap.shape[2] - 1)
        target = torch.zeros_like(heatmap)
        target[sample, batch["labels"][sample, slot], iy, ix] = 1.0
        loss = nn.functional.binary_cross_entropy_with_logits(heatmap, target)
        loss = loss + nn.functional.l1_loss(box[sample, :, iy, ix], boxes) if len(sample) else loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return loss

    return step


@pytest.fixture(scope="module")
def detection_module(_workspace_template: Path,
                     tmp_path_factory: pytest.TempPathFactory) -> tuple[DetectionDataModule, str]:
    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("bench-detection") / "ws")
    logs, origin = sweeps()
    log_ids = store(workspace, logs)
    version = build_version(workspace, log_ids, "detection", DETECTION_SAMPLING, source=logs[0].source,
                            fractions=(1.0, 0.0, 0.0))
    module = DetectionDataModule(workspace, version, batch_size=4, num_workers=WORKERS, seed=0)
    module.setup("fit")
    return module, origin


@pytest.mark.slow
def test_bench_detection_loader_keeps_up_with_training(benchmark: BenchmarkFixture, detection_module) -> None:
    module, origin = detection_module
    torch.manual_seed(0)
    loader = module.train_dataloader()

    def frames(batch: dict[str, torch.Tensor]) -> int:
        return int(batch["boxes"].shape[0])

    step = detection_step(TinyPillarNet(module.bev_shape), module.sampling)
    measured = loader_against_training(benchmark, loader, frames, step, train_steps=2)
    loader_fps, ratio = measured["loader_per_s"], measured["ratio"]
    pillars = [len(batch["pillars"]) / frames(batch) for _, batch in zip(range(3), loader, strict=False)]
    benchmark.extra_info.update(
        sweeps=origin, frames=len(module.samples("train")), workers=WORKERS, batch_size=module.batch_size,
        bev_shape=list(module.bev_shape), pillars_per_frame=round(float(np.mean(pillars))),
        loader_frames_per_s=round(loader_fps, 1),
        train_step_frames_per_s={k: round(v, 2) for k, v in measured["train_per_s"].items()},
        loader_over_train=round(ratio, 2), peak_rss_mb=round(rss_mb(), 1),
        worker_peak_rss_mb=worker_peak_rss_mb(loader))
    assert ratio > 1, f"the loader ({loader_fps:.1f} frames/s) is slower than training ({measured['train_per_s']})"


# ----- prediction ---------------------------------------------------------------------------------
class TinyPredictor(nn.Module):
    """A GRU over the agent's history and a max-pooled MLP over its neighbours, to F positions."""

    def __init__(self, history_steps: int, horizon_steps: int, hidden: int = 64) -> None:
        super().__init__()
        self.horizon_steps = horizon_steps
        self.history = nn.GRU(4, hidden, batch_first=True)
        self.neighbours = nn.Sequential(nn.Linear(4 * history_steps, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.decoder = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2 * horizon_steps))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        _, state = self.history(batch["history"])
        present = batch["neighbours_mask"].any(-1, keepdim=True)
        others = self.neighbours(batch["neighbours"].flatten(2)).masked_fill(~present, -1e4).amax(1)
        others = torch.where(present.any(1), others, torch.zeros_like(others))
        return self.decoder(torch.cat([state[0], others], dim=1)).view(-1, self.horizon_steps, 2)


def prediction_step(model: TinyPredictor) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        error = (model(batch) - batch["future"]).norm(dim=-1)
        loss = (error * batch["future_mask"]).sum() / batch["future_mask"].sum().clamp(min=1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        return loss

    return step


@pytest.fixture(scope="module")
def prediction_module(_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory) -> PredictionDataModule:
    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("bench-prediction") / "ws")
    logs = [walker_log(f"crowd{i}", n_frames=200, n_walkers=30, seed=i)[0] for i in range(PREDICTION_LOGS)]
    version = build_version(workspace, store(workspace, logs), "prediction", PREDICTION_SAMPLING,
                            fractions=(1.0, 0.0, 0.0))
    module = PredictionDataModule(workspace, version, batch_size=PREDICTION_BATCH, num_workers=WORKERS, seed=0)
    module.setup("fit")
    return module


@pytest.mark.slow
def test_bench_prediction_loader_keeps_up_with_training(benchmark: BenchmarkFixture, prediction_module) -> None:
    module = prediction_module
    torch.manual_seed(0)
    loader = module.train_dataloader()

    def agents(batch: dict[str, torch.Tensor]) -> int:
        return int(batch["history"].shape[0])

    sampling = module.sampling
    model = TinyPredictor(sampling["history_steps"], sampling["horizon_steps"])
    measured = loader_against_training(benchmark, loader, agents, prediction_step(model), train_steps=40)
    loader_sps, ratio = measured["loader_per_s"], measured["ratio"]
    benchmark.extra_info.update(
        samples=len(module.samples("train")), workers=WORKERS, batch_size=module.batch_size,
        loader_samples_per_s=round(loader_sps),
        train_step_samples_per_s={k: round(v) for k, v in measured["train_per_s"].items()},
        loader_over_train=round(ratio, 2), peak_rss_mb=round(rss_mb(), 1),
        worker_peak_rss_mb=worker_peak_rss_mb(loader))
    assert ratio > 1, f"the loader ({loader_sps:.0f} samples/s) is slower than training ({measured['train_per_s']})"

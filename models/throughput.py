"""Training throughput of a model config on a dataset version: frames per second, GPU utilisation.

`measure_training_throughput` runs real optimiser steps through Lightning (the same DataModule,
model and Trainer settings as `andon train`, without MLflow or checkpoints), skips the first
`warmup_steps` (allocation, cuDNN autotuning, loader start-up), and times the rest.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch

from andon.errors import BadInput
from andon.models.train import build_datamodule, cpu_threads, instantiate_model, model_class, resolve_dataset
from andon.models.train_config import (
    OptimizerConfig,
    TrainConfig,
    TrainerConfig,
    model_dict,
    validate_train_config,
)
from andon.workspace import Workspace


class _StepTimer(pl.Callback):
    """Times training batches after a warm-up; samples GPU utilisation at each batch end."""

    def __init__(self, warmup_steps: int) -> None:
        self.warmup_steps = warmup_steps
        self.frames = 0
        self.steps = 0
        self.started: float | None = None
        self.seconds = 0.0
        self.utilisation: list[float] = []
        self.device = torch.device("cpu")

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.warmup_steps and self.started is None:
            self.device = module.device  # Lightning moves the model back to the CPU at teardown
            _synchronise(module.device)
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.started is None:
            return
        self.steps += 1
        self.frames += int(batch["labels"].shape[0]) if "labels" in batch else 0
        utilisation = gpu_utilisation(module.device)
        if utilisation is not None:
            self.utilisation.append(utilisation)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if self.started is not None:
            _synchronise(module.device)
            self.seconds = time.perf_counter() - self.started


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gpu_utilisation(device: torch.device) -> float | None:
    """The GPU's utilisation [%] over the driver's last sample period; None off CUDA or without NVML."""
    if device.type != "cuda":
        return None
    try:
        return float(torch.cuda.utilization(device))
    except Exception:  # NVML missing or not permitted: utilisation is unknown, not zero
        return None


def measure_training_throughput(workspace: Workspace | str | os.PathLike[str], dataset_ref: str,
                                model_cfg: Any, trainer_cfg: TrainerConfig | Mapping[str, Any] | None = None,
                                steps: int = 20, warmup_steps: int = 3, seed: int = 0) -> dict[str, Any]:
    """Training frames per second of a model config on a dataset version.

    Args:
        workspace: the workspace (or its directory).
        dataset_ref: dataset id, unique prefix or name.
        model_cfg: the model config (a DetectorConfig, a DictConfig or a dict with `_target_`).
        trainer_cfg: TrainerConfig fields (accelerator, precision, batch_size, num_workers, ...);
            None takes the CPU defaults.
        steps: timed optimiser steps (after the warm-up).
        warmup_steps: untimed steps first.
        seed: the run's seed.

    Returns:
        {"frames_per_s", "gpu_util_percent" (mean over the timed steps; None off CUDA or without
        NVML), "steps", "frames", "seconds", "device", "batch_size", "precision"}.
    """
    if steps < 1 or warmup_steps < 0:
        raise BadInput(f"steps {steps} must be >= 1 and warmup_steps {warmup_steps} >= 0")
    trainer = trainer_cfg if isinstance(trainer_cfg, TrainerConfig) else TrainerConfig(**dict(trainer_cfg or {}))
    cfg = TrainConfig(model=model_dict(model_cfg), trainer=trainer, optimizer=OptimizerConfig(scheduler="none"),
                      dataset_ref=dataset_ref, seed=seed)
    validate_train_config(cfg)
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    model_spec = model_dict(cfg.model)
    cls = model_class(model_spec["_target_"])
    version = resolve_dataset(ws, dataset_ref, task=cls.task)
    datamodule = build_datamodule(ws, version, cfg)
    pl.seed_everything(seed, workers=True, verbose=False)
    model = instantiate_model(model_spec, datamodule.sampling, dataclasses.asdict(cfg.optimizer))
    timer = _StepTimer(warmup_steps)
    accelerator = "gpu" if trainer.accelerator == "cuda" else trainer.accelerator
    run = pl.Trainer(accelerator=accelerator, devices=trainer.devices, precision=trainer.precision,
                     max_steps=warmup_steps + steps, max_epochs=-1, limit_val_batches=0, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     num_sanity_val_steps=0, deterministic=trainer.deterministic, callbacks=[timer])
    with cpu_threads(trainer.num_threads):
        run.fit(model, datamodule=datamodule)
    device = timer.device
    return {"frames_per_s": timer.frames / timer.seconds if timer.seconds > 0 else None,
            "gpu_util_percent": sum(timer.utilisation) / len(timer.utilisation) if timer.utilisation else None,
            "steps": timer.steps, "frames": timer.frames, "seconds": timer.seconds, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "batch_size": trainer.batch_size, "precision": trainer.precision}

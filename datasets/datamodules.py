"""LightningDataModules fed from an accepted DatasetVersion.

`setup()` refuses a version that is not accepted, is of another task, or whose recorded feature
transform is not the code in use (`andon.datasets.features.check_parity`); then it reads the
version's train, val and test samples. Loaders are deterministic under the seed (the version's
`spec["seed"]` unless one is given): a seeded torch.Generator drives shuffling and the workers'
seeds, and `seed_worker` seeds numpy in each worker. Workers are persistent, so each keeps its log
cache across epochs. Batch layouts are documented in `andon.datasets.loaders`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, ClassVar

import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from andon.datasets.batches import PackedBatch
from andon.datasets.features import bev_grid_shape, check_parity
from andon.datasets.loaders import (
    DEFAULT_CACHED_LOGS,
    DetectionSamples,
    PredictionSamples,
    collate_detection,
    collate_prediction,
    seed_worker,
)
from andon.errors import BadInput
from andon.workspace import Workspace

SPLITS: tuple[str, ...] = ("train", "val", "test")
ACCEPTED = "accepted"


class VersionDataModule(pl.LightningDataModule):
    """Shared plumbing of the task DataModules; subclasses name their task, dataset and collate_fn."""

    task: ClassVar[str]
    # A plain function, not a bound method: workers then never pickle the module (or its Trainer).
    collate_fn: ClassVar[Callable[[list[Any]], dict[str, torch.Tensor] | PackedBatch]]

    def __init__(self, workspace: Workspace | str | os.PathLike[str] | None, version: Any, batch_size: int = 8,
                 num_workers: int = 2, seed: int | None = None,
                 max_cached_logs: int = DEFAULT_CACHED_LOGS) -> None:
        """
        Args:
            workspace: the workspace (or its directory) whose blob store holds the version's logs.
            version: a DatasetVersion, or a reference `load_version(workspace, ref)` resolves.
            batch_size: samples per batch.
            num_workers: DataLoader worker processes (0 loads in the calling process).
            seed: shuffling and worker seed; None takes the version's spec["seed"].
            max_cached_logs: logs each worker keeps loaded (least recently used go first).
        """
        super().__init__()
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise BadInput(f"batch_size must be a positive whole number, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise BadInput(f"num_workers must be a whole number >= 0, got {num_workers!r}")
        self.workspace = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
        self._version_ref = version
        self.version: Any = None
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.max_cached_logs = max_cached_logs
        self.sampling: dict[str, Any] = {}
        self._samples: dict[str, pd.DataFrame] = {}
        self._datasets: dict[str, Dataset] = {}

    # ----- subclass hooks -------------------------------------------------------------------------
    def make_dataset(self, samples: pd.DataFrame) -> Dataset:
        raise NotImplementedError

    # ----- Lightning ------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Check the version, then read its splits (once; later calls reuse them).

        Raises:
            BadInput: the version is not accepted, is of another task, has no train samples, or was
                built with another feature transform than the code in use.
        """
        if self._datasets:
            return
        version = self._resolve_version()
        if version.status != ACCEPTED:
            raise BadInput(f"dataset version {version.dataset_id} ({version.name}) is {version.status!r}, not "
                           f"{ACCEPTED!r}: fix the failing checks and rebuild it (`andon dataset build`) before "
                           f"training on it")
        if version.task != self.task:
            raise BadInput(f"dataset version {version.dataset_id} is a {version.task!r} dataset; "
                           f"{type(self).__name__} needs a {self.task!r} one")
        sampling = dict(version.spec.get("sampling") or {})
        check_parity(version.transform, self.task, sampling)
        if self.seed is None:
            self.seed = int(version.spec.get("seed", 0))
        samples = {split: version.samples(split) for split in SPLITS}
        if len(samples["train"]) == 0 and stage in (None, "fit"):
            raise BadInput(f"dataset version {version.dataset_id} has no train samples: widen its query or "
                           f"split and rebuild it")
        self.version, self.sampling, self._samples = version, sampling, samples
        self._datasets = {split: self.make_dataset(frame) for split, frame in samples.items()}

    def samples(self, split: str) -> pd.DataFrame:
        """The split's sample table; a batch's `sample_index` is a row of it."""
        self._require_setup()
        return self._samples[split]

    def dataset(self, split: str) -> Dataset:
        self._require_setup()
        return self._datasets[split]

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self.loader("test", shuffle=False)

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        """A DataLoader over a split, seeded: the same seed gives the same batches in the same order."""
        self._require_setup()
        if split not in self._datasets:
            raise BadInput(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
        generator = torch.Generator()
        generator.manual_seed(int(self.seed) + SPLITS.index(split))
        workers = self.num_workers
        return DataLoader(self._datasets[split], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=workers, collate_fn=self.collate_fn, generator=generator,
                          worker_init_fn=seed_worker if workers else None, persistent_workers=workers > 0,
                          prefetch_factor=2 if workers else None, drop_last=False)

    def _resolve_version(self) -> Any:
        if not isinstance(self._version_ref, str):
            return self._version_ref
        from andon.datasets.versions import load_version  # the versions module depends on this one

        return load_version(self.workspace, self._version_ref)

    def _require_setup(self) -> None:
        if not self._datasets:
            raise BadInput(f"{type(self).__name__}.setup() has not run: call it (Lightning's Trainer does) first")


class DetectionDataModule(VersionDataModule):
    """Lidar frames as PointPillars batches (layout in `andon.datasets.loaders`)."""

    task = "detection"
    collate_fn = staticmethod(collate_detection)

    def make_dataset(self, samples: pd.DataFrame) -> Dataset:
        return DetectionSamples(samples, self.workspace.blobs_dir, self.sampling, self.max_cached_logs)

    @property
    def bev_shape(self) -> tuple[int, int]:
        """(ny, nx) of the BEV canvas the batch's pillar_coords index."""
        self._require_setup()
        return bev_grid_shape(self.sampling)


class PredictionDataModule(VersionDataModule):
    """Agents as agent-frame history, neighbours and future (layout in `andon.datasets.loaders`)."""

    task = "prediction"
    collate_fn = staticmethod(collate_prediction)

    def make_dataset(self, samples: pd.DataFrame) -> Dataset:
        return PredictionSamples(samples, self.workspace.blobs_dir, self.sampling, self.max_cached_logs)

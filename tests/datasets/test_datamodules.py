"""DataModules over logs in a real catalog: batch layouts, determinism, workers, refusals, real data."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from andon.datasets.datamodules import DetectionDataModule, PredictionDataModule
from andon.datasets.features import (
    POINT_FEATURES,
    agent_to_world,
    detection_features,
    detection_targets,
    intensity_max_for,
)
from andon.datasets.loaders import LogCache, TrackIndex
from andon.datasets.versions import DatasetVersion, read_version
from andon.errors import BadInput
from andon.scenarios.catalog import Catalog
from andon.scenarios.importers import importer
from andon.workspace import Workspace
from tests.datasets.loading_helpers import (
    DETECTION_SAMPLING,
    PREDICTION_SAMPLING,
    build_version,
    copy_workspace,
    store,
    walker_log,
)
from tests.helpers import make_log


def batches(loader: Iterable[dict[str, torch.Tensor]]) -> list[dict[str, torch.Tensor]]:
    return list(loader)


def assert_same_batches(a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]]) -> None:
    assert len(a) == len(b)
    for left, right in zip(a, b, strict=True):
        assert left.keys() == right.keys()
        for name in left:
            assert torch.equal(left[name], right[name]), name


def with_samples(version: DatasetVersion, directory: Path, split: str, table: pd.DataFrame) -> DatasetVersion:
    """A copy of a version whose split holds other samples (a version tampered with on disk)."""
    copy = directory / version.dataset_id
    shutil.copytree(version.path, copy)
    target = copy / "samples" / f"{split}.parquet"
    target.unlink()
    table.to_parquet(target, index=False)
    return read_version(copy)


@pytest.fixture(scope="module")
def detection_setup(_workspace_template: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, DatasetVersion]:
    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("detection") / "ws")
    log_ids = store(workspace, [make_log(f"d{i}", n_frames=10, seed=i) for i in range(4)])
    return workspace, build_version(workspace, log_ids, "detection", DETECTION_SAMPLING)


@pytest.fixture(scope="module")
def prediction_setup(_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory
                     ) -> tuple[Workspace, DatasetVersion, dict[str, dict[str, np.ndarray]]]:
    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("prediction") / "ws")
    logs = [walker_log(f"w{i}", seed=i) for i in range(6)]
    log_ids = store(workspace, [log for log, _ in logs])
    truth = {log_id: t for log_id, (_, t) in zip(log_ids, logs, strict=True)}
    return workspace, build_version(workspace, log_ids, "prediction", PREDICTION_SAMPLING), truth


# ----- detection ----------------------------------------------------------------------------------
def test_detection_batches_follow_the_pointpillars_layout(detection_setup) -> None:
    workspace, version = detection_setup
    module = DetectionDataModule(workspace, version, batch_size=4, num_workers=0)
    module.setup("fit")
    samples = module.samples("train")
    batch = next(iter(module.val_dataloader()))
    val = module.samples("val")
    n = len(batch["sample_index"])
    assert n == min(4, len(val))
    assert batch["pillars"].shape[1:] == (32, len(POINT_FEATURES)) and batch["pillars"].dtype == torch.float32
    assert batch["pillar_coords"].shape == (len(batch["pillars"]), 3) and batch["pillar_coords"].dtype == torch.int64
    assert batch["pillar_num_points"].shape == (len(batch["pillars"]),)
    assert batch["boxes"].shape[0] == n and batch["boxes"].shape[2] == 7
    assert batch["labels"].shape == batch["box_mask"].shape == batch["boxes"].shape[:2]
    assert torch.equal(batch["box_mask"], batch["labels"] >= 0)
    ny, nx = module.bev_shape
    assert (batch["pillar_coords"][:, 1] < ny).all() and (batch["pillar_coords"][:, 2] < nx).all()
    with Catalog(workspace) as catalog:
        for b, row in enumerate(batch["sample_index"].tolist()):
            sample = val.iloc[row]
            log = catalog.log(sample["log_id"])
            frame = log.frames[int(sample["frame_index"])]
            expected = detection_features(frame.points, DETECTION_SAMPLING, intensity_max_for(log.source, log.meta))
            mine = batch["pillar_coords"][:, 0] == b
            assert np.array_equal(batch["pillars"][mine].numpy(), expected["pillars"])
            assert np.array_equal(batch["pillar_coords"][mine, 1:].numpy(), expected["pillar_coords"])
            targets = detection_targets(frame.boxes, frame.classes, DETECTION_SAMPLING)
            count = int(batch["box_mask"][b].sum())
            assert np.array_equal(batch["boxes"][b, :count].numpy(), targets["boxes"])
            assert not batch["boxes"][b, count:].any() and (batch["labels"][b, count:] == -1).all()
    assert len(samples) > 0


def test_detection_batches_are_deterministic_with_and_without_workers(detection_setup) -> None:
    workspace, version = detection_setup
    inline = DetectionDataModule(workspace, version, batch_size=3, num_workers=0, seed=11)
    again = DetectionDataModule(workspace, version, batch_size=3, num_workers=0, seed=11)
    workers = DetectionDataModule(workspace, version, batch_size=3, num_workers=2, seed=11)
    for module in (inline, again, workers):
        module.setup("fit")
    first = batches(inline.train_dataloader())
    # Each log loads once, not once per frame.
    assert inline.dataset("train").cache.loads == inline.samples("train")["log_id"].nunique()
    assert_same_batches(first, batches(again.train_dataloader()))
    loader = workers.train_dataloader()
    assert loader.num_workers == 2 and loader.persistent_workers
    assert_same_batches(first, batches(loader))
    order = torch.cat([b["sample_index"] for b in first])
    assert sorted(order.tolist()) == list(range(len(inline.samples("train"))))
    other = DetectionDataModule(workspace, version, batch_size=3, num_workers=0, seed=12)
    other.setup("fit")
    assert not torch.equal(order, torch.cat([b["sample_index"] for b in batches(other.train_dataloader())]))


def test_the_seed_defaults_to_the_version_spec(detection_setup) -> None:
    workspace, version = detection_setup
    module = DetectionDataModule(str(workspace.root), version, num_workers=0)
    module.setup()
    assert module.seed == version.spec["seed"]


# ----- prediction ---------------------------------------------------------------------------------
def assert_neighbours(batch: dict[str, torch.Tensor], i: int, truth: dict[str, np.ndarray], focal: str,
                      frame: int, history_steps: int, slots: int) -> None:
    """The batch's neighbours are the nearest other tracks seen in the history, by a plain loop."""
    frames = frame - 2 * np.arange(history_steps)[::-1]
    origin = truth[focal][frame]
    candidates = []
    for track, xy in truth.items():
        seen = np.isfinite(xy[frames, 0])
        if track != focal and seen.any():
            last = xy[frames][np.flatnonzero(seen)[-1]]
            candidates.append((float(np.hypot(*(last - origin))), track))
    expected = [track for _, track in sorted(candidates)[:slots]]
    mask = batch["neighbours_mask"][i].numpy()
    assert int(mask.any(axis=1).sum()) == len(expected)
    for slot, track in enumerate(expected):
        world = agent_to_world(batch["neighbours"][i, slot, :, :2].numpy(), batch["origin"][i].numpy())
        np.testing.assert_allclose(world[mask[slot]], truth[track][frames][mask[slot]], atol=1e-4)
        assert np.array_equal(mask[slot], np.isfinite(truth[track][frames, 0]))


def test_prediction_batches_are_agent_frame_tensors(prediction_setup) -> None:
    workspace, version, truth = prediction_setup
    module = PredictionDataModule(workspace, version, batch_size=8, num_workers=0)
    module.setup("fit")
    train = module.samples("train")
    h, f, a = PREDICTION_SAMPLING["history_steps"], PREDICTION_SAMPLING["horizon_steps"], 5
    seen = 0
    for batch in module.train_dataloader():
        b = len(batch["sample_index"])
        assert batch["history"].shape == (b, h, 4) and batch["history_mask"].shape == (b, h)
        assert batch["neighbours"].shape == (b, a, h, 4) and batch["neighbours_mask"].shape == (b, a, h)
        assert batch["future"].shape == (b, f, 2) and batch["future_mask"].shape == (b, f)
        assert batch["origin"].dtype == torch.float64 and batch["history"].dtype == torch.float32
        assert batch["history_mask"].all() and batch["future_mask"].all()  # samples are fully observed
        assert not batch["history"][:, -1, :2].any()  # the agent sits at the origin at t0
        for i, row in enumerate(batch["sample_index"].tolist()):
            sample = train.iloc[row]
            track = truth[sample["log_id"]][sample["track_id"]]
            frame = int(sample["frame_index"])
            future_frames = frame + 2 * np.arange(1, f + 1)  # 0.2 s steps in a 10 Hz log
            world = agent_to_world(batch["future"][i].numpy(), batch["origin"][i].numpy())
            np.testing.assert_allclose(world, track[future_frames], atol=1e-4)
            np.testing.assert_allclose(batch["origin"][i, :2].numpy(), track[frame], atol=1e-9)
            assert_neighbours(batch, i, truth[sample["log_id"]], sample["track_id"], frame, h, a)
        seen += b
    assert seen == len(train) > 0
    neighbours = module.dataset("train")[0]["neighbours_mask"]
    assert neighbours.shape == (1, a, h) and neighbours.any()


def test_prediction_batches_are_deterministic_with_and_without_workers(prediction_setup) -> None:
    workspace, version, _ = prediction_setup
    modules = [PredictionDataModule(workspace, version, batch_size=5, num_workers=w, seed=3) for w in (0, 0, 2)]
    for module in modules:
        module.setup("fit")
    first = batches(modules[0].train_dataloader())
    assert_same_batches(first, batches(modules[1].train_dataloader()))
    loader = modules[2].train_dataloader()
    assert_same_batches(first, batches(loader))
    assert_same_batches(batches(modules[0].val_dataloader()), batches(modules[2].val_dataloader()))
    second_epoch = batches(loader)  # persistent workers, next shuffle: same samples, another order
    order = torch.cat([b["sample_index"] for b in second_epoch]).tolist()
    assert sorted(order) == list(range(len(modules[0].samples("train"))))


def test_single_index_access_matches_batched_extraction(prediction_setup) -> None:
    workspace, version, _ = prediction_setup
    module = PredictionDataModule(workspace, version, num_workers=0)
    module.setup("fit")
    dataset = module.dataset("train")
    batch = dataset.__getitems__([5, 0, 3])[0]
    for position, index in enumerate([5, 0, 3]):
        single = dataset[index]
        for name, value in single.items():
            assert np.array_equal(batch[name][position], value[0]), name


def test_the_track_index_moves_boxes_into_the_world_frame(workspace: Workspace) -> None:
    log, truth = walker_log("world")
    (log_id,) = store(workspace, [log])
    with Catalog(workspace) as catalog:
        index = TrackIndex.from_log(catalog.log(log_id))
    codes = index.codes(np.array(["ped2", "car0", "nobody"]))
    assert codes[2] == -1
    frames = np.arange(40)
    xy = index.positions(codes[:2, None], frames[None])
    np.testing.assert_allclose(xy, np.stack([truth["ped2"], truth["car0"]]), atol=1e-9, equal_nan=True)
    stamps_ns = np.array([2_000_000_000, 2_040_000_000, 2_060_000_000, 9_000_000_000])
    assert index.frames_at(stamps_ns).tolist() == [0, 0, 1, -1]  # nearest within half a frame period


def test_the_log_cache_loads_each_log_once_and_forgets_the_oldest(workspace: Workspace) -> None:
    log_ids = store(workspace, [make_log("a", n_frames=3, seed=1), make_log("b", n_frames=3, seed=2)])
    with Catalog(workspace) as catalog:
        manifests = [catalog.log_row(log_id)["manifest"] for log_id in log_ids]
    cache = LogCache(workspace.blobs_dir, max_logs=1)
    first = cache.get(log_ids[0], manifests[0], lambda log: log)
    assert cache.get(log_ids[0], manifests[0], lambda log: log) is first and cache.loads == 1
    cache.get(log_ids[1], manifests[1], lambda log: log)
    cache.get(log_ids[0], manifests[0], lambda log: log)
    assert cache.loads == 3


# ----- refusals -----------------------------------------------------------------------------------
def test_a_rejected_version_is_refused(detection_setup) -> None:
    workspace, version = detection_setup
    module = DetectionDataModule(workspace, dataclasses.replace(version, status="rejected"), num_workers=0)
    with pytest.raises(BadInput, match="'rejected', not 'accepted'"):
        module.setup("fit")


def test_a_version_of_another_task_is_refused(detection_setup) -> None:
    workspace, version = detection_setup
    with pytest.raises(BadInput, match="needs a 'prediction' one"):
        PredictionDataModule(workspace, version, num_workers=0).setup("fit")


def test_a_version_built_with_another_transform_is_refused(detection_setup) -> None:
    workspace, version = detection_setup
    tampered = dataclasses.replace(version, transform={**version.transform, "code_hash": "f" * 64})
    with pytest.raises(BadInput, match="f" * 64):
        DetectionDataModule(workspace, tampered, num_workers=0).setup("fit")


def test_samples_that_no_longer_match_their_log_are_refused(detection_setup, tmp_path: Path) -> None:
    workspace, version = detection_setup
    train = version.samples("train")
    train["timestamp_ns"] += 1
    stale = with_samples(version, tmp_path, "train", train)
    module = DetectionDataModule(workspace, stale, num_workers=0)
    module.setup("fit")
    with pytest.raises(BadInput, match="rebuild it"):
        next(iter(module.train_dataloader()))


def test_bad_loader_arguments_and_missing_setup_are_refused(detection_setup, tmp_path: Path) -> None:
    workspace, version = detection_setup
    with pytest.raises(BadInput, match="batch_size"):
        DetectionDataModule(workspace, version, batch_size=0)
    with pytest.raises(BadInput, match="setup"):
        DetectionDataModule(workspace, version).train_dataloader()
    empty = with_samples(version, tmp_path / "empty", "train", version.samples("train").iloc[:0])
    with pytest.raises(BadInput, match="no train samples"):
        DetectionDataModule(workspace, empty, num_workers=0).setup("fit")
    no_columns = with_samples(version, tmp_path / "columns", "val", pd.DataFrame({"log_id": ["x"]}))
    with pytest.raises(BadInput, match="lack columns"):
        DetectionDataModule(workspace, no_columns, num_workers=0).setup("fit")


# ----- a Trainer drives it ------------------------------------------------------------------------
class TinyPredictor(pl.LightningModule):
    def __init__(self, horizon_steps: int) -> None:
        super().__init__()
        self.horizon_steps = horizon_steps
        self.net = torch.nn.Linear(4 * PREDICTION_SAMPLING["history_steps"], 2 * horizon_steps)

    def training_step(self, batch: dict[str, torch.Tensor], _: int) -> torch.Tensor:
        guess = self.net(batch["history"].flatten(1)).view(-1, self.horizon_steps, 2)
        return ((guess - batch["future"]) ** 2 * batch["future_mask"][..., None]).mean()

    def validation_step(self, batch: dict[str, torch.Tensor], _: int) -> None:
        self.log("val_loss", self.training_step(batch, 0), batch_size=len(batch["sample_index"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*")  # raised inside pytorch_lightning itself
def test_a_lightning_trainer_runs_on_the_prediction_datamodule(prediction_setup, tmp_path: Path) -> None:
    workspace, version, _ = prediction_setup
    module = PredictionDataModule(workspace, version, batch_size=8, num_workers=0)
    trainer = pl.Trainer(fast_dev_run=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(TinyPredictor(PREDICTION_SAMPLING["horizon_steps"]), datamodule=module)
    assert trainer.state.finished


def test_a_version_is_found_by_its_reference(prediction_setup) -> None:
    workspace, version, _ = prediction_setup
    module = PredictionDataModule(workspace.root, version.dataset_id[:8], num_workers=0)
    module.setup("fit")
    assert module.version.dataset_id == version.dataset_id
    assert len(module.samples("train")) == len(version.samples("train"))


# ----- real data ----------------------------------------------------------------------------------
@pytest.mark.realdata
def test_eth_ucy_agents_load_through_the_prediction_datamodule(shared_data: Path, workspace: Workspace) -> None:
    (log,) = importer("eth-ucy").read(shared_data / "prediction" / "eth_ucy" / "biwi_eth.txt")
    (log_id,) = store(workspace, [log])
    sampling = {"stride": 1, "step_s": 0.4, "history_steps": 8, "horizon_steps": 12, "max_agents_per_frame": 16}
    version = build_version(workspace, [log_id], "prediction", sampling, source="eth-ucy", fractions=(1.0, 0.0, 0.0))
    module = PredictionDataModule(workspace, version, batch_size=64, num_workers=2, seed=0)
    module.setup("fit")
    train = module.samples("train")
    assert len(train) > 100
    raw = {(str(t), int(f.timestamp_ns)): b[:2] for f in log.frames
           for t, b in zip(f.track_ids, f.boxes, strict=True)}
    batch = next(iter(module.train_dataloader()))
    assert batch["history"].shape == (64, 8, 4) and batch["future"].shape == (64, 12, 2)
    assert batch["neighbours"].shape == (64, 16, 8, 4) and batch["neighbours_mask"].any()
    for i, row in enumerate(batch["sample_index"].tolist()[:16]):
        sample = train.iloc[row]
        stamps = int(sample["timestamp_ns"]) + 400_000_000 * np.arange(1, 13)
        expected = np.array([raw[(sample["track_id"], int(s))] for s in stamps])
        got = agent_to_world(batch["future"][i].numpy(), batch["origin"][i].numpy())
        np.testing.assert_allclose(got, expected, atol=1e-4)
    # Pedestrians mostly walk forward: the t0 displacement points along +x in the agent frame.
    moving = batch["history"][:, -1, 2:].norm(dim=1) > 0.1
    assert (batch["history"][moving, -1, 2] > 0).float().mean() > 0.9

"""TrajectoryPredictor: constant-velocity start, masks, frame invariance, learning, Lightning and the app."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from andon.datasets.datamodules import PredictionDataModule
from andon.datasets.features import agent_to_world, prediction_features_batch
from andon.errors import BadInput
from andon.models.baselines import constant_velocity, constant_velocity_rollout, constant_velocity_xy
from andon.models.prediction_eval import evaluate_arrays
from andon.models.predictor import TrajectoryPredictor
from andon.models.train import instantiate_model, model_class, run_training
from tests.datasets.loading_helpers import (
    PREDICTION_SAMPLING,
    build_version,
    copy_workspace,
    store,
    walker_log,
)
from tests.models.train_helpers import compose_train

H, F, A = 4, 6, 5


def curving_batch(n: int, seed: int = 0, noise_m: float = 0.02) -> dict[str, torch.Tensor]:
    """Agents turning at constant yaw rates, in their frame at t0 (x, y, dx, dy), with a masked neighbour slot."""
    rng = np.random.default_rng(seed)
    speed = rng.uniform(0.5, 2.0, n)  # [m per step]
    turn = rng.uniform(-0.25, 0.25, n)  # [rad per step]
    k = np.arange(-(H - 1), F + 1)
    heading = turn[:, None] * k[None]
    # Integrate unit steps along the heading, then put t0 at the origin.
    steps = speed[:, None, None] * np.stack([np.cos(heading), np.sin(heading)], -1)
    xy = np.cumsum(steps, axis=1)
    xy -= xy[:, H - 1:H]
    xy += rng.normal(0.0, noise_m, xy.shape)
    history = np.zeros((n, H, 4), np.float32)
    history[..., :2] = xy[:, :H]
    history[:, 1:, 2:] = np.diff(xy[:, :H], axis=1)
    neighbours = np.zeros((n, A, H, 4), np.float32)
    neighbours[:, 0, :, :2] = xy[:, :H] + np.array([3.0, 3.0])
    neighbours_mask = np.zeros((n, A, H), bool)
    neighbours_mask[:, 0] = True
    return {"history": torch.from_numpy(history), "history_mask": torch.ones(n, H, dtype=torch.bool),
            "neighbours": torch.from_numpy(neighbours), "neighbours_mask": torch.from_numpy(neighbours_mask),
            "future": torch.from_numpy(xy[:, H:].astype(np.float32)), "future_mask": torch.ones(n, F, dtype=torch.bool),
            "origin": torch.zeros(n, 3, dtype=torch.float64), "sample_index": torch.arange(n)}


class Batches(Dataset):
    """A dict batch as a map-style dataset of single samples (for a plain DataLoader)."""

    def __init__(self, batch: dict[str, torch.Tensor]) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch["history"])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[index] for key, value in self.batch.items()}


def inputs(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return batch["history"], batch["history_mask"], batch["neighbours"], batch["neighbours_mask"]


def test_the_untrained_model_is_the_constant_velocity_baseline() -> None:
    torch.manual_seed(0)
    batch = curving_batch(32)
    model = TrajectoryPredictor(history_steps=H, horizon_steps=F).eval()
    modes, logits = model(*inputs(batch))
    assert modes.shape == (32, 6, F, 2) and logits.shape == (32, 6)
    baseline = constant_velocity(batch["history"], F)
    assert (modes - baseline[:, None]).abs().max() < 0.05


def test_masked_inputs_and_futures_do_not_matter() -> None:
    torch.manual_seed(0)
    batch = curving_batch(16)
    batch["history_mask"][:, 0] = False
    batch["future_mask"][:, -2:] = False
    model = TrajectoryPredictor(history_steps=H, horizon_steps=F, augment_flip=False)
    before_modes, _ = model(*inputs(batch))
    before_loss = model._losses(batch)["loss"]
    noisy = {key: value.clone() for key, value in batch.items()}
    noisy["history"][:, 0] = 99.0
    noisy["neighbours"][:, 1:] = 99.0  # padded slots
    noisy["future"][:, -2:] = -99.0
    after_modes, _ = model(*inputs(noisy))
    assert torch.allclose(before_modes, after_modes) and torch.allclose(before_loss, model._losses(noisy)["loss"])


def test_predictions_turn_with_the_inputs() -> None:
    """With heading="history" the frame the loader chose does not matter: turn the inputs, the modes turn."""
    torch.manual_seed(0)
    batch = curving_batch(8)
    model = TrajectoryPredictor(history_steps=H, horizon_steps=F, num_modes=3).eval()
    theta = 0.9
    c, s = math.cos(theta), math.sin(theta)
    rotation = torch.tensor([[c, s], [-s, c]])  # row vectors: v @ R turns v by +theta

    def turn(x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return (x.reshape(*shape[:-1], -1, 2) @ rotation).reshape(shape)

    modes, logits = model(*inputs(batch))
    turned = dict(batch, history=turn(batch["history"]), neighbours=turn(batch["neighbours"]))
    modes_turned, logits_turned = model(*inputs(turned))
    assert torch.allclose(turn(modes), modes_turned, atol=1e-4) and torch.allclose(logits, logits_turned, atol=1e-4)


def test_the_predictor_learns_to_beat_constant_velocity() -> None:
    pl.seed_everything(0, workers=True, verbose=False)
    train, test = curving_batch(2048, seed=1), curving_batch(512, seed=2)
    model = TrajectoryPredictor(history_steps=H, horizon_steps=F, hidden_size=32, neighbour_size=8,
                                optimizer={"lr": 1e-2})
    trainer = pl.Trainer(max_epochs=8, accelerator="cpu", deterministic=True, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, DataLoader(Batches(train), batch_size=128, shuffle=True,
                                  generator=torch.Generator().manual_seed(0)))
    model.eval()
    with torch.no_grad():
        modes, logits = model(*inputs(test))
    future, mask = test["future"].double().numpy(), test["future_mask"].numpy()
    ours = evaluate_arrays(modes.double().numpy(), torch.softmax(logits, -1).double().numpy(), future, mask)
    cv = constant_velocity(test["history"].double(), F).numpy()[:, None]
    base = evaluate_arrays(cv, np.ones((len(cv), 1)), future, mask)
    assert ours["ADE"] < 0.7 * base["ADE"] and ours["FDE"] < 0.7 * base["FDE"]
    assert ours["minADE_k"] <= ours["ADE"]


@pytest.fixture(scope="module")
def walkers(_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory):
    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("predictor") / "ws")
    log_ids = store(workspace, [walker_log(f"w{i}", seed=i)[0] for i in range(6)])
    return workspace, build_version(workspace, log_ids, "prediction", PREDICTION_SAMPLING)


def test_lightning_fit_logs_the_validation_metrics_and_predicts_in_the_world(walkers) -> None:
    workspace, version = walkers
    datamodule = PredictionDataModule(workspace, version, batch_size=8, num_workers=0, seed=0)
    datamodule.setup("fit")
    model = TrajectoryPredictor(sampling=datamodule.sampling, hidden_size=16, neighbour_size=8)
    assert (model.history_steps, model.horizon_steps) == (4, 6)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=2, accelerator="cpu",
                         deterministic=True, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    trainer.fit(model, datamodule=datamodule)
    assert {"val/ADE", "val/FDE", "val/minADE_k", "val/minFDE_k", "val/miss_rate", "train/loss"} \
        <= set(trainer.callback_metrics)
    batch = next(iter(datamodule.val_dataloader()))
    example = model.example_input(batch)
    assert set(example) == {"history", "history_mask", "neighbours", "neighbours_mask"}
    assert all(isinstance(v, np.ndarray) and len(v) == 2 for v in example.values())
    model.eval()
    out = model.predict_step(batch, 0)
    np.testing.assert_allclose(out["modes_m"], agent_to_world(out["modes_agent_m"], batch["origin"].numpy()))
    np.testing.assert_allclose(out["probs"].sum(1), 1.0, atol=1e-6)


def test_forecast_serves_the_feature_transform_in_the_world_frame() -> None:
    """Serving path: world tracks -> prediction_features_batch -> forecast -> world modes."""
    torch.manual_seed(0)
    model = TrajectoryPredictor(history_steps=H, horizon_steps=F)
    history = np.stack([np.column_stack([10.0 + np.arange(H), np.full(H, 5.0)])] * 2)
    history[1] += [0.0, 10.0]
    neighbours = np.full((2, 1, H, 2), np.nan)
    features = prediction_features_batch(history, np.array([0.0, np.nan]), neighbours,
                                         np.zeros((2, 1, H), bool), PREDICTION_SAMPLING)
    out = model.forecast(features)
    assert out["modes_m"].shape == (2, 6, F, 2) and out["probs"].shape == (2, 6)
    # Untrained it extrapolates: 1 m per step along +x from the last position.
    expected = constant_velocity_xy(history, F)
    np.testing.assert_allclose(out["modes_m"][:, 0], expected, atol=0.05)


def test_constant_velocity_baselines_agree() -> None:
    history_xy = np.array([[[0.0, 0.0], [1.0, 0.5], [2.0, 1.0]], [[np.nan, np.nan], [np.nan, np.nan], [3.0, 3.0]]])
    out = constant_velocity_xy(history_xy, 2)
    np.testing.assert_allclose(out, [[[3.0, 1.5], [4.0, 2.0]], [[3.0, 3.0], [3.0, 3.0]]])
    rollout = constant_velocity_rollout(np.array([[0.0, 0.0]]), np.array([[2.0, np.nan]]), 1.0, 0.5)
    np.testing.assert_allclose(rollout, [[[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]])
    with pytest.raises(BadInput, match="t0"):
        constant_velocity_xy(history_xy[:, :, ::-1][:, ::-1], 2)
    with pytest.raises(BadInput, match="horizon_steps"):
        constant_velocity(torch.zeros(2, 3, 4), 0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"history_steps": 4, "horizon_steps": 6, "optimizer": {"momentum": 0.9}}, "momentum"),
    ({"history_steps": 4, "horizon_steps": 6, "optimizer": {"scheduler": "step"}}, "scheduler"),
    ({"history_steps": 4, "horizon_steps": 6, "heading": "north"}, "heading"),
    ({"history_steps": 4, "horizon_steps": 6, "num_modes": 0}, "num_modes"),
    ({"horizon_steps": 6}, "history_steps"),
    ({"history_steps": 8, "sampling": {"history_steps": 4, "horizon_steps": 6}}, "sampling.history_steps is 4"),
])
def test_bad_settings_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        TrajectoryPredictor(**kwargs)


def test_a_batch_of_another_horizon_is_refused() -> None:
    batch = curving_batch(4)
    with pytest.raises(BadInput, match="horizon_steps"):
        TrajectoryPredictor(history_steps=H, horizon_steps=F + 1)._losses(batch)
    with pytest.raises(BadInput, match="history_steps"):
        TrajectoryPredictor(history_steps=H + 1, horizon_steps=F)(*inputs(batch))


def test_the_model_config_builds_through_the_training_app() -> None:
    cfg = compose_train(["model=predictor", "optimizer=adamw", "workspace=/nowhere"])
    model_cfg = OmegaConf.to_container(cfg.model)
    assert model_class(model_cfg["_target_"]) is TrajectoryPredictor
    model = instantiate_model(model_cfg, PREDICTION_SAMPLING, OmegaConf.to_container(cfg.optimizer))
    assert isinstance(model, TrajectoryPredictor) and (model.history_steps, model.horizon_steps) == (4, 6)
    assert model.optimizer_settings["name"] == "adamw" and model.hparams.name == "predictor"


def test_the_smoke_experiment_trains_and_registers_through_the_app(walkers) -> None:
    workspace, version = walkers
    cfg = compose_train(["+experiment=predictor_smoke", f"workspace={workspace.root}", f"dataset={version.dataset_id}",
                         "trainer.enable_progress_bar=false", "+upstream.detector=3"])
    result = run_training(cfg)
    assert result.model == "predictor" and result.version is not None
    assert "val/minADE_k" in result.metrics and "best/val/minADE_k" in result.metrics

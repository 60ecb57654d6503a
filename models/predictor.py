"""TrajectoryPredictor: K future trajectories with probabilities, from an agent's history and neighbours.

Inputs are PredictionDataModule batches (andon.datasets.loaders): the agent's history (B, H, 4) and
its neighbours (B, A, H, 4) as (x, y, dx, dy) per step in the agent frame at t0, with masks.

Model (small by default, sized by its arguments):
1. Heading. With `heading="history"` every input is first turned so that +x points along the agent's
   last displacement into t0 (0 rad when it moved less than STATIONARY_DISPLACEMENT_M), and the
   outputs are turned back. The model then never depends on how the agent frame's heading was
   chosen: ETH/UCY box yaws come from central differences, which peek one step into the future.
   `heading="given"` keeps the loader's frame (a detector's box yaw at t0 is fair information, e.g.
   for a car standing at a stop line).
2. History encoder: an MLP over the flattened steps (x, y, dx, dy, observed).
3. Neighbour encoder: an MLP per neighbour over its flattened steps (x, y, dx, dy, offset from the
   agent at the same step, observed), max-pooled over the neighbours that are observed at all.
4. Decoder: an MLP to K trajectories, each a residual over the constant-velocity extrapolation of the
   last displacement (so an untrained model starts as the classic baseline), plus K mode logits
   and, for the Laplace loss, K per-step scales.
Loss, winner takes all: the mode with the smallest ADE to the truth (over observed future steps)
is regressed (Laplace negative log-likelihood, or smooth L1), and cross-entropy teaches the mode
logits to pick it. Masked future steps and padded neighbours never contribute. ADE/FDE score the most
probable mode, which WTA alone does not train to be good on average: `top_mode_weight` adds the
regression of the currently most probable mode. Training samples are mirrored (`augment_flip`) and
optionally scaled (`augment_scale`): scenes differ in handedness and walking speed, and on ETH/UCY's
leave-one-scene-out both transfer better with them.

Validation logs val/ADE, val/FDE (of the most probable mode), val/minADE_k, val/minFDE_k and
val/miss_rate computed by andon.models.prediction_metrics over the whole validation split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from andon.datasets.features import STATIONARY_DISPLACEMENT_M, agent_to_world
from andon.errors import BadInput
from andon.models.prediction_eval import METRIC_NAMES, evaluate_arrays
from andon.models.prediction_metrics import MISS_THRESHOLD_M

HEADINGS: tuple[str, ...] = ("history", "given")
REGRESSION_LOSSES: tuple[str, ...] = ("laplace", "smooth_l1")
INPUT_NAMES: tuple[str, ...] = ("history", "history_mask", "neighbours", "neighbours_mask")
SCHEDULERS: tuple[str, ...] = ("onecycle", "cosine", "none")
# The training app's OptimizerConfig fields; a plain Trainer (tests, benchmarks) gets these defaults.
DEFAULT_OPTIMIZER: dict[str, Any] = {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4, "betas": [0.9, 0.99],
                                     "scheduler": "onecycle", "pct_start": 0.3, "div_factor": 10.0,
                                     "final_div_factor": 100.0}
LOG_SCALE_RANGE = (-4.0, 4.0)  # clamp of the Laplace log-scale [log m]: keeps the NLL finite early on
NEIGHBOUR_RANGE_M = 50.0  # neighbour offsets are clipped here: what lies farther only says "far"


class TrajectoryPredictor(pl.LightningModule):
    """Multi-modal trajectory forecaster (module docstring).

    Args:
        history_steps: H, history steps including t0; None takes `sampling["history_steps"]`.
        horizon_steps: F, future steps; None takes `sampling["horizon_steps"]`.
        num_modes: K, trajectories per agent.
        hidden_size: width of the history encoder and decoder.
        neighbour_size: width of the neighbour encoder.
        dropout: dropout in the decoder.
        regression_loss: "laplace" (NLL with learnt scales) or "smooth_l1".
        classification_weight: weight of the mode cross-entropy.
        top_mode_weight: weight of an extra regression of the most probable mode (what ADE/FDE score).
        heading: "history" (turn inputs to the last displacement) or "given" (keep the agent frame).
        augment_flip: mirror training samples across the agent's x axis with probability 1/2.
        augment_scale: scale training samples about t0 by a factor in [1 - s, 1 + s].
        miss_threshold_m: the miss-rate threshold of validation [m].
        optimizer: the training app's OptimizerConfig fields (name adam | adamw, lr, weight_decay, betas,
            scheduler onecycle | cosine | none, pct_start, div_factor, final_div_factor); missing keys
            take DEFAULT_OPTIMIZER's.
        sampling: the dataset version's sampling spec (the training app passes it): the step counts.
        name: the registered model's name (the training app's `model.name`).

    Raises:
        BadInput: a size below 1, step counts that disagree with the sampling, an unknown loss,
            heading, optimizer key or schedule.
    """

    task: ClassVar[str] = "prediction"
    monitor: ClassVar[tuple[str, str]] = ("val/minADE_k", "min")

    def __init__(self, history_steps: int | None = None, horizon_steps: int | None = None, num_modes: int = 6,
                 hidden_size: int = 64, neighbour_size: int = 32, dropout: float = 0.0,
                 regression_loss: str = "laplace", classification_weight: float = 1.0, top_mode_weight: float = 0.0,
                 heading: str = "history", augment_flip: bool = True, augment_scale: float = 0.0,
                 miss_threshold_m: float = MISS_THRESHOLD_M, optimizer: Mapping[str, Any] | None = None,
                 sampling: Mapping[str, Any] | None = None, name: str = "predictor") -> None:
        super().__init__()
        history_steps, horizon_steps = _steps(history_steps, horizon_steps, sampling)
        for key, value in (("num_modes", num_modes), ("hidden_size", hidden_size), ("neighbour_size", neighbour_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BadInput(f"model.{key}={value!r} must be a whole number >= 1")
        if regression_loss not in REGRESSION_LOSSES:
            raise BadInput(f"model.regression_loss={regression_loss!r}: choose one of {', '.join(REGRESSION_LOSSES)}")
        if heading not in HEADINGS:
            raise BadInput(f"model.heading={heading!r}: choose one of {', '.join(HEADINGS)}")
        for key, value, top in (("dropout", dropout, 1.0), ("augment_scale", augment_scale, 1.0)):
            if not (isinstance(value, int | float) and 0.0 <= value < top):
                raise BadInput(f"model.{key}={value!r} must be in [0, {top:g})")
        for key, value in (("classification_weight", classification_weight), ("top_mode_weight", top_mode_weight),
                           ("miss_threshold_m", miss_threshold_m)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise BadInput(f"model.{key}={value!r} must be a finite number >= 0")
        self.optimizer_settings = _optimizer_settings(optimizer)
        self.save_hyperparameters({"name": name, "history_steps": history_steps, "horizon_steps": horizon_steps,
                                   "num_modes": num_modes, "hidden_size": hidden_size,
                                   "neighbour_size": neighbour_size, "dropout": dropout,
                                   "regression_loss": regression_loss, "classification_weight": classification_weight,
                                   "top_mode_weight": top_mode_weight, "heading": heading,
                                   "augment_flip": augment_flip, "augment_scale": augment_scale,
                                   "miss_threshold_m": miss_threshold_m, "optimizer": self.optimizer_settings})
        self.history_steps, self.horizon_steps, self.num_modes = history_steps, horizon_steps, num_modes
        per_mode = horizon_steps * 2 * (2 if regression_loss == "laplace" else 1) + 1
        self.history_encoder = nn.Sequential(nn.Linear(history_steps * 5, hidden_size), nn.ReLU(),
                                             nn.Linear(hidden_size, hidden_size), nn.ReLU())
        self.neighbour_encoder = nn.Sequential(nn.Linear(history_steps * 7, neighbour_size), nn.ReLU(),
                                               nn.Linear(neighbour_size, neighbour_size), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(hidden_size + neighbour_size, 2 * hidden_size), nn.ReLU(),
                                     nn.Dropout(dropout), nn.Linear(2 * hidden_size, num_modes * per_mode))
        # Residuals start near zero: the untrained model is the constant-velocity baseline.
        nn.init.normal_(self.decoder[-1].weight, std=1e-3)
        nn.init.zeros_(self.decoder[-1].bias)
        self._val_outputs: list[dict[str, np.ndarray]] = []

    # ----- inference ------------------------------------------------------------------------------
    def forward(self, history: Tensor, history_mask: Tensor, neighbours: Tensor,
                neighbours_mask: Tensor) -> tuple[Tensor, Tensor]:
        """K trajectories and their logits.

        Returns:
            modes: (B, K, F, 2) positions [m] in the agent frame at t0; logits: (B, K) (softmax: probabilities).
        """
        modes, logits, _, rotation = self._decode(history, history_mask, neighbours, neighbours_mask)
        return _rotate(modes, rotation, inverse=True), logits

    def example_input(self, batch: dict[str, Any], rows: int = 2) -> dict[str, np.ndarray]:
        """The model's inputs for a few agents of a batch, as numpy (for an MLflow signature)."""
        return {name: _numpy(batch[name][:rows]) for name in INPUT_NAMES}

    @torch.no_grad()
    def forecast(self, features: dict[str, Any]) -> dict[str, np.ndarray]:
        """World-frame modes of agents from `prediction_features_batch` output (or a batch).

        Returns:
            modes_m: (B, K, F, 2) world positions [m]; probs: (B, K); modes_agent_m: the modes in the agent frame.
        """
        inputs = {name: torch.as_tensor(np.asarray(features[name])) for name in INPUT_NAMES}
        inputs["history"], inputs["neighbours"] = inputs["history"].float(), inputs["neighbours"].float()
        was_training = self.training
        self.eval()
        modes, logits = self(**{k: v.to(self.device) for k, v in inputs.items()})
        self.train(was_training)
        agent = modes.double().cpu().numpy()
        return {"modes_m": agent_to_world(agent, np.asarray(features["origin"], dtype=np.float64)),
                "probs": torch.softmax(logits, dim=-1).double().cpu().numpy(), "modes_agent_m": agent}

    # ----- training -------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        losses = self._losses(self._augmented(batch))
        size = len(batch["history"])
        for name in ("loss", "regression", "classification", "minADE_k"):
            self.log(f"train/{name}", losses[name], batch_size=size, prog_bar=name == "loss")
        return losses["loss"]

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        losses = self._losses(batch)
        self.log("val/loss", losses["loss"], batch_size=len(batch["history"]))
        modes, logits = losses["modes"], losses["logits"]
        self._val_outputs.append({"modes": _numpy(modes), "probs": _numpy(torch.softmax(logits, -1)),
                                  "future": _numpy(batch["future"]), "future_mask": _numpy(batch["future_mask"])})

    def on_validation_epoch_start(self) -> None:
        self._val_outputs = []

    def on_validation_epoch_end(self) -> None:
        outputs, self._val_outputs = self._val_outputs, []
        if not outputs:
            return
        joined = {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}
        if not joined["future_mask"][:, 0].any():
            return
        metrics = evaluate_arrays(joined["modes"], joined["probs"], joined["future"], joined["future_mask"],
                                  miss_threshold_m=self.hparams.miss_threshold_m)
        for name in METRIC_NAMES:
            self.log(f"val/{name}", float(metrics[name]), prog_bar=name == "minADE_k")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0) -> dict[str, np.ndarray]:
        modes, logits = self(batch["history"], batch["history_mask"], batch["neighbours"], batch["neighbours_mask"])
        agent = _numpy(modes).astype(np.float64)
        return {"modes_agent_m": agent, "probs": _numpy(torch.softmax(logits, -1)).astype(np.float64),
                "modes_m": agent_to_world(agent, _numpy(batch["origin"])),
                "sample_index": _numpy(batch["sample_index"])}

    def configure_optimizers(self) -> Any:
        """Adam or AdamW with the training app's schedule (one-cycle, cosine or none), stepped per batch."""
        settings = self.optimizer_settings
        kind = torch.optim.AdamW if settings["name"] == "adamw" else torch.optim.Adam
        optimizer = kind(self.parameters(), lr=settings["lr"], weight_decay=settings["weight_decay"],
                         betas=tuple(settings["betas"]))
        if settings["scheduler"] == "none":
            return optimizer
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        if settings["scheduler"] == "onecycle":
            schedule: Any = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=settings["lr"], total_steps=total, pct_start=settings["pct_start"],
                div_factor=settings["div_factor"], final_div_factor=settings["final_div_factor"], cycle_momentum=False)
        else:
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # ----- internals ------------------------------------------------------------------------------
    def _augmented(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The batch scaled about t0 by a factor in [1 - s, 1 + s] and mirrored across the agent's x axis
        (with probability 1/2), per agent: scenes differ in walking speed and in handedness."""
        scale, flip = float(self.hparams.augment_scale), bool(self.hparams.augment_flip)
        if scale <= 0.0 and not flip:
            return batch
        history = batch["history"].float()
        factor = torch.ones(len(history), 2, dtype=history.dtype, device=history.device)
        if scale > 0.0:
            factor = factor * (1.0 + scale * (2.0 * torch.rand(len(history), 1, device=history.device) - 1.0))
        if flip:
            factor[:, 1] *= torch.where(torch.rand(len(history), device=history.device) < 0.5, -1.0, 1.0)
        out = dict(batch)
        out["history"] = history * factor.repeat(1, 2)[:, None, :]
        out["neighbours"] = batch["neighbours"].float() * factor.repeat(1, 2)[:, None, None, :]
        out["future"] = batch["future"].float() * factor[:, None, :]
        return out

    def _losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Winner-takes-all regression of the best mode (by ADE) + cross-entropy on its index.

        Returns the loss and its parts, and the (detached) modes in the agent frame and logits.
        """
        future, future_mask = batch["future"], batch["future_mask"]
        if future.shape[1] != self.horizon_steps:
            raise BadInput(f"the batch's future has {future.shape[1]} steps but the model predicts "
                           f"{self.horizon_steps}: set model.horizon_steps to the dataset's sampling.horizon_steps")
        modes, logits, log_scale, rotation = self._decode(batch["history"], batch["history_mask"],
                                                          batch["neighbours"], batch["neighbours_mask"])
        target = _rotate(future.float(), rotation)[:, None]  # (B, 1, F, 2), the modes' frame
        step_mask = future_mask.float()
        counted = step_mask.sum(-1)  # (B,)
        has_future = counted > 0
        weights = step_mask / counted.clamp(min=1.0)[:, None]  # mean over each agent's observed steps
        error = modes - target
        ade = (error.norm(dim=-1) * weights[:, None]).sum(-1)  # (B, K)
        best = ade.detach().argmin(dim=1)
        rows = torch.arange(len(best), device=best.device)
        agents = has_future.float()
        n_agents = agents.sum().clamp(min=1.0)
        regression = self._regression(error, log_scale, rows, best, weights, agents, n_agents)
        if self.hparams.top_mode_weight > 0:
            # The most probable mode is what ADE/FDE score: pull it toward the truth too.
            top = logits.detach().argmax(dim=1)
            regression = regression + self.hparams.top_mode_weight * self._regression(
                error, log_scale, rows, top, weights, agents, n_agents)
        per_agent = nn.functional.cross_entropy(logits, best, reduction="none")
        classification = (per_agent * agents).sum() / n_agents
        loss = regression + self.hparams.classification_weight * classification
        return {"loss": loss, "regression": regression.detach(), "classification": classification.detach(),
                "minADE_k": ((ade.detach().min(dim=1).values * agents).sum() / n_agents),
                "modes": _rotate(modes.detach(), rotation, inverse=True), "logits": logits.detach()}

    def _regression(self, error: Tensor, log_scale: Tensor | None, rows: Tensor, mode: Tensor, weights: Tensor,
                    agents: Tensor, n_agents: Tensor) -> Tensor:
        """Mean over agents of the regression loss of one mode per agent (Laplace NLL or smooth L1)."""
        chosen = error[rows, mode]  # (B, F, 2)
        if log_scale is None:
            per_step = nn.functional.smooth_l1_loss(chosen, torch.zeros_like(chosen), reduction="none").sum(-1)
        else:
            scale_log = log_scale[rows, mode]
            per_step = (chosen.abs() * torch.exp(-scale_log) + scale_log).sum(-1) + 2 * math.log(2.0)
        return ((per_step * weights).sum(-1) * agents).sum() / n_agents

    def _decode(self, history: Tensor, history_mask: Tensor, neighbours: Tensor,
                neighbours_mask: Tensor) -> tuple[Tensor, Tensor, Tensor | None, Tensor]:
        """Modes (B, K, F, 2) in the turned frame, logits (B, K), log-scales or None, rotation (B, 2) cos, sin."""
        batch, steps = history.shape[:2]
        if steps != self.history_steps or history.shape[-1] != 4:
            raise BadInput(f"history must be (B, {self.history_steps}, 4) (model.history_steps="
                           f"{self.history_steps}), got {tuple(history.shape)}: set model.history_steps to the "
                           f"dataset's sampling.history_steps")
        history = history.float()
        neighbours = neighbours.float()
        h_mask = history_mask.to(history.dtype)
        n_mask = neighbours_mask.to(history.dtype)
        rotation = self._rotation(history)
        history = _rotate(history.reshape(batch, steps, 2, 2), rotation[:, None]).reshape(batch, steps, 4)
        neighbours = _rotate(neighbours.reshape(*neighbours.shape[:3], 2, 2),
                             rotation[:, None, None]).reshape(neighbours.shape)
        history = history * h_mask[..., None]
        neighbours = neighbours * n_mask[..., None]

        own = self.history_encoder(torch.cat([history, h_mask[..., None]], -1).flatten(1))
        both = n_mask * h_mask[:, None, :]  # steps where the neighbour and the agent are both seen
        offset = (neighbours[..., :2] - history[:, None, :, :2]) * both[..., None]
        offset = offset.clamp(-NEIGHBOUR_RANGE_M, NEIGHBOUR_RANGE_M)
        per_neighbour = torch.cat([neighbours.clamp(-NEIGHBOUR_RANGE_M, NEIGHBOUR_RANGE_M), offset,
                                   n_mask[..., None]], -1).flatten(2)
        encoded = self.neighbour_encoder(per_neighbour)  # (B, A, D)
        present = neighbours_mask.any(-1)  # (B, A)
        # ReLU outputs are >= 0, so zeroing absent neighbours leaves the max of the present ones (or 0).
        pooled = (encoded * present[..., None].to(encoded.dtype)).amax(1) if encoded.shape[1] else \
            encoded.new_zeros(batch, encoded.shape[-1])

        out = self.decoder(torch.cat([own, pooled], -1)).view(batch, self.num_modes, -1)
        f2 = self.horizon_steps * 2
        residual = out[..., :f2].view(batch, self.num_modes, self.horizon_steps, 2)
        logits = out[..., f2]
        log_scale = None
        if self.hparams.regression_loss == "laplace":
            log_scale = out[..., f2 + 1:].view(batch, self.num_modes, self.horizon_steps, 2)
            log_scale = log_scale.clamp(*LOG_SCALE_RANGE)
        # Constant velocity in the turned frame: t0 plus k times the last displacement.
        k = torch.arange(1, self.horizon_steps + 1, dtype=history.dtype, device=history.device)
        baseline = history[:, -1, None, :2] + k[None, :, None] * history[:, -1, None, 2:]
        return baseline[:, None] + residual, logits, log_scale, rotation

    def _rotation(self, history: Tensor) -> Tensor:
        """(B, 2) cos, sin of the angle the inputs are turned by (module docstring, step 1)."""
        batch = history.shape[0]
        if self.hparams.heading == "given":
            return torch.cat([history.new_ones(batch, 1), history.new_zeros(batch, 1)], -1)
        last = history[:, -1, 2:]
        norm = last.norm(dim=-1, keepdim=True)
        moving = norm >= STATIONARY_DISPLACEMENT_M
        unit = last / norm.clamp(min=1e-9)
        standing = torch.cat([torch.ones_like(norm), torch.zeros_like(norm)], -1)
        return torch.where(moving, unit, standing)


def _rotate(xy: Tensor, rotation: Tensor, inverse: bool = False) -> Tensor:
    """Turn (..., 2) vectors by minus the angle of `rotation` (cos, sin), or by plus with inverse=True.

    `rotation` broadcasts from the left: (B, 2) against (B, ..., 2) after views that add the middle axes.
    """
    while rotation.dim() < xy.dim():
        rotation = rotation.unsqueeze(-2)
    c, s = rotation[..., 0], rotation[..., 1]
    x, y = xy[..., 0], xy[..., 1]
    if inverse:
        return torch.stack([c * x - s * y, s * x + c * y], -1)
    return torch.stack([c * x + s * y, c * y - s * x], -1)


def _numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def _steps(history_steps: int | None, horizon_steps: int | None,
           sampling: Mapping[str, Any] | None) -> tuple[int, int]:
    """History and horizon steps: given, or the dataset's sampling (the training app passes it); both must agree."""
    resolved = []
    for key, value in (("history_steps", history_steps), ("horizon_steps", horizon_steps)):
        from_sampling = None if sampling is None else sampling.get(key)
        if value is not None and from_sampling is not None and int(value) != int(from_sampling):
            raise BadInput(f"model.{key}={value} but the dataset's sampling.{key} is {from_sampling}: drop the "
                           f"model's value (it follows the dataset) or train on a matching dataset")
        chosen = value if value is not None else from_sampling
        if isinstance(chosen, bool) or not isinstance(chosen, int) or chosen < 1:
            raise BadInput(f"model.{key}={chosen!r} must be a whole number >= 1 (or come from the dataset's sampling)")
        resolved.append(int(chosen))
    return resolved[0], resolved[1]


def _optimizer_settings(optimizer: Mapping[str, Any] | None) -> dict[str, Any]:
    """DEFAULT_OPTIMIZER updated with `optimizer` (the training app's OptimizerConfig fields, or fewer).

    Raises:
        BadInput: an unknown key, optimizer or schedule, or a non-positive learning rate.
    """
    given = dict(optimizer or {})
    unknown = sorted(set(given) - set(DEFAULT_OPTIMIZER))
    if unknown:
        raise BadInput(f"unknown optimizer settings {unknown}: the predictor takes {sorted(DEFAULT_OPTIMIZER)}")
    settings = {**DEFAULT_OPTIMIZER, **given}
    settings["name"] = str(settings["name"]).lower()
    if settings["name"] not in ("adamw", "adam"):
        raise BadInput(f"optimizer.name={settings['name']!r}: choose adamw or adam")
    if settings["scheduler"] not in SCHEDULERS:
        raise BadInput(f"optimizer.scheduler={settings['scheduler']!r}: choose one of {', '.join(SCHEDULERS)}")
    for key in ("lr", "pct_start", "div_factor", "final_div_factor"):
        if not (isinstance(settings[key], int | float) and math.isfinite(settings[key]) and settings[key] > 0):
            raise BadInput(f"optimizer.{key}={settings[key]!r} must be a positive number")
        settings[key] = float(settings[key])
    if not (isinstance(settings["weight_decay"], int | float) and settings["weight_decay"] >= 0):
        raise BadInput(f"optimizer.weight_decay={settings['weight_decay']!r} must be a number >= 0")
    settings["weight_decay"] = float(settings["weight_decay"])
    settings["betas"] = [float(b) for b in settings["betas"]]
    return settings

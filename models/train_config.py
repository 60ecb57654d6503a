"""Schemas of `andon train`: the primary config and the trainer, optimizer and detector groups.

The dataclasses are Hydra schemas (registered once through `andon.hydra_app.add_schemas`), so a typo
in any key fails at composition with a ConfigKeyError. They are not frozen: Hydra merges the YAML
files of `configs/` into them. The entry point converts the composed config with
`OmegaConf.to_object` and passes the typed objects inward (`train_config_from`).

Stored names (each group's YAML files list their schema first in `defaults`):
    train_schema            primary config `configs/train.yaml`
    trainer/base_trainer    `configs/trainer/{cpu,gpu}.yaml`
    optimizer/base_optimizer `configs/optimizer/{adam,adamw}.yaml`
    model/base_detector     `configs/model/detector*.yaml`

The dataset is a *reference* (`dataset_ref`: a version id, a unique id prefix, or a name meaning its
latest accepted version), resolved with `andon.datasets.versions.load_version`. It cannot be the key
`dataset`: `configs/dataset/` is the config group of `andon dataset build`, and Hydra reads any
`dataset=VALUE` override as a choice in that group. `andon train dataset=NAME` is rewritten to
`dataset_ref=NAME` by the CLI (`andon.models.train_cli.translate_overrides`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from andon.errors import BadInput
from andon.hydra_app import add_schemas

PRIMARY_SCHEMA_NAME = "train_schema"
ACCELERATORS = ("cpu", "gpu", "cuda", "auto")
OPTIMIZERS = ("adam", "adamw")
SCHEDULERS = ("onecycle", "cosine", "none")


@dataclass
class TrainerConfig:
    """Lightning Trainer settings plus the loader's (batch size, workers).

    `limit_*_batches` take a fraction of the split (float) or a number of batches (int), as Lightning
    does. `deterministic` makes Lightning use deterministic algorithms: on CPU the same seed then gives
    the same metrics; some CUDA kernels have no deterministic form, so the gpu config turns it off.
    `num_threads` sets torch's intra-op CPU threads for the run (None: torch's default, all cores);
    on a small or shared machine, where the loader workers need cores too, fewer threads train
    faster (on 2 busy cores, 1 thread ran 4x faster than 2).
    """

    accelerator: str = "cpu"
    devices: Any = 1
    precision: str = "32-true"
    max_epochs: int = 10
    max_steps: int = -1
    limit_train_batches: Any = 1.0
    limit_val_batches: Any = 1.0
    fast_dev_run: bool = False
    deterministic: bool = True
    log_every_n_steps: int = 10
    check_val_every_n_epoch: int = 1
    gradient_clip_val: float | None = 10.0
    enable_progress_bar: bool = True
    num_workers: int = 1
    batch_size: int = 4
    num_threads: int | None = None


@dataclass
class OptimizerConfig:
    """The optimizer and its learning-rate schedule (per step).

    `onecycle` warms up over `pct_start` of the steps to `lr` and anneals to lr / (div_factor *
    final_div_factor) (CenterPoint's schedule); `cosine` anneals from `lr` to 0; `none` keeps `lr`.
    """

    name: str = "adam"
    lr: float = 2e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.99])
    scheduler: str = "onecycle"
    pct_start: float = 0.3
    div_factor: float = 10.0
    final_div_factor: float = 100.0


@dataclass
class DetectorConfig:
    """The pillar detector's architecture, targets, decoding and loss (andon.models.detector).

    Sizes: `pfn_channels` per pillar; backbone blocks each start with a 3x3 convolution of stride
    `backbone_strides[i]` to `backbone_channels[i]`, then `backbone_layers[i]` 3x3 convolutions;
    every block's output is resampled to `out_stride` (BEV pillars per head cell) with
    `upsample_channels` channels and concatenated; a 3x3 convolution to `head_channels` feeds the
    heads. Targets: Gaussian radius from CenterNet's formula at `gaussian_overlap`, at least
    `min_radius` cells. Decoding keeps the `max_objects` best peaks per frame scoring at least
    `score_threshold`, then suppresses peaks of the same class within `nms_radius_m` (per class:
    vehicle, pedestrian, cyclist) of a higher-scoring one.
    """

    _target_: str = "andon.models.detector.PillarDetector"
    name: str = "detector"
    pfn_channels: int = 32
    backbone_channels: list[int] = field(default_factory=lambda: [32, 64])
    backbone_layers: list[int] = field(default_factory=lambda: [1, 2])
    backbone_strides: list[int] = field(default_factory=lambda: [2, 2])
    upsample_channels: int = 32
    out_stride: int = 2
    head_channels: int = 32
    gaussian_overlap: float = 0.1
    min_radius: int = 2
    max_radius: int = 8
    max_objects: int = 100
    score_threshold: float = 0.1
    nms_radius_m: list[float] = field(default_factory=lambda: [2.0, 0.5, 1.0])
    heatmap_weight: float = 1.0
    regression_weight: float = 0.25
    velocity_weight: float = 0.2


@dataclass
class TrainConfig:
    """The primary config of `andon train`.

    `model` is a node of the `model` group (its own schema, e.g. DetectorConfig, with `_target_` and
    `name`); `upstream` names upstream model versions the model was trained from (the predictor's
    `{detector: VERSION}`), recorded as tags. `baseline_validation` validates the untrained model
    once before training (its metrics are reported as `untrained/...`). `register=false` trains and
    logs without registering a version.
    """

    model: Any = MISSING
    trainer: TrainerConfig = MISSING
    optimizer: OptimizerConfig = MISSING
    dataset_ref: str = "detection_synthetic"
    workspace: str = "andon-workspace"
    seed: int = 0
    json: bool = False
    register: bool = True
    baseline_validation: bool = False
    upstream: dict[str, str] = field(default_factory=dict)


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name=PRIMARY_SCHEMA_NAME, node=TrainConfig)
    store.store(group="trainer", name="base_trainer", node=TrainerConfig)
    store.store(group="optimizer", name="base_optimizer", node=OptimizerConfig)
    store.store(group="model", name="base_detector", node=DetectorConfig)


add_schemas(_register)


def train_config_from(cfg: TrainConfig | DictConfig | dict[str, Any]) -> TrainConfig:
    """A typed, validated TrainConfig from a composed config (or one already typed).

    Raises:
        BadInput: naming the bad key or value and what to do.
    """
    if not isinstance(cfg, TrainConfig):
        try:
            node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
            merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), node)
            typed = OmegaConf.to_object(merged)
        except OmegaConfBaseException as exc:
            raise BadInput(f"train config: {exc}".replace("\n", "; ")) from exc
        if not isinstance(typed, TrainConfig):
            raise BadInput(f"the train config must be a mapping of TrainConfig fields, got {type(typed).__name__}")
        cfg = typed
    validate_train_config(cfg)
    return cfg


def model_dict(model: Any) -> dict[str, Any]:
    """The model node as a plain dict (it is a schema dataclass, a DictConfig or a dict)."""
    if isinstance(model, DictConfig):
        return OmegaConf.to_container(model, resolve=True)  # type: ignore[return-value]
    if isinstance(model, dict):
        return dict(model)
    try:
        return OmegaConf.to_container(OmegaConf.structured(model), resolve=True)  # type: ignore[return-value]
    except (OmegaConfBaseException, ValueError) as exc:
        raise BadInput(f"the model config must be a mapping with _target_ and name, got {model!r}") from exc


def validate_train_config(cfg: TrainConfig) -> None:
    """Refuse values that cannot train, naming them and the fix."""
    model = model_dict(cfg.model)
    for key in ("_target_", "name"):
        if not isinstance(model.get(key), str) or not model[key]:
            raise BadInput(f"model.{key} is missing: choose a model config (model=detector) whose file sets it")
    name = model["name"]
    if any(ch in name for ch in "/\\ \t@") or name.startswith("."):
        raise BadInput(f"model.name {name!r} must be one word without spaces, slashes or '@'")
    if not cfg.dataset_ref or not str(cfg.dataset_ref).strip():
        raise BadInput("dataset_ref is empty: give a dataset name, id or id prefix (dataset=detection_synthetic)")
    _validate_trainer(cfg.trainer)
    _validate_optimizer(cfg.optimizer)
    for key, value in cfg.upstream.items():
        if not isinstance(value, str) or not value:
            raise BadInput(f"upstream.{key} {value!r} must be a model version (e.g. upstream.detector=3)")


def _validate_trainer(trainer: TrainerConfig) -> None:
    if trainer.accelerator not in ACCELERATORS:
        raise BadInput(f"trainer.accelerator {trainer.accelerator!r}: choose one of {', '.join(ACCELERATORS)}")
    for key in ("max_epochs", "batch_size", "log_every_n_steps", "check_val_every_n_epoch"):
        value = getattr(trainer, key)
        if value < 1:
            raise BadInput(f"trainer.{key} {value} must be >= 1")
    if trainer.num_threads is not None and trainer.num_threads < 1:
        raise BadInput(f"trainer.num_threads {trainer.num_threads} must be >= 1, or null for torch's default")
    if trainer.num_workers < 0:
        raise BadInput(f"trainer.num_workers {trainer.num_workers} must be >= 0 (0 loads in the training process)")
    for key in ("limit_train_batches", "limit_val_batches"):
        value = getattr(trainer, key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (
                isinstance(value, float) and value > 1.0):
            raise BadInput(f"trainer.{key} {value!r} must be a fraction in [0, 1] or a whole number of batches")
    if trainer.gradient_clip_val is not None and not trainer.gradient_clip_val > 0:
        raise BadInput(f"trainer.gradient_clip_val {trainer.gradient_clip_val} must be > 0, or null for no clipping")


def _validate_optimizer(optimizer: OptimizerConfig) -> None:
    if optimizer.name not in OPTIMIZERS:
        raise BadInput(f"optimizer.name {optimizer.name!r}: choose one of {', '.join(OPTIMIZERS)}")
    if optimizer.scheduler not in SCHEDULERS:
        raise BadInput(f"optimizer.scheduler {optimizer.scheduler!r}: choose one of {', '.join(SCHEDULERS)}")
    if not (math.isfinite(optimizer.lr) and optimizer.lr > 0):
        raise BadInput(f"optimizer.lr {optimizer.lr} must be a positive learning rate")
    if not (math.isfinite(optimizer.weight_decay) and optimizer.weight_decay >= 0):
        raise BadInput(f"optimizer.weight_decay {optimizer.weight_decay} must be >= 0")
    if len(optimizer.betas) != 2 or not all(0.0 <= b < 1.0 for b in optimizer.betas):
        raise BadInput(f"optimizer.betas {list(optimizer.betas)} must be two numbers in [0, 1)")
    if not 0.0 < optimizer.pct_start < 1.0:
        raise BadInput(f"optimizer.pct_start {optimizer.pct_start} must be in (0, 1)")

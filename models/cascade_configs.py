"""Hydra schemas of the `model` group for the predictor, tracker and planner.

Stored as `model/base_predictor`, `model/base_tracker` and `model/base_planner` (each YAML file of
configs/model/ lists its schema first in `defaults`), so a typo in any key fails at composition. Each
has `_target_` (what `hydra.utils.instantiate` builds) and `name` (the registered model's name; the
training app and the DAG take it off before building). Not frozen: Hydra merges YAML into them.

The tracker's and planner's fields are their config dataclasses' (andon.models.tracker.TrackerConfig,
andon.models.planner.PlannerConfig); `make_tracker` / `make_planner` build them from the fields.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field, make_dataclass
from typing import Any

from andon.hydra_app import add_schemas
from andon.models.planner import PlannerConfig
from andon.models.prediction_metrics import MISS_THRESHOLD_M
from andon.models.tracker import TrackerConfig


@dataclass
class PredictorConfig:
    """andon.models.predictor.TrajectoryPredictor's arguments (history and horizon come from the dataset)."""

    _target_: str = "andon.models.predictor.TrajectoryPredictor"
    name: str = "predictor"
    num_modes: int = 6
    hidden_size: int = 64
    neighbour_size: int = 32
    dropout: float = 0.0
    regression_loss: str = "laplace"
    classification_weight: float = 1.0
    top_mode_weight: float = 0.0
    heading: str = "history"
    augment_flip: bool = True
    augment_scale: float = 0.0
    miss_threshold_m: float = MISS_THRESHOLD_M
    history_steps: Any = None
    horizon_steps: Any = None


def _with_target(config: type, target: str, name: str) -> type:
    """A schema: `_target_`, `name`, then the config dataclass's fields with their defaults."""
    hints = typing.get_type_hints(config)  # the real types (the modules use postponed annotations)
    fields = [("_target_", str, field(default=target)), ("name", str, field(default=name))]
    fields += [(f.name, hints[f.name], field(default=f.default)) for f in dataclasses.fields(config)]
    return make_dataclass(f"{config.__name__}Schema", fields)


TrackerSchema = _with_target(TrackerConfig, "andon.models.tracker.make_tracker", "tracker")
PlannerSchema = _with_target(PlannerConfig, "andon.models.planner.make_planner", "planner")


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="model", name="base_predictor", node=PredictorConfig)
    store.store(group="model", name="base_tracker", node=TrackerSchema)
    store.store(group="model", name="base_planner", node=PlannerSchema)


add_schemas(_register)

"""Schema of `andon sim run` (a Hydra app): the primary config `configs/sim.yaml`, stored as `sim_schema`.

The worker group and the Ray settings are the DAG's (configs/worker/{sequential,ray}.yaml, andon.dag.run_config);
`replay` is andon.simulation.replay.ReplayConfig, so `replay.mode=open_loop` or a typo fails at composition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from andon.dag.run_config import RayConfig
from andon.hydra_app import add_schemas
from andon.simulation.replay import ReplayConfig

PRIMARY_SCHEMA_NAME = "sim_schema"


@dataclass
class SimRunConfig:
    """The primary config of `andon sim run`.

    Attributes:
        models: registry refs NAME@ALIAS or NAME@VERSION (detector, predictor, tracker, planner); the roles
            not given run stand-ins (oracle detector, constant velocity, default tracker and planner).
        scenarios: a catalog query (`andon scenarios search` syntax); empty: every active scenario.
        max_scenarios: replay at most this many of the matches (the first by scenario id); null: all.
        replay: how each scenario is replayed (mode, reactivity, disengagement thresholds, seed).
        device: where the models run (cpu, cuda).
        allow_stand_ins: run stand-ins for the roles `models` does not give (false: that is bad input).
        task_cpus, task_gpus: what one replay task asks the worker (Ray) for.
        confidence: of the Poisson interval on km per disengagement.
        rerun: replay again even when a result of the same inputs is stored.
        progress: a progress bar on stderr.
    """

    worker: Any = MISSING
    ray: RayConfig = field(default_factory=RayConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    models: list[str] = field(default_factory=list)
    scenarios: str = ""
    max_scenarios: int | None = None
    device: str = "cpu"
    allow_stand_ins: bool = True
    task_cpus: float = 1.0
    task_gpus: float = 0.0
    confidence: float = 0.95
    rerun: bool = False
    progress: bool = True
    workspace: str = "andon-workspace"
    json: bool = False


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=PRIMARY_SCHEMA_NAME, node=SimRunConfig)


add_schemas(_register)

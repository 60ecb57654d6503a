"""Schemas of `andon dag run` (a Hydra app): the primary config, the Ray settings and the worker group.

Stored names (each YAML file lists its schema first in `defaults`):
    dag_run_schema             primary config `configs/dag_run.yaml`
    dag/base_dag               `configs/dag/*.yaml` (andon.dag.spec.DagSpec)
    worker/sequential_schema   `configs/worker/sequential.yaml`
    worker/ray_schema          `configs/worker/ray.yaml`
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

import andon.dag.spec  # noqa: F401  (registers dag/base_dag)
from andon.dag.spec import DagSpec
from andon.hydra_app import add_schemas

PRIMARY_SCHEMA_NAME = "dag_run_schema"


@dataclass
class RayConfig:
    """Where Ray runs: `address` null starts a local Ray with `num_cpus` (null: every CPU) and shuts it
    down after; `auto` or `ray://host:10001` joins a running cluster."""

    address: str | None = None
    num_cpus: int | None = None
    num_gpus: int | None = None
    include_dashboard: bool = False


@dataclass
class SequentialWorkerConfig:
    _target_: str = "andon.dag.workers.SequentialWorker"


@dataclass
class RayWorkerConfig:
    _target_: str = "andon.dag.workers.RayWorker"
    address: str | None = None
    num_cpus: int | None = None
    num_gpus: int | None = None
    include_dashboard: bool = False


@dataclass
class DagRunConfig:
    """The primary config of `andon dag run`: `nodes` empty runs every stale node."""

    dag: DagSpec = MISSING
    worker: Any = MISSING
    ray: RayConfig = field(default_factory=RayConfig)
    nodes: list[str] = field(default_factory=list)
    workspace: str = "andon-workspace"
    json: bool = False


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name=PRIMARY_SCHEMA_NAME, node=DagRunConfig)
    store.store(group="worker", name="sequential_schema", node=SequentialWorkerConfig)
    store.store(group="worker", name="ray_schema", node=RayWorkerConfig)


add_schemas(_register)

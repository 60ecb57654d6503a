"""Schema of `andon suite run` (a Hydra app): the primary config `configs/suite_run.yaml`, stored as
`suite_run_schema`.

The worker group and the Ray settings are the DAG's (configs/worker/{sequential,ray}.yaml,
andon.dag.run_config); `replay` is andon.simulation.replay.ReplayConfig (its `mode` is set per check).
The suite itself is named by `suite_ref` (a name of configs/suite/ or a path) and loaded by
andon.test_suites.schema.load_suite, which checks it against its own schema: `configs/suite/` is a
folder of suite files, not a config group of this app (the CLI turns `suite=NAME` into `suite_ref=NAME`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from andon.dag.run_config import RayConfig
from andon.hydra_app import add_schemas
from andon.simulation.replay import ReplayConfig

PRIMARY_SCHEMA_NAME = "suite_run_schema"


@dataclass
class SuiteRunConfig:
    """The primary config of `andon suite run`.

    Attributes:
        suite_ref: the suite: a name (configs/suite/NAME.yaml) or the path of a suite file.
        models: the candidate's registry refs NAME@ALIAS or NAME@VERSION; roles not given run stand-ins
            (oracle detector, constant velocity, default tracker and planner) when allow_stand_ins.
        baseline: the baseline's refs (e.g. [detector@production]); null: no baseline; []: the stand-ins.
        replay: how scenarios are replayed (the mode is each check's).
        device: where the models run (cpu, cuda).
        allow_stand_ins: run stand-ins for the roles not given (false: that is bad input).
        task_cpus, task_gpus: what one replay task asks the worker (Ray) for.
        rerun: replay again even when a result of the same inputs is stored.
        pictures: draw a bird's-eye picture of each failed per-scenario check.
        progress: progress bars on stderr.
    """

    worker: Any = MISSING
    ray: RayConfig = field(default_factory=RayConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    suite_ref: str = MISSING
    models: list[str] = field(default_factory=list)
    baseline: list[str] | None = None
    device: str = "cpu"
    allow_stand_ins: bool = True
    task_cpus: float = 1.0
    task_gpus: float = 0.0
    rerun: bool = False
    pictures: bool = True
    progress: bool = True
    workspace: str = "andon-workspace"
    json: bool = False


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=PRIMARY_SCHEMA_NAME, node=SuiteRunConfig)


add_schemas(_register)

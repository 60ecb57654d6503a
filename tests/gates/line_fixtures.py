"""A tiny real line for the line tests: a synthetic fleet, an accepted detection dataset, a two-node DAG
(a tiny detector trained for real, the tracker registered as configured) and gate sets written as
config files.

The config folder (`LineSetup.config_dir`) holds `dag/line.yaml` and `gate/<name>.yaml` for each gate
set of `GATE_SETS`, so both the Python API (`andon.gates.spec.load_gate_set(path)`) and the Hydra app
(`andon gate run --config-dir DIR gate=NAME dag=line`) read them.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from andon.workspace import Workspace

DAG_NAME = "line"
DATASET = "det_line"
CANDIDATE = "tracker@candidate"  # the stack: detector and tracker
# Gates the tiny stack passes whatever it learnt: every dataset accepted, every node fresh, the closed
# loop replays without error (floors far below what any replay drives).
PASSING_GATES: list[dict[str, Any]] = [
    {"name": "data", "kind": "data"},
    {"name": "provenance", "kind": "provenance", "dag": DAG_NAME},
    {"name": "km_per_disengagement", "kind": "system_metric", "metric": "km_per_disengagement", "min": 0.001},
    {"name": "collisions", "kind": "system_metric", "metric": "collisions", "max": 1000},
]
# detection_core asks 80 % vehicle recall per drive: a detector trained for two batches fails it.
CORE_SUITE = {"name": "suites", "kind": "suite", "suites": ["detection_core"]}
GATE_SETS: dict[str, list[dict[str, Any]]] = {
    "line_pass": PASSING_GATES,
    "line_fail": [*PASSING_GATES, CORE_SUITE],
    "line_advisory": [*PASSING_GATES, {**CORE_SUITE, "severity": "advisory"}],
    "line_unknown_suite": [*PASSING_GATES, {"name": "missing_suite", "kind": "suite", "suites": ["no_such_suite"]}],
}


@dataclass
class LineSetup:
    """The tiny line's workspace and config folder."""

    workspace: Workspace
    config_dir: Path

    @property
    def dag_file(self) -> Path:
        return self.config_dir / "dag" / f"{DAG_NAME}.yaml"

    def gate_file(self, name: str) -> Path:
        return self.config_dir / "gate" / f"{name}.yaml"


@dataclass
class CountingWorker:
    """A factory of real sequential workers that counts how often a replay needed one."""

    made: int = 0

    def __call__(self) -> Any:
        from andon.dag.workers import SequentialWorker

        self.made += 1
        return SequentialWorker()


def gate_set_doc(name: str, gates: Sequence[Mapping[str, Any]], **more: Any) -> dict[str, Any]:
    """A gate set config file's document (200 resamples keep the bootstrap quick)."""
    return {"defaults": ["base_gate_set", "_self_"], "name": name, "bootstrap": {"resamples": 200, "seed": 0},
            **more, "gates": [dict(g) for g in gates]}


def write_gate_set(config_dir: Path, name: str, gates: Sequence[Mapping[str, Any]], **more: Any) -> Path:
    path = config_dir / "gate" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(gate_set_doc(name, gates, **more), sort_keys=False))
    return path


def tiny_detector_overrides() -> list[str]:
    """The detector node's overrides: the tests' tiny pillar detector, two training batches."""
    from tests.models.train_helpers import TINY_MODEL, TINY_TRAINER

    return [o for o in TINY_MODEL if not o.startswith("model=")] + TINY_TRAINER


def line_dag() -> dict[str, Any]:
    return {"nodes": {
        "detector": {"kind": "train", "model": "detector_small", "datasets": [DATASET],
                     "overrides": tiny_detector_overrides(), "resources": {"num_cpus": 1}},
        "tracker": {"kind": "fixed", "model": "tracker", "upstream": ["detector"],
                    "consumes": {"detector": "detections"}, "resources": {"num_cpus": 1}},
    }}


def copy_template(template: Path, dest: Path) -> Workspace:
    """A copy of the session's template workspace with its DVC remote pointed at the copy's own."""
    from andon.workspace import run_tool

    shutil.copytree(template, dest, symlinks=True)
    run_tool(["dvc", "remote", "modify", "local", "url", str(dest / "dvc-remote")], dest, "dvc remote modify")
    return Workspace.open(dest)


def build_line(workspace: Workspace, config_dir: Path, n_logs: int = 3, duration_s: float = 4.0) -> LineSetup:
    """Fleet, dataset, config folder and a trained DAG in `workspace` (about 30 s on 2 CPUs)."""
    from tests.dag.helpers import run_dag, write_dag
    from tests.models.train_helpers import fleet_version, synthesize

    log_ids = synthesize(workspace, n_logs=n_logs, duration_s=duration_s)
    fleet_version(workspace, log_ids, name=DATASET)
    (config_dir / "dag").mkdir(parents=True, exist_ok=True)
    write_dag(config_dir, DAG_NAME, line_dag())
    for name, gates in GATE_SETS.items():
        write_gate_set(config_dir, name, gates)
    summary = run_dag(workspace, config_dir, DAG_NAME)
    if not summary.ok:
        raise RuntimeError(f"the tiny line's DAG did not train: {summary.to_dict()}")
    return LineSetup(workspace, config_dir)


@pytest.fixture(scope="module")
def line(_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory) -> LineSetup:
    """The tiny line, built once per test module (tests add reports, never change its models)."""
    root = tmp_path_factory.mktemp("line")
    return build_line(copy_template(_workspace_template, root / "ws"), root / "cfg")


def judge_with(setup: LineSetup, gate_set: str, make_worker: Callable[[], Any] | None = None,
               **more: Any) -> Any:
    """`andon.gates.line.judge` of the tiny stack with a gate set of the config folder (statuses of the DAG)."""
    from andon.dag.context import open_dag
    from andon.dag.status import dag_status
    from andon.dag.workers import SequentialWorker
    from andon.gates.line import judge
    from andon.gates.spec import load_gate_set

    with open_dag(DAG_NAME, str(setup.workspace.root), [str(setup.config_dir)]) as ctx:
        dag = ctx.dag
        statuses = dag_status(ctx.dag, ctx.fingerprinter, ctx.lineage)
    return judge(setup.workspace, load_gate_set(str(setup.gate_file(gate_set))), dag, more.pop("candidate", CANDIDATE),
                 make_worker=make_worker or SequentialWorker, statuses=statuses,
                 config_dirs=[str(setup.config_dir)], **more)

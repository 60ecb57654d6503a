"""Tiny but real node runners for the DAG tests: they log an artifact and register a version, for real.

Behaviour per node comes from a control file in the workspace (`tmp/dag-test-control.json`), because
Ray workers do not see environment variables set after Ray started:
    {"sleep_s": {"node": seconds}, "fail": ["node", ...]}
Each runner writes `tmp/dag-test-started-<node>` when it starts (the resume test waits for it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from andon.dag.runners import NODE_ARTIFACT, NodeResult, NodeTask, node_run

CONTROL_FILE = "dag-test-control.json"


def control(workspace: str) -> dict[str, Any]:
    path = Path(workspace) / "tmp" / CONTROL_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def set_control(workspace: Any, **doc: Any) -> None:
    root = Path(getattr(workspace, "root", workspace))
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp" / CONTROL_FILE).write_text(json.dumps(doc))


def register_artifact(task: NodeTask) -> NodeResult:
    """Write a 'model' (the resolved config and the upstream versions) to the node's run, then register it."""
    from andon.models.registry import Registry
    from andon.workspace import Workspace

    root = Path(task.workspace)
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp" / f"dag-test-started-{task.node.name}").write_text(str(time.time()))
    settings = control(task.workspace)
    if task.node.name in settings.get("fail", ()):
        raise RuntimeError(f"{task.node.name} failed on purpose")
    time.sleep(float(settings.get("sleep_s", {}).get(task.node.name, 0.0)))
    registry = Registry(Workspace.open(task.workspace))
    run_id = node_run(task)
    registry.client.log_dict(run_id, {"config": dict(task.fingerprint.config or {}),
                                      "upstream": dict(task.upstream_versions)}, f"{NODE_ARTIFACT}/weights.json")
    version = registry.register(task.node.name, run_id, NODE_ARTIFACT,
                                {**task.version_tags(), "test.runner": "register_artifact"})
    return NodeResult(task.node.name, version, run_id, detail="tiny model registered",
                      metrics=(("loss", 0.5),))


def build_output(task: NodeTask) -> NodeResult:
    """An autolabel link without a detector: build the node's output dataset (for real) from its config,
    then register the link with the dataset id, as andon.dag.runners.run_autolabel does."""
    from andon.dag.runners import TAG_OUTPUT_DATASET
    from andon.datasets.build import build_dataset
    from andon.datasets.spec import spec_from_config
    from andon.models.registry import Registry
    from andon.workspace import Workspace

    workspace = Workspace.open(task.workspace)
    spec = spec_from_config(dict(task.fingerprint.config or {})["dataset"])
    doc = build_dataset(workspace, spec, progress=False)
    if doc["status"] != "accepted":
        raise RuntimeError(f"{spec.name} rejected: {doc['reasons']}")
    run_id = node_run(task)
    registry = Registry(workspace)
    registry.client.log_dict(run_id, {"dataset_id": doc["dataset_id"], "upstream": dict(task.upstream_versions)},
                             f"{NODE_ARTIFACT}/link.json")
    version = registry.register(task.node.name, run_id, NODE_ARTIFACT,
                                {**task.version_tags(), TAG_OUTPUT_DATASET: doc["dataset_id"]})
    return NodeResult(task.node.name, version, run_id, detail=f"dataset {doc['dataset_id']}")

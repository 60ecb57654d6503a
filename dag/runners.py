"""Node runners: what running one node means, per kind, and the wrapper every run goes through.

A runner is a function `(NodeTask) -> NodeResult` named `module:function` (a node's `runner`, else
the default of its kind). It must register a version of the node's model only after the version's
artifacts are fully logged, and return that version. `execute_node` (what a worker runs) loads the
runner, keeps stdout for the JSON document, and then tags the version with the fingerprint's
components, the fingerprint tag last: a version without it is unfinished and the node stays stale.

Defaults:
    train      `andon.models.train.run_training` on the node's train config, composed from
               configs/train.yaml + model=<model> + the node's overrides, with the dataset pinned
               to the fingerprinted version id and the upstream versions recorded.
    fixed      the resolved config logged to the node's MLflow run and registered as the version.
    autolabel  the upstream detector version and tracker run over the logs of the node's datasets
               (andon.models.autolabel), then the output dataset is built (andon.datasets.build); the
               version records the dataset id and the upstream versions.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from andon.dag.fingerprint import TAG_FINGERPRINT, TAG_UPSTREAM_VERSION, NodeFingerprint
from andon.dag.lineage import TAG_NODE_RUN, TAG_PIPELINE_RUN
from andon.dag.spec import Node
from andon.errors import BadInput, CheckFailed, InternalError

DEFAULT_RUNNERS: dict[str, str] = {
    "train": "andon.dag.runners:run_train",
    "fixed": "andon.dag.runners:run_fixed",
    "autolabel": "andon.dag.runners:run_autolabel",
}
NODE_ARTIFACT = "node"
DAG_EXPERIMENT = "andon/dag"
TAG_OUTPUT_DATASET = "dag.output_dataset"


@dataclass(frozen=True, slots=True)
class NodeTask:
    """Everything a runner needs, picklable (it travels to Ray workers).

    Attributes:
        workspace: the workspace root.
        node: the node.
        fingerprint: its fingerprint (components and resolved config).
        searchpath: the config search path its config composes from.
        fingerprint_ignore: top-level config keys not fingerprinted.
        upstream_versions: (node, version) it is made from: its upstream nodes, and through an
            autolabel link the models that made the link's dataset.
        upstream_configs: (node, resolved config) of those nodes (the tracker's settings).
        node_run_id: the node's MLflow run (nested under the pipeline run), None outside a pipeline.
        pipeline_run_id: the pipeline's MLflow run.
    """

    workspace: str
    node: Node
    fingerprint: NodeFingerprint
    searchpath: tuple[str, ...] = ()
    fingerprint_ignore: tuple[str, ...] = ()
    upstream_versions: tuple[tuple[str, str], ...] = ()
    upstream_configs: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    node_run_id: str | None = None
    pipeline_run_id: str | None = None

    def version_tags(self) -> dict[str, str]:
        """The tags of the version this run registers (the fingerprint tag included, set last)."""
        tags = self.fingerprint.tags()
        tags.update({TAG_UPSTREAM_VERSION + name: version for name, version in self.upstream_versions})
        if self.node_run_id:
            tags[TAG_NODE_RUN] = self.node_run_id
        if self.pipeline_run_id:
            tags[TAG_PIPELINE_RUN] = self.pipeline_run_id
        tags[TAG_FINGERPRINT] = self.fingerprint.fingerprint
        return tags

    def upstream_with_role(self, role: str) -> list[str]:
        return [u for u in self.node.upstream if self.node.role(u) == role]


@dataclass(frozen=True, slots=True)
class NodeResult:
    """What a node run produced.

    Attributes:
        node: the node.
        version: the registered version.
        run_id: the MLflow run the version's artifacts belong to.
        detail: one line for the summary.
        metrics: final metrics, if any.
        started_s, ended_s: wall-clock times of the run (seconds since the epoch).
        placement: where it ran: the Ray node id, or `host:pid` outside Ray.
    """

    node: str
    version: str
    run_id: str | None = None
    detail: str = ""
    metrics: tuple[tuple[str, float], ...] = ()
    started_s: float = 0.0
    ended_s: float = 0.0
    placement: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "version": self.version, "run_id": self.run_id, "detail": self.detail,
                "metrics": dict(self.metrics), "started_s": self.started_s, "ended_s": self.ended_s,
                "placement": self.placement}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> NodeResult:
        return cls(doc["node"], doc["version"], doc.get("run_id"), doc.get("detail", ""),
                   tuple(sorted((doc.get("metrics") or {}).items())), float(doc.get("started_s", 0.0)),
                   float(doc.get("ended_s", 0.0)), doc.get("placement", ""))


NodeRunner = Callable[[NodeTask], NodeResult]


def runner_path(node: Node) -> str:
    return node.runner or DEFAULT_RUNNERS[node.kind]


def load_runner(path: str) -> NodeRunner:
    """The function `module:function` (or `module.function`) names.

    Raises:
        BadInput: naming the runner when its module or function does not exist.
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise BadInput(f"runner {path!r}: no module {exc.name!r} (is it importable on the worker?)") from exc
    runner = getattr(module, attr, None)
    if not callable(runner):
        raise BadInput(f"runner {path!r}: {module_name} has no function {attr!r}")
    return runner


def placement() -> str:
    """The Ray node this process runs on, or host:pid outside Ray (never imports ray)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):
            return str(ray.get_runtime_context().get_node_id())
    return f"{socket.gethostname()}:{os.getpid()}"


def execute_node(task: NodeTask) -> NodeResult:
    """Run the node's runner and tag the version it registered (what a worker executes)."""
    from andon.dag.lineage import tag_version
    from andon.models.registry import Registry
    from andon.workspace import Workspace

    started = time.time()
    runner = load_runner(runner_path(task.node))
    # stdout carries only the JSON document of `andon dag run json=true`: training chatter goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        result = runner(task)
    if not isinstance(result, NodeResult) or result.node != task.node.name:
        raise InternalError(f"runner {runner_path(task.node)} returned {result!r}, not a NodeResult of "
                            f"node {task.node.name}")
    registry = Registry(Workspace.open(task.workspace))
    try:
        registry.client.get_model_version(task.node.name, result.version)
    except Exception as exc:
        raise InternalError(f"runner {runner_path(task.node)} returned version {result.version} of "
                            f"{task.node.name}, which the registry does not hold") from exc
    tag_version(registry, task.node.name, result.version, task.version_tags())
    if result.run_id and task.node_run_id and result.run_id != task.node_run_id:
        # The model's own run (e.g. the training run in andon/<model>) points back at its DAG node run.
        registry.client.set_tag(result.run_id, "andon.dag.node_run", task.node_run_id)
        if task.pipeline_run_id:
            registry.client.set_tag(result.run_id, "andon.dag.pipeline_run", task.pipeline_run_id)
    return replace(result, started_s=started, ended_s=time.time(), placement=placement())


def node_run(task: NodeTask) -> str:
    """The node's MLflow run (created in the DAG experiment when the task has none)."""
    if task.node_run_id:
        return task.node_run_id
    from andon.models.registry import Registry
    from andon.workspace import Workspace

    registry = Registry(Workspace.open(task.workspace))
    run = registry.client.create_run(registry.experiment_id(DAG_EXPERIMENT), run_name=task.node.name,
                                     tags={"andon.node": task.node.name})
    return run.info.run_id


# ----- the default runners ---------------------------------------------------------------------------
def run_fixed(task: NodeTask) -> NodeResult:
    """Register the node's resolved config as a version (a configured, untrained model)."""
    from andon.models.registry import Registry
    from andon.workspace import Workspace

    registry = Registry(Workspace.open(task.workspace))
    run_id = node_run(task)
    registry.client.log_dict(run_id, dict(task.fingerprint.config or {}), f"{NODE_ARTIFACT}/config.json")
    version = registry.register(task.node.name, run_id, NODE_ARTIFACT, task.version_tags())
    return NodeResult(task.node.name, version, run_id, detail="config registered")


def train_config(task: NodeTask) -> Any:
    """The node's composed train config for this run (DictConfig), checked against its fingerprint.

    Raises:
        CheckFailed: when the config composes differently from when it was fingerprinted (a config
            file changed during the run): rerun, and the new config is fingerprinted.
    """
    from andon.dag.configs import ConfigSession, needs_name_override, node_compose_args, to_plain
    from andon.ids import hash_json

    dataset_id = dict(task.fingerprint.datasets)[task.node.datasets[0]]
    name, overrides = node_compose_args(task.node, dataset_ref=dataset_id)
    overrides += [f"workspace={task.workspace}", "register=true", "json=false"]
    overrides += [f"++upstream.{up}={version}" for up, version in task.upstream_versions]
    with ConfigSession(task.searchpath) as session:
        if needs_name_override(session.compose(name, overrides), task.node):
            overrides.append(f"model.name={task.node.name}")
        cfg = session.compose_config(name, overrides)
        plain = to_plain(cfg, f"node {task.node.name}'s config")
    hashed = {k: v for k, v in plain.items() if k not in set(task.fingerprint_ignore)}
    if hash_json(hashed) != task.fingerprint.config_hash:
        raise CheckFailed(f"the config of node {task.node.name} changed since it was fingerprinted: "
                          f"run `andon dag run` again")
    return cfg


def run_train(task: NodeTask) -> NodeResult:
    """Train the node with andon.models.train.run_training (imported here: it loads torch)."""
    from andon.models.train import run_training

    result = run_training(train_config(task), register=True)
    if result.version is None:
        raise CheckFailed(f"training {task.node.name} registered no version (a dry run, or no checkpoint was "
                          f"written): check the node's trainer overrides")
    if result.model != task.node.name:
        raise InternalError(f"training registered model {result.model!r}, not the node's name {task.node.name!r}")
    metrics = tuple(sorted((k, float(v)) for k, v in result.metrics.items()))
    return NodeResult(task.node.name, str(result.version), result.run_id,
                      detail=f"trained on {result.dataset_id}{' (resumed)' if result.resumed else ''}",
                      metrics=metrics)


def run_autolabel(task: NodeTask) -> NodeResult:
    """Label the source logs with the upstream detector version and tracker, then build the output dataset."""
    from hydra.utils import instantiate

    from andon.datasets.build import build_dataset
    from andon.datasets.spec import spec_from_config
    from andon.datasets.versions import load_version
    from andon.models import autolabel
    from andon.models.registry import Registry
    from andon.scenarios.catalog import Catalog
    from andon.scenarios.records import CLASSES
    from andon.workspace import Workspace

    workspace = Workspace.open(task.workspace)
    versions = dict(task.upstream_versions)
    configs = dict(task.upstream_configs)
    (detector,) = task.upstream_with_role("detections")
    loader = getattr(autolabel, "load_detect_fn", None)
    if loader is None:
        raise InternalError("andon.models.autolabel has no load_detect_fn(workspace, name, version): the DAG "
                            "needs it to run a registered detector version over logs")
    detect_fn = loader(workspace, detector, versions[detector])
    trackers = task.upstream_with_role("tracks")
    tracker = None
    if trackers:
        params = dict(configs[trackers[0]]["model"])
        params.pop("name", None)
        tracker = instantiate(params)
    log_ids = sorted({log_id for _, dataset_id in task.fingerprint.datasets if dataset_id
                      for log_id in load_version(workspace, dataset_id).log_manifests()})
    with Catalog(workspace) as catalog:
        labelled = autolabel.autolabel_catalog(catalog, log_ids, detect_fn, tracker,
                                               {up: versions[up] for up in task.node.upstream})
    # The dataset takes the autolabels of this detector version only: the catalog holds those of every
    # version the DAG ever ran, and a predictor must learn from the detector it will serve with.
    dataset = copy.deepcopy(dict(task.fingerprint.config or {})["dataset"])
    query = dataset.setdefault("query", {})
    pin = autolabel.detector_tag(versions[detector])
    query["tags"] = sorted({*(query.get("tags") or []), pin})
    # Against the previous version (another detector's autolabels) every scenario is replaced and the
    # box and speed distributions move with the detector: expected here, so acknowledged, and drift is
    # reported without blocking. The gates judge the predictor trained on it; the dataset's checks say
    # what changed.
    validation = dataset.setdefault("validation", {})
    earlier = [autolabel.detector_tag(str(v)) for v in range(1, int(versions[detector]))] \
        if str(versions[detector]).isdigit() else []
    validation["acknowledge"] = sorted({*(validation.get("acknowledge") or []), "removed_share<=1",
                                        *(f"removed_tag:{tag}" for tag in earlier),
                                        *(f"removed_class:{name}" for name in CLASSES)})
    validation.setdefault("blocking", {})["drift"] = False
    spec = spec_from_config(dataset)
    doc = build_dataset(workspace, spec, progress=False)
    if doc["status"] != "accepted":
        raise CheckFailed(f"dataset {spec.name} {doc['dataset_id']} built from the autolabelled logs is "
                          f"{doc['status']}: {'; '.join(doc['reasons'])}")
    registry = Registry(workspace)
    run_id = node_run(task)
    registry.client.log_dict(run_id, {"dataset_id": doc["dataset_id"], "dataset": spec.name, "source_logs": log_ids,
                                      "labelled_logs": list(labelled), "upstream": versions},
                             f"{NODE_ARTIFACT}/link.json")
    tags = {**task.version_tags(), TAG_OUTPUT_DATASET: doc["dataset_id"]}
    version = registry.register(task.node.name, run_id, NODE_ARTIFACT, tags)
    return NodeResult(task.node.name, version, run_id,
                      detail=f"{len(labelled)} logs labelled, dataset {spec.name} {doc['dataset_id']}")

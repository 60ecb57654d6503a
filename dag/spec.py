"""The model DAG as configuration: Hydra schemas, the frozen Dag the rest of dag/ works on, validation.

A DAG config (`configs/dag/NAME.yaml`, schema `DagSpec`, stored as `dag/base_dag`) names its nodes;
each node has a kind, a model config group option, its datasets (by name), its upstream nodes and
what it takes from each, its resources on Ray, overrides of its config, and the suites and gates
that judge it:

    train      a model trained by `andon.models.train.run_training` on exactly one dataset
    fixed      a configured, untrained model (the tracker): registered as its config alone
    autolabel  a derived-dataset link: runs upstream models over the logs of its datasets and
               builds the dataset `output`, which downstream nodes read as a dataset

The schemas are not frozen (Hydra merges YAML into them); `dag_from_config` converts one composed
config into a frozen, validated `Dag` at the entry point, and only that travels inward.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from andon.dag.code import DEFAULT_IGNORE as DEFAULT_CODE_IGNORE
from andon.dag.graph import ancestors, find_cycle, topological_order
from andon.errors import BadInput
from andon.hydra_app import add_schemas

KINDS = ("train", "fixed", "autolabel")
# What a node takes from an upstream node: its model, its detections or tracks (through an autolabel
# link), or the dataset an autolabel link builds.
ROLES = ("model", "detections", "tracks", "dataset")
DEFAULT_TRAIN_CONFIG = "train"
# Keys of a node's composed config that do not change what is trained: where it runs and how it
# reports, and the values andon sets itself (the dataset id and upstream versions are components of
# the fingerprint in their own right).
DEFAULT_FINGERPRINT_IGNORE = ["workspace", "json", "register", "upstream", "dataset_ref"]
# Config keys andon sets per run; a node's overrides may not set them.
MANAGED_KEYS = ("dataset_ref", "workspace", "upstream", "register", "json")
SCHEMA_GROUP = "dag"
SCHEMA_NAME = "base_dag"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass
class ResourcesSpec:
    """What one run of the node asks Ray for; `custom` holds custom resources, e.g. {"gpu_node": 1}."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    custom: dict[str, float] = field(default_factory=dict)


@dataclass
class NodeSpec:
    """One node of the DAG (its name is its key under `nodes`, and its registered model's name).

    Attributes:
        kind: train | fixed | autolabel.
        model: the option of the `model` config group (configs/model/NAME.yaml); not for autolabel.
        config: the primary config a train node composes (default `train`, i.e. configs/train.yaml).
        datasets: dataset names: a train node's one training dataset; an autolabel link's source
            logs. A name is a dataset config, a name with versions in the workspace, or the output
            of another node.
        output: the dataset config an autolabel link builds (configs/dataset/NAME.yaml).
        upstream: the nodes this one depends on.
        consumes: what it takes from each upstream node (model | detections | tracks | dataset;
            default model).
        overrides: Hydra overrides of the node's config (e.g. trainer.max_epochs=3).
        code: modules whose source counts besides the model's `_target_` module and the runner's.
        runner: `module:function` that runs the node (default: by kind, see andon.dag.runners).
        resources: what one run asks Ray for.
        suites, gates: the test suites and gates that judge the node (names).
    """

    kind: str = "train"
    model: str | None = None
    config: str | None = None
    datasets: list[str] = field(default_factory=list)
    output: str | None = None
    upstream: list[str] = field(default_factory=list)
    consumes: dict[str, str] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    runner: str | None = None
    resources: ResourcesSpec = field(default_factory=ResourcesSpec)
    suites: list[str] = field(default_factory=list)
    gates: list[str] = field(default_factory=list)
    description: str = ""


@dataclass
class DagSpec:
    """A DAG config (group `dag`).

    Attributes:
        searchpath: extra config directories (or file:// / pkg:// URLs) the node configs are
            composed from, besides the package's configs.
        code_packages: top-level packages whose modules count as code (imports elsewhere do not).
        code_ignore: modules that only gather others (schema registry, CLI), neither hashed nor followed.
        fingerprint_ignore: top-level keys of a node's config that are not part of its fingerprint.
    """

    name: str = "default"
    description: str = ""
    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    searchpath: list[str] = field(default_factory=list)
    code_packages: list[str] = field(default_factory=lambda: ["andon"])
    code_ignore: list[str] = field(default_factory=lambda: list(DEFAULT_CODE_IGNORE))
    fingerprint_ignore: list[str] = field(default_factory=lambda: list(DEFAULT_FINGERPRINT_IGNORE))


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group=SCHEMA_GROUP, name=SCHEMA_NAME, node=DagSpec)


add_schemas(_register)


@dataclass(frozen=True, slots=True)
class Resources:
    """A node's resource request, as Ray takes it."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    custom: tuple[tuple[str, float], ...] = ()

    def ray_options(self) -> dict[str, Any]:
        """Keyword arguments of `ray.remote(...)` / `.options(...)`."""
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "resources": dict(self.custom)}

    def to_dict(self) -> dict[str, Any]:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "custom": dict(self.custom)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Resources:
        return cls(num_cpus=float(doc.get("num_cpus", 1.0)), num_gpus=float(doc.get("num_gpus", 0.0)),
                   custom=tuple(sorted((str(k), float(v)) for k, v in (doc.get("custom") or {}).items())))


@dataclass(frozen=True, slots=True)
class Node:
    """A validated node (see NodeSpec for the fields)."""

    name: str
    kind: str
    model: str | None = None
    config: str | None = None
    datasets: tuple[str, ...] = ()
    output: str | None = None
    upstream: tuple[str, ...] = ()
    consumes: tuple[tuple[str, str], ...] = ()
    overrides: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    runner: str | None = None
    resources: Resources = Resources()
    suites: tuple[str, ...] = ()
    gates: tuple[str, ...] = ()
    description: str = ""

    def role(self, upstream: str) -> str:
        """What this node takes from `upstream` (model unless `consumes` says otherwise)."""
        return dict(self.consumes).get(upstream, "model")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "model": self.model, "config": self.config,
                "datasets": list(self.datasets), "output": self.output, "upstream": list(self.upstream),
                "consumes": dict(self.consumes), "overrides": list(self.overrides), "code": list(self.code),
                "runner": self.runner, "resources": self.resources.to_dict(), "suites": list(self.suites),
                "gates": list(self.gates), "description": self.description}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], name: str | None = None) -> Node:
        """A node from its to_dict() form or a NodeSpec-shaped mapping (`name` for the latter)."""
        def strings(key: str) -> tuple[str, ...]:
            value = doc.get(key) or ()
            if isinstance(value, str):
                raise BadInput(f"node {name or doc.get('name')!r}: {key} must be a list, got the string {value!r}")
            return tuple(str(v) for v in value)

        return cls(name=str(name or doc["name"]), kind=str(doc.get("kind", "train")), model=doc.get("model"),
                   config=doc.get("config"), datasets=strings("datasets"), output=doc.get("output"),
                   upstream=strings("upstream"),
                   consumes=tuple((str(k), str(v)) for k, v in (doc.get("consumes") or {}).items()),
                   overrides=strings("overrides"), code=strings("code"), runner=doc.get("runner"),
                   resources=Resources.from_dict(doc.get("resources") or {}), suites=strings("suites"),
                   gates=strings("gates"), description=str(doc.get("description") or ""))


@dataclass(frozen=True, slots=True)
class Dag:
    """A validated DAG: its nodes in declaration order and in topological order."""

    name: str
    nodes: tuple[Node, ...]
    order: tuple[str, ...]
    description: str = ""
    searchpath: tuple[str, ...] = ()
    code_packages: tuple[str, ...] = ("andon",)
    code_ignore: tuple[str, ...] = DEFAULT_CODE_IGNORE
    fingerprint_ignore: tuple[str, ...] = tuple(DEFAULT_FINGERPRINT_IGNORE)
    by_name: Mapping[str, Node] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, name: str, nodes: Sequence[Node], description: str = "", searchpath: Sequence[str] = (),
              code_packages: Sequence[str] = ("andon",), code_ignore: Sequence[str] = DEFAULT_CODE_IGNORE,
              fingerprint_ignore: Sequence[str] = DEFAULT_FINGERPRINT_IGNORE) -> Dag:
        """Validate the structure (see validate_structure) and order the nodes.

        Raises:
            BadInput: naming every bad node and value.
        """
        validate_structure(nodes)
        upstream = {n.name: n.upstream for n in nodes}
        return cls(name=name, nodes=tuple(nodes), order=tuple(topological_order(upstream)), description=description,
                   searchpath=tuple(searchpath), code_packages=tuple(code_packages), code_ignore=tuple(code_ignore),
                   fingerprint_ignore=tuple(fingerprint_ignore), by_name={n.name: n for n in nodes})

    def node(self, name: str) -> Node:
        """The node called `name`; BadInput listing the nodes when there is none."""
        found = self.by_name.get(name)
        if found is None:
            raise BadInput(f"no node {name!r} in DAG {self.name!r}: choose one of {', '.join(self.order)}")
        return found

    def upstream_map(self) -> dict[str, tuple[str, ...]]:
        return {n.name: n.upstream for n in self.nodes}

    def producers(self) -> dict[str, str]:
        """{dataset name: the node whose output it is}."""
        return {n.output: n.name for n in self.nodes if n.output}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "nodes": [n.to_dict() for n in self.nodes],
                "order": list(self.order), "searchpath": list(self.searchpath),
                "code_packages": list(self.code_packages), "code_ignore": list(self.code_ignore),
                "fingerprint_ignore": list(self.fingerprint_ignore)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Dag:
        """A DAG from its to_dict() form, or from a DagSpec-shaped mapping (`nodes` keyed by name)."""
        raw = doc.get("nodes") or {}
        nodes = ([Node.from_dict(spec, name) for name, spec in raw.items()] if isinstance(raw, Mapping)
                 else [Node.from_dict(spec) for spec in raw])
        return cls.build(name=str(doc.get("name", "default")), nodes=nodes, description=str(doc.get("description", "")),
                         searchpath=tuple(doc.get("searchpath") or ()),
                         code_packages=tuple(doc.get("code_packages") or ("andon",)),
                         code_ignore=tuple(doc.get("code_ignore", DEFAULT_CODE_IGNORE)),
                         fingerprint_ignore=tuple(doc.get("fingerprint_ignore", DEFAULT_FINGERPRINT_IGNORE)))


def dag_from_config(cfg: DictConfig | Mapping[str, Any]) -> Dag:
    """A validated Dag from a composed `dag` node (or a plain mapping shaped like DagSpec).

    Raises:
        BadInput: naming the bad key or value.
    """
    try:
        merged = OmegaConf.merge(OmegaConf.structured(DagSpec), cfg)
        spec = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise BadInput(f"dag config: {exc}".replace("\n", "; ")) from exc
    if not isinstance(spec, DagSpec):
        raise BadInput(f"the dag config must be a mapping of DagSpec fields, got {type(spec).__name__}")
    nodes = [Node(name=name, kind=s.kind, model=s.model, config=s.config, datasets=tuple(s.datasets), output=s.output,
                  upstream=tuple(s.upstream), consumes=tuple(s.consumes.items()), overrides=tuple(s.overrides),
                  code=tuple(s.code), runner=s.runner,
                  resources=Resources(float(s.resources.num_cpus), float(s.resources.num_gpus),
                                      tuple(sorted((k, float(v)) for k, v in s.resources.custom.items()))),
                  suites=tuple(s.suites), gates=tuple(s.gates), description=s.description)
             for name, s in spec.nodes.items()]
    return Dag.build(spec.name, nodes, spec.description, spec.searchpath, spec.code_packages, spec.code_ignore,
                     spec.fingerprint_ignore)


def validate_structure(nodes: Sequence[Node]) -> None:
    """Refuse a DAG whose shape is wrong, naming every problem at once.

    Checks: node names, kinds and what each kind needs, unknown or repeated upstream nodes, what is
    consumed from whom, datasets made by a node that is not an ancestor, outputs made twice, resource
    requests, overrides of keys andon sets, runner and module names, and cycles (naming the nodes).

    Raises:
        BadInput: listing the problems and what to do.
    """
    problems: list[str] = []
    names = [n.name for n in nodes]
    known = set(names)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(f"node names used twice: {', '.join(repeated)}")
    if not nodes:
        problems.append("the DAG has no nodes: add some under `nodes:`")
    for node in nodes:
        problems.extend(f"node {node.name!r}: {p}" for p in _node_problems(node, known))
    outputs: dict[str, list[str]] = {}
    for node in nodes:
        if node.output:
            outputs.setdefault(node.output, []).append(node.name)
    for dataset, makers in outputs.items():
        if len(makers) > 1:
            problems.append(f"dataset {dataset!r} is the output of several nodes ({', '.join(makers)}): keep one")
    if problems:
        raise BadInput("bad DAG: " + "; ".join(problems))
    upstream = {n.name: n.upstream for n in nodes}
    cycle = find_cycle(upstream)
    if cycle:
        raise BadInput(f"bad DAG: the nodes {' -> '.join(cycle)} form a cycle: remove one of these upstream links")
    producers = {dataset: makers[0] for dataset, makers in outputs.items()}
    for node in nodes:
        made = [d for d in node.datasets if d in producers]
        before = ancestors(upstream, [node.name]) if made else set()  # only where needed: O(nodes) otherwise
        for dataset in made:
            maker = producers[dataset]
            if maker not in before:
                problems.append(f"node {node.name!r} reads dataset {dataset!r}, the output of node {maker!r}: "
                                f"list {maker!r} in its upstream")
    if problems:
        raise BadInput("bad DAG: " + "; ".join(problems))


def _node_problems(node: Node, known: set[str]) -> list[str]:
    problems: list[str] = []
    if not _NAME.match(node.name):
        problems.append("a node name starts with a letter and holds letters, digits, '_' or '-' only")
    if node.kind not in KINDS:
        return [*problems, f"kind {node.kind!r} is not one of {', '.join(KINDS)}"]
    if node.kind in ("train", "fixed") and not node.model:
        problems.append(f"a {node.kind} node needs `model`: an option of the model config group (e.g. model: detector)")
    if node.kind == "train" and len(node.datasets) != 1:
        problems.append(f"a train node trains on exactly one dataset, got datasets {list(node.datasets)}")
    if node.kind == "autolabel":
        if not node.output:
            problems.append("an autolabel node needs `output`: the dataset config it builds")
        if not node.datasets:
            problems.append("an autolabel node needs `datasets`: the datasets whose logs it labels")
        detectors = [u for u in node.upstream if node.role(u) == "detections"]
        if len(detectors) != 1:
            problems.append(f"an autolabel node consumes `detections` from exactly one upstream node, got "
                            f"{detectors or 'none'} (consumes: {{detector: detections}})")
        if sum(1 for u in node.upstream if node.role(u) == "tracks") > 1:
            problems.append("an autolabel node consumes `tracks` from at most one upstream node")
    elif node.output:
        problems.append(f"only autolabel nodes have an output dataset, not {node.kind} nodes: remove output")
    unknown = [u for u in node.upstream if u not in known]
    if unknown:
        problems.append(f"unknown upstream node(s) {', '.join(map(repr, unknown))}: the nodes are "
                        f"{', '.join(sorted(known))}")
    if node.name in node.upstream:
        problems.append("it lists itself as upstream")
    if len(set(node.upstream)) != len(node.upstream):
        problems.append(f"upstream {list(node.upstream)} names a node twice")
    for upstream, role in node.consumes:
        if upstream not in node.upstream:
            problems.append(f"consumes from {upstream!r}, which is not in its upstream {list(node.upstream)}")
        if role not in ROLES:
            problems.append(f"consumes {role!r} from {upstream!r}: choose one of {', '.join(ROLES)}")
    res = node.resources
    if not (math.isfinite(res.num_cpus) and res.num_cpus >= 0):
        problems.append(f"resources.num_cpus {res.num_cpus} must be >= 0")
    if not (math.isfinite(res.num_gpus) and res.num_gpus >= 0):
        problems.append(f"resources.num_gpus {res.num_gpus} must be >= 0")
    for key, value in res.custom:
        if not (math.isfinite(value) and value > 0):
            problems.append(f"resources.custom.{key} {value} must be > 0")
    for override in node.overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if "=" not in override:
            problems.append(f"override {override!r} must read KEY=VALUE")
        elif key.split(".", 1)[0] in MANAGED_KEYS:
            problems.append(f"override {override!r} sets {key}, which andon sets per run: remove it")
    for module in node.code:
        if not _MODULE.match(module):
            problems.append(f"code entry {module!r} is not a module name (e.g. andon.models.tracker)")
    if node.runner is not None and not _MODULE.match(node.runner.replace(":", ".")):
        problems.append(f"runner {node.runner!r} must read module:function (e.g. andon.dag.runners:run_train)")
    return problems


def validate_inputs(dag: Dag, model_groups: set[str], dataset_configs: set[str],
                    workspace_datasets: set[str] = frozenset()) -> None:
    """Refuse nodes whose model config group option or dataset is unknown, naming all of them.

    Args:
        model_groups: the options of the `model` config group.
        dataset_configs: the options of the `dataset` config group.
        workspace_datasets: dataset names with versions in the workspace (a dataset built from a spec
            that is not a config is known too). The outputs of the DAG's own nodes are known as well.

    Raises:
        BadInput: naming each node with its unknown inputs and the known ones.
    """
    known_datasets = set(dataset_configs) | set(workspace_datasets) | set(dag.producers())
    problems: list[str] = []
    for node in dag.nodes:
        if node.model and node.model not in model_groups:
            problems.append(f"node {node.name!r}: unknown model config {node.model!r} "
                            f"(configs/model/{node.model}.yaml; known: {', '.join(sorted(model_groups)) or 'none'})")
        missing = [d for d in node.datasets if d not in known_datasets]
        if missing:
            problems.append(f"node {node.name!r}: unknown dataset(s) {', '.join(map(repr, missing))} "
                            f"(known: {', '.join(sorted(known_datasets)) or 'none'})")
        if node.output and node.output not in dataset_configs:
            problems.append(f"node {node.name!r}: output {node.output!r} has no dataset config "
                            f"(configs/dataset/{node.output}.yaml)")
    if problems:
        raise BadInput("missing DAG inputs: " + "; ".join(problems))

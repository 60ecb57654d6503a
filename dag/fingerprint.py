"""Node fingerprints: the hash of everything that fixes what a node produces, kept per component.

A node's fingerprint is the SHA-256 of (its kind, the digest of every module in its code closure,
the hash of its resolved config, the version id of each of its datasets, the fingerprints of its
upstream nodes). The components are kept beside the hash and recorded on the model version as tags,
so that a later status can say exactly which of them changed (DVC's dvc.lock idea, per node, with
upstream models as inputs; Dagster's "why stale" without hand-set code versions).

Dataset ids are content hashes already (andon.datasets): a dataset is resolved by name to its
latest accepted version's id, never re-read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from andon.dag.code import MISSING, SourceIndex
from andon.dag.configs import ConfigSession, model_target, node_config
from andon.dag.graph import ancestors
from andon.dag.spec import Dag, Node
from andon.errors import BadInput
from andon.ids import hash_json
from andon.workspace import Workspace

FORMAT = 1
# The code the default runner of each kind runs besides the model's own module: training and
# autolabelling code change what is produced (the DAG's runners only call them; a node with its own
# runner counts that runner's module instead).
KIND_CODE: dict[str, tuple[str, ...]] = {
    "train": ("andon.models.train",),
    "fixed": (),
    "autolabel": ("andon.models.autolabel", "andon.datasets.build"),
}
DEFAULT_RUNNER_PREFIX = "andon.dag."
CODE_CACHE = "dag-code-cache.json"

# Version tags (MLflow model version tags) recording the components.
TAG_FINGERPRINT = "fingerprint"
TAG_FORMAT = "dag.format"
TAG_KIND = "dag.kind"
TAG_CONFIG = "dag.config"
TAG_CODE = "dag.code."
TAG_DATASET = "dag.dataset."
TAG_UPSTREAM_FP = "dag.upstream."
TAG_UPSTREAM_VERSION = "upstream."
NO_DATASET = "none"


@dataclass(frozen=True, slots=True)
class NodeFingerprint:
    """A node's fingerprint and its components.

    Attributes:
        node: the node's name.
        kind: its kind.
        fingerprint: SHA-256 over the components.
        code: (module, digest) over the code closure, sorted by module.
        config_hash: SHA-256 of the resolved config's canonical JSON.
        datasets: (name, dataset id or None when there is no accepted version), in node order.
        upstream: (node, fingerprint) of each upstream node.
        problems: what keeps the node from running (a missing dataset or code module).
        config: the resolved config (not hashed here: config_hash is; kept for diffs).
    """

    node: str
    kind: str
    fingerprint: str
    code: tuple[tuple[str, str], ...]
    config_hash: str
    datasets: tuple[tuple[str, str | None], ...]
    upstream: tuple[tuple[str, str], ...]
    problems: tuple[str, ...] = ()
    config: Mapping[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def compute(cls, node: Node, code: Mapping[str, str], config: Mapping[str, Any],
                datasets: Mapping[str, str | None], upstream: Mapping[str, str],
                problems: tuple[str, ...] = ()) -> NodeFingerprint:
        """Hash the components (the config is hashed as canonical JSON)."""
        config_hash = hash_json(config)
        code_items = tuple(sorted(code.items()))
        dataset_items = tuple((name, datasets.get(name)) for name in node.datasets)
        upstream_items = tuple((name, upstream[name]) for name in node.upstream)
        fingerprint = hash_json({"format": FORMAT, "kind": node.kind, "code": code_items, "config": config_hash,
                                 "datasets": dataset_items, "upstream": upstream_items})
        return cls(node=node.name, kind=node.kind, fingerprint=fingerprint, code=code_items, config_hash=config_hash,
                   datasets=dataset_items, upstream=upstream_items, problems=problems, config=dict(config))

    @property
    def short(self) -> str:
        return self.fingerprint[:12]

    def tags(self) -> dict[str, str]:
        """The components as model version tags (the fingerprint tag itself is set last, separately)."""
        tags = {TAG_FORMAT: str(FORMAT), TAG_KIND: self.kind, TAG_CONFIG: self.config_hash}
        tags.update({TAG_CODE + module: digest for module, digest in self.code})
        tags.update({TAG_DATASET + name: dataset_id or NO_DATASET for name, dataset_id in self.datasets})
        tags.update({TAG_UPSTREAM_FP + name: fp for name, fp in self.upstream})
        return tags

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "kind": self.kind, "fingerprint": self.fingerprint, "code": dict(self.code),
                "config_hash": self.config_hash, "datasets": dict(self.datasets), "upstream": dict(self.upstream),
                "problems": list(self.problems), "config": self.config}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> NodeFingerprint:
        return cls(node=doc["node"], kind=doc["kind"], fingerprint=doc["fingerprint"],
                   code=tuple(sorted(doc["code"].items())), config_hash=doc["config_hash"],
                   datasets=tuple(doc["datasets"].items()), upstream=tuple(doc["upstream"].items()),
                   problems=tuple(doc.get("problems", ())), config=doc.get("config"))


@dataclass(frozen=True, slots=True)
class RecordedComponents:
    """The components a model version recorded in its tags when it was registered by the DAG."""

    fingerprint: str | None
    kind: str | None
    code: Mapping[str, str]
    config_hash: str | None
    datasets: Mapping[str, str | None]
    upstream: Mapping[str, str]
    upstream_versions: Mapping[str, str]

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> RecordedComponents:
        def under(prefix: str) -> dict[str, str]:
            return {key[len(prefix):]: value for key, value in tags.items() if key.startswith(prefix)}

        versions = {k: v for k, v in under(TAG_UPSTREAM_VERSION).items() if "." not in k}
        # andon.models.train records upstream versions as `upstream_<name>`
        versions.update({k[len("upstream_"):]: v for k, v in tags.items()
                         if k.startswith("upstream_") and k[len("upstream_"):] not in versions})
        return cls(fingerprint=tags.get(TAG_FINGERPRINT), kind=tags.get(TAG_KIND), code=under(TAG_CODE),
                   config_hash=tags.get(TAG_CONFIG),
                   datasets={k: (None if v == NO_DATASET else v) for k, v in under(TAG_DATASET).items()},
                   upstream=under(TAG_UPSTREAM_FP), upstream_versions=versions)

    @property
    def from_dag(self) -> bool:
        """Whether the DAG registered the version (it recorded a config hash)."""
        return self.config_hash is not None


class Fingerprinter:
    """Computes the fingerprints of a DAG's nodes, upstream first; code, configs and fingerprints cached.

    Args:
        dag: the DAG.
        workspace: where dataset versions are resolved (None: code and configs only, e.g. for impact
            analysis without data).
        session: an entered ConfigSession (node configs are composed through it).
        sources: the code index (a fresh one for the DAG's packages by default).
    """

    def __init__(self, dag: Dag, workspace: Workspace | None, session: ConfigSession,
                 sources: SourceIndex | None = None) -> None:
        self.dag = dag
        self.workspace = workspace
        self.session = session
        cache = workspace.root / "tmp" / CODE_CACHE if workspace is not None else None
        self.sources = sources or SourceIndex(dag.code_packages, dag.code_ignore, cache=cache)
        self._configs: dict[str, dict[str, Any]] = {}
        self._fingerprints: dict[str, NodeFingerprint] = {}
        self._targets: dict[tuple[str | None, tuple[str, ...]], str | None] = {}

    def code_roots(self, node: Node, light: bool = False) -> tuple[str, ...]:
        """The modules whose import closure is the node's code (see KIND_CODE).

        The model's module is its config's `_target_`: from the node's resolved config, or with
        `light`, from its model config group alone (impact analysis of many nodes, no data).
        """
        # the runner's code: the default runner's (by kind), or a custom runner's module instead
        custom = node.runner and not node.runner.startswith(DEFAULT_RUNNER_PREFIX)
        roots = [] if custom else list(KIND_CODE.get(node.kind, ()))
        if light:
            key = (node.model, tuple(o for o in node.overrides if o.lstrip("+~").startswith("model._target_=")))
            if key not in self._targets:
                self._targets[key] = model_target(self.session, node)
            target = self._targets[key]
        else:
            model = self.config(node).get("model")
            target = model.get("_target_") if isinstance(model, Mapping) else None
        if target:
            roots.append(target if self.sources.path(target) else target.rpartition(".")[0])
        if custom:
            roots.append(node.runner.partition(":")[0] if ":" in node.runner else node.runner.rpartition(".")[0])
        roots.extend(node.code)
        return tuple(dict.fromkeys(roots))

    def closure(self, name: str) -> tuple[str, ...]:
        """The node's code modules (the import closure of its roots), found without composing its config."""
        return self.sources.closure(self.code_roots(self.dag.node(name), light=True))

    def code(self, node: Node) -> dict[str, str]:
        return self.sources.digests(self.code_roots(node))

    def config(self, node: Node) -> dict[str, Any]:
        if node.name not in self._configs:
            self._configs[node.name] = node_config(self.session, node, self.dag.fingerprint_ignore)
        return self._configs[node.name]

    def dataset_ids(self, node: Node) -> tuple[dict[str, str | None], list[str]]:
        """{name: latest accepted version id or None}, and the problems of the missing ones."""
        from andon.datasets.versions import load_version

        if self.workspace is None:
            raise BadInput("resolving datasets needs a workspace: pass --workspace DIR or set $ANDON_WORKSPACE")
        producers = self.dag.producers()
        ids: dict[str, str | None] = {}
        problems: list[str] = []
        for name in node.datasets:
            try:
                ids[name] = load_version(self.workspace, name).dataset_id
            except BadInput:
                ids[name] = None
                if name not in producers:
                    problems.append(f"dataset {name} has no accepted version: build it "
                                    f"(andon dataset build dataset={name})")
        return ids, problems

    def fingerprint(self, name: str) -> NodeFingerprint:
        """The node's fingerprint (its upstream nodes' first)."""
        found = self._fingerprints.get(name)
        if found is not None:
            return found
        node = self.dag.node(name)
        if any(up not in self._fingerprints for up in node.upstream):
            # upstream first, in topological order (no recursion: chains may be thousands of nodes long)
            needed = ancestors(self.dag.upstream_map(), [name])
            for other in self.dag.order:
                if other in needed and other not in self._fingerprints:
                    self.fingerprint(other)
        upstream = {up: self._fingerprints[up].fingerprint for up in node.upstream}
        code = self.code(node)
        datasets, problems = self.dataset_ids(node)
        roots = set(self.code_roots(node))
        problems += [f"code module {m} not found" for m, digest in code.items() if digest == MISSING and m in roots]
        found = NodeFingerprint.compute(node, code, self.config(node), datasets, upstream, tuple(problems))
        self._fingerprints[name] = found
        return found

    def all(self) -> dict[str, NodeFingerprint]:
        """Every node's fingerprint, in topological order."""
        found = {name: self.fingerprint(name) for name in self.dag.order}
        self.sources.save()
        return found

    def forget(self, names: set[str] | None = None) -> None:
        """Drop cached fingerprints (all by default), so datasets are resolved again (after a node ran)."""
        if names is None:
            self._fingerprints.clear()
        else:
            for name in names:
                self._fingerprints.pop(name, None)

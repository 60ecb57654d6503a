"""The candidate stack: a DAG node at an alias (or version) and every upstream node it was made from.

`NAME@ALIAS` (e.g. `predictor@candidate`) names node NAME of the DAG; the stack is that node and its
ancestors (train and fixed nodes, whose versions are models; autolabel links, whose versions record
the dataset they built), each resolved at ALIAS in the registry: {node: version}.

`NAME@VERSION` (e.g. `predictor@7`) pins the node's version; its ancestors are the versions it
recorded it was made from (`upstream.<node>` tags, written by the DAG executor and by training).

Decision: a node without a version at the alias fails the resolution (BadInput naming the node and
what to do): a stack half made of other versions is not the candidate anyone trained. Where the
release engineer wants otherwise (e.g. only the predictor was retrained and the detector's candidate
alias was cleared by a release), `fallback_alias="production"` resolves such nodes at production
instead, and the stack lists them in `fallbacks` so the report says so. The node named in the
reference itself never falls back.

The baseline is the same node at `production` with its ancestors at production; a DAG whose named
node has no production version yet (a first release) has no baseline (None), and the gates that need
one say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from andon.dag.graph import ancestors
from andon.dag.spec import Dag
from andon.errors import BadInput
from andon.models.registry import PRODUCTION, ModelRef
from andon.workspace import Workspace

MODEL_KINDS: tuple[str, ...] = ("train", "fixed")  # kinds whose versions are loadable models
TAG_UPSTREAM_VERSION = "upstream."  # andon.dag.fingerprint.TAG_UPSTREAM_VERSION


@dataclass(frozen=True, slots=True)
class CandidateStack:
    """A resolved stack: {node: version} for a node and its ancestors.

    Attributes:
        ref: the reference resolved (NAME@ALIAS or NAME@VERSION).
        node: the node it names.
        versions: {node: version} of the node and each ancestor.
        kinds: {node: kind} (train | fixed | autolabel).
        fallbacks: nodes resolved at the fallback alias instead of the reference's.
        fallback_alias: that alias (None: no fallback was allowed).
    """

    ref: str
    node: str
    versions: Mapping[str, str]
    kinds: Mapping[str, str] = field(default_factory=dict)
    fallbacks: tuple[str, ...] = ()
    fallback_alias: str | None = None

    def models(self) -> list[str]:
        """`node@version` of the nodes that are models (train, fixed), sorted: what a stack loads."""
        return [f"{n}@{v}" for n, v in sorted(self.versions.items()) if self.kinds.get(n, "train") in MODEL_KINDS]

    def references(self) -> dict[str, str]:
        """{node: "node@version"} of every node (the report's `models`)."""
        return {n: f"{n}@{v}" for n, v in sorted(self.versions.items())}

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "node": self.node, "versions": dict(sorted(self.versions.items())),
                "kinds": dict(sorted(self.kinds.items())), "fallbacks": list(self.fallbacks),
                "fallback_alias": self.fallback_alias}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CandidateStack:
        return cls(str(doc["ref"]), str(doc["node"]), {str(k): str(v) for k, v in doc["versions"].items()},
                   dict(doc.get("kinds") or {}), tuple(doc.get("fallbacks") or ()), doc.get("fallback_alias"))


def stack_versions(stack: CandidateStack | Mapping[str, str] | None) -> dict[str, str] | None:
    """{node: version} of a stack or a plain mapping (None stays None)."""
    if stack is None:
        return None
    versions = stack.versions if isinstance(stack, CandidateStack) else stack
    return {str(k): str(v) for k, v in versions.items()}


def resolve_stack(workspace: Workspace, dag: Dag, ref: str, fallback_alias: str | None = None,
                  lineage: Any = None) -> CandidateStack:
    """The stack `ref` names (module docstring).

    Args:
        workspace: the workspace whose registry is read.
        dag: the DAG the node belongs to.
        ref: NAME@ALIAS or NAME@VERSION, NAME a node of the DAG.
        fallback_alias: the alias an ancestor without a version at ref's alias takes (None: refuse).
        lineage: an andon.dag.lineage.Lineage to read through (default: the workspace's).

    Raises:
        BadInput: a malformed reference, a node not in the DAG, or a node (or ancestor) with no
            version at the alias (and none at the fallback), naming it and what to do.
    """
    parsed = ModelRef.parse(ref)
    node = dag.node(parsed.name)
    lineage = lineage if lineage is not None else _lineage(workspace)
    members = [n for n in dag.order if n == node.name or n in ancestors(dag.upstream_map(), [node.name])]
    kinds = {n: dag.node(n).kind for n in members}
    if parsed.version is not None:
        versions = _pinned(lineage, node.name, parsed.version, members)
        return CandidateStack(str(parsed), node.name, versions, kinds)
    alias = str(parsed.alias)
    versions: dict[str, str] = {}
    fallbacks: list[str] = []
    for name in members:
        found = lineage.by_alias(name, alias)
        if found is None and fallback_alias and name != node.name:
            found = lineage.by_alias(name, fallback_alias)
            if found is not None:
                fallbacks.append(name)
        if found is None:
            raise BadInput(_no_version(name, alias, node.name, fallback_alias))
        versions[name] = str(found.version)
    return CandidateStack(str(parsed), node.name, versions, kinds, tuple(fallbacks),
                          fallback_alias if fallback_alias else None)


def resolve_baseline(workspace: Workspace, dag: Dag, node: str, ref: str = "",
                     lineage: Any = None) -> CandidateStack | None:
    """The baseline stack: `ref` when given, else `node@production`; None when the node has no
    production version yet (nothing to compare with).

    Raises:
        BadInput: a bad reference, or a production node whose ancestors are not all in production.
    """
    lineage = lineage if lineage is not None else _lineage(workspace)
    if ref:
        return resolve_stack(workspace, dag, ref, lineage=lineage)
    if lineage.by_alias(dag.node(node).name, PRODUCTION) is None:
        return None
    return resolve_stack(workspace, dag, f"{node}@{PRODUCTION}", lineage=lineage)


def _pinned(lineage: Any, node: str, version: str, members: list[str]) -> dict[str, str]:
    """The pinned version and the upstream versions recorded on it and on them, transitively."""
    versions = {node: str(version)}
    pending = [node]
    while pending:
        name = pending.pop()
        record = lineage.version(name, versions[name])
        if record is None:
            raise BadInput(f"no version {versions[name]} of {name} in the registry: `andon dag status` lists the "
                           f"versions; give NAME@ALIAS (e.g. {name}@candidate) or an existing version")
        for key, value in sorted(record.tags.items()):
            upstream = key[len(TAG_UPSTREAM_VERSION):] if key.startswith(TAG_UPSTREAM_VERSION) else None
            if upstream in members and upstream not in versions:
                versions[upstream] = str(value)
                pending.append(upstream)
    missing = [m for m in members if m not in versions]
    if missing:
        raise BadInput(f"{node}@{version} does not record which version of {', '.join(missing)} it was made from "
                       f"(no upstream.<node> tag): give {node}@ALIAS (e.g. {node}@candidate) so each node "
                       f"resolves at the alias")
    return {m: versions[m] for m in members}


def _no_version(name: str, alias: str, top: str, fallback: str | None) -> str:
    upstream = f" (upstream of {top})" if name != top else ""
    also = f" nor at {fallback!r}" if fallback and name != top else ""
    hint = (f"train it (`andon dag run {name}`)" if alias != PRODUCTION
            else "no release has promoted it yet; compare with another baseline or none")
    allow = "" if fallback or name == top else "; or allow a fallback (e.g. fallback_alias=production)"
    return f"node {name}{upstream} has no version at alias {alias!r}{also}: {hint}{allow}"


def _lineage(workspace: Workspace) -> Any:
    from andon.dag.lineage import Lineage

    return Lineage(workspace)

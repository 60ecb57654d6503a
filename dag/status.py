"""Staleness: which nodes are fresh, stale or missing, and exactly why.

A node is `fresh` when the registry holds a version of it tagged with its current fingerprint,
`missing` when it has no version at all, and `stale` otherwise. The reasons of a stale node compare
the components recorded on its newest DAG-registered version with the current ones:

    code of andon.models.detector changed          (also: is new to the node / is no longer imported /
                                                    is missing / appeared; more than 3 modules of a
                                                    kind: "code of 12 modules changed: a, b, c and 9 more")
    config changed
    dataset detection_synthetic 1a2b3c4d -> 3c4d5e6f   (also: added / removed / has no accepted version /
                                                    has no version yet (made by node X))
    upstream detector retrained                    (its fingerprint changed and it is fresh)
    upstream detector is stale | is missing        (it must run first)
    upstream detector added | removed
    kind changed (fixed -> train)
    no version of NODE was registered by the DAG (version N has no fingerprint)
    no version of NODE in the registry             (missing)

Cascade skew is reported on any state: a version records the upstream versions it was made from
(`upstream.detector=3`); when the same alias (candidate, production) of the upstream node now points
at another version and nobody re-evaluated the pair (andon.dag.lineage.record_reevaluation), the
node is skewed: `skew: predictor@candidate (v2) was made from detector v1, but detector@candidate
is v2 (not re-evaluated): re-evaluate or retrain predictor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from andon.dag.code import MISSING as CODE_MISSING
from andon.dag.fingerprint import Fingerprinter, NodeFingerprint, RecordedComponents
from andon.dag.lineage import ALIASES, Lineage, reevaluated_with
from andon.dag.spec import Dag

FRESH, STALE, MISSING = "fresh", "stale", "missing"
STATES = (FRESH, STALE, MISSING)
CODE_DETAIL_LIMIT = 3  # more changed modules of one kind than this are reported on one line
# kind of code change -> (reason for one module, reason for many: count and names)
_CODE_CHANGES = {
    "changed": ("code of {} changed", "code of {} modules changed: {}"),
    "new": ("code of {} is new to the node (imported since)", "code of {} modules is new to the node: {}"),
    "gone": ("code of {} is no longer imported", "code of {} modules is no longer imported: {}"),
    "missing": ("code of {} is missing", "code of {} modules is missing: {}"),
    "appeared": ("code of {} appeared", "code of {} modules appeared: {}"),
}


@dataclass(frozen=True, slots=True)
class Skew:
    """A version made from an upstream version that the same alias no longer points at."""

    alias: str
    upstream: str
    trained_on: str
    current: str

    def reason(self, node: str, version: str) -> str:
        return (f"skew: {node}@{self.alias} (v{version}) was made from {self.upstream} v{self.trained_on}, but "
                f"{self.upstream}@{self.alias} is v{self.current} (not re-evaluated): re-evaluate or retrain {node}")

    def to_dict(self) -> dict[str, str]:
        return {"alias": self.alias, "upstream": self.upstream, "trained_on": self.trained_on, "current": self.current}

    @classmethod
    def from_dict(cls, doc: Mapping[str, str]) -> Skew:
        return cls(doc["alias"], doc["upstream"], doc["trained_on"], doc["current"])


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """One node's state and why.

    Attributes:
        node, kind: the node.
        state: fresh | stale | missing.
        reasons: what changed (stale), what is missing, and any skew; empty for a fresh node without skew.
        fingerprint: the current fingerprint.
        model_version: the fresh version (fresh), the version compared with (stale), None (missing).
        compared_with: the version whose recorded components the reasons compare with.
        since_version: fresh: the oldest version with this fingerprint (nothing changed since).
        skew: the cascade skews of its versions.
        problems: what keeps it from running (missing dataset or code).
        components: the current fingerprint's components.
        recorded: the components recorded on `compared_with` (or on the fresh version).
    """

    node: str
    kind: str
    state: str
    reasons: tuple[str, ...]
    fingerprint: str
    model_version: str | None
    compared_with: str | None = None
    since_version: str | None = None
    skew: tuple[Skew, ...] = ()
    problems: tuple[str, ...] = ()
    components: NodeFingerprint | None = field(default=None, compare=False)
    recorded: RecordedComponents | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The `andon dag status --json` entry (DESIGN.md contract, plus kind, skew, problems, versions)."""
        return {"node": self.node, "state": self.state, "reasons": list(self.reasons), "fingerprint": self.fingerprint,
                "model_version": self.model_version, "kind": self.kind, "compared_with": self.compared_with,
                "since_version": self.since_version, "skew": [s.to_dict() for s in self.skew],
                "problems": list(self.problems)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> NodeStatus:
        return cls(node=doc["node"], kind=doc.get("kind", ""), state=doc["state"], reasons=tuple(doc["reasons"]),
                   fingerprint=doc["fingerprint"], model_version=doc.get("model_version"),
                   compared_with=doc.get("compared_with"), since_version=doc.get("since_version"),
                   skew=tuple(Skew.from_dict(s) for s in doc.get("skew", ())), problems=tuple(doc.get("problems", ())))


def node_status(fp: NodeFingerprint, lineage: Lineage, states: Mapping[str, str],
                producers: Mapping[str, str] | None = None) -> NodeStatus:
    """The state of one node, given its fingerprint and its upstream nodes' states."""
    versions = lineage.versions(fp.node)
    fresh = lineage.with_fingerprint(fp.node, fp.fingerprint)
    skew, skew_version = _skew(fp.node, lineage, states)
    skew_reasons = tuple(s.reason(fp.node, skew_version[s.alias]) for s in skew)
    if fresh:
        recorded = RecordedComponents.from_tags(fresh[0].tags)
        return NodeStatus(fp.node, fp.kind, FRESH, skew_reasons, fp.fingerprint, str(fresh[0].version),
                          compared_with=str(fresh[0].version), since_version=str(fresh[-1].version), skew=skew,
                          components=fp, recorded=recorded)
    if not versions:
        reasons = (f"no version of {fp.node} in the registry", *fp.problems)
        return NodeStatus(fp.node, fp.kind, MISSING, reasons, fp.fingerprint, None, problems=fp.problems,
                          components=fp)
    compared = lineage.latest_from_dag(fp.node)
    if compared is None:
        newest = versions[0]
        reasons = [f"no version of {fp.node} was registered by the DAG (version {newest.version} has no fingerprint)"]
        recorded = None
        compared_with = str(newest.version)
    else:
        recorded = RecordedComponents.from_tags(compared.tags)
        reasons = stale_reasons(fp, recorded, states, producers or {})
        compared_with = str(compared.version)
    reasons += [p for p in fp.problems if p not in reasons]
    return NodeStatus(fp.node, fp.kind, STALE, (*reasons, *skew_reasons), fp.fingerprint, compared_with,
                      compared_with=compared_with, skew=skew, problems=fp.problems, components=fp, recorded=recorded)


def stale_reasons(fp: NodeFingerprint, recorded: RecordedComponents, states: Mapping[str, str],
                  producers: Mapping[str, str]) -> list[str]:
    """What differs between the current components and those a version recorded, one reason each."""
    reasons: list[str] = []
    if recorded.kind is not None and recorded.kind != fp.kind:
        reasons.append(f"kind changed ({recorded.kind} -> {fp.kind})")
    current_code = dict(fp.code)
    by_kind: dict[str, list[str]] = {kind: [] for kind in _CODE_CHANGES}
    for module in sorted(set(current_code) | set(recorded.code)):
        now, then = current_code.get(module), recorded.code.get(module)
        if then is None:
            by_kind["new"].append(module)
        elif now is None:
            by_kind["gone"].append(module)
        elif now != then:
            kind = "missing" if now == CODE_MISSING else "appeared" if then == CODE_MISSING else "changed"
            by_kind[kind].append(module)
    for kind, modules in by_kind.items():
        one, many = _CODE_CHANGES[kind]
        if len(modules) <= CODE_DETAIL_LIMIT:
            reasons.extend(one.format(m) for m in modules)
        else:  # a refactor touches many modules: one line, `andon dag why` lists them all
            shown = ", ".join(modules[:CODE_DETAIL_LIMIT])
            reasons.append(many.format(len(modules), f"{shown} and {len(modules) - CODE_DETAIL_LIMIT} more"))
    if recorded.config_hash != fp.config_hash:
        reasons.append("config changed")
    current_data = dict(fp.datasets)
    for name in [*current_data, *(n for n in recorded.datasets if n not in current_data)]:
        now, then = current_data.get(name), recorded.datasets.get(name)
        if name not in recorded.datasets:
            reasons.append(f"dataset {name} added")
        elif name not in current_data:
            reasons.append(f"dataset {name} removed")
        elif now is None:
            maker = producers.get(name)
            reasons.append(f"dataset {name} has no version yet (made by node {maker})" if maker
                           else f"dataset {name} has no accepted version")
        elif now != then:
            reasons.append(f"dataset {name} {_short(then)} -> {_short(now)}")
    current_up = dict(fp.upstream)
    for name in [*current_up, *(n for n in recorded.upstream if n not in current_up)]:
        if name not in recorded.upstream:
            reasons.append(f"upstream {name} added")
        elif name not in current_up:
            reasons.append(f"upstream {name} removed")
        elif current_up[name] != recorded.upstream[name]:
            state = states.get(name, STALE)
            reasons.append(f"upstream {name} retrained" if state == FRESH else f"upstream {name} is {state}")
    if not reasons and recorded.fingerprint != fp.fingerprint:
        reasons.append("fingerprint format changed")
    return reasons


def _skew(node: str, lineage: Lineage, states: Mapping[str, str]) -> tuple[tuple[Skew, ...], dict[str, str]]:
    """Skews of the node's aliased versions against the same aliases of the upstream nodes they name."""
    skews: list[Skew] = []
    versions: dict[str, str] = {}
    for alias in ALIASES:
        mine = lineage.by_alias(node, alias)
        if mine is None:
            continue
        recorded = RecordedComponents.from_tags(mine.tags)
        for upstream, trained_on in sorted(recorded.upstream_versions.items()):
            if upstream not in states:
                continue  # not a node of this DAG
            theirs = lineage.by_alias(upstream, alias)
            if theirs is None or str(theirs.version) == str(trained_on):
                continue
            if str(theirs.version) in reevaluated_with(mine.tags, upstream):
                continue
            skews.append(Skew(alias, upstream, str(trained_on), str(theirs.version)))
            versions[alias] = str(mine.version)
    return tuple(skews), versions


def dag_status(dag: Dag, fingerprinter: Fingerprinter, lineage: Lineage) -> list[NodeStatus]:
    """Every node's status, in topological order."""
    known = {name: "" for name in dag.order}  # skew looks only at this DAG's nodes
    states: dict[str, str] = dict(known)
    out: list[NodeStatus] = []
    producers = dag.producers()
    for name in dag.order:
        status = node_status(fingerprinter.fingerprint(name), lineage, states, producers)
        states[name] = status.state
        out.append(status)
    fingerprinter.sources.save()
    return out


def _short(value: str | None) -> str:
    return "none" if value is None else value[:8]

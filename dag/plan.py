"""Impact analysis: what would run, in what order and in which parallel waves, and what must be re-judged.

Without changes, the plan starts from the nodes that are stale or missing now (andon.dag.status);
with `--change NODE` or `--change code:MODULE` it asks "what if this changed?" and needs no
workspace: a changed node, and every node whose code closure holds the module (or a module under a
package prefix), are seeds. Every descendant of a seed runs after it (its upstream fingerprint
changes), so the plan is the seeds and their descendants, in topological order, grouped into waves
whose nodes do not depend on each other. The suites and gates of every node that runs must run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from andon.dag.graph import descendants, downstream_map, waves
from andon.dag.spec import Dag
from andon.errors import BadInput

CODE_PREFIX = "code:"


@dataclass(frozen=True, slots=True)
class PlannedNode:
    """One node of the plan: whether it runs, in which wave, and why."""

    node: str
    action: str  # "run" | "keep"
    wave: int | None
    why: tuple[str, ...]
    state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "action": self.action, "wave": self.wave, "why": list(self.why),
                "state": self.state}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> PlannedNode:
        return cls(doc["node"], doc["action"], doc.get("wave"), tuple(doc.get("why", ())), doc.get("state"))


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run would do (nothing is run to make it)."""

    dag: str
    changes: tuple[str, ...]
    order: tuple[str, ...]
    waves: tuple[tuple[str, ...], ...]
    nodes: tuple[PlannedNode, ...]
    suites: tuple[str, ...]
    gates: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The `andon dag plan --json` document."""
        return {"dag": self.dag, "changes": list(self.changes), "order": list(self.order),
                "waves": [list(w) for w in self.waves], "nodes": [n.to_dict() for n in self.nodes],
                "suites": list(self.suites), "gates": list(self.gates)}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Plan:
        return cls(doc["dag"], tuple(doc["changes"]), tuple(doc["order"]), tuple(tuple(w) for w in doc["waves"]),
                   tuple(PlannedNode.from_dict(n) for n in doc["nodes"]), tuple(doc["suites"]), tuple(doc["gates"]))


def seeds_from_changes(dag: Dag, changes: Sequence[str],
                       code_closure: Callable[[str], Iterable[str]] | None = None,
                       module_exists: Callable[[str], bool] | None = None) -> dict[str, list[str]]:
    """{node: why} for hypothetical changes: node names, or `code:MODULE` (a module or package prefix).

    Args:
        code_closure: a node's code modules (andon.dag.fingerprint.Fingerprinter.code_roots + closure).
        module_exists: whether a module name has a source file (to refuse typos).

    Raises:
        BadInput: for an unknown node, or a module that neither exists nor is imported by any node.
    """
    seeds: dict[str, list[str]] = {}
    for change in changes:
        if change.startswith(CODE_PREFIX):
            module = change[len(CODE_PREFIX):].strip()
            if not module or code_closure is None:
                raise BadInput(f"--change {change!r}: give code:MODULE, e.g. code:andon.models.detector")
            hit = False
            for node in dag.order:
                matched = sorted(m for m in code_closure(node) if m == module or m.startswith(module + "."))
                if matched:
                    hit = True
                    seeds.setdefault(node, []).append(f"code of {matched[0]} changed" if len(matched) == 1
                                                      else f"code of {len(matched)} modules under {module} changed")
            if not hit and module_exists is not None and not module_exists(module):
                raise BadInput(f"--change {change!r}: no module {module} and no node imports one under it; "
                               f"give a module name such as code:andon.models.detector")
        else:
            dag.node(change)  # BadInput naming the nodes when unknown
            seeds.setdefault(change, []).append("changed")
    return seeds


def make_plan(dag: Dag, seeds: Mapping[str, Sequence[str]], changes: Sequence[str] = (),
              states: Mapping[str, str] | None = None) -> Plan:
    """The plan that runs the seeds and everything downstream of them.

    Args:
        seeds: {node: why it must run}.
        changes: the changes the seeds came from (for the record).
        states: current states (fresh/stale/missing) when known.
    """
    upstream = dag.upstream_map()
    down = downstream_map(upstream)
    running = set(seeds) | descendants(upstream, seeds, down)
    grouped = waves(upstream, running, dag.order)
    wave_of = {name: i for i, wave in enumerate(grouped) for name in wave}
    nodes = []
    for name in dag.order:
        why = list(seeds.get(name, ()))
        if name in running:
            why += [f"upstream {up} runs" for up in upstream[name] if up in running]
        nodes.append(PlannedNode(name, "run" if name in running else "keep", wave_of.get(name), tuple(why),
                                 (states or {}).get(name)))
    order = tuple(name for name in dag.order if name in running)
    suites = tuple(dict.fromkeys(s for name in order for s in dag.by_name[name].suites))
    gates = tuple(dict.fromkeys(g for name in order for g in dag.by_name[name].gates))
    return Plan(dag.name, tuple(changes), order, tuple(tuple(w) for w in grouped), tuple(nodes), suites, gates)

"""Moving the MLflow aliases `production` and `previous`: promotion and rollback.

A change of aliases is planned first, as a list of AliasMove (node, alias, before, after), then applied
in the list's order; applying skips an alias already at its `after`, so applying again completes an
interrupted application and otherwise does nothing.

- Promotion: for each node whose candidate version is not production already, `previous` takes the
  current production version, then `production` takes the candidate version (every `previous` before
  any `production`). A crash midway leaves production unchanged or partly moved; promoting the same
  candidate again completes it.
- Rollback: `production` and `previous` swap, so a second rollback rolls forward again. A node without
  `previous` (or without `production`) cannot roll back: BadInput, nothing moves. A swap that stops
  midway leaves both aliases on one version; the release ledger holds the planned moves, and
  `pending_moves` + `apply_moves` finish it (andon.gates.release does so before any new move).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from andon.errors import BadInput
from andon.models.registry import PREVIOUS, PRODUCTION, Registry


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One alias of one registered model moving from version `before` (None: unset) to `after`."""

    node: str
    alias: str
    before: str | None
    after: str

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "alias": self.alias, "before": self.before, "after": self.after}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> AliasMove:
        before = doc.get("before")
        return cls(str(doc["node"]), str(doc["alias"]), None if before is None else str(before), str(doc["after"]))


def plan_promotion(registry: Registry, candidate: Mapping[str, str]) -> list[AliasMove]:
    """The moves that make `candidate` ({node: version}) production; BadInput for an unknown version."""
    if not candidate:
        raise BadInput("an empty candidate cannot be promoted: name at least one node and version")
    previous_moves: list[AliasMove] = []
    production_moves: list[AliasMove] = []
    for node in sorted(candidate):
        version = str(candidate[node])
        registry.resolve(f"{node}@{version}")  # BadInput naming it when there is no such version
        aliases = registry.aliases(node)
        production = aliases.get(PRODUCTION)
        if production == version:
            continue
        if production is not None and aliases.get(PREVIOUS) != production:
            previous_moves.append(AliasMove(node, PREVIOUS, aliases.get(PREVIOUS), production))
        production_moves.append(AliasMove(node, PRODUCTION, production, version))
    return previous_moves + production_moves


def plan_rollback(registry: Registry, nodes: Sequence[str]) -> list[AliasMove]:
    """The moves that swap `production` and `previous` of each node; BadInput when one cannot roll back."""
    if not nodes:
        raise BadInput("name at least one node to roll back")
    production_moves: list[AliasMove] = []
    previous_moves: list[AliasMove] = []
    for node in sorted(set(nodes)):
        aliases = registry.aliases(node)
        production, previous = aliases.get(PRODUCTION), aliases.get(PREVIOUS)
        if previous is None or production is None:
            raise BadInput(f"{node} has no {'previous' if production else 'production'} version, so there is "
                           f"nothing to roll back to (aliases: {aliases or 'none'}); nothing was moved")
        if previous == production:
            raise BadInput(f"{node}'s production and previous are both version {production}: nothing to roll "
                           f"back to; nothing was moved")
        production_moves.append(AliasMove(node, PRODUCTION, production, previous))
        previous_moves.append(AliasMove(node, PREVIOUS, previous, production))
    return production_moves + previous_moves  # production first: it leaves the bad version soonest


def pending_moves(registry: Registry, moves: Sequence[AliasMove]) -> list[AliasMove] | None:
    """The moves not applied yet; None when an alias is at neither its before nor its after.

    None means the aliases moved some other way since: the plan no longer describes them.
    """
    current = {node: registry.aliases(node) for node in {m.node for m in moves}}
    pending = []
    for move in moves:
        now = current[move.node].get(move.alias)
        if now == move.after:
            continue
        if now != move.before:
            return None
        pending.append(move)
    return pending


def apply_moves(registry: Registry, moves: Sequence[AliasMove]) -> list[AliasMove]:
    """Set each alias to its `after`, in order, skipping those already there; returns those written."""
    written = []
    for move in moves:
        if registry.aliases(move.node).get(move.alias) != move.after:
            registry.set_alias(move.node, move.alias, move.after)
            written.append(move)
    return written


def promote(registry: Registry, candidate: Mapping[str, str]) -> list[AliasMove]:
    """Make `candidate` production (the old production becomes previous); returns what moved. Idempotent."""
    moves = plan_promotion(registry, candidate)
    apply_moves(registry, moves)
    return moves


def rollback(registry: Registry, nodes: Sequence[str]) -> list[AliasMove]:
    """Swap production and previous of each node; returns what moved. BadInput when one has no previous."""
    moves = plan_rollback(registry, nodes)
    apply_moves(registry, moves)
    return moves


def production_of(moves: Sequence[AliasMove]) -> dict[str, str]:
    """{node: version} that the moves make production."""
    return {m.node: m.after for m in moves if m.alias == PRODUCTION}

"""Releases and rollbacks: run the line, record the decision in the ledger, move the production aliases.

`andon release NAME` runs the line (andon.gates.line.run_line: dag plan, dag run, suites, simulation,
gates, report) and decides from its result:
- verdict "pass", and approval not required or given: ledger "release", then production moves to the
  candidate versions (previous keeps the old production); exit 0;
- verdict "pass" but awaiting a reviewer's approval: ledger "gate", nothing moves, exit 1;
- otherwise ("fail", "insufficient", anything else): ledger "refuse", nothing moves, exit 1.
The ledger entry is written before the aliases move, under the ledger's lock, with the planned moves;
a crash in between is completed by the next release or rollback (or `andon release status` shows it).
A release does not start on a ledger that fails `andon ledger verify`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from andon.errors import EXIT_CHECK_FAILED, EXIT_OK, BadInput, CheckFailed, InternalError
from andon.gates.approvals import approvals
from andon.gates.ledger import (
    GATE,
    REFUSE,
    RELEASE,
    ROLLBACK,
    Ledger,
    LedgerEntry,
    last_entry,
    normalise_candidate,
    read_entries,
    resolve_who,
    verify,
)
from andon.gates.promotion import (
    AliasMove,
    apply_moves,
    pending_moves,
    plan_promotion,
    plan_rollback,
    production_of,
)
from andon.gates.waivers import active_waivers
from andon.output import info
from andon.workspace import Workspace

PASS = "pass"
ALIAS_ACTIONS = (RELEASE, ROLLBACK)
DECISIONS = (RELEASE, REFUSE, GATE, ROLLBACK)


class LineOutcome(Protocol):
    """What `andon release` reads from the line's result (andon.gates.line.LineResult)."""

    @property
    def report_id(self) -> str: ...
    @property
    def verdict(self) -> str: ...  # "pass" | "fail" | "insufficient"
    @property
    def candidate(self) -> Mapping[str, str]: ...  # {node: version} judged
    @property
    def baseline(self) -> Mapping[str, str] | None: ...  # {node: version} compared with (production)
    @property
    def gate_set(self) -> str: ...
    @property
    def require_approval(self) -> bool: ...
    @property
    def html_path(self) -> str: ...


class LineRunner(Protocol):
    """andon.gates.line.run_line, as `andon release` calls it (dag, gate: None for the defaults)."""

    def __call__(self, workspace: Workspace, name: str, overrides: Sequence[str], *, dag: str | None,
                 gate: str | None) -> LineOutcome: ...


@dataclass(frozen=True, slots=True)
class ReleaseOutcome:
    """What `andon release NAME` decided and did."""

    name: str
    action: str  # release | refuse | gate
    report_id: str
    verdict: str
    candidate: Mapping[str, str]
    baseline: Mapping[str, str] | None
    gate_set: str
    html_path: str
    ledger_seq: int
    moves: tuple[AliasMove, ...] = ()
    approved_by: tuple[str, ...] = ()
    waivers: tuple[Mapping[str, Any], ...] = ()
    resumed_seq: int | None = None  # an interrupted alias move this run completed first

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.action == RELEASE else EXIT_CHECK_FAILED

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "action": self.action, "report_id": self.report_id, "verdict": self.verdict,
                "candidate": dict(self.candidate), "baseline": None if self.baseline is None else dict(self.baseline),
                "gate_set": self.gate_set, "html_path": self.html_path, "ledger_seq": self.ledger_seq,
                "promoted": production_of(self.moves), "moves": [m.to_dict() for m in self.moves],
                "awaiting_approval": self.action == GATE, "approved_by": list(self.approved_by),
                "waivers": [dict(w) for w in self.waivers], "resumed_ledger_seq": self.resumed_seq}


@dataclass(frozen=True, slots=True)
class RollbackOutcome:
    """What `andon release rollback NAME` did (`resumed`: it completed an interrupted rollback instead)."""

    name: str
    moves: tuple[AliasMove, ...]
    ledger_seq: int
    resumed: bool = False
    production: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "moves": [m.to_dict() for m in self.moves], "ledger_seq": self.ledger_seq,
                "resumed": self.resumed, "production": dict(self.production)}


# ----- release -----------------------------------------------------------------------------------------
def release(workspace: Workspace, name: str, overrides: Sequence[str] = (), *, dag: str | None = None,
            gate: str | None = None, who: str | None = None, run_line: LineRunner | None = None) -> ReleaseOutcome:
    """Run the line for `name` and record the decision; promote on pass (and approval when required).

    Args:
        workspace: the workspace.
        name: the release name (the model whose stack is judged).
        overrides: Hydra overrides passed to the line.
        dag: the DAG config (None: the line's default).
        gate: the gate set (None: the line's default).
        who: who releases (else $ANDON_USER, $USER, git's user.name).
        run_line: the line (default: andon.gates.line.run_line).

    Raises:
        CheckFailed: the ledger does not verify (nothing runs).
        InternalError: the line's result names no candidate versions (nothing moves).
    """
    who = resolve_who(who, workspace)
    _require_intact_ledger(workspace)
    if run_line is None:
        from andon.gates.line import run_line as line_runner

        run_line = line_runner
    line = run_line(workspace, name, list(overrides), dag=dag, gate=gate)
    candidate, baseline, report_id = _line_candidate(line), _line_baseline(line), str(line.report_id)
    verdict, gate_set = str(line.verdict), str(line.gate_set)
    waivers = tuple(w.to_dict() for w in active_waivers(workspace, candidate))
    details = {"gate_set": gate_set, "baseline": baseline, "require_approval": bool(line.require_approval),
               "waivers": list(waivers)}
    common = {"name": name, "report_id": report_id, "verdict": verdict, "candidate": candidate,
              "baseline": baseline, "gate_set": gate_set, "html_path": str(line.html_path or ""), "waivers": waivers}
    if verdict != PASS:
        entry = Ledger(workspace).append(REFUSE, name, candidate, who=who, report_id=report_id, verdict=verdict,
                                         details=details)
        return ReleaseOutcome(action=REFUSE, ledger_seq=entry.seq, **common)
    signed = tuple(e.who for e in approvals(workspace, report_id, candidate))
    if line.require_approval and not signed:
        entry = Ledger(workspace).append(GATE, name, candidate, who=who, report_id=report_id, verdict=verdict,
                                         details={**details, "awaiting": "approval"})
        return ReleaseOutcome(action=GATE, ledger_seq=entry.seq, **common)
    from andon.models.registry import Registry

    registry = Registry(workspace)
    with Ledger(workspace).transaction() as writer:
        resumed = finish_interrupted(registry, writer.entries)
        moves = plan_promotion(registry, candidate)
        entry = writer.append(RELEASE, name, candidate, who=who, report_id=report_id, verdict=verdict,
                              details={**details, "approved_by": list(signed),
                                       "moves": [m.to_dict() for m in moves]})
        apply_moves(registry, moves)
    return ReleaseOutcome(action=RELEASE, ledger_seq=entry.seq, moves=tuple(moves), approved_by=signed,
                          resumed_seq=resumed.seq if resumed else None, **common)


def _require_intact_ledger(workspace: Workspace) -> None:
    result = verify(workspace)
    if not result.ok:
        raise CheckFailed(f"the release ledger does not verify ({result.problems[0]}"
                          f"{f'; {len(result.problems) - 1} more' if len(result.problems) > 1 else ''}): nothing "
                          f"ran. `andon ledger verify` lists the problems; restore ledger/ from git or a backup")


def _line_candidate(line: LineOutcome) -> dict[str, str]:
    candidate = getattr(line, "candidate", None)
    if not isinstance(candidate, Mapping) or not candidate:
        raise InternalError(f"the line returned no candidate versions ({candidate!r}); nothing moved")
    try:
        return normalise_candidate(candidate)
    except BadInput as exc:
        raise InternalError(f"the line returned a bad candidate: {exc}; nothing moved") from exc


def _line_baseline(line: LineOutcome) -> dict[str, str] | None:
    baseline = getattr(line, "baseline", None)
    return normalise_candidate(baseline) if isinstance(baseline, Mapping) and baseline else None


def moves_of(entry: LedgerEntry) -> list[AliasMove]:
    """The alias moves a ledger entry planned ([] when it records none or they do not parse)."""
    try:
        return [AliasMove.from_dict(m) for m in entry.details.get("moves") or []]
    except (KeyError, TypeError, AttributeError):
        return []


def finish_interrupted(registry: Any, entries: Sequence[LedgerEntry]) -> LedgerEntry | None:
    """Complete the last release or rollback when its alias moves stopped midway; returns its entry.

    Aliases move only after their ledger entry is written, so the last such entry is the only one that
    can be unfinished. When the aliases moved some other way since, nothing is done.
    """
    last = last_entry(entries, actions=ALIAS_ACTIONS)
    moves = moves_of(last) if last is not None else []
    pending = pending_moves(registry, moves) if moves else None
    if not pending or last is None:
        return None
    apply_moves(registry, pending)
    info(f"completed the interrupted {last.action} of {last.name} recorded in ledger entry {last.seq} "
         f"({', '.join(f'{m.node} {m.alias} -> {m.after}' for m in pending)})")
    return last


# ----- rollback ----------------------------------------------------------------------------------------
def rollback_nodes(entries: Sequence[LedgerEntry], name: str) -> list[str]:
    """The nodes whose production the last release or rollback of `name` moved; else [name]."""
    for entry in reversed(entries):
        if entry.action in ALIAS_ACTIONS and entry.name == name:
            moved = sorted(production_of(moves_of(entry)))
            if moved:
                return moved
    return [name]


def rollback_release(workspace: Workspace, name: str, *, nodes: Sequence[str] = (), who: str | None = None,
                     reason: str | None = None) -> RollbackOutcome:
    """Swap production and previous of the nodes the last release of `name` moved (or `nodes`).

    A rollback of `name` that stopped midway is completed instead of swapping again.

    Raises:
        BadInput: a node has no previous version (nothing moves).
        CheckFailed: the ledger's tail is damaged (nothing moves).
    """
    from andon.models.registry import Registry

    who = resolve_who(who, workspace)
    registry = Registry(workspace)
    with Ledger(workspace).transaction() as writer:
        resumed = finish_interrupted(registry, writer.entries)
        if resumed is not None and resumed.action == ROLLBACK and resumed.name == name:
            moves = moves_of(resumed)
            return RollbackOutcome(name, tuple(moves), resumed.seq, True, production_of(moves))
        targets = list(nodes) or rollback_nodes(writer.entries, name)
        moves = plan_rollback(registry, targets)
        entry = writer.append(ROLLBACK, name, production_of(moves), who=who,
                              details={"moves": [m.to_dict() for m in moves], "nodes": sorted(set(targets)),
                                       "reason": (reason or "").strip() or None})
        apply_moves(registry, moves)
    return RollbackOutcome(name, tuple(moves), entry.seq, False, production_of(moves))


# ----- status ------------------------------------------------------------------------------------------
def release_status(workspace: Workspace, name: str) -> dict[str, Any]:
    """Aliases of `name` and of the nodes of its last decision, that decision, and whether a move is unfinished."""
    from andon.models.registry import Registry

    entries = read_entries(workspace)
    decision = last_entry(entries, name=name, actions=DECISIONS)
    nodes = sorted({name, *(decision.candidate if decision else {})})
    registry = Registry(workspace)
    last_move = last_entry(entries, actions=ALIAS_ACTIONS)
    moves = moves_of(last_move) if last_move else []
    return {"name": name, "nodes": {node: registry.aliases(node) for node in nodes},
            "last_decision": decision.to_dict() if decision else None,
            "interrupted": bool(moves and pending_moves(registry, moves)),
            "ledger_ok": verify(workspace).ok}

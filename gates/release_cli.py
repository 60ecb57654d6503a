"""`andon release ...` and `andon ledger ...`: release, roll back, waive, approve; read and verify the ledger.

    andon release NAME [--dag D] [--gate SET] [--who W] [--json] [overrides ...]
    andon release run NAME ...        the same, for a release named like a subcommand
    andon release rollback NAME [--reviewer R] [--node NODE ...] [--reason TEXT] [--json]
    andon release waive (--report ID | --candidate REF) --gate GATE --reviewer R --reason TEXT [--blocking]
    andon release approve --report ID --reviewer R [--candidate REF] [--reason TEXT] [--json]
    andon release status NAME [--json]
    andon ledger verify [--json]       exit 0 intact, 1 tampered (naming the entry)
    andon ledger show [--name NAME] [--limit N] [--json]

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

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from andon.errors import EXIT_CHECK_FAILED, EXIT_OK, BadInput, CheckFailed, InternalError
from andon.gates.approvals import Approval, approvals, approve, checked_candidate, report_versions
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
    show_candidate,
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
from andon.gates.waivers import Resolver, SeverityLookup, active_waivers, waive
from andon.output import emit_json, info, table
from andon.workspace import Workspace

PASS = "pass"
RUN_COMMAND = "run"
DEFAULT_DAG = "default"
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


def _moves_of(entry: LedgerEntry) -> list[AliasMove]:
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
    moves = _moves_of(last) if last is not None else []
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
            moved = sorted(production_of(_moves_of(entry)))
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
            moves = _moves_of(resumed)
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
    moves = _moves_of(last_move) if last_move else []
    return {"name": name, "nodes": {node: registry.aliases(node) for node in nodes},
            "last_decision": decision.to_dict() if decision else None,
            "interrupted": bool(moves and pending_moves(registry, moves)),
            "ledger_ok": verify(workspace).ok}


# ----- command functions -------------------------------------------------------------------------------
def _overrides(args: argparse.Namespace) -> list[str]:
    tokens = [*args.overrides, *getattr(args, "extras", [])]
    flags = [t for t in tokens if t.startswith("-")]
    if flags:
        raise BadInput(f"unknown option {flags[0]!r} for `andon release NAME`: see `andon release run --help`; "
                       f"line overrides read KEY=VALUE")
    return tokens


def cmd_release(args: argparse.Namespace) -> int:
    workspace = Workspace.open(args.workspace)
    outcome = release(workspace, args.name, _overrides(args), dag=args.dag, gate=args.gate, who=args.who,
                      run_line=args.release_run_line)
    if args.json:
        emit_json(outcome.to_dict())
    else:
        _print_release(outcome)
    if outcome.action == GATE:
        info(f"the gate set requires a reviewer's sign-off: `andon release approve --report {outcome.report_id} "
             f"--reviewer NAME`, then `andon release {outcome.name}` again")
    elif outcome.action == REFUSE:
        info("fix what failed (the report says why), or have reviewers waive a gate (`andon release waive`), "
             "then run the release again")
    return outcome.exit_code


def _print_release(outcome: ReleaseOutcome) -> None:
    said = {RELEASE: "released", REFUSE: "refused; nothing moved", GATE: "awaiting approval; nothing moved"}
    print(f"{outcome.name}: {outcome.verdict.upper()}, {said[outcome.action]} (report {outcome.report_id}, "
          f"ledger entry {outcome.ledger_seq})")
    for move in outcome.moves:
        print(f"  {move.node}: {move.alias} {move.before or '-'} -> {move.after}")
    if outcome.action == RELEASE and not outcome.moves:
        print(f"  already production: {show_candidate(outcome.candidate)}")
    if outcome.html_path:
        print(f"report: {outcome.html_path}")


def cmd_rollback(args: argparse.Namespace) -> int:
    outcome = rollback_release(Workspace.open(args.workspace), args.name, nodes=args.node, who=args.reviewer,
                               reason=args.reason)
    if args.json:
        emit_json(outcome.to_dict())
        return EXIT_OK
    what = "completed the interrupted rollback" if outcome.resumed else "rolled back"
    print(f"{args.name}: {what} (ledger entry {outcome.ledger_seq}); production is now "
          f"{show_candidate(outcome.production)}")
    for move in outcome.moves:
        print(f"  {move.node}: {move.alias} {move.before or '-'} -> {move.after}")
    return EXIT_OK


def dag_resolver(dag: str, config_dirs: Sequence[str] = ()) -> Resolver:
    """A Resolver giving NAME's whole stack in the DAG: NAME and its upstream nodes (andon.gates.candidates)."""

    def resolve(workspace: Workspace, ref: str) -> dict[str, str]:
        from andon.dag.configs import ConfigSession, load_dag
        from andon.gates.candidates import resolve_stack

        with ConfigSession(list(config_dirs)) as session:
            loaded = load_dag(session, dag)
        return dict(resolve_stack(workspace, loaded, ref).versions)

    return resolve


def _resolve(args: argparse.Namespace, workspace: Workspace, ref: str) -> tuple[str, dict[str, str]]:
    """(NAME, {node: version}) of --candidate REF, by the injected resolver or the DAG-aware one."""
    from andon.models.registry import ModelRef

    name = ModelRef.parse(ref).name
    resolver: Resolver = args.release_resolver or dag_resolver(args.dag, args.config_dir)
    return name, normalise_candidate(resolver(workspace, ref))


def _waive_target(args: argparse.Namespace, workspace: Workspace) -> tuple[str, dict[str, str], Any]:
    """(name, candidate versions, the report or None) that `andon release waive` names."""
    if not args.report and not args.candidate:
        raise BadInput("name the candidate: --report ID (the report you read) or --candidate NAME@ALIAS|NAME@VERSION")
    given = _resolve(args, workspace, args.candidate) if args.candidate else None
    if given is not None and not args.report:
        return given[0], given[1], None
    from andon.gates.report_store import load_report

    report = load_report(workspace, args.report)
    versions = checked_candidate(report.report_id, report_versions(report.candidate), given[1] if given else None)
    return str(report.candidate.get("name") or (given[0] if given else ",".join(versions))), versions, report


def cmd_waive(args: argparse.Namespace) -> int:
    workspace = Workspace.open(args.workspace)
    name, versions, report = _waive_target(args, workspace)
    severity: SeverityLookup | None = args.release_severity
    if report is not None:
        severity = lambda gate: report.gate(gate).severity  # noqa: E731  (BadInput naming the report's gates)
    entry, waiver = waive(workspace, name, versions, args.gate, args.reviewer, args.reason, blocking=args.blocking,
                          severity=severity, report_id=report.report_id if report is not None else None)
    if args.json:
        emit_json({**waiver.to_dict(), "ledger_seq": entry.seq})
        return EXIT_OK
    needed = 2 if waiver.blocking else 1
    state = "waived" if waiver.complete else "pending a second, different reviewer"
    print(f"gate {waiver.gate} for {show_candidate(waiver.candidate)}: {state} ({len(waiver.reviewers)} of "
          f"{needed} reviewers: {', '.join(waiver.reviewers)}; ledger entry {entry.seq})")
    if waiver.complete:
        info("the waiver counts for exactly these versions: run the release again to re-judge")
    return EXIT_OK


def cmd_approve(args: argparse.Namespace) -> int:
    workspace = Workspace.open(args.workspace)
    versions = _resolve(args, workspace, args.candidate)[1] if args.candidate else None
    approval: Approval = approve(workspace, args.report, args.reviewer, reason=args.reason, candidate=versions)
    if args.json:
        emit_json(approval.to_dict())
        return EXIT_OK
    said = "approved" if approval.new else "already approved"
    print(f"report {approval.report_id} ({show_candidate(approval.candidate)}): {said} by {approval.reviewer} "
          f"(ledger entry {approval.ledger_seq})")
    info("`andon release NAME` may now promote it")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    status = release_status(Workspace.open(args.workspace), args.name)
    if args.json:
        emit_json(status)
        return EXIT_OK
    rows = [[node, aliases.get("production", "-"), aliases.get("previous", "-"), aliases.get("candidate", "-")]
            for node, aliases in status["nodes"].items()]
    print(table(rows, ["node", "production", "previous", "candidate"]))
    decision = status["last_decision"]
    if decision is None:
        print(f"no release decision for {args.name} in the ledger")
    else:
        print(f"last decision: {decision['action']} ({decision['verdict'] or '-'}) of "
              f"{show_candidate(decision['candidate'])} by {decision['who']} at {decision['time']} "
              f"(ledger entry {decision['seq']}, report {decision['report_id'] or '-'})")
    if status["interrupted"]:
        info("the last alias move stopped midway: `andon release rollback` or the next release completes it")
    if not status["ledger_ok"]:
        info("the release ledger does not verify: `andon ledger verify`")
    return EXIT_OK


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    result = verify(Workspace.open(args.workspace))
    if args.json:
        emit_json(result.to_dict())
    elif result.ok:
        print(f"ledger intact: {result.entries} entries, HEAD at entry {result.head_seq or 0}")
    else:
        print(f"ledger TAMPERED or damaged: {len(result.problems)} problem(s)")
        for problem in result.problems:
            print(f"  - {problem}")
    if not args.json:
        for note in result.notes:
            info(f"note: {note}")
    return EXIT_OK if result.ok else EXIT_CHECK_FAILED


def cmd_ledger_show(args: argparse.Namespace) -> int:
    workspace = Workspace.open(args.workspace)
    entries = [e for e in read_entries(workspace) if args.name is None or e.name == args.name]
    if args.limit is not None:
        entries = entries[-args.limit:] if args.limit > 0 else []
    ok = verify(workspace).ok
    if args.json:
        emit_json({"entries": [e.to_dict() for e in entries], "ledger_ok": ok})
    else:
        rows = [[e.seq, e.time, e.who, e.action, e.name, show_candidate(e.candidate), e.verdict or "-",
                 e.report_id or "-", _detail(e)] for e in entries]
        print(table(rows, ["seq", "time", "who", "action", "name", "candidate", "verdict", "report", "detail"]))
    if not ok:
        info("the release ledger does not verify (edited entries are not shown): `andon ledger verify`")
    return EXIT_OK


def _detail(entry: LedgerEntry) -> str:
    details = entry.details
    if entry.action == "waive":
        return f"gate {details.get('gate')}{' (blocking)' if details.get('blocking') else ''}: {details.get('reason')}"
    if entry.action in ALIAS_ACTIONS:
        return ", ".join(f"{m.node} {m.alias} {m.before or '-'}->{m.after}" for m in _moves_of(entry)) or "-"
    return str(details.get("reason") or details.get("awaiting") or "")


# ----- parsers -----------------------------------------------------------------------------------------
class _NameOrCommand(argparse._SubParsersAction):
    """Subcommands where a word that names none is the NAME of `run`, so `andon release NAME` works."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = None  # any word is accepted; __call__ routes it

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if values and values[0] not in self._name_parser_map:
            values = [RUN_COMMAND, *values]
        super().__call__(parser, namespace, values, option_string)


def register(commands: argparse._SubParsersAction, *, run_line: LineRunner | None = None,
             resolver: Resolver | None = None, severity: SeverityLookup | None = None) -> None:
    """Add `andon release {NAME,run,rollback,waive,approve,status}` to the `andon` parser.

    Args:
        commands: the `andon` parser's subcommands.
        run_line: the line (default: andon.gates.line.run_line, imported when a release runs).
        resolver: resolves --candidate NAME@ALIAS|NAME@VERSION to {node: version} (default: NAME's stack in
            the DAG given by --dag, `dag_resolver`).
        severity: gate name -> "blocking" | "advisory" for waivers named by --candidate (default: --blocking
            only; with --report the report's gate severity is used).
    """
    from andon.cli import add_workspace_arg

    top = commands.add_parser("release", allow_abbrev=False,
                              help="run the line for a candidate and promote it on pass; roll back, waive, approve",
                              description="`andon release NAME` runs the line (dag plan, dag run, suites, "
                                          "simulation, gates, report) and promotes on pass; every decision goes "
                                          "into the release ledger. Exit 0 released, 1 refused or awaiting "
                                          "approval, 2 bad input, 3 internal error.")
    top.register("action", "parsers", _NameOrCommand)
    sub = top.add_subparsers(dest="release_command", metavar="NAME|COMMAND")
    sub.required = True
    hooks = {"release_run_line": run_line, "release_resolver": resolver, "release_severity": severity}

    def command(name: str, func: Any, help_text: str, extras: bool = False) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        add_workspace_arg(p)
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.set_defaults(func=func, accepts_extras=extras, **hooks)
        return p

    p = command(RUN_COMMAND, cmd_release, "release NAME (`andon release NAME` for short): run the line, promote "
                                         "on pass", extras=True)
    p.add_argument("name", help="the release: the model whose stack is judged (e.g. predictor)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="Hydra overrides passed to the line")
    p.add_argument("--dag", metavar="NAME|FILE", help="the DAG config (default: the line's)")
    p.add_argument("--gate", metavar="SET", help="the gate set (default: the line's)")
    p.add_argument("--who", help="who releases (default: $ANDON_USER, else $USER, else git user.name)")

    p = command("rollback", cmd_rollback, "swap production and previous of what the last release of NAME moved")
    p.add_argument("name", help="the release to roll back")
    p.add_argument("--node", action="append", default=[], metavar="NODE",
                   help="roll back this node instead (repeatable)")
    p.add_argument("--reviewer", help="who rolls back (default: $ANDON_USER, else $USER, else git user.name)")
    p.add_argument("--reason", help="why, for the ledger")

    def candidate_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dag", default=DEFAULT_DAG, metavar="NAME|FILE",
                       help="the DAG that --candidate's stack is resolved in (default: %(default)s)")
        p.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                       help="an extra config folder for the DAG (repeatable)")

    p = command("waive", cmd_waive, "waive one gate for one candidate (blocking gates need two reviewers)")
    p.add_argument("--report", metavar="ID", help="the report read: its candidate versions and the gate's "
                                                  "severity are taken from it")
    p.add_argument("--candidate", metavar="NAME@ALIAS|NAME@VERSION",
                   help="the candidate, when no --report is given (NAME's stack in the DAG)")
    p.add_argument("--gate", required=True, help="the gate, as the gate set and the report name it")
    p.add_argument("--reviewer", required=True, help="who waives")
    p.add_argument("--reason", required=True, help="why (at least 10 characters)")
    p.add_argument("--blocking", action="store_true",
                   help="the gate is blocking: two distinct reviewers are needed (implied by --report)")
    candidate_args(p)

    p = command("approve", cmd_approve, "sign off a passing report when the gate set requires approval")
    p.add_argument("--report", required=True, metavar="ID", help="the report (`andon report list`)")
    p.add_argument("--reviewer", required=True, help="who signs off")
    p.add_argument("--candidate", metavar="NAME@ALIAS|NAME@VERSION",
                   help="the candidate meant (checked against the report's)")
    p.add_argument("--reason", help="a note for the ledger")
    candidate_args(p)

    p = command("status", cmd_status, "aliases of NAME's nodes and its last ledger decision")
    p.add_argument("name", help="the release")


def register_ledger(commands: argparse._SubParsersAction) -> None:
    """Add `andon ledger {verify,show}` to the `andon` parser."""
    from andon.cli import add_workspace_arg

    top = commands.add_parser("ledger", help="verify or show the release ledger (append-only, hash-chained)",
                              description="The release ledger: every release decision, hash-chained.",
                              allow_abbrev=False)
    sub = top.add_subparsers(dest="ledger_command", metavar="COMMAND")
    sub.required = True
    for name, func, help_text in (
            ("verify", cmd_ledger_verify, "check the chain: exit 1 naming any edited, removed or reordered entry"),
            ("show", cmd_ledger_show, "list the ledger's entries")):
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        add_workspace_arg(p)
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.set_defaults(func=func, accepts_extras=False)
        if name == "show":
            p.add_argument("--name", help="only this release's entries")
            p.add_argument("--limit", type=int, metavar="N", help="only the last N entries")

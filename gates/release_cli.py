"""`andon release ...` and `andon ledger ...`: release, roll back, waive, approve; read and verify the ledger.

    andon release NAME [--dag D] [--gate SET] [--who W] [--json] [overrides ...]
    andon release run NAME ...        the same, for a release named like a subcommand
    andon release rollback NAME [--reviewer R] [--node NODE ...] [--reason TEXT] [--json]
    andon release waive (--report ID | --candidate REF) --gate GATE --reviewer R --reason TEXT [--blocking]
    andon release approve --report ID --reviewer R [--candidate REF] [--reason TEXT] [--json]
    andon release status NAME [--json]
    andon ledger verify [--json]       exit 0 intact, 1 tampered (naming the entry)
    andon ledger show [--name NAME] [--limit N] [--json]

What a release decides, and how it moves aliases and writes the ledger: andon.gates.release.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from andon.errors import EXIT_CHECK_FAILED, EXIT_OK, BadInput
from andon.gates.approvals import Approval, approve, checked_candidate, report_versions
from andon.gates.ledger import (
    GATE,
    REFUSE,
    RELEASE,
    LedgerEntry,
    normalise_candidate,
    read_entries,
    show_candidate,
    verify,
)
from andon.gates.release import (
    ALIAS_ACTIONS,
    LineRunner,
    ReleaseOutcome,
    moves_of,
    release,
    release_status,
    rollback_release,
)
from andon.gates.waivers import Resolver, SeverityLookup, waive
from andon.output import emit_json, info, table
from andon.workspace import Workspace

RUN_COMMAND = "run"
DEFAULT_DAG = "default"


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
        return ", ".join(f"{m.node} {m.alias} {m.before or '-'}->{m.after}" for m in moves_of(entry)) or "-"
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

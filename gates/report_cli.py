"""`andon report ...`: the safety reviewer's view of gate reports.

    andon report list [--json]                   every stored report: id, verdict, candidate, gate set
    andon report show ID [--json] [--check]      one report's verdict and gates (--check: exit 1 unless pass)
    andon report open ID [--serve] [--port P]    open the HTML page, or serve its folder on localhost
    andon report diff A B [--json]               what changed between two reports

ID is a report id or a unique prefix of one. `list --json` prints a list of
{report_id, candidate, baseline, gate_set, verdict, html_path}: `candidate` is the candidate's label,
"predictor@7" when it is one model of its own name, else "NAME (detector@3, predictor@7)";
`html_path` is absolute. `show --json` prints the report's JSON with its files' paths under "paths".
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import webbrowser
from pathlib import Path
from typing import Any

from andon.errors import EXIT_CHECK_FAILED, EXIT_OK, BadInput
from andon.output import emit_json, info, table

DEFAULT_HOST = "127.0.0.1"


def _workspace(args: argparse.Namespace) -> Any:
    from andon.workspace import Workspace

    return Workspace.open(args.workspace)


# ----- list ------------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from andon.gates.report_store import list_reports

    workspace = _workspace(args)
    entries = list_reports(workspace)
    if args.json:
        emit_json([e.to_dict() for e in entries])
        return EXIT_OK
    rows = [[e.report_id, e.verdict.upper() if e.verdict != "pass" else e.verdict, e.candidate, e.baseline or "-",
             e.gate_set] for e in entries]
    print(table(rows, ["report", "verdict", "candidate", "baseline", "gate set"]))
    info(f"{len(entries)} report(s) in {workspace.root / 'reports'}"
         + ("; `andon report show ID` for one" if entries else "; `andon gate run` writes them"))
    return EXIT_OK


# ----- show ------------------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace) -> int:
    from andon.gates.records import verdict_summary
    from andon.gates.render_markdown import GATE_HEADERS, gate_row, gates_in_display_order
    from andon.gates.report_store import load_report, resolve_report

    workspace = _workspace(args)
    report = load_report(workspace, args.report)
    stored = resolve_report(workspace, report.report_id)
    if args.json:
        emit_json({**report.to_dict(), "paths": stored.paths()})
    else:
        print(f"report {report.report_id}: {report.verdict.upper()} ({verdict_summary(report.gates)})")
        print(f"candidate {report.candidate_label}; baseline {report.baseline_label}; gate set "
              f"{report.gate_set['name']} (config {report.gate_set['config_hash'][:12]}); "
              f"code {str(report.inputs.get('code_version', '-'))[:12]}")
        for note in report.notes:
            print(f"note: {note}")
        print()
        print(table([gate_row(g) for g in gates_in_display_order(report.gates)], GATE_HEADERS))
        flips = report.flips
        print(f"\nflips: {len(flips.get('regressions', []))} regression(s), "
              f"{len(flips.get('improvements', []))} improvement(s); disengagements: {len(report.events)}; "
              f"waivers: {len(report.waivers)}; approvals: {len(report.approvals)}")
        print(f"html: {stored.html_path}\nmarkdown: {stored.markdown_path}\njson: {stored.json_path}")
    if args.check and report.verdict != "pass":
        return EXIT_CHECK_FAILED
    return EXIT_OK


# ----- open ------------------------------------------------------------------------------------------
def has_display(environ: Any = None, platform: str | None = None) -> bool:
    """Whether a web browser can show a page here (a desktop session, macOS or Windows)."""
    environ = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    if platform == "darwin" or platform.startswith("win"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the report folder; requests are logged to stderr in one line each."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        info(f"andon report: {self.address_string()} {format % args}")


def make_server(folder: Path, host: str = DEFAULT_HOST, port: int = 0) -> http.server.ThreadingHTTPServer:
    """An HTTP server of `folder` on host:port (port 0: a free port); not yet serving.

    Raises:
        BadInput: the port cannot be bound (in use, or privileged).
    """
    handler = functools.partial(_QuietHandler, directory=str(folder))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise BadInput(f"cannot serve on {host}:{port} ({exc.strerror or exc}): pass --port 0 for a free port, "
                       "or another --port") from exc


def cmd_open(args: argparse.Namespace) -> int:
    from andon.gates.report_store import load_report, resolve_report

    workspace = _workspace(args)
    report = load_report(workspace, args.report)
    stored = resolve_report(workspace, report.report_id)
    if not stored.html_path.is_file():
        raise BadInput(f"report {report.report_id} has no HTML page at {stored.html_path}: rerun `andon gate run`")
    if args.port is not None and not 0 <= args.port <= 65535:
        raise BadInput(f"--port {args.port} is not a port number (0-65535; 0 picks a free one)")
    if args.serve:
        return _serve(stored.folder, args.host, args.port or 0)
    print(stored.html_path, flush=True)
    if has_display() and webbrowser.open(stored.html_path.as_uri()):
        info(f"opened {report.report_id} ({report.verdict}) in the web browser")
    else:
        info("no display to open a browser here: open the path above, or `andon report open "
             f"{report.report_id} --serve` to serve it over HTTP")
    return EXIT_OK


def _serve(folder: Path, host: str, port: int) -> int:
    server = make_server(folder, host, port)
    bound_host, bound_port = server.server_address[:2]
    print(f"http://{bound_host}:{bound_port}/report.html", flush=True)
    info("serving the report (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        info("stopped serving")
    finally:
        server.server_close()
    return EXIT_OK


# ----- diff ------------------------------------------------------------------------------------------
def cmd_diff(args: argparse.Namespace) -> int:
    from andon.gates.render_markdown import format_number
    from andon.gates.report_store import diff_reports, load_report

    workspace = _workspace(args)
    diff = diff_reports(load_report(workspace, args.a), load_report(workspace, args.b))
    if args.json:
        emit_json(diff.to_dict())
        return EXIT_OK
    verdict_a, verdict_b = diff.verdict
    print(f"{diff.a} -> {diff.b}: verdict {verdict_a} -> {verdict_b}"
          + (" (unchanged)" if verdict_a == verdict_b else " (CHANGED)"))
    for side, changes in diff.models.items():
        for node, (before, after) in changes.items():
            print(f"  {side} {node}: {before or '-'} -> {after or '-'}")
    for key, (before, after) in diff.gate_set.items():
        print(f"  gate set {key}: {before} -> {after}")
    for name in diff.gates_added:
        print(f"  + gate {name}")
    for name in diff.gates_removed:
        print(f"  - gate {name}")
    for gate in diff.gates_changed:
        changes = "; ".join(f"{k} {_cell(v[0], format_number)} -> {_cell(v[1], format_number)}"
                            for k, v in gate["changes"].items() if k != "reason")
        print(f"  ~ gate {gate['name']}: {changes or 'reason changed'}")
    for sign, flips in (("+", diff.flips_added), ("-", diff.flips_removed)):
        for flip in flips:
            print(f"  {sign} {flip['direction'][:-1]} {flip['suite']}/{flip['check']} on {flip['scenario_id']}")
    for sign, waivers in (("+", diff.waivers_added), ("-", diff.waivers_removed)):
        for waiver in waivers:
            print(f"  {sign} waiver of {waiver['gate']} by {', '.join(waiver['reviewers'])}")
    if diff.events["a"] != diff.events["b"]:
        print(f"  disengagements: {diff.events['a']} -> {diff.events['b']}")
    if not diff.changed:
        print("  no differences")
    return EXIT_OK


def _cell(value: Any, fmt: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_cell(v, fmt) for v in value) + "]"
    return fmt(value) if isinstance(value, int | float) or value is None else str(value)


# ----- parser ----------------------------------------------------------------------------------------
def register(commands: argparse._SubParsersAction) -> None:
    """Add `andon report {list,show,open,diff}` to the `andon` parser."""
    from andon.cli import add_workspace_arg

    top = commands.add_parser("report", help="read, open and compare gate reports (safety reviewer)",
                              description="Gate reports: WS/reports/<id>/report.{json,md,html}. "
                                          "ID is a report id or a unique prefix of one.", allow_abbrev=False)
    sub = top.add_subparsers(dest="report_command", metavar="COMMAND")
    sub.required = True

    def command(name: str, func: Any, help_text: str, json_flag: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        add_workspace_arg(p)
        if json_flag:
            p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.set_defaults(func=func, accepts_extras=False)
        return p

    command("list", cmd_list, "every stored report: id, verdict, candidate, baseline, gate set")

    p = command("show", cmd_show, "one report: verdict, each gate's value, bound, interval and margin, paths")
    p.add_argument("report", metavar="ID", help="report id or unique prefix")
    p.add_argument("--check", action="store_true", help="exit 1 unless the verdict is pass (for CI)")

    p = command("open", cmd_open, "open the report's HTML page in a browser, or serve it (--serve)", json_flag=False)
    p.add_argument("report", metavar="ID", help="report id or unique prefix")
    p.add_argument("--serve", action="store_true", help="serve the report's folder over HTTP until Ctrl-C")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to serve on (default: %(default)s)")
    p.add_argument("--port", type=int, default=None, help="port to serve on (default: a free port)")

    p = command("diff", cmd_diff, "what changed between two reports: verdict, gates, flips, waivers, models")
    p.add_argument("a", metavar="A", help="the earlier report (id or unique prefix)")
    p.add_argument("b", metavar="B", help="the later report (id or unique prefix)")

"""The `andon` console script: one entry point, subcommands per user, exit codes per DESIGN.md."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from andon import __version__
from andon.errors import EXIT_INTERNAL, AndonError
from andon.output import emit_json, info
from andon.workspace import ENV_VAR, Workspace, disable_telemetry


def add_workspace_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workspace", metavar="DIR", default=None,
                        help=f"workspace directory (default: ${ENV_VAR}, else ./andon-workspace)")


def _cmd_init(args: argparse.Namespace) -> int:
    workspace, created = Workspace.init(args.directory or args.workspace, remote=args.remote)
    if args.json:
        emit_json({"workspace": str(workspace.root), "created": created})
    else:
        info(f"{'created' if created else 'already a workspace:'} {workspace.root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="andon", allow_abbrev=False,
        description="andon stops the line before a bad autonomous-driving model ships. "
                    "Exit codes: 0 ok/gate passed, 1 check or gate failed, 2 bad input, 3 internal error.")
    parser.add_argument("--version", action="version", version=f"andon {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    init = commands.add_parser("init", help="create a workspace (git + DVC repo with a local remote)",
                               description="Create a workspace: a git + DVC repository holding the catalog, "
                                           "blobs, datasets, the MLflow store, reports and the release ledger. "
                                           "Idempotent.", allow_abbrev=False)
    init.add_argument("directory", nargs="?", help="where to create it (default: --workspace, "
                                                   f"${ENV_VAR}, else ./andon-workspace)")
    add_workspace_arg(init)
    init.add_argument("--remote", help="DVC remote URL (default: a local remote inside the workspace)")
    init.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    init.set_defaults(func=_cmd_init, accepts_extras=False)

    from andon.scenarios.cli import register as register_scenarios

    register_scenarios(commands)
    from andon.simulation.cli import register as register_fleet

    register_fleet(commands)
    from andon.datasets.cli import register as register_datasets

    register_datasets(commands)
    from andon.models.train_cli import register as register_train

    register_train(commands)
    from andon.models.tune_cli import register as register_tune

    register_tune(commands)
    from andon.models.eval_cli import register as register_eval

    register_eval(commands)
    from andon.dag.cli import register as register_dag

    register_dag(commands)
    from andon.simulation.sim_cli import register as register_sim

    register_sim(commands)
    from andon.test_suites.cli import register as register_suite

    register_suite(commands)
    from andon.gates.gate_cli import register as register_gate

    register_gate(commands)
    from andon.gates.report_cli import register as register_report

    register_report(commands)
    from andon.gates.release_cli import register as register_release
    from andon.gates.release_cli import register_ledger

    register_release(commands)
    register_ledger(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    disable_telemetry()
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras and not getattr(args, "accepts_extras", False):
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        args.extras = extras
    except SystemExit as exc:  # argparse's usage errors exit 2, which is our bad-input code too
        return int(exc.code or 0)
    try:
        return int(args.func(args) or 0)
    except AndonError as exc:
        print(f"andon: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("andon: interrupted; stored data is unchanged by the unfinished step", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # fail closed: never a bare traceback for the user
        if os.environ.get("ANDON_DEBUG"):
            traceback.print_exc()
        print(f"andon: internal error ({type(exc).__name__}: {exc}); nothing was passed. "
              f"Set ANDON_DEBUG=1 for the traceback.", file=sys.stderr)
        return EXIT_INTERNAL



"""`andon gate run`: judge a candidate stack with a gate set and write the report (a Hydra app).

    andon gate run --candidate predictor@candidate [--baseline predictor@production] [gate=SET] [--dag NAME|FILE]
                   [--json]

The suites and the simulation the gate set names run for the candidate and the baseline, or are
reused when results of the same inputs are stored; then every gate is evaluated (fail closed) and the
report is written to WS/reports/<report_id>/ (JSON, Markdown, HTML). Exit 0 when the verdict is pass,
1 when it is fail or insufficient, 2 for bad input, 3 for an internal error.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from omegaconf import DictConfig

from andon.errors import EXIT_CHECK_FAILED, EXIT_OK, BadInput
from andon.hydra_app import Flag, flag_overrides
from andon.output import emit_json, info, table

RUN_CONFIG = "gate_run"
RUN_PROG = "andon gate run"
_FLAGS = {"--candidate": Flag("candidate", example="predictor@candidate"),
          "--baseline": Flag("baseline", example="predictor@production"),
          "--gate": Flag("gate", example="default", quote=False),
          "--workspace": Flag("workspace", example="DIR"), "--json": Flag("json", takes_value=False)}


def run_overrides(tokens: Sequence[str]) -> list[str]:
    """The Hydra argv of `andon gate run TOKENS...` (friendly flags become overrides)."""
    return flag_overrides(tokens, _FLAGS)


def run_task(cfg: DictConfig, dag_ref: str | None = None) -> int:
    """The Hydra task: 0 when the verdict is pass, 1 otherwise (`dag_ref`: the --dag given, else cfg.dag)."""
    from andon.dag.context import open_dag
    from andon.dag.status import dag_status
    from andon.gates.line import judge, shared_worker
    from andon.gates.spec import gate_set_from_config
    from andon.workspace import Workspace

    logging.getLogger("andon").setLevel(logging.INFO)
    if not cfg.candidate:
        raise BadInput("no candidate: give --candidate NAME@ALIAS (e.g. predictor@candidate) or NAME@VERSION")
    workspace = Workspace.open(cfg.workspace)
    gate_set = gate_set_from_config(cfg.gate)
    if dag_ref is not None:
        cfg.dag = dag_ref
    with open_dag(str(cfg.dag), str(workspace.root)) as ctx:
        dag = ctx.dag
        statuses = dag_status(ctx.dag, ctx.fingerprinter, ctx.lineage)
    with shared_worker(cfg.worker) as make_worker:
        result = judge(workspace, gate_set, dag, str(cfg.candidate), str(cfg.baseline or ""), make_worker=make_worker,
                       statuses=statuses, fallback_alias=cfg.fallback_alias, rerun=bool(cfg.rerun),
                       device=cfg.device)
    print_result(result, bool(cfg.json))
    return EXIT_OK if result.verdict == "pass" else EXIT_CHECK_FAILED


def print_result(result: object, as_json: bool) -> None:
    """The verdict and the gates on stderr (and the summary document on stdout with --json)."""
    report = result.report  # type: ignore[attr-defined]
    if as_json:
        emit_json({**report.summary(), "html_path": result.html_path,  # type: ignore[attr-defined]
                   "timings_s": {k: round(v, 2) for k, v in result.timings_s.items()}})  # type: ignore[attr-defined]
    rows = [[g.name, g.kind, g.severity, g.outcome.upper() if g.outcome != "pass" else g.outcome,
             "-" if g.value is None else f"{g.value:.4g}", "-" if g.bound is None else f"{g.bound:.4g}",
             "-" if g.interval is None else "[" + ", ".join("-" if v is None else f"{v:.4g}" for v in g.interval) + "]",
             (g.reason[:90] + "...") if len(g.reason) > 90 else g.reason] for g in report.gates]
    info(table(rows, ["gate", "kind", "severity", "outcome", "value", "bound", "interval", "reason"]))
    info(f"verdict: {report.verdict.upper()} — report {report.report_id}: {result.html_path}")  # type: ignore[attr-defined]


def take_dag(tokens: Sequence[str]) -> tuple[str | None, list[str]]:
    """(the DAG given as `--dag D`, `--dag=D` or `dag=D`, the other tokens).

    `dag` is also a config group (configs/dag/), so Hydra reads an override `dag=D` as a choice in the
    defaults list, which gate_run has none of, and refuses it: the value is taken here instead.

    Raises:
        BadInput: --dag without a value, or the DAG given twice.
    """
    found: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(tokens):
        name, eq, value = tokens[i].partition("=")
        if name == "--dag" and not eq:
            if i + 1 >= len(tokens) or tokens[i + 1].startswith("--"):
                raise BadInput("--dag needs a value, e.g. --dag default (a DAG config name or file)")
            found.append(tokens[i + 1])
            i += 1
        elif name in ("--dag", "dag") and eq:
            found.append(value)
        else:
            rest.append(tokens[i])
        i += 1
    if len(found) > 1:
        raise BadInput(f"the DAG is given twice ({', '.join(found)}): give --dag once")
    return (found[0] if found else None), rest


def run_gate(tokens: list[str]) -> int:
    import functools

    from andon.hydra_app import run_hydra_app

    dag, rest = take_dag(tokens)
    task = run_task if dag is None else functools.partial(run_task, dag_ref=dag)
    return run_hydra_app(task, RUN_CONFIG, RUN_PROG, run_overrides(rest))


def register(commands: argparse._SubParsersAction) -> None:
    """Add `andon gate run` to the `andon` parser."""
    from andon.hydra_app import add_hydra_command

    top = commands.add_parser("gate", help="judge a candidate with a gate set and write the report (release engineer)",
                              description="Gates: data, provenance, model metrics, suites, system metrics.",
                              allow_abbrev=False)
    sub = top.add_subparsers(dest="gate_command", metavar="COMMAND")
    sub.required = True
    add_hydra_command(sub, "run", "judge a candidate stack (Hydra app: --candidate REF [--baseline REF] [gate=SET] "
                                  "[--dag NAME|FILE] [--json], --help for more)",
                      "--candidate NAME@ALIAS, --baseline NAME@ALIAS, --dag NAME|FILE, --json, --workspace DIR, "
                      "Hydra overrides",
                      run_gate)

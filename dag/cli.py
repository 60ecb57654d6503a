"""`andon dag ...`: the release engineer's view of the model DAG.

    andon dag status [--dag NAME|FILE] [--json] [--check]   fresh / stale / missing, and why
    andon dag plan [--change NODE|code:MODULE ...] [--json] what would run, in which waves; suites and gates
    andon dag why NODE [--json]                             one node's components, what changed, since when
    andon dag run [NODE ...] [overrides ...]                retrain the stale nodes (a Hydra app)

status, plan and why read source files, configs and the registry only: they import neither torch
nor ray. `run` takes Hydra overrides (`worker=sequential`, `ray.address=auto`, `ray.num_cpus=2`,
`json=true`, `-m`, `--cfg job`, `--help`); bare words are node names.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from andon.errors import EXIT_CHECK_FAILED, EXIT_OK, BadInput
from andon.output import emit_json, info, table

RUN_CONFIG = "dag_run"
WHY_CODE_ROWS = 12
RUN_PROG = "andon dag run"
DEFAULT_DAG = "default"


# ----- status ----------------------------------------------------------------------------------------
def _statuses(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    from andon.dag.context import open_dag
    from andon.dag.status import dag_status

    with open_dag(args.dag, args.workspace, args.config_dir) as ctx:
        return ctx, dag_status(ctx.dag, ctx.fingerprinter, ctx.lineage)


def cmd_status(args: argparse.Namespace) -> int:
    ctx, statuses = _statuses(args)
    if args.json:
        emit_json({"dag": ctx.dag.name, "nodes": [s.to_dict() for s in statuses]})
    else:
        rows = [[s.node, s.kind, s.state.upper() if s.state != "fresh" else s.state, s.model_version or "-",
                 s.fingerprint[:12], _reasons_cell(s.reasons)] for s in statuses]
        print(table(rows, ["node", "kind", "state", "version", "fingerprint", "reasons"]))
        stale = [s.node for s in statuses if s.state != "fresh"]
        info(f"{len(statuses) - len(stale)} fresh, {len(stale)} to run"
             + (f" ({', '.join(stale)}): `andon dag plan` shows the order, `andon dag run` runs them" if stale else ""))
    if args.check and any(s.state != "fresh" or s.skew for s in statuses):
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _reasons_cell(reasons: tuple[str, ...], shown: int = 2) -> str:
    if not reasons:
        return "-"
    more = len(reasons) - shown
    return "; ".join(reasons[:shown]) + (f" (+{more} more: andon dag why)" if more > 0 else "")


# ----- plan ------------------------------------------------------------------------------------------
def cmd_plan(args: argparse.Namespace) -> int:
    from andon.dag.context import open_dag
    from andon.dag.plan import make_plan, seeds_from_changes
    from andon.dag.status import dag_status

    changes = [c for group in args.change for c in group]
    with open_dag(args.dag, args.workspace, args.config_dir, workspace_required=not changes) as ctx:
        fingerprinter = ctx.fingerprinter
        if changes:
            seeds = seeds_from_changes(ctx.dag, changes, code_closure=fingerprinter.closure,
                                       module_exists=lambda m: fingerprinter.sources.path(m) is not None)
            states = None
        else:
            statuses = dag_status(ctx.dag, fingerprinter, ctx.lineage)
            seeds = {s.node: list(s.reasons) or [s.state] for s in statuses if s.state != "fresh"}
            states = {s.node: s.state for s in statuses}
        plan = make_plan(ctx.dag, seeds, changes, states)
    if args.json:
        emit_json(plan.to_dict())
        return EXIT_OK
    if not plan.order:
        print(f"nothing to run: {'no node is affected by ' + ', '.join(changes) if changes else 'every node is fresh'}")
        return EXIT_OK
    for i, wave in enumerate(plan.waves):
        print(f"wave {i}: {', '.join(wave)}")
    rows = [[n.node, n.action, "-" if n.wave is None else n.wave, n.state or "-", _reasons_cell(n.why, 3)]
            for n in plan.nodes]
    print(table(rows, ["node", "action", "wave", "state", "why"]))
    print(f"suites to re-run: {', '.join(plan.suites) or '-'}")
    print(f"gates to re-run:  {', '.join(plan.gates) or '-'}")
    return EXIT_OK


# ----- why -------------------------------------------------------------------------------------------
def why_document(status: Any, recorded_config: Mapping[str, Any] | None) -> dict[str, Any]:
    """One node's explanation: every component, current and recorded, and the config keys that changed."""
    fp, rec = status.components, status.recorded
    rows: list[dict[str, Any]] = []

    def add(component: str, now: str | None, then: str | None) -> None:
        rows.append({"component": component, "current": now, "recorded": then,
                     "changed": rec is not None and now != then})

    code_then = dict(rec.code) if rec else {}
    for module, digest in fp.code:
        add(f"code {module}", digest, code_then.get(module))
    for module in sorted(set(code_then) - {m for m, _ in fp.code}):
        add(f"code {module}", None, code_then[module])
    add("config", fp.config_hash, rec.config_hash if rec else None)
    for name, dataset_id in fp.datasets:
        add(f"dataset {name}", dataset_id, rec.datasets.get(name) if rec else None)
    for name, upstream_fp in fp.upstream:
        add(f"upstream {name}", upstream_fp, rec.upstream.get(name) if rec else None)
    changes = []
    if recorded_config is not None and fp.config is not None:
        changes = config_changes(recorded_config, fp.config)
    return {**status.to_dict(), "components": rows, "config_changes": changes,
            "recorded_upstream_versions": dict(rec.upstream_versions) if rec else {}}


def config_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """[{key, before, after}] over the flattened configs (dotted keys), sorted by key."""
    flat_before, flat_after = _flatten(before), _flatten(after)
    missing = object()
    out = []
    for key in sorted(set(flat_before) | set(flat_after)):
        old, new = flat_before.get(key, missing), flat_after.get(key, missing)
        if old != new:
            out.append({"key": key, "before": None if old is missing else old, "after": None if new is missing else new})
    return out


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def recorded_config(lineage: Any, node: str, version: str | None) -> dict[str, Any] | None:
    """The resolved config a DAG-registered version was made with (its node run's dag/fingerprint.json)."""
    import json

    from andon.dag.lineage import TAG_NODE_RUN

    found = lineage.version(node, version) if version else None
    run_id = found.tags.get(TAG_NODE_RUN) if found is not None else None
    if not run_id:
        return None
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stderr stays readable
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = lineage.client.download_artifacts(run_id, "dag/fingerprint.json", tmp)
            return json.loads(Path(path).read_text()).get("config")
    except Exception:  # an artefact store that lost the file: the explanation is shorter, not wrong
        return None


def cmd_why(args: argparse.Namespace) -> int:
    from andon.dag.context import open_dag
    from andon.dag.status import dag_status

    with open_dag(args.dag, args.workspace, args.config_dir) as ctx:
        ctx.dag.node(args.node)
        statuses = {s.node: s for s in dag_status(ctx.dag, ctx.fingerprinter, ctx.lineage)}
        status = statuses[args.node]
        before = recorded_config(ctx.lineage, args.node, status.compared_with) if status.state == "stale" else None
    doc = why_document(status, before)
    if args.json:
        emit_json(doc)
        return EXIT_OK
    print(f"{status.node} ({status.kind}): {status.state.upper()}  fingerprint {status.fingerprint[:16]}")
    if status.state == "fresh":
        print(f"fresh since version {status.since_version} (latest with this fingerprint: {status.model_version})")
    elif status.state == "stale":
        print(f"changed since version {status.compared_with}:")
    else:
        print("never registered")
    changed = [r for r in doc["components"] if r["changed"]]
    code = [r for r in doc["components"] if r["component"].startswith("code ")]
    code_changed = [r for r in code if r["changed"]]
    shown = code_changed[:WHY_CODE_ROWS] + [r for r in doc["components"] if not r["component"].startswith("code ")]
    version = status.compared_with or "-"
    print(table([[r["component"], _short(r["current"]), _short(r["recorded"]), "CHANGED" if r["changed"] else ""]
                 for r in shown], ["component", "current", f"version {version}", ""]))
    hidden = len(code_changed) - len(code_changed[:WHY_CODE_ROWS])
    print(f"({len(code) - len(code_changed)} code modules unchanged{f', {hidden} more changed' if hidden else ''}; "
          f"--json lists them all)")
    for reason in status.reasons:
        print(f"  - {reason}")
    for change in doc["config_changes"]:
        print(f"  config {change['key']}: {change['before']!r} -> {change['after']!r}")
    if doc["recorded_upstream_versions"]:
        made = ", ".join(f"{k} v{v}" for k, v in sorted(doc["recorded_upstream_versions"].items()))
        print(f"version {version} was made from {made}")
    if not changed and status.state == "stale" and not status.recorded:
        print("  (no recorded components to compare: the version was not registered by the DAG)")
    return EXIT_OK


def _short(value: str | None) -> str:
    return "-" if value is None else value[:12]


# ----- run (Hydra app) -------------------------------------------------------------------------------
def run_task(cfg: DictConfig) -> int:
    """The Hydra task of `andon dag run`: 0 when every selected node ends fresh, 1 otherwise."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from andon.dag.context import open_dag
    from andon.dag.executor import SUMMARY_HEADERS, Executor, summary_rows
    from andon.dag.spec import dag_from_config
    from andon.dag.workers import check_worker

    logging.getLogger("andon").setLevel(logging.INFO)
    dag = dag_from_config(cfg.dag)
    # the app's own search path (hydra.searchpath=[...]) holds the configs the DAG's nodes compose from too
    app_searchpath = [str(p) for p in HydraConfig.get().searchpath] if HydraConfig.initialized() else []
    worker = check_worker(instantiate(cfg.worker))
    with open_dag(dag, cfg.workspace, app_searchpath) as ctx:
        summary = Executor(ctx.dag, ctx.workspace, ctx.fingerprinter, ctx.lineage, worker).run(list(cfg.nodes))
    if cfg.json:
        emit_json(summary.to_dict())
    info(table(summary_rows(summary), SUMMARY_HEADERS))
    info(f"{summary.message} ({summary.duration_s:.1f} s"
         + (f"; Ray started in {summary.worker_start_s:.1f} s" if summary.worker_start_s else "") + ")")
    return EXIT_OK if summary.ok else EXIT_CHECK_FAILED


def split_nodes(tokens: list[str]) -> tuple[list[str], list[str]]:
    """(node names, Hydra arguments): bare words that are not a flag's value are node names."""
    from andon.datasets.cli import _HYDRA_INFO_CHOICES, _HYDRA_VALUE_FLAGS

    nodes: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-"):
            rest.append(token)
            takes_value = token in _HYDRA_VALUE_FLAGS or (token in ("--info", "-i") and i + 1 < len(tokens)
                                                         and tokens[i + 1] in _HYDRA_INFO_CHOICES)
            if takes_value and i + 1 < len(tokens):
                rest.append(tokens[i + 1])
                i += 1
        elif "=" in token:
            rest.append(token)
        else:
            nodes.append(token)
        i += 1
    return nodes, rest


def run_overrides(tokens: list[str]) -> list[str]:
    """The Hydra argv of `andon dag run TOKENS...` (node names become `nodes=[...]`)."""
    from andon.datasets.cli import hydra_argv

    nodes, rest = split_nodes(tokens)
    bad = [n for n in nodes if not n.replace("_", "").replace("-", "").isalnum()]
    if bad:
        raise BadInput(f"{bad[0]!r} is neither a node name nor a Hydra override (KEY=VALUE)")
    if nodes and any(t.split("=", 1)[0] == "nodes" for t in rest):
        raise BadInput("give nodes either as words (andon dag run predictor) or as nodes=[...], not both")
    return hydra_argv([*rest, *([f"nodes=[{','.join(nodes)}]"] if nodes else [])])


def run_dag(tokens: list[str]) -> int:
    from andon.hydra_app import run_hydra_app

    return run_hydra_app(run_task, RUN_CONFIG, RUN_PROG, run_overrides(tokens))


# ----- parser ----------------------------------------------------------------------------------------
def register(commands: argparse._SubParsersAction) -> None:
    """Add `andon dag {status,plan,why,run}` to the `andon` parser."""
    from andon.cli import add_workspace_arg
    from andon.hydra_app import add_hydra_command

    top = commands.add_parser("dag", help="what is stale in the model DAG, why, and retraining it (release engineer)",
                              description="The model DAG: fingerprints, staleness, impact analysis, ordered retraining.",
                              allow_abbrev=False)
    sub = top.add_subparsers(dest="dag_command", metavar="COMMAND")
    sub.required = True

    def command(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        add_workspace_arg(p)
        p.add_argument("--dag", default=DEFAULT_DAG, metavar="NAME|FILE",
                       help="a DAG config (configs/dag/NAME.yaml) or a DAG file (default: %(default)s)")
        p.add_argument("--config-dir", action="append", default=[], metavar="DIR",
                       help="an extra config folder (dag/, model/, dataset/ inside); repeatable")
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.set_defaults(func=func, accepts_extras=False)
        return p

    p = command("status", cmd_status, "each node's state (fresh, stale, missing), version and reasons")
    p.add_argument("--check", action="store_true", help="exit 1 when a node is not fresh or is skewed (for CI)")

    p = command("plan", cmd_plan, "what would run, in what order and waves, and which suites and gates re-run")
    p.add_argument("--change", action="append", nargs="+", default=[], metavar="NODE|code:MODULE",
                   help="plan for a hypothetical change instead of the current staleness: a node, or "
                        "code:MODULE (a module or package, e.g. code:andon.models.detector); repeatable")

    p = command("why", cmd_why, "explain one node: its components, what changed, since which version")
    p.add_argument("node", help="the node")

    add_hydra_command(sub, "run", "retrain the stale nodes in order (Hydra app: NODE... overrides..., --help for more)",
                      "node names and Hydra overrides, e.g. predictor worker=sequential json=true", run_dag)

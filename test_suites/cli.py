"""`andon suite ...`: scenario test suites, for the release engineer.

    andon suite run SUITE [--model REF ...] [--baseline REF ...] [--json] [--workspace DIR] [overrides ...]
    andon suite list [--json]                  the shipped suites (configs/suite/), with descriptions
    andon suite validate SUITE [--json]        schema and metrics of a suite file (exit 1: unknown metric)
    andon suite show RUN_ID [--json]           a stored run
    andon suite runs [--json]                  the stored runs
    andon suite metrics [--json]               the metrics checks can name, their filters and parameters

`run` is a Hydra app (configs/suite_run.yaml), so overrides (`worker=sequential replay.reactive=false
rerun=true`), `-m` sweeps and `--cfg job` work; the friendly forms become overrides: SUITE (the first
bare word) and `suite=X` -> `suite_ref=X`, `--model X` -> `models=[...]`, `--baseline X` ->
`baseline=[...]`, `--json` -> `json=true`, `--workspace W` -> `workspace=W`. Exit codes: 0 the suite
passed, 1 it failed (a blocking check, an empty selection, an unknown metric, a replay error), 2 bad
input, 3 internal error. The human report goes to stderr; `--json` prints the result document on stdout.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from andon.errors import EXIT_CHECK_FAILED, EXIT_OK, BadInput
from andon.hydra_app import Flag, flag_overrides
from andon.output import emit_json, info, table

RUN_CONFIG = "suite_run"
RUN_PROG = "andon suite run"
_FLAGS = {"--model": Flag("models", repeatable=True, example="detector@candidate"),
          "--baseline": Flag("baseline", repeatable=True, example="detector@production"),
          "--workspace": Flag("workspace", example="DIR"), "--json": Flag("json", takes_value=False)}


def run_overrides(tokens: Sequence[str]) -> list[str]:
    """The Hydra argv of `andon suite run TOKENS...` (the bare word, or suite=NAME, is the suite).

    Raises:
        BadInput: a flag without its value, a key given twice, or two suites.
    """
    return flag_overrides(tokens, _FLAGS, bare_key="suite_ref", aliases=("suite",))


# ----- run (Hydra task) --------------------------------------------------------------------------------
def _refs(values: Any, key: str) -> tuple[str, ...]:
    refs = tuple(str(m) for m in values)
    bad = [m for m in refs if "@" not in m or not all(m.split("@", 1))]
    if bad:
        raise BadInput(f"{key}: {bad[0]!r} is not a registry ref: write NAME@ALIAS or NAME@VERSION "
                       f"(e.g. detector@candidate, predictor@3)")
    if len(set(refs)) != len(refs):
        raise BadInput(f"{key}={list(refs)} names a model twice: give each once")
    return refs


def settings_from_config(cfg: DictConfig) -> Any:
    """The typed SuiteRunSettings of a composed `suite_run` config.

    Raises:
        BadInput: a bad model ref or resource value.
    """
    from andon.test_suites.runner import SuiteRunSettings

    if float(cfg.task_cpus) <= 0 or float(cfg.task_gpus) < 0:
        raise BadInput(f"task_cpus={cfg.task_cpus} must be positive and task_gpus={cfg.task_gpus} 0 or more")
    return SuiteRunSettings(models=_refs(cfg.models, "models"),
                            baseline=None if cfg.baseline is None else _refs(cfg.baseline, "baseline"),
                            replay=OmegaConf.to_object(cfg.replay), device=str(cfg.device),
                            allow_stand_ins=bool(cfg.allow_stand_ins), task_cpus=float(cfg.task_cpus),
                            task_gpus=float(cfg.task_gpus), rerun=bool(cfg.rerun), progress=bool(cfg.progress),
                            pictures=bool(cfg.pictures))


def run_task(cfg: DictConfig) -> int:
    """The Hydra task of `andon suite run`: 0 when the suite passed, 1 when it failed."""
    from hydra.utils import instantiate

    from andon.dag.workers import check_worker
    from andon.test_suites.runner import run_suite
    from andon.test_suites.schema import load_suite
    from andon.workspace import Workspace

    logging.getLogger("andon").setLevel(logging.INFO)
    suite = load_suite(str(cfg.suite_ref))
    settings = settings_from_config(cfg)
    workspace = Workspace.open(cfg.workspace)
    run = run_suite(workspace, suite, settings, lambda: check_worker(instantiate(cfg.worker)))
    if run.reused:
        info(f"suite: reusing the stored run {run.doc['run_id']} (same suite, stacks, scenarios, config and code; "
             f"rerun=true replays)")
    return report(run.doc, run.path, bool(cfg.json), run.reused)


def run_suite_command(tokens: list[str]) -> int:
    from andon.hydra_app import run_hydra_app

    return run_hydra_app(run_task, RUN_CONFIG, RUN_PROG, run_overrides(tokens))


# ----- reporting ---------------------------------------------------------------------------------------
def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def status(check: Mapping[str, Any]) -> str:
    """PASS, FAIL (blocking) or WARN (a failed warning check)."""
    if check["passed"]:
        return "PASS"
    return "FAIL" if check["severity"] == "blocking" else "WARN"


def check_rows(doc: Mapping[str, Any]) -> list[list[Any]]:
    baseline = doc.get("baseline_stack") is not None
    rows = []
    for c in doc["checks"]:
        row = [status(c), c["name"], c["metric"], c["scope"], _fmt(c["value"]), f"{c['comparator']} {c['threshold']:g}",
               f"{c['n_failed']}/{c['n_evaluated']}"]
        if baseline:
            row.append(_fmt(c.get("baseline_value")))
        rows.append([*row, c["reason"]])
    return rows


def print_human(doc: Mapping[str, Any], path: Path) -> None:
    """The run on stderr: a line per check (status, value vs threshold, failed/evaluated), flips, errors."""
    verdict = "PASSED" if doc["passed"] else "FAILED"
    info(f"suite {doc['suite']}  run {doc['run_id']}  {verdict}: {doc.get('reason', '')}")
    info(f"candidate: {', '.join(f'{k}={v}' for k, v in sorted((doc.get('stack') or {}).items())) or '-'}  "
         f"({len(doc['scenario_ids'])} scenario(s), {', '.join(doc.get('modes', [])) or 'no replay'})")
    baseline = doc.get("baseline_stack")
    if baseline is not None:
        info(f"baseline:  {', '.join(f'{k}={v}' for k, v in sorted(baseline.items())) or '-'}")
    headers = ["result", "check", "metric", "scope", "value", "threshold", "failed/judged"]
    info(table(check_rows(doc), [*headers, *(["baseline"] if baseline is not None else []), "reason"]))
    flips = doc.get("flips") or {}
    for kind, label in (("regressions", "REGRESSION (baseline passed, candidate fails)"),
                        ("improvements", "improvement (baseline failed, candidate passes)")):
        for flip in flips.get(kind, []):
            info(f"{label}: {flip['check']} on {flip['scenario_id']}: {_fmt(flip['value'])} "
                 f"(baseline {_fmt(flip['baseline_value'])})")
    if baseline is not None and not flips.get("regressions") and not flips.get("improvements"):
        info("no flips: every scenario's verdict is the same for the baseline and the candidate")
    failed = [r for r in doc["results"] if r["passed"] is False and r.get("picture")]
    if failed:
        info(f"{len(failed)} picture(s) of failed checks in {path / 'pictures'}")
    for error in doc.get("errors", []):
        info(f"ERROR {error['scenario_id']}: {error['message']}")
    info(f"result: {path / 'result.json'}  junit: {path / 'junit.xml'}")


def report(doc: Mapping[str, Any], path: Path, as_json: bool, reused: bool) -> int:
    """Print the run (JSON on stdout, or the report on stderr); its exit code."""
    if as_json:
        emit_json({**doc, "result_path": str(path / "result.json"), "junit_path": str(path / "junit.xml"),
                   "reused": reused})
    else:
        print_human(doc, path)
    return EXIT_OK if doc["passed"] else EXIT_CHECK_FAILED


# ----- list / validate / show / runs / metrics ---------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from andon.test_suites.schema import load_suite, suite_names

    entries = []
    for name in suite_names():
        try:
            suite = load_suite(name)
            entries.append({"name": name, "owner": suite.owner, "description": suite.description,
                            "selector": suite.selector.describe(), "checks": [c.name for c in suite.checks],
                            "error": None})
        except BadInput as exc:  # list the others; this one says what is wrong
            entries.append({"name": name, "owner": None, "description": None, "selector": None, "checks": [],
                            "error": str(exc)})
    if args.json:
        emit_json(entries)
        return EXIT_OK
    print(table([[e["name"], e["owner"] or "-", len(e["checks"]), e["selector"] or "-",
                  e["description"] if e["error"] is None else f"INVALID: {e['error']}"] for e in entries],
                ["suite", "owner", "checks", "selects", "description"]))
    info(f"{len(entries)} suites (configs/suite/); run one with `andon suite run NAME --model REF`")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from andon.test_suites.metrics import METRICS
    from andon.test_suites.runner import check_modes
    from andon.test_suites.schema import load_suite

    suite = load_suite(args.suite)
    unknown = [(c.name, c.metric) for c in suite.checks if c.metric not in METRICS]
    problems = [f"check {name}: unknown metric {metric!r} (known: {', '.join(sorted(METRICS))})"
                for name, metric in unknown]
    selected = None
    if args.selection:
        from andon.test_suites.runner import select_scenarios
        from andon.workspace import Workspace

        selected = len(select_scenarios(Workspace.open(args.workspace), suite))
        if selected == 0:
            problems.append(f"the selector ({suite.selector.describe()}) matches no scenario in the catalog")
    doc = {"suite": suite.name, "valid": not problems, "problems": problems, "suite_sha256": suite.sha256,
           "selector": suite.selector.describe(), "checks": [c.name for c in suite.checks],
           "modes": sorted(check_modes(suite)), "scenarios": selected}
    if args.json:
        emit_json(doc)
    else:
        for problem in problems:
            info(f"INVALID: {problem}")
        info(f"suite {suite.name}: {len(suite.checks)} check(s), {doc['selector']}"
             + (f" ({selected} scenario(s) now)" if selected is not None else "")
             + f", replays: {', '.join(doc['modes']) or 'none'}: {'valid' if not problems else 'NOT valid'}")
    return EXIT_OK if not problems else EXIT_CHECK_FAILED


def cmd_show(args: argparse.Namespace) -> int:
    from andon.test_suites.results import load_result, run_dir
    from andon.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    doc = load_result(workspace, args.run_id)
    path = run_dir(workspace, doc["run_id"])
    if args.json:
        emit_json({**doc, "result_path": str(path / "result.json"), "junit_path": str(path / "junit.xml")})
    else:
        print_human(doc, path)
    return EXIT_OK


def cmd_runs(args: argparse.Namespace) -> int:
    from andon.test_suites.results import list_results, run_dir
    from andon.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    entries = [{"run_id": d["run_id"], "suite": d["suite"], "passed": d["passed"], "models": d.get("models"),
                "baseline_models": d.get("baseline_models"), "scenarios": len(d.get("scenario_ids", [])),
                "blocking_failures": d.get("blocking_failures"), "warnings": d.get("warnings"),
                "regressions": len((d.get("flips") or {}).get("regressions", [])),
                "result_path": str(run_dir(workspace, d["run_id"]) / "result.json")} for d in list_results(workspace)]
    if args.json:
        emit_json(entries)
        return EXIT_OK
    print(table([[e["run_id"], e["suite"], "pass" if e["passed"] else "FAIL", ", ".join(e["models"] or []) or "stand-ins",
                  "-" if e["baseline_models"] is None else ", ".join(e["baseline_models"]) or "stand-ins",
                  e["scenarios"], e["blocking_failures"], e["regressions"]] for e in entries],
                ["run_id", "suite", "result", "models", "baseline", "scenarios", "blocking failures", "regressions"]))
    info(f"{len(entries)} suite runs")
    return EXIT_OK


def cmd_metrics(args: argparse.Namespace) -> int:
    from andon.test_suites.metrics import METRICS

    entries = [{"name": m.name, "aggregate": m.aggregate, "mode": m.mode, "unit": m.unit,
                "description": m.description, "filters": sorted(m.filters | {"tags"}), "params": dict(m.params)}
               for m in METRICS.values()]
    if args.json:
        emit_json(entries)
        return EXIT_OK
    print(table([[e["name"], e["unit"], e["aggregate"], e["mode"], ", ".join(e["filters"]),
                  ", ".join(f"{k}={v:g}" for k, v in e["params"].items()) or "-", e["description"]] for e in entries],
                ["metric", "unit", "aggregate", "mode", "filters", "params", "description"]))
    return EXIT_OK


# ----- parser ------------------------------------------------------------------------------------------
def register(commands: argparse._SubParsersAction) -> None:
    """Add `andon suite {run,list,validate,show,runs,metrics}` to the `andon` parser."""
    from andon.cli import add_workspace_arg
    from andon.hydra_app import add_hydra_command

    top = commands.add_parser("suite", help="scenario test suites: per-scenario checks, flips (release engineer)",
                              description="Scenario test suites: checks with thresholds on every selected "
                                          "scenario, evidence, pictures, JUnit, flips against a baseline.",
                              allow_abbrev=False)
    sub = top.add_subparsers(dest="suite_command", metavar="COMMAND")
    sub.required = True
    add_hydra_command(sub, "run", "judge a candidate on a suite (Hydra app: SUITE --model REF [--baseline REF] "
                                  "[--json] overrides..., --help for more)",
                      "SUITE, --model NAME@ALIAS (repeatable), --baseline NAME@production (repeatable), --json, "
                      "--workspace DIR, and Hydra overrides, e.g. worker=sequential rerun=true", run_suite_command)

    def command(name: str, func: Any, help_text: str, workspace: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        if workspace:
            add_workspace_arg(p)
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.set_defaults(func=func, accepts_extras=False)
        return p

    command("list", cmd_list, "the suites shipped in configs/suite/, with owners and descriptions", workspace=False)
    p = command("validate", cmd_validate, "check a suite file: schema, metrics (exit 1 naming an unknown metric)")
    p.add_argument("suite", help="a suite name (configs/suite/NAME.yaml) or the path of a suite file")
    p.add_argument("--selection", action="store_true",
                   help="also count the scenarios the selector matches in the workspace (exit 1 when none)")
    p = command("show", cmd_show, "one stored suite run: checks, flips, errors, pictures")
    p.add_argument("run_id", help="the run id (or a unique prefix of 6+ characters)")
    command("runs", cmd_runs, "the suite runs stored in the workspace")
    command("metrics", cmd_metrics, "the metrics a check can name, with their filters and parameters", workspace=False)

"""`andon sim ...`: the log-replay simulation, for the release engineer.

    andon sim run [--model REF ...] [--scenarios QUERY] [--json] [--workspace DIR] [overrides ...]
    andon sim show SIM_ID [--json]
    andon sim list [--json]

`run` is a Hydra app (configs/sim.yaml), so overrides (`replay.mode=open_loop worker=sequential
ray.num_cpus=2 rerun=true`), `-m` sweeps and `--cfg job` work; the friendly flags become overrides
(`--model X` -> `models=[...]`, `--scenarios Q` -> `scenarios='Q'`, `--json` -> `json=true`,
`--workspace W` -> `workspace=W`). Exit codes: 0 the run completed (disengagements are the gates' to
judge), 1 a scenario errored, 2 bad input (no scenario matches the query), 3 internal error.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from andon.errors import EXIT_CHECK_FAILED, EXIT_OK, BadInput
from andon.hydra_app import Flag, flag_overrides
from andon.output import emit_json, info, table

RUN_CONFIG = "sim"
RUN_PROG = "andon sim run"
_FLAGS = {"--model": Flag("models", repeatable=True, example="detector@candidate"),
          "--scenarios": Flag("scenarios", example="'tag:cut_in'"),
          "--workspace": Flag("workspace", example="DIR"), "--json": Flag("json", takes_value=False)}


def run_overrides(tokens: Sequence[str]) -> list[str]:
    """The Hydra argv of `andon sim run TOKENS...`: friendly flags become overrides, Hydra flags go first.

    Raises:
        BadInput: a flag without its value, or a key given both as a flag and as an override.
    """
    return flag_overrides(tokens, _FLAGS)


# ----- run (Hydra task) --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class RunSettings:
    """The typed settings of one `andon sim run` job (from the composed config)."""

    workspace: str
    models: tuple[str, ...]
    query: str
    max_scenarios: int | None
    replay: Any
    device: str
    allow_stand_ins: bool
    task_cpus: float
    task_gpus: float
    confidence: float
    rerun: bool
    progress: bool
    json: bool

    @classmethod
    def from_config(cls, cfg: DictConfig) -> RunSettings:
        confidence = float(cfg.confidence)
        if not (math.isfinite(confidence) and 0.0 < confidence < 1.0):
            raise BadInput(f"confidence={cfg.confidence} must lie strictly between 0 and 1 (e.g. 0.95)")
        if cfg.max_scenarios is not None and int(cfg.max_scenarios) < 1:
            raise BadInput(f"max_scenarios={cfg.max_scenarios} must be 1 or more (null: every match)")
        if float(cfg.task_cpus) <= 0 or float(cfg.task_gpus) < 0:
            raise BadInput(f"task_cpus={cfg.task_cpus} must be positive and task_gpus={cfg.task_gpus} 0 or more")
        models = tuple(str(m) for m in cfg.models)
        bad = [m for m in models if "@" not in m or not all(m.split("@", 1))]
        if bad:
            raise BadInput(f"model {bad[0]!r} is not a registry ref: write NAME@ALIAS or NAME@VERSION "
                           f"(e.g. detector@candidate, predictor@3)")
        if len(set(models)) != len(models):
            raise BadInput(f"models={list(models)} names a model twice: give each once")
        return cls(workspace=str(cfg.workspace), models=models, query=str(cfg.scenarios or ""),
                   max_scenarios=None if cfg.max_scenarios is None else int(cfg.max_scenarios),
                   replay=OmegaConf.to_object(cfg.replay), device=str(cfg.device),
                   allow_stand_ins=bool(cfg.allow_stand_ins), task_cpus=float(cfg.task_cpus),
                   task_gpus=float(cfg.task_gpus), confidence=confidence, rerun=bool(cfg.rerun),
                   progress=bool(cfg.progress), json=bool(cfg.json))


def select_scenarios(workspace: Any, query: str, max_scenarios: int | None) -> list[Any]:
    """The active scenarios matching `query` (the first `max_scenarios` by id).

    Raises:
        BadInput: nothing matches, naming the query.
    """
    from andon.scenarios.catalog import Catalog

    with Catalog(workspace) as catalog:
        found = catalog.search(query, limit=max_scenarios)
        total = catalog.count(query) if max_scenarios is not None and len(found) == max_scenarios else len(found)
    if not found:
        shown = repr(query) if query else "'' (every active scenario)"
        raise BadInput(f"no scenario matches the query {shown}: check it with `andon scenarios search {query}`"
                       if query else f"no scenario matches the query {shown}: the catalog is empty; add logs "
                       f"with `andon scenarios import` or `andon fleet synth`")
    if total > len(found):
        info(f"sim: replaying the first {len(found)} of {total} matching scenarios (max_scenarios={max_scenarios})")
    return found


def pinned_models(models: Sequence[str], description: Mapping[str, str]) -> list[str]:
    """The models as the stack resolved them (NAME@VERSION), so that every worker loads the same versions
    even if an alias moves mid-run; the given refs when the description names no version."""
    resolved = sorted(value.split()[0] for value in description.values() if "@" in value)  # drop notes
    return resolved if len(resolved) == len(models) else list(models)


def run_task(cfg: DictConfig) -> int:
    """The Hydra task of `andon sim run`: 0 when every scenario replayed, 1 when one errored."""
    from hydra.utils import instantiate

    from andon.dag.workers import check_worker
    from andon.simulation.simulate import simulate
    from andon.workspace import Workspace

    logging.getLogger("andon").setLevel(logging.INFO)
    settings = RunSettings.from_config(cfg)
    workspace = Workspace.open(settings.workspace)
    scenarios = select_scenarios(workspace, settings.query, settings.max_scenarios)
    run = simulate(workspace, settings.models, scenarios, settings.replay,
                   make_worker=lambda: check_worker(instantiate(cfg.worker)), confidence=settings.confidence,
                   rerun=settings.rerun, device=settings.device, allow_stand_ins=settings.allow_stand_ins,
                   task_cpus=settings.task_cpus, task_gpus=settings.task_gpus, progress=settings.progress)
    return report(run.doc, run.path, settings.json, reused=run.reused)


# ----- reporting ---------------------------------------------------------------------------------------
def _km(value: float | None) -> str:
    return "inf" if value is None else f"{value:.3g}"


def tag_rows(doc: Mapping[str, Any]) -> list[list[Any]]:
    """One row for the run ("all") and one per tag: scenarios, km, disengagements, km/dis [low, high], collisions."""
    def row(name: str, m: Mapping[str, Any], n: int) -> list[Any]:
        low, high = m["interval"]
        return [name, n, f"{m['km']:.3f}", m["disengagements"], _km(m["km_per_disengagement"]),
                f"[{_km(low)}, {_km(high)}]", m["collisions"]]

    rows = [row("(all)", doc, len(doc.get("scenarios", [])))]
    rows += [row(tag, m, m["scenarios"]) for tag, m in sorted(doc.get("per_tag", {}).items())]
    return rows


def print_human(doc: Mapping[str, Any], path: Any) -> None:
    """The run's tables on stderr: per tag, then events, then errors."""
    confidence = doc.get("confidence", 0.95)
    info(f"simulation {doc['sim_id']}  {doc.get('mode')}{' reactive' if doc.get('reactive') else ''}  "
         f"stack: {', '.join(f'{k}={v}' for k, v in sorted(doc.get('stack', {}).items()))}")
    info(table(tag_rows(doc), ["tag", "scenarios", "km", "disengagements", "km/disengagement",
                               f"{confidence:.0%} interval", "collisions"]))
    progress = doc.get("progress")
    info(f"jerk RMS {doc.get('jerk_rms_mps3', 0.0):.2f} m/s³, progress "
         f"{'-' if progress is None else f'{progress:.1%}'} of the logged distance")
    if doc.get("events"):
        folder = Path(path).parent
        info(table([[e["scenario_id"], e["time_ns"], e["cause"], e["detail"],
                     folder / e["picture"] if e.get("picture") else "-"] for e in doc["events"]],
                   ["scenario", "time_ns", "cause", "detail", "picture"]))
    for error in doc.get("errors", []):
        info(f"ERROR {error['scenario_id']}: {error['message']}")
    info(f"result: {path}")


def report(doc: Mapping[str, Any], path: Any, as_json: bool, reused: bool) -> int:
    """Print the run (JSON on stdout or tables on stderr); its exit code: 1 when a scenario errored."""
    if as_json:
        emit_json({**doc, "result_path": str(path), "reused": reused})
    else:
        print_human(doc, path)
    if doc.get("errors"):
        info(f"sim: {len(doc['errors'])} scenario(s) errored: the run fails closed")
        return EXIT_CHECK_FAILED
    return EXIT_OK


def run_sim(tokens: list[str]) -> int:
    from andon.hydra_app import run_hydra_app

    return run_hydra_app(run_task, RUN_CONFIG, RUN_PROG, run_overrides(tokens))


# ----- show / list -------------------------------------------------------------------------------------
def cmd_show(args: argparse.Namespace) -> int:
    from andon.simulation.results import load_result, result_path
    from andon.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    doc = load_result(workspace, args.sim_id)
    path = result_path(workspace, doc["sim_id"])
    if args.json:
        emit_json({**doc, "result_path": str(path)})
    else:
        print_human(doc, path)
    return EXIT_OK


def list_entry(doc: Mapping[str, Any], path: Any) -> dict[str, Any]:
    return {key: doc.get(key) for key in ("sim_id", "mode", "reactive", "stack", "models", "km", "disengagements",
                                          "km_per_disengagement", "interval", "collisions")} | {
        "scenarios": len(doc.get("scenario_ids", [])), "errors": len(doc.get("errors", [])), "result_path": str(path)}


def cmd_list(args: argparse.Namespace) -> int:
    from andon.simulation.results import list_results, result_path
    from andon.workspace import Workspace

    workspace = Workspace.open(args.workspace)
    entries = [list_entry(doc, result_path(workspace, doc["sim_id"])) for doc in list_results(workspace)]
    if args.json:
        emit_json(entries)
        return EXIT_OK
    rows = [[e["sim_id"], e["mode"], ", ".join(e["models"] or []) or "stand-ins", e["scenarios"], f"{e['km']:.3f}",
             e["disengagements"], _km(e["km_per_disengagement"]), e["collisions"], e["errors"]] for e in entries]
    print(table(rows, ["sim_id", "mode", "models", "scenarios", "km", "disengagements", "km/disengagement",
                       "collisions", "errors"]))
    info(f"{len(entries)} simulation results")
    return EXIT_OK


# ----- parser ------------------------------------------------------------------------------------------
def register(commands: argparse._SubParsersAction) -> None:
    """Add `andon sim {run,show,list}` to the `andon` parser."""
    from andon.cli import add_workspace_arg
    from andon.hydra_app import add_hydra_command

    top = commands.add_parser("sim", help="log-replay simulation: km per disengagement (release engineer)",
                              description="Replay scenarios through the stack and count disengagements per km.",
                              allow_abbrev=False)
    sub = top.add_subparsers(dest="sim_command", metavar="COMMAND")
    sub.required = True
    add_hydra_command(sub, "run", "replay scenarios through the stack (Hydra app: --model REF --scenarios QUERY "
                                  "[--json] overrides..., --help for more)",
                      "--model NAME@ALIAS (repeatable), --scenarios QUERY, --json, --workspace DIR, and Hydra "
                      "overrides, e.g. replay.mode=open_loop worker=sequential rerun=true", run_sim)

    p = sub.add_parser("show", help="one stored simulation result", allow_abbrev=False,
                       description="Show a stored simulation result: per-tag metrics, events and pictures.")
    add_workspace_arg(p)
    p.add_argument("sim_id", help="the simulation id (or a unique prefix of 6+ characters)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.set_defaults(func=cmd_show, accepts_extras=False)

    p = sub.add_parser("list", help="the stored simulation results", allow_abbrev=False,
                       description="List the simulation results stored in the workspace.")
    add_workspace_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.set_defaults(func=cmd_list, accepts_extras=False)

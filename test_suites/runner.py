"""Running a suite: select scenarios, replay them through the candidate (and baseline) stack, judge, store.

1. The selector picks scenarios from the catalog (a query, explicit ids, or a pinned list), sorted by id.
2. Each check needs a replay mode (its own, or its metric's default). Every stack is replayed once per
   mode needed, through `andon.simulation.runner.run_replays`; the top-level `reduce_checks` runs where
   the replay ran (a Ray worker), computes every check's metric on the trace, and draws a bird's-eye
   picture of the moment each per-scenario check fails (at the evidence's worst frame) into the run's
   `pictures/`. Only metric values travel back.
3. `andon.test_suites.evaluate` judges the checks; flips compare candidate and baseline per scenario.
4. The result is stored in `WS/suites/<run_id>/` (andon.test_suites.results) with a JUnit file; the
   same inputs reuse it unless `rerun`.
Models are pinned to the versions the stack resolved (NAME@VERSION) before any worker loads them, so
an alias that moves mid-run does not mix versions. A scenario whose replay raises is an error: the
suite fails (fail closed) and lists it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from andon.errors import BadInput
from andon.test_suites.evaluate import ScenarioValues, StackValues, evaluate_suite, judge
from andon.test_suites.metrics import METRICS, LogContext, MetricValue, evaluate_metric
from andon.test_suites.schema import PER_SCENARIO, Check, Suite
from andon.workspace import Workspace

if TYPE_CHECKING:
    from andon.dag.workers import Worker
    from andon.scenarios.records import Log, Scenario
    from andon.simulation.trace import ScenarioTrace

log = logging.getLogger("andon.test_suites")
CANDIDATE = "candidate"
BASELINE = "baseline"


# ----- reduce: trace -> metric values (+ pictures), where the replay ran --------------------------------
@dataclass(frozen=True, slots=True)
class ReducePlan:
    """What `reduce_checks` computes on each trace of one (stack, mode) replay."""

    suite: str
    role: str
    checks: tuple[Check, ...]
    pictures: bool = True


def picture_name(role: str, check: str, scenario_id: str) -> str:
    """`pictures/<role>-<check>-<scenario_id>.png`, relative to the run's folder."""
    return f"pictures/{role}-{check}-{scenario_id}.png"


def _draw(plan: ReducePlan, check: Check, value: MetricValue, trace: ScenarioTrace, log_: Log, out_dir: Path) -> str:
    from andon.simulation.pictures import render_moment
    from andon.simulation.results import sweep_in_replayed_frame

    index = value.worst_frame_index
    position = next((i for i, f in enumerate(trace.frames) if f.index == index), 0) if index is not None else 0
    frame = trace.frames[position]
    shown = "no value" if value.value is None else f"{value.value:.3g}"
    title = (f"{plan.suite}.{check.name} ({plan.role}): {check.metric} {shown}, needs {check.comparator} "
             f"{check.threshold:g}")
    name = picture_name(plan.role, check.name, trace.scenario_id)
    render_moment(trace, position, sweep_in_replayed_frame(log_, frame.timestamp_ns, np.asarray(frame.ego_pose)),
                  Path(out_dir) / name, title, value.track_ids)
    return name


def reduce_checks(plan: ReducePlan, trace: ScenarioTrace, log_: Log, out_dir: Path) -> dict[str, Any]:
    """Every check's metric on one trace, and a picture of each failed per-scenario check.

    Top-level and picklable (bind `plan` with functools.partial) so that a Ray worker runs it. A metric
    that raises is recorded as that check's failure on this scenario; a picture that cannot be drawn
    is logged and left out (the verdict stands without it).
    """
    values: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    pictures: dict[str, str] = {}
    stamps = [f.timestamp_ns for f in trace.frames]
    context = LogContext.of(log_, min(stamps), max(stamps)) if stamps else LogContext(dict(log_.meta))
    for check in plan.checks:
        try:
            value = evaluate_metric(METRICS[check.metric], check, trace, context)
        except Exception as exc:  # fail closed: the check fails on this scenario, with the reason
            failures[check.name] = f"{type(exc).__name__}: {exc}"
            continue
        values[check.name] = value.to_dict()
        if plan.pictures and check.scope == PER_SCENARIO and judge(value, check) is False and trace.frames:
            try:
                pictures[check.name] = _draw(plan, check, value, trace, log_, out_dir)
            except Exception as exc:  # a missing picture never changes a verdict
                log.warning("suite: no picture of %s on %s: %s", check.name, trace.scenario_id, exc)
    return {"scenario_id": trace.scenario_id, "mode": trace.mode, "stack": dict(trace.stack), "values": values,
            "failures": failures, "pictures": pictures}


# ----- selection ------------------------------------------------------------------------------------------
def select_scenarios(workspace: Workspace, suite: Suite) -> list[Scenario]:
    """The suite's scenarios, sorted by id (possibly none: the caller fails the suite then).

    Raises:
        BadInput: an explicit or pinned id the catalog lacks (or an ambiguous prefix).
    """
    from andon.scenarios.catalog import Catalog

    with Catalog(workspace) as catalog:
        if suite.selector.kind == "query":
            found = catalog.search(suite.selector.query)
        else:
            found = [catalog.scenario(sid) for sid in suite.selector.ids]
    unique = {s.scenario_id: s for s in found}
    if len(unique) != len(found):
        raise BadInput(f"suite {suite.name}: two selector ids name the same scenario; list each once")
    return [unique[sid] for sid in sorted(unique)]


def check_modes(suite: Suite) -> dict[str, tuple[Check, ...]]:
    """mode -> the checks (with a known metric) judged on replays in that mode."""
    modes: dict[str, list[Check]] = {}
    for check in suite.checks:
        metric = METRICS.get(check.metric)
        if metric is not None:
            modes.setdefault(check.mode or metric.mode, []).append(check)
    return {mode: tuple(checks) for mode, checks in sorted(modes.items())}


# ----- a run ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SuiteRunSettings:
    """How to run a suite (typed, from `andon suite run`'s config).

    Attributes:
        models: the candidate's registry refs (roles not given use stand-ins when allowed).
        baseline: the baseline's refs; None: no baseline ([] is the stand-in stack).
        replay: the replay config (andon.simulation.replay.ReplayConfig); its mode is set per check.
        device, allow_stand_ins, task_cpus, task_gpus: as `andon sim run`.
        rerun: replay again even when the same inputs' result is stored.
        progress: progress bars on stderr.
        pictures: draw a picture of each failed per-scenario check.
    """

    models: tuple[str, ...]
    baseline: tuple[str, ...] | None
    replay: Any
    device: str = "cpu"
    allow_stand_ins: bool = True
    task_cpus: float = 1.0
    task_gpus: float = 0.0
    rerun: bool = False
    progress: bool = True
    pictures: bool = True


@dataclass(frozen=True, slots=True)
class SuiteRun:
    """A finished (or reused) run: its document, its folder, and whether it was reused."""

    doc: dict[str, Any]
    path: Path
    reused: bool


def _stack_values(outcomes: Sequence[Any], into: StackValues, mode: str) -> dict[str, str]:
    """Merge one mode's reduce outputs (or ReplayErrors) into `into`; returns the stack description seen."""
    from andon.simulation.runner import ReplayError

    stack: dict[str, str] = {}
    for outcome in outcomes:
        if isinstance(outcome, ReplayError):
            previous = into.errors.get(outcome.scenario_id)
            message = f"{mode}: {outcome.message}"
            into.errors[outcome.scenario_id] = message if previous is None else f"{previous}; {message}"
            continue
        sid = outcome["scenario_id"]
        scenario = into.scenarios.setdefault(sid, ScenarioValues(sid))
        scenario.values.update({name: MetricValue.from_dict(doc) for name, doc in outcome["values"].items()})
        scenario.failures.update(outcome["failures"])
        scenario.pictures.update(outcome["pictures"])
        stack = stack or dict(outcome["stack"])
    return stack


def run_suite(workspace: Workspace, suite: Suite, settings: SuiteRunSettings,
              make_worker: Callable[[], Worker]) -> SuiteRun:
    """Run `suite` for the candidate (and baseline) and store the result (module docstring).

    Args:
        workspace: the catalog, the registry and where results go.
        suite: the loaded suite.
        settings: models, baseline, replay config and options.
        make_worker: builds the worker the replays run on (called only when something must be replayed;
            shut down here).

    Raises:
        BadInput: a bad model ref or a selector id the catalog lacks.
    """
    import functools

    from andon.dag.spec import Resources
    from andon.dag.workers import SequentialWorker
    from andon.models.lineage import code_version
    from andon.simulation.runner import cached_stack, clear_stack_cache, run_replays
    from andon.simulation.sim_cli import pinned_models
    from andon.test_suites import results as res
    from andon.test_suites.junit import junit_xml

    scenarios = select_scenarios(workspace, suite)
    scenario_ids = [s.scenario_id for s in scenarios]
    modes = check_modes(suite)
    stacks: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {}  # role -> (pinned models, description)
    for role, refs in ((CANDIDATE, settings.models), (BASELINE, settings.baseline)):
        if refs is None:
            continue
        description = dict(cached_stack(workspace, refs, settings.device, settings.allow_stand_ins).description)
        stacks[role] = (tuple(pinned_models(refs, description)), description)
    replay_configs = {mode: dataclasses.replace(settings.replay, mode=mode) for mode in modes}
    inputs = res.run_inputs(suite.sha256, suite.name, stacks[CANDIDATE][1],
                            stacks[BASELINE][1] if BASELINE in stacks else None, scenario_ids,
                            {m: dataclasses.asdict(c) for m, c in replay_configs.items()}, code_version())
    run_id = res.run_id_for(inputs)
    stored = None if settings.rerun else res.stored_result(workspace, run_id)
    if stored is not None:
        log.info("suite: reusing the stored run %s (same suite, stacks, scenarios, config and code)", run_id)
        return SuiteRun(stored, res.run_dir(workspace, run_id), True)

    values = {role: StackValues() for role in stacks}
    staging = res.staging_dir(workspace, run_id)
    worker = make_worker() if scenarios and modes else None
    try:
        if worker is not None and not isinstance(worker, SequentialWorker):
            clear_stack_cache()  # the workers load their own; the driver does not keep the weights
        for role, (pinned, _) in stacks.items():
            for mode, checks in modes.items():
                if worker is None:
                    break
                log.info("suite %s: replaying %d scenario(s) %s for the %s", suite.name, len(scenarios), mode, role)
                plan = ReducePlan(suite.name, role, checks, settings.pictures)
                outcomes = run_replays(workspace, scenarios, pinned, replay_configs[mode], worker,
                                       functools.partial(reduce_checks, plan), staging, settings.progress,
                                       device=settings.device, allow_stand_ins=settings.allow_stand_ins,
                                       resources=Resources(num_cpus=settings.task_cpus, num_gpus=settings.task_gpus))
                _stack_values(outcomes, values[role], mode)
        judged = evaluate_suite(suite, scenario_ids, values[CANDIDATE], values.get(BASELINE))
        doc = result_document(run_id, inputs, suite, settings, stacks, judged)
        path = res.publish(workspace, staging, doc, junit_xml(doc))
    except BaseException:
        res.discard(staging)
        raise
    finally:
        if worker is not None:
            worker.shutdown()
    return SuiteRun(res.stored_result(workspace, run_id) or doc, path, False)


def result_document(run_id: str, inputs: Mapping[str, Any], suite: Suite, settings: SuiteRunSettings,
                    stacks: Mapping[str, tuple[tuple[str, ...], dict[str, str]]],
                    judged: Mapping[str, Any]) -> dict[str, Any]:
    """The result file's document (contracts: "Suite files and results").

    `models` / `baseline_models` are the versions judged (NAME@VERSION, as the stacks resolved them);
    `model_refs` / `baseline_model_refs` the references as given (aliases).
    """
    from andon.test_suites import results as res

    baseline = stacks.get(BASELINE)
    doc = {
        "result_version": res.RESULT_VERSION, "run_id": run_id, "suite": suite.name, "suite_sha256": suite.sha256,
        "owner": suite.owner, "description": suite.description, "selector": suite.selector.to_dict(),
        "suite_definition": suite.to_dict(),
        "models": list(stacks[CANDIDATE][0]), "model_refs": list(settings.models), "stack": stacks[CANDIDATE][1],
        "baseline_models": None if baseline is None else list(baseline[0]),
        "baseline_model_refs": None if settings.baseline is None else list(settings.baseline),
        "baseline_stack": None if baseline is None else baseline[1],
        "scenario_ids": list(inputs["scenario_ids"]), "modes": sorted(inputs["replay"]), "replay": inputs["replay"],
        "code_version": inputs["code_version"], **judged,
    }
    return res.clean(doc)

"""The line: judge a candidate stack (suites, simulation, gates, report), and run the DAG before it.

`judge` is `andon gate run`: resolve the candidate stack (a DAG node at an alias and its upstream
nodes) and the baseline (the same node at production), run — or reuse, by content id — the suites
and the closed-loop simulation the gate set names, for both, evaluate every gate (fail closed), and
write the report. `run_line` is what `andon release NAME` runs first: `dag plan` → `dag run` of
NAME's stale nodes (with the DAG overrides given) → `judge`.

One worker serves the whole line: with `worker=ray` a local Ray is started once (or a cluster joined)
and every DAG node, suite and simulation task runs on it; it is shut down at the end.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from andon.errors import BadInput, CheckFailed
from andon.output import info
from andon.workspace import Workspace

log = logging.getLogger("andon.gates")

DEFAULT_SIM_QUERY = "tag:synthetic"
RUN_CONFIG = "dag_run"


@dataclass(frozen=True, slots=True)
class LineResult:
    """What a judgement (and the line) produced; `andon release` reads the first seven fields.

    Attributes:
        report_id: the report's content id.
        verdict: pass | fail | insufficient.
        candidate: {node: version} judged.
        baseline: {node: version} compared with (production), or None before a first release.
        gate_set: the gate set's name.
        require_approval: the gate set asks for a reviewer's sign-off before promotion.
        html_path: the report's HTML page.
        report: the GateReport.
        dag_summary: the DAG run's summary (run_line), or None.
        timings_s: seconds per stage.
    """

    report_id: str
    verdict: str
    candidate: Mapping[str, str]
    baseline: Mapping[str, str] | None
    gate_set: str
    require_approval: bool
    html_path: str
    report: Any = None
    dag_summary: Any = None
    timings_s: Mapping[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def shared_worker(worker_cfg: Any) -> Iterator[Callable[[], Any]]:
    """A factory of the configured worker, with Ray started once for all of them (shut down after)."""
    from hydra.utils import instantiate

    from andon.dag.workers import RayWorker, check_worker, start_ray

    started = False
    probe = check_worker(instantiate(worker_cfg))
    if isinstance(probe, RayWorker):
        import ray

        if not ray.is_initialized():
            seconds = start_ray(probe.address, probe.num_cpus, probe.num_gpus, probe.include_dashboard)
            started = probe.address is None
            info(f"line: Ray {'started' if probe.address is None else 'joined'} in {seconds:.1f} s")
    try:
        yield lambda: check_worker(instantiate(worker_cfg))
    finally:
        if started:
            import ray

            ray.shutdown()


def _sim_query(gate_set: Any) -> str:
    queries = {gate.scenarios for gate in gate_set.gates if gate.kind == "system_metric" and gate.scenarios}
    if len(queries) > 1:
        raise BadInput(f"the system-metric gates of gate set {gate_set.name} replay different scenarios "
                       f"{sorted(queries)}: give them one `scenarios` query")
    return queries.pop() if queries else DEFAULT_SIM_QUERY


def _suite_names(gate_set: Any) -> list[str]:
    return sorted({name for gate in gate_set.gates if gate.kind == "suite" for name in gate.suites})


def judge(workspace: Workspace, gate_set: Any, dag: Any, candidate_ref: str, baseline_ref: str = "", *,
          make_worker: Callable[[], Any], statuses: Sequence[Any] | None = None, fallback_alias: str | None = None,
          rerun: bool = False, device: str | None = None, config_dirs: Sequence[str] = ()) -> LineResult:
    """Judge `candidate_ref` with `gate_set` and write the report (module docstring).

    Args:
        workspace: the workspace.
        gate_set: the loaded gate set (andon.gates.spec.load_gate_set).
        dag: the Dag the stacks are read from.
        candidate_ref: NAME@ALIAS or NAME@VERSION of a node of `dag`.
        baseline_ref: the baseline's reference; empty: NAME@production (none before a first release).
        make_worker: builds the worker suites and simulations replay on.
        statuses: the DAG's node statuses when the caller composed the DAG itself (with overrides), so
            that the provenance gate judges that DAG; None: the gate opens its DAG by name.
        fallback_alias, rerun, device, config_dirs: as `andon gate run`.

    Raises:
        BadInput: a bad reference, or nothing for the simulation to replay.
    """
    from andon.gates import report_build
    from andon.gates.candidates import resolve_baseline, resolve_stack
    from andon.gates.evaluate import evaluate_gates
    from andon.gates.evidence import Evidence
    from andon.gates.report_store import write_report
    from andon.gates.waivers import active_waivers, report_waivers
    from andon.models.lineage import code_version

    timings: dict[str, float] = {}
    started = time.perf_counter()
    candidate = resolve_stack(workspace, dag, candidate_ref, fallback_alias)
    baseline = resolve_baseline(workspace, dag, candidate.node, baseline_ref)
    info(f"line: candidate {candidate_ref} = {', '.join(candidate.models())}; baseline "
         + (", ".join(baseline.models()) if baseline else "none (first release)"))
    notes: list[str] = []
    if candidate.fallbacks:
        notes.append(f"nodes {', '.join(candidate.fallbacks)} had no version at the candidate's alias and were "
                     f"taken at {candidate.fallback_alias}")

    suites, suite_inputs, flips = {}, [], {"regressions": [], "improvements": []}
    begin = time.perf_counter()
    for name in _suite_names(gate_set):
        try:
            run = _run_suite(workspace, name, candidate.models(), baseline.models() if baseline else None,
                             make_worker, rerun, device)
        except Exception as exc:  # fail closed: the suite gate sees no document and fails, saying so
            log.warning("suite %s could not run: %s", name, exc)
            notes.append(f"suite {name} could not run ({type(exc).__name__}: {exc}); its gate fails")
            continue
        suites[name] = run.doc
        suite_inputs.append({"run_id": run.doc["run_id"], "suite": name, "passed": bool(run.doc["passed"]),
                             "path": str(run.path)})
        for key, rows in report_build.flips_from_suite(run.doc).items():
            flips[key].extend({**row, "suite": name} for row in rows)
    timings["suites"] = time.perf_counter() - begin

    begin = time.perf_counter()
    sims = {}
    needs_sim = any(gate.kind == "system_metric" for gate in gate_set.gates)
    if needs_sim:
        from andon.simulation.sim_cli import select_scenarios

        scenarios = select_scenarios(workspace, _sim_query(gate_set), None)
        for side, stack in (("candidate", candidate), ("baseline", baseline)):
            if stack is None:
                continue
            try:
                sims[side] = _run_sim(workspace, stack.models(), scenarios, make_worker, rerun, device)
            except Exception as exc:  # fail closed: the system gates see no document and fail
                log.warning("simulation of the %s could not run: %s", side, exc)
                notes.append(f"the {side}'s simulation could not run ({type(exc).__name__}: {exc})")
    timings["simulation"] = time.perf_counter() - begin

    begin = time.perf_counter()
    waivers = active_waivers(workspace, dict(candidate.versions))
    evidence = Evidence(workspace, dict(candidate.versions), dict(baseline.versions) if baseline else None,
                        suites, sims["candidate"].doc if "candidate" in sims else None,
                        sims["baseline"].doc if "baseline" in sims else None, config_dirs=tuple(config_dirs),
                        rerun=rerun, device=device)
    if statuses is not None:
        for gate in gate_set.gates:
            if gate.kind == "provenance":
                evidence.statuses[gate.dag] = list(statuses)
    results = evaluate_gates(workspace, gate_set, candidate, baseline, waivers=waivers, evidence=evidence)
    timings["gates"] = time.perf_counter() - begin

    begin = time.perf_counter()
    severities = {gate.name: gate.severity for gate in gate_set.gates}
    events = report_build.events_from_simulation(sims["candidate"].doc) if "candidate" in sims else []
    simulations = [{"side": side, "sim_id": run.doc["sim_id"], "path": str(run.path),
                    "sensor_approximation": _approximations(run.doc)} for side, run in sorted(sims.items())]
    inputs = {"code_version": code_version(), "suites": suite_inputs, "simulations": simulations,
              "seeds": {"bootstrap": gate_set.seed}, "resamples": gate_set.resamples,
              "confidence": gate_set.confidence, "dag": dag.name,
              "datasets": sorted({d["dataset_id"] for r in results for d in r.inputs.get("datasets", [])
                                  if isinstance(d, Mapping) and d.get("dataset_id")})}
    report = report_build.build_report(
        workspace, candidate={"name": candidate_ref, "models": candidate.references()}, gate_set=gate_set.name,
        gate_config=gate_set.to_dict(), gates=results, inputs=inputs,
        baseline=None if baseline is None else {"name": baseline.ref, "models": baseline.references()},
        flips=flips, events=events, waivers=report_waivers(waivers, severities),
        mlflow_runs=_mlflow_runs(workspace, candidate, baseline), notes=notes)
    stored = write_report(workspace, report)
    timings["report"] = time.perf_counter() - begin
    timings["total"] = time.perf_counter() - started
    return LineResult(report.report_id, report.verdict, dict(candidate.versions),
                      dict(baseline.versions) if baseline else None, gate_set.name, gate_set.require_approval,
                      str(stored.html_path), report, None, timings)


def _approximations(doc: Mapping[str, Any]) -> str:
    found = sorted({s.get("sensor_approximation") or "" for s in doc.get("scenarios", [])} - {""})
    return "; ".join(found)


def _run_suite(workspace: Workspace, name: str, models: Sequence[str], baseline: Sequence[str] | None,
               make_worker: Callable[[], Any], rerun: bool, device: str | None) -> Any:
    from andon.simulation.replay import ReplayConfig
    from andon.test_suites.runner import SuiteRunSettings, run_suite
    from andon.test_suites.schema import load_suite

    settings = SuiteRunSettings(models=tuple(models), baseline=None if baseline is None else tuple(baseline),
                                replay=ReplayConfig(), device=device or "cpu", rerun=rerun)
    return run_suite(workspace, load_suite(name), settings, make_worker)


def _run_sim(workspace: Workspace, models: Sequence[str], scenarios: Sequence[Any],
             make_worker: Callable[[], Any], rerun: bool, device: str | None) -> Any:
    from andon.simulation.replay import ReplayConfig
    from andon.simulation.simulate import simulate

    return simulate(workspace, list(models), scenarios, ReplayConfig(), make_worker=make_worker, rerun=rerun,
                    device=device or "cpu")


def _mlflow_runs(workspace: Workspace, candidate: Any, baseline: Any) -> list[dict[str, Any]]:
    """The MLflow run of each model version judged, with a link for the tracking UI (when it is a server)."""
    from andon.dag.lineage import Lineage

    lineage = Lineage(workspace)
    uri = str(workspace.mlflow_tracking_uri)
    runs = []
    for stack in (candidate, baseline):
        if stack is None:
            continue
        for node, version in sorted(stack.versions.items()):
            found = next((v for v in lineage.versions(node) if str(v.version) == str(version)), None)
            run_id = getattr(found, "run_id", None) if found is not None else None
            if not run_id:
                continue
            url = (f"{uri.rstrip('/')}/#/models/{node}/versions/{version}" if uri.startswith("http")
                   else f"mlflow ui --backend-store-uri {uri}: model {node} version {version}, run {run_id}")
            runs.append({"model": node, "version": str(version), "run_id": run_id, "url": url})
    return runs


# ----- the release line ------------------------------------------------------------------------------
def run_line(workspace: Workspace, name: str, overrides: Sequence[str], *, dag: str | None = None,
             gate: str | None = None, fallback_alias: str | None = None, rerun: bool = False,
             device: str | None = None, config_dirs: Sequence[str] = ()) -> LineResult:
    """`andon release NAME`'s line: dag plan → dag run (NAME's stale nodes) → suites → simulation → gates → report.

    Args:
        workspace: the workspace.
        name: the DAG node released (its stack: the node and its upstream nodes, at `candidate`).
        overrides: Hydra overrides of `andon dag run`'s config (dag.nodes.detector.overrides=[...],
            worker=sequential, ray.num_cpus=2); the DAG they compose is the one judged for provenance.
        dag: the DAG config (default: dag_run.yaml's).
        gate: the gate set (default: `default`).
        fallback_alias, rerun, device, config_dirs: as `andon gate run`.

    Raises:
        CheckFailed: a node of the DAG run failed (nothing is judged: the report would judge stale models).
        BadInput: bad overrides, an unknown node or gate set.
    """
    from andon.dag.configs import ConfigSession, to_plain
    from andon.dag.context import open_dag
    from andon.dag.executor import Executor
    from andon.dag.spec import dag_from_config
    from andon.dag.status import dag_status
    from andon.gates.spec import load_gate_set

    timings: dict[str, float] = {}
    gate_set = load_gate_set(gate or "default", config_dirs)
    composed = [*([f"dag={dag}"] if dag else []), *overrides, f"workspace={workspace.root}"]
    with ConfigSession(config_dirs) as session:
        cfg = session.compose_config(RUN_CONFIG, composed)
        loaded = dag_from_config(to_plain(cfg, "the DAG")["dag"])
        worker_cfg = cfg.worker
    if name not in loaded.order:
        raise BadInput(f"{name!r} is not a node of DAG {loaded.name} (nodes: {', '.join(loaded.order)})")
    with shared_worker(worker_cfg) as make_worker:
        begin = time.perf_counter()
        with open_dag(loaded, str(workspace.root), list(config_dirs)) as ctx:
            before = dag_status(ctx.dag, ctx.fingerprinter, ctx.lineage)
            stale = [s.node for s in before if s.state != "fresh"]
            info(f"line: dag plan: {', '.join(stale) if stale else 'every node is fresh'}")
            summary = Executor(ctx.dag, ctx.workspace, ctx.fingerprinter, ctx.lineage, make_worker()).run([name])
            info(f"line: dag run: {summary.message}")
            if not summary.ok:
                raise CheckFailed(f"the DAG run failed ({summary.message}): nothing was judged or promoted; "
                                  f"`andon dag status` says which node and why")
            ctx.fingerprinter = type(ctx.fingerprinter)(ctx.dag, ctx.workspace, ctx.session)
            ctx._lineage = None
            statuses = dag_status(ctx.dag, ctx.fingerprinter, ctx.lineage)
        timings["dag"] = time.perf_counter() - begin
        result = judge(workspace, gate_set, loaded, f"{name}@candidate", make_worker=make_worker, statuses=statuses,
                       fallback_alias=fallback_alias, rerun=rerun, device=device, config_dirs=config_dirs)
    return LineResult(result.report_id, result.verdict, result.candidate, result.baseline, result.gate_set,
                      result.require_approval, result.html_path, result.report, summary,
                      {**timings, **result.timings_s})


def report_paths(result: LineResult) -> dict[str, str]:
    html = Path(result.html_path)
    return {"html": str(html), "markdown": str(html.with_name("report.md")), "json": str(html.with_name("report.json"))}

"""The gate evaluator: one evaluator per gate kind, each run inside a fail-closed wrapper.

`evaluate_gates` judges a candidate stack with a gate set and returns one `GateResult` per gate, in
the set's order. Orchestration (running suites and simulations, building the report) stays with the
caller: the suite and simulation result documents come in as arguments.

Kinds (andon.gates.spec): data and provenance here, suites here, model metrics in
andon.gates.model_gate, system metrics in andon.gates.system_gate.

Fail closed. Every gate runs in `evaluate_gate`, which turns any exception into a failed gate whose
reason names the exception and what to do, never a pass and never a traceback: a missing metric, a
NaN (the bootstrap refuses NaN values; the evaluators refuse NaN inputs), a missing slice, a missing
suite or simulation document, a stale upstream, an unreadable artefact. A result that is not a
GateResult of the gate's own name, kind and severity fails too.

Waivers ({gate, reviewers, reason} mappings, or andon.gates.waivers.Waiver records, which must apply
at the gate's severity and name the candidate's versions) mark their gate `waived_by` its reviewers;
the report builder (andon.gates.report_build) counts a waived gate as passed and keeps it visible.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from andon.errors import AndonError
from andon.gates.candidates import CandidateStack, stack_versions
from andon.gates.evidence import Evidence
from andon.gates.model_gate import evaluate_model_metric
from andon.gates.outcome import failed, gate_inputs, refs, result
from andon.gates.records import FAIL, PASS, GateResult
from andon.gates.spec import DATA, MODEL_METRIC, PROVENANCE, SUITE, SYSTEM_METRIC, Gate, GateSet
from andon.gates.system_gate import evaluate_system_metric
from andon.workspace import Workspace

log = logging.getLogger(__name__)
Evaluator = Callable[[Gate, GateSet, Evidence], GateResult]
SKEW_FAILS_ALIASES = ("candidate",)  # skews of production describe the baseline: listed, not failing


# ----- the fail-closed wrapper -----------------------------------------------------------------------
def evaluate_gate(gate: Gate, gate_set: GateSet, evidence: Evidence) -> GateResult:
    """One gate's result; never raises (fail closed: an exception is a failed gate with its reason)."""
    evaluator = EVALUATORS.get(gate.kind)
    try:
        if evaluator is None:
            return failed(gate, f"no evaluator for gate kind {gate.kind!r}: fix the gate set")
        outcome = evaluator(gate, gate_set, evidence)
        problem = _malformed(gate, outcome)
        if problem:
            return failed(gate, f"the {gate.kind} evaluator returned {problem}: nothing was passed (internal error)",
                          gate_inputs(gate, gate_set))
        return outcome
    except AndonError as exc:
        return failed(gate, f"{exc}", _safe_inputs(gate, gate_set), {"error": type(exc).__name__})
    except Exception as exc:  # fail closed: any error is a failed gate, never a traceback
        if os.environ.get("ANDON_DEBUG"):
            traceback.print_exc()
        log.debug("gate %s raised", gate.name, exc_info=True)
        return failed(gate, f"internal error ({type(exc).__name__}: {exc}); the gate fails closed. Set "
                            f"ANDON_DEBUG=1 for the traceback and report it", _safe_inputs(gate, gate_set),
                      {"error": type(exc).__name__})


def _safe_inputs(gate: Gate, gate_set: GateSet) -> dict[str, Any]:
    try:
        return gate_inputs(gate, gate_set)
    except Exception:  # the inputs themselves must not break the failure
        return {"gate": gate.name}


def _malformed(gate: Gate, outcome: Any) -> str | None:
    if not isinstance(outcome, GateResult):
        return f"a {type(outcome).__name__}, not a GateResult"
    if (outcome.name, outcome.kind, outcome.severity) != (gate.name, gate.kind, gate.severity):
        return f"a result for {outcome.name!r} ({outcome.kind}, {outcome.severity})"
    if outcome.outcome == PASS and outcome.value is None and gate.kind in (MODEL_METRIC,):
        return "a pass without a value"
    return None


# ----- data ------------------------------------------------------------------------------------------
def evaluate_data(gate: Gate, gate_set: GateSet, evidence: Evidence) -> GateResult:
    """Every dataset a model version of the candidate stack was made from is accepted.

    A train node's version that records no dataset at all fails (its data cannot be checked).
    """
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for node, version in sorted(evidence.candidate.items()):
        uses = evidence.datasets_used(node, version)
        if not uses and _is_trained(evidence.version_tags(node, version)):
            problems.append(f"{node}@{version} records no dataset it was trained on (no dataset_id or "
                            f"dag.dataset.* tag): register it through `andon train` or `andon dag run`")
        for use in uses:
            row = use.to_dict()
            if use.dataset_id is None:
                row.update(status="none", reasons=["no accepted version when it was made"])
                problems.append(f"{node}@{version} used {use.role} with no dataset version recorded")
            else:
                try:
                    dataset = evidence.dataset(use.dataset_id)
                except AndonError as exc:
                    row.update(status="unreadable", reasons=[str(exc)])
                    problems.append(f"dataset {use.dataset_id} of {node}@{version} is unreadable: {exc}")
                else:
                    row.update(name=dataset.name, status=dataset.status, reasons=list(dataset.reasons))
                    if not dataset.accepted:
                        why = "; ".join(dataset.reasons) or "its blocking checks failed"
                        problems.append(f"dataset {dataset.name} {use.dataset_id} ({use.role} by {node}@{version}) "
                                        f"is {dataset.status}: {why}")
            rows.append(row)
    inputs = gate_inputs(gate, gate_set, models=refs(evidence.candidate),
                         datasets=sorted({r["dataset_id"] for r in rows if r["dataset_id"]}))
    details = {"datasets": rows}
    if problems:
        return result(gate, FAIL, f"{len(problems)} data problem(s): " + "; ".join(problems), value=len(problems),
                      bound=0, inputs=inputs, details=details)
    return result(gate, PASS, f"all {len(rows)} dataset version(s) used by {len(evidence.candidate)} model "
                              f"version(s) were accepted by validation", value=0, bound=0, margin=0,
                  inputs=inputs, details=details)


def _is_trained(tags: Mapping[str, str]) -> bool:
    """Whether a version's tags say it was trained (not a fixed config or an autolabel link)."""
    kind = tags.get("dag.kind")
    return kind == "train" if kind is not None else "config_hash" in tags or "model_name" in tags


# ----- provenance ------------------------------------------------------------------------------------
def evaluate_provenance(gate: Gate, gate_set: GateSet, evidence: Evidence) -> GateResult:
    """Every node of the DAG is fresh, no cascade skew of the candidate alias, and every version of the
    candidate stack recorded its components (config, code, data, upstream) and is the fresh one."""
    statuses = evidence.dag_statuses(gate.dag)
    problems: list[str] = []
    notes: list[str] = []
    rows = []
    for status in statuses:
        node_problems = []
        if status.state != "fresh":
            node_problems.append(f"{status.node} is {status.state}: " + ("; ".join(status.reasons) or status.state))
        for skew in status.skew:
            version = evidence.candidate.get(status.node, "?")
            text = skew.reason(status.node, version if skew.alias == "candidate" else "?")
            (node_problems if skew.alias in SKEW_FAILS_ALIASES else notes).append(text)
        version = evidence.candidate.get(status.node)
        if version is not None:
            tags = evidence.version_tags(status.node, version)
            if not tags.get("dag.config"):
                node_problems.append(f"{status.node}@{version} recorded no config and code (it was not registered "
                                     f"by the DAG): retrain it with `andon dag run {status.node}`")
            elif status.state == "fresh" and tags.get("fingerprint") != status.fingerprint:
                node_problems.append(f"{status.node}@{version} is not the fresh version (fingerprint "
                                     f"{str(tags.get('fingerprint'))[:12]} != current {status.fingerprint[:12]}, "
                                     f"fresh version {status.model_version}): gate the fresh version")
        rows.append({"node": status.node, "state": status.state, "version": version,
                     "fresh_version": status.model_version, "fingerprint": status.fingerprint,
                     "reasons": list(status.reasons), "problems": node_problems})
        problems += node_problems
    missing = sorted(set(evidence.candidate) - {s.node for s in statuses})
    if missing:
        problems.append(f"nodes {', '.join(missing)} of the candidate stack are not in DAG {gate.dag!r}: "
                        f"give the provenance gate the DAG the stack comes from")
    inputs = gate_inputs(gate, gate_set, dag=gate.dag, models=refs(evidence.candidate),
                         fingerprints={s.node: s.fingerprint for s in statuses})
    details = {"nodes": rows, "notes": notes}
    if problems:
        return result(gate, FAIL, f"{len(problems)} provenance problem(s): " + "; ".join(problems),
                      value=len(problems), bound=0, inputs=inputs, details=details)
    return result(gate, PASS, f"all {len(statuses)} nodes of DAG {gate.dag!r} are fresh, none skewed, every "
                              f"version of the stack recorded its config and code", value=0, bound=0, margin=0,
                  inputs=inputs, details=details)


# ----- suites ----------------------------------------------------------------------------------------
def evaluate_suite(gate: Gate, gate_set: GateSet, evidence: Evidence) -> GateResult:
    """Every blocking check of the named suites passed on the candidate; flips are listed."""
    problems: list[str] = []
    suites: list[dict[str, Any]] = []
    flips: dict[str, list[dict[str, Any]]] = {"regressions": [], "improvements": []}
    for name in gate.suites:
        doc = evidence.suite_results.get(name)
        if doc is None:
            problems.append(f"suite {name} has no result: run it on the candidate (`andon suite run {name}`) and "
                            f"pass its result")
            continue
        if not isinstance(doc, Mapping):
            problems.append(f"the result of suite {name} is a {type(doc).__name__}, not a suite result document")
            continue
        summary, suite_problems = _suite_summary(name, doc, evidence.candidate)
        suites.append(summary)
        problems += suite_problems
        for direction in flips:
            for flip in (doc.get("flips") or {}).get(direction) or ():
                flips[direction].append({"suite": name, "run_id": doc.get("run_id"), **dict(flip)})
    inputs = gate_inputs(gate, gate_set, models=refs(evidence.candidate),
                         suites=[{"suite": s["suite"], "run_id": s["run_id"]} for s in suites])
    details = {"suites": suites, "flips": flips}
    regressions = len(flips["regressions"])
    flip_text = f"; {regressions} regression flip(s), {len(flips['improvements'])} improvement(s) vs baseline"
    if problems:
        return result(gate, FAIL, f"{len(problems)} suite problem(s): " + "; ".join(problems) + flip_text,
                      value=len(problems), bound=0, inputs=inputs, details=details)
    checks = sum(s["blocking_checks"] for s in suites)
    return result(gate, PASS, f"every blocking check ({checks}) of {', '.join(gate.suites)} passed" + flip_text,
                  value=0, bound=0, margin=0, inputs=inputs, details=details)


def _suite_summary(name: str, doc: Mapping[str, Any], candidate: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """(summary row, problems) of one suite result document (contract: WS/suites/<run_id>/result.json)."""
    problems: list[str] = []
    for key in ("run_id", "passed", "checks"):
        if key not in doc:
            problems.append(f"the result of suite {name} lacks {key!r}: rerun the suite")
    checks = [c for c in doc.get("checks") or () if isinstance(c, Mapping)]
    blocking = [c for c in checks if c.get("severity", "blocking") == "blocking"]
    failing = [c for c in blocking if c.get("passed") is not True]
    for check in failing:
        value = check.get("value")
        problems.append(f"suite {name}: blocking check {check.get('name')} failed ({check.get('metric')} "
                        f"{value if value is not None else 'missing'} {check.get('comparator', '')} "
                        f"{check.get('threshold')}; {check.get('n_failed', '?')} of {check.get('n_evaluated', '?')} "
                        f"scenarios){': ' + str(check['reason']) if check.get('reason') else ''}")
    if doc.get("passed") is not True and not failing and "passed" in doc:
        problems.append(f"suite {name} did not pass ({doc.get('blocking_failures', '?')} blocking failures)")
    if checks and not blocking:
        problems.append(f"suite {name} has no blocking check: it judged nothing")
    errors = list(doc.get("errors") or ())
    if errors:
        first = errors[0] if isinstance(errors[0], Mapping) else {"message": str(errors[0])}
        problems.append(f"suite {name}: {len(errors)} scenario(s) raised (e.g. {first.get('scenario_id', '?')}: "
                        f"{first.get('message', '')}); a scenario that could not be judged fails the suite")
    problems += _model_mismatch(f"suite {name} (run {doc.get('run_id')})", doc.get("models") or (), candidate)
    summary = {"suite": name, "run_id": doc.get("run_id"), "passed": doc.get("passed"),
               "blocking_checks": len(blocking), "blocking_failures": len(failing),
               "warnings": doc.get("warnings"), "errors": len(errors), "models": list(doc.get("models") or ()),
               "failing_checks": [c.get("name") for c in failing]}
    return summary, problems


def _model_mismatch(what: str, models: Sequence[Any], candidate: Mapping[str, str]) -> list[str]:
    """Models a document judged that are other versions than the candidate's (NAME@VERSION refs only)."""
    problems = []
    for ref in models:
        name, _, version = str(ref).partition("@")
        if version.isdigit() and name in candidate and str(candidate[name]) != version:
            problems.append(f"{what} judged {name}@{version}, but the candidate is {name}@{candidate[name]}: "
                            f"rerun it on the candidate")
    return problems


# ----- entry point -----------------------------------------------------------------------------------
EVALUATORS: dict[str, Evaluator] = {DATA: evaluate_data, PROVENANCE: evaluate_provenance,
                                     MODEL_METRIC: evaluate_model_metric, SUITE: evaluate_suite,
                                     SYSTEM_METRIC: evaluate_system_metric}


def apply_waivers(results: Sequence[GateResult], waivers: Sequence[Any],
                  candidate: Mapping[str, str] | None = None) -> list[GateResult]:
    """Mark each waived gate `waived_by` its reviewers.

    A waiver is a {gate, reviewers, reason} mapping (the report's form) or an andon.gates.waivers.Waiver;
    a Waiver lifts its gate only when `applies_to(the gate's severity)` (two reviewers for a blocking
    gate) and only for the candidate versions it names. Waivers of other gates are the report
    builder's to refuse.
    """
    out = []
    for gate_result in results:
        reviewers: set[str] = set(gate_result.waived_by)
        for waiver in waivers:
            doc = waiver if isinstance(waiver, Mapping) else None
            if (doc.get("gate") if doc is not None else getattr(waiver, "gate", None)) != gate_result.name:
                continue
            applies_to = getattr(waiver, "applies_to", None)
            if callable(applies_to) and not applies_to(gate_result.severity):
                continue
            named = doc.get("candidate") if doc is not None else getattr(waiver, "candidate", None)
            if candidate is not None and named and {str(k): str(v) for k, v in dict(named).items()} != \
                    {str(k): str(v) for k, v in candidate.items()}:
                continue
            given = (doc.get("reviewers") if doc is not None else getattr(waiver, "reviewers", ())) or ()
            reviewers |= {str(given)} if isinstance(given, str) else {str(r) for r in given}
        out.append(dataclasses.replace(gate_result, waived_by=tuple(sorted(reviewers))) if reviewers else gate_result)
    return out


def evaluate_gates(workspace: Workspace, gate_set: GateSet, candidate: CandidateStack | Mapping[str, str],
                   baseline: CandidateStack | Mapping[str, str] | None = None,
                   suite_results: Mapping[str, Mapping[str, Any]] | None = None,
                   sim_candidate: Mapping[str, Any] | None = None, sim_baseline: Mapping[str, Any] | None = None,
                   waivers: Sequence[Any] = (), *, rerun: bool = False, device: str | None = None,
                   config_dirs: Sequence[str] = (), evidence: Evidence | None = None) -> list[GateResult]:
    """Judge a candidate stack with a gate set: one result per gate, in the set's order; never raises
    for a gate (each fails closed with its reason).

    Args:
        workspace: the workspace.
        gate_set: the gate set (andon.gates.spec.load_gate_set).
        candidate: the candidate stack ({node: version} or a CandidateStack).
        baseline: the baseline stack (usually production), or None (non-regression then skips, or fails
            where the gate sets require_baseline).
        suite_results: suite name -> the candidate's suite result document, flips computed against the
            baseline (WS/suites/<run_id>/result.json).
        sim_candidate, sim_baseline: the simulation result documents (WS/simulations/<sim_id>/result.json).
        waivers: {gate, reviewers, reason} mappings or andon.gates.waivers.Waiver records (see
            `apply_waivers`): the gates they lift are marked waived_by their reviewers.
        rerun: recompute cached model evaluations.
        device: where models run for evaluations (None: CUDA when available, else the CPU).
        config_dirs: extra config folders for the provenance gate's DAG.
        evidence: the evidence to judge (tests; the other evidence arguments are then ignored).

    Returns:
        GateResults, one per gate of the set.
    """
    if evidence is None:
        evidence = Evidence(workspace, stack_versions(candidate) or {}, stack_versions(baseline),
                            dict(suite_results or {}), sim_candidate, sim_baseline, config_dirs=tuple(config_dirs),
                            rerun=rerun, device=device)
    results = [evaluate_gate(gate, gate_set, evidence) for gate in gate_set.gates]
    return apply_waivers(results, waivers, evidence.candidate)

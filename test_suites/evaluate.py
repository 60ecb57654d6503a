"""Judging a suite's checks on per-scenario metric values: pass/fail per scenario and per check.

Pure functions over what the replays produced (`StackValues`), so they are tested without replays.

Per scenario and check: `passed` is None when the check does not apply there (its filters select
nothing), False when the replay failed, the metric raised, or the stack gave nothing to score, and
otherwise `value <comparator> threshold` (== within 1e-9).

Per check:
- per_scenario scope: passes when at least one scenario was judged and none failed. Its `value` is
  the metric pooled over the judged scenarios (the metric's aggregate), for people and for comparing
  with the baseline; the verdict is per scenario.
- aggregate scope: the values of the scenarios where it applies, combined by the metric's aggregate
  ("pooled" weights each scenario by its objects or samples; "max", "sum", "mean"), compared once.
- a check judged on no scenario FAILS ("no evidence"); so does a check whose metric is unknown, and
  a check on a suite with replay errors (fail closed: an error is never a pass).
The suite passes when no blocking check fails, no replay failed, and the selection was not empty.
Warning checks that fail are counted and shown; they do not fail the suite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from andon.errors import BadInput
from andon.test_suites.metrics import METRICS, MetricValue, aggregate
from andon.test_suites.schema import AGGREGATE, Check, Suite

EQUAL_TOLERANCE = 1e-9
AGGREGATE_ROW = "aggregate"  # the scenario_id of an aggregate check's one result row
MAX_AGGREGATE_EVIDENCE = 100


def compare(value: float, comparator: str, threshold: float) -> bool:
    """`value <comparator> threshold`; "==" holds within 1e-9 (absolute)."""
    if comparator == ">=":
        return value >= threshold
    if comparator == "<=":
        return value <= threshold
    if comparator == ">":
        return value > threshold
    if comparator == "<":
        return value < threshold
    if comparator == "==":
        return math.isclose(value, threshold, rel_tol=0.0, abs_tol=EQUAL_TOLERANCE)
    raise BadInput(f"comparator {comparator!r} is not one of >=, <=, >, <, ==")


def judge(value: MetricValue, check: Check) -> bool | None:
    """A check's verdict on one scenario's value: None not applicable, False unscored or failing."""
    if not value.applicable:
        return None
    if value.value is None:
        return False
    return compare(value.value, check.comparator, check.threshold)


@dataclass(frozen=True, slots=True)
class ScenarioValues:
    """What one stack's replays gave for one scenario.

    Attributes:
        scenario_id: the scenario.
        values: check name -> the metric's value.
        failures: check name -> why the metric could not be computed (it raised).
        pictures: check name -> the picture of the failure, relative to the run's folder.
    """

    scenario_id: str
    values: dict[str, MetricValue] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    pictures: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StackValues:
    """One stack's outcome over a suite's scenarios: values, and the scenarios whose replay failed."""

    scenarios: dict[str, ScenarioValues] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # scenario id -> message


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One check's verdict over the suite for one stack, and its rows (one per scenario, or one aggregate)."""

    passed: bool
    value: float | None
    n_scenarios: int
    n_evaluated: int
    n_failed: int
    reason: str
    rows: tuple[dict[str, Any], ...]


def _row(scenario_id: str, check: Check, value: float | None, passed: bool | None, evidence: dict[str, Any],
         picture: str | None, reason: str = "") -> dict[str, Any]:
    return {"scenario_id": scenario_id, "check": check.name, "value": value, "threshold": check.threshold,
            "passed": passed, "evidence": evidence, "picture": picture, "reason": reason}


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


def evaluate_check(check: Check, scenario_ids: Sequence[str], values: StackValues) -> CheckOutcome:
    """One check over the suite's scenarios for one stack (module docstring)."""
    n = len(scenario_ids)
    metric = METRICS.get(check.metric)
    if metric is None:
        return CheckOutcome(False, None, n, 0, 0, f"unknown metric {check.metric!r}: known metrics are "
                            f"{', '.join(sorted(METRICS))}", ())
    if n == 0:
        return CheckOutcome(False, None, 0, 0, 0, "no evidence: the selector matched no scenario", ())
    per: list[tuple[str, MetricValue | None, str]] = []  # (scenario, value or None on error, error)
    for sid in scenario_ids:
        if sid in values.errors:
            per.append((sid, None, f"replay failed: {values.errors[sid]}"))
            continue
        scenario = values.scenarios.get(sid)
        if scenario is None or check.name in scenario.failures or check.name not in scenario.values:
            why = "no value recorded" if scenario is None else scenario.failures.get(check.name, "no value recorded")
            per.append((sid, None, f"metric failed: {why}"))
            continue
        per.append((sid, scenario.values[check.name], ""))
    judged = [(sid, v) for sid, v, _ in per if v is not None and v.applicable and v.value is not None]
    pooled = aggregate([v.value for _, v in judged], [v.weight for _, v in judged], metric.aggregate)
    n_errors = sum(1 for _, v, _ in per if v is None)
    if check.scope == AGGREGATE:
        return _aggregate_outcome(check, per, judged, pooled, n_errors)
    rows = []
    failed: list[tuple[str, float | None]] = []
    n_evaluated = 0
    for sid, value, error in per:
        picture = values.scenarios[sid].pictures.get(check.name) if sid in values.scenarios else None
        if value is None:
            rows.append(_row(sid, check, None, False, {"error": error}, None, error))
            failed.append((sid, None))
            n_evaluated += 1
            continue
        verdict = judge(value, check)
        rows.append(_row(sid, check, value.value, verdict, value.evidence, picture if verdict is False else None,
                         value.reason))
        if verdict is not None:
            n_evaluated += 1
        if verdict is False:
            failed.append((sid, value.value))
    n_valued = len(judged)
    if n_errors:
        reason = f"{n_errors} of {n} scenario(s) could not be judged (replay or metric failed)"
    elif n_evaluated == 0:
        reason = f"no evidence: the check applies to none of the {n} scenario(s)"
    elif failed:
        worst = next((f for f in failed if f[1] is not None), failed[0])
        reason = (f"{len(failed)} of {n_evaluated} scenario(s) fail (e.g. {worst[0]}: {_fmt(worst[1])} "
                  f"{check.comparator} {check.threshold:g} does not hold)")
    else:
        reason = f"all {n_evaluated} judged scenario(s) pass ({n - n_evaluated} not applicable)"
    passed = n_errors == 0 and n_valued > 0 and not failed
    return CheckOutcome(passed, pooled, n, n_evaluated, len(failed), reason, tuple(rows))


def _aggregate_outcome(check: Check, per: list[tuple[str, MetricValue | None, str]],
                       judged: list[tuple[str, MetricValue]], pooled: float | None, n_errors: int) -> CheckOutcome:
    n = len(per)
    n_unscored = sum(1 for _, v, _ in per if v is not None and v.applicable and v.value is None)
    listed = sorted(judged, key=lambda item: item[1].value or 0.0, reverse=check.comparator in ("<=", "<"))
    evidence = {"n_scenarios_with_value": len(judged), "n_unscored": n_unscored, "n_errors": n_errors,
                "aggregate": METRICS[check.metric].aggregate,
                "per_scenario": [[sid, v.value, v.weight] for sid, v in listed[:MAX_AGGREGATE_EVIDENCE]],
                "per_scenario_fields": ["scenario_id", "value", "weight"],
                "errors": [[sid, error] for sid, v, error in per if v is None][:MAX_AGGREGATE_EVIDENCE]}
    if n_errors:
        passed, reason = False, f"{n_errors} of {n} scenario(s) could not be judged (replay or metric failed)"
    elif pooled is None:
        passed, reason = False, (f"no evidence: no scenario gave a value ({n_unscored} unscored, "
                                 f"{n - n_unscored} not applicable)")
    elif n_unscored:
        passed, reason = False, f"{n_unscored} scenario(s) gave nothing to score (e.g. an agent never tracked)"
    else:
        passed = compare(pooled, check.comparator, check.threshold)
        reason = (f"{_fmt(pooled)} {check.comparator} {check.threshold:g} {'holds' if passed else 'does not hold'} "
                  f"over {len(judged)} scenario(s)")
    row = _row(AGGREGATE_ROW, check, pooled, passed, evidence, None, "" if passed else reason)
    return CheckOutcome(passed, pooled, n, len(judged) + n_errors + n_unscored, 0 if passed else 1, reason, (row,))


def evaluate_suite(suite: Suite, scenario_ids: Sequence[str], candidate: StackValues,
                   baseline: StackValues | None = None) -> dict[str, Any]:
    """Every check of the suite, for the candidate and (when given) the baseline.

    Returns:
        The judged part of the result document (contracts: "Suite files and results"): passed,
        blocking_failures, warnings, errors, checks, results (with baseline_value/baseline_passed),
        and flips.
    """
    from andon.test_suites.flips import compute_flips

    checks: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    blocking_failures = warnings = 0
    for check in suite.checks:
        outcome = evaluate_check(check, scenario_ids, candidate)
        base = evaluate_check(check, scenario_ids, baseline) if baseline is not None else None
        base_rows = {r["scenario_id"]: r for r in base.rows} if base is not None else {}
        for row in outcome.rows:
            other = base_rows.get(row["scenario_id"])
            results.append({**row, "baseline_value": None if other is None else other["value"],
                            "baseline_passed": None if other is None else other["passed"],
                            "baseline_picture": None if other is None else other["picture"]})
        if not outcome.passed:
            if check.blocking:
                blocking_failures += 1
            else:
                warnings += 1
        checks.append({"name": check.name, "metric": check.metric, "scope": check.scope, "severity": check.severity,
                       "comparator": check.comparator, "threshold": check.threshold, "mode": check.mode,
                       "passed": outcome.passed, "value": outcome.value,
                       "baseline_value": None if base is None else base.value,
                       "baseline_passed": None if base is None else base.passed,
                       "n_scenarios": outcome.n_scenarios, "n_evaluated": outcome.n_evaluated,
                       "n_failed": outcome.n_failed, "reason": outcome.reason})
    errors = [{"scenario_id": sid, "message": message} for sid, message in sorted(candidate.errors.items())]
    baseline_errors = ([{"scenario_id": sid, "message": m} for sid, m in sorted(baseline.errors.items())]
                       if baseline is not None else [])
    empty = len(scenario_ids) == 0
    passed = not empty and blocking_failures == 0 and not errors
    reason = ("the selector matched no scenario: a suite never passes empty" if empty
              else f"{len(errors)} scenario(s) could not be replayed" if errors
              else f"{blocking_failures} blocking check(s) failed" if blocking_failures
              else "every blocking check passed")
    return {"passed": passed, "reason": reason, "blocking_failures": blocking_failures, "warnings": warnings,
            "errors": errors, "baseline_errors": baseline_errors, "checks": checks, "results": results,
            "flips": compute_flips(results, {c.name: c.severity for c in suite.checks}) if baseline is not None
            else {"regressions": [], "improvements": []}}


def values_from_documents(docs: Mapping[str, Mapping[str, Any]]) -> dict[str, MetricValue]:
    """check name -> MetricValue from their to_dict() documents."""
    return {name: MetricValue.from_dict(doc) for name, doc in docs.items()}

"""Judging checks on per-scenario values: fail closed on empty selections, unknown metrics and errors."""

from __future__ import annotations

import pytest

from andon.errors import BadInput
from andon.test_suites.evaluate import ScenarioValues, StackValues, compare, evaluate_check, evaluate_suite
from andon.test_suites.metrics import MetricValue, not_applicable, unscored
from andon.test_suites.schema import suite_from_config
from tests.test_suites.helpers import suite_doc

IDS = ["s1", "s2", "s3"]


def _suite(*checks):
    return suite_from_config(suite_doc(checks=list(checks)))


def _check(name="recall", metric="detection_recall", scope="per_scenario", comparator=">=", threshold=0.8,
           severity="blocking"):
    return {"name": name, "metric": metric, "scope": scope, "comparator": comparator, "threshold": threshold,
            "severity": severity}


def _values(per: dict[str, MetricValue | None], check="recall", errors=None) -> StackValues:
    return StackValues({sid: ScenarioValues(sid, {check: v} if v is not None else {}, {} if v is not None
                                            else {check: "ValueError: boom"}, {check: f"pictures/{sid}.png"})
                        for sid, v in per.items()}, dict(errors or {}))


def test_compare():
    assert compare(0.8, ">=", 0.8) and not compare(0.79, ">=", 0.8) and compare(1, "<=", 1) and compare(2, ">", 1)
    assert compare(0.1 + 0.2, "==", 0.3) and not compare(1.0, "==", 0.0) and compare(0.0, "<", 0.5)
    with pytest.raises(BadInput):
        compare(1.0, "=>", 1.0)


def test_per_scenario_verdicts_with_evidence_and_not_applicable():
    suite = _suite(_check())
    values = _values({"s1": MetricValue(0.9, 10, {"missed": []}), "s2": MetricValue(0.5, 10, {"missed": [["A", 3]]}),
                      "s3": not_applicable("no vehicle")})
    outcome = evaluate_check(suite.checks[0], IDS, values)
    assert not outcome.passed and (outcome.n_evaluated, outcome.n_failed, outcome.n_scenarios) == (2, 1, 3)
    assert outcome.value == pytest.approx(0.7)  # pooled by weight
    rows = {r["scenario_id"]: r for r in outcome.rows}
    assert rows["s1"]["passed"] is True and rows["s1"]["picture"] is None
    assert rows["s2"]["passed"] is False and rows["s2"]["evidence"] == {"missed": [["A", 3]]}
    assert rows["s2"]["picture"] == "pictures/s2.png"
    assert rows["s3"]["passed"] is None and rows["s3"]["reason"] == "no vehicle"
    assert "1 of 2" in outcome.reason and "s2" in outcome.reason
    passing = evaluate_check(suite.checks[0], ["s1", "s3"], values)
    assert passing.passed and passing.n_evaluated == 1


def test_a_check_with_no_evidence_fails():
    suite = _suite(_check())
    values = _values({sid: not_applicable("none") for sid in IDS})
    outcome = evaluate_check(suite.checks[0], IDS, values)
    assert not outcome.passed and "no evidence" in outcome.reason
    aggregate = evaluate_check(_suite(_check(scope="aggregate")).checks[0], IDS, values)
    assert not aggregate.passed and "no evidence" in aggregate.reason


def test_unscored_and_metric_failures_fail_the_scenario():
    suite = _suite(_check(metric="min_fde", comparator="<=", threshold=2.0))
    values = _values({"s1": MetricValue(1.0, 3), "s2": unscored("never tracked"), "s3": None})
    outcome = evaluate_check(suite.checks[0], IDS, values)
    rows = {r["scenario_id"]: r for r in outcome.rows}
    assert rows["s2"]["passed"] is False and rows["s2"]["reason"] == "never tracked"
    assert rows["s3"]["passed"] is False and "boom" in rows["s3"]["evidence"]["error"]
    assert not outcome.passed and outcome.n_failed == 2


def test_aggregate_scope_pools_by_the_metric_s_kind():
    suite = _suite(_check(scope="aggregate"), _check(name="lost", metric="lead_lost_s", scope="aggregate",
                                                     comparator="<=", threshold=0.5))
    recall = _values({"s1": MetricValue(0.9, 90), "s2": MetricValue(0.5, 10), "s3": not_applicable("none")})
    outcome = evaluate_check(suite.checks[0], IDS, recall)
    assert outcome.passed and outcome.value == pytest.approx(0.86)
    (row,) = outcome.rows
    assert row["scenario_id"] == "aggregate" and row["passed"] is True
    assert row["evidence"]["per_scenario"] == [["s2", 0.5, 10.0], ["s1", 0.9, 90.0]]  # worst first
    lost = _values({"s1": MetricValue(0.2, 5), "s2": MetricValue(0.7, 5)}, check="lost")
    worst = evaluate_check(suite.checks[1], ["s1", "s2"], lost)
    assert not worst.passed and worst.value == pytest.approx(0.7)  # "max"


def test_an_unknown_metric_fails_its_check_and_the_suite():
    suite = _suite(_check(), _check(name="mind", metric="telepathy"))
    values = _values({"s1": MetricValue(0.9, 1)})
    doc = evaluate_suite(suite, ["s1"], values)
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["recall"]["passed"] and not checks["mind"]["passed"]
    assert "unknown metric 'telepathy'" in checks["mind"]["reason"]
    assert not doc["passed"] and doc["blocking_failures"] == 1


def test_an_empty_selection_fails_the_suite():
    doc = evaluate_suite(_suite(_check()), [], StackValues())
    assert not doc["passed"] and "matched no scenario" in doc["reason"]
    assert doc["checks"][0]["passed"] is False and doc["checks"][0]["n_scenarios"] == 0
    assert doc["results"] == []


def test_replay_errors_fail_closed_and_warnings_do_not_block():
    suite = _suite(_check(), _check(name="soft", threshold=0.95, severity="warning"))
    values = StackValues({"s1": ScenarioValues("s1", {"recall": MetricValue(0.9, 1), "soft": MetricValue(0.9, 1)})})
    doc = evaluate_suite(suite, ["s1"], values)
    assert doc["passed"] and doc["warnings"] == 1 and doc["blocking_failures"] == 0
    errored = StackValues(values.scenarios, {"s2": "closed_loop: RuntimeError: boom"})
    doc = evaluate_suite(suite, ["s1", "s2"], errored)
    assert not doc["passed"] and doc["errors"] == [{"scenario_id": "s2", "message": "closed_loop: RuntimeError: boom"}]
    rows = [r for r in doc["results"] if r["scenario_id"] == "s2"]
    assert all(r["passed"] is False and "boom" in r["evidence"]["error"] for r in rows)


def test_baseline_values_and_flips_ride_along():
    suite = _suite(_check())
    candidate = _values({"s1": MetricValue(0.9, 1), "s2": MetricValue(0.5, 1), "s3": MetricValue(0.85, 1)})
    baseline = _values({"s1": MetricValue(0.7, 1), "s2": MetricValue(0.95, 1), "s3": not_applicable("none")})
    doc = evaluate_suite(suite, IDS, candidate, baseline)
    rows = {r["scenario_id"]: r for r in doc["results"]}
    assert (rows["s2"]["baseline_value"], rows["s2"]["baseline_passed"]) == (0.95, True)
    assert doc["checks"][0]["baseline_value"] == pytest.approx((0.7 + 0.95) / 2)
    assert doc["flips"]["regressions"] == [{"scenario_id": "s2", "check": "recall", "value": 0.5,
                                            "baseline_value": 0.95, "severity": "blocking"}]
    assert [f["scenario_id"] for f in doc["flips"]["improvements"]] == ["s1"]

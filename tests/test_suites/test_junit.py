"""JUnit XML: parses, counts match the rows, deterministic bytes."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from andon.test_suites.evaluate import ScenarioValues, StackValues, evaluate_suite
from andon.test_suites.junit import junit_xml
from andon.test_suites.metrics import MetricValue, not_applicable
from andon.test_suites.schema import suite_from_config
from tests.test_suites.helpers import suite_doc


def _doc(scenario_ids, values):
    checks = [{"name": "recall", "metric": "detection_recall", "comparator": ">=", "threshold": 0.8},
              {"name": "soft", "metric": "detection_recall", "comparator": ">=", "threshold": 0.95,
               "severity": "warning"},
              {"name": "pooled", "metric": "detection_recall", "scope": "aggregate", "comparator": ">=",
               "threshold": 0.8},
              {"name": "mind", "metric": "telepathy", "comparator": ">=", "threshold": 1.0}]
    suite = suite_from_config(suite_doc(name="unit.suite", checks=checks))
    judged = evaluate_suite(suite, scenario_ids, values)
    return {"run_id": "0123456789abcdef", "suite": suite.name, "suite_sha256": suite.sha256, "models": [],
            "baseline_models": None, "scenario_ids": scenario_ids, **judged}


def _values():
    per = {"s1": MetricValue(0.9, 1), "s2": MetricValue(0.5, 1), "s3": not_applicable("no vehicle")}
    return StackValues({sid: ScenarioValues(sid, {"recall": v, "soft": v, "pooled": v}) for sid, v in per.items()},
                       {"s4": "RuntimeError: boom"})


def test_junit_parses_and_its_counts_match_the_rows():
    doc = _doc(["s1", "s2", "s3", "s4"], _values())
    data = junit_xml(doc)
    root = ET.fromstring(data)
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    # recall: 4 rows, soft: 4 rows, pooled: 1 aggregate row, mind: 1 "check" case
    assert len(cases) == 10 == int(suite.get("tests")) == int(root.get("tests"))
    by = {(c.get("classname"), c.get("name")): c for c in cases}
    assert by[("unit.suite.recall", "s2")].find("failure") is not None
    assert by[("unit.suite.recall", "s1")].find("failure") is None
    assert by[("unit.suite.recall", "s3")].find("skipped") is not None
    assert by[("unit.suite.recall", "s4")].find("error") is not None
    soft = by[("unit.suite.soft", "s2")]
    assert soft.find("failure") is None and "WARNING" in soft.find("system-out").text
    assert by[("unit.suite.pooled", "aggregate")].find("failure") is not None  # an error fails the aggregate
    assert "unknown metric" in by[("unit.suite.mind", "check")].find("failure").get("message")
    failures = sum(len(c.findall("failure")) for c in cases)
    errors = sum(len(c.findall("error")) for c in cases)
    skipped = sum(len(c.findall("skipped")) for c in cases)
    assert (failures, errors, skipped) == (int(suite.get("failures")), int(suite.get("errors")), int(suite.get("skipped")))
    assert (failures, errors, skipped) == (3, 1, 2)
    assert junit_xml(doc) == data  # deterministic


def test_an_empty_selection_is_a_failing_testcase():
    root = ET.fromstring(junit_xml(_doc([], StackValues())))
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert cases[("unit.suite.selection", "selector")].find("failure") is not None
    assert cases[("unit.suite.recall", "check")].find("failure") is not None
    assert cases[("unit.suite.soft", "check")].find("failure") is None  # a warning check never fails CI

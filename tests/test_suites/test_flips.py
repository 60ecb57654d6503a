"""Flips: verdicts that changed between the baseline and the candidate, per (scenario, check)."""

from __future__ import annotations

from andon.test_suites.flips import compute_flips


def row(sid, check, passed, baseline_passed, value=1.0, baseline_value=0.0):
    return {"scenario_id": sid, "check": check, "passed": passed, "baseline_passed": baseline_passed,
            "value": value, "baseline_value": baseline_value}


def test_regressions_and_improvements_are_listed_sorted():
    rows = [row("s2", "b", False, True), row("s1", "b", False, True), row("s1", "a", True, False),
            row("s3", "a", True, True), row("s4", "a", False, False), row("s5", "a", None, True),
            row("s6", "a", False, None), row("aggregate", "c", False, True, 0.7, 0.9)]
    flips = compute_flips(rows)
    assert [(f["check"], f["scenario_id"]) for f in flips["regressions"]] == [("b", "s1"), ("b", "s2"), ("c", "aggregate")]
    assert flips["improvements"] == [{"scenario_id": "s1", "check": "a", "value": 1.0, "baseline_value": 0.0}]
    assert compute_flips(rows, {"b": "warning"})["regressions"][0]["severity"] == "warning"


def test_no_baseline_no_flips():
    assert compute_flips([row("s1", "a", False, None)]) == {"regressions": [], "improvements": []}
    assert compute_flips([]) == {"regressions": [], "improvements": []}

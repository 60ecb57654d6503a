"""GateResult and GateReport records: plain JSON (no NaN), validation, the verdict rule, round trips."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from andon.errors import BadInput
from andon.gates.records import (
    FAIL,
    INSUFFICIENT,
    PASS,
    GateReport,
    GateResult,
    candidate_label,
    finite_or_none,
    plain,
    verdict_of,
    verdict_summary,
)
from tests.gates.report_samples import kmpd_gate, map_gate, sample_report


def gate(name: str = "g", outcome: str = PASS, severity: str = "blocking", **more) -> GateResult:
    return GateResult(name=name, kind="suite", severity=severity, outcome=outcome, value=1.0, bound=0.5,
                      interval=(0.8, 1.2), margin=0.3, reason="r", **more)


def test_non_finite_numbers_become_none_and_json_never_holds_nan():
    result = GateResult("kmpd", "system_metric", "blocking", "insufficient", value=math.nan, bound=math.inf,
                        interval=(np.float64(12.5), math.inf), margin=-math.inf, reason="no km yet",
                        inputs={"km": np.float32(3.5), "ids": ("a", "b"), "bad": float("nan"), "n": np.int64(4)},
                        needed={"km": 35.2}, details={"slices": [{"slice": "x", "candidate": math.nan}]})
    assert (result.value, result.bound, result.margin) == (None, None, None)
    assert result.interval == (12.5, None)
    doc = result.to_dict()
    text = json.dumps(doc, allow_nan=False)  # raises on NaN/inf
    assert doc["inputs"] == {"km": 3.5, "ids": ["a", "b"], "bad": None, "n": 4}
    assert doc["details"]["slices"][0]["candidate"] is None
    assert GateResult.from_dict(json.loads(text)) == result


def test_round_trip_keeps_every_field():
    result = gate(needed={"scenarios": 120}, details={"flips": []}, inputs={"run_id": "r1"}, waived_by=("bo", "al"))
    assert result.waived_by == ("al", "bo")
    assert GateResult.from_dict(result.to_dict()) == result
    assert set(result.to_dict()) == {"name", "kind", "severity", "outcome", "value", "bound", "interval", "margin",
                                     "reason", "inputs", "needed", "details", "waived_by"}


@pytest.mark.parametrize(("field", "value", "message"), [
    ("outcome", "passed", "outcome 'passed' is not one of pass, fail, insufficient"),
    ("kind", "vibes", "kind 'vibes'"),
    ("severity", "critical", "severity 'critical'"),
    ("interval", (1.0,), "interval (1.0,) must be [low, high]"),
    ("value", "high", "'high' is not a number"),
    ("name", "", "non-empty name"),
    ("waived_by", "alice", "waived_by must be a list"),
])
def test_bad_values_are_named(field, value, message):
    doc = gate().to_dict()
    doc[field] = value
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        GateResult(**doc)


def test_unplain_values_are_refused():
    with pytest.raises(BadInput, match="object"):
        plain({"x": object()})
    with pytest.raises(BadInput):
        finite_or_none(True)


@pytest.mark.parametrize(("outcomes", "verdict"), [
    ([PASS, PASS], PASS),
    ([PASS, FAIL], FAIL),
    ([INSUFFICIENT, FAIL], FAIL),
    ([PASS, INSUFFICIENT], INSUFFICIENT),
    ([], INSUFFICIENT),  # nothing judged is never a pass
])
def test_verdict_rule(outcomes, verdict):
    assert verdict_of([gate(f"g{i}", o) for i, o in enumerate(outcomes)]) == verdict


def test_advisory_gates_never_decide_and_a_waived_blocking_gate_counts_as_passed():
    advisory_fail = gate("adv", FAIL, severity="advisory")
    assert verdict_of([gate("a"), advisory_fail]) == PASS
    assert verdict_of([advisory_fail]) == INSUFFICIENT  # no blocking gate
    waived = gate("b", FAIL, waived_by=("alice",))
    assert waived.outcome == FAIL and waived.effective_outcome == PASS and waived.waived  # stays visible
    assert verdict_of([gate("a"), waived]) == PASS
    assert verdict_of([gate("a", INSUFFICIENT, waived_by=("bo",))]) == PASS
    assert verdict_summary([gate("a"), waived]) == "all 2 blocking gates passed (1 waived: b)"


def test_verdict_summary_names_the_deciding_gates():
    assert verdict_summary([gate("a", FAIL), gate("b", FAIL), gate("c")]) == "2 blocking gates failed: a, b"
    assert (verdict_summary([gate("kmpd", INSUFFICIENT, needed={"km": 35.2})])
            == "not enough evidence: kmpd needs 35.2 km")
    assert verdict_summary([]) == "no blocking gate was evaluated: nothing was judged"


def test_candidate_label():
    assert candidate_label({"name": "predictor", "models": {"predictor": "predictor@7"}}) == "predictor@7"
    assert (candidate_label({"name": "stack", "models": {"p": "predictor@7", "d": "detector@3"}})
            == "stack (detector@3, predictor@7)")
    assert candidate_label({"name": "stack", "models": {}}) == "stack"
    assert candidate_label(None) == "-"


def test_report_round_trip_and_its_verdict_must_follow_its_gates(tmp_path):
    report = sample_report(tmp_path)
    doc = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    again = GateReport.from_dict(doc)
    assert again == report and again.computed_id() == report.report_id
    doc["verdict"] = PASS
    with pytest.raises(BadInput, match="verdict 'pass' contradicts its gates, which give 'fail'"):
        GateReport.from_dict(doc)
    with pytest.raises(BadInput, match="has no gate 'nope'; its gates: detector_map, km_per_disengagement"):
        report.gate("nope")


def test_summary_is_the_gate_run_json_contract(tmp_path):
    report = sample_report(tmp_path, gates=[kmpd_gate(), map_gate()])
    summary = report.summary()
    assert {"report_id", "verdict", "gates"} <= set(summary)
    assert summary["verdict"] in (PASS, FAIL, INSUFFICIENT)
    for entry in summary["gates"]:
        assert {"name", "outcome", "value", "bound", "interval", "reason"} <= set(entry)
    assert summary["candidate"] == "predictor@7" and summary["baseline"] == "predictor@6"

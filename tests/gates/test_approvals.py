"""Approvals: sign-off of a passing report for its exact candidate versions, recorded in the ledger."""

from __future__ import annotations

import json

import pytest

from andon.errors import BadInput, CheckFailed, InternalError
from andon.gates.approvals import approvals, approve, approved, report_versions
from andon.gates.ledger import read_entries
from tests.gates.test_release_cli import cli_json, run_cli, sample_gate, write_sample_report

STACK = {"detector": "2", "predictor": "3"}


def test_a_passing_report_is_approved_for_its_candidate(workspace):
    report, _ = write_sample_report(workspace, "predictor", STACK, [sample_gate("pass")])
    approval = approve(workspace, report.report_id, "rita", reason="read the whole report")
    assert approval.new and approval.candidate == STACK and approval.reviewer == "rita"
    assert approved(workspace, report.report_id, STACK)
    assert approved(workspace, report.report_id, {"detector": 2, "predictor": 3})
    assert not approved(workspace, report.report_id, {"detector": "2", "predictor": "4"})
    assert not approved(workspace, "0" * 16, STACK)
    entry = read_entries(workspace)[0]
    assert (entry.action, entry.name, entry.report_id, entry.verdict, dict(entry.candidate)) == (
        "approve", "predictor", report.report_id, "pass", STACK)
    assert entry.details == {"reason": "read the whole report", "gate_set": "release"}


def test_approving_twice_records_once(workspace):
    report, _ = write_sample_report(workspace, "predictor", STACK, [sample_gate("pass")])
    first = approve(workspace, report.report_id, "rita")
    again = approve(workspace, report.report_id[:7], "rita")
    assert not again.new and again.ledger_seq == first.ledger_seq
    approve(workspace, report.report_id, "sam")
    assert [e.who for e in approvals(workspace, report.report_id, STACK)] == ["rita", "sam"]


@pytest.mark.parametrize("outcome", ["fail", "insufficient"])
def test_a_report_that_did_not_pass_cannot_be_approved(workspace, outcome):
    report, _ = write_sample_report(workspace, "predictor", STACK, [sample_gate(outcome)])
    with pytest.raises(CheckFailed, match=f"verdict '{outcome}': only a passing report can be approved"):
        approve(workspace, report.report_id, "rita")
    assert read_entries(workspace) == []


def test_missing_edited_and_mismatched_reports(workspace):
    with pytest.raises(BadInput, match="no report 'abcdef12'"):
        approve(workspace, "abcdef12", "rita")
    with pytest.raises(BadInput, match="not a report id"):
        approve(workspace, "../etc", "rita")
    report, _ = write_sample_report(workspace, "predictor", STACK, [sample_gate("pass")])
    with pytest.raises(BadInput, match=r"judged detector@2, predictor@3, not predictor@4"):
        approve(workspace, report.report_id, "rita", candidate={"predictor": "4"})
    approve(workspace, report.report_id, "rita", candidate={"predictor": "3"})  # part of the stack agrees
    path = workspace.root / "reports" / report.report_id / "report.json"
    doc = json.loads(path.read_text())
    doc["gates"][0]["value"] = 99.0
    path.write_text(json.dumps(doc))
    with pytest.raises(InternalError, match="does not hash to its id"):
        approve(workspace, report.report_id, "sam")


def test_report_versions_reads_the_report_candidate():
    assert report_versions({"name": "predictor", "models": {"predictor": "predictor@7", "detector": "detector@3"}}) \
        == {"detector": "3", "predictor": "7"}
    assert report_versions({"name": "predictor"}) == {}
    assert report_versions(None) == {}


def test_approve_command(workspace, capsys):
    ws = ["--workspace", str(workspace.root)]
    passed, _ = write_sample_report(workspace, "predictor", STACK, [sample_gate("pass")])
    failed, _ = write_sample_report(workspace, "predictor", {"predictor": "4"}, [sample_gate("fail")])
    code, doc = cli_json(["release", "approve", "--report", passed.report_id, "--reviewer", "rita", "--json", *ws])
    assert code == 0 and doc["new"] and doc["candidate"] == STACK and doc["ledger_seq"] == 1
    capsys.readouterr()
    assert run_cli(["release", "approve", "--report", failed.report_id, "--reviewer", "rita", *ws]) == 1
    assert "only a passing report can be approved" in capsys.readouterr().err
    assert run_cli(["release", "approve", "--report", "0123abcd", "--reviewer", "rita", *ws]) == 2
    assert "no report '0123abcd'" in capsys.readouterr().err
    code, doc = cli_json(["release", "approve", "--report", passed.report_id, "--reviewer", "rita", "--candidate",
                          "predictor@3", "--json", *ws], resolver=lambda w, ref: {"predictor": "3"})
    assert code == 0 and not doc["new"]
    assert len(read_entries(workspace)) == 1

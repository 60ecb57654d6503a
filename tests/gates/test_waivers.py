"""Waivers: reasons, one reviewer for advisory gates, two distinct for blocking ones, exact candidate versions."""

from __future__ import annotations

import json

import pytest

from andon.errors import BadInput
from andon.gates.ledger import Ledger, read_entries
from andon.gates.waivers import active_waivers, report_waivers, resolve_single_model, waive
from andon.models.registry import Registry
from tests.gates.test_release_cli import cli_json, run_cli, sample_gate, write_sample_report

STACK = {"detector": "2", "predictor": "3"}
REASON = "known flaky scenario, tracked in issue 41"


def test_an_advisory_gate_is_waived_by_one_reviewer(workspace):
    entry, waiver = waive(workspace, "predictor", STACK, "jerk_rms", "ann", REASON)
    assert waiver.complete and waiver.reviewers == ("ann",) and not waiver.blocking
    assert waiver.applies_to("advisory") and not waiver.applies_to("blocking")
    assert (entry.action, entry.who, dict(entry.candidate)) == ("waive", "ann", STACK)
    assert entry.details == {"gate": "jerk_rms", "reason": REASON, "blocking": False, "reviewers": ["ann"],
                             "complete": True}
    assert [w.to_dict()["reason"] for w in active_waivers(workspace, STACK)] == [REASON]


def test_a_blocking_gate_needs_two_distinct_reviewers(workspace):
    _, first = waive(workspace, "predictor", STACK, "km_per_disengagement", "ann", REASON, blocking=True)
    assert not first.complete and not first.applies_to("blocking")
    assert [w.complete for w in active_waivers(workspace, STACK)] == [False]
    with pytest.raises(BadInput, match="ann already waived gate 'km_per_disengagement'.*second, different reviewer"):
        waive(workspace, "predictor", STACK, "km_per_disengagement", "ann", REASON, blocking=True)
    entry, second = waive(workspace, "predictor", STACK, "km_per_disengagement", "bob", "agree: the stops are "
                          "all in the known construction zone", blocking=True)
    assert second.complete and second.applies_to("blocking") and second.reviewers == ("ann", "bob")
    assert second.seqs == (1, 2) and entry.details["complete"] and len(second.reasons) == 2
    assert [e.action for e in read_entries(workspace)] == ["waive", "waive"]


def test_the_same_reviewer_cannot_waive_an_advisory_gate_twice(workspace):
    waive(workspace, "predictor", STACK, "jerk_rms", "ann", REASON)
    with pytest.raises(BadInput, match="ann already waived"):
        waive(workspace, "predictor", STACK, "jerk_rms", "ann", REASON)


def test_a_waiver_covers_exactly_the_versions_it_names(workspace):
    waive(workspace, "predictor", {"predictor": "3"}, "jerk_rms", "ann", REASON)
    assert [w.gate for w in active_waivers(workspace, {"predictor": "3"})] == ["jerk_rms"]
    assert active_waivers(workspace, {"predictor": "4"}) == []
    waive(workspace, "predictor", STACK, "map", "ann", REASON)
    assert [w.gate for w in active_waivers(workspace, STACK)] == ["map"]
    assert active_waivers(workspace, {"detector": "3", "predictor": "3"}) == []  # a new detector: not waived
    assert active_waivers(workspace, {"predictor": 3}) != []  # versions compare as text


@pytest.mark.parametrize(("reason", "gate", "message"), [
    ("", "g", "at least 10 characters"),
    ("  too short ", "g", "at least 10 characters"),
    (None, "g", "at least 10 characters"),
    (REASON, "  ", "name the gate"),
])
def test_bad_waivers_are_bad_input_and_record_nothing(workspace, reason, gate, message):
    with pytest.raises(BadInput, match=message):
        waive(workspace, "predictor", STACK, gate, "ann", reason)
    assert read_entries(workspace) == []


def test_severity_lookup_makes_a_gate_blocking(workspace):
    severity = {"km_per_disengagement": "blocking", "jerk_rms": "advisory"}.__getitem__
    _, waiver = waive(workspace, "predictor", STACK, "km_per_disengagement", "ann", REASON, severity=severity)
    assert waiver.blocking and not waiver.complete
    _, waiver = waive(workspace, "predictor", STACK, "jerk_rms", "ann", REASON, severity=severity, blocking=True)
    assert waiver.blocking  # the flag is never weakened by the lookup
    with pytest.raises(BadInput, match="severity 'major'"):
        waive(workspace, "predictor", STACK, "x", "ann", REASON, severity=lambda gate: "major")


def test_an_advisory_waiver_never_lifts_a_blocking_gate(workspace):
    waive(workspace, "predictor", STACK, "km_per_disengagement", "ann", REASON)  # --blocking forgotten
    waivers = active_waivers(workspace, STACK)
    assert waivers[0].complete and not waivers[0].applies_to("blocking")
    assert report_waivers(waivers, {"km_per_disengagement": "blocking"}) == []
    waive(workspace, "predictor", STACK, "km_per_disengagement", "bob", REASON)
    assert report_waivers(active_waivers(workspace, STACK), {"km_per_disengagement": "blocking"}) == [
        {"gate": "km_per_disengagement", "reviewers": ["ann", "bob"], "reason": f"{REASON} / {REASON}"}]
    assert report_waivers(active_waivers(workspace, STACK), {}) == []  # a gate the gate set does not hold


def test_an_edited_waiver_is_not_honoured(workspace):
    waive(workspace, "predictor", STACK, "jerk_rms", "ann", REASON)
    ledger = Ledger(workspace)
    doc = json.loads(ledger.path.read_text())
    doc["details"]["gate"] = "km_per_disengagement"
    ledger.path.write_text(json.dumps(doc) + "\n")
    assert active_waivers(workspace, STACK) == []


def test_waive_command_takes_the_candidate_and_severity_from_the_report(workspace):
    report, _ = write_sample_report(workspace, "predictor", STACK, [sample_gate("fail"),
                                                                     sample_gate("fail", "jerk_rms", "advisory")])
    ws = ["--workspace", str(workspace.root), "--json"]
    code, doc = cli_json(["release", "waive", "--report", report.report_id, "--gate", "km_per_disengagement",
                          "--reviewer", "ann", "--reason", REASON, *ws])
    assert code == 0 and doc["blocking"] and not doc["complete"] and doc["candidate"] == STACK
    assert doc["ledger_seq"] == 1 and read_entries(workspace)[0].report_id == report.report_id
    code, doc = cli_json(["release", "waive", "--report", report.report_id[:6], "--gate", "km_per_disengagement",
                          "--reviewer", "bob", "--reason", REASON, *ws])
    assert code == 0 and doc["complete"] and doc["reviewers"] == ["ann", "bob"]
    code, doc = cli_json(["release", "waive", "--report", report.report_id, "--gate", "jerk_rms",
                          "--reviewer", "ann", "--reason", REASON, *ws])
    assert code == 0 and doc["complete"] and not doc["blocking"]
    assert run_cli(["release", "waive", "--report", report.report_id, "--gate", "nope", "--reviewer", "ann",
                    "--reason", REASON, *ws]) == 2  # not a gate of the report
    assert run_cli(["release", "waive", "--report", "feedbeef", "--gate", "jerk_rms", "--reviewer", "ann",
                    "--reason", REASON, *ws]) == 2  # no such report
    assert run_cli(["release", "waive", "--gate", "jerk_rms", "--reviewer", "ann", "--reason", REASON, *ws]) == 2
    assert run_cli(["release", "waive", "--report", report.report_id, "--gate", "jerk_rms", "--reviewer", "cy",
                    "--reason", "short", *ws]) == 2


def test_waive_command_resolves_a_candidate_reference(workspace, capsys):
    from tests.gates.test_promotion import add_versions

    add_versions(Registry(workspace), "predictor", 2)
    assert resolve_single_model(workspace, "predictor@candidate") == {"predictor": "2"}
    stack = lambda ws, ref: {"detector": "5", **resolve_single_model(ws, ref)}  # noqa: E731  a DAG's stack
    code, doc = cli_json(["release", "waive", "--candidate", "predictor@candidate", "--gate", "map", "--reviewer",
                          "ann", "--reason", REASON, "--workspace", str(workspace.root), "--json"], resolver=stack)
    assert code == 0 and doc["candidate"] == {"detector": "5", "predictor": "2"}
    assert read_entries(workspace)[0].name == "predictor"
    assert run_cli(["release", "waive", "--candidate", "predictor", "--gate", "map", "--reviewer", "ann",
                    "--reason", REASON, "--workspace", str(workspace.root)], resolver=stack) == 2  # not NAME@X
    capsys.readouterr()
    assert run_cli(["release", "waive", "--candidate", "predictor@1", "--gate", "map", "--reviewer", "ann",
                    "--reason", REASON, "--blocking", "--workspace", str(workspace.root)],
                   resolver=resolve_single_model) == 0
    assert "pending a second, different reviewer (1 of 2 reviewers: ann" in capsys.readouterr().out


def test_waive_command_resolves_the_whole_stack_in_the_dag_by_default(workspace, tmp_path):
    from tests.dag.helpers import node, tiny_models, write_config_dir
    from tests.gates.test_promotion import add_versions

    cfg = write_config_dir(tmp_path / "cfg", tiny_models(),
                           {"test": {"nodes": {"a": node("train", "tiny_a"), "c": node("train", "tiny_c", ["a"])}}})
    registry = Registry(workspace)
    add_versions(registry, "a", 1)
    add_versions(registry, "c", 2)
    code, doc = cli_json(["release", "waive", "--candidate", "c@candidate", "--dag", "test", "--config-dir", str(cfg),
                          "--gate", "map", "--reviewer", "ann", "--reason", REASON,
                          "--workspace", str(workspace.root), "--json"])
    assert code == 0 and doc["candidate"] == {"a": "1", "c": "2"}
    assert run_cli(["release", "waive", "--candidate", "zz@candidate", "--dag", "test", "--config-dir", str(cfg),
                    "--gate", "map", "--reviewer", "ann", "--reason", REASON,
                    "--workspace", str(workspace.root)]) == 2  # not a node of the DAG

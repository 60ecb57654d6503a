"""build_report: deterministic ids, pictures hashed into the id, waivers, validation of every input."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from andon.errors import BadInput
from andon.gates.records import FAIL, PASS, GateResult
from andon.gates.report_build import build_report, events_from_simulation, flips_from_suite
from andon.ids import hash_json
from tests.gates.report_samples import (
    CANDIDATE,
    GATE_CONFIG,
    kmpd_gate,
    map_gate,
    sample_report,
    write_picture,
)

PICTURE = "simulations/sim0000000000001/pictures/e1.png"


def test_the_id_is_the_hash_of_the_content(tmp_path):
    report = sample_report(tmp_path)
    content = report.to_dict()
    del content["report_id"]
    assert report.report_id == hash_json(content)[:16] == report.computed_id()
    assert len(report.report_id) == 16
    assert report.gate_set == {"name": "release", "config": GATE_CONFIG, "config_hash": hash_json(GATE_CONFIG)}
    assert report.verdict == FAIL


def test_same_inputs_in_any_order_give_the_same_report(tmp_path):
    gates = [kmpd_gate(), map_gate(), map_gate(name="aa_map", outcome="pass")]
    events = [{"scenario_id": f"sc-{i}", "time_ns": i, "cause": "ttc", "picture": None} for i in range(6)]
    first = sample_report(tmp_path, gates=gates, events=events)
    rng = random.Random(3)
    rng.shuffle(gates)
    rng.shuffle(events)
    second = sample_report(tmp_path, gates=gates, events=events)
    assert second.to_dict() == first.to_dict()
    assert [g.name for g in first.gates] == ["aa_map", "detector_map", "km_per_disengagement"]
    assert [e["scenario_id"] for e in first.events] == [f"sc-{i}" for i in range(6)]
    assert first.inputs["datasets"] == ["ds01", "ds02"]


def test_a_changed_picture_changes_the_id(tmp_path):
    before = sample_report(tmp_path)
    event = before.events[0]
    assert event["picture"] == PICTURE
    assert event["picture_sha256"] == hashlib.sha256((tmp_path / PICTURE).read_bytes()).hexdigest()
    write_picture(tmp_path, PICTURE, colour="tab:green")
    after = sample_report(tmp_path, pictures=False)
    assert after.report_id != before.report_id
    assert after.events[0]["picture_sha256"] != event["picture_sha256"]


def test_a_missing_picture_is_a_note_not_a_crash(tmp_path):
    report = sample_report(tmp_path, pictures=False)
    assert report.events[0]["picture_sha256"] is None
    assert any(n.startswith(f"picture missing: {PICTURE}") for n in report.notes)


def test_picture_paths_are_relative_to_the_workspace(tmp_path):
    write_picture(tmp_path, PICTURE)
    absolute = sample_report(tmp_path, events=[{"scenario_id": "s", "time_ns": 1, "cause": "ttc",
                                                "picture": str(tmp_path / PICTURE)}])
    assert absolute.events[0]["picture"] == PICTURE
    for bad in ("/etc/passwd", "../outside.png"):
        with pytest.raises(BadInput, match="workspace"):
            sample_report(tmp_path, events=[{"scenario_id": "s", "time_ns": 1, "cause": "ttc", "picture": bad}])


def test_notes_carry_the_sensor_approximation(tmp_path):
    report = sample_report(tmp_path)
    assert report.notes == ("simulation sim0000000000001: closed-loop sensors approximated "
                            "(logged sweep moved to the simulated pose)",)


def test_waivers_mark_their_gate_and_decide_the_verdict(tmp_path):
    waiver = {"gate": "km_per_disengagement", "reviewers": ["bo", "al"], "reason": "known sim artefact"}
    report = sample_report(tmp_path, waivers=[waiver])
    assert report.verdict == PASS
    gate = report.gate("km_per_disengagement")
    assert gate.outcome == FAIL and gate.waived_by == ("al", "bo")
    assert report.waivers == ({"gate": "km_per_disengagement", "reviewers": ["al", "bo"],
                               "reason": "known sim artefact"},)


@pytest.mark.parametrize(("waiver", "message"), [
    ({"gate": "nope", "reviewers": ["al"], "reason": "x"}, "waiver of unknown gate 'nope'"),
    ({"gate": "detector_map", "reviewers": [], "reason": "x"}, "needs reviewers and a reason"),
    ({"gate": "detector_map", "reviewers": ["al"], "reason": " "}, "needs reviewers and a reason"),
])
def test_bad_waivers_are_refused(tmp_path, waiver, message):
    with pytest.raises(BadInput, match=message):
        sample_report(tmp_path, waivers=[waiver])


def test_a_gate_marked_waived_needs_a_waiver_record(tmp_path):
    with pytest.raises(BadInput, match="waived by mallory but no waiver"):
        sample_report(tmp_path, gates=[kmpd_gate(waived_by=("mallory",))])


@pytest.mark.parametrize(("override", "message"), [
    ({"gates": [map_gate(), map_gate()]}, "repeated: detector_map"),
    ({"inputs": {"datasets": []}}, "inputs need code_version"),
    ({"candidate": {"name": "p", "models": {"predictor": "predictor7"}}}, "'name@version' references"),
    ({"candidate": {"models": {}}}, "the candidate must be"),
    ({"flips": {"regressed": []}}, "unknown keys regressed"),
    ({"events": [{"scenario_id": "s", "time_ns": 1, "cause": "ttc", "side": "other"}]}, "event side 'other'"),
    ({"mlflow_runs": [{"model": "p", "version": "7"}]}, "needs run_id"),
    ({"approvals": [{"decision": "ok"}]}, "approval needs a reviewer"),
])
def test_bad_inputs_are_named(tmp_path, override, message):
    with pytest.raises(BadInput, match=message):
        sample_report(tmp_path, **override)


def test_no_gates_is_insufficient_never_pass(tmp_path):
    report = build_report(tmp_path, candidate=CANDIDATE, gate_set="empty", gate_config={}, gates=[],
                          inputs={"code_version": "x"})
    assert report.verdict == "insufficient" and report.baseline is None
    assert report.inputs["models"] == {"candidate": {"predictor": "predictor@7"}, "baseline": None}
    assert report.flips == {"regressions": [], "improvements": []}


def test_events_and_flips_from_result_files():
    sim = {"sim_id": "abcd", "events": [{"scenario_id": "s1", "time_ns": 5, "cause": "collision",
                                         "picture": "pictures/s1_5.png"},
                                        {"scenario_id": "s2", "time_ns": 7, "cause": "ttc", "picture": None}]}
    events = events_from_simulation(sim, side="baseline")
    assert [(e["side"], e["sim_id"], e["picture"]) for e in events] == [
        ("baseline", "abcd", "simulations/abcd/pictures/s1_5.png"), ("baseline", "abcd", None)]
    with pytest.raises(BadInput, match="side 'prod'"):
        events_from_simulation(sim, side="prod")
    suite = {"run_id": "r1", "suite": "cut_ins",
             "results": [{"scenario_id": "s1", "check": "ttc", "picture": "pictures/s1.png"}],
             "flips": {"regressions": [{"scenario_id": "s1", "check": "ttc", "value": 0.5, "baseline_value": 2.0}],
                       "improvements": [{"scenario_id": "s2", "check": "ttc", "value": 2.0, "baseline_value": 0.5}]}}
    flips = flips_from_suite(suite)
    assert flips["regressions"][0]["picture"] == "suites/r1/pictures/s1.png"
    assert flips["improvements"][0]["picture"] is None
    assert flips["regressions"][0]["suite"] == "cut_ins" and flips["regressions"][0]["run_id"] == "r1"


def test_gate_numbers_stay_with_their_inputs(tmp_path):
    report = sample_report(tmp_path)
    doc = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    kmpd = next(g for g in doc["gates"] if g["name"] == "km_per_disengagement")
    assert kmpd["inputs"] == {"sim_id": "sim0000000000001", "baseline_sim_id": "sim0000000000002"}
    assert kmpd["details"]["km_per_disengagement"]["baseline"]["interval"] == [40.1, None]
    assert doc["inputs"]["code_version"] and doc["inputs"]["seeds"] == {"bootstrap": 0}
    assert doc["inputs"]["suites"][0]["run_id"] == "run0000000000001"
    assert GateResult.from_dict(kmpd).interval == (18.2, 55.0)

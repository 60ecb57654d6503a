"""Each gate kind passes, fails and (where statistics decide) reports insufficient evidence, on crafted inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from andon.dag.status import Skew
from andon.gates.evaluate import evaluate_gate, evaluate_gates
from andon.gates.records import FAIL, INSUFFICIENT, PASS, verdict_of
from andon.gates.spec import gate_set_from_config
from tests.gates.gate_helpers import (
    DATASET_ID,
    crafted,
    dataset,
    detection_eval,
    one_gate,
    prediction_eval,
    sim_doc,
    status,
    suite_doc,
)

DET = {"name": "map", "kind": "model_metric", "model": "detector", "metric": "mAP", "eval_dataset": "ds"}
PRED = {"name": "ade", "kind": "model_metric", "model": "predictor", "metric": "minADE_k", "eval_dataset": "ds"}
KPD = {"name": "kpd", "kind": "system_metric", "metric": "km_per_disengagement"}


def judge(gate: dict[str, Any], evidence: Any, **more: Any) -> Any:
    g, gate_set = one_gate(gate, **more)
    return evaluate_gate(g, gate_set, evidence)


# ----- data ------------------------------------------------------------------------------------------
def data_evidence(tmp_path: Path, status_of_training: str = "accepted") -> Any:
    tags = {("detector", "2"): {"dataset_id": "det1", "dag.kind": "train", "dag.dataset.detection_synthetic": "det1"},
            ("predictor", "5"): {"dataset_id": "auto1", "dag.kind": "train"},
            ("prediction_autolabel", "3"): {"dag.kind": "autolabel", "dag.dataset.prediction_synthetic": "src1",
                                            "dag.output_dataset": "auto1"},
            ("tracker", "1"): {"dag.kind": "fixed"}}
    datasets = {"det1": dataset("det1", status_of_training, reasons=["drift 0.4 > 0.2"]), "auto1": dataset("auto1"),
                "src1": dataset("src1")}
    return crafted(tmp_path, {"detector": "2", "predictor": "5", "prediction_autolabel": "3", "tracker": "1"},
                   tags=tags, dataset_docs=datasets)


def test_data_passes_when_every_dataset_was_accepted(tmp_path: Path) -> None:
    out = judge({"name": "data", "kind": "data"}, data_evidence(tmp_path))
    assert out.outcome == PASS, out.reason
    assert out.inputs["datasets"] == ["auto1", "det1", "src1"]
    roles = {(r["model"], r["role"]) for r in out.details["datasets"]}
    assert ("prediction_autolabel@3", "built (autolabel output)") in roles and ("detector@2", "trained on") in roles


def test_data_fails_on_a_rejected_dataset(tmp_path: Path) -> None:
    out = judge({"name": "data", "kind": "data"}, data_evidence(tmp_path, "rejected"))
    assert out.outcome == FAIL and "det1" in out.reason and "rejected: drift 0.4 > 0.2" in out.reason


def test_data_fails_for_a_trained_version_that_recorded_no_dataset(tmp_path: Path) -> None:
    evidence = data_evidence(tmp_path)
    evidence.tags[("detector", "2")] = {"dag.kind": "train"}
    out = judge({"name": "data", "kind": "data"}, evidence)
    assert out.outcome == FAIL and "detector@2 records no dataset" in out.reason


# ----- provenance ------------------------------------------------------------------------------------
def provenance_evidence(tmp_path: Path, *statuses: Any) -> Any:
    tags = {("detector", "2"): {"dag.config": "c", "fingerprint": "fpd"},
            ("predictor", "5"): {"dag.config": "c", "fingerprint": "fpp"}}
    return crafted(tmp_path, tags=tags, statuses={"default": list(statuses)})


def test_provenance_passes_when_every_node_is_fresh_and_recorded(tmp_path: Path) -> None:
    evidence = provenance_evidence(tmp_path, status("detector", fingerprint="fpd", version="2"),
                                   status("predictor", fingerprint="fpp", version="5"))
    out = judge({"name": "prov", "kind": "provenance"}, evidence)
    assert out.outcome == PASS, out.reason
    assert out.inputs["fingerprints"] == {"detector": "fpd", "predictor": "fpp"}


def test_provenance_fails_listing_stale_nodes_and_candidate_skew(tmp_path: Path) -> None:
    evidence = provenance_evidence(
        tmp_path, status("detector", "stale", "fpd2", "2", reasons=["code of andon.models.detector changed"]),
        status("predictor", fingerprint="fpp", version="5", skew=[Skew("candidate", "detector", "1", "2")]))
    out = judge({"name": "prov", "kind": "provenance"}, evidence)
    assert out.outcome == FAIL
    assert "detector is stale: code of andon.models.detector changed" in out.reason
    assert "skew: predictor@candidate (v5) was made from detector v1" in out.reason


def test_provenance_lists_production_skew_without_failing(tmp_path: Path) -> None:
    evidence = provenance_evidence(tmp_path, status("detector", fingerprint="fpd", version="2"),
                                   status("predictor", fingerprint="fpp", version="5",
                                          skew=[Skew("production", "detector", "1", "2")]))
    out = judge({"name": "prov", "kind": "provenance"}, evidence)
    assert out.outcome == PASS and "skew: predictor@production" in out.details["notes"][0]


def test_provenance_fails_for_a_version_that_is_not_the_fresh_one_or_recorded_nothing(tmp_path: Path) -> None:
    evidence = provenance_evidence(tmp_path, status("detector", fingerprint="other", version="3"),
                                   status("predictor", fingerprint="fpp", version="5"))
    evidence.tags[("predictor", "5")] = {}
    out = judge({"name": "prov", "kind": "provenance"}, evidence)
    assert out.outcome == FAIL
    assert "detector@2 is not the fresh version" in out.reason and "predictor@5 recorded no config" in out.reason


# ----- model metrics: detector ------------------------------------------------------------------------
def test_detection_map_passes_fails_and_is_insufficient(tmp_path: Path) -> None:
    good = crafted(tmp_path, evals={"candidate": detection_eval("detector@2", hit_rate=1.0)})
    out = judge({**DET, "min": 0.5}, good)
    assert out.outcome == PASS and out.value == pytest.approx(1.0, abs=0.01) and out.margin > 0
    assert out.inputs["eval_dataset_id"] == DATASET_ID and out.inputs["resamples"] == 200
    assert out.details["slices"][0]["slice"] == "all"

    bad = crafted(tmp_path, evals={"candidate": detection_eval("detector@2", hit_rate=0.2)})
    out = judge({**DET, "min": 0.5}, bad)
    assert out.outcome == FAIL and out.interval[1] < 0.5 and out.margin < 0

    # a mediocre detector on few scenarios, judged against a bound near its mAP: undecided
    few = crafted(tmp_path, evals={"candidate": detection_eval("detector@2", n_units=6, frames_per_unit=1,
                                                               hit_rate=0.6, seed=1)})
    first = judge({**DET, "min": 0.5}, few)
    bound = first.value  # put the bound on the estimate's doorstep
    out = judge({**DET, "min": round(bound - 0.02, 4)}, few)
    assert out.outcome == INSUFFICIENT, out.reason
    assert out.needed["scenarios"] >= 1 and "insufficient evidence" in out.reason


def test_detection_slices_are_judged_and_tabled(tmp_path: Path) -> None:
    evidence = crafted(tmp_path, evals={"candidate": detection_eval("detector@2", hit_rate=1.0, tagged=[0, 1, 2])})
    gate = {**DET, "min": 0.5, "slices": [{"name": "ped", "classes": ["pedestrian"]},
                                          {"name": "near", "max_range_m": 15.0},
                                          {"name": "night", "tags": ["night"]}]}
    out = judge(gate, evidence)
    assert out.outcome == PASS, out.reason
    rows = {r["slice"]: r for r in out.details["slices"]}
    assert set(rows) == {"all", "ped", "near", "night"}
    assert rows["night"]["scenarios"] == 3 and rows["all"]["scenarios"] == 20
    assert rows["near"]["items"] == 60  # the vehicles only (10 m); pedestrians are at 25 m
    assert all(r["candidate_interval"] is not None for r in rows.values())


def test_detection_ap_of_one_class(tmp_path: Path) -> None:
    evidence = crafted(tmp_path, evals={"candidate": detection_eval("detector@2", hit_rate=1.0)})
    out = judge({**DET, "metric": "AP:pedestrian", "min": 0.9}, evidence)
    assert out.outcome == PASS and out.value == pytest.approx(1.0, abs=0.01)


def test_detection_non_regression_is_paired(tmp_path: Path) -> None:
    same = detection_eval("detector@2", hit_rate=0.8, seed=5)
    prod = detection_eval("detector@1", hit_rate=0.8, seed=5)
    evidence = crafted(tmp_path, baseline={"detector": "1"}, evals={"candidate": same, "baseline": prod})
    out = judge({**DET, "max_regression": 0.02}, evidence)
    assert out.outcome == PASS and out.value == pytest.approx(0.0) and out.interval == (0.0, 0.0)
    assert out.inputs["model"] == {"candidate": "detector@2", "baseline": "detector@1"}
    row = out.details["slices"][0]
    assert row["baseline"] == pytest.approx(row["candidate"]) and row["difference"] == pytest.approx(0.0)

    worse = crafted(tmp_path, baseline={"detector": "1"},
                    evals={"candidate": detection_eval("detector@2", hit_rate=0.4, seed=5),
                           "baseline": detection_eval("detector@1", hit_rate=1.0, seed=5)})
    out = judge({**DET, "max_regression": 0.02}, worse)
    assert out.outcome == FAIL and out.value < -0.02 and out.bound == pytest.approx(-0.02)


def test_non_regression_without_a_baseline_is_skipped_or_required(tmp_path: Path) -> None:
    evidence = crafted(tmp_path, evals={"candidate": detection_eval("detector@2")})
    out = judge({**DET, "max_regression": 0.02}, evidence)
    assert out.outcome == PASS and "non-regression skipped" in out.reason
    out = judge({**DET, "max_regression": 0.02, "require_baseline": True}, evidence)
    assert out.outcome == FAIL and "required but impossible" in out.reason


def test_too_few_scenarios_is_insufficient_evidence(tmp_path: Path) -> None:
    evidence = crafted(tmp_path, evals={"candidate": detection_eval("detector@2", n_units=4)})
    out = judge({**DET, "min": 0.5, "min_scenarios": 10}, evidence)
    assert out.outcome == INSUFFICIENT and out.needed == {"scenarios": 6}
    assert "4 scenario units < min_scenarios 10" in out.reason


def test_log_units_resample_whole_logs(tmp_path: Path) -> None:
    evidence = crafted(tmp_path, evals={"candidate": detection_eval("detector@2", n_units=20)})
    out = judge({**DET, "min": 0.5, "unit": "log"}, evidence)
    assert out.outcome == PASS and out.details["slices"][0]["scenarios"] == 10


# ----- model metrics: predictor -----------------------------------------------------------------------
def test_prediction_min_ade_passes_fails_and_is_insufficient(tmp_path: Path) -> None:
    out = judge({**PRED, "max": 2.0}, crafted(tmp_path, evals={"candidate": prediction_eval("predictor@5", 1.0)}))
    assert out.outcome == PASS and out.value == pytest.approx(1.0, abs=0.05) and out.interval[1] < 2.0
    out = judge({**PRED, "max": 2.0}, crafted(tmp_path, evals={"candidate": prediction_eval("predictor@5", 3.0)}))
    assert out.outcome == FAIL and out.interval[0] > 2.0
    noisy = prediction_eval("predictor@5", 2.0, n_units=5, agents_per_unit=2, spread_m=1.0, seed=3)
    out = judge({**PRED, "max": 2.0}, crafted(tmp_path, evals={"candidate": noisy}))
    assert out.outcome == INSUFFICIENT and out.needed["scenarios"] >= 1


def test_prediction_non_regression_and_slices(tmp_path: Path) -> None:
    evidence = crafted(tmp_path, baseline={"predictor": "4"},
                       evals={"candidate": prediction_eval("predictor@5", 1.05, seed=2),
                              "baseline": prediction_eval("predictor@4", 1.0, seed=2)})
    gate = {**PRED, "max": 2.0, "max_regression": 0.1,
            "slices": [{"name": "ped", "classes": ["pedestrian"]}, {"name": "far", "min_range_m": 30.0}]}
    out = judge(gate, evidence)
    assert out.outcome == PASS, out.reason
    rows = {r["slice"]: r for r in out.details["slices"]}
    assert rows["all"]["difference"] == pytest.approx(0.05) and rows["ped"]["items"] == 100
    assert rows["far"]["items"] < 200
    out = judge({**gate, "max_regression": 0.01}, evidence)
    assert out.outcome == FAIL and "candidate - baseline" in out.reason


# ----- suites ----------------------------------------------------------------------------------------
def test_suite_passes_and_lists_flips(tmp_path: Path) -> None:
    flips = {"regressions": [{"scenario_id": "s3", "check": "recall_near", "value": 0.8, "baseline_value": 0.95}],
             "improvements": []}
    evidence = crafted(tmp_path, suite_results={"core": suite_doc("core", flips=flips), "night": suite_doc("night")})
    out = judge({"name": "suites", "kind": "suite", "suites": ["core", "night"]}, evidence)
    assert out.outcome == PASS, out.reason  # the warning check failed: it does not block
    assert out.details["flips"]["regressions"][0]["suite"] == "core" and "1 regression flip" in out.reason
    assert out.inputs["suites"] == [{"suite": "core", "run_id": "run-core"}, {"suite": "night", "run_id": "run-night"}]


def test_suite_fails_on_a_blocking_check_errors_or_other_models(tmp_path: Path) -> None:
    evidence = crafted(tmp_path, suite_results={"core": suite_doc("core", passed=False)})
    out = judge({"name": "suites", "kind": "suite", "suites": ["core"]}, evidence)
    assert out.outcome == FAIL and "blocking check recall_near failed (recall 0.7 >= 0.9; 3 of 10" in out.reason
    errored = suite_doc("core", errors=[{"scenario_id": "s9", "message": "boom"}])
    out = judge({"name": "suites", "kind": "suite", "suites": ["core"]},
                crafted(tmp_path, suite_results={"core": errored}))
    assert out.outcome == FAIL and "s9: boom" in out.reason
    other = suite_doc("core", models=["detector@1"])
    out = judge({"name": "suites", "kind": "suite", "suites": ["core"]},
                crafted(tmp_path, suite_results={"core": other}))
    assert out.outcome == FAIL and "judged detector@1, but the candidate is detector@2" in out.reason


# ----- system metrics --------------------------------------------------------------------------------
def test_km_per_disengagement_passes_fails_and_is_insufficient(tmp_path: Path) -> None:
    out = judge({**KPD, "min": 1.0}, crafted(tmp_path, sim_candidate=sim_doc(100.0, 2)))
    assert out.outcome == PASS and out.interval[0] >= 1.0 and out.value == pytest.approx(50.0)
    assert out.details["km_per_disengagement"]["candidate"]["disengagements"] == 2
    out = judge({**KPD, "min": 10.0}, crafted(tmp_path, sim_candidate=sim_doc(10.0, 20)))
    assert out.outcome == FAIL and out.interval[1] < 10.0 and len(out.details["events"]) == 20
    out = judge({**KPD, "min": 10.0}, crafted(tmp_path, sim_candidate=sim_doc(20.0, 0)))
    assert out.outcome == INSUFFICIENT and out.interval[1] is None  # no disengagement: unbounded above
    # 0 disengagements at 95 %: the lower bound is km / 3.0, so 30 km are needed in all
    assert out.needed["km"] == pytest.approx(10.0 * 2.9957 - 20.0, abs=0.01)


def test_km_per_disengagement_non_regression(tmp_path: Path) -> None:
    gate = {**KPD, "non_regression": True, "max_regression": 0.2}
    same = crafted(tmp_path, sim_candidate=sim_doc(1000.0, 100), sim_baseline=sim_doc(1000.0, 140, sim_id="sim-b"))
    out = judge(gate, same)
    assert out.outcome == PASS and out.interval[1] <= 1.2, out.reason
    worse = crafted(tmp_path, sim_candidate=sim_doc(1000.0, 200), sim_baseline=sim_doc(1000.0, 100, sim_id="b"))
    out = judge(gate, worse)
    assert out.outcome == FAIL and out.interval[0] > 1.2
    few = crafted(tmp_path, sim_candidate=sim_doc(10.0, 3), sim_baseline=sim_doc(10.0, 3, sim_id="b"))
    out = judge(gate, few)
    assert out.outcome == INSUFFICIENT and out.needed["km"] > 0
    unpaired = crafted(tmp_path, sim_candidate=sim_doc(10.0, 1),
                       sim_baseline=sim_doc(10.0, 1, sim_id="b", scenario_ids=["s1"]))
    out = judge(gate, unpaired)
    assert out.outcome == FAIL and "different scenarios" in out.reason
    alone = judge({**gate, "min": 1.0}, crafted(tmp_path, sim_candidate=sim_doc(100.0, 2)))
    assert alone.outcome == PASS and "non-regression skipped" in alone.reason


def test_collisions(tmp_path: Path) -> None:
    gate = {"name": "col", "kind": "system_metric", "metric": "collisions"}
    assert judge(gate, crafted(tmp_path, sim_candidate=sim_doc(10.0, 0))).outcome == PASS
    out = judge(gate, crafted(tmp_path, sim_candidate=sim_doc(10.0, 1, collisions=1)))
    assert out.outcome == FAIL and out.value == 1 and out.details["events"][0]["cause"] == "collision"
    rate = {"name": "rate", "kind": "system_metric", "metric": "collisions_per_km", "max": 0.5}
    assert judge(rate, crafted(tmp_path, sim_candidate=sim_doc(100.0, 0))).outcome == PASS
    assert judge(rate, crafted(tmp_path, sim_candidate=sim_doc(10.0, 20, collisions=20))).outcome == FAIL
    out = judge(rate, crafted(tmp_path, sim_candidate=sim_doc(2.0, 0)))
    assert out.outcome == INSUFFICIENT and out.needed["km"] > 0


# ----- the whole set ---------------------------------------------------------------------------------
def test_evaluate_gates_judges_every_gate_in_order_and_applies_waivers(tmp_path: Path) -> None:
    gate_set = gate_set_from_config({"name": "t", "bootstrap": {"resamples": 200}, "gates": [
        {**DET, "min": 0.5}, {"name": "col", "kind": "system_metric", "metric": "collisions"},
        {"name": "suites", "kind": "suite", "suites": ["core"], "severity": "advisory"}]})
    evidence = crafted(tmp_path, evals={"candidate": detection_eval("detector@2")},
                       sim_candidate=sim_doc(10.0, 1, collisions=1))
    results = evaluate_gates(tmp_path, gate_set, {"detector": "2"}, evidence=evidence,  # type: ignore[arg-type]
                             waivers=[{"gate": "col", "reviewers": ["ana"], "reason": "test track"}])
    assert [r.name for r in results] == ["map", "col", "suites"]
    assert [r.outcome for r in results] == [PASS, FAIL, FAIL]  # the suite had no result
    assert results[1].waived_by == ("ana",) and verdict_of(results) == PASS


def test_a_waiver_record_lifts_a_blocking_gate_only_with_two_reviewers_for_its_candidate(tmp_path: Path) -> None:
    from andon.gates.evaluate import apply_waivers
    from andon.gates.waivers import Waiver

    gate_set = gate_set_from_config({"name": "t", "gates": [{"name": "col", "kind": "system_metric",
                                                             "metric": "collisions"}]})
    failed = evaluate_gates(tmp_path, gate_set, {"detector": "2"},  # type: ignore[arg-type]
                            evidence=crafted(tmp_path, {"detector": "2"}, sim_candidate=sim_doc(10.0, 1, 1)))
    one = Waiver("col", {"detector": "2"}, ("ana",), ("track test, no public road",), False, (1,))
    two = Waiver("col", {"detector": "2"}, ("ana", "bo"), ("track test, no public road",) * 2, True, (1, 2))
    other = Waiver("col", {"detector": "1"}, ("ana", "bo"), ("older candidate",) * 2, True, (3, 4))
    assert apply_waivers(failed, [one], {"detector": "2"})[0].waived_by == ()
    assert apply_waivers(failed, [other], {"detector": "2"})[0].waived_by == ()
    assert apply_waivers(failed, [two], {"detector": "2"})[0].waived_by == ("ana", "bo")

"""Fail closed: every error a gate can meet is a failed gate with its reason, never a pass, never a traceback.

Injected one at a time: an exception inside an evaluator, a malformed evaluator result, a NaN metric,
a missing slice, a missing suite or simulation document, an errored simulation, a stale upstream and a
skewed cascade (a real DAG in a real workspace), an unreadable evaluation cache, an unreadable dataset,
a model version missing from the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from andon.gates import evaluate
from andon.gates.evaluate import evaluate_gate, evaluate_gates
from andon.gates.evidence import Evidence
from andon.gates.model_eval import PredictionEval, cache_path
from andon.gates.records import FAIL, PASS
from andon.gates.spec import gate_set_from_config
from tests.dag.conftest import cfg_dir, dag_template, dag_ws  # noqa: F401 (fixtures)
from tests.dag.helpers import DATASET, node, run_dag, write_dag
from tests.gates.gate_helpers import crafted, detection_eval, one_gate, prediction_eval, sim_doc

DET = {"name": "map", "kind": "model_metric", "model": "detector", "metric": "mAP", "eval_dataset": "ds", "min": 0.5}
PRED = {"name": "ade", "kind": "model_metric", "model": "predictor", "metric": "minADE_k", "eval_dataset": "ds",
        "max": 2.0}


def judge(gate: dict[str, Any], evidence: Any) -> Any:
    g, gate_set = one_gate(gate)
    return evaluate_gate(g, gate_set, evidence)


def test_an_exception_inside_an_evaluator_fails_the_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any) -> Any:
        raise ZeroDivisionError("division by zero in a metric")

    monkeypatch.setitem(evaluate.EVALUATORS, "model_metric", boom)
    out = judge(DET, crafted(tmp_path))
    assert out.outcome == FAIL and out.kind == "model_metric" and out.severity == "blocking"
    assert "internal error (ZeroDivisionError: division by zero in a metric)" in out.reason
    assert out.details["error"] == "ZeroDivisionError" and out.inputs["gate"]["name"] == "map"


def test_a_malformed_evaluator_result_fails_the_gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(evaluate.EVALUATORS, "data", lambda *args: {"outcome": "pass"})
    out = judge({"name": "data", "kind": "data"}, crafted(tmp_path))
    assert out.outcome == FAIL and "returned a dict, not a GateResult" in out.reason


def test_a_nan_metric_fails_the_gate(tmp_path: Path) -> None:
    ev = prediction_eval("predictor@5", 1.0)
    ev.metrics["minADE_k"][7] = np.nan
    out = judge(PRED, crafted(tmp_path, evals={"candidate": ev}))
    assert out.outcome == FAIL and "NaN or infinite" in out.reason


def test_a_nan_simulation_number_fails_the_gate(tmp_path: Path) -> None:
    gate = {"name": "kpd", "kind": "system_metric", "metric": "km_per_disengagement", "min": 1.0}
    out = judge(gate, crafted(tmp_path, sim_candidate=sim_doc(float("nan"), 0)))
    assert out.outcome == FAIL and "km nan is not a finite distance" in out.reason
    out = judge(gate, crafted(tmp_path, sim_candidate={**sim_doc(10.0, 0), "disengagements": None}))
    assert out.outcome == FAIL and "disengagements None is not a count" in out.reason


@pytest.mark.parametrize(("slice_", "why"), [
    ({"name": "bikes", "classes": ["cyclist"]}, "the evaluation set has no ground-truth box of cyclist"),
    ({"name": "rainy", "tags": ["rain"]}, "no frame of the evaluation set carries tags rain"),
    ({"name": "far", "min_range_m": 100.0},
     "the evaluation set has no ground-truth box of vehicle, pedestrian, cyclist at 100-inf m"),
])
def test_a_missing_detection_slice_fails_the_gate(tmp_path: Path, slice_: dict[str, Any], why: str) -> None:
    out = judge({**DET, "slices": [slice_]}, crafted(tmp_path, evals={"candidate": detection_eval("detector@2")}))
    assert out.outcome == FAIL and f"slice {slice_['name']!r} of gate 'map' cannot be judged: {why}" in out.reason


def test_a_missing_prediction_slice_or_class_metric_fails_the_gate(tmp_path: Path) -> None:
    evidence = crafted(tmp_path, evals={"candidate": prediction_eval("predictor@5", 1.0)})
    out = judge({**PRED, "slices": [{"name": "bikes", "classes": ["cyclist"]}]}, evidence)
    assert out.outcome == FAIL and "no agent of the evaluation set falls in it" in out.reason
    det = crafted(tmp_path, evals={"candidate": detection_eval("detector@2")})
    out = judge({**DET, "metric": "AP:cyclist", "min": 0.5}, det)
    assert out.outcome == FAIL and "has no ground-truth box of cyclist" in out.reason


def test_a_model_missing_from_the_candidate_stack_fails_the_gate(tmp_path: Path) -> None:
    out = judge(PRED, crafted(tmp_path, candidate={"detector": "2"}))
    assert out.outcome == FAIL and "has no node 'predictor'" in out.reason


def test_unpaired_evaluations_fail_non_regression(tmp_path: Path) -> None:
    other = prediction_eval("predictor@4", 1.0, n_units=10)
    evidence = crafted(tmp_path, baseline={"predictor": "4"},
                       evals={"candidate": prediction_eval("predictor@5", 1.0), "baseline": other})
    out = judge({**PRED, "max_regression": 0.1}, evidence)
    assert out.outcome == FAIL and "not evaluated on the same frames" in out.reason


def test_missing_suite_and_simulation_documents_fail(tmp_path: Path) -> None:
    out = judge({"name": "suites", "kind": "suite", "suites": ["core"]}, crafted(tmp_path))
    assert out.outcome == FAIL and "suite core has no result" in out.reason
    out = judge({"name": "suites", "kind": "suite", "suites": ["core"]},
                crafted(tmp_path, suite_results={"core": ["not", "a", "document"]}))
    assert out.outcome == FAIL and "not a suite result document" in out.reason
    out = judge({"name": "suites", "kind": "suite", "suites": ["core"]},
                crafted(tmp_path, suite_results={"core": {"suite": "core"}}))
    assert out.outcome == FAIL and "lacks 'run_id'" in out.reason
    out = judge({"name": "col", "kind": "system_metric", "metric": "collisions"}, crafted(tmp_path))
    assert out.outcome == FAIL and "no simulation result for the candidate" in out.reason
    errored = sim_doc(10.0, 0, errors=[{"scenario_id": "s2", "message": "planner raised"}])
    out = judge({"name": "col", "kind": "system_metric", "metric": "collisions"},
                crafted(tmp_path, sim_candidate=errored))
    assert out.outcome == FAIL and "1 scenario(s) raised (e.g. s2: planner raised)" in out.reason


def test_a_required_baseline_simulation_that_is_missing_fails(tmp_path: Path) -> None:
    gate = {"name": "kpd", "kind": "system_metric", "metric": "km_per_disengagement", "min": 1.0,
            "non_regression": True, "require_baseline": True}
    out = judge(gate, crafted(tmp_path, sim_candidate=sim_doc(100.0, 1)))
    assert out.outcome == FAIL and "required but impossible" in out.reason


def test_nothing_raises_out_of_evaluate_gates(tmp_path: Path) -> None:
    """Every kind at once on evidence that lacks everything: all fail, none raises."""
    gate_set = gate_set_from_config({"name": "t", "gates": [
        {"name": "data", "kind": "data"}, {"name": "prov", "kind": "provenance", "dag": "no_such_dag"}, DET, PRED,
        {"name": "suites", "kind": "suite", "suites": ["core"]},
        {"name": "col", "kind": "system_metric", "metric": "collisions"}]})
    workspace = type("W", (), {"root": tmp_path})()
    results = evaluate_gates(workspace, gate_set, {"detector": "1", "predictor": "1"})  # type: ignore[arg-type]
    assert [r.outcome for r in results] == [FAIL] * 6
    assert all(r.reason for r in results)


# ----- artefacts in a real workspace -----------------------------------------------------------------
@pytest.fixture
def det_workspace(workspace: Any) -> tuple[Any, Any]:
    from tests.datasets.build_helpers import make_agents_log
    from tests.datasets.loading_helpers import DETECTION_SAMPLING, build_version, store

    logs = [make_agents_log(f"d{i}", n_frames=4, seed=i) for i in range(4)]
    return workspace, build_version(workspace, store(workspace, logs), "detection", DETECTION_SAMPLING)


def test_an_unreadable_evaluation_cache_fails_the_gate(det_workspace: tuple[Any, Any]) -> None:
    workspace, version = det_workspace
    path = cache_path(workspace, "detector", "3", version.dataset_id)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated")
    out = judge({**DET, "eval_dataset": version.name}, Evidence(workspace, {"detector": "3"}))
    assert out.outcome == FAIL and f"evaluation cache {path} is unreadable" in out.reason and "rerun=true" in out.reason


def test_an_unreadable_or_rejected_dataset_fails(det_workspace: tuple[Any, Any]) -> None:
    workspace, version = det_workspace
    evidence = Evidence(workspace, {"detector": "3"})
    (version.path / "version.json").write_text("{ not json")
    out = judge({**DET, "eval_dataset_id": version.dataset_id, "eval_dataset": None}, evidence)
    assert out.outcome == FAIL and "unreadable" in out.reason
    # a model version the registry does not hold: the data gate cannot read what it used
    out = judge({"name": "data", "kind": "data"}, evidence)
    assert out.outcome == FAIL and "detector@3 is not in the registry" in out.reason


def test_a_prediction_cache_of_another_dataset_is_refused(det_workspace: tuple[Any, Any]) -> None:
    from andon.gates.model_eval import save_eval

    workspace, version = det_workspace
    foreign = prediction_eval("predictor@1", 1.0)
    save_eval(PredictionEval(foreign.model, "other", "test", foreign.agent_keys, foreign.units, foreign.agent_class,
                             foreign.agent_range_m, foreign.metrics, foreign.k),
              cache_path(workspace, "detector", "4", version.dataset_id))
    out = judge({**DET, "eval_dataset": version.name}, Evidence(workspace, {"detector": "4"}))
    assert out.outcome == FAIL and "holds a prediction evaluation of predictor@1 on other" in out.reason


def test_provenance_and_data_on_a_real_dag(dag_ws: Any, cfg_dir: Path) -> None:  # noqa: F811
    """A real chain a -> c in a real workspace: fresh passes; a config change fails (stale); retraining
    only the upstream fails (skew); the data gate reads the datasets the DAG recorded."""
    doc = {"nodes": {"a": node("train", "tiny_a"), "c": node("train", "tiny_c", ["a"])}}
    write_dag(cfg_dir, "test", doc)
    run_dag(dag_ws, cfg_dir)
    gate = {"name": "prov", "kind": "provenance", "dag": "test"}

    def fresh_evidence(candidate: dict[str, str]) -> Evidence:
        return Evidence(dag_ws, candidate, config_dirs=[str(cfg_dir)])

    out = judge(gate, fresh_evidence({"a": "1", "c": "1"}))
    assert out.outcome == PASS, out.reason
    data = judge({"name": "data", "kind": "data"}, fresh_evidence({"a": "1", "c": "1"}))
    assert data.outcome == PASS, data.reason
    assert {r["role"] for r in data.details["datasets"]} == {f"DAG input {DATASET}"}

    doc["nodes"]["a"]["overrides"] = ["seed=7"]
    write_dag(cfg_dir, "test", doc)
    out = judge(gate, fresh_evidence({"a": "1", "c": "1"}))
    assert out.outcome == FAIL
    assert "a is stale: config changed" in out.reason and "c is stale: upstream a is stale" in out.reason

    run_dag(dag_ws, cfg_dir, targets=["a"])  # a retrained alone: c was made from a v1
    out = judge(gate, fresh_evidence({"a": "2", "c": "1"}))
    assert out.outcome == FAIL
    assert "skew: c@candidate (v1) was made from a v1, but a@candidate is v2" in out.reason

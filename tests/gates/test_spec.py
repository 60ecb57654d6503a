"""Gate sets: the schema refuses typos and wrong combinations; the shipped gate sets compose and validate."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml

from andon.errors import BadInput
from andon.gates.spec import Gate, GateRunConfig, GateSet, gate_set_from_config, load_gate_set


def model_gate(**more: Any) -> dict[str, Any]:
    return {"name": "map", "kind": "model_metric", "model": "detector", "metric": "mAP",
            "eval_dataset": "detection_synthetic", "min": 0.3, **more}


def gate_set(*gates: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": "test", "gates": list(gates) or [{"name": "data", "kind": "data"}], **more}


def test_every_kind_converts_and_round_trips() -> None:
    doc = gate_set(
        {"name": "data", "kind": "data"},
        {"name": "provenance", "kind": "provenance", "dag": "default", "severity": "advisory"},
        model_gate(max_regression=0.02, slices=[{"name": "ped", "classes": ["pedestrian"], "max_range_m": 30.0},
                                                {"name": "night", "tags": ["night"]}]),
        {"name": "ade", "kind": "model_metric", "model": "predictor", "metric": "minADE_k",
         "eval_dataset_id": "abcd1234", "max": 2.0, "unit": "log", "min_scenarios": 5},
        {"name": "suites", "kind": "suite", "suites": ["detection_core"]},
        {"name": "kpd", "kind": "system_metric", "metric": "km_per_disengagement", "min": 5.0,
         "non_regression": True, "max_regression": 0.2},
        {"name": "collisions", "kind": "system_metric", "metric": "collisions"},
    )
    gates = gate_set_from_config(doc)
    assert [g.kind for g in gates.gates] == ["data", "provenance", "model_metric", "model_metric", "suite",
                                             "system_metric", "system_metric"]
    assert gates.gate("map").higher_is_better and not gates.gate("ade").higher_is_better
    assert gates.gate("map").task == "detection" and gates.gate("ade").task == "prediction"
    assert gates.gate("provenance").blocking is False
    assert GateSet.from_dict(gates.to_dict()) == gates
    assert gates.sha256 == GateSet.from_dict(gates.to_dict()).sha256
    # a gate's dict holds only its kind's keys
    assert set(gates.gate("suites").to_dict()) == {"name", "kind", "severity", "description", "suites"}


@pytest.mark.parametrize(("doc", "named"), [
    (gate_set({"name": "d", "kind": "data", "metirc": "mAP"}), "metirc"),
    (gate_set(model_gate(slices=[{"name": "s", "clases": ["vehicle"]}])), "clases"),
    (gate_set(confidense=0.9), "confidense"),
    (gate_set(bootstrap={"resample": 10}), "resample"),
])
def test_a_typo_fails_naming_the_key(doc: dict[str, Any], named: str) -> None:
    with pytest.raises(BadInput, match=named):
        gate_set_from_config(doc)


@pytest.mark.parametrize(("gate", "message"), [
    (model_gate(min=None), "absolute bound"),
    (model_gate(metric="mIoU"), "not one of"),
    (model_gate(metric="AP:static"), "AP of one of"),
    (model_gate(metric="minADE_k", min=1.0), "lower-is-better"),
    (model_gate(min=None, max=0.9), "higher-is-better"),
    (model_gate(eval_dataset=None), "eval_dataset"),
    (model_gate(model=None), "`model`"),
    (model_gate(split="holdout"), "split"),
    (model_gate(unit="frame"), "unit"),
    (model_gate(max_regression=-0.1), "max_regression"),
    (model_gate(require_baseline=True), "require_baseline needs max_regression"),
    (model_gate(slices=[{"name": "a"}, {"name": "a"}]), "repeat"),
    (model_gate(slices=[{"name": "all"}]), "`all`"),
    (model_gate(slices=[{"name": "x", "classes": ["static"]}]), "not detection classes"),
    (model_gate(slices=[{"name": "x", "min_range_m": 30.0, "max_range_m": 10.0}]), "below max_range_m"),
    (model_gate(suites=["x"]), "`suites` is not a key of a model_metric gate"),
    ({"name": "s", "kind": "suite"}, "needs `suites`"),
    ({"name": "s", "kind": "suite", "suites": ["a"], "metric": "mAP"}, "`metric` is not a key"),
    ({"name": "k", "kind": "system_metric", "metric": "km_per_disengagement"}, "floor"),
    ({"name": "k", "kind": "system_metric", "metric": "km_per_disengagement", "min": 1, "max": 2}, "not `max`"),
    ({"name": "k", "kind": "system_metric", "metric": "collisions", "non_regression": True}, "collisions_per_km"),
    ({"name": "k", "kind": "system_metric", "metric": "collisions_per_km"}, "needs `max`"),
    ({"name": "k", "kind": "system_metric", "metric": "jerk"}, "not one of"),
    ({"name": "k", "kind": "system_metric", "metric": "km_per_disengagement", "min": 1, "max_regression": 0.1},
     "needs non_regression"),
    ({"name": "p", "kind": "provenance", "dag": ""}, "needs `dag`"),
    ({"name": "x", "kind": "magic"}, "kind 'magic'"),
    ({"name": "x", "kind": "data", "severity": "warning"}, "severity"),
    ({"name": "1x", "kind": "data"}, "must start with a letter"),
])
def test_bad_combinations_fail_naming_the_gate(gate: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message) as caught:
        gate_set_from_config(gate_set(gate))
    assert repr(gate["name"]) in str(caught.value)


@pytest.mark.parametrize(("more", "message"), [
    ({"confidence": 1.0}, "confidence"),
    ({"confidence": 0.5}, "confidence"),
    ({"bootstrap": {"resamples": 10}}, "resamples"),
    ({"bootstrap": {"seed": -1}}, "seed"),
    ({"gates": []}, "no gates"),
    ({"gates": [{"name": "a", "kind": "data"}, {"name": "a", "kind": "data"}]}, "used twice"),
])
def test_bad_gate_sets_fail(more: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput, match=message):
        gate_set_from_config({"name": "test", "gates": [{"name": "data", "kind": "data"}], **more})


def test_gate_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(BadInput, match="unknown keys"):
        Gate.from_dict({"name": "a", "kind": "data", "colour": "red"})


@pytest.mark.parametrize("name", ["default", "strict"])
def test_shipped_gate_sets_compose(name: str) -> None:
    gates = load_gate_set(name)
    assert gates.name == name
    assert {"data", "provenance", "detection_map", "detection_map_nonregression", "prediction_min_ade",
            "km_per_disengagement", "collisions"} <= {g.name for g in gates.gates}
    # the planning suites and the rate non-regression advise until the demo's models meet them
    assert {g.name for g in gates.gates if not g.blocking} == {"planning_suites", "km_per_disengagement_nonregression"}
    if name == "strict":
        assert gates.confidence == 0.99 and gates.require_approval


def test_default_gate_set_names_the_gates_of_the_default_dag() -> None:
    dag = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs" / "dag" / "default.yaml").read_text())
    named = {g for node in dag["nodes"].values() for g in node.get("gates", ())}
    assert named <= {g.name for g in load_gate_set("default").gates}


def test_gate_set_file_and_unknown_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"defaults": ["base_gate_set", "_self_"], **gate_set(model_gate())}))
    assert load_gate_set(str(path)).gate("map").min == 0.3
    with pytest.raises(BadInput, match="no gate set 'nope'"):
        load_gate_set("nope")
    (tmp_path / "bad.yaml").write_text("gates: [unclosed")
    with pytest.raises(BadInput, match="unreadable"):
        load_gate_set(str(tmp_path / "bad.yaml"))


def test_gate_run_config_composes_with_overrides() -> None:
    from hydra import compose, initialize_config_module

    from andon.gates.spec import _register
    from andon.hydra_app import register_configs

    register_configs()
    _register()  # also when another test registered the schemas before this module was imported
    with initialize_config_module(config_module="andon.configs", version_base="1.3"):
        cfg = compose(config_name="gate_run", overrides=["candidate=predictor@candidate", "gate=strict",
                                                         "rerun=true"])
        assert {f.name for f in fields(GateRunConfig)} <= set(cfg)
        assert cfg.candidate == "predictor@candidate" and cfg.rerun is True
        assert gate_set_from_config(cfg.gate).name == "strict"
        with pytest.raises(Exception, match="candidat"):
            compose(config_name="gate_run", overrides=["candidat=x"])

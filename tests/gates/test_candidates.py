"""The candidate stack: a node at an alias or version plus every upstream node, each resolved in the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from andon.dag.lineage import Lineage, VersionRecord
from andon.dag.spec import Dag, dag_from_config
from andon.errors import BadInput
from andon.gates.candidates import CandidateStack, resolve_baseline, resolve_stack, stack_versions

DEFAULT_DAG = Path(__file__).resolve().parents[2] / "configs" / "dag" / "default.yaml"


class Versions:
    """A VersionReader over hand-made records: {node: [(version, aliases, tags)]}."""

    def __init__(self, records: dict[str, list[tuple[str, tuple[str, ...], dict[str, str]]]]) -> None:
        self.records = records

    def versions(self, name: str) -> list[VersionRecord]:
        return [VersionRecord(name, v, None, tags, aliases) for v, aliases, tags in self.records.get(name, [])]


def default_dag() -> Dag:
    doc = yaml.safe_load(DEFAULT_DAG.read_text())
    return dag_from_config({k: v for k, v in doc.items() if k != "defaults"})


def lineage(workspace: Any, records: dict[str, Any]) -> Lineage:
    return Lineage(workspace, reader=Versions(records))


CASCADE = {
    "detector": [("1", ("production",), {}), ("2", ("candidate",), {})],
    "tracker": [("1", ("candidate", "production"), {"upstream.detector": "1"})],
    "prediction_autolabel": [("1", ("production",), {}), ("3", ("candidate",), {"upstream.detector": "2",
                                                                                 "upstream.tracker": "1"})],
    "predictor": [("4", ("production",), {}),
                  ("5", ("candidate",), {"upstream.prediction_autolabel": "3", "upstream.detector": "2",
                                         "upstream.tracker": "1"})],
}


def test_alias_resolves_the_node_and_every_upstream_node(workspace: Any) -> None:
    stack = resolve_stack(workspace, default_dag(), "predictor@candidate", lineage=lineage(workspace, CASCADE))
    assert dict(stack.versions) == {"detector": "2", "tracker": "1", "prediction_autolabel": "3", "predictor": "5"}
    assert stack.models() == ["detector@2", "predictor@5", "tracker@1"]  # the autolabel link is not a model
    assert stack.references()["prediction_autolabel"] == "prediction_autolabel@3"
    assert stack.fallbacks == ()
    assert CandidateStack.from_dict(stack.to_dict()) == stack
    assert stack_versions(stack) == dict(stack.versions)
    # a node without upstream nodes is a stack of one
    alone = resolve_stack(workspace, default_dag(), "detector@candidate", lineage=lineage(workspace, CASCADE))
    assert dict(alone.versions) == {"detector": "2"}


def test_a_version_pins_its_recorded_upstream_versions(workspace: Any) -> None:
    stack = resolve_stack(workspace, default_dag(), "predictor@5", lineage=lineage(workspace, CASCADE))
    assert dict(stack.versions) == {"detector": "2", "tracker": "1", "prediction_autolabel": "3", "predictor": "5"}
    with pytest.raises(BadInput, match="does not record which version"):
        resolve_stack(workspace, default_dag(), "predictor@4", lineage=lineage(workspace, CASCADE))
    with pytest.raises(BadInput, match="no version 9 of predictor"):
        resolve_stack(workspace, default_dag(), "predictor@9", lineage=lineage(workspace, CASCADE))


def test_missing_alias_fails_naming_the_node_unless_a_fallback_is_allowed(workspace: Any) -> None:
    records = {**CASCADE, "tracker": [("1", ("production",), {})]}
    with pytest.raises(BadInput, match="node tracker \\(upstream of predictor\\) has no version at alias 'candidate'"):
        resolve_stack(workspace, default_dag(), "predictor@candidate", lineage=lineage(workspace, records))
    stack = resolve_stack(workspace, default_dag(), "predictor@candidate", fallback_alias="production",
                          lineage=lineage(workspace, records))
    assert stack.versions["tracker"] == "1" and stack.fallbacks == ("tracker",)
    assert stack.fallback_alias == "production"
    # the named node itself never falls back
    with pytest.raises(BadInput, match="node predictor has no version"):
        resolve_stack(workspace, default_dag(), "predictor@candidate", fallback_alias="production",
                      lineage=lineage(workspace, {**CASCADE, "predictor": [("4", ("production",), {})]}))


def test_bad_references(workspace: Any) -> None:
    with pytest.raises(BadInput, match="NAME@ALIAS"):
        resolve_stack(workspace, default_dag(), "predictor", lineage=lineage(workspace, CASCADE))
    with pytest.raises(BadInput, match="no node 'planner'"):
        resolve_stack(workspace, default_dag(), "planner@candidate", lineage=lineage(workspace, CASCADE))


def test_baseline_is_production_or_none_before_a_first_release(workspace: Any) -> None:
    base = resolve_baseline(workspace, default_dag(), "predictor", lineage=lineage(workspace, CASCADE))
    assert base is not None
    assert dict(base.versions) == {"detector": "1", "tracker": "1", "prediction_autolabel": "1", "predictor": "4"}
    first = {k: [(v, tuple(a for a in al if a != "production"), t) for v, al, t in vs] for k, vs in CASCADE.items()}
    assert resolve_baseline(workspace, default_dag(), "predictor", lineage=lineage(workspace, first)) is None
    explicit = resolve_baseline(workspace, default_dag(), "predictor", "predictor@5",
                                lineage=lineage(workspace, CASCADE))
    assert explicit is not None and explicit.versions["predictor"] == "5"

"""Promotion and rollback on the workspace's real MLflow registry: production, previous, idempotence, resume."""

from __future__ import annotations

import mlflow
import pytest

from andon.errors import BadInput
from andon.gates.promotion import (
    AliasMove,
    apply_moves,
    pending_moves,
    plan_promotion,
    plan_rollback,
    production_of,
    promote,
    rollback,
)
from andon.models.registry import PREVIOUS, PRODUCTION, Registry


def add_versions(registry: Registry, name: str, count: int) -> list[str]:
    """Register `count` tiny dummy versions of model `name` (one MLflow run holding a text artefact)."""
    with mlflow.start_run(experiment_id=registry.experiment_id(f"andon/{name}")) as run:
        mlflow.log_text("weights", "model/weights.txt")
    return [registry.register(name, run.info.run_id, "model", {"test": "dummy"}) for _ in range(count)]


def _state(registry, *names):
    return {name: {k: v for k, v in registry.aliases(name).items() if k in (PRODUCTION, PREVIOUS)} for name in names}


@pytest.fixture
def registry(workspace):
    registry = Registry(workspace)
    add_versions(registry, "detector", 3)
    add_versions(registry, "predictor", 3)
    return registry


def test_promote_moves_production_and_keeps_previous(registry):
    first = promote(registry, {"detector": "1", "predictor": "1"})
    assert first == [AliasMove("detector", PRODUCTION, None, "1"), AliasMove("predictor", PRODUCTION, None, "1")]
    assert _state(registry, "detector", "predictor") == {"detector": {PRODUCTION: "1"}, "predictor": {PRODUCTION: "1"}}
    second = promote(registry, {"detector": "1", "predictor": "2"})
    assert second == [AliasMove("predictor", PREVIOUS, None, "1"), AliasMove("predictor", PRODUCTION, "1", "2")]
    assert production_of(second) == {"predictor": "2"}
    assert _state(registry, "detector", "predictor") == {"detector": {PRODUCTION: "1"},
                                                         "predictor": {PRODUCTION: "2", PREVIOUS: "1"}}
    assert promote(registry, {"detector": "1", "predictor": "2"}) == []  # idempotent
    assert registry.aliases("predictor")["candidate"] == "3"  # training's alias is left alone


def test_every_previous_is_written_before_any_production(registry):
    promote(registry, {"detector": "1", "predictor": "1"})
    moves = plan_promotion(registry, {"detector": "2", "predictor": "2"})
    assert [(m.node, m.alias) for m in moves] == [("detector", PREVIOUS), ("predictor", PREVIOUS),
                                                  ("detector", PRODUCTION), ("predictor", PRODUCTION)]


def test_a_promotion_stopped_midway_is_completed_by_promoting_again(registry):
    promote(registry, {"detector": "1", "predictor": "1"})
    moves = plan_promotion(registry, {"detector": "2", "predictor": "2"})
    apply_moves(registry, moves[:3])  # crash after detector's production, before predictor's
    assert _state(registry, "predictor") == {"predictor": {PRODUCTION: "1", PREVIOUS: "1"}}
    assert pending_moves(registry, moves) == moves[3:]
    assert promote(registry, {"detector": "2", "predictor": "2"}) == [AliasMove("predictor", PRODUCTION, "1", "2")]
    assert _state(registry, "detector", "predictor") == {"detector": {PRODUCTION: "2", PREVIOUS: "1"},
                                                         "predictor": {PRODUCTION: "2", PREVIOUS: "1"}}
    assert pending_moves(registry, moves) == []


def test_rollback_swaps_production_and_previous(registry):
    promote(registry, {"predictor": "1"})
    promote(registry, {"predictor": "3"})
    moves = rollback(registry, ["predictor"])
    assert moves == [AliasMove("predictor", PRODUCTION, "3", "1"), AliasMove("predictor", PREVIOUS, "1", "3")]
    assert _state(registry, "predictor") == {"predictor": {PRODUCTION: "1", PREVIOUS: "3"}}
    rollback(registry, ["predictor"])  # a second rollback rolls forward again
    assert _state(registry, "predictor") == {"predictor": {PRODUCTION: "3", PREVIOUS: "1"}}


def test_rollback_without_previous_is_bad_input_and_moves_nothing(registry):
    promote(registry, {"detector": "1", "predictor": "1"})
    promote(registry, {"predictor": "2"})
    with pytest.raises(BadInput, match="detector has no previous version"):
        rollback(registry, ["predictor", "detector"])
    assert _state(registry, "detector", "predictor") == {"detector": {PRODUCTION: "1"},
                                                         "predictor": {PRODUCTION: "2", PREVIOUS: "1"}}
    with pytest.raises(BadInput, match="tracker has no production version"):
        plan_rollback(registry, ["tracker"])


def test_pending_moves_sees_a_half_done_swap_and_aliases_moved_elsewhere(registry):
    promote(registry, {"predictor": "1"})
    promote(registry, {"predictor": "2"})
    moves = plan_rollback(registry, ["predictor"])
    apply_moves(registry, moves[:1])  # production moved back, previous not yet: both on version 1
    assert pending_moves(registry, moves) == moves[1:]
    with pytest.raises(BadInput, match="both version 1"):
        plan_rollback(registry, ["predictor"])
    registry.set_alias("predictor", PREVIOUS, "3")  # someone moved it by hand
    assert pending_moves(registry, moves) is None


def test_unknown_versions_and_empty_candidates_are_bad_input(registry):
    with pytest.raises(BadInput, match="predictor@9"):
        promote(registry, {"predictor": "9"})
    with pytest.raises(BadInput, match="empty candidate"):
        promote(registry, {})
    assert _state(registry, "predictor") == {"predictor": {}}


def test_alias_moves_round_trip():
    move = AliasMove("predictor", PRODUCTION, None, "2")
    assert AliasMove.from_dict(move.to_dict()) == move

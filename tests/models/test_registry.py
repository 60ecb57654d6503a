"""The workspace's MLflow store: versions registered with `candidate`, aliases resolved, production guarded."""

from __future__ import annotations

import mlflow
import pytest

from andon.errors import BadInput
from andon.models.registry import CANDIDATE, ModelRef, Registry


def test_register_resolve_and_aliases(workspace):
    registry = Registry(workspace)
    experiment = registry.experiment_id("andon/detector")
    assert registry.experiment_id("andon/detector") == experiment
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_text("weights", "model/weights.txt")
    v1 = registry.register("detector", run.info.run_id, "model", {"fingerprint": "abc"})
    v2 = registry.register("detector", run.info.run_id, "model", {"fingerprint": "def"})
    assert (v1, v2) == ("1", "2")
    assert registry.aliases("detector") == {CANDIDATE: "2"}
    assert str(registry.resolve("detector@candidate").version) == "2"
    assert registry.resolve("detector@1").tags["fingerprint"] == "abc"
    assert [str(v.version) for v in registry.versions_tagged("detector", "fingerprint", "def")] == ["2"]
    assert (workspace.root / "mlflow.db").is_file()
    artifacts = workspace.root / "mlartifacts" / "andon" / "detector"
    assert any(artifacts.rglob("weights.txt"))


def test_training_cannot_register_into_production(workspace):
    registry = Registry(workspace)
    with pytest.raises(BadInput, match="only `andon release` promotes"):
        registry.register("detector", "run", "model", {}, alias="production")


@pytest.mark.parametrize("bad", ["detector", "@candidate", "detector@", ""])
def test_bad_references(bad):
    with pytest.raises(BadInput, match="NAME@ALIAS"):
        ModelRef.parse(bad)


def test_missing_version_is_bad_input_naming_it(workspace):
    with pytest.raises(BadInput, match="predictor@production"):
        Registry(workspace).resolve("predictor@production")

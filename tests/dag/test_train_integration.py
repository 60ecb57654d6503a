"""The real training runner: `andon.models.train.run_training` on the tiny detector, driven by the DAG (slow)."""

from __future__ import annotations

import pytest

from andon.models.registry import Registry
from tests.dag.helpers import DATASET, node, run_dag, statuses, write_dag

pytest.importorskip("andon.models.train")


@pytest.mark.slow
def test_the_dag_trains_the_detector_for_real_and_tags_what_it_was_made_from(dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", {"nodes": {
        "detector": {"kind": "train", "model": "detector_small", "datasets": [DATASET],
                     "overrides": ["+experiment=detector_smoke"]},
        "tracker": node("fixed", "tiny_b", ["detector"], consumes={"detector": "detections"}),
    }})
    assert statuses(dag_ws, cfg_dir)["detector"].state == "missing"
    summary = run_dag(dag_ws, cfg_dir)
    assert summary.ok, summary.to_dict()
    detector = summary.outcome("detector")
    assert detector.version == "1" and detector.reason.startswith("trained on ")

    registry = Registry(dag_ws)
    version = registry.resolve("detector@candidate")
    status = statuses(dag_ws, cfg_dir)
    assert {n: s.state for n, s in status.items()} == {"detector": "fresh", "tracker": "fresh"}, \
        {n: s.reasons for n, s in status.items()}
    assert version.tags["fingerprint"] == status["detector"].fingerprint
    assert version.tags[f"dag.dataset.{DATASET}"] == dict(status["detector"].components.datasets)[DATASET]
    assert "dag.code.andon.models.detector" in version.tags and "dag.code.andon.models.train" in version.tags
    training_run = registry.client.get_run(version.run_id)
    assert training_run.data.tags["andon.dag.node_run"] == detector.run_id  # the training run links back
    assert registry.client.get_run(detector.run_id).data.tags["andon.model_run"] == version.run_id
    assert registry.resolve("tracker@candidate").tags["upstream.detector"] == "1"
    assert run_dag(dag_ws, cfg_dir).message == "nothing to do: all 2 nodes are fresh"

"""Staleness: fresh / stale / missing, with the exact reason for each kind of change, and cascade skew.

Nodes run with a tiny real runner (it logs an artifact and registers a version); the workspace holds a
real catalog, a real built dataset and a real MLflow store.
"""

from __future__ import annotations

import mlflow

from andon.dag.lineage import Lineage, MlflowVersions, SqliteVersions, local_store, record_reevaluation
from andon.models.registry import PRODUCTION, Registry
from tests.dag.helpers import DATASET, dataset_spec, diamond, make_package, node, run_dag, statuses, write_dag


def _states(found):
    return {name: s.state for name, s in found.items()}


def test_missing_then_fresh_and_a_second_run_does_nothing(dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", diamond())
    before = statuses(dag_ws, cfg_dir)
    assert _states(before) == dict.fromkeys("abcde", "missing")
    assert before["a"].reasons == ("no version of a in the registry",)
    assert before["a"].model_version is None and len(before["a"].fingerprint) == 64

    summary = run_dag(dag_ws, cfg_dir)
    assert summary.ok and [o.outcome for o in summary.outcomes] == ["done"] * 5
    after = statuses(dag_ws, cfg_dir)
    assert _states(after) == dict.fromkeys("abcde", "fresh")
    assert all(s.reasons == () and s.model_version == "1" and s.since_version == "1" for s in after.values())
    assert {s.fingerprint for s in after.values()} == {s.fingerprint for s in before.values()}

    again = run_dag(dag_ws, cfg_dir)
    assert again.message == "nothing to do: all 5 nodes are fresh"
    assert again.pipeline_run_id is None and [o.outcome for o in again.outcomes] == ["fresh"] * 5
    assert [v.version for v in Lineage(dag_ws).versions("e")] == ["1"]


def test_config_change_makes_the_node_and_its_descendants_stale(dag_ws, cfg_dir):
    doc = diamond()
    write_dag(cfg_dir, "test", doc)
    run_dag(dag_ws, cfg_dir)
    doc["nodes"]["a"]["overrides"] = ["seed=7"]
    write_dag(cfg_dir, "test", doc)
    found = statuses(dag_ws, cfg_dir)
    assert _states(found) == {"a": "stale", "b": "fresh", "c": "stale", "d": "fresh", "e": "stale"}, {k: v.reasons for k, v in found.items()}
    assert found["a"].reasons == ("config changed",)
    assert found["a"].compared_with == "1"
    assert found["c"].reasons == ("upstream a is stale",)
    assert found["e"].reasons == ("upstream c is stale",)

    summary = run_dag(dag_ws, cfg_dir, targets=["a"])  # only a: c now sees a retrained upstream
    assert [(o.node, o.outcome) for o in summary.outcomes] == [("a", "done")]
    found = statuses(dag_ws, cfg_dir)
    assert found["a"].state == "fresh" and found["a"].model_version == "2"
    assert found["c"].reasons[0] == "upstream a retrained"
    assert found["c"].skew and found["c"].reasons[1].startswith("skew: c@candidate (v1) was made from a v1")
    assert found["e"].reasons == ("upstream c is stale",)


def test_a_new_dataset_version_names_both_ids(dag_ws, cfg_dir):
    from andon.datasets.build import build_dataset
    from andon.datasets.versions import load_version
    from tests.datasets.build_helpers import add_logs, make_agents_log

    write_dag(cfg_dir, "test", {"nodes": {"a": node("train", "tiny_a"), "b": node("fixed", "tiny_b")}})
    run_dag(dag_ws, cfg_dir)
    old = load_version(dag_ws, DATASET).dataset_id
    add_logs(dag_ws, [make_agents_log("log_new", seed=42, n_frames=10)])
    doc = build_dataset(dag_ws, dataset_spec(), progress=False)
    assert doc["status"] == "accepted", doc["reasons"]
    new = doc["dataset_id"]
    assert new != old
    found = statuses(dag_ws, cfg_dir)
    assert found["a"].reasons == (f"dataset {DATASET} {old[:8]} -> {new[:8]}",)
    assert found["b"].state == "fresh"


def test_a_code_change_names_the_module_even_deep_in_the_closure(dag_ws, cfg_dir, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    pkg = make_package(tmp_path, {"model.py": "from PKG import util\n\nclass Model:\n    pass\n",
                                  "util.py": "def helper():\n    return 1\n"})
    (cfg_dir / "model" / "pkg_model.yaml").write_text(f"_target_: {pkg}.model.Model\nname: pkg_model\n")
    write_dag(cfg_dir, "test", {"code_packages": ["andon", pkg], "nodes": {
        "a": node("fixed", "pkg_model"), "b": node("fixed", "tiny_b", ["a"])}})
    run_dag(dag_ws, cfg_dir)
    assert _states(statuses(dag_ws, cfg_dir)) == {"a": "fresh", "b": "fresh"}

    util = tmp_path / pkg / "util.py"
    util.write_text("# only a comment is new\ndef helper():\n    return 1\n")
    assert statuses(dag_ws, cfg_dir)["a"].state == "fresh"  # comments are not code
    util.write_text("def helper():\n    return 2\n")
    found = statuses(dag_ws, cfg_dir)
    assert found["a"].reasons == (f"code of {pkg}.util changed",)
    assert found["b"].reasons == ("upstream a is stale",)
    (tmp_path / pkg / "extra.py").write_text("X = 1\n")
    (tmp_path / pkg / "model.py").write_text(f"from {pkg} import util, extra\n\nclass Model:\n    pass\n")
    reasons = statuses(dag_ws, cfg_dir)["a"].reasons
    assert f"code of {pkg}.extra is new to the node (imported since)" in reasons
    assert f"code of {pkg}.model changed" in reasons


def test_a_dataset_without_versions_is_a_problem_and_blocks_the_node(dag_ws, cfg_dir):
    (cfg_dir / "dataset").mkdir()
    (cfg_dir / "dataset" / "ghost.yaml").write_text("name: ghost\ntask: detection\n")
    write_dag(cfg_dir, "test", {"nodes": {"a": node("train", "tiny_a", datasets=["ghost"]),
                                          "c": node("fixed", "tiny_c", ["a"]), "b": node("fixed", "tiny_b")}})
    found = statuses(dag_ws, cfg_dir)
    assert found["a"].problems == ("dataset ghost has no accepted version: build it (andon dataset build dataset=ghost)",)
    assert found["a"].problems[0] in found["a"].reasons
    summary = run_dag(dag_ws, cfg_dir)
    assert {o.node: o.outcome for o in summary.outcomes} == {"a": "blocked", "b": "done", "c": "skipped"}
    assert summary.outcome("c").reason == "upstream a blocked" and not summary.ok


def test_a_version_registered_outside_the_dag_is_not_trusted(dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", {"nodes": {"a": node("fixed", "tiny_a")}})
    registry = Registry(dag_ws)
    with mlflow.start_run(experiment_id=registry.experiment_id("andon/a")) as run:
        mlflow.log_text("weights", "model/weights.txt")
    registry.register("a", run.info.run_id, "model", {"fingerprint": "hand-made"})
    found = statuses(dag_ws, cfg_dir)["a"]
    assert found.state == "stale"
    assert found.reasons == ("no version of a was registered by the DAG (version 1 has no fingerprint)",)


def test_cascade_skew_is_reported_until_re_evaluated(dag_ws, cfg_dir):
    doc = {"nodes": {"a": node("train", "tiny_a"), "c": node("train", "tiny_c", ["a"])}}
    write_dag(cfg_dir, "test", doc)
    run_dag(dag_ws, cfg_dir)
    registry = Registry(dag_ws)
    assert registry.resolve("c@candidate").tags["upstream.a"] == "1"
    for name in ("a", "c"):
        registry.set_alias(name, PRODUCTION, "1")
    doc["nodes"]["a"]["overrides"] = ["seed=3"]
    write_dag(cfg_dir, "test", doc)
    run_dag(dag_ws, cfg_dir, targets=["a"])  # a v2 is the candidate; c@candidate was made from a v1

    found = statuses(dag_ws, cfg_dir)["c"]
    assert [s.to_dict() for s in found.skew] == [{"alias": "candidate", "upstream": "a", "trained_on": "1",
                                                  "current": "2"}]
    assert ("skew: c@candidate (v1) was made from a v1, but a@candidate is v2 (not re-evaluated): "
            "re-evaluate or retrain c") in found.reasons
    assert found.to_dict()["skew"][0]["current"] == "2"

    registry.set_alias("a", PRODUCTION, "2")  # promoted alone: production is skewed too
    assert [(s.alias, s.trained_on, s.current) for s in statuses(dag_ws, cfg_dir)["c"].skew] == \
        [("candidate", "1", "2"), ("production", "1", "2")]
    record_reevaluation(registry, "c", "1", "a", "2")  # the pair (c v1, a v2) was judged: no skew left
    assert statuses(dag_ws, cfg_dir)["c"].skew == ()
    assert registry.resolve("c@1").tags["reevaluated.a"] == "2"


def test_the_direct_store_reader_matches_mlflow(dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", diamond())
    run_dag(dag_ws, cfg_dir, targets=["c"])
    registry = Registry(dag_ws)
    registry.set_alias("a", PRODUCTION, "1")
    registry.register("a", registry.resolve("a@1").run_id, "node", {"extra": "x"})
    registry.client.delete_model_version("a", "2")
    direct, through_mlflow = SqliteVersions(local_store(dag_ws)), MlflowVersions(registry.client)
    for name in ("a", "c", "never"):
        assert sorted(direct.versions(name), key=lambda v: v.version) == \
            sorted(through_mlflow.versions(name), key=lambda v: v.version)
    assert [v.version for v in direct.versions("a")] == ["1"]


def test_status_of_a_fresh_workspace_creates_no_store(cfg_dir, tmp_path):
    from andon.workspace import Workspace

    write_dag(cfg_dir, "test", {"nodes": {"b": node("fixed", "tiny_b")}})
    ws, _ = Workspace.init(tmp_path / "bare")
    assert statuses(ws, cfg_dir)["b"].state == "missing"
    assert not (ws.root / "mlflow.db").exists()

"""Execution: only stale nodes run, in order; failures stop descendants only; lineage in MLflow; resume after
a killed driver; one run per workspace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from andon.dag.executor import run_lock
from andon.dag.lineage import TAG_NODE_RUN, Lineage
from andon.errors import BadInput
from andon.models.registry import Registry
from tests.conftest import REPO_ROOT
from tests.dag.helpers import cli_json, diamond, node, run_dag, statuses, write_dag
from tests.dag.runners import set_control


def _app(dag_ws, cfg_dir, *more):
    return ["dag", "run", "dag=test", f"hydra.searchpath=[file://{cfg_dir}]", f"workspace={dag_ws.root}",
            "worker=sequential", "json=true", *more]


def test_a_failed_node_stops_its_descendants_not_its_siblings(dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", diamond())
    set_control(dag_ws, fail=["c"])
    code, doc = cli_json(_app(dag_ws, cfg_dir))
    assert code == 1 and doc["ok"] is False
    outcomes = {n["node"]: (n["before"], n["outcome"]) for n in doc["nodes"]}
    assert outcomes == {"a": ("missing", "done"), "b": ("missing", "done"), "c": ("missing", "failed"),
                        "d": ("missing", "done"), "e": ("missing", "skipped")}
    by_node = {n["node"]: n for n in doc["nodes"]}
    assert by_node["c"]["reason"] == "RuntimeError: c failed on purpose"
    assert by_node["e"]["reason"] == "upstream c failed"
    assert by_node["d"]["version"] == "1" and by_node["d"]["duration_s"] > 0
    assert Lineage(dag_ws).versions("c") == []  # nothing half-registered

    set_control(dag_ws)  # the cause is fixed: the rerun does c and e only
    code, doc = cli_json(_app(dag_ws, cfg_dir))
    assert code == 0 and {n["node"]: n["outcome"] for n in doc["nodes"]} == {
        "a": "fresh", "b": "fresh", "c": "done", "d": "fresh", "e": "done"}


def test_every_node_is_an_mlflow_run_nested_under_the_pipeline_with_its_lineage(dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", diamond())
    summary = run_dag(dag_ws, cfg_dir)
    client = Registry(dag_ws).client
    pipeline = client.get_run(summary.pipeline_run_id)
    assert pipeline.info.status == "FINISHED" and pipeline.data.tags["andon.dag"] == "test"
    runs = {o.node: client.get_run(o.run_id) for o in summary.outcomes}
    for name, run in runs.items():
        assert run.data.tags["mlflow.parentRunId"] == summary.pipeline_run_id
        assert run.info.experiment_id == pipeline.info.experiment_id and run.info.status == "FINISHED"
        assert run.data.tags["andon.model_version"] == "1"
        assert client.get_model_version(name, "1").tags[TAG_NODE_RUN] == run.info.run_id
    e = runs["e"].data.tags
    assert e["andon.upstream_run.c"] == runs["c"].info.run_id and e["andon.upstream_run.d"] == runs["d"].info.run_id
    assert e["andon.upstream_version.c"] == "1"
    assert client.get_model_version("e", "1").tags["upstream.c"] == "1"
    assert [a.path for a in client.list_artifacts(runs["a"].info.run_id, "dag")] == ["dag/fingerprint.json"]

    # a later pipeline links to the runs that made the fresh upstream versions
    doc = diamond()
    doc["nodes"]["e"]["overrides"] = ["model.width=5"]
    write_dag(cfg_dir, "test", doc)
    again = run_dag(dag_ws, cfg_dir)
    assert [o.node for o in again.outcomes if o.outcome == "done"] == ["e"]
    assert client.get_run(again.outcome("e").run_id).data.tags["andon.upstream_run.c"] == runs["c"].info.run_id


def test_running_some_nodes_runs_what_they_need_and_nothing_else(dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", diamond())
    summary = run_dag(dag_ws, cfg_dir, targets=["c"])
    assert [(o.node, o.outcome) for o in summary.outcomes] == [("a", "done"), ("c", "done")]
    assert {n: s.state for n, s in statuses(dag_ws, cfg_dir).items()} == {
        "a": "fresh", "b": "missing", "c": "fresh", "d": "missing", "e": "missing"}
    code, _ = cli_json(_app(dag_ws, cfg_dir, "nope"))
    assert code == 2  # an unknown node is bad input


def test_one_run_per_workspace(dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", {"nodes": {"b": node("fixed", "tiny_b")}})
    with run_lock(dag_ws), pytest.raises(BadInput, match=f"another `andon dag run` \\(pid {os.getpid()}\\) is running"):
        run_dag(dag_ws, cfg_dir)
    assert run_dag(dag_ws, cfg_dir).ok  # released


def test_a_killed_driver_resumes_without_redoing_finished_nodes(dag_ws, cfg_dir):
    """The driver is killed (SIGKILL) while the second node runs; the rerun does only that node."""
    write_dag(cfg_dir, "test", {"nodes": {"a": node("fixed", "tiny_a"), "b": node("fixed", "tiny_b", ["a"])}})
    set_control(dag_ws, sleep_s={"b": 120})
    started_b = dag_ws.root / "tmp" / "dag-test-started-b"
    argv = [sys.executable, "-m", "tests.dag.helpers", *_app(dag_ws, cfg_dir)[:-1]]
    driver = subprocess.Popen(argv, cwd=REPO_ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not started_b.exists():
            if driver.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"driver ended before node b started: {driver.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and anything it started
        driver.wait()
        driver.stderr.close()
    assert [v.version for v in Lineage(dag_ws).versions("a")] == ["1"]
    assert Lineage(dag_ws).versions("b") == []  # b never registered: no half-written model

    set_control(dag_ws)
    summary = run_dag(dag_ws, cfg_dir)
    assert [(o.node, o.before, o.outcome) for o in summary.outcomes] == [("a", "fresh", "fresh"),
                                                                          ("b", "missing", "done")]
    assert [v.version for v in Lineage(dag_ws).versions("a")] == ["1"]  # not redone
    client = Registry(dag_ws).client
    killed = client.search_runs([client.get_run(summary.pipeline_run_id).info.experiment_id],
                                "attributes.status = 'KILLED'")
    assert {r.info.run_name for r in killed} == {"dag test", "b"}  # the dead driver's runs, closed


def test_a_link_builds_the_dataset_its_downstream_node_trains_on(dag_ws, cfg_dir):
    (cfg_dir / "dataset").mkdir()
    (cfg_dir / "dataset" / "tiny_link.yaml").write_text(
        "defaults:\n  - base_dataset\n  - _self_\nname: tiny_link\ntask: detection\nquery:\n  sources: [test]\n"
        "split: {train: 1.0, val: 0.0, test: 0.0}\nvalidation:\n  blocking: {drift: false}\n")
    doc = {"nodes": {
        "det": node("fixed", "tiny_a"),
        "link": {"kind": "autolabel", "datasets": ["tiny_det"], "output": "tiny_link", "upstream": ["det"],
                 "consumes": {"det": "detections"}, "runner": "tests.dag.runners:build_output"},
        "pred": node("train", "tiny_c", ["link"], datasets=["tiny_link"], consumes={"link": "dataset"}),
    }}
    write_dag(cfg_dir, "test", doc)
    before = statuses(dag_ws, cfg_dir)
    assert before["pred"].state == "missing" and before["pred"].problems == ()  # its dataset is made upstream
    summary = run_dag(dag_ws, cfg_dir)
    assert [(o.node, o.outcome) for o in summary.outcomes] == [("det", "done"), ("link", "done"), ("pred", "done")]
    client = Registry(dag_ws).client
    built = client.get_model_version("link", "1").tags["dag.output_dataset"]
    pred = client.get_model_version("pred", "1").tags
    assert pred["dag.dataset.tiny_link"] == built  # trained on exactly what the link built
    assert (pred["upstream.link"], pred["upstream.det"]) == ("1", "1")  # lineage through the link
    assert run_dag(dag_ws, cfg_dir).message == "nothing to do: all 3 nodes are fresh"

    doc["nodes"]["det"]["overrides"] = ["model.width=8"]
    write_dag(cfg_dir, "test", doc)
    found = statuses(dag_ws, cfg_dir)
    assert [found[n].reasons for n in ("det", "link", "pred")] == [
        ("config changed",), ("upstream det is stale",), ("upstream link is stale",)]


def test_the_sequential_worker_runs_in_order_and_reports_errors():
    from andon.dag.spec import Resources
    from andon.dag.workers import SequentialWorker, Worker, check_worker

    worker = check_worker(SequentialWorker())
    assert isinstance(worker, Worker)
    seen = []
    worker.submit("one", seen.append, Resources(), 1)
    worker.submit("two", lambda: 1 / 0, Resources())
    assert [(c.key, c.ok) for c in worker.wait()] == [("one", True)] and seen == [1]
    (failed,) = worker.wait()
    assert failed.error == "ZeroDivisionError: division by zero"
    assert worker.wait() == []
    with pytest.raises(BadInput, match="lacks submit/wait/shutdown"):
        check_worker(object())

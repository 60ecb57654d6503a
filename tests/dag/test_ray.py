"""The DAG on real local Ray (one session for the module: starting Ray costs seconds)."""

from __future__ import annotations

import time

import pytest

from andon.dag.workers import RayWorker
from tests.dag.helpers import cli_json, diamond, node, run_dag, write_dag
from tests.dag.runners import set_control

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs; RayWorker joins it (and leaves it running) instead of starting its own."""
    from andon.workspace import disable_telemetry

    disable_telemetry()
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print(f"\nlocal Ray started in {time.perf_counter() - started:.1f} s")
    yield ray
    ray.shutdown()


def test_independent_nodes_run_at_the_same_time(local_ray, dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", {"nodes": {"p": node("fixed", "tiny_a"), "q": node("fixed", "tiny_b"),
                                          "r": node("fixed", "tiny_c", ["p", "q"])}})
    set_control(dag_ws, sleep_s={"p": 1.5, "q": 1.5})
    summary = run_dag(dag_ws, cfg_dir, worker=RayWorker())
    assert summary.ok, summary.to_dict()
    p, q, r = (summary.outcome(n) for n in "pqr")
    assert p.started_s < q.ended_s and q.started_s < p.ended_s  # overlapping: in parallel
    assert r.started_s >= max(p.ended_s, q.ended_s)  # after both of its upstream nodes
    assert p.placement == local_ray.get_runtime_context().get_node_id()
    assert local_ray.is_initialized()  # a joined session is left running


def test_dag_run_on_ray_through_the_hydra_app(local_ray, dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", diamond())
    argv = ["dag", "run", "dag=test", f"hydra.searchpath=[file://{cfg_dir}]", f"workspace={dag_ws.root}",
            "worker=ray", "json=true"]
    code, doc = cli_json(argv)
    assert code == 0, doc
    assert doc["worker"] == "ray" and [n["outcome"] for n in doc["nodes"]] == ["done"] * 5
    assert doc["worker_start_s"] is None  # joined the running session: nothing started
    code, doc = cli_json(argv)
    assert code == 0 and doc["message"] == "nothing to do: all 5 nodes are fresh"


def test_a_failure_on_ray_stops_descendants_only(local_ray, dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", diamond())
    set_control(dag_ws, fail=["a"])
    summary = run_dag(dag_ws, cfg_dir, worker=RayWorker())
    assert {o.node: o.outcome for o in summary.outcomes} == {"a": "failed", "b": "done", "c": "skipped",
                                                             "d": "done", "e": "skipped"}
    assert summary.outcome("a").reason == "RuntimeError: a failed on purpose"


def test_a_request_no_ray_node_can_meet_fails_that_node(local_ray, dag_ws, cfg_dir):
    write_dag(cfg_dir, "test", {"nodes": {"big": node("fixed", "tiny_a", resources={"num_cpus": 64}),
                                          "small": node("fixed", "tiny_b")}})
    summary = run_dag(dag_ws, cfg_dir, worker=RayWorker())
    assert summary.outcome("small").outcome == "done"
    assert summary.outcome("big").outcome == "failed"
    assert summary.outcome("big").reason.startswith("no Ray node offers CPU=64 (the nodes offer CPU=2)")

"""Scheduling on a real two-node Ray cluster started locally: a node asking for a custom resource runs only
on the Ray node that offers it."""

from __future__ import annotations

import pytest

from andon.dag.workers import RayWorker
from tests.dag.helpers import node, run_dag, write_dag

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

GPU_RESOURCE = "gpu_node"  # a custom resource, not Ray's GPU: the test machine has none


@pytest.fixture(scope="module")
def cluster():
    """Head (1 CPU) + a worker node (1 CPU, {"gpu_node": 1}); the driver joins it by address."""
    from andon.workspace import disable_telemetry

    disable_telemetry()
    made = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    gpu = made.add_node(num_cpus=1, resources={GPU_RESOURCE: 1})
    made.wait_for_nodes()
    ray.init(address=made.address, log_to_driver=False, configure_logging=False)
    yield made, gpu.node_id
    ray.shutdown()
    made.shutdown()


def test_a_node_asking_for_the_custom_resource_runs_where_it_is_offered(cluster, dag_ws, cfg_dir):
    _, gpu_node_id = cluster
    write_dag(cfg_dir, "test", {"nodes": {
        "lidar": node("fixed", "tiny_a", resources={"num_cpus": 1, "custom": {GPU_RESOURCE: 1}}),
        "lights": node("fixed", "tiny_b", resources={"num_cpus": 1, "custom": {GPU_RESOURCE: 1}}),
        "tracker": node("fixed", "tiny_c", ["lidar"], resources={"num_cpus": 0.5}),
        "tpu": node("fixed", "tiny_c", resources={"custom": {"tpu": 1}}),
    }})
    summary = run_dag(dag_ws, cfg_dir, worker=RayWorker())
    assert {o.node: o.outcome for o in summary.outcomes} == {"lidar": "done", "lights": "done",
                                                             "tracker": "done", "tpu": "failed"}
    assert summary.outcome("lidar").placement == gpu_node_id
    assert summary.outcome("lights").placement == gpu_node_id
    assert {n["NodeID"] for n in ray.nodes()} >= {gpu_node_id, summary.outcome("tracker").placement}
    assert summary.outcome("tpu").reason.startswith("no Ray node offers CPU=1, tpu=1 (the nodes offer CPU=1, tpu=0;")

"""The model DAG at scale: planning a generated 1,000-node DAG (< 0.5 s) and `andon dag status` as a whole
process (< 3 s wall). Peak RSS is reported beside time."""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import time

from andon.dag.configs import ConfigSession
from andon.dag.fingerprint import Fingerprinter
from andon.dag.plan import make_plan, seeds_from_changes
from andon.dag.spec import Dag
from tests.conftest import REPO_ROOT
from tests.dag.helpers import node, run_dag, write_config_dir, write_dag

N_NODES = 1000
# Model configs whose `_target_` modules differ, so code impact picks a subset of the nodes.
TARGETS = {"m_ids": "andon.ids.hash_json", "m_output": "andon.output.table", "m_errors": "andon.errors.BadInput",
           "m_workspace": "andon.workspace.Workspace"}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generated_dag(n: int = N_NODES, seed: int = 0) -> dict:
    """Layers of 50 nodes; each node takes 1-3 upstream nodes from the previous two layers."""
    rng = random.Random(seed)
    nodes = {}
    for i in range(n):
        layer = i // 50
        pool = [f"n{j}" for j in range(max(0, (layer - 2) * 50), layer * 50)]
        upstream = sorted(rng.sample(pool, rng.randint(1, 3))) if pool else []
        nodes[f"n{i}"] = {"kind": "fixed", "model": sorted(TARGETS)[i % len(TARGETS)], "upstream": upstream,
                          "suites": [f"suite{i % 7}"], "gates": [f"gate{i % 5}"]}
    return {"name": "generated", "nodes": nodes}


def plan_generated(doc: dict, config_dir: str) -> tuple:
    """Validate and order the DAG, then plan a node change and a code change (no cache kept between calls)."""
    with ConfigSession([config_dir]) as session:
        dag = Dag.from_dict(doc)
        fingerprinter = Fingerprinter(dag, None, session)
        by_node = make_plan(dag, seeds_from_changes(dag, ["n3"]), ["n3"])
        by_code = make_plan(dag, seeds_from_changes(dag, ["code:andon.errors"], fingerprinter.closure), [])
    return by_node, by_code


def test_planning_a_1000_node_dag(benchmark, tmp_path):
    config_dir = write_config_dir(tmp_path / "cfg", {name: {"_target_": target} for name, target in TARGETS.items()})
    doc = generated_dag()
    started = time.perf_counter()
    by_node, by_code = plan_generated(doc, str(config_dir))
    first_s = time.perf_counter() - started  # includes Hydra's and the schemas' one-time imports
    assert len(by_node.order) > 100 and len(by_node.waves) > 1
    assert by_code.order and set(by_code.order) >= {f"n{i}" for i in range(N_NODES) if i % 4 == 0}
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        plan_generated(doc, str(config_dir))
        timings.append(time.perf_counter() - started)
    benchmark.pedantic(plan_generated, args=(doc, str(config_dir)), rounds=5, warmup_rounds=1)
    benchmark.extra_info.update({"nodes": N_NODES, "first_in_process_s": round(first_s, 3),
                                 "median_s": round(sorted(timings)[1], 3), "planned": len(by_node.order),
                                 "code_impact": len(by_code.order), "peak_rss_mb": round(_peak_rss_mb())})
    print(f"\n{N_NODES}-node plan: {sorted(timings)[1]:.3f} s median ({first_s:.3f} s the first time in a process); "
          f"{len(by_node.order)} nodes run after a node change, {len(by_code.order)} after a code change; "
          f"peak RSS {_peak_rss_mb():.0f} MB")
    assert sorted(timings)[1] < 0.5


def test_status_as_a_whole_process(benchmark, tmp_path):
    from andon.workspace import Workspace

    workspace, _ = Workspace.init(tmp_path / "ws")
    config_dir = write_config_dir(tmp_path / "cfg", {"tiny_a": {"_target_": "andon.ids.hash_json", "name": "x"}})
    write_dag(config_dir, "test", {"nodes": {
        "a": node("fixed", "tiny_a"), "b": node("fixed", "tiny_a", ["a"]), "c": node("fixed", "tiny_a", ["a"]),
        "d": node("fixed", "tiny_a", ["b", "c"])}})
    assert run_dag(workspace, config_dir).ok
    argv = [sys.executable, "-m", "tests.dag.helpers", "dag", "status", "--json", "--dag", "test",
            "--config-dir", str(config_dir), "--workspace", str(workspace.root)]

    def status() -> float:
        started = time.perf_counter()
        subprocess.run(argv, cwd=REPO_ROOT, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": "."})
        return time.perf_counter() - started

    wall = [status() for _ in range(3)]
    benchmark.pedantic(status, rounds=1, warmup_rounds=0)
    benchmark.extra_info.update({"wall_s": [round(w, 2) for w in wall], "peak_rss_mb": round(_peak_rss_mb())})
    print(f"\n`andon dag status` (4 nodes, as a process): {min(wall):.2f} s best of 3, {max(wall):.2f} s worst")
    assert min(wall) < 3.0

"""Dataset builds at scale: materialisation (query, split, sampling, statistics) and a full build.

The default run checks the code path on 10 synthetic logs and on ETH/UCY (all 7 scenes, when
../shared/data is present); `make bench` adds 200 logs x 600 frames x 30 agents (3.6 M boxes, slow).
Peak RSS is reported beside time.
"""

from __future__ import annotations

import resource
import time

import pytest

from andon.datasets.build import build_dataset
from andon.datasets.materialise import materialise
from andon.scenarios.catalog import Catalog
from andon.scenarios.importers import importer
from tests.datasets.build_helpers import PROVENANCE, add_logs, make_agents_log, make_spec


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bench(benchmark, workspace, spec, label: str) -> None:
    with Catalog(workspace) as catalog:
        mat = benchmark.pedantic(lambda: materialise(catalog, spec, [], progress=False), rounds=3, warmup_rounds=0)
    started = time.perf_counter()
    doc = build_dataset(workspace, spec, progress=False)
    build_s = time.perf_counter() - started
    assert doc["status"] == "accepted", doc["reasons"]
    samples = sum(doc["samples"].values())
    assert samples == sum(len(mat.samples[s]["frame_index"]) for s in mat.samples)
    benchmark.extra_info.update({"samples": doc["samples"], "build_s": round(build_s, 2),
                                 "peak_rss_mb": round(_peak_rss_mb())})
    print(f"\n{label}: {samples:,} samples {doc['samples']}; build {build_s:.2f} s (with dvc add + git commit); "
          f"peak RSS {_peak_rss_mb():.0f} MB")


def _synthetic(workspace, n_logs: int) -> None:
    add_logs(workspace, (make_agents_log(f"bench{i}", seed=i, n_frames=600, points_every=None,
                                         classes=("vehicle", "pedestrian", "cyclist") * 10) for i in range(n_logs)))


def test_prediction_build_small(benchmark, workspace):
    _synthetic(workspace, 10)
    _bench(benchmark, workspace, make_spec(name="bench", task="prediction", split={"train": 0.5, "val": 0.25,
                                                                                   "test": 0.25, "salt": "b"}),
           "10 logs")


@pytest.mark.slow
def test_prediction_build_200_logs(benchmark, workspace):
    _synthetic(workspace, 200)
    _bench(benchmark, workspace, make_spec(name="bench", task="prediction", split={"train": 0.7, "val": 0.15,
                                                                                   "test": 0.15}), "200 logs")


@pytest.mark.realdata
def test_eth_ucy_build(benchmark, workspace, shared_data):
    with Catalog(workspace) as catalog:
        for log in importer("eth-ucy").read(shared_data / "prediction" / "eth_ucy"):
            catalog.add_log(log, PROVENANCE, origin=log.name)
    spec = make_spec(name="eth_ucy", task="prediction", query={"sources": ["eth-ucy"]},
                     sampling={"step_s": 0.4, "history_steps": 8, "horizon_steps": 12, "max_agents_per_frame": None,
                               "agent_classes": ["pedestrian"]},
                     split={"train": 0.7, "val": 0.15, "test": 0.15, "salt": "andon"})
    _bench(benchmark, workspace, spec, "ETH/UCY 7 scenes")

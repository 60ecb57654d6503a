"""All miners over one 20 s, 10 Hz log with 100 agents on a town-sized map (11 x 11 junctions).

The target: mining plus label QA of such a log under 0.5 s, so mining alone well under 0.25 s. Two
paths are timed: an in-memory log as an importer hands it over (the columns are gathered from the
frame list), and a stored log streamed from the catalog's blob store (the columns load in one read).
Peak RSS (getrusage; the process's peak so far) is reported beside time.
"""

from __future__ import annotations

import resource

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from andon.scenarios import Catalog, Provenance
from andon.scenarios.miners import MINERS, mine_windows
from andon.scenarios.records import Log
from tests.scenarios.miners._logs import busy_log, imported

N_FRAMES, N_AGENTS = 200, 100
BUDGET_S = 0.25


@pytest.fixture(scope="module")
def log() -> Log:
    return busy_log(N_FRAMES, N_AGENTS)


def _report(benchmark: BenchmarkFixture, log: Log, found: dict) -> None:
    boxes = sum(len(f.classes) for f in log.frames)
    benchmark.extra_info.update(frames=N_FRAMES, agents=N_AGENTS, boxes=boxes, lanes=len(log.road_map.lanes),
                                windows={name: len(w) for name, w in found.items()},
                                peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    assert set(found) == set(MINERS)
    assert found["intersection"] and found["traffic_light"] and found["vru_near"] and found["cut_in"]


def test_bench_miners_in_memory_log(benchmark: BenchmarkFixture, log: Log) -> None:
    found = benchmark(mine_windows, log)
    _report(benchmark, log, found)
    if benchmark.stats:  # only when benchmarking is enabled (`make bench`)
        assert benchmark.stats.stats.median < BUDGET_S


def test_bench_miners_stored_log(benchmark: BenchmarkFixture, log: Log, workspace) -> None:
    catalog = Catalog(workspace)
    log_id, _ = catalog.add_log(imported(log), Provenance("import", "test", "1"), "busy")
    stored = catalog.log(log_id)
    found = benchmark(mine_windows, stored)
    _report(benchmark, log, found)
    assert found == mine_windows(log)
    if benchmark.stats:
        assert benchmark.stats.stats.median < BUDGET_S
    catalog.close()

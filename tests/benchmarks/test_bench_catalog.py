"""Catalog at scale: bulk insert, a two-tag + QA query's first page, and stats.

`make bench` runs these at 1,000,000 scenarios (marked slow); the default test run uses 20,000 to
check the code path. Peak RSS is reported beside time.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterator

import numpy as np
import pytest

from andon.scenarios import Catalog, NewScenario, Provenance
from tests.helpers import make_log

TAGS = np.array(["intersection", "night", "pedestrian_crossing", "cut_in", "traffic_light", "vru_near",
                 "dense_traffic", "high_speed", "stationary", "rain", "parking", "merge"])
TAG_P = np.array([0.30, 0.20, 0.15, 0.05, 0.25, 0.10, 0.15, 0.10, 0.08, 0.05, 0.03, 0.04])
N_LOGS = 100
MINER = Provenance("miner", "bench", "1")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _scenarios(log_ids: list[str], n: int, seed: int = 0) -> Iterator[NewScenario]:
    rng = np.random.default_rng(seed)
    per_log = -(-n // len(log_ids))
    chunk = 50_000
    for start in range(0, n, chunk):
        k = np.arange(start, min(n, start + chunk))
        has = rng.random((len(k), len(TAGS))) < TAG_P
        for i, row in zip(k.tolist(), has, strict=True):
            log = log_ids[i // per_log]
            t0 = 1_000_000_000 + (i % per_log) * 1_000
            yield NewScenario(log, t0, t0 + 5_000, frozenset(TAGS[row].tolist()), MINER)


def _fill(workspace, n: int) -> tuple[Catalog, float]:
    catalog = Catalog(workspace)
    log_ids = [catalog.add_log(make_log(f"log{i}", n_frames=2, n_boxes=1, seed=i, with_points=False),
                               Provenance("import", "test", "1"), f"log{i}")[0] for i in range(N_LOGS)]
    items = list(_scenarios(log_ids, n))  # generated up front: time the catalog, not the generator
    started = time.perf_counter()
    created, _ = catalog.add_scenarios(items)
    elapsed = time.perf_counter() - started
    assert created == n
    del items
    ids = [s.scenario_id for s in catalog.search("", limit=n + N_LOGS)] if n <= 20_000 else None
    if ids is not None:
        rng = np.random.default_rng(1)
        catalog.set_qa({sid: (float(q), {}) for sid, q in zip(ids, rng.random(len(ids)), strict=True)})
    else:
        with catalog.engine.begin() as conn:  # bulk QA scores for the large catalog, one statement
            conn.exec_driver_sql("UPDATE scenarios SET qa_score = (abs(random()) % 1000) / 1000.0")
    with catalog.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return catalog, elapsed


def _run(benchmark, workspace, n: int) -> None:
    catalog, insert_s = _fill(workspace, n)
    query = "tag:intersection tag:night qa>=0.8"
    page = benchmark.pedantic(lambda: catalog.search(query, limit=50), rounds=20, warmup_rounds=2)
    assert len(page) == 50 and all({"intersection", "night"} <= s.tags and s.qa_score >= 0.8 for s in page)
    started = time.perf_counter()
    stats = catalog.stats()
    stats_s = time.perf_counter() - started
    assert stats["scenarios"]["active"] == n + N_LOGS
    benchmark.extra_info.update({
        "scenarios": n, "insert_per_s": round(n / insert_s), "insert_s": round(insert_s, 2),
        "stats_s": round(stats_s, 3), "peak_rss_mb": round(_peak_rss_mb()),
    })
    print(f"\n{n} scenarios: insert {n / insert_s:,.0f}/s ({insert_s:.1f} s); stats {stats_s:.3f} s; "
          f"peak RSS {_peak_rss_mb():.0f} MB")


def test_catalog_small(benchmark, workspace):
    _run(benchmark, workspace, 20_000)


@pytest.mark.slow
def test_catalog_one_million(benchmark, workspace):
    _run(benchmark, workspace, 1_000_000)

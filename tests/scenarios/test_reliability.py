"""Concurrent writers, killed imports and failed transactions leave the catalog consistent."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from andon.scenarios import Catalog, NewScenario, Provenance
from andon.scenarios.integrity import validate_catalog
from andon.workspace import Workspace
from tests.helpers import make_log

IMPORT = Provenance("import", "test", "1")
STEP_NS = 1_000_000


def _writer(root: str, worker: int, log_id: str, n: int) -> None:
    catalog = Catalog(Workspace.open(root))
    # Workers overlap by half: windows k in [worker*n/2, worker*n/2 + n).
    start = worker * n // 2
    items = [NewScenario(log_id, 1_000_000_000 + k * STEP_NS, 1_000_000_000 + k * STEP_NS + 500_000_000,
                         frozenset({f"w{worker}"}), Provenance("miner", f"w{worker}", "1")) for k in range(start, start + n)]
    for chunk in range(0, n, 25):  # many small transactions interleave with the other writers
        catalog.add_scenarios(items[chunk:chunk + 25])
    # Everyone also imports the same log again: must stay one log.
    catalog.add_log(make_log(), IMPORT, "drive")


def test_four_concurrent_writers_lose_and_duplicate_nothing(workspace):
    catalog = Catalog(workspace)
    log_id, _ = catalog.add_log(make_log(), IMPORT, "drive")
    n = 120
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(workspace.root), w, log_id, n)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    expected_windows = 4 * n // 2 + n // 2  # union of the overlapping ranges
    assert catalog.count("") == expected_windows + 1  # + the whole-log scenario
    assert catalog.logs() == [log_id]
    # Overlaps carry both writers' tags: nothing lost.
    sid_shared = catalog.search("tag:w0 tag:w1")
    assert len(sid_shared) == n // 2
    assert validate_catalog(catalog)["problems"] == []


def test_failure_inside_the_transaction_rolls_back_the_log(workspace, monkeypatch):
    catalog = Catalog(workspace)

    def boom(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Catalog, "_insert_scenarios", boom)
    with pytest.raises(RuntimeError):
        catalog.add_log(make_log(), IMPORT, "drive")
    monkeypatch.undo()
    assert catalog.logs() == [] and catalog.count("status:any") == 0
    log_id, created = catalog.add_log(make_log(), IMPORT, "drive")  # a rerun completes it
    assert created and catalog.logs() == [log_id]


KILLED_IMPORT = textwrap.dedent("""
    import sys
    from andon.scenarios import Catalog, Provenance
    from andon.workspace import Workspace
    from tests.helpers import make_log
    catalog = Catalog(Workspace.open(sys.argv[1]))
    print("ready", flush=True)
    for seed in range(1000):
        catalog.add_log(make_log(f"log{seed}", n_frames=30, seed=seed), Provenance("import", "test", "1"), "x")
""")


def test_import_killed_midway_leaves_a_consistent_catalog_and_can_rerun(workspace, tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(KILLED_IMPORT)
    env = {**os.environ, "PYTHONPATH": str(os.getcwd())}
    proc = subprocess.Popen([sys.executable, str(script), str(workspace.root)], stdout=subprocess.PIPE, env=env)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(2.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    catalog = Catalog(workspace)
    imported = catalog.logs()
    assert 0 < len(imported) < 1000
    # Every cataloged log is whole: its blobs exist and hash right, and it has its scenario.
    assert validate_catalog(catalog)["problems"] == []
    assert catalog.count("") == len(imported)
    # Rerunning the same imports completes them without duplicating the ones already there.
    for seed in range(len(imported) + 2):
        catalog.add_log(make_log(f"log{seed}", n_frames=30, seed=seed), IMPORT, "x")
    assert len(catalog.logs()) == len(imported) + 2  # imports ran in seed order: exactly two are new
    assert catalog.count("") == len(catalog.logs())

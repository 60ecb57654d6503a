"""The same catalog on a real PostgreSQL server: a configuration change, not a rewrite.

Starts a throwaway server from the machine's PostgreSQL binaries (skipped, with the reason, where
there are none) listening only on a Unix socket in a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from andon.scenarios import Catalog, NewScenario, Provenance
from andon.workspace import SETTINGS_FILE, Workspace
from tests.helpers import make_log

PORT = 54329


def _as_postgres(args: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI runs as root, so drop to the postgres user there.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed (pip install -e '.[test]')")
    # Not under pytest's tmp_path: that is private to root and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="andon-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
    subprocess.run(_as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=trust"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-w", "-l", str(root / "log"), "-o",
                                 f"-p {PORT} -k {sock} -c listen_addresses=''", "start"]), check=True,
                   capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={sock}&port={PORT}"
    finally:
        subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_workspace(workspace: Workspace, postgres_url: str) -> Iterator[Workspace]:
    settings_path = workspace.root / SETTINGS_FILE
    settings = yaml.safe_load(settings_path.read_text())
    settings["catalog_url"] = postgres_url
    settings_path.write_text(yaml.safe_dump(settings))
    opened = Workspace.open(workspace.root)
    yield opened
    catalog = Catalog(opened)
    from andon.scenarios.schema import metadata

    metadata.drop_all(catalog.engine)
    catalog.close()


def test_catalog_on_postgresql(pg_workspace: Workspace):
    catalog = Catalog(pg_workspace)
    assert catalog.engine.dialect.name == "postgresql"
    log_id, created = catalog.add_log(make_log(tags=frozenset({"night"})), Provenance("import", "test", "1"), "drive")
    assert created and not catalog.add_log(make_log(tags=frozenset({"night"})), Provenance("import", "test", "1"),
                                           "drive")[1]
    miner = Provenance("miner", "cut_in", "1")
    created, merged = catalog.add_scenarios([
        NewScenario(log_id, 1_100_000_000, 1_500_000_000, frozenset({"cut_in"}), miner),
        NewScenario(log_id, 1_100_000_000, 1_500_000_000, frozenset({"dense_traffic"}), miner),
        NewScenario(log_id, 1_600_000_000, 2_000_000_000, frozenset({"cut_in", "night"}), miner),
    ])
    assert (created, merged) == (2, 1)
    assert len(catalog.search("tag:cut_in")) == 2
    assert len(catalog.search("tag:cut_in -tag:night")) == 1
    sid = catalog.search("tag:dense_traffic")[0].scenario_id
    catalog.set_qa({sid: (0.85, {"teleport": 0})})
    assert [s.scenario_id for s in catalog.search("qa>=0.8")] == [sid]
    assert catalog.tag(sid[:8], add=["hard"], remove=["cut_in"]).tags == {"hard", "dense_traffic"}
    catalog.retire(sid, "duplicate")
    stats = catalog.stats()
    assert stats["scenarios"] == {"active": 2, "retired": 1}
    assert stats["qa_unscored"] == 2 and stats["tags"]["night"] == 2
    # The frames still come from the workspace's blob store.
    assert Catalog(pg_workspace).log(log_id).frames[3].points.shape == (200, 4)
    assert not Path(pg_workspace.root / "catalog.sqlite").exists()

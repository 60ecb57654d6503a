"""`andon scenarios commit` versions the catalog with DVC and git; `dvc push`/`pull` restore it."""

from __future__ import annotations

import shutil
import subprocess

from andon.scenarios import Catalog, Provenance
from andon.scenarios.snapshot import commit_catalog
from andon.workspace import run_tool
from tests.helpers import make_log


def test_commit_push_and_restore_from_remote(workspace):
    catalog = Catalog(workspace)
    log_id, _ = catalog.add_log(make_log(), Provenance("import", "test", "1"), "drive")
    first = commit_catalog(catalog, "first import", push=True)
    assert first["changed"] and first["pushed"]
    root = workspace.root
    tracked = run_tool(["git", "ls-files"], root, "git ls-files").split()
    assert {"blobs.dvc", "catalog_export.dvc", "andon.yaml"} <= set(tracked)
    assert "catalog.sqlite" not in tracked

    again = commit_catalog(catalog, "nothing new")
    assert not again["changed"] and again["commit"] == first["commit"]

    # Lose every blob, then bring them back from the DVC remote.
    shutil.rmtree(root / "blobs")
    shutil.rmtree(root / ".dvc" / "cache")
    run_tool(["dvc", "pull", "-q"], root, "dvc pull")
    log = Catalog(workspace).log(log_id)
    assert len(log.frames) == 20 and log.frames[5].points.shape == (200, 4)
    exported = (root / "catalog_export" / "scenarios.jsonl").read_text().splitlines()
    assert len(exported) == 1 and log_id in exported[0]


def test_commit_records_each_catalog_change(workspace):
    catalog = Catalog(workspace)
    catalog.add_log(make_log(), Provenance("import", "test", "1"), "drive")
    commit_catalog(catalog, "import")
    catalog.tag(catalog.search("")[0].scenario_id, add=["night"])
    second = commit_catalog(catalog, "tag night")
    assert second["changed"]
    log = subprocess.run(["git", "log", "--format=%s"], cwd=workspace.root, capture_output=True, text=True).stdout
    assert log.split("\n")[:3] == ["tag night", "import", "andon init"]

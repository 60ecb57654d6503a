"""Shared fixtures: real workspaces (git + DVC), real SQLite catalogs, small hand-made logs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from andon.workspace import Workspace, disable_telemetry

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

disable_telemetry()


@pytest.fixture(scope="session")
def _workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace, _ = Workspace.init(tmp_path_factory.mktemp("template") / "ws")
    return workspace.root


@pytest.fixture
def workspace(_workspace_template: Path, tmp_path: Path) -> Workspace:
    """A fresh, real workspace (git + DVC with a local remote); copied from a template for speed."""
    root = tmp_path / "ws"
    shutil.copytree(_workspace_template, root, symlinks=True)
    workspace = Workspace.open(root)
    # The template's remote path points at the template; repoint it at this copy's own remote.
    from andon.workspace import run_tool

    run_tool(["dvc", "remote", "modify", "local", "url", str(root / "dvc-remote")], root, "dvc remote modify")
    return workspace


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent: real-data tests need it (see its README)")
    return SHARED_DATA

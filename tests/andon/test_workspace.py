"""Workspaces: created as git + DVC repositories, found by flag, environment or default."""

from __future__ import annotations

import pytest

from andon.errors import BadInput
from andon.workspace import Workspace, resolve_root, run_tool


def test_init_creates_git_and_dvc_repo_with_local_remote(tmp_path):
    workspace, created = Workspace.init(tmp_path / "ws")
    assert created
    root = workspace.root
    assert (root / ".git").is_dir() and (root / ".dvc").is_dir() and (root / "andon.yaml").is_file()
    remotes = run_tool(["dvc", "remote", "list"], root, "dvc remote list")
    assert "local" in remotes and str(root / "dvc-remote") in remotes
    assert workspace.catalog_url == f"sqlite:///{root / 'catalog.sqlite'}"
    assert run_tool(["git", "status", "--porcelain"], root, "git status").strip() == ""
    again, created_again = Workspace.init(root)
    assert not created_again and again.root == root


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("ANDON_WORKSPACE", str(tmp_path / "env"))
    assert resolve_root(str(tmp_path / "flag")) == tmp_path / "flag"
    assert resolve_root(None) == tmp_path / "env"
    monkeypatch.delenv("ANDON_WORKSPACE")
    monkeypatch.chdir(tmp_path)
    assert resolve_root(None) == tmp_path / "andon-workspace"


def test_open_missing_or_broken_workspace_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="andon init"):
        Workspace.open(tmp_path / "nothing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "andon.yaml").write_text("a: [unclosed")
    with pytest.raises(BadInput, match="not valid YAML"):
        Workspace.open(tmp_path / "broken")


def test_init_on_a_file_is_bad_input(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(BadInput, match="not a directory"):
        Workspace.init(tmp_path / "file")
